//! The one parser for factory inputs: CSR directories, CSR JSON Lines, key-generation CSV and JSON Lines.
//!
//! Every line or file becomes either an [`Entry`] or a [`Refusal`] naming the line (or file) and why; a bad
//! line never stops the rest of the batch.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use der::{Decode, Encode};
use x509_cert::request::CertReq;

use super::{FactoryError, io_err};

/// Largest manifest line or CSR file accepted.
pub(crate) const MAX_ITEM: usize = 16 * 1024;
/// Longest device id.
pub(crate) const MAX_DEVICE_ID: usize = 64;

/// What the input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum InputFormat {
    /// A directory of `<device-id>.csr|.pem|.der` files (PEM or DER PKCS#10).
    CsrDir,
    /// JSON Lines `{"device_id": .., "csr": PEM or base64 DER}`.
    CsrJsonl,
    /// CSV with a header naming a `device_id` column; other columns are attributes.
    KeysCsv,
    /// JSON Lines `{"device_id": .., <attributes>}`.
    KeysJsonl,
}

/// One device to issue.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Where it came from: `line N` or a file name.
    pub source: String,
    /// The device id (checked: charset and length).
    pub device_id: String,
    /// CSR mode: the CSR DER. Key-generation mode: the attributes as JSON.
    pub payload: Vec<u8>,
}

/// A line or file that will not be issued, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// `line N` or a file name.
    pub source: String,
    /// The device id, if one could be read.
    pub device_id: Option<String>,
    /// Why, in words a line operator can act on.
    pub reason: String,
}

/// A parsed manifest: entries in input order, refusals, and the SM3 of the input (the batch id's root).
#[derive(Debug)]
pub(crate) struct Manifest {
    pub(crate) entries: Vec<Entry>,
    pub(crate) refusals: Vec<Refusal>,
    pub(crate) sm3: [u8; 32],
}

/// Device ids are also file names in the output: `[A-Za-z0-9._-]`, 1..=64, not starting with a dot.
pub(crate) fn check_device_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_DEVICE_ID {
        return Err(format!(
            "device id length {} not in 1..={MAX_DEVICE_ID}",
            id.len()
        ));
    }
    if id.starts_with('.') {
        return Err("device id starts with '.'".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "device id has character {c:?} (allowed: A-Z a-z 0-9 . _ -)"
        ));
    }
    Ok(())
}

/// Read and parse `path` as `format`.
pub(crate) fn read(path: &Path, format: InputFormat) -> Result<Manifest, FactoryError> {
    let mut b = Builder::default();
    // Length-prefixed fields, hashed once at the end (SM3 runs at ~350 MB/s: a 100k manifest is ~0.1 s).
    let mut h: Vec<u8> = Vec::new();
    let feed = |h: &mut Vec<u8>, bytes: &[u8]| {
        h.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        h.extend_from_slice(bytes);
    };
    feed(&mut h, format!("{format:?}").as_bytes());
    match format {
        InputFormat::CsrDir => {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .map_err(io_err(path))?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect();
            names.sort();
            for p in names {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&p).map_err(io_err(&p))?;
                feed(&mut h, name.as_bytes());
                feed(&mut h, &bytes);
                let stem = p
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                b.csr(name, Some(stem), Ok(bytes));
            }
        }
        _ => {
            let text = std::fs::read(path).map_err(io_err(path))?;
            feed(&mut h, &text);
            let mut header: Option<Vec<String>> = None;
            for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
                let source = format!("line {}", i + 1);
                let line = raw.strip_suffix(b"\r").unwrap_or(raw);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if line.len() > MAX_ITEM {
                    b.refuse(source, None, format!("line longer than {MAX_ITEM} bytes"));
                    continue;
                }
                let Ok(line) = std::str::from_utf8(line) else {
                    b.refuse(source, None, "not UTF-8".into());
                    continue;
                };
                match format {
                    InputFormat::KeysCsv => match &header {
                        None => {
                            let cols = split_csv(line).map_err(FactoryError::Manifest)?;
                            if !cols.iter().any(|c| c == "device_id") {
                                return Err(FactoryError::Manifest(
                                    "CSV header has no device_id column".into(),
                                ));
                            }
                            header = Some(cols);
                        }
                        Some(cols) => b.csv_row(source, cols, line),
                    },
                    InputFormat::CsrJsonl => b.csr_json(source, line),
                    _ => b.keys_json(source, line),
                }
            }
        }
    }
    let sm3 = smtrust_crypto::sm3::digest(&h);
    if b.entries.is_empty() && b.refusals.is_empty() {
        return Err(FactoryError::Manifest(format!(
            "{} holds no devices",
            path.display()
        )));
    }
    Ok(Manifest {
        entries: b.entries,
        refusals: b.refusals,
        sm3,
    })
}

