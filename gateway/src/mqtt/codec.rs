//! The MQTT 3.1.1 / 5.0 packets the gateway must read or write; everything else passes through
//! as an opaque frame.
//!
//! Full recognition before processing: each parser takes one whole frame body, checks every
//! length against the bytes present, and returns a typed error with the offset. No allocation
//! for a claimed length happens before the bytes are there.

/// MQTT 3.1.1 (protocol level 4) or 5.0 (level 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V311,
    V5,
}

/// Packet types (upper nibble of the first byte).
pub(crate) mod kind {
    pub(crate) const CONNECT: u8 = 1;
    pub(crate) const PUBLISH: u8 = 3;
    pub(crate) const PUBREL: u8 = 6;
    pub(crate) const SUBSCRIBE: u8 = 8;
    pub(crate) const SUBACK: u8 = 9;
    pub(crate) const UNSUBSCRIBE: u8 = 10;
}

/// Reason codes the gateway sends.
pub(crate) mod reason {
    /// 3.1.1 CONNACK: identifier rejected.
    pub(crate) const V311_ID_REJECTED: u8 = 0x02;
    /// 3.1.1 CONNACK: not authorized.
    pub(crate) const V311_NOT_AUTHORIZED: u8 = 0x05;
    /// 3.1.1 SUBACK: failure.
    pub(crate) const V311_SUBACK_FAILURE: u8 = 0x80;
    /// 5.0: client identifier not valid.
    pub(crate) const V5_CLIENT_ID_INVALID: u8 = 0x85;
    /// 5.0: not authorized.
    pub(crate) const V5_NOT_AUTHORIZED: u8 = 0x87;
}

/// Why a frame was refused; `at` is the byte offset in the frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A length runs past the end.
    Truncated { at: usize },
    /// The remaining-length varint is longer than four bytes.
    BadLength,
    /// The frame is larger than allowed.
    TooLarge { len: usize },
    /// A field has a value the spec forbids.
    Invalid { at: usize },
    /// Bytes left after the last field.
    Trailing { at: usize },
}

/// A frame's fixed header: type, flags and where the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    /// Length of fixed header.
    pub(crate) header_len: usize,
    /// Remaining length (body).
    pub(crate) body_len: usize,
}

impl Header {
    pub(crate) fn frame_len(&self) -> usize {
        self.header_len + self.body_len
    }
}

/// Reads the fixed header at the start of `buf`: `Ok(None)` until enough bytes are there.
pub(crate) fn header(buf: &[u8], max_frame: usize) -> Result<Option<Header>, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // 5.0 §1.5.5: the minimum number of bytes; a zero last byte after the first is not.
            if i > 0 && b == 0 {
                return Err(ParseError::BadLength);
            }
            let h = Header {
                kind: first >> 4,
                flags: first & 0x0f,
                header_len: 2 + i,
                body_len: len,
            };
            if h.frame_len() > max_frame {
                return Err(ParseError::TooLarge { len: h.frame_len() });
            }
            return Ok(Some(h));
        }
    }
    Err(ParseError::BadLength)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ParseError::Truncated { at: self.pos })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(ParseError::Truncated { at: self.pos })?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ParseError> {
        self.take(1).map(|s| s.first().copied().unwrap_or_default())
    }
    fn u16(&mut self) -> Result<u16, ParseError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([
            s.first().copied().unwrap_or_default(),
            s.get(1).copied().unwrap_or_default(),
        ]))
    }
    fn string(&mut self) -> Result<&'a str, ParseError> {
        let at = self.pos;
        let n = usize::from(self.u16()?);
        let s = self.take(n)?;
        // MQTT strings: UTF-8 without U+0000 (3.1.1 §1.5.3, 5.0 §1.5.4).
        let s = std::str::from_utf8(s).map_err(|_| ParseError::Invalid { at })?;
        if s.contains('\0') {
            return Err(ParseError::Invalid { at });
        }
        Ok(s)
    }
    fn varint(&mut self) -> Result<usize, ParseError> {
        let mut len = 0usize;
        for i in 0..4 {
            let b = self.u8()?;
            len |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(ParseError::Invalid { at: self.pos });
                }
                return Ok(len);
            }
        }
        Err(ParseError::Invalid { at: self.pos })
    }
    /// 5.0 properties: the length varint and the bytes, returned whole (length included).
    fn properties(&mut self) -> Result<&'a [u8], ParseError> {
        let start = self.pos;
        let n = self.varint()?;
        self.take(n)?;
        self.buf
            .get(start..self.pos)
            .ok_or(ParseError::Truncated { at: start })
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }
    fn finish(&self) -> Result<(), ParseError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ParseError::Trailing { at: self.pos })
        }
    }
}

