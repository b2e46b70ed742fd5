//! Entry points for `gateway/fuzz`: the MQTT parsers on arbitrary bytes. Not a stable API.

use crate::mqtt::codec::{self, Version};

/// Splits `data` into frames and runs every parser on each; must never panic.
pub fn mqtt_frames(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some(h)) = codec::header(rest, 1 << 20) {
        let Some(frame) = rest.get(..h.frame_len()) else {
            return;
        };
        let body = frame.get(h.header_len..).unwrap_or_default();
        for v in [Version::V311, Version::V5] {
            let _ = codec::connect(h.flags, body);
            let _ = codec::publish(h.flags, body, v);
            if let Ok(s) = codec::subscribe(h.flags, body, v) {
                // Round trip: re-encoding the parsed SUBSCRIBE gives back the same body (any
                // type with SUBSCRIBE's flags parses here; the gateway asks only for type 8).
                let again = codec::encode_subscribe(s.packet_id, s.properties, &s.filters);
                let again_body = codec::header(&again, usize::MAX)
                    .ok()
                    .flatten()
                    .and_then(|a| again.get(a.header_len..));
                assert_eq!(again_body, Some(body), "SUBSCRIBE round trip");
                if h.kind == codec::kind::SUBSCRIBE {
                    assert_eq!(again, frame, "SUBSCRIBE frame round trip");
                }
            }
            let _ = codec::suback(body, v);
            let _ = codec::unsubscribe(h.flags, body, v);
        }
        let _ = codec::pubrel_id(body);
        rest = rest.get(h.frame_len()..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    /// Found by the fuzzer: a PINGREQ with SUBSCRIBE's flags (0xC2) and a body that parses as a
    /// SUBSCRIBE; the harness compared the re-encoded frame's type byte.
    #[test]
    fn subscribe_shaped_body_of_another_type() {
        super::mqtt_frames(&[0xc2, 5, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0x2b]);
    }
}
