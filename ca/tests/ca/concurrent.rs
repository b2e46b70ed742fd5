//! Concurrent issuance shares store round trips (group commit) without mixing up callers: each caller gets
//! its own certificate, a device asked for twice at once gets exactly one, and a batch larger than one
//! pipeline chunk keeps its order and refuses a device repeated across chunks.

use smtrust_ca::{CertStatus, Error, IssueRequest, RequestError, SqlStore};
use smtrust_test_support::{Postgres, require};

use crate::fixture::{Pki, make_csr, pki, pki_with, signer};

fn request(id: &str) -> IssueRequest {
    let (_, sk) = signer();
    IssueRequest::new(make_csr(&sk, &format!("CN={id}")), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issue_calls_each_get_their_certificate_and_a_doubled_device_gets_one() {
    const N: usize = 48;
    let pki = pki().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        // Requests 0 and 1 are for the same device.
        let id = if i == 1 {
            "ctw-conc-0".to_owned()
        } else {
            format!("ctw-conc-{i}")
        };
        let svc = pki.svc.clone();
        let req = request(&id);
        set.spawn(async move { (id, svc.issue("line7", "device", req).await) });
    }
    let (mut issued, mut refused) = (Vec::new(), Vec::new());
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            (id, Ok(c)) => issued.push((id, c)),
            (id, Err(e)) => refused.push((id, e)),
        }
    }
    assert_eq!(issued.len(), N - 1);
    let [(id, err)] = refused.as_slice() else {
        panic!("one refusal expected: {refused:?}")
    };
    assert_eq!(id, "ctw-conc-0");
    assert!(
        matches!(err, Error::Request(RequestError::DuplicateDevice { .. })),
        "{err}"
    );
    for (id, c) in &issued {
        assert_eq!(c.device_id.as_ref().unwrap().as_str(), id);
        let rec = pki.svc.show(&c.serial).await.unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Active);
        assert_eq!(rec.der.as_deref(), Some(c.der.as_slice()));
        assert_eq!(rec.device_id.as_deref(), Some(id.as_str()));
    }
}

async fn pipelined_batch(pki: &Pki, tag: &str) {
    const N: usize = 150; // three pipeline chunks
    let mut ids: Vec<String> = (0..N).map(|i| format!("ctw-{tag}-{i}")).collect();
    ids[140] = ids[3].clone();
    let reqs = ids.iter().map(|id| request(id)).collect();
    let out = pki.svc.issue_batch("line7", "device", reqs).await.unwrap();
    assert_eq!(out.len(), N);
    let mut refused = 0;
    for (i, (id, r)) in ids.iter().zip(&out).enumerate() {
        match r {
            Ok(c) => {
                assert_eq!(c.device_id.as_ref().unwrap().as_str(), id, "request {i}");
                let rec = pki.svc.show(&c.serial).await.unwrap().unwrap();
                assert_eq!(rec.status, CertStatus::Active);
                assert_eq!(rec.der.as_deref(), Some(c.der.as_slice()));
            }
            Err(Error::Request(RequestError::DuplicateDevice { id: d, .. })) => {
                assert_eq!(d, &ids[3]);
                refused += 1;
            }
            Err(e) => panic!("request {i}: {e}"),
        }
    }
    assert_eq!(refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_keeps_request_order_and_refuses_a_device_repeated_across_chunks() {
    pipelined_batch(&pki().await, "pipe").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_on_postgres_records_every_row() {
    let Some(url) = require(Postgres) else { return };
    let store = SqlStore::open_postgres(&url.0, 4).await.unwrap();
    let pki = pki_with(store, "http://127.0.0.1:1").await;
    // A persistent database keeps earlier runs' active devices: a fresh tag per run.
    let tag = smtrust_crypto::rng::bytes::<6>()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    pipelined_batch(&pki, &format!("pg{tag}")).await;
}
