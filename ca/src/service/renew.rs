//! Renewal: a new certificate replaces a device's current one, recorded and superseding it in one store
//! transaction, so a failure at any step leaves the device its current certificate.

use std::sync::Arc;

use super::{CaService, IssueRequest, now, unix};
use crate::authority::IssuedCert;
use crate::csr;
use crate::revocation::CertStatus;
use crate::serial::Serial;
use crate::store::Store;
use crate::{Error, RequestError, StateError, StoreError};

impl<S: Store> CaService<S> {
    /// Issue a certificate for the device of `current` that replaces it: the CSR is checked and the new
    /// certificate signed first, then [`Store::record_replacing`] records it and revokes `current` (reason
    /// superseded) in one transaction; then the revocation event is sent and the delta CRL follows, as after
    /// [`CaService::revoke`]. If anything fails before the commit, `current` stays active and nothing new is
    /// recorded (a reserved serial is never reused). `current` may belong to another issuer (a bootstrap
    /// certificate), must be active or suspended, and must name the same device ID as the request.
    pub async fn renew(
        &self,
        issuer: &str,
        profile: &str,
        req: IssueRequest,
        current: &Serial,
    ) -> Result<IssuedCert, Error> {
        let iss = self.issuer(issuer)?;
        let prof = Arc::new(self.profile(profile)?.clone());
        let store = &self.inner.store;
        let old = store
            .get(current)
            .await?
            .ok_or(StateError::UnknownSerial(*current))?;
        match old.status {
            CertStatus::Active | CertStatus::Hold { .. } => {}
            CertStatus::Revoked { .. } => return Err(StateError::AlreadyRevoked(*current).into()),
            CertStatus::Reserved => return Err(StateError::UnknownSerial(*current).into()),
        }
        let iss2 = iss.clone();
        let pc = self
            .inner
            .cpu
            .map(vec![req], move |r| {
                let csr = csr::parse_and_verify(&r.csr)?;
                iss2.prepare(&prof, &csr, r.device_id.as_ref(), &r.dns_names)
            })
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Corrupt("empty result").into()))?;
        let id = pc
            .device_id
            .clone()
            .ok_or_else(|| RequestError::MissingDeviceId(profile.to_owned()))?;
        if old.device_id.as_deref() != Some(id.as_str()) {
            return Err(RequestError::DeviceIdMismatch {
                requested: old.device_id.unwrap_or_default(),
                in_csr: id.to_string(),
            }
            .into());
        }
        // The one certificate being replaced does not count as a duplicate.
        if let Some(serial) = store.active_serial_for_device(issuer, id.as_str()).await?
            && serial != *current
        {
            return Err(RequestError::DuplicateDevice {
                id: id.to_string(),
                serial,
            }
            .into());
        }
        let t = now();
        let serial = self
            .reserve(iss.label(), 1, unix(t))
            .await?
            .pop()
            .ok_or(StoreError::Corrupt("serial count"))?;
        let cert = self
            .inner
            .cpu
            .map(vec![(pc, serial)], move |(pc, s)| iss.sign(&pc, s, t))
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Corrupt("empty result").into()))?;
        let ev = match store.record_replacing(&cert, current, unix(t)).await {
            Err(Error::Request(RequestError::DuplicateDevice { id, serial })) => {
                // Another certificate became active meanwhile: name it.
                let active = store
                    .active_serial_for_device(issuer, &id)
                    .await?
                    .unwrap_or(serial);
                return Err(RequestError::DuplicateDevice { id, serial: active }.into());
            }
            r => r?,
        };
        tracing::info!(serial = %cert.serial, replaces = %current, issuer, profile, "renewed");
        self.ocsp_issued(issuer, [cert.serial]);
        // The new certificate is committed: a failed delta CRL regeneration must not hide it from the caller
        // (the delta stays dirty and is regenerated before it is next served).
        if let Err(e) = self.publish(&ev).await {
            tracing::error!(issuer = %ev.issuer, error = %e, "delta CRL after renewal failed");
        }
        Ok(cert)
    }
}
