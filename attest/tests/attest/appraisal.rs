//! Each way evidence can be wrong gets the right status and reason; only the happy path affirms.

use smtrust_attest::device::sign_evidence;
use smtrust_attest::{Reason, Status, claim, verify_result};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};

use crate::pki::*;

fn evidence(b: &Bench, d: &Device) -> String {
    let nonce = b.challenge(&d.id, 300);
    sign_evidence(&claims(d, &nonce), &d.chain, &d.key).unwrap()
}

fn has(reasons: &[Reason], want: &Reason) -> bool {
    reasons.contains(want)
}

#[test]
fn happy_path_affirms_and_result_verifies_offline() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000001");
    let ev = evidence(&b, &d);
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Affirming, "{:?}", a.result.reasons);
    assert!(a.result.reasons.is_empty());
    assert!(a.bound);
    assert_eq!(a.result.trust_vector.instance_identity, claim::AFFIRMING);
    assert_eq!(a.result.device_id.as_ref(), Some(&d.id));
    assert_eq!(
        a.result.cert_serial.as_deref(),
        Some(hex::encode(serial_of(&d.chain[0])).as_str())
    );
    assert_eq!(a.result.policy_id.as_deref(), Some("ctw-meter-3/2.4.1/v1"));
    let token = a
        .result
        .sign(&b.pki.attest_key, &b.pki.attest_chain)
        .unwrap();
    let back = verify_result(token.as_bytes(), std::slice::from_ref(&b.pki.root), now()).unwrap();
    assert_eq!(back, a.result);
    // Valid for the configured hour, not after.
    let later = at(NOW_SECS + 3600);
    assert!(verify_result(token.as_bytes(), std::slice::from_ref(&b.pki.root), later).is_err());
}

#[test]
fn result_signed_by_a_device_key_is_rejected() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000002");
    let ev = evidence(&b, &d);
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    // A device certificate chains to the same CA but lacks the attestation service SAN.
    let forged = a.result.sign(&d.key, &d.chain).unwrap();
    let err =
        verify_result(forged.as_bytes(), std::slice::from_ref(&b.pki.root), now()).unwrap_err();
    assert!(
        err.to_string().contains("not an attestation service"),
        "{err}"
    );
    // A tampered payload byte breaks the signature.
    let good = a
        .result
        .sign(&b.pki.attest_key, &b.pki.attest_chain)
        .unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let payload = String::from_utf8(base64_url_decode(&parts[1])).unwrap();
    let tampered = payload.replace("\"affirming\"", "\"warning\"  ");
    parts[1] = base64_url_encode(tampered.as_bytes());
    let bad = parts.join(".");
    assert!(verify_result(bad.as_bytes(), std::slice::from_ref(&b.pki.root), now()).is_err());
}

pub fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
pub fn base64_url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn replayed_evidence_is_contraindicated_and_not_bound() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000003");
    let ev = evidence(&b, &d);
    assert_eq!(
        b.appraise(ev.as_bytes(), &Statuses::default(), now())
            .result
            .status,
        Status::Affirming
    );
    let again = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(again.result.status, Status::Contraindicated);
    assert!(has(&again.result.reasons, &Reason::NonceReplayed));
    assert!(!again.bound);
}

#[test]
fn expired_nonce() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000004");
    let nonce = b.challenge(&d.id, 60);
    let ev = sign_evidence(&claims(&d, &nonce), &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), at(NOW_SECS + 61));
    assert_eq!(a.result.status, Status::Contraindicated);
    assert!(has(
        &a.result.reasons,
        &Reason::NonceExpired {
            expired_at: NOW_SECS + 60
        }
    ));
}

#[test]
fn unknown_nonce() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000005");
    let nonce = smtrust_attest::Nonce::generate().unwrap();
    let ev = sign_evidence(&claims(&d, &nonce), &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert!(has(&a.result.reasons, &Reason::NonceUnknown));
}

#[test]
fn nonce_issued_to_another_device() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000006");
    let other = b.pki.device("ctw-0000000007");
    let nonce = b.challenge(&other.id, 300);
    let ev = sign_evidence(&claims(&d, &nonce), &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert!(has(&a.result.reasons, &Reason::NonceOtherDevice));
    assert!(!a.bound);
}

#[test]
fn unknown_firmware_version_warns() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000008");
    let nonce = b.challenge(&d.id, 300);
    let mut c = claims(&d, &nonce);
    c.firmware_version = "9.9.9".into();
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Warning);
    assert!(has(
        &a.result.reasons,
        &Reason::FirmwareUnknown {
            product_model: MODEL.into(),
            firmware_version: "9.9.9".into()
        }
    ));
    assert_eq!(a.result.trust_vector.executables, claim::UNRECOGNIZED);
}

#[test]
fn one_changed_measurement_each_kind() {
    for (name, component) in [
        ("kernel", "executables"),
        ("firmware", "executables"),
        ("config", "configuration"),
    ] {
        let b = Bench::new();
        let d = b.pki.device("ctw-0000000009");
        let nonce = b.challenge(&d.id, 300);
        let mut c = claims(&d, &nonce);
        let m = c.measurements.iter_mut().find(|m| m.name == name).unwrap();
        m.digest[0] ^= 1;
        let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
        let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
        assert_eq!(a.result.status, Status::Contraindicated, "{name}");
        assert_eq!(
            a.result.reasons,
            vec![Reason::MeasurementMismatch { name: name.into() }]
        );
        let tv = a.result.trust_vector;
        let value = if component == "configuration" {
            tv.configuration
        } else {
            tv.executables
        };
        assert_eq!(value, claim::CONTRAINDICATED, "{name}");
    }
}

