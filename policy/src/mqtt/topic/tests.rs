//! Topic tests: the examples of MQTT 3.1.1 §4.7 / 5.0 §4.7–4.8, and property tests against a
//! reference model that decides inclusion by enumerating every topic over a tiny alphabet.

use super::*;
use proptest::prelude::*;

fn name(s: &str) -> TopicName {
    TopicName::parse(s).unwrap_or_else(|e| unreachable!("test name {s:?}: {e}"))
}
fn filter(s: &str) -> TopicFilter {
    TopicFilter::parse(s).unwrap_or_else(|e| unreachable!("test filter {s:?}: {e}"))
}

/// §4.7.1.2, §4.7.1.3, §4.7.2 and §4.7.3 examples: (filter, topic, matches).
const SPEC_MATCHES: &[(&str, &str, bool)] = &[
    // §4.7.1.2 multi-level wildcard
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/#", "sport", true),
    ("#", "sport/tennis", true),
    // §4.7.1.3 single-level wildcard
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player2", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    // §4.7.2 topics beginning with $
    ("#", "$SYS/broker/clients", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    // §4.7.3 case-sensitive, levels, spaces
    ("ACCOUNTS", "Accounts", false),
    ("Accounts payable", "Accounts payable", true),
    ("/finance", "finance", false),
    ("/", "/", true),
    // MQTT 5.0 §4.8.2: a shared subscription matches as its filter
    (
        "$share/consumer1/sport/tennis/+",
        "sport/tennis/player1",
        true,
    ),
    ("$share/consumer1/#", "$SYS/x", false),
];

#[test]
fn spec_examples_match() {
    for &(f, t, want) in SPEC_MATCHES {
        assert_eq!(matches(&filter(f), &name(t)), want, "{f} vs {t}");
    }
}

#[test]
fn spec_examples_valid_and_invalid_filters() {
    for ok in [
        "sport/tennis/#",
        "sport/#",
        "#",
        "+",
        "+/tennis/#",
        "sport/+/player1",
        "/",
        "/+",
        "$share/g/#",
        "$share",
    ] {
        assert!(TopicFilter::parse(ok).is_ok(), "{ok}");
    }
    let bad: &[(&str, TopicError)] = &[
        (
            "sport/tennis#",
            TopicError::MisplacedWildcard {
                wildcard: '#',
                position: 12,
            },
        ),
        (
            "sport/tennis/#/ranking",
            TopicError::MisplacedWildcard {
                wildcard: '#',
                position: 13,
            },
        ),
        (
            "sport+",
            TopicError::MisplacedWildcard {
                wildcard: '+',
                position: 5,
            },
        ),
        ("", TopicError::Empty),
        ("a\0b", TopicError::Nul { position: 1 }),
        ("$share/g", TopicError::BadShare { position: 8 }),
        ("$share//x", TopicError::BadShare { position: 7 }),
        ("$share/g/", TopicError::BadShare { position: 9 }),
        ("$share/g+/x", TopicError::BadShare { position: 8 }),
        (
            "$share/g/a#",
            TopicError::MisplacedWildcard {
                wildcard: '#',
                position: 10,
            },
        ),
    ];
    for (s, e) in bad {
        assert_eq!(TopicFilter::parse(s).as_ref(), Err(e), "{s:?}");
    }
}

#[test]
fn names_refuse_wildcards_nul_and_length() {
    assert_eq!(
        TopicName::parse("a/+/b"),
        Err(TopicError::WildcardInName {
            wildcard: '+',
            position: 2
        })
    );
    assert_eq!(
        TopicName::parse("a/#"),
        Err(TopicError::WildcardInName {
            wildcard: '#',
            position: 2
        })
    );
    assert_eq!(TopicName::parse("\0"), Err(TopicError::Nul { position: 0 }));
    assert_eq!(
        TopicName::from_bytes(b"ab\xff"),
        Err(TopicError::NotUtf8 { position: 2 })
    );
    let max = "a".repeat(MAX_TOPIC_LEN);
    assert!(TopicName::parse(&max).is_ok());
    let over = "a".repeat(MAX_TOPIC_LEN + 1);
    assert_eq!(
        TopicName::parse(&over),
        Err(TopicError::TooLong {
            len: MAX_TOPIC_LEN + 1
        })
    );
    assert_eq!(
        TopicFilter::parse(&over),
        Err(TopicError::TooLong {
            len: MAX_TOPIC_LEN + 1
        })
    );
}

#[test]
fn share_name_and_inner_filter() {
    let f = filter("$share/consumer1/sport/tennis/+");
    assert_eq!(f.share_name(), Some("consumer1"));
    assert_eq!(f.filter(), "sport/tennis/+");
    assert_eq!(f.as_str(), "$share/consumer1/sport/tennis/+");
    assert_eq!(filter("sport/+").share_name(), None);
}

#[test]
fn issue_inclusion_examples() {
    // The issue's own example: `devices/+/up` must not pass where only one device is allowed.
    assert!(!includes(&filter("devices/d1/up"), &filter("devices/+/up")));
    assert!(includes(
        &filter("devices/d1/up/#"),
        &filter("devices/d1/up/+")
    ));
    assert!(includes(
        &filter("devices/d1/up/#"),
        &filter("devices/d1/up")
    ));
    assert!(!includes(
        &filter("devices/d1/up/+"),
        &filter("devices/d1/up/#")
    ));
    assert!(includes(&filter("+/#"), &filter("#")));
    assert!(includes(&filter("#"), &filter("+/#")));
    assert!(!includes(&filter("#"), &filter("$SYS/#")));
    assert!(includes(&filter("$SYS/#"), &filter("$SYS/+")));
    assert!(includes(
        &filter("devices/d1/down/#"),
        &filter("$share/g/devices/d1/down/x")
    ));
    assert!(overlaps(&filter("devices/+/secret"), &filter("devices/#")));
    assert!(!overlaps(&filter("devices/+/secret"), &filter("devices/+")));
    assert!(!overlaps(&filter("#"), &filter("$SYS")));
    // The empty string is not a topic, so `/#` selects only topics of two or more levels.
    assert!(!overlaps(&filter("+"), &filter("/#")));
    assert!(includes(&filter("/+/#"), &filter("/#")));
}

// ---- reference model -------------------------------------------------------------------------

/// Matching written straight from the spec's wording, on level lists.
fn ref_matches(f: &str, t: &str) -> bool {
    let f: Vec<&str> = f.split('/').collect();
    let t: Vec<&str> = t.split('/').collect();
    let leading_wild = matches!(f.first(), Some(&"+") | Some(&"#"));
    if leading_wild && t.first().is_some_and(|l| l.starts_with('$')) {
        return false;
    }
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.split_first(), t.split_first()) {
            (Some((&"#", _)), _) => true,
            (Some((&"+", fr)), Some((_, tr))) => go(fr, tr),
            (Some((l, fr)), Some((m, tr))) => l == m && go(fr, tr),
            (None, None) => true,
            _ => false,
        }
    }
    go(&f, &t)
}

