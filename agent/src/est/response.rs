//! The one parser of EST responses: base64 certs-only CMS (RFC 7030 §4.1.3, §4.2.3) and the `serverkeygen`
//! `multipart/mixed` body (§4.4.2). Pure and sync, size-limited, never panics.

use base64::Engine;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode};

use crate::Error;

/// Largest response body accepted.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Most certificates accepted in one certs-only message.
const MAX_CERTS: usize = 16;
/// Most parts accepted in a multipart body.
const MAX_PARTS: usize = 4;

fn bad(what: impl Into<String>) -> Error {
    Error::Response(what.into())
}

/// Base64 with line breaks ignored.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>, Error> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| bad(format!("base64: {e}")))
}

/// The certificates (DER) of a base64 certs-only `SignedData`, in the order they appear.
pub fn certs_only(body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if body.len() > MAX_RESPONSE {
        return Err(bad("response too large"));
    }
    let der = decode_base64(body)?;
    let ci = ContentInfo::from_der(&der)?;
    if ci.content_type != const_oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(bad(format!(
            "content type {} is not signedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci.content.decode_as()?;
    let set = sd.certificates.ok_or_else(|| bad("no certificates"))?;
    let mut out = Vec::new();
    for c in set.0.iter() {
        if let CertificateChoices::Certificate(c) = c {
            out.push(c.to_der()?);
        }
        if out.len() > MAX_CERTS {
            return Err(bad("too many certificates"));
        }
    }
    if out.is_empty() {
        return Err(bad("no certificates"));
    }
    Ok(out)
}

/// One decoded part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Part {
    /// Its `Content-Type` (lowercased media type, parameters kept).
    pub content_type: String,
    /// Its body, base64-decoded.
    pub body: Vec<u8>,
}

/// Split a `multipart/mixed` body (boundary from `content_type`) into base64-decoded parts.
pub fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, Error> {
    if body.len() > MAX_RESPONSE {
        return Err(bad("response too large"));
    }
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return Err(bad(format!("expected multipart/mixed, got {media:?}")));
    }
    let boundary = params
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| bad("multipart without boundary"))?;
    let text = std::str::from_utf8(body).map_err(|_| bad("multipart body is not text"))?;
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut sections = text.split(delim.as_str());
    sections.next(); // preamble
    for section in sections {
        if section.starts_with("--") {
            return Ok(parts);
        }
        if parts.len() >= MAX_PARTS {
            return Err(bad("too many parts"));
        }
        let section = section.trim_start_matches(['\r', '\n']);
        let (head, content) = section
            .split_once("\r\n\r\n")
            .or_else(|| section.split_once("\n\n"))
            .ok_or_else(|| bad("part without header end"))?;
        let mut ct = None;
        for line in head.lines() {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-type") {
                    ct = Some(v.to_ascii_lowercase());
                } else if k.eq_ignore_ascii_case("content-transfer-encoding")
                    && !v.eq_ignore_ascii_case("base64")
                {
                    return Err(bad(format!("part encoding {v:?} is not base64")));
                }
            }
        }
        parts.push(Part {
            content_type: ct.ok_or_else(|| bad("part without Content-Type"))?,
            body: decode_base64(content.as_bytes())?,
        });
    }
    Err(bad("multipart body without closing boundary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_split() {
        let body = "--b\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\nAQI=\r\n--b\r\nContent-Type: text/x\r\n\r\nAw==\r\n--b--\r\n";
        let parts = multipart("multipart/mixed; boundary=b", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type, "application/pkcs8");
        assert_eq!(parts[0].body, vec![1, 2]);
        assert_eq!(parts[1].body, vec![3]);
        assert!(multipart("multipart/mixed; boundary=b", b"--b\r\nX: y\r\n\r\nAA==").is_err());
        assert!(multipart("text/plain", body.as_bytes()).is_err());
    }

    #[test]
    fn certs_only_refuses_garbage() {
        assert!(certs_only(b"!!").is_err());
        assert!(certs_only(b"MAA=").is_err());
    }
}
