//! The one parser of EST request bodies (RFC 7030 §4.2.1, §4.4.1): a base64 PKCS#10 CSR under
//! `Content-Type: application/pkcs10`. Pure and sync; the fuzz target calls [`pkcs10`] directly.

use base64::Engine;

use super::Refusal;

/// Largest request body accepted (a base64 SM2 CSR is well under 2 KiB).
pub const MAX_BODY: usize = 8 * 1024;

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub(crate) fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Check the headers and decode the body of a CSR request into DER. `content_type` and
/// `transfer_encoding` are the header values, if present. RFC 7030 §4.2.1 makes base64 mandatory; a
/// `Content-Transfer-Encoding` other than base64 is refused, its absence tolerated (RFC 8951 §3.1).
pub fn pkcs10(
    content_type: Option<&str>,
    transfer_encoding: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let found = content_type.map(media_type).unwrap_or_default();
    if found != "application/pkcs10" {
        return Err(Refusal::MediaType {
            expected: "application/pkcs10",
            found: found.chars().take(80).collect(),
        });
    }
    if let Some(te) = transfer_encoding {
        let te = te.trim();
        if !te.eq_ignore_ascii_case("base64") {
            return Err(Refusal::TransferEncoding {
                found: te.chars().take(40).collect(),
            });
        }
    }
    if body.len() > MAX_BODY {
        return Err(Refusal::BodyTooLarge {
            len: body.len(),
            max: MAX_BODY,
        });
    }
    decode_base64(body)
}

/// Base64 (standard alphabet, padding optional) with line breaks and spaces ignored.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(Refusal::Base64 {
            detail: "empty body".into(),
        });
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
        .map_err(|e| Refusal::Base64 {
            detail: e.to_string(),
        })
}

/// Base64 with a line break every 64 characters, as `openssl base64 -d` reads it.
pub fn encode_base64(der: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(flat.len() + flat.len() / 64 + 2);
    for chunk in flat.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        assert!(matches!(
            pkcs10(Some("text/plain"), None, b"MA=="),
            Err(Refusal::MediaType { .. })
        ));
        assert!(matches!(
            pkcs10(Some("application/pkcs10"), Some("binary"), b"MA=="),
            Err(Refusal::TransferEncoding { .. })
        ));
        assert!(matches!(
            pkcs10(Some("application/pkcs10"), None, b"!!!"),
            Err(Refusal::Base64 { .. })
        ));
        assert_eq!(
            pkcs10(
                Some("Application/PKCS10; x=y"),
                Some("BASE64"),
                b"AQI\r\nD\n"
            )
            .unwrap(),
            vec![1, 2, 3]
        );
        let der: Vec<u8> = (0..200u8).collect();
        assert_eq!(decode_base64(encode_base64(&der).as_bytes()).unwrap(), der);
    }
}
