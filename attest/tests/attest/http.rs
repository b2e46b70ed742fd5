//! The HTTP API in process (`tower::ServiceExt::oneshot`): the device is the `VerifiedDevice` extension the
//! server inserts from the TLS client certificate; challenges bound to it, other devices' evidence refused.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use smtrust_attest::device::sign_evidence;
use smtrust_attest::http::{APPLICATION_JOSE, VerifiedDevice, router_with_clock};
use smtrust_attest::{
    AppraisalConfig, Appraiser, AttestationService, MemoryNonceStore, MemoryReferenceStore,
    MemoryResultStore, Nonce, Reason, ServiceConfig, Status, verify_result,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signer};
use tower::ServiceExt;

use crate::pki::*;

type Svc = AttestationService<MemoryNonceStore, MemoryReferenceStore, MemoryResultStore>;

struct Fixture {
    pki: Pki,
    ca: Vec<Vec<u8>>,
    app: axum::Router,
}

fn fixture() -> Fixture {
    let pki = Pki::new();
    let att_sk = Sm2SecretKey::generate().unwrap();
    let att_cert = issue(
        INT_DN,
        &pki.intermediate_key,
        "CN=smtrust attestation",
        &att_sk,
        false,
        Some(smtrust_attest::ATTESTATION_SERVICE_URI.to_string()),
        NOW_SECS - DAY,
        NOW_SECS + 365 * DAY,
    );
    let signer: Arc<dyn Sm2Signer<CertId>> = Arc::new(att_sk.signing_key(CertId).unwrap());
    let refs = MemoryReferenceStore::new();
    refs.register_now(&reference_values(), "secadmin-alice", now())
        .unwrap();
    let service: Svc = AttestationService::new(
        Appraiser::new(pki.anchors(), AppraisalConfig::default()),
        MemoryNonceStore::new(),
        refs,
        MemoryResultStore::new(),
        Arc::new(Statuses::default()),
        signer,
        vec![att_cert, pki.intermediate.clone()],
        ServiceConfig::default(),
    );
    let ca = vec![pki.root.clone(), pki.intermediate.clone()];
    Fixture {
        app: router_with_clock(Arc::new(service), now),
        pki,
        ca,
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    who: Option<&Device>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    if let Some(d) = who {
        req.extensions_mut().insert(VerifiedDevice(d.id.clone()));
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

async fn challenge(app: &axum::Router, who: &Device) -> Nonce {
    let r = call(app, "POST", "/attest/v1/challenge", Some(who), None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["expires_at"].as_u64(), Some(NOW_SECS + 300));
    let bytes = URL_SAFE_NO_PAD
        .decode(v["nonce"].as_str().unwrap())
        .unwrap();
    Nonce::from_slice(&bytes).unwrap()
}

fn evidence_for(device: &Device, nonce: &Nonce) -> Vec<u8> {
    sign_evidence(&claims(device, nonce), &device.chain, &device.key)
        .unwrap()
        .into_bytes()
}

async fn submit(app: &axum::Router, who: &Device, evidence: Vec<u8>) -> Reply {
    call(
        app,
        "POST",
        "/attest/v1/evidence",
        Some(who),
        Some(APPLICATION_JOSE),
        evidence,
    )
    .await
}

#[tokio::test]
async fn happy_path_challenge_evidence_and_latest_result() {
    let f = fixture();
    let dev = f.pki.device("ctw-0000000101");
    let nonce = challenge(&f.app, &dev).await;
    let r = submit(&f.app, &dev, evidence_for(&dev, &nonce)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, APPLICATION_JOSE);
    let result = verify_result(&r.body, &f.ca, now()).unwrap();
    assert_eq!(result.status, Status::Affirming, "{:?}", result.reasons);
    assert_eq!(result.device_id.as_ref(), Some(&dev.id));

    let uri = format!("/attest/v1/result/{}", dev.id.as_str());
    let latest = call(&f.app, "GET", &uri, Some(&dev), None, vec![]).await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.body, r.body);

    // Replaying the same evidence: still 200 with a signed result, but not affirming.
    let again = submit(&f.app, &dev, evidence_for(&dev, &nonce)).await;
    assert_eq!(again.status, StatusCode::OK);
    let replay = verify_result(&again.body, &f.ca, now()).unwrap();
    assert_eq!(replay.status, Status::Contraindicated);
    assert!(replay.reasons.contains(&Reason::NonceReplayed));
}

#[tokio::test]
async fn requests_without_an_authenticated_device_get_401() {
    let f = fixture();
    let dev = f.pki.device("ctw-0000000102");
    let nonce = Nonce::generate().unwrap();
    for (method, uri, body) in [
        ("POST", "/attest/v1/challenge", vec![]),
        ("POST", "/attest/v1/evidence", evidence_for(&dev, &nonce)),
        ("GET", "/attest/v1/result/ctw-0000000102", vec![]),
    ] {
        let r = call(&f.app, method, uri, None, Some(APPLICATION_JOSE), body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "unauthenticated");
    }
}

#[tokio::test]
async fn evidence_of_another_device_is_refused_and_its_nonce_left_unused() {
    let f = fixture();
    let (a, b) = (
        f.pki.device("ctw-0000000103"),
        f.pki.device("ctw-0000000104"),
    );
    let nonce_b = challenge(&f.app, &b).await;
    // A's connection sends B's (valid, signed) evidence.
    let r = submit(&f.app, &a, evidence_for(&b, &nonce_b)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"], "other_device");
    // Nothing was consumed or stored: B can still use its nonce.
    let uri = format!("/attest/v1/result/{}", b.id.as_str());
    let none = call(&f.app, "GET", &uri, Some(&b), None, vec![]).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let ok = submit(&f.app, &b, evidence_for(&b, &nonce_b)).await;
    let result = verify_result(&ok.body, &f.ca, now()).unwrap();
    assert_eq!(result.status, Status::Affirming, "{:?}", result.reasons);
}

#[tokio::test]
async fn a_challenge_is_bound_to_the_device_that_asked() {
    let f = fixture();
    let (a, b) = (
        f.pki.device("ctw-0000000105"),
        f.pki.device("ctw-0000000106"),
    );
    let nonce_a = challenge(&f.app, &a).await;
    // B signs its own evidence with A's nonce, on its own connection.
    let r = submit(&f.app, &b, evidence_for(&b, &nonce_a)).await;
    assert_eq!(r.status, StatusCode::OK);
    let result = verify_result(&r.body, &f.ca, now()).unwrap();
    assert_eq!(result.status, Status::Contraindicated);
    assert!(result.reasons.contains(&Reason::NonceOtherDevice));
    let uri = format!("/attest/v1/result/{}", b.id.as_str());
    let latest = call(&f.app, "GET", &uri, Some(&b), None, vec![]).await;
    assert_eq!(
        latest.status,
        StatusCode::NOT_FOUND,
        "unbound results are not stored"
    );
}

#[tokio::test]
async fn malformed_input_gets_4xx_and_results_are_private() {
    let f = fixture();
    let dev = f.pki.device("ctw-0000000107");
    let other = f.pki.device("ctw-0000000108");
    for body in [
        b"".to_vec(),
        b"not.a.jws".to_vec(),
        b"a.b".to_vec(),
        vec![b'x'; 70_000],
    ] {
        let r = submit(&f.app, &dev, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "malformed_evidence");
    }
    let nonce = challenge(&f.app, &dev).await;
    let wrong_type = call(
        &f.app,
        "POST",
        "/attest/v1/evidence",
        Some(&dev),
        Some("application/json"),
        evidence_for(&dev, &nonce),
    )
    .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let uri = format!("/attest/v1/result/{}", other.id.as_str());
    let r = call(&f.app, "GET", &uri, Some(&dev), None, vec![]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &f.app,
        "GET",
        "/attest/v1/result/bad%20id",
        Some(&dev),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_device_helper_turns_a_challenge_body_into_accepted_evidence() {
    use smtrust_attest::DebugState;
    use smtrust_attest::device::{DeviceState, evidence_for_challenge, parse_challenge};
    let f = fixture();
    let dev = f.pki.device("ctw-0000000109");
    let r = call(
        &f.app,
        "POST",
        "/attest/v1/challenge",
        Some(&dev),
        None,
        vec![],
    )
    .await;
    let state = DeviceState {
        device_id: dev.id.clone(),
        product_model: MODEL.into(),
        firmware_version: FW.into(),
        debug: DebugState::DisabledPermanently,
        measurements: measurements(),
    };
    let ev = evidence_for_challenge(&r.body, &state, NOW_SECS, &dev.chain, &dev.key).unwrap();
    let res = submit(&f.app, &dev, ev.into_bytes()).await;
    let result = verify_result(&res.body, &f.ca, now()).unwrap();
    assert_eq!(result.status, Status::Affirming, "{:?}", result.reasons);

    assert!(
        parse_challenge(br#"{"nonce":"AAAA","expires_at":1}"#).is_err(),
        "short nonce"
    );
    let extra = format!(
        r#"{{"nonce":"{}","expires_at":1,"x":0}}"#,
        URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    assert!(parse_challenge(extra.as_bytes()).is_err(), "unknown member");
    assert!(parse_challenge(&vec![b' '; 2000]).is_err(), "oversized");
    let ok = format!(
        r#"{{"nonce":"{}","expires_at":9}}"#,
        URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    assert_eq!(parse_challenge(ok.as_bytes()).unwrap().expires_at, 9);
}
