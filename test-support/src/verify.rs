//! `openssl verify` one link of an SM2 chain at a time.
//!
//! OpenSSL applies `-vfyopt distid:…` to one signature per run (openssl issue 23471), so a chain is checked
//! link by link with `-partial_chain`: the certificate against its issuer alone.

use std::fs;

use crate::{Error, GMT_DEFAULT_ID, Tool, Verdict};

/// `openssl verify -vfyopt distid:1234567812345678 -partial_chain -x509_strict [-purpose P] -CAfile issuer cert`.
///
/// `issuer` and `cert` are certificates, PEM or DER (written to a scratch directory as PEM). Verified when the
/// tool exits 0 and prints `: OK`; otherwise its output is the [`Verdict::Rejected`] reason.
pub fn verify_link(
    openssl: &Tool,
    issuer: &[u8],
    cert: &[u8],
    purpose: Option<&str>,
) -> Result<Verdict, Error> {
    let dir = tempfile::tempdir()?;
    let issuer_file = dir.path().join("issuer.pem");
    let cert_file = dir.path().join("cert.pem");
    fs::write(&issuer_file, to_pem(issuer)?)?;
    fs::write(&cert_file, to_pem(cert)?)?;
    let vfyopt = format!("distid:{GMT_DEFAULT_ID}");
    let (ca, leaf) = (
        issuer_file.to_string_lossy().into_owned(),
        cert_file.to_string_lossy().into_owned(),
    );
    let mut args = vec![
        "verify",
        "-vfyopt",
        vfyopt.as_str(),
        "-partial_chain",
        "-x509_strict",
    ];
    if let Some(p) = purpose {
        args.extend(["-purpose", p]);
    }
    args.extend(["-CAfile", ca.as_str(), leaf.as_str()]);
    let out = openssl.run(&args)?;
    if out.success() && out.stdout_str().contains(": OK") {
        Ok(Verdict::Verified)
    } else {
        Ok(Verdict::Rejected(out.combined()))
    }
}

fn to_pem(cert: &[u8]) -> Result<Vec<u8>, Error> {
    if cert.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(cert.to_vec());
    }
    Ok(der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, cert)?.into_bytes())
}
