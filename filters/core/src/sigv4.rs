//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), headers form. Pure: no
//! host calls, the clock is an argument.
//!
//! Canonicalisation follows the AWS spec as AWS services and the official
//! SDKs apply it (checked against the AWS test suite, botocore-generated
//! Lambda vectors and the `aws-sigv4` crate):
//! - URI: the path *as sent on the wire*, dot segments removed and empty
//!   segments merged, then each segment percent-encoded once more (so a
//!   wire `%3A` is signed as `%253A`: "double encoding", every service but S3).
//! - Query: `&`-separated pairs, `form-urlencoded` decoded (`+` is a
//!   space), re-encoded with the unreserved set, sorted by name then value.
//! - Headers: lower-case names, values trimmed with runs of spaces
//!   collapsed, repeats joined with `,`, sorted by name.

use crate::headers::grouped;
use crate::path::form_decode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// AWS credentials. The signer takes them per call; where they come from
/// (config, environment, a platform source) is each filter's business.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print secrets, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl crate::credentials::Secret for Credentials {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "k": self.access_key_id,
            "s": self.secret_access_key,
            "t": self.session_token,
        })
    }

    fn from_json(doc: &serde_json::Value) -> Option<Self> {
        let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Some(Credentials {
            access_key_id: text("k")?,
            secret_access_key: text("s")?,
            session_token: text("t"),
        })
    }

    /// The key id identifies credentials without revealing them.
    fn log_id(&self) -> String {
        format!(" (key {})", self.access_key_id)
    }
}

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Hex SHA-256 of the empty payload (every GET): no need to hash it.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn hex_sha256(data: &[u8]) -> String {
    if data.is_empty() {
        return EMPTY_SHA256.to_string();
    }
    hex::encode(Sha256::digest(data))
}

type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail;
    // the fallback (an empty key) only keeps this free of panics.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte outside the unreserved set (`/` too unless
/// `keep_slash`), upper-case hex.
pub fn uri_encode(input: &[u8], keep_slash: bool, out: &mut String) {
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            // Pushed by hand: `write!` goes through fmt, measurably slower in V8.
            out.push('%');
            out.push(char::from(
                HEX_UPPER.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX_UPPER.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
            ));
        }
    }
}

/// RFC 3986 §5.2.4 dot-segment removal plus merging of empty segments; a
/// trailing slash is kept.
fn normalize_path(path: &str) -> String {
    let absolute = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if !(absolute.contains('.') || absolute.contains("//")) {
        return absolute;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(absolute.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let ends_with_slash =
        absolute.ends_with('/') || absolute.ends_with("/.") || absolute.ends_with("/..");
    if out.is_empty() || (ends_with_slash && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// The canonical URI of a path as sent on the wire (non-S3 rules).
pub fn canonical_uri(wire_path: &str) -> String {
    let normalized = normalize_path(wire_path);
    let mut out = String::with_capacity(normalized.len() + 16);
    uri_encode(normalized.as_bytes(), true, &mut out);
    out
}

/// The canonical query string of a raw query (without `?`).
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let mut key = String::new();
            let mut value = String::new();
            uri_encode(form_decode(k).as_bytes(), false, &mut key);
            uri_encode(form_decode(v).as_bytes(), false, &mut value);
            (key, value)
        })
        .collect();
    // Equal pairs are identical: the unstable sort gives the same order.
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims spaces and collapses runs of spaces to one (borrowed when the
/// value is already clean, as nearly every value is).
fn trim_all(value: &str) -> Cow<'_, str> {
    let trimmed = value.trim_matches(' ');
    if !trimmed.contains("  ") {
        return Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut previous_space = false;
    for c in trimmed.chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
    Cow::Owned(out)
}

/// `(canonical headers block, signed headers list)`.
pub fn canonical_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (String, String) {
    // Lower-case names (borrowed when they already are), trimmed values,
    // grouped by name in order.
    let grouped = grouped(headers.into_iter().map(|(name, value)| {
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        (name, trim_all(value))
    }));
    let mut block = String::with_capacity(256);
    let mut signed = String::with_capacity(64);
    for (name, values) in &grouped {
        block.push_str(name);
        block.push(':');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                block.push(',');
            }
            block.push_str(value);
        }
        block.push('\n');
        if !signed.is_empty() {
            signed.push(';');
        }
        signed.push_str(name);
    }
    (block, signed)
}

/// A request to sign, as it will go on the wire.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (already percent-encoded where needed).
    pub path: &'a str,
    /// The raw query as sent, without `?`.
    pub query: &'a str,
    /// The headers to sign (must include `host`; the signer adds
    /// `x-amz-date` and, with a session token, `x-amz-security-token`).
    pub headers: Vec<(&'a str, &'a str)>,
    /// Hex SHA-256 of the exact body bytes.
    pub payload_hash: &'a str,
}

