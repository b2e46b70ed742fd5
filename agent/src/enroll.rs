//! Enrollment and renewal over EST.

use std::future::Future;
use std::time::{Duration, SystemTime};

use base64::Engine;
use smtrust_crypto::sm2::Sm2SecretKey;
use zeroize::Zeroizing;

use crate::est::{Answer, response};
use crate::{Agent, Error, EstServer, Status, csr, home};

/// Longest sleep of the renewal loop between checks (the clock may jump; the certificate may be replaced).
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Wait after a failed renewal before the next try.
const RETRY: Duration = Duration::from_secs(60);

impl Agent {
    /// Enroll with a one-time token: make a key if none exists, send a CSR for `device_id` with the token as
    /// HTTP Basic credentials, store the certificate and the CA chain.
    pub async fn enroll_with_token(
        &self,
        server: &EstServer,
        device_id: &str,
        token: &str,
    ) -> Result<Status, Error> {
        self.ensure_key()?;
        let csr = self.csr(device_id)?;
        let creds = Zeroizing::new(format!("{device_id}:{token}"));
        let auth = Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds.as_bytes())
        ));
        let a = server
            .call(None, "simpleenroll", Some(auth.as_str()), Some(&csr))
            .await?;
        self.accept(server, &a, None).await
    }

    /// Enroll with the factory bootstrap certificate as TLS client certificate (see
    /// [`Agent::install_bootstrap`]); the CA retires the bootstrap certificate when it issues.
    pub async fn enroll_with_bootstrap(
        &self,
        server: &EstServer,
        device_id: &str,
    ) -> Result<Status, Error> {
        self.ensure_key()?;
        let csr = self.csr(device_id)?;
        let creds = self.bootstrap_credentials()?;
        let a = server
            .call(Some(&creds), "simpleenroll", None, Some(&csr))
            .await?;
        self.accept(server, &a, None).await
    }

    /// Re-enroll with the current certificate, under a new key (the old key signs the TLS handshake, the new
    /// one the CSR). The new key replaces the old one only once the new certificate is received.
    pub async fn renew(&self, server: &EstServer) -> Result<Status, Error> {
        let creds = self.credentials()?;
        let device_id = self.device_id()?;
        let new_key = Sm2SecretKey::generate()?;
        let csr = csr::build(&new_key, &device_id)?;
        let a = server
            .call(Some(&creds), "simplereenroll", None, Some(&csr))
            .await?;
        self.accept(server, &a, Some(&new_key)).await
    }

    /// Renew if two thirds of the certificate's lifetime have passed at `now`; `None` if not due.
    pub async fn renew_if_due(
        &self,
        server: &EstServer,
        now: SystemTime,
    ) -> Result<Option<Status>, Error> {
        let due = self
            .status()?
            .certificate
            .is_some_and(|c| c.renewal_due(now));
        if due {
            self.renew(server).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Run as a service: renew whenever renewal is due, until `shutdown` completes. Failed attempts are
    /// retried every minute (logged at `warn`).
    pub async fn run_renewal<F: Future<Output = ()>>(
        &self,
        server: &EstServer,
        shutdown: F,
    ) -> Result<(), Error> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let now = wall_clock();
            let wait = match self.status()?.certificate {
                Some(c) if c.renewal_due(now) => match self.renew(server).await {
                    Ok(s) => {
                        tracing::info!(serial = ?s.certificate.map(|c| c.serial), "renewed");
                        Duration::ZERO
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewal failed; retrying");
                        RETRY
                    }
                },
                Some(c) => Duration::from_secs(c.renew_at.saturating_sub(unix(now))),
                None => {
                    return Err(Error::Missing {
                        what: "device certificate (cert.pem)",
                        dir: self.dir.clone(),
                        hint: "enroll first",
                    });
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
            }
        }
    }

    /// The device ID: from `device-id`, else from the certificate.
    pub(crate) fn device_id(&self) -> Result<String, Error> {
        if let Some(b) = home::read(&self.dir, home::DEVICE_ID)? {
            return Ok(String::from_utf8_lossy(&b).trim().to_owned());
        }
        let cert = self.certificate()?.ok_or(Error::Missing {
            what: "device ID",
            dir: self.dir.clone(),
            hint: "enroll first",
        })?;
        let id = smtrust_tls::DeviceIdentity::from_certificate(&cert.into())?;
        Ok(id.device_id.as_str().to_owned())
    }

    /// Check and store an enrollment answer, then the CA chain.
    async fn accept(
        &self,
        server: &EstServer,
        a: &Answer,
        new_key: Option<&Sm2SecretKey>,
    ) -> Result<Status, Error> {
        if !a
            .content_type
            .to_ascii_lowercase()
            .starts_with("application/pkcs7-mime")
        {
            return Err(Error::Response(format!(
                "content type {:?} is not application/pkcs7-mime",
                a.content_type
            )));
        }
        let certs = response::certs_only(&a.body)?;
        let leaf = certs
            .first()
            .ok_or_else(|| Error::Response("no certificate".into()))?;
        let cert = <x509_cert::Certificate as der::Decode>::from_der(leaf)?;
        let key = match new_key {
            Some(k) => crate::matches(&cert, k)?,
            None => crate::matches(&cert, &self.key()?)?,
        };
        if !key {
            return Err(Error::KeyMismatch);
        }
        let chain = server.cacerts().await?;
        if let Some(k) = new_key {
            self.store_key(k)?;
        }
        home::write(
            &self.dir,
            home::CERT,
            crate::to_pem(&certs)?.as_bytes(),
            false,
        )?;
        home::write(
            &self.dir,
            home::CHAIN,
            crate::to_pem(&chain)?.as_bytes(),
            false,
        )?;
        self.status()
    }
}

#[allow(clippy::disallowed_methods)] // the agent's service loop is the edge that reads the clock
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
