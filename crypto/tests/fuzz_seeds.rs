//! The differential fuzz target's seeds (crypto/fuzz/seeds/sm2_differential) and random mutations of them run
//! through its entry points, so CI checks our SM2 arithmetic against the `sm2` crate without the fuzzer.

use std::path::PathBuf;

use proptest::prelude::*;
use smtrust_crypto::fuzzing::{keygen_differential, verify_differential};

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sm2_differential");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("seed directory")
        .map(|entry| {
            let path = entry.expect("seed entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("seed"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sm2_differential_seed_agrees() {
    let seeds = seeds();
    // Each flag and edit of verify_differential has a seed (see the seeds README); a lost file fails here.
    assert!(seeds.len() >= 16, "only {} seeds", seeds.len());
    for (name, data) in &seeds {
        eprintln!("seed {name}");
        verify_differential(data);
        keygen_differential(data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// A seed with a few bytes overwritten (the key, the ID, the edit position, the message) still agrees.
    #[test]
    fn mutated_seeds_agree(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let seeds = seeds();
        let mut data = seeds[pick.index(seeds.len())].1.clone();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        verify_differential(&data);
        keygen_differential(&data);
    }
}
