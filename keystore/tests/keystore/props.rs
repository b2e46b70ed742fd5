//! Property tests of the share and record decoders: never panic, accept exactly what was encoded.

use proptest::prelude::*;
use smtrust_keystore::fuzzing;

use super::{passphrase_store, record_path, shares_store};

fn fixtures() -> (Vec<u8>, Vec<u8>, Vec<String>) {
    static F: std::sync::OnceLock<(Vec<u8>, Vec<u8>, Vec<String>)> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (ks, ids) = passphrase_store(dir.path());
        let p = record_path(dir.path(), &ids[0]);
        let rec = std::fs::read(&p).unwrap();
        let master = std::fs::read(p.parent().unwrap().join("master")).unwrap();
        drop(ks);
        let dir2 = tempfile::tempdir().unwrap();
        let (_ks, _, shares) = shares_store(dir2.path());
        (rec, master, shares)
    })
    .clone()
}

#[test]
fn real_files_round_trip_exactly() {
    let (rec, master, shares) = fixtures();
    assert_eq!(fuzzing::decode_record(&rec).as_deref(), Some(&rec[..]));
    assert_eq!(
        fuzzing::decode_master(&master).as_deref(),
        Some(&master[..])
    );
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(fuzzing::parse_share(s), Some(u8::try_from(i + 1).unwrap()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn record_decoder_total(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some(enc) = fuzzing::decode_record(&data) {
            prop_assert_eq!(enc, data);
        }
    }

    #[test]
    fn record_mutations_never_panic_and_round_trip(pos in any::<prop::sample::Index>(), b in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (rec, master, _) = fixtures();
        let mut m = rec.clone();
        let i = pos.index(m.len());
        m[i] = b;
        if let Some(enc) = fuzzing::decode_record(&m) { prop_assert_eq!(&enc, &m); }
        let c = cut.index(rec.len());
        prop_assert!(fuzzing::decode_record(&rec[..c]).is_none(), "a truncated record must not decode");
        let mut mm = master.clone();
        let j = pos.index(mm.len());
        mm[j] = b;
        if let Some(enc) = fuzzing::decode_master(&mm) { prop_assert_eq!(&enc, &mm); }
    }

    #[test]
    fn share_parser_total(s in "\\PC{0,300}") {
        let _ = fuzzing::parse_share(&s);
    }

    #[test]
    fn share_single_edits_are_caught(pos in any::<prop::sample::Index>(), c in proptest::char::range('0', 'z')) {
        let (_, _, shares) = fixtures();
        let s = &shares[0];
        let i = pos.index(s.len());
        let mut edited: Vec<char> = s.chars().collect();
        let old = edited[i];
        edited[i] = c;
        let edited: String = edited.into_iter().collect();
        let same = old.eq_ignore_ascii_case(&c);
        prop_assert_eq!(fuzzing::parse_share(&edited).is_some(), same, "{}", edited);
    }
}
