//! Entry points for fuzz targets (`policy/fuzz/`); not a stable API.

use crate::mqtt::{TopicFilter, TopicName, includes, matches, overlaps};

/// Parses `data` as a topic name and as a filter; checks the invariants that must hold for
/// anything that parses. Never panics on any input unless an invariant is broken.
pub fn topic(data: &[u8]) {
    let name = TopicName::from_bytes(data);
    let filter = TopicFilter::from_bytes(data);
    if let Ok(f) = &filter {
        assert_eq!(f.as_str().as_bytes(), data, "filter round trip");
        assert!(includes(f, f), "inclusion is reflexive");
        assert!(overlaps(f, f), "a filter overlaps itself");
    }
    if let Ok(n) = &name {
        assert_eq!(n.as_str().as_bytes(), data, "name round trip");
        let f = filter.as_ref().map_err(|e| e.to_string());
        // `$share/…` text is a shared subscription when read as a filter, which needs a non-empty
        // share name and a filter after it (MQTT 5.0 §4.8.2); as a name it is just a `$` topic.
        if n.as_str().starts_with("$share/") {
            return;
        }
        assert!(f.is_ok(), "every name outside $share/ is a filter");
        if let Ok(f) = f
            && f.share_name().is_none()
        {
            assert!(matches(f, n), "a literal filter matches its own name");
        }
    }
}

/// Splits `data` at the first 0xff into two filters (or a filter and a name) and checks that
/// matching, inclusion and overlap agree: a name matched by an included filter is matched by
/// the including one, and a name matched by both means they overlap.
pub fn filter_pair(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let (Some(a), Some(b), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(a), Ok(b), Ok(t)) = (
        TopicFilter::from_bytes(a),
        TopicFilter::from_bytes(b),
        TopicName::from_bytes(t),
    ) else {
        return;
    };
    if includes(&a, &b) && matches(&b, &t) {
        assert!(matches(&a, &t), "inclusion implies matching");
    }
    if matches(&a, &t) && matches(&b, &t) {
        assert!(overlaps(&a, &b), "common topic implies overlap");
    }
    assert_eq!(overlaps(&a, &b), overlaps(&b, &a), "overlap is symmetric");
}