/// `(canonical request, signed headers)`.
pub fn canonical_request(req: &Request<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers.iter().copied());
    let uri = canonical_uri(req.path);
    let query = canonical_query(req.query);
    let mut creq = String::with_capacity(
        req.method.len() + uri.len() + query.len() + headers.len() + signed.len() + 80,
    );
    for part in [
        req.method.to_ascii_uppercase().as_str(),
        &uri,
        &query,
        &headers,
        &signed,
    ] {
        creq.push_str(part);
        creq.push('\n');
    }
    creq.push_str(req.payload_hash);
    (creq, signed)
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = hex_sha256(canonical_request.as_bytes());
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 68);
    for part in [ALGORITHM, amz_date, scope] {
        out.push_str(part);
        out.push('\n');
    }
    out.push_str(&hash);
    out
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

pub use crate::calendar::amz_date;

/// The `Authorization` header for a canonical request the caller wrote
/// itself (the AWS subject tokens of `gcp-functions`, whose one request is
/// canonical as configured): the spec's string to sign and key derivation,
/// without [`Signer`]'s canonicalisation and key cache, which a module that
/// signs one fixed request per refresh does not need to carry.
pub fn authorization_for(
    credentials: &Credentials,
    (region, service): (&str, &str),
    amz_date: &str,
    canonical_request: &str,
    signed_headers: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let key = signing_key(&credentials.secret_access_key, date, region, service);
    let signature = hmac(
        &key,
        string_to_sign(amz_date, &scope, canonical_request).as_bytes(),
    );
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        credentials.access_key_id,
        hex::encode(signature)
    )
}

/// What signing adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub amz_date: String,
    pub authorization: String,
    pub signature: String,
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// Signs for one region and service with the credentials given per call
/// (as Envoy's `signer.h`: the signer never owns credentials, so they can
/// rotate). The derived key is cached per date and secret (one derivation
/// per day and rotation instead of four HMACs per request) as a keyed HMAC
/// state, so each signature also skips hashing the key pads.
#[derive(Debug)]
pub struct Signer {
    pub region: String,
    pub service: String,
    key_cache: RefCell<Option<KeyCache>>,
}

struct KeyCache {
    date: String,
    /// The secret the key was derived from: a rotation invalidates it.
    secret: String,
    mac: HmacSha256,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("date", &self.date)
            .finish()
    }
}

impl Signer {
    pub fn new(region: &str, service: &str) -> Signer {
        Signer {
            region: region.to_string(),
            service: service.to_string(),
            key_cache: RefCell::new(None),
        }
    }

    fn mac_for(&self, secret: &str, date: &str) -> HmacSha256 {
        if let Some(cache) = self.key_cache.borrow().as_ref() {
            if cache.date == date && cache.secret == secret {
                return cache.mac.clone();
            }
        }
        let key = signing_key(secret, date, &self.region, &self.service);
        let mac = keyed(&key);
        *self.key_cache.borrow_mut() = Some(KeyCache {
            date: date.to_string(),
            secret: secret.to_string(),
            mac: mac.clone(),
        });
        mac
    }

