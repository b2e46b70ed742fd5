//! Integration tests: policy test files, bundle validation, the engine's versions, hot reload
//! and dry runs.

use smtrust_policy::{
    AttestationStatus, Bundle, BundleSources, DeviceAttributes, Engine, Error, Operation,
    PolicyChange, Principal, Reason, TopicFilter, TopicName, default, run_tests,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn fleet_sources() -> Result<BundleSources> {
    Ok(BundleSources {
        schema: default::SCHEMA.to_owned(),
        policies: std::fs::read_to_string(format!("{DATA}/fleet/policies.cedar"))?,
        entities: std::fs::read_to_string(format!("{DATA}/fleet/entities.json"))?,
    })
}

fn device(id: &str, groups: &[&str]) -> Principal {
    Principal::device(
        DeviceAttributes {
            id: id.into(),
            product: "meter".into(),
            factory: "sz-1".into(),
            firmware: "2.4.1".into(),
            attestation: AttestationStatus::Verified,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
        id,
    )
}

fn run_file(bundle: &Bundle, file: &str) -> Result {
    let text = std::fs::read_to_string(format!("{DATA}/{file}"))?;
    let report = run_tests(bundle, &text)?;
    println!("{report}");
    assert!(report.cases.len() >= 10, "{file}: too few cases");
    assert!(report.all_passed(), "{file}:\n{report}");
    Ok(())
}

#[test]
fn default_bundle_test_file_passes() -> Result {
    run_file(&Bundle::default_bundle()?, "default.toml")
}

#[test]
fn fleet_bundle_test_file_passes() -> Result {
    run_file(&Bundle::compile(fleet_sources()?)?, "fleet.toml")
}

#[test]
fn a_failing_expectation_is_reported_not_hidden() -> Result {
    let text = r#"
        [principals.d]
        type = "device"
        id = "d1"
        product = "p"
        factory = "f"
        firmware = "1"
        attestation = "verified"
        [[test]]
        name = "wrong on purpose"
        principal = "d"
        publish = "devices/d2/up/x"
        expect = "allow"
    "#;
    let report = run_tests(&Bundle::default_bundle()?, text)?;
    assert!(!report.all_passed());
    assert_eq!(report.failures().count(), 1);
    assert!(report.to_string().contains("FAILED  wrong on purpose"));
    Ok(())
}

#[test]
fn malformed_test_files_are_errors() -> Result {
    let bundle = Bundle::default_bundle()?;
    let two_ops = "[principals.a]\ntype=\"admin\"\nid=\"a\"\nrole=\"audit\"\n[[test]]\nname=\"x\"\nprincipal=\"a\"\nconnect=\"m\"\npublish=\"t\"\nexpect=\"deny\"\n";
    assert!(matches!(
        run_tests(&bundle, two_ops),
        Err(Error::TestCase { .. })
    ));
    let unknown = "[[test]]\nname=\"x\"\nprincipal=\"nobody\"\nconnect=\"m\"\nexpect=\"deny\"\n";
    assert!(matches!(
        run_tests(&bundle, unknown),
        Err(Error::TestCase { .. })
    ));
    assert!(matches!(
        run_tests(&bundle, "[[test]]\nbogus = 1"),
        Err(Error::TestFile(_))
    ));
    Ok(())
}

fn with_policies(policies: &str) -> std::result::Result<Bundle, Error> {
    Bundle::compile(BundleSources {
        schema: default::SCHEMA.to_owned(),
        policies: policies.to_owned(),
        entities: "[]".to_owned(),
    })
}

#[test]
fn bundles_are_validated_strictly_before_use() {
    // Type error: Device has no attribute `owner`.
    let e = with_policies(
        "permit(principal is Device, action == Action::\"connect\", resource) when { principal.owner == \"x\" };",
    );
    assert!(
        matches!(e, Err(Error::Validation { ref errors }) if !errors.is_empty()),
        "{e:?}"
    );
    // Parse error.
    assert!(matches!(
        with_policies("permit(principal"),
        Err(Error::PolicyParse(_))
    ));
    // Duplicate @id.
    let dup = "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);";
    assert!(matches!(with_policies(dup), Err(Error::PolicySet(_))));
    // Bad topic annotations.
    let bad_var = "@topic(\"d/{device.owner}\") permit(principal is Device, action == Action::\"publish\", resource);";
    assert!(matches!(
        with_policies(bad_var),
        Err(Error::TopicRule { .. })
    ));
    let on_connect =
        "@topic(\"d/#\") permit(principal is Device, action == Action::\"connect\", resource);";
    assert!(matches!(
        with_policies(on_connect),
        Err(Error::TopicRule { .. })
    ));
    let any_action = "@topic(\"d/#\") permit(principal is Device, action, resource);";
    assert!(matches!(
        with_policies(any_action),
        Err(Error::TopicRule { .. })
    ));
    // Templates are refused.
    let template = "permit(principal == ?principal, action, resource);";
    assert!(matches!(
        with_policies(template),
        Err(Error::Template { .. })
    ));
    // Entities must conform to the schema.
    let e = Bundle::compile(BundleSources {
        schema: default::SCHEMA.to_owned(),
        policies: default::POLICIES.to_owned(),
        entities: r#"[{"uid":{"type":"Device","id":"d"},"attrs":{"id":"d"},"parents":[]}]"#
            .to_owned(),
    });
    assert!(matches!(e, Err(Error::Entities(_))), "{e:?}");
    // The schema must declare what the engine asks.
    let e = Bundle::compile(BundleSources {
        schema:
            "entity Device; action connect appliesTo { principal: [Device], resource: [Device] };"
                .to_owned(),
        policies: String::new(),
        entities: "[]".to_owned(),
    });
    assert!(matches!(e, Err(Error::SchemaMissing { .. })), "{e:?}");
}

#[test]
fn forbid_on_a_topic_wins_over_a_broader_permit() -> Result {
    let bundle = with_policies(
        r#"
        @id("all-up") @topic("devices/+/up/#")
        permit(principal is Device, action in [Action::"publish", Action::"subscribe"], resource);
        @id("no-secrets") @topic("devices/+/up/secret/#")
        forbid(principal is Device, action in [Action::"publish", Action::"subscribe"], resource);
        "#,
    )?;
    let d = device("d1", &[]);
    let publish = |t: &str| -> Result<_> {
        Ok(bundle.decide(&d, &Operation::Publish(TopicName::parse(t)?), 0))
    };
    let subscribe = |t: &str| -> Result<_> {
        Ok(bundle.decide(&d, &Operation::Subscribe(TopicFilter::parse(t)?), 0))
    };
    assert!(publish("devices/d9/up/temp")?.allowed);
    let denied = publish("devices/d9/up/secret/key")?;
    assert!(!denied.allowed);
    assert_eq!(denied.policy_ids, ["no-secrets"]);
    assert!(denied.reasons.contains(&Reason::Forbidden {
        policy_id: "no-secrets".into()
    }));
    assert!(subscribe("devices/d9/up/temp")?.allowed);
    // Overlaps the forbidden subtree, so the whole subscription is refused.
    assert!(!subscribe("devices/+/up/#")?.allowed);
    // `devices/+/up/+` would receive `devices/x/up/secret` (`#` matches its parent level).
    assert!(!subscribe("devices/+/up/+")?.allowed);
    assert!(subscribe("devices/+/up/temp")?.allowed);
    Ok(())
}

#[test]
fn unbound_forbid_fails_closed() -> Result {
    let bundle = with_policies(
        r##"
        @id("all") @topic("#")
        permit(principal is Device, action == Action::"publish", resource);
        @id("not-own-inbox") @topic("inbox/{client_id}")
        forbid(principal is Device, action == Action::"publish", resource);
        "##,
    )?;
    let mut attrs = DeviceAttributes {
        id: "d1".into(),
        product: "p".into(),
        factory: "f".into(),
        firmware: "1".into(),
        attestation: AttestationStatus::Verified,
        groups: vec![],
    };
    let odd = Principal::device(attrs.clone(), "a/b");
    let d = bundle.decide(&odd, &Operation::Publish(TopicName::parse("inbox/x")?), 0);
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::Unbound { .. }))
    );
    attrs.id = "d2".into();
    let fine = Principal::device(attrs, "c2");
    assert!(
        bundle
            .decide(&fine, &Operation::Publish(TopicName::parse("inbox/x")?), 0)
            .allowed
    );
    assert!(
        !bundle
            .decide(&fine, &Operation::Publish(TopicName::parse("inbox/c2")?), 0)
            .allowed
    );
    Ok(())
}

