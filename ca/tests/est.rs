//! EST (RFC 7030) server tests: OpenSSL parses the responses, an OpenSSL-made CSR enrolls, Tongsuo fetches
//! `cacerts` over TLS 1.3-SM, and every refusal gets its status and message with nothing issued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

#[allow(dead_code, unreachable_pub)]
#[path = "ca/fixture.rs"]
mod fixture;
#[path = "est/peers.rs"]
mod peers;
#[path = "est/refusals.rs"]
mod refusals;
#[path = "est/renewal.rs"]
mod renewal;
#[path = "est/tokens.rs"]
mod tokens;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, header};
use base64::Engine;
use smtrust_ca::est::{EstConfig, EstState, RateLimit};
use smtrust_ca::{DeviceId, SqlStore};

/// A PKI (root → line7, namespace `ctw-`) with an EST state over it.
pub(crate) async fn est_with(limit: RateLimit) -> (fixture::Pki, EstState<SqlStore>) {
    let pki = fixture::pki().await;
    let mut cfg = EstConfig::new("line7");
    cfg.rate_limit = limit;
    let st = EstState::new(pki.svc.clone(), cfg).unwrap();
    (pki, st)
}

pub(crate) async fn est() -> (fixture::Pki, EstState<SqlStore>) {
    est_with(RateLimit::new(100, Duration::from_millis(10))).await
}

/// A request through the router, in process (no TLS: the caller adds a `Peer` extension if it wants one).
pub(crate) async fn call(
    st: &EstState<SqlStore>,
    req: Request<Body>,
) -> (u16, HeaderMapText, Vec<u8>) {
    let mut app = smtrust_ca::est::router(st.clone());
    let resp: Response<Body> = tower_service::Service::call(&mut app, req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = HeaderMapText(resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// Response headers with a text getter.
pub(crate) struct HeaderMapText(pub axum::http::HeaderMap);

impl HeaderMapText {
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

pub(crate) fn basic(device: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{device}:{token}"))
    )
}

/// POST a DER CSR (base64) to `op` with optional Basic credentials.
pub(crate) fn post(op: &str, csr_der: &[u8], auth: Option<&str>) -> Request<Body> {
    let mut b = Request::post(format!("/.well-known/est/{op}"))
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .header("content-transfer-encoding", "base64");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(smtrust_ca::est::encode_base64(csr_der)))
        .unwrap()
}

pub(crate) fn get(op: &str) -> Request<Body> {
    Request::get(format!("/.well-known/est/{op}"))
        .body(Body::empty())
        .unwrap()
}

pub(crate) async fn token(st: &EstState<SqlStore>, device: &str) -> String {
    st.mint_token(
        None,
        &DeviceId::new(device).unwrap(),
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    .as_str()
    .to_owned()
}

/// Certificates recorded by line7.
pub(crate) async fn issued(pki: &fixture::Pki) -> usize {
    pki.svc.list("line7", 1000, 0).await.unwrap().len()
}

/// The first certificate (DER) of a base64 certs-only response.
pub(crate) fn leaf_of(body: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let der = smtrust_ca::est::decode_base64(body).unwrap();
    let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    match sd.certificates.unwrap().0.iter().next().unwrap() {
        cms::cert::CertificateChoices::Certificate(c) => c.to_der().unwrap(),
        other => panic!("{other:?}"),
    }
}