    /// Signs `req` with `credentials` at `amz_date` (`YYYYMMDDTHHMMSSZ`).
    /// The request's headers must already include `x-amz-date` (and the
    /// session token, when there is one) if they are to be signed.
    pub fn sign_at(
        &self,
        credentials: &Credentials,
        req: &Request<'_>,
        amz_date: &str,
    ) -> Signature {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let mut scope =
            String::with_capacity(date.len() + self.region.len() + self.service.len() + 16);
        for part in [date, "/", &self.region, "/", &self.service, "/aws4_request"] {
            scope.push_str(part);
        }
        let (creq, signed_headers) = canonical_request(req);
        let sts = string_to_sign(amz_date, &scope, &creq);
        let mut mac = self.mac_for(&credentials.secret_access_key, date);
        mac.update(sts.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let mut authorization = String::with_capacity(
            ALGORITHM.len()
                + credentials.access_key_id.len()
                + scope.len()
                + signed_headers.len()
                + 120,
        );
        for part in [
            ALGORITHM,
            " Credential=",
            &credentials.access_key_id,
            "/",
            &scope,
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
            &signature,
        ] {
            authorization.push_str(part);
        }
        Signature {
            amz_date: amz_date.to_string(),
            authorization,
            signature,
            canonical_request: creq,
            string_to_sign: sts,
        }
    }
}

/// The `x-amz-date` for a wall-clock time.
pub fn amz_date_at(now: SystemTime) -> String {
    amz_date(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_double_encodes_the_wire_path() {
        assert_eq!(
            canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a b/ሴ/$"), "/a%20b/%E1%88%B4/%24");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/example/.."), "/");
        assert_eq!(canonical_uri("/a/./b/."), "/a/b/");
        assert_eq!(canonical_uri("/a/b/"), "/a/b/");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query("b=2&a=1&a=0&flag&sp=x+y&e=&pct=%2B%26&star=*&sl=/"),
            "a=0&a=1&b=2&e=&flag=&pct=%2B%26&sl=%2F&sp=x%20y&star=%2A"
        );
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("a&&b"), "a=&b=");
        assert_eq!(canonical_query("bad=%zz%4"), "bad=%25zz%254");
        assert_eq!(canonical_query("x=%ff"), "x=%EF%BF%BD");
        assert_eq!(canonical_query("k=a=b"), "k=a%3Db");
    }

    #[test]
    fn headers_are_trimmed_collapsed_grouped_and_sorted() {
        let (block, signed) = canonical_headers([
            ("My-Header1", "  a   b  "),
            ("host", "h"),
            ("my-header1", "c"),
            ("X-Tab", "a\t b"),
        ]);
        assert_eq!(block, "host:h\nmy-header1:a b,c\nx-tab:a\t b\n");
        assert_eq!(signed, "host;my-header1;x-tab");
    }

    #[test]
    fn signing_key_is_cached_per_date() {
        let creds = Credentials {
            access_key_id: "AK".into(),
            secret_access_key: "S".into(),
            session_token: None,
        };
        let signer = Signer::new("us-east-1", "lambda");
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: vec![("host", "h")],
            payload_hash: &hex_sha256(b""),
        };
        let cached = |s: &Signer| s.key_cache.borrow().as_ref().map(|c| c.date.clone());
        let a = signer.sign_at(&creds, &req, "20150830T123600Z");
        assert_eq!(cached(&signer), Some("20150830".to_string()));
        let b = signer.sign_at(&creds, &req, "20150830T123600Z");
        assert_eq!(a, b);
        let c = signer.sign_at(&creds, &req, "20150831T000000Z");
        assert_ne!(a.signature, c.signature);
        assert_eq!(cached(&signer), Some("20150831".to_string()));
        // Rotated credentials the same day: a new key, not the cached one.
        let rotated = Credentials {
            secret_access_key: "S2".into(),
            ..creds.clone()
        };
        let d = signer.sign_at(&rotated, &req, "20150831T000000Z");
        assert_ne!(c.signature, d.signature);
        let fresh = Signer::new("us-east-1", "lambda").sign_at(&rotated, &req, "20150831T000000Z");
        assert_eq!(d, fresh);
    }
}
