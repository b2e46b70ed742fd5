//! SM3 (GB/T 32905) as the TLS 1.3 transcript hash of the RFC 8998 suites.

use digest::Digest;
use rustls::crypto::hash::{Context, Hash, HashAlgorithm, Output};
use smtrust_crypto::sm3::{DIGEST_LEN, Sm3};

/// rustls compares hash algorithms only for "same hash?" decisions (resumption); 7 is unassigned in the TLS
/// HashAlgorithm registry and stands for SM3 here.
pub(crate) const SM3_ALGORITHM: HashAlgorithm = HashAlgorithm::Unknown(7);

/// SM3 for rustls.
#[derive(Debug)]
pub(crate) struct Sm3Hash;

pub(crate) static SM3: Sm3Hash = Sm3Hash;

impl Hash for Sm3Hash {
    fn start(&self) -> Box<dyn Context> {
        Box::new(Sm3Context(Sm3::new()))
    }

    fn hash(&self, data: &[u8]) -> Output {
        Output::new(&smtrust_crypto::sm3::digest(data))
    }

    fn output_len(&self) -> usize {
        DIGEST_LEN
    }

    fn algorithm(&self) -> HashAlgorithm {
        SM3_ALGORITHM
    }
}

struct Sm3Context(Sm3);

impl Context for Sm3Context {
    fn fork_finish(&self) -> Output {
        Output::new(&self.0.clone().finalize())
    }

    fn fork(&self) -> Box<dyn Context> {
        Box::new(Sm3Context(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> Output {
        Output::new(&self.0.finalize())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}