#[test]
fn missing_and_extra_measurements_and_debug() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000010");
    let nonce = b.challenge(&d.id, 300);
    let mut c = claims(&d, &nonce);
    c.measurements.retain(|m| m.name != "bl2");
    c.measurements.push(smtrust_attest::Measurement::of_bytes(
        "extra",
        smtrust_attest::MeasurementKind::Configuration,
        b"x",
    ));
    c.debug = smtrust_attest::DebugState::Enabled;
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert!(has(
        &a.result.reasons,
        &Reason::MeasurementMissing { name: "bl2".into() }
    ));
    assert!(has(
        &a.result.reasons,
        &Reason::MeasurementUnexpected {
            name: "extra".into()
        }
    ));
    assert!(has(&a.result.reasons, &Reason::DebugEnabled));
}

#[test]
fn revoked_and_suspended_certificates() {
    for revoked in [true, false] {
        let b = Bench::new();
        let d = b.pki.device("ctw-0000000011");
        let ev = evidence(&b, &d);
        let serial = serial_of(&d.chain[0]);
        let st = if revoked {
            Statuses {
                revoked: vec![serial],
                ..Default::default()
            }
        } else {
            Statuses {
                suspended: vec![serial],
                ..Default::default()
            }
        };
        let a = b.appraise(ev.as_bytes(), &st, now());
        assert_eq!(a.result.status, Status::Contraindicated);
        let want = if revoked {
            Reason::CertificateRevoked
        } else {
            Reason::CertificateSuspended
        };
        assert_eq!(a.result.reasons, vec![want]);
        // Authenticated and fresh: stored, so the downgrade reaches gateways.
        assert!(a.bound);
    }
}

#[test]
fn expired_certificate() {
    let b = Bench::new();
    let d = b
        .pki
        .device_valid("ctw-0000000012", NOW_SECS - 10 * DAY, NOW_SECS - DAY);
    let ev = evidence(&b, &d);
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert_eq!(
        a.result.reasons,
        vec![Reason::CertificateExpired {
            index: 0,
            not_after: NOW_SECS - DAY
        }]
    );
    assert!(!a.bound);
}

#[test]
fn foreign_certificate() {
    let b = Bench::new();
    let foreign = Pki::new(); // same names, other keys
    let d = foreign.device("ctw-0000000013");
    let ev = evidence(&b, &d);
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert_eq!(
        a.result.reasons,
        vec![Reason::CertificateBadSignature { index: 1 }]
    );
    // A leaf alone, naming an issuer we do not know.
    let sk = Sm2SecretKey::generate().unwrap();
    let ca = sk.signing_key(CertId).unwrap();
    let leaf = issue(
        "CN=elsewhere",
        &ca,
        "CN=x",
        &sk,
        false,
        Some("urn:smtrust:device:ctw-0000000013".into()),
        NOW_SECS - DAY,
        NOW_SECS + DAY,
    );
    let d2 = Device {
        id: d.id.clone(),
        key: sk.signing_key(CertId).unwrap(),
        chain: vec![leaf],
    };
    let ev = evidence(&b, &d2);
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(
        a.result.reasons,
        vec![Reason::CertificateForeign { index: 0 }]
    );
}

#[test]
fn evidence_signed_by_another_key() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000014");
    let other = Sm2SecretKey::generate()
        .unwrap()
        .signing_key(CertId)
        .unwrap();
    let nonce = b.challenge(&d.id, 300);
    let ev = sign_evidence(&claims(&d, &nonce), &d.chain, &other).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert_eq!(a.result.reasons, vec![Reason::EvidenceSignatureInvalid]);
    assert_eq!(
        a.result.trust_vector.instance_identity,
        claim::CRYPTO_FAILED
    );
    assert!(!a.bound);
}

#[test]
fn device_id_not_in_certificate() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000015");
    let nonce = b.challenge(&d.id, 300);
    let mut c = claims(&d, &nonce);
    c.device_id = smtrust_attest::DeviceId::new("ctw-0000000999").unwrap();
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Contraindicated);
    assert_eq!(a.result.reasons, vec![Reason::DeviceIdMismatch]);
}

#[test]
fn tampered_truncated_oversized_malformed() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000016");
    let ev = evidence(&b, &d);
    // Tampered: change a claim inside the payload, keep valid base64 and JSON.
    let mut parts: Vec<String> = ev.split('.').map(str::to_string).collect();
    let payload = String::from_utf8(base64_url_decode(&parts[1])).unwrap();
    parts[1] = base64_url_encode(payload.replace("2.4.1", "2.4.2").as_bytes());
    let tampered = parts.join(".");
    let a = b.appraise(tampered.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.reasons, vec![Reason::EvidenceSignatureInvalid]);
    // Truncated, oversized, malformed: decode failures.
    let big = vec![b'a'; smtrust_attest::MAX_TOKEN + 1];
    for (what, bytes) in [
        ("truncated", &ev.as_bytes()[..ev.len() / 2]),
        ("oversized", big.as_slice()),
        ("malformed", b"{\"not\":\"a token\"}".as_slice()),
        ("empty", b"".as_slice()),
    ] {
        let a = b.appraise(bytes, &Statuses::default(), now());
        assert_eq!(a.result.status, Status::Contraindicated, "{what}");
        assert!(
            matches!(a.result.reasons.as_slice(), [Reason::Malformed { .. }]),
            "{what}: {:?}",
            a.result.reasons
        );
        assert!(!a.bound && a.result.device_id.is_none(), "{what}");
    }
    // The nonce of the tampered and truncated evidence was never consumed: the genuine one still affirms.
    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    assert_eq!(a.result.status, Status::Affirming, "{:?}", a.result.reasons);
}
