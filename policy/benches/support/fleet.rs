//! A synthetic fleet shared by the bench and the latency example: 100,000 devices in 100 lines
//! under 10 factories, with the example fleet policies.

use smtrust_policy::{
    AttestationStatus, Bundle, BundleSources, DeviceAttributes, Principal, default,
};
use std::fmt::Write as _;

pub const DEVICES: usize = 100_000;

pub fn device_id(i: usize) -> String {
    format!("ctw-{i:010}")
}

/// Entity JSON for `n` devices and their group hierarchy.
pub fn entities(n: usize) -> String {
    let mut out = String::with_capacity(n * 260);
    out.push('[');
    for f in 0..10 {
        let _ = write!(
            out,
            r#"{{"uid":{{"type":"Group","id":"factory-{f}"}},"attrs":{{}},"parents":[]}},"#
        );
    }
    for l in 0..100 {
        let _ = write!(
            out,
            r#"{{"uid":{{"type":"Group","id":"line-{l}"}},"attrs":{{}},"parents":[{{"type":"Group","id":"factory-{}"}},{{"type":"Group","id":"meters"}}]}},"#,
            l % 10
        );
    }
    out.push_str(r#"{"uid":{"type":"Group","id":"meters"},"attrs":{},"parents":[]},"#);
    out.push_str(r#"{"uid":{"type":"Group","id":"quarantine"},"attrs":{},"parents":[]}"#);
    for i in 0..n {
        let _ = write!(
            out,
            r#",{{"uid":{{"type":"Device","id":"{id}"}},"attrs":{{"id":"{id}","product":"meter","factory":"sz-1","firmware":"2.4.1","attestation":"verified","attested":true}},"parents":[{{"type":"Group","id":"line-{l}"}}]}}"#,
            id = device_id(i),
            l = i % 100
        );
    }
    out.push(']');
    out
}

pub fn bundle(n: usize) -> Bundle {
    let sources = BundleSources {
        schema: default::SCHEMA.to_owned(),
        policies: include_str!("../../tests/data/fleet/policies.cedar").to_owned(),
        entities: entities(n),
    };
    match Bundle::compile(sources) {
        Ok(b) => b,
        Err(e) => unreachable!("synthetic fleet bundle must compile: {e}"),
    }
}

pub fn principal(i: usize) -> Principal {
    let id = device_id(i);
    Principal::device(
        DeviceAttributes {
            id: id.clone(),
            product: "meter".into(),
            factory: "sz-1".into(),
            firmware: "2.4.1".into(),
            attestation: AttestationStatus::Verified,
            groups: vec![],
        },
        id,
    )
}
