//! rustls verifiers for SM peers: the chain through [`Sm2ChainVerifier`], CertificateVerify as sm2sig_sm3 under
//! the RFC 8998 ID only.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, PeerIncompatible, PeerMisbehaved, SignatureScheme,
};
use smtrust_crypto::sm2::{CertId, Tls13Id};

use super::chain::{Purpose, Sm2ChainVerifier, cert_key};
use super::sm_schemes;
use crate::error::Refusal;
use crate::sign::SM2SIG_SM3;

/// Checks a CertificateVerify: sm2sig_sm3, the certificate's SM2 key, ID `TLSv1.3+GM+Cipher+Suite`.
fn verify_cv(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SM2SIG_SM3 {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let key = cert_key(cert)
        .ok_or_else(|| Refusal::BadCertificate("end entity key is not SM2".into()))?;
    let sig = dss.signature();
    let tls = key
        .verifying_key(Tls13Id)
        .map_err(|_| Refusal::BadSignature)?;
    if tls.verify_der(message, sig).is_ok() {
        return Ok(HandshakeSignatureValid::assertion());
    }
    // Name the common interop bug (libsmx and others sign CertificateVerify with the certificate ID).
    let wrong_id = key
        .verifying_key(CertId)
        .and_then(|v| v.verify_der(message, sig))
        .is_ok();
    Err(if wrong_id {
        Refusal::WrongDistinguishingId("CertificateVerify signed with the certificate ID")
    } else {
        Refusal::BadSignature
    }
    .into())
}

/// A client's verifier of SM servers.
#[derive(Debug)]
pub struct SmServerVerifier {
    chain: Sm2ChainVerifier,
}

impl SmServerVerifier {
    /// Verify servers with `chain` (roots + revocation hook).
    pub fn new(chain: Sm2ChainVerifier) -> Self {
        Self { chain }
    }
}

impl ServerCertVerifier for SmServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.chain
            .verify(
                end_entity,
                intermediates,
                Purpose::Server,
                Some(server_name),
                now,
            )
            .inspect_err(|r| tracing::debug!(refusal = %r, "server certificate refused"))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls12NotOfferedOrEnabled.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_cv(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        sm_schemes()
    }
}

/// A server's verifier of SM client certificates.
#[derive(Debug)]
pub struct SmClientVerifier {
    chain: Sm2ChainVerifier,
    mandatory: bool,
}

impl SmClientVerifier {
    /// Verify client certificates with `chain`; `mandatory` refuses clients that send none.
    pub fn new(chain: Sm2ChainVerifier, mandatory: bool) -> Self {
        Self { chain, mandatory }
    }
}

impl ClientCertVerifier for SmClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.roots().subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.chain
            .verify(end_entity, intermediates, Purpose::Client, None, now)
            .inspect_err(|r| tracing::debug!(refusal = %r, "client certificate refused"))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls12NotOfferedOrEnabled.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_cv(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        sm_schemes()
    }
}