#[test]
fn hot_reload_rollback_and_diff() -> Result {
    let engine = Engine::with_default_bundle()?;
    let d = device("ctw-1", &["line-3"]);
    let tariffs = TopicFilter::parse("tariffs/meter/+")?;
    let up = TopicName::parse("devices/ctw-1/up/t")?;
    assert_eq!(engine.active_version(), 1);
    assert!(!engine.decide_subscribe(&d, &tariffs).allowed);
    assert!(engine.decide_publish(&d, &up).allowed);

    // Same principal object (as a live connection keeps it) across the reload.
    let v2 = engine.activate(Bundle::compile(fleet_sources()?)?);
    assert_eq!(v2, 2);
    let now = engine.decide_subscribe(&d, &tariffs);
    assert!(now.allowed, "{now:?}");
    assert_eq!(now.bundle_version, 2);

    let diff = engine.diff(1, 2)?;
    assert!(!diff.schema_changed && diff.entities_changed);
    assert!(
        diff.policies
            .iter()
            .any(|c| matches!(c, PolicyChange::Added { id, .. } if id == "meters-read-tariffs"))
    );
    assert!(
        diff.policies
            .iter()
            .any(|c| matches!(c, PolicyChange::Removed { id, .. } if id == "device-connect"))
    );
    assert!(
        diff.to_string()
            .contains("+++ policy meters-read-tariffs (added)")
    );
    assert!(engine.diff(1, 1)?.is_empty());

    assert_eq!(engine.rollback()?, 1);
    assert_eq!(engine.active_version(), 1);
    assert!(!engine.decide_subscribe(&d, &tariffs).allowed);
    assert!(matches!(
        engine.rollback(),
        Err(Error::NoEarlierVersion { version: 1 })
    ));
    engine.activate_version(2)?;
    assert!(engine.decide_subscribe(&d, &tariffs).allowed);
    assert!(matches!(
        engine.activate_version(7),
        Err(Error::UnknownVersion { version: 7 })
    ));
    assert_eq!(engine.versions().len(), 2);
    Ok(())
}