/// What the gateway needs from CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect<'a> {
    pub(crate) version: Version,
    pub(crate) client_id: &'a str,
}

/// Parses a CONNECT body (3.1.1 §3.1, 5.0 §3.1) up to the client id; the rest is forwarded as is.
pub(crate) fn connect(flags: u8, body: &[u8]) -> Result<Connect<'_>, ParseError> {
    if flags != 0 {
        return Err(ParseError::Invalid { at: 0 });
    }
    let mut r = Reader::new(body);
    if r.string()? != "MQTT" {
        return Err(ParseError::Invalid { at: 0 });
    }
    let at = r.pos;
    let version = match r.u8()? {
        4 => Version::V311,
        5 => Version::V5,
        _ => return Err(ParseError::Invalid { at }),
    };
    let at = r.pos;
    if r.u8()? & 0x01 != 0 {
        return Err(ParseError::Invalid { at }); // reserved flag bit
    }
    r.u16()?; // keep alive
    if version == Version::V5 {
        r.properties()?;
    }
    let client_id = r.string()?;
    Ok(Connect { version, client_id })
}

/// What the gateway needs from PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish<'a> {
    pub(crate) topic: &'a str,
    pub(crate) qos: u8,
    pub(crate) packet_id: Option<u16>,
}

/// Parses a PUBLISH body (3.1.1 §3.3, 5.0 §3.3); the payload is not looked at.
pub(crate) fn publish(flags: u8, body: &[u8], version: Version) -> Result<Publish<'_>, ParseError> {
    let qos = (flags >> 1) & 0x03;
    if qos == 3 {
        return Err(ParseError::Invalid { at: 0 });
    }
    let mut r = Reader::new(body);
    let topic = r.string()?;
    let packet_id = if qos > 0 {
        let at = r.pos;
        let id = r.u16()?;
        if id == 0 {
            return Err(ParseError::Invalid { at });
        }
        Some(id)
    } else {
        None
    };
    if version == Version::V5 {
        r.properties()?;
    }
    r.rest();
    Ok(Publish {
        topic,
        qos,
        packet_id,
    })
}

/// A SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscribe<'a> {
    pub(crate) packet_id: u16,
    /// 5.0 properties with their length prefix; empty for 3.1.1.
    pub(crate) properties: &'a [u8],
    /// Filter and options byte, in order.
    pub(crate) filters: Vec<(&'a str, u8)>,
}

/// Parses a SUBSCRIBE body.
pub(crate) fn subscribe(
    flags: u8,
    body: &[u8],
    version: Version,
) -> Result<Subscribe<'_>, ParseError> {
    if flags != 0b0010 {
        return Err(ParseError::Invalid { at: 0 });
    }
    let mut r = Reader::new(body);
    let packet_id = r.u16()?;
    let properties = match version {
        Version::V5 => r.properties()?,
        Version::V311 => &[],
    };
    let mut filters = Vec::new();
    while r.pos < body.len() {
        let f = r.string()?;
        let opts = r.u8()?;
        filters.push((f, opts));
    }
    if filters.is_empty() {
        return Err(ParseError::Invalid { at: r.pos });
    }
    r.finish()?;
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

