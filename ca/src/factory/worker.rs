//! The signing workers: one chunk of pending devices on every core (CSR verify or key generation, sign,
//! key protection, staged file), timed per stage.

use smtrust_crypto::sm2::Sm2SecretKey;

use super::FactoryError;
use super::issuer::Issuer;
use super::journal::{Outcome, Pending};
use super::keys::RunKeys;
use super::output::{self, OutDir, Staged};
use super::run::{Mode, Params};
use super::timing::{Clock, Stage};

/// What the signing threads share.
pub(crate) struct Worker<'a> {
    pub(crate) issuer: &'a Issuer,
    pub(crate) params: &'a Params,
    pub(crate) keys: Option<&'a RunKeys<'a>>,
    pub(crate) out: &'a OutDir,
    pub(crate) clock: &'a Clock,
    pub(crate) threads: usize,
}

impl Worker<'_> {
    /// Issue one chunk on `threads` threads; outcomes in chunk order.
    pub(crate) fn issue_chunk(
        &self,
        chunk: &[Pending],
    ) -> Result<(Vec<Outcome>, Vec<Staged>), FactoryError> {
        let per = chunk.len().div_ceil(self.threads).max(1);
        let results: Vec<WorkerResult> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|p| self.issue_one(p))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(FactoryError::Issuer("worker thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut staged = Vec::with_capacity(chunk.len());
        for r in results {
            for (o, st) in r? {
                outcomes.push(o);
                staged.extend(st);
            }
        }
        Ok((outcomes, staged))
    }

    fn issue_one(&self, p: &Pending) -> Result<(Outcome, Option<Staged>), FactoryError> {
        let serial = hex::decode(&p.serial)
            .map_err(|_| FactoryError::Issuer("journal serial is not hex".into()))?;
        let now = self.params.now;
        match (self.params.mode, self.keys) {
            (Mode::Csr, _) => {
                let csr = self.clock.time(Stage::CsrVerify, || {
                    crate::csr::parse_and_verify(&p.payload)
                });
                let outcome = match csr {
                    Err(e) => Outcome::Refused {
                        seq: p.seq,
                        reason: e.to_string(),
                    },
                    Ok(csr) => match self.clock.time(Stage::Sign, || {
                        self.issuer.issue(&p.device_id, &csr, &serial, now)
                    })? {
                        Ok(cert) => Outcome::Issued {
                            seq: p.seq,
                            serial: p.serial.clone(),
                            cert,
                        },
                        Err(reason) => Outcome::Refused { seq: p.seq, reason },
                    },
                };
                Ok((outcome, None))
            }
            (Mode::KeyGen, Some(k)) => {
                let sk = self.clock.time(Stage::KeyGen, Sm2SecretKey::generate)?;
                let cert = self.clock.time(Stage::Sign, || {
                    let req = super::issuer::generated_key_request(&p.device_id, &sk)?;
                    self.issuer.issue(&p.device_id, &req, &serial, now)
                })?;
                let cert = match cert {
                    Ok(cert) => cert,
                    Err(reason) => return Ok((Outcome::Refused { seq: p.seq, reason }, None)),
                };
                let key_pem = self
                    .clock
                    .time(Stage::Protect, || k.protect(&p.device_id, &sk))?;
                let staged = self.clock.time(Stage::FileWrite, || {
                    let text = output::bundle_text(&key_pem, &cert, self.issuer.chain_pem())?;
                    self.out
                        .stage(&self.out.bundle_path(&p.device_id), text.as_bytes())
                })?;
                Ok((
                    Outcome::Issued {
                        seq: p.seq,
                        serial: p.serial.clone(),
                        cert,
                    },
                    Some(staged),
                ))
            }
            (Mode::KeyGen, None) => Err(FactoryError::Issuer(
                "key-generation mode needs a key protection".into(),
            )),
        }
    }
}

/// What one signing thread returns for its part of a chunk.
type WorkerResult = Result<Vec<(Outcome, Option<Staged>)>, FactoryError>;
