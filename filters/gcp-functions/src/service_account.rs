//! Service-account keys (`gcp-identity.md` §4): the key file Google Cloud
//! issues (`type: service_account`, `client_email`, `private_key` as
//! PKCS#8 PEM, `private_key_id`, `token_uri`), read through the token-file
//! cluster at every refresh (the VM has no filesystem; a rotated key is
//! picked up), signs a JWT assertion (RS256) for the token endpoint, whose
//! answer's `id_token` is the ID token for `target_audience`.
//!
//! The key never leaves this module's memory: not in the config (a file
//! path only), not in logs, errors or metrics.

use crate::wire::{base64url_encode, query_encode};
use faas_core::credentials::{callout, SourceRequest};
use faas_core::uri::FunctionUri;
use faas_core::Callout;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::Value;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// How long an assertion is valid (Google's maximum is an hour).
const ASSERTION_SECONDS: u64 = 3600;

/// A parsed key file. `Debug` shows the identity, never the key.
pub struct KeyFile {
    pub client_email: String,
    pub key_id: String,
    key: RsaPrivateKey,
    /// The token endpoint's `:authority` and path.
    pub token_authority: String,
    pub token_path: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

/// The DER inside a PEM block (`-----BEGIN PRIVATE KEY-----`).
pub(crate) fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    faas_core::base64::decode(&body)
}

/// Reads a key file's JSON. Errors say what is wrong, never a value.
pub fn parse(status: u16, body: &[u8]) -> Result<KeyFile, String> {
    if status != 200 {
        return Err(format!(
            "service account key file: the token-file cluster answered HTTP {status}"
        ));
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| "service account key file: not JSON".to_string())?;
    let text = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if text("type") != Some("service_account") {
        return Err("service account key file: type is not service_account".into());
    }
    let client_email = text("client_email").ok_or("service account key file: no client_email")?;
    let key_id = text("private_key_id").unwrap_or_default();
    let key = text("private_key")
        .and_then(pem_body)
        .and_then(|der| crate::pkcs8::rsa_private_key(&der))
        .ok_or("service account key file: private_key is not a PKCS#8 RSA key")?;
    let token_uri = FunctionUri::parse(text("token_uri").unwrap_or(DEFAULT_TOKEN_URI))
        .map_err(|_| "service account key file: token_uri is not a URL".to_string())?;
    Ok(KeyFile {
        client_email: client_email.to_string(),
        key_id: key_id.to_string(),
        key,
        token_authority: token_uri.authority(),
        token_path: if token_uri.path.is_empty() {
            "/".into()
        } else {
            token_uri.path.clone()
        },
    })
}

/// The signed assertion for `audience`, issued at `now` (Unix seconds).
pub fn assertion(key: &KeyFile, audience: &str, now: u64) -> String {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key.key_id});
    let token_url = format!("https://{}{}", key.token_authority, key.token_path);
    let claims = serde_json::json!({
        "iss": key.client_email, "aud": token_url, "iat": now,
        "exp": now + ASSERTION_SECONDS, "target_audience": audience,
    });
    let input = format!(
        "{}.{}",
        base64url_encode(header.to_string().as_bytes()),
        base64url_encode(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<sha2::Sha256>::new(key.key.clone()).sign(input.as_bytes());
    format!("{input}.{}", base64url_encode(&signature.to_bytes()))
}

/// The token endpoint call that trades the assertion for an ID token.
pub fn token_call(key: &KeyFile, cluster: &str, audience: &str, now: u64) -> Callout {
    let form = format!(
        "grant_type={}&assertion={}",
        query_encode(JWT_BEARER),
        assertion(key, audience, now)
    );
    callout(
        cluster,
        &key.token_authority,
        SourceRequest {
            method: "POST",
            path: key.token_path.clone(),
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            body: form.into_bytes(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    const KEY: &str =
        include_str!("../../../integration/emulator/src/testdata/service-account-key.pem");

    fn key_file() -> Vec<u8> {
        serde_json::json!({
            "type": "service_account", "client_email": "gw@p.iam.gserviceaccount.com",
            "private_key_id": "k1", "private_key": KEY,
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
        .into_bytes()
    }

    fn b64url_decode(s: &str) -> Vec<u8> {
        crate::wire::base64url_decode(s).unwrap()
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_for_the_token_endpoint() {
        let key = parse(200, &key_file()).unwrap();
        assert!(!format!("{key:?}").contains("PRIVATE"));
        let jwt = assertion(&key, "https://svc.a.run.app", 1_800_000_000);
        let parts: Vec<&str> = jwt.split('.').collect();
        let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["target_audience"], "https://svc.a.run.app");
        assert_eq!(
            (claims["iat"].as_u64(), claims["exp"].as_u64()),
            (Some(1_800_000_000), Some(1_800_003_600))
        );
        let signature = Signature::try_from(b64url_decode(parts[2]).as_slice()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        VerifyingKey::<sha2::Sha256>::new(key.key.to_public_key())
            .verify(input.as_bytes(), &signature)
            .unwrap();
        let call = token_call(&key, "oauth2", "https://svc.a.run.app", 1_800_000_000);
        assert_eq!(call.header(":authority"), Some("oauth2.googleapis.com"));
        assert!(String::from_utf8_lossy(&call.body).starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ"
        ));
    }

    #[test]
    fn bad_key_files_are_errors_without_the_key() {
        for bad in [&b"{}"[..], b"not json", br#"{"type":"service_account","client_email":"e","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#] {
            let e = parse(200, bad).unwrap_err();
            assert!(!e.contains("AAAA"), "{e}");
        }
        assert!(parse(404, b"").unwrap_err().contains("HTTP 404"));
        let answer = crate::wire::token_in_json(
            "token endpoint",
            "id_token",
            200,
            br#"{"id_token":"a.b.c"}"#,
        );
        assert_eq!(answer.unwrap(), "a.b.c");
        let refused = crate::wire::token_in_json(
            "token endpoint",
            "id_token",
            400,
            br#"{"error":"invalid_grant"}"#,
        );
        assert!(refused.is_err());
    }
}
