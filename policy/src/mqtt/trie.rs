//! An index of topic rules by their literal prefix (the whole levels before the first variable or
//! wildcard), so a message looks at the rules that could apply to it, not at every rule.
//!
//! The index only narrows: each candidate is then bound and checked exactly (`matches`,
//! `includes`, `overlaps`).

use super::{FilterLevel, TopicFilter, TopicName};
use std::collections::HashMap;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<String, Node>,
    permits: Vec<usize>,
    forbids: Vec<usize>,
}

/// Rule numbers indexed by literal prefix; permits and forbids are kept apart because a
/// SUBSCRIBE needs a covering permit but must see every overlapping forbid.
#[derive(Debug, Default)]
pub(crate) struct RuleTrie {
    root: Node,
}

impl RuleTrie {
    pub(crate) fn insert(&mut self, prefix: &[&str], rule: usize, forbid: bool) {
        let mut node = &mut self.root;
        for level in prefix {
            node = node.children.entry((*level).to_owned()).or_default();
        }
        if forbid {
            node.forbids.push(rule);
        } else {
            node.permits.push(rule);
        }
    }

    /// Rules whose literal prefix is a prefix of `name`: the only ones that can match it.
    pub(crate) fn for_name(&self, name: &TopicName, out: &mut Vec<usize>) {
        let mut node = &self.root;
        let mut levels = name.levels();
        loop {
            out.extend_from_slice(&node.permits);
            out.extend_from_slice(&node.forbids);
            match levels.next().and_then(|l| node.children.get(l)) {
                Some(next) => node = next,
                None => return,
            }
        }
    }

    /// Permits that could include `filter` (their prefix lies along its literal levels) and
    /// forbids that could overlap it (anywhere a wildcard of `filter` reaches).
    pub(crate) fn for_filter(&self, filter: &TopicFilter, out: &mut Vec<usize>) {
        let levels: Vec<FilterLevel<'_>> = filter.levels().collect();
        let mut node = &self.root;
        let mut rest = levels.as_slice();
        loop {
            out.extend_from_slice(&node.permits);
            out.extend_from_slice(&node.forbids);
            match rest.split_first() {
                Some((FilterLevel::Literal(l), tail)) => match node.children.get(*l) {
                    Some(next) => {
                        node = next;
                        rest = tail;
                    }
                    None => return,
                },
                Some((FilterLevel::Plus, tail)) => {
                    for child in node.children.values() {
                        forbids_overlapping(child, tail, out);
                    }
                    return;
                }
                Some((FilterLevel::Hash, _)) => {
                    for child in node.children.values() {
                        all_forbids(child, out);
                    }
                    return;
                }
                None => return,
            }
        }
    }
}

fn forbids_overlapping(node: &Node, rest: &[FilterLevel<'_>], out: &mut Vec<usize>) {
    out.extend_from_slice(&node.forbids);
    match rest.split_first() {
        Some((FilterLevel::Literal(l), tail)) => {
            if let Some(next) = node.children.get(*l) {
                forbids_overlapping(next, tail, out);
            }
        }
        Some((FilterLevel::Plus, tail)) => {
            for child in node.children.values() {
                forbids_overlapping(child, tail, out);
            }
        }
        Some((FilterLevel::Hash, _)) => {
            for child in node.children.values() {
                all_forbids(child, out);
            }
        }
        None => {}
    }
}

fn all_forbids(node: &Node, out: &mut Vec<usize>) {
    out.extend_from_slice(&node.forbids);
    for child in node.children.values() {
        all_forbids(child, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie() -> RuleTrie {
        let mut t = RuleTrie::default();
        t.insert(&["devices"], 0, false); // devices/{device.id}/up/#
        t.insert(&["devices", "d1", "up"], 1, false);
        t.insert(&["devices", "d2", "secret"], 2, true);
        t.insert(&[], 3, true); // +/admin
        t
    }

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn name_walk_collects_prefixes() {
        let mut out = Vec::new();
        let name = TopicName::parse("devices/d1/up/x").unwrap_or_else(|e| unreachable!("{e}"));
        trie().for_name(&name, &mut out);
        assert_eq!(sorted(out), vec![0, 1, 3]);
    }

    #[test]
    fn filter_walk_reaches_forbids_under_wildcards() {
        let f = |s: &str| TopicFilter::parse(s).unwrap_or_else(|e| unreachable!("{e}"));
        let mut out = Vec::new();
        trie().for_filter(&f("devices/+/secret"), &mut out);
        assert_eq!(sorted(out), vec![0, 2, 3]);
        let mut out = Vec::new();
        trie().for_filter(&f("#"), &mut out);
        assert_eq!(sorted(out), vec![2, 3]);
        let mut out = Vec::new();
        trie().for_filter(&f("devices/d1/up/#"), &mut out);
        assert_eq!(sorted(out), vec![0, 1, 3]);
    }
}
