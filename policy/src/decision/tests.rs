//! The fast path (prefix index, outcomes of principal-only policies decided once per
//! principal, Cedar only for the rest) against the plain one: every topic rule checked, and one
//! Cedar call over every policy that applies.

use super::*;
use crate::bundle::{BundleSources, TOPIC_ANNOTATION, applies_to, default};
use crate::principal::{AttestationStatus, DeviceAttributes};
use cedar_policy::PolicySet;
use proptest::prelude::*;
use std::sync::LazyLock;

/// The fleet example plus rules that exercise each path: a principal-only forbid rule, a rule
/// reading the context, an unannotated policy on the resource, a rule on a wildcard prefix, an
/// unbindable forbid, and a principal-only policy that fails at run time.
const EXTRA: &str = r#"
@id("line-1-no-tariff-publish")
@topic("tariffs/#")
forbid (principal in Group::"line-1", action == Action::"publish", resource);

@id("state-by-context")
@topic("devices/{device.id}/state")
permit (principal is Device, action == Action::"publish", resource)
when { context.topic like "*state" };

@id("broadcast")
permit (principal is Device, action == Action::"subscribe", resource == Topic::"broadcast/all");

@id("admin-area")
@topic("+/admin/#")
forbid (principal is Device, action in [Action::"publish", Action::"subscribe"], resource)
unless { principal.attestation == "verified" };

@id("client-secret")
@topic("clients/{client_id}/secret")
forbid (principal, action == Action::"subscribe", resource);

@id("overflow")
permit (principal is Device, action == Action::"connect", resource)
when { principal.attested && 9223372036854775807 + 1 > 0 };
"#;

static BUNDLE: LazyLock<Bundle> = LazyLock::new(|| {
    let policies = format!(
        "{}\n{EXTRA}",
        include_str!("../../tests/data/fleet/policies.cedar")
    );
    let entities = r#"[
        {"uid":{"type":"Group","id":"meters"},"attrs":{},"parents":[]},
        {"uid":{"type":"Group","id":"line-1"},"attrs":{},"parents":[{"type":"Group","id":"meters"}]},
        {"uid":{"type":"Group","id":"quarantine"},"attrs":{},"parents":[]},
        {"uid":{"type":"Device","id":"d2"},"attrs":{"id":"d2","product":"meter","factory":"sz-1","firmware":"1","attestation":"verified","attested":true},"parents":[{"type":"Group","id":"quarantine"}]}
    ]"#;
    let sources = BundleSources {
        schema: default::SCHEMA.to_owned(),
        policies,
        entities: entities.to_owned(),
    };
    Bundle::compile(sources).unwrap_or_else(|e| unreachable!("test bundle: {e}"))
});

/// One Cedar call over all unannotated policies of the action and every applying rule.
fn decide_plain(bundle: &Bundle, principal: &Principal, op: &Operation) -> Decision {
    let kind = op.kind();
    if !principal.is_device() && kind != ActionKind::HttpRequest {
        return Decision::deny(0, Reason::PrincipalType);
    }
    let resolved = principal
        .resolve(bundle)
        .unwrap_or_else(|e| unreachable!("{e}"));
    let request = bundle
        .request(&resolved.uid, principal, op)
        .unwrap_or_else(|| unreachable!("request"));
    let names = bundle.names();
    let mut tally = Tally::default();
    let mut set = PolicySet::new();
    for p in bundle.policies().policies() {
        if p.annotation(TOPIC_ANNOTATION).is_none() && applies_to(p, names).contains(&kind) {
            set.add(p.clone()).unwrap_or_else(|e| unreachable!("{e}"));
        }
    }
    // An unbound forbid applies to the topics its literal prefix can reach, which the prefix
    // index defines; bound rules are all checked, index or not.
    let mut candidates = Vec::new();
    match op {
        Operation::Publish(name) => bundle.publish_index.for_name(name, &mut candidates),
        Operation::Subscribe(f) => bundle.subscribe_index.for_filter(f, &mut candidates),
        Operation::Connect { .. } | Operation::Http { .. } => {}
    }
    for (index, rule) in bundle.rules.iter().enumerate() {
        let scoped = rule
            .set
            .policies()
            .any(|p| applies_to(p, names).contains(&kind));
        let bound = rule.template.bind(principal);
        if !scoped || (bound.is_err() && !candidates.contains(&index)) {
            continue;
        }
        if Bundle::rule_applies(rule, bound.as_ref().map_err(|v| *v), op, &mut tally) {
            for p in rule.set.policies() {
                set.add(p.clone()).unwrap_or_else(|e| unreachable!("{e}"));
            }
        }
    }
    bundle.evaluate(&set, &request, &resolved.entities, &mut tally);
    tally.conclude(0)
}

