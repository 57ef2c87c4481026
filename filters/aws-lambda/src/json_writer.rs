//! Compact JSON written straight into a byte buffer, byte for byte as
//! `serde_json::to_vec` renders the same document (same escapes, no
//! spaces). The Invoke events use it instead of a `serde_json::Value` tree:
//! no tree of small allocations, no second pass, and the body copied once
//! (issue 16). Callers write object keys in sorted order, which is the order
//! `serde_json::Map` (a `BTreeMap`) kept them in.

/// What a byte becomes inside a JSON string: `None` for itself, else the
/// letter after the backslash (`u` for `\u00XX`), as serde_json escapes.
fn escape_of(b: u8) -> Option<u8> {
    match b {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        0x08 => Some(b'b'),
        0x09 => Some(b't'),
        0x0a => Some(b'n'),
        0x0c => Some(b'f'),
        0x0d => Some(b'r'),
        0..=0x1f => Some(b'u'),
        _ => None,
    }
}

use crate::decimal::Decimal;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The code points protobuf's JSON printer (Envoy's native `aws_lambda`
/// payloads) writes as `\uXXXX` besides serde_json's: `<`, `>`, DEL and
/// the C1 controls, and the invisible format characters, as measured on
/// Envoy 1.40 over every code point of the BMP and these planes' ranges.
const PROTOBUF_ESCAPED: &[(u32, u32)] = &[
    (0x3c, 0x3c),
    (0x3e, 0x3e),
    (0x7f, 0x9f),
    (0xad, 0xad),
    (0x600, 0x603),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x17b4, 0x17b5),
    (0x200b, 0x200f),
    (0x2028, 0x202e),
    (0x2060, 0x2064),
    (0x206a, 0x206f),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
];

pub struct JsonWriter {
    out: Vec<u8>,
    /// The next value or key opens its container (or follows a key): no
    /// comma before it.
    first: bool,
    /// Escape as protobuf's JSON printer does ([`PROTOBUF_ESCAPED`]).
    protobuf: bool,
}

impl JsonWriter {
    pub fn with_capacity(bytes: usize) -> JsonWriter {
        JsonWriter {
            out: Vec::with_capacity(bytes),
            first: true,
            protobuf: false,
        }
    }

