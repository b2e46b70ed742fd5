//! Reference values: import/export round trip, versioning with who and when, strict import.

use smtrust_attest::reference::{self, ReferenceValues};
use smtrust_attest::{MemoryReferenceStore, ReferenceStore};

use crate::pki::*;

#[tokio::test]
async fn versioned_registration_and_round_trip() {
    let store = MemoryReferenceStore::new();
    let v1 = store
        .register(&reference_values(), "secadmin-alice", now())
        .await
        .unwrap();
    let v2 = store
        .register(&reference_values(), "secadmin-bob", at(NOW_SECS + 10))
        .await
        .unwrap();
    let r1 = v1.registration.clone().unwrap();
    let r2 = v2.registration.clone().unwrap();
    assert_eq!(
        (r1.version, r1.registered_by.as_str(), r1.registered_at),
        (1, "secadmin-alice", NOW_SECS)
    );
    assert_eq!((r2.version, r2.registered_by.as_str()), (2, "secadmin-bob"));
    assert_eq!(store.latest(MODEL, FW).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.history(MODEL, FW).await.unwrap().len(), 2);
    let json = reference::export(&store.all_latest().await.unwrap()).unwrap();
    let back = reference::import(json.as_bytes()).unwrap();
    // Import drops the registration: the store assigns it.
    let expected: Vec<ReferenceValues> = vec![reference_values()];
    assert_eq!(back, expected);
}

#[test]
fn import_is_strict() {
    let json = reference::export(&[reference_values()]).unwrap();
    assert!(reference::import(json.replace("\"sm3\"", "\"sha256\"").as_bytes()).is_err());
    assert!(reference::import(json.replace("\"profile\"", "\"profil\"").as_bytes()).is_err());
    assert!(reference::import(json.replace("\"boot-stage\"", "\"bios\"").as_bytes()).is_err());
    assert!(reference::import(b"[").is_err());
    let dup = json.replace("\"kernel\"", "\"bl2\"");
    assert!(reference::import(dup.as_bytes()).is_err());
}
