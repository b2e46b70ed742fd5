//! Certs-only CMS (RFC 5652 §5 SignedData with no signers, RFC 7030 §4.1.3 and §4.2.3), built with the `cms`
//! crate (0.3.0-rc.0 is the release on der 0.8 / x509-cert 0.3).

use cms::content_info::ContentInfo;
use der::{Decode, Encode};
use x509_cert::Certificate;

use crate::Error;

/// A DER `ContentInfo` holding a certs-only `SignedData` with these certificates (each DER).
pub fn certs_only(certs: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let parsed = certs
        .iter()
        .map(|c| Certificate::from_der(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ContentInfo::try_from(parsed)?.to_der()?)
}