#[test]
fn store_numbered_versions_are_carried_by_decisions() -> Result {
    // The server's store: version 0 is the shipped default, `policy apply` gave the fleet 5.
    let engine = Engine::with_version(Bundle::default_bundle()?, 0);
    let d = device("ctw-1", &["line-3"]);
    let tariffs = TopicFilter::parse("tariffs/meter/+")?;
    assert_eq!(engine.active_version(), 0);
    assert_eq!(engine.decide_subscribe(&d, &tariffs).bundle_version, 0);
    engine.activate_as(Bundle::compile(fleet_sources()?)?, 5);
    let now = engine.decide_subscribe(&d, &tariffs);
    assert!(now.allowed, "{now:?}");
    assert_eq!(now.bundle_version, 5);
    // A store rollback re-activates its own number: the entry is replaced, not duplicated.
    engine.activate_as(Bundle::default_bundle()?, 0);
    assert_eq!(engine.active_version(), 0);
    assert!(!engine.decide_subscribe(&d, &tariffs).allowed);
    let versions: Vec<u64> = engine.versions().iter().map(|v| v.version).collect();
    assert_eq!(versions, [5, 0]);
    // Numbering of its own continues above the highest.
    assert_eq!(engine.activate(Bundle::default_bundle()?), 6);
    assert_eq!(engine.rollback()?, 5);
    assert!(engine.decide_subscribe(&d, &tariffs).allowed);
    Ok(())
}

#[test]
fn changed_group_membership_applies_after_reload() -> Result {
    // The principal's cached entities are rebuilt for the new bundle.
    let engine = Engine::new(Bundle::compile(fleet_sources()?)?);
    let d = device("ctw-7", &[]);
    assert!(engine.decide_connect(&d, "mqtts").allowed);
    let mut sources = fleet_sources()?;
    sources.entities = sources.entities.replacen(
        "[",
        r#"[{ "uid": { "type": "Device", "id": "ctw-7" }, "attrs": { "id": "ctw-7", "product": "meter",
            "factory": "sz-1", "firmware": "2.4.1", "attestation": "verified", "attested": true },
            "parents": [{ "type": "Group", "id": "quarantine" }] },"#,
        1,
    );
    engine.activate(Bundle::compile(sources)?);
    let d2 = engine.decide_connect(&d, "mqtts");
    assert!(!d2.allowed);
    assert_eq!(d2.policy_ids, ["quarantine"]);
    Ok(())
}

#[test]
fn dry_run_reports_exactly_the_changed_decisions() -> Result {
    let engine = Engine::with_default_bundle()?;
    let candidate = Bundle::compile(fleet_sources()?)?;
    let meter = device("ctw-1", &["line-3"]);
    let ops = [
        Operation::Connect {
            listener: "mqtts".into(),
        }, // same: allow
        Operation::Connect {
            listener: "plain".into(),
        }, // allow -> deny
        Operation::Publish(TopicName::parse("devices/ctw-1/up/t")?), // same: allow
        Operation::Subscribe(TopicFilter::parse("tariffs/meter/+")?), // deny -> allow
        Operation::Subscribe(TopicFilter::parse("devices/ctw-1/down/#")?), // allow -> deny (debug)
        Operation::Publish(TopicName::parse("devices/ctw-2/up/t")?), // same: deny
    ];
    let changes = engine.dry_run(&candidate, ops.iter().map(|op| (&meter, op)));
    let idx: Vec<usize> = changes.iter().map(|c| c.index).collect();
    assert_eq!(idx, [1, 3, 4]);
    assert!(
        changes
            .iter()
            .all(|c| c.active.bundle_version == 1 && c.candidate.bundle_version == 0)
    );
    assert!(changes[1].candidate.allowed && !changes[1].active.allowed);
    // A dry run does not activate anything.
    assert_eq!(engine.active_version(), 1);
    Ok(())
}
