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
                // Round trip: re-encoding the parsed SUBSCRIBE gives back the same frame.
                let again = codec::encode_subscribe(s.packet_id, s.properties, &s.filters);
                assert_eq!(again, frame, "SUBSCRIBE round trip");
            }
            let _ = codec::suback(body, v);
            let _ = codec::unsubscribe(h.flags, body, v);
        }
        let _ = codec::pubrel_id(body);
        rest = rest.get(h.frame_len()..).unwrap_or_default();
    }
}