/// The filters of an UNSUBSCRIBE body (3.1.1 §3.10, 5.0 §3.10).
pub(crate) fn unsubscribe(
    flags: u8,
    body: &[u8],
    version: Version,
) -> Result<Vec<&str>, ParseError> {
    if flags != 0b0010 {
        return Err(ParseError::Invalid { at: 0 });
    }
    let mut r = Reader::new(body);
    r.u16()?;
    if version == Version::V5 {
        r.properties()?;
    }
    let mut filters = Vec::new();
    while r.pos < body.len() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(ParseError::Invalid { at: r.pos });
    }
    r.finish()?;
    Ok(filters)
}

/// A SUBACK (3.1.1 §3.9, 5.0 §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubAck<'a> {
    pub(crate) packet_id: u16,
    pub(crate) properties: &'a [u8],
    pub(crate) codes: &'a [u8],
}

/// Parses a SUBACK body.
pub(crate) fn suback(body: &[u8], version: Version) -> Result<SubAck<'_>, ParseError> {
    let mut r = Reader::new(body);
    let packet_id = r.u16()?;
    let properties = match version {
        Version::V5 => r.properties()?,
        Version::V311 => &[],
    };
    let codes = r.rest();
    Ok(SubAck {
        packet_id,
        properties,
        codes,
    })
}

/// Packet id of a PUBREL body.
pub(crate) fn pubrel_id(body: &[u8]) -> Result<u16, ParseError> {
    Reader::new(body).u16()
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut n = body.len();
    loop {
        let b = u8::try_from(n & 0x7f).unwrap_or_default();
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(body);
    out
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Filters came from a parsed frame, so they fit in u16.
    let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A SUBSCRIBE carrying only `filters`.
pub(crate) fn encode_subscribe(
    packet_id: u16,
    properties: &[u8],
    filters: &[(&str, u8)],
) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.extend_from_slice(properties);
    for (f, o) in filters {
        put_string(&mut body, f);
        body.push(*o);
    }
    frame(0x82, &body)
}

/// A SUBACK with `codes`.
pub(crate) fn encode_suback(packet_id: u16, properties: &[u8], codes: &[u8]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.extend_from_slice(properties);
    body.extend_from_slice(codes);
    frame(0x90, &body)
}

/// SUBACK with no properties for the version (5.0 needs a zero property length).
pub(crate) fn empty_properties(version: Version) -> &'static [u8] {
    match version {
        Version::V5 => &[0],
        Version::V311 => &[],
    }
}

/// CONNACK refusing with `code` (session present 0).
pub(crate) fn encode_connack(version: Version, code: u8) -> Vec<u8> {
    match version {
        Version::V311 => frame(0x20, &[0, code]),
        Version::V5 => frame(0x20, &[0, code, 0]),
    }
}

/// A 5.0 PUBACK (QoS 1) or PUBREC (QoS 2) with a reason code.
pub(crate) fn encode_ack_v5(qos: u8, packet_id: u16, code: u8) -> Vec<u8> {
    let [hi, lo] = packet_id.to_be_bytes();
    let first = if qos == 2 { 0x50 } else { 0x40 };
    frame(first, &[hi, lo, code])
}

/// A success PUBACK (QoS 1) or PUBREC (QoS 2), both versions.
pub(crate) fn encode_ack_ok(qos: u8, packet_id: u16) -> Vec<u8> {
    let first = if qos == 2 { 0x50 } else { 0x40 };
    frame(first, &packet_id.to_be_bytes())
}

/// PUBCOMP success.
pub(crate) fn encode_pubcomp(packet_id: u16) -> Vec<u8> {
    frame(0x70, &packet_id.to_be_bytes())
}

/// 5.0 DISCONNECT with a reason code.
pub(crate) fn encode_disconnect_v5(code: u8) -> Vec<u8> {
    frame(0xE0, &[code])
}
