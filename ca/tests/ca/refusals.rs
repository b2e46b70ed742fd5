//! Every refusal: a typed error, and nothing stored.

use smtrust_ca::{CaService, Error, IssueRequest, Profiles, RequestError, SqlStore};
use smtrust_test_support::{Openssl, require};

use crate::fixture::{DISTID, Pki, make_csr, pki, s, signer};

async fn stored(pki: &Pki) -> usize {
    pki.svc.list("line7", 1000, 0).await.unwrap().len()
}

async fn refused(pki: &Pki, csr: Vec<u8>) -> RequestError {
    let before = stored(pki).await;
    let err = pki
        .svc
        .issue("line7", "device", IssueRequest::new(csr, None))
        .await
        .unwrap_err();
    assert_eq!(stored(pki).await, before, "a refusal stored something");
    match err {
        Error::Request(r) => r,
        other => panic!("expected a request error, got {other:?}"),
    }
}

fn openssl_csr(
    openssl: &smtrust_test_support::Tool,
    pki: &Pki,
    name: &str,
    keyalg: &[&str],
    extra: &[&str],
) -> Vec<u8> {
    let key = pki.path(&format!("{name}.key"));
    let mut a = vec!["genpkey"];
    a.extend_from_slice(keyalg);
    let ks = s(&key);
    a.extend(["-out", ks.as_str()]);
    openssl.run_ok(&a).unwrap();
    let csr = pki.path(&format!("{name}.csr"));
    let cs = s(&csr);
    let mut r = vec!["req", "-new", "-key", ks.as_str(), "-out", cs.as_str()];
    r.extend_from_slice(extra);
    openssl.run_ok(&r).unwrap();
    std::fs::read(&csr).unwrap()
}

#[tokio::test]
async fn empty_id_csr_is_refused_with_the_fix_and_accepted_by_a_legacy_profile() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let pki = pki().await;
    let csr = openssl_csr(
        &openssl,
        &pki,
        "e",
        &["-algorithm", "SM2"],
        &["-sm3", "-subj", "/CN=ctw-empty"],
    );
    let e = refused(&pki, csr.clone()).await;
    assert_eq!(e, RequestError::EmptyIdCsr);
    assert!(
        e.to_string().contains("-sigopt distid:1234567812345678"),
        "{e}"
    );

    // A profile for legacy lines accepts it.
    let profiles = Profiles::from_toml(
        "[profile.legacy]\nkind = 'device-identity'\naccept_empty_id_csr = true\n",
    )
    .unwrap();
    let svc = CaService::new(SqlStore::open_sqlite_memory().await.unwrap(), profiles);
    svc.add_issuer(pki.svc.issuer("line7").unwrap().as_ref().clone());
    let c = svc
        .issue("line7", "legacy", IssueRequest::new(csr, None))
        .await
        .unwrap();
    assert_eq!(c.device_id.unwrap().as_str(), "ctw-empty");
}

#[tokio::test]
async fn non_sm2_keys_are_refused() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let pki = pki().await;
    let p256 = openssl_csr(
        &openssl,
        &pki,
        "p",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["-subj", "/CN=ctw-p256"],
    );
    assert!(matches!(
        refused(&pki, p256).await,
        RequestError::SignatureAlgorithm { .. } | RequestError::NotSm2(_)
    ));
    let rsa = openssl_csr(
        &openssl,
        &pki,
        "r",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        &["-subj", "/CN=ctw-rsa"],
    );
    assert!(matches!(
        refused(&pki, rsa).await,
        RequestError::SignatureAlgorithm { .. } | RequestError::NotSm2(_)
    ));
}

#[tokio::test]
async fn extensions_the_profile_does_not_allow_are_refused() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let pki = pki().await;
    let csr = openssl_csr(
        &openssl,
        &pki,
        "bc",
        &["-algorithm", "SM2"],
        &[
            "-sm3",
            "-sigopt",
            DISTID,
            "-subj",
            "/CN=ctw-ca-wannabe",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    assert_eq!(
        refused(&pki, csr).await,
        RequestError::ExtensionNotAllowed {
            profile: "device".into(),
            oid: "2.5.29.19".into()
        }
    );
}

#[tokio::test]
async fn malformed_oversized_and_tampered_csrs_are_refused() {
    let pki = pki().await;
    assert!(matches!(
        refused(&pki, b"not a csr".to_vec()).await,
        RequestError::Malformed { .. }
    ));
    assert!(matches!(
        refused(&pki, vec![0x30; 20_000]).await,
        RequestError::TooLarge { .. }
    ));
    let (_, sk) = signer();
    let mut csr = make_csr(&sk, "CN=ctw-tamper");
    // Flip a byte inside the subject CN: the signature must no longer verify.
    let pos = csr.windows(5).position(|w| w == b"ctw-t").unwrap();
    csr[pos + 4] = b'T';
    assert_eq!(refused(&pki, csr).await, RequestError::BadCsrSignature);
    let mut trailing = make_csr(&sk, "CN=ctw-trail");
    trailing.push(0);
    assert!(matches!(
        refused(&pki, trailing).await,
        RequestError::Malformed { .. }
    ));
}

#[tokio::test]
async fn device_ids_outside_the_namespace_or_invalid_are_refused() {
    let pki = pki().await;
    let (_, sk) = signer();
    assert!(matches!(
        refused(&pki, make_csr(&sk, "CN=acme-1")).await,
        RequestError::OutsideNamespace { .. }
    ));
    assert!(matches!(
        refused(&pki, make_csr(&sk, "CN=ctw 1")).await,
        RequestError::InvalidDeviceId { .. }
    ));
    assert!(matches!(
        refused(&pki, make_csr(&sk, "O=no device id")).await,
        RequestError::MissingDeviceId(_)
    ));
}

#[tokio::test]
async fn a_second_active_certificate_for_a_device_is_refused_until_revoked() {
    let pki = pki().await;
    let (_, sk) = signer();
    let first = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, "CN=ctw-dup"), None),
        )
        .await
        .unwrap();
    match refused(&pki, make_csr(&sk, "CN=ctw-dup")).await {
        RequestError::DuplicateDevice { id, serial } => {
            assert_eq!(id, "ctw-dup");
            assert_eq!(serial, first.serial);
        }
        other => panic!("{other:?}"),
    }
    pki.svc
        .revoke(
            "line7",
            &first.serial,
            smtrust_ca::RevocationReason::Superseded,
        )
        .await
        .unwrap();
    pki.svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, "CN=ctw-dup"), None),
        )
        .await
        .unwrap();
}