/// Every list of 1..=max_levels levels over `alphabet`.
fn all_level_lists(alphabet: &[&str], max_levels: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = alphabet.iter().map(|s| vec![s.to_string()]).collect();
    let mut frontier = out.clone();
    for _ in 1..max_levels {
        let mut next = Vec::new();
        for t in &frontier {
            for s in alphabet {
                let mut u = t.clone();
                u.push(s.to_string());
                next.push(u);
            }
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    out
}

/// Every topic with 1..=max_levels levels over `alphabet` (the empty string is not a topic).
fn all_topics(alphabet: &[&str], max_levels: usize) -> Vec<String> {
    let all = all_level_lists(alphabet, max_levels);
    all.into_iter()
        .map(|l| l.join("/"))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Every filter with 1..=max_levels levels over `literals`, `+`, and `#` as the last level.
fn all_filters(literals: &[&str], max_levels: usize) -> Vec<String> {
    let mut elems: Vec<&str> = literals.to_vec();
    elems.push("+");
    let mut out = vec!["#".to_string()];
    for mut levels in all_level_lists(&elems, max_levels) {
        let body = levels.join("/");
        if !body.is_empty() {
            out.push(body);
        }
        if levels.len() < max_levels {
            levels.push("#".into());
            out.push(levels.join("/"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// "z" never appears in a filter, so it stands for "any other level".
const TOPIC_ALPHABET: &[&str] = &["a", "", "$s", "z"];

fn ref_includes(outer: &str, inner: &str, topics: &[String]) -> bool {
    topics
        .iter()
        .all(|t| !ref_matches(inner, t) || ref_matches(outer, t))
}
fn ref_overlaps(a: &str, b: &str, topics: &[String]) -> bool {
    topics
        .iter()
        .any(|t| ref_matches(a, t) && ref_matches(b, t))
}

#[test]
fn exhaustive_inclusion_up_to_three_levels() {
    // A counterexample, if any, needs at most one level more than the longer filter.
    let topics = all_topics(TOPIC_ALPHABET, 4);
    let filters: Vec<(String, TopicFilter)> = all_filters(&["a", "", "$s"], 3)
        .into_iter()
        .filter_map(|s| TopicFilter::parse(&s).ok().map(|f| (s, f)))
        .collect();
    assert!(
        filters.len() > 100,
        "enumeration too small: {}",
        filters.len()
    );
    // Precompute which topics each filter selects, via the reference.
    let sets: Vec<Vec<bool>> = filters
        .iter()
        .map(|(s, _)| topics.iter().map(|t| ref_matches(s, t)).collect())
        .collect();
    for (i, (si, fi)) in filters.iter().enumerate() {
        for (j, (sj, fj)) in filters.iter().enumerate() {
            let (a, b) = (&sets[i], &sets[j]);
            let incl = a.iter().zip(b).all(|(x, y)| !*y || *x);
            let over = a.iter().zip(b).any(|(x, y)| *x && *y);
            assert_eq!(includes(fi, fj), incl, "includes({si}, {sj})");
            assert_eq!(overlaps(fi, fj), over, "overlaps({si}, {sj})");
        }
    }
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(String::new()),
        Just("$s".to_string()),
        Just("+".to_string())
    ];
    (
        prop::collection::vec(level, 1..=4),
        any::<bool>(),
        prop::option::of("[gh]"),
    )
        .prop_map(|(mut levels, hash, share)| {
            if hash && levels.len() < 4 {
                levels.push("#".into());
            }
            let body = levels.join("/");
            match share {
                Some(g) => format!("$share/{g}/{body}"),
                None => body,
            }
        })
        .prop_filter("valid", |s| TopicFilter::parse(s).is_ok())
}

fn strip_share(s: &str) -> &str {
    match s.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => s,
    }
}

proptest! {
    #[test]
    fn matches_agrees_with_reference(f in filter_strategy(), levels in prop::collection::vec("[ab$z]{0,2}", 1..6)) {
        let t = levels.join("/");
        prop_assume!(!t.is_empty() && !t.contains(['+', '#']));
        let tf = TopicFilter::parse(&f).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let tn = TopicName::parse(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(matches(&tf, &tn), ref_matches(strip_share(&f), &t), "{} vs {}", f, t);
    }

    #[test]
    fn includes_and_overlaps_agree_with_reference(a in filter_strategy(), b in filter_strategy()) {
        let topics = all_topics(&["a", "b", "", "$s", "z"], 5);
        let (fa, fb) = (TopicFilter::parse(&a), TopicFilter::parse(&b));
        let (Ok(fa), Ok(fb)) = (fa, fb) else { return Err(TestCaseError::fail("strategy")) };
        let (ra, rb) = (strip_share(&a), strip_share(&b));
        prop_assert_eq!(includes(&fa, &fb), ref_includes(ra, rb, &topics), "includes({}, {})", a, b);
        prop_assert_eq!(overlaps(&fa, &fb), ref_overlaps(ra, rb, &topics), "overlaps({}, {})", a, b);
    }

    #[test]
    fn parse_never_panics_and_round_trips(s in "\\PC{0,40}", bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(f) = TopicFilter::parse(&s) {
            prop_assert_eq!(f.as_str(), s.as_str());
            prop_assert!(includes(&f, &f));
        }
        if let Ok(n) = TopicName::parse(&s) {
            prop_assert_eq!(n.as_str(), s.as_str());
            // A name is also a literal filter that selects exactly itself.
            let f = TopicFilter::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(f.share_name().is_some() || matches(&f, &n));
        }
        let _ = TopicFilter::from_bytes(&bytes);
        let _ = TopicName::from_bytes(&bytes);
    }
}
