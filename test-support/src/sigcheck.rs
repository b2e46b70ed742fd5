//! `sm2sigcheck`: an SM2 signature checked by the OpenSSL CLI over the exact TBS bytes of a signed object.
//!
//! `openssl crl`, `openssl ocsp` and `verify` past the leaf cannot be given the GM/T ID (openssl issue 23471),
//! so the signed object is split here (with `der`, over the received bytes, no re-encoding) and the signature
//! is checked by `openssl dgst -sm3 -verify -sigopt distid:1234567812345678` (x509-sm2.md).

use std::fs;

use der::asn1::{BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber};

use crate::{Error, Tool};

/// SM2-with-SM3, the only signature algorithm checked here (GM/T 0006).
pub const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// id-pkix-ocsp-basic (RFC 6960 4.2.1).
const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// The GM/T 0009 default distinguishing ID used for certificates, CSRs, CRLs and OCSP.
pub const GMT_DEFAULT_ID: &str = "1234567812345678";

/// The three parts of `SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING, .. }`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SignedParts<'a> {
    /// The to-be-signed bytes exactly as received (tag and length included).
    pub tbs: &'a [u8],
    /// The signature algorithm OID.
    pub algorithm: ObjectIdentifier,
    /// The signature octets (the DER `SEQUENCE { r, s }` for SM2).
    pub signature: &'a [u8],
}

/// Whose key checks the signature.
#[derive(Debug, Clone, Copy)]
pub enum SignerKey<'a> {
    /// The issuer's certificate, PEM or DER.
    Certificate(&'a [u8]),
    /// A SubjectPublicKeyInfo, PEM or DER.
    PublicKey(&'a [u8]),
}

/// The OpenSSL CLI's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `dgst -verify` printed `Verified OK` (`verify`: `: OK`) and exited 0.
    Verified,
    /// The tool refused the signature or certificate; its output says how.
    Rejected(String),
}

/// Splits a certificate, CRL, CSR or BasicOCSPResponse (DER or PEM) into TBS, algorithm and signature.
/// A complete OCSPResponse is unwrapped to its BasicOCSPResponse first.
pub fn split_signed(input: &[u8]) -> Result<SignedParts<'_>, Error> {
    let mut r = SliceReader::new(input)?;
    let parts = r.sequence(|r| {
        if Tag::peek(r)? == Tag::Enumerated {
            return basic_ocsp_bytes(r).map(Split::Wrapped);
        }
        let tbs = r.tlv_bytes()?;
        let algorithm = r.sequence(|a| {
            let oid = ObjectIdentifier::decode(a)?;
            let rest = a.remaining_len();
            a.read_slice(rest)?; // parameters, absent for SM2 but tolerated here
            Ok::<_, Error>(oid)
        })?;
        let bits = BitStringRef::decode(r)?;
        let signature = bits
            .as_bytes()
            .ok_or(der::Error::from(der::ErrorKind::Noncanonical {
                tag: Tag::BitString,
            }))?;
        let rest = r.remaining_len();
        r.read_slice(rest)?; // BasicOCSPResponse's optional [0] certs
        Ok::<_, Error>(Split::Parts(SignedParts {
            tbs,
            algorithm,
            signature,
        }))
    })?;
    r.finish()?;
    match parts {
        Split::Parts(p) => Ok(p),
        Split::Wrapped(inner) => split_signed(inner),
    }
}

enum Split<'a> {
    Parts(SignedParts<'a>),
    Wrapped(&'a [u8]),
}

/// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
/// ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING } (RFC 6960 4.2.1).
fn basic_ocsp_bytes<'a>(r: &mut SliceReader<'a>) -> Result<&'a [u8], Error> {
    let status = r.tlv_bytes()?;
    if status != [0x0a, 0x01, 0x00] || r.is_finished() {
        return Err(Error::NoBasicOcspResponse);
    }
    let header = Header::decode(r)?;
    let explicit0 = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(0),
    };
    header.tag().assert_eq(explicit0)?;
    let body = r.read_slice(header.length())?;
    let mut inner = SliceReader::new(body)?;
    let bytes = inner.sequence(|b| {
        let kind = ObjectIdentifier::decode(b)?;
        let response = <&OctetStringRef>::decode(b)?;
        Ok::<_, Error>((kind, response.as_bytes()))
    })?;
    inner.finish()?;
    match bytes {
        (kind, response) if kind == OCSP_BASIC => Ok(response),
        _ => Err(Error::NoBasicOcspResponse),
    }
}

/// Checks the SM2-with-SM3 signature of `signed` (certificate, CRL, CSR, BasicOCSPResponse or OCSPResponse;
/// DER or PEM) with `key`, under the GM/T default ID. The `openssl` tool (system OpenSSL 3 or Tongsuo) decides.
pub fn sm2sigcheck(openssl: &Tool, signed: &[u8], key: SignerKey<'_>) -> Result<Verdict, Error> {
    sm2sigcheck_with_id(openssl, signed, key, GMT_DEFAULT_ID)
}

/// [`sm2sigcheck`] with another distinguishing ID (an empty one, say, for CSRs OpenSSL made without `distid`).
pub fn sm2sigcheck_with_id(
    openssl: &Tool,
    signed: &[u8],
    key: SignerKey<'_>,
    distid: &str,
) -> Result<Verdict, Error> {
    let der = to_der(signed)?;
    let parts = split_signed(&der)?;
    if parts.algorithm != SM2_WITH_SM3 {
        return Err(Error::NotSm2 {
            found: parts.algorithm,
        });
    }
    let dir = tempfile::tempdir()?;
    let tbs = dir.path().join("tbs.der");
    let sig = dir.path().join("sig.der");
    let key_in = dir.path().join("key.in");
    let pubkey = dir.path().join("pub.pem");
    fs::write(&tbs, parts.tbs)?;
    fs::write(&sig, parts.signature)?;
    let (bytes, cmd) = match key {
        SignerKey::Certificate(b) => (b, ["x509", "-pubkey", "-noout"].as_slice()),
        SignerKey::PublicKey(b) => (b, ["pkey", "-pubin", "-pubout"].as_slice()),
    };
    fs::write(&key_in, bytes)?;
    let inform = if bytes.starts_with(b"-----BEGIN") {
        "PEM"
    } else {
        "DER"
    };
    let key_path = path_str(&key_in);
    let mut key_args = cmd.to_vec();
    key_args.extend(["-inform", inform, "-in", key_path.as_str()]);
    let out = openssl.run_ok(&key_args)?;
    fs::write(&pubkey, &out.stdout)?;
    let sigopt = format!("distid:{distid}");
    let mut args = vec!["dgst", "-sm3", "-verify"];
    let (pk, sg, tb) = (path_str(&pubkey), path_str(&sig), path_str(&tbs));
    args.extend([pk.as_str(), "-signature", sg.as_str()]);
    if !distid.is_empty() {
        args.extend(["-sigopt", sigopt.as_str()]);
    }
    args.push(tb.as_str());
    let out = openssl.run(&args)?;
    if out.success() && out.stdout_str().contains("Verified OK") {
        Ok(Verdict::Verified)
    } else {
        Ok(Verdict::Rejected(out.combined()))
    }
}

fn to_der(input: &[u8]) -> Result<Vec<u8>, Error> {
    if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        Ok(der::pem::decode_vec(input.trim_ascii_start())?.1)
    } else {
        Ok(input.to_vec())
    }
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}