#[derive(Default)]
struct Builder {
    entries: Vec<Entry>,
    refusals: Vec<Refusal>,
    seen: HashMap<String, String>,
}

impl Builder {
    fn refuse(&mut self, source: String, device_id: Option<String>, reason: String) {
        self.refusals.push(Refusal {
            source,
            device_id,
            reason,
        });
    }

    fn accept(&mut self, source: String, device_id: String, payload: Vec<u8>) {
        if let Err(why) = check_device_id(&device_id) {
            return self.refuse(source, Some(device_id), why);
        }
        if let Some(first) = self.seen.get(&device_id) {
            let reason = format!("duplicate device id (first at {first})");
            return self.refuse(source, Some(device_id), reason);
        }
        self.seen.insert(device_id.clone(), source.clone());
        self.entries.push(Entry {
            source,
            device_id,
            payload,
        });
    }

    fn csr(&mut self, source: String, device_id: Option<String>, bytes: Result<Vec<u8>, String>) {
        // A duplicate is reported as such even when its CSR is also bad.
        if let Some(first) = device_id.as_ref().and_then(|id| self.seen.get(id)) {
            let reason = format!("duplicate device id (first at {first})");
            return self.refuse(source, device_id, reason);
        }
        let parsed = bytes.and_then(|b| parse_csr(&b));
        match (device_id, parsed) {
            (None, _) => self.refuse(source, None, "no device_id".into()),
            (Some(id), Err(why)) => self.refuse(source, Some(id), why),
            (Some(id), Ok(der)) => self.accept(source, id, der),
        }
    }

    fn csr_json(&mut self, source: String, line: &str) {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return self.refuse(source, None, format!("not JSON: {e}")),
        };
        let id = v
            .get("device_id")
            .and_then(|x| x.as_str())
            .map(str::to_owned);
        let csr = match v.get("csr").and_then(|x| x.as_str()) {
            None => Err("no \"csr\" string".to_string()),
            Some(s) if s.contains("-----BEGIN") => Ok(s.as_bytes().to_vec()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("csr is neither PEM nor base64 DER: {e}")),
        };
        self.csr(source, id, csr);
    }

    fn keys_json(&mut self, source: String, line: &str) {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return self.refuse(source, None, format!("not JSON: {e}")),
        };
        match v.get("device_id").and_then(|x| x.as_str()) {
            None => self.refuse(source, None, "no \"device_id\" string".into()),
            Some(id) => {
                let id = id.to_owned();
                self.accept(source, id, line.as_bytes().to_vec());
            }
        }
    }

    fn csv_row(&mut self, source: String, header: &[String], line: &str) {
        let cols = match split_csv(line) {
            Ok(c) => c,
            Err(why) => return self.refuse(source, None, why),
        };
        if cols.len() != header.len() {
            let why = format!("{} fields, header has {}", cols.len(), header.len());
            return self.refuse(source, None, why);
        }
        let map: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .cloned()
            .zip(cols.into_iter().map(serde_json::Value::String))
            .collect();
        let id = map
            .get("device_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let json = serde_json::Value::Object(map).to_string();
        self.accept(source, id, json.into_bytes());
    }
}

/// RFC 4180 fields: commas separate, double quotes enclose, `""` inside quotes is a quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("quote inside an unquoted field".into()),
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out.into_iter().map(|s| s.trim().to_owned()).collect())
}

/// PEM or DER PKCS#10 → DER, with the structure decoded and the key checked to be SM2. The signature is
/// verified later, on the worker threads.
fn parse_csr(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() > MAX_ITEM {
        return Err(format!("CSR larger than {MAX_ITEM} bytes"));
    }
    let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let blocks = smtrust_crypto::pem::blocks(bytes).map_err(|e| format!("CSR PEM: {e}"))?;
        match blocks.into_iter().next() {
            Some((label, der))
                if label == "CERTIFICATE REQUEST" || label == "NEW CERTIFICATE REQUEST" =>
            {
                der.to_vec()
            }
            Some((label, _)) => {
                return Err(format!("PEM block is {label}, not CERTIFICATE REQUEST"));
            }
            None => return Err("no PEM block".into()),
        }
    } else {
        bytes.to_vec()
    };
    let req = CertReq::from_der(&der).map_err(|e| format!("CSR DER: {e}"))?;
    let spki = req
        .info
        .public_key
        .to_der()
        .map_err(|e| format!("CSR public key: {e}"))?;
    smtrust_crypto::x509::public_key_from_spki_der(&spki)
        .map_err(|e| format!("wrong key type: {e}"))?;
    Ok(der)
}
