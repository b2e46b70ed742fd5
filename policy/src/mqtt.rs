//! MQTT topic semantics: names, filters, matching and filter inclusion (MQTT 3.1.1 and 5.0 §4.7),
//! and the index of topic rules used to find candidate policies.

pub mod topic;

pub(crate) mod trie;

pub use topic::{
    FilterLevel, MAX_TOPIC_LEN, TopicError, TopicFilter, TopicName, includes, matches, overlaps,
};