fn principal_strategy() -> impl Strategy<Value = Principal> {
    (
        0..4usize,
        prop::sample::select(vec!["2.4.1", "3.0-dev"]),
        any::<bool>(),
        prop::sample::subsequence(vec!["meters", "line-1", "quarantine", "nope"], 0..3),
        prop::sample::select(vec!["", "d0", "c1", "a/b", "+"]),
        any::<bool>(),
    )
        .prop_map(|(i, firmware, verified, groups, client, admin)| {
            if admin && i == 3 {
                return Principal::admin("alice", crate::AdminRole::Security);
            }
            Principal::device(
                DeviceAttributes {
                    id: format!("d{i}"),
                    product: "meter".into(),
                    factory: if i == 1 { "gz-2" } else { "sz-1" }.into(),
                    firmware: firmware.into(),
                    attestation: if verified {
                        AttestationStatus::Verified
                    } else {
                        AttestationStatus::Unverified
                    },
                    groups: groups.into_iter().map(str::to_owned).collect(),
                },
                client,
            )
        })
}

const LEVELS: &[&str] = &[
    "devices",
    "d0",
    "d1",
    "d2",
    "up",
    "down",
    "debug",
    "state",
    "tariffs",
    "meter",
    "admin",
    "clients",
    "c1",
    "secret",
    "inbox",
    "ota",
    "sz-1",
    "broadcast",
    "all",
    "$SYS",
    "",
];

fn topic_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LEVELS), 1..6).prop_map(|l| l.join("/"))
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        6 => prop::sample::select(LEVELS).prop_map(str::to_owned),
        2 => Just("+".to_owned()),
    ];
    (
        prop::collection::vec(level, 1..6),
        any::<bool>(),
        prop::sample::select(vec!["", "$share/fleet/", "$share/other/"]),
    )
        .prop_map(|(mut levels, hash, share)| {
            if hash {
                levels.push("#".to_owned());
            }
            format!("{share}{}", levels.join("/"))
        })
}

fn op_strategy() -> impl Strategy<Value = Operation> {
    prop_oneof![
        prop::sample::select(vec!["mqtts", "other"]).prop_map(|l| Operation::Connect {
            listener: l.to_owned()
        }),
        (
            prop::sample::select(vec!["GET", "POST"]),
            prop::sample::select(vec!["/api/v1/passport", "/api/v1/devices", "/x"])
        )
            .prop_map(|(m, p)| Operation::Http {
                method: m.to_owned(),
                path: p.to_owned()
            }),
        topic_strategy().prop_filter_map("valid name", |t| TopicName::parse(&t)
            .ok()
            .map(Operation::Publish)),
        filter_strategy().prop_filter_map("valid filter", |f| TopicFilter::parse(&f)
            .ok()
            .map(Operation::Subscribe)),
    ]
}

fn normalised(d: &Decision) -> (bool, Vec<String>, Vec<String>) {
    let mut reasons: Vec<String> = d.reasons.iter().map(|r| format!("{r:?}")).collect();
    reasons.sort();
    (d.allowed, d.policy_ids.clone(), reasons)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn fast_path_agrees_with_plain_path(principal in principal_strategy(), op in op_strategy()) {
        let fast = BUNDLE.decide(&principal, &op, 0);
        let plain = decide_plain(&BUNDLE, &principal, &op);
        prop_assert_eq!(normalised(&fast), normalised(&plain), "{:?} {}", principal, op);
    }
}

#[test]
fn principal_only_policies_are_recognised() {
    let fixed: Vec<&str> = BUNDLE
        .fixed
        .iter()
        .flat_map(|f| f.ids.iter().map(|(id, _)| id.as_str()))
        .collect();
    for id in [
        "quarantine",
        "fleet-publish-own",
        "no-debug-topics",
        "line-1-no-tariff-publish",
        "overflow",
    ] {
        assert!(
            fixed.contains(&id),
            "{id} should be principal-only: {fixed:?}"
        );
    }
    for id in [
        "device-connect-attested",
        "only-fleet-share-group",
        "state-by-context",
        "broadcast",
        "security-admin-api",
    ] {
        assert!(!fixed.contains(&id), "{id} reads the request: {fixed:?}");
    }
}

#[test]
fn fixed_outcomes_decide_without_cedar_and_keep_errors() {
    let device = |firmware: &str, groups: Vec<String>| {
        Principal::device(
            DeviceAttributes {
                id: "d0".into(),
                product: "meter".into(),
                factory: "sz-1".into(),
                firmware: firmware.into(),
                attestation: AttestationStatus::Verified,
                groups,
            },
            "d0",
        )
    };
    let publish =
        |t: &str| Operation::Publish(TopicName::parse(t).unwrap_or_else(|e| unreachable!("{e}")));
    let d = BUNDLE.decide(&device("2.4.1", vec![]), &publish("devices/d0/up/x"), 3);
    assert!(d.allowed);
    assert_eq!(d.policy_ids, vec!["fleet-publish-own".to_owned()]);
    let q = BUNDLE.decide(
        &device("2.4.1", vec!["quarantine".into()]),
        &publish("devices/d0/up/x"),
        3,
    );
    assert!(!q.allowed);
    assert_eq!(q.policy_ids, vec!["quarantine".to_owned()]);
    let c = BUNDLE.decide(
        &device("2.4.1", vec![]),
        &Operation::Connect {
            listener: "mqtts".into(),
        },
        3,
    );
    assert!(c.allowed, "{c:?}");
    assert!(
        c.reasons
            .iter()
            .any(|r| matches!(r, Reason::PolicyError { message } if message.contains("overflow"))),
        "the overflow error is reported: {c:?}"
    );
}