    /// A writer whose strings are escaped as protobuf's JSON printer
    /// escapes them (Envoy's native payloads).
    pub fn protobuf(bytes: usize) -> JsonWriter {
        JsonWriter {
            protobuf: true,
            ..JsonWriter::with_capacity(bytes)
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    fn separate(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// `{` or `[`: the container's first member needs no comma.
    fn open(&mut self, bracket: u8) {
        self.separate();
        self.out.push(bracket);
        self.first = true;
    }

    /// `}` or `]`: whatever follows the container is separated from it.
    fn close(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.first = false;
    }

    pub fn begin_object(&mut self) {
        self.open(b'{');
    }

    pub fn end_object(&mut self) {
        self.close(b'}');
    }

    pub fn begin_array(&mut self) {
        self.open(b'[');
    }

    pub fn end_array(&mut self) {
        self.close(b']');
    }

    /// An object key; the value written next belongs to it.
    pub fn key(&mut self, key: &str) {
        self.separate();
        self.escaped(key);
        self.out.push(b':');
        self.first = true;
    }

    pub fn string(&mut self, value: &str) {
        self.separate();
        self.escaped(value);
    }

    /// A string known to need no escaping (base64, fixed words).
    pub fn plain_string(&mut self, value: &str) {
        self.separate();
        self.out.reserve(value.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    pub fn optional_string(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.string(v),
            None => self.null(),
        }
    }

    pub fn u64(&mut self, value: u64) {
        self.separate();
        self.out
            .extend_from_slice(Decimal::padded(value, 1).as_bytes());
    }

    pub fn bool(&mut self, value: bool) {
        self.separate();
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn null(&mut self) {
        self.separate();
        self.out.extend_from_slice(b"null");
    }

    /// `"value"` with serde_json's escapes: runs that need none are copied
    /// whole (a JSON body is one long run).
    fn escaped(&mut self, value: &str) {
        let bytes = value.as_bytes();
        self.out.reserve(bytes.len() + 2);
        self.out.push(b'"');
        let mut run_start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let Some(escape) = escape_of(b) else {
                if self.protobuf && (b == b'<' || b == b'>' || b >= 0x7f) {
                    self.protobuf_char(value, i, &mut run_start);
                }
                continue;
            };
            self.out
                .extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
            run_start = i + 1;
            if escape == b'u' {
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                self.out
                    .extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
            } else {
                self.out.extend_from_slice(&[b'\\', escape]);
            }
        }
        self.out
            .extend_from_slice(bytes.get(run_start..).unwrap_or_default());
        self.out.push(b'"');
    }

    /// The character starting at byte `at` of `value`, if protobuf escapes
    /// it: the run before it written, then `\uXXXX` (a surrogate pair
    /// above the BMP), and the run restarted after it. Continuation bytes
    /// are never a character's start and pass.
    fn protobuf_char(&mut self, value: &str, at: usize, run_start: &mut usize) {
        let Some(c) = value.get(at..).and_then(|rest| rest.chars().next()) else {
            return;
        };
        let code = u32::from(c);
        if !PROTOBUF_ESCAPED
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
        {
            return;
        }
        let bytes = value.as_bytes();
        self.out
            .extend_from_slice(bytes.get(*run_start..at).unwrap_or_default());
        *run_start = at + c.len_utf8();
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            self.out.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                let nibble = usize::from((*unit >> shift) & 0xf);
                self.out.push(HEX.get(nibble).copied().unwrap_or(b'0'));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rendered(write: impl FnOnce(&mut JsonWriter)) -> String {
        let mut w = JsonWriter::with_capacity(0);
        write(&mut w);
        String::from_utf8(w.into_bytes()).unwrap()
    }

    #[test]
    fn nested_containers_and_scalars_render_as_serde_json() {
        let out = rendered(|w| {
            w.begin_object();
            w.key("a");
            w.begin_array();
            w.string("x");
            w.u64(0);
            w.u64(u64::MAX);
            w.begin_object();
            w.end_object();
            w.null();
            w.end_array();
            w.key("b");
            w.bool(true);
            w.key("c");
            w.optional_string(None);
            w.key("d");
            w.plain_string("QUJD");
            w.end_object();
        });
        let expected =
            json!({"a": ["x", 0, u64::MAX, {}, null], "b": true, "c": null, "d": "QUJD"});
        assert_eq!(out, serde_json::to_string(&expected).unwrap());
    }

    #[test]
    fn protobuf_mode_escapes_as_envoys_protobuf_printer() {
        let mut w = JsonWriter::protobuf(0);
        w.string("<a>&'\u{7f}\u{85}\u{ad}\u{2028}\u{feff}\u{1d173}\u{e0041}é😀\t\u{1}");
        let out = String::from_utf8(w.into_bytes()).unwrap();
        assert_eq!(
            out,
            r#""\u003ca\u003e&'\u007f\u0085\u00ad\u2028\ufeff\ud834\udd73\udb40\udc41é😀\t\u0001""#
        );
    }

    proptest! {
        #[test]
        fn protobuf_strings_decode_to_themselves(s in any::<String>()) {
            let mut w = JsonWriter::protobuf(0);
            w.string(&s);
            let decoded: String = serde_json::from_slice(&w.into_bytes()).unwrap();
            prop_assert_eq!(decoded, s);
        }

        #[test]
        fn strings_escape_exactly_as_serde_json(s in any::<String>(), n in any::<u64>()) {
            let out = rendered(|w| {
                w.begin_array();
                w.string(&s);
                w.u64(n);
                w.end_array();
            });
            prop_assert_eq!(out, serde_json::to_string(&json!([s, n])).unwrap());
        }
    }

    #[test]
    fn every_control_character_and_quote() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let out = rendered(|w| w.string(&all));
        assert_eq!(out, serde_json::to_string(&all).unwrap());
    }
}
