//! What the token sources share on the wire: percent-encoding, base64url,
//! an endpoint's address, and a token read out of a JSON answer. A leaf: the
//! sources depend on it, it on none of them.

use serde_json::Value;

/// An endpoint's `:authority` and path (with query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub authority: String,
    pub path: String,
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
pub fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token in `field` of a JSON answer (STS's, `generateIdToken`'s, the
/// token endpoint's, a subject token's URL): a 200, JSON, and a non-empty
/// printable string. Errors name `what` and the field, never a value.
pub fn token_in_json(what: &str, field: &str, status: u16, body: &[u8]) -> Result<String, String> {
    if status != 200 {
        return Err(format!("{what}: HTTP {status}"));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| format!("{what}: not JSON"))?;
    doc.get(field)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no {field}"))
}

/// base64url without padding.
pub fn base64url_encode(bytes: &[u8]) -> String {
    faas_core::base64::encode(bytes)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect()
}

/// base64url without padding (a JWT's segments).
pub fn base64url_decode(segment: &str) -> Option<Vec<u8>> {
    let mut standard: String = segment
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    faas_core::base64::decode(&standard)
}
