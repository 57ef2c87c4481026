//! RS256 JSON Web Tokens for the function-backend tests, signed with the
//! test keys in `tests/data/jwt` (`trusted.pem` is the key whose public half
//! `envoy/function-backend.yaml` carries; `untrusted.pem` is any other key).

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// base64url without padding (RFC 7515).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn key(name: &str) -> RsaPrivateKey {
    let path = crate::repo_root().join("tests/data/jwt").join(name);
    let pem = std::fs::read_to_string(&path).expect("test key");
    RsaPrivateKey::from_pkcs8_pem(&pem).expect("PKCS#8 key")
}

/// The claims of a valid token for `subject`: the example's issuer and
/// audience, a scope, ten minutes of life.
pub fn claims(subject: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "iss": "https://issuer.example",
        "aud": "catalog-api",
        "sub": subject,
        "scope": "catalog.read",
        "iat": now,
        "exp": now + 600,
    })
}

/// A token with `claims`, signed with the test key `key_file`.
pub fn token_signed_by(key_file: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "envoy-faas-example"});
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<sha2::Sha256>::new(key(key_file)).sign(signing_input.as_bytes());
    format!("{signing_input}.{}", base64url(&signature.to_bytes()))
}

/// A token the example gateway accepts.
pub fn token(subject: &str) -> String {
    token_signed_by("trusted.pem", &claims(subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
