//! Google's side of Cloud Run authentication (`gcp-identity.md`): the ID
//! tokens the metadata server issues (RS256 JWTs, signed with a fixed test
//! key, `testdata/google-signing-key.pem`, no secret anywhere else), their
//! key set, and the check Google's front end makes before a private Cloud
//! Run service or function sees a request: signature against the key set,
//! `iss`, `aud` (the service URL, the function URL, or a custom audience),
//! `exp`.
//!
//! The front door ([`admit`]) serves hosts ending in `.a.run.app` and
//! `.cloudfunctions.net`. A host starting with `public-` allows
//! unauthenticated calls (`allUsers` as invoker). The token comes from
//! `X-Serverless-Authorization` when present, else `Authorization`; the
//! function sees it with its signature replaced by
//! `SIGNATURE_REMOVED_BY_GOOGLE`, as Cloud Run does.

use crate::http::{Request, Response};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::OnceLock;

const KEY_PEM: &str = include_str!("testdata/google-signing-key.pem");
/// The `kid` of the emulator's signing key.
pub const KEY_ID: &str = "emulator-google-key-1";
pub const ISSUER: &str = "https://accounts.google.com";
/// The identity the tokens are issued for (`email`, `sub`).
pub const EMAIL: &str = "gateway@emulator-project.iam.gserviceaccount.com";
/// An audience every emulated service accepts besides its URL (a service's
/// `--add-custom-audiences`).
pub const CUSTOM_AUDIENCE: &str = "https://custom-audience.emulator.test";
/// What replaces a token's signature on its way to the function.
pub const SIGNATURE_REMOVED: &str = "SIGNATURE_REMOVED_BY_GOOGLE";

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::from_pkcs1_pem(KEY_PEM).expect("the emulator's test key"))
}

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn b64url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len() * 4 / 3 + 3);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(URL_SAFE[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn b64url_decode(input: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for c in input.bytes() {
        let v = URL_SAFE.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// An ID token for `audience`, valid from `issued_at` to `expires_at`.
pub fn id_token(audience: &str, issued_at: u64, expires_at: u64) -> String {
    let header = json!({"alg": "RS256", "kid": KEY_ID, "typ": "JWT"});
    let claims = json!({
        "aud": audience, "azp": "104857600000000000001", "email": EMAIL,
        "email_verified": true, "exp": expires_at, "iat": issued_at, "iss": ISSUER,
        "sub": "104857600000000000001",
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<Sha256>::new(key().clone()).sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

const SERVICE_ACCOUNT_PEM: &str = include_str!("testdata/service-account-key.pem");
/// The test service account's email and key id.
pub const SERVICE_ACCOUNT_EMAIL: &str = "invoker@emulator-project.iam.gserviceaccount.com";
pub const SERVICE_ACCOUNT_KEY_ID: &str = "emulator-sa-key-1";

/// A key file as Google Cloud issues it for the test service account,
/// its token endpoint at `token_uri`.
pub fn service_account_key_file(token_uri: &str) -> String {
    json!({
        "type": "service_account", "project_id": "emulator-project",
        "private_key_id": SERVICE_ACCOUNT_KEY_ID, "private_key": SERVICE_ACCOUNT_PEM,
        "client_email": SERVICE_ACCOUNT_EMAIL, "client_id": "104857600000000000002",
        "token_uri": token_uri,
    })
    .to_string()
}

/// Google's OAuth 2.0 token endpoint for a service account's JWT assertion
/// (`grant_type` jwt-bearer): the assertion must be RS256-signed by the test
/// service account's key, `iss` its email, `aud` the token endpoint, not
/// expired, and name a `target_audience`; the answer's `id_token` is an ID
/// token for it. `Err`: Google's `invalid_grant`.
pub fn token_endpoint(
    form: &std::collections::BTreeMap<String, String>,
    token_url: &str,
    now: u64,
) -> Result<Response, Response> {
    use rsa::pkcs8::DecodePrivateKey;
    let refuse = || Response::new(400, "application/json", r#"{"error":"invalid_grant"}"#);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err(refuse());
    }
    let assertion = form.get("assertion").ok_or_else(refuse)?;
    let (input, signature) = assertion.rsplit_once('.').ok_or_else(refuse)?;
    let key = RsaPrivateKey::from_pkcs8_pem(SERVICE_ACCOUNT_PEM).map_err(|_| refuse())?;
    let signature = b64url_decode(signature)
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
        .ok_or_else(refuse)?;
    VerifyingKey::<Sha256>::new(key.to_public_key())
        .verify(input.as_bytes(), &signature)
        .map_err(|_| refuse())?;
    let (header, claims) = input.split_once('.').ok_or_else(refuse)?;
    let decode =
        |segment: &str| -> Option<Value> { serde_json::from_slice(&b64url_decode(segment)?).ok() };
    let (header, claims) = (
        decode(header).ok_or_else(refuse)?,
        decode(claims).ok_or_else(refuse)?,
    );
    let audience = claims["target_audience"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let valid = header["alg"] == "RS256"
        && header["kid"] == SERVICE_ACCOUNT_KEY_ID
        && claims["iss"] == SERVICE_ACCOUNT_EMAIL
        && claims["aud"] == token_url
        && claims["exp"].as_u64().is_some_and(|e| e > now)
        && !audience.is_empty();
    if !valid {
        return Err(refuse());
    }
    Ok(Response::new(
        200,
        "application/json",
        json!({"id_token": id_token(&audience, now, now + 3600)}).to_string(),
    ))
}

/// The key set (`https://www.googleapis.com/oauth2/v3/certs`' shape).
pub fn jwks() -> Value {
    let public = key().to_public_key();
    json!({"keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": KEY_ID,
        "n": b64url(&public.n().to_bytes_be()), "e": b64url(&public.e().to_bytes_be()),
    }]})
}

/// Verifies `token` as Google's front end does; its claims, or why not.
pub fn verify(token: &str, audiences: &[String], now: u64) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT");
    };
    let decode =
        |segment: &str| -> Option<Value> { serde_json::from_slice(&b64url_decode(segment)?).ok() };
    let header = decode(header).ok_or("bad header")?;
    if header["alg"] != "RS256" || header["kid"] != KEY_ID {
        return Err("unknown key or algorithm");
    }
    let signature = b64url_decode(signature)
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
        .ok_or("bad signature encoding")?;
    let input = &token[..token.len() - token.rsplit('.').next().map_or(0, |s| s.len() + 1)];
    VerifyingKey::<Sha256>::new(key().to_public_key())
        .verify(input.as_bytes(), &signature)
        .map_err(|_| "bad signature")?;
    let claims = decode(claims).ok_or("bad claims")?;
    let issuer = claims["iss"].as_str().unwrap_or_default();
    if issuer != ISSUER && issuer != "accounts.google.com" {
        return Err("wrong issuer");
    }
    let audience = claims["aud"].as_str().unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err("wrong audience");
    }
    if claims["exp"].as_u64().unwrap_or(0) <= now {
        return Err("expired");
    }
    Ok(claims)
}

/// The metadata server's ID token endpoint
/// (`/computeMetadata/v1/instance/service-accounts/default/identity`): a
/// token for `audience`, living `ttl` seconds, the raw JWT as the body. It
/// wants `Metadata-Flavor: Google` and refuses a request that carries
/// `X-Forwarded-For` (it came through a proxy). `Err`: the refusal.
pub fn metadata_identity(req: &Request, ttl: u64) -> Result<Response, Response> {
    if req.header("metadata-flavor").as_deref() != Some("Google")
        || req.header("x-forwarded-for").is_some()
    {
        return Err(Response::new(
            403,
            "text/html",
            "Missing Metadata-Flavor:Google header.",
        ));
    }
    let audience = req.query().unwrap_or_default().split('&').find_map(|p| {
        p.strip_prefix("audience=")
            .map(|a| crate::percent_decode(a, true))
    });
    let Some(audience) = audience.filter(|a| !a.is_empty()) else {
        return Err(Response::new(
            400,
            "text/html",
            "non-empty audience parameter required",
        ));
    };
    let issued_at = now();
    Ok(Response::new(
        200,
        "text/html",
        id_token(&audience, issued_at, issued_at + ttl),
    )
    .header("metadata-flavor", "Google"))
}

/// Where the metadata server's ID tokens are served.
pub const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// Whether `host` is a Google-fronted function host.
pub fn is_google_host(host: &str) -> bool {
    let host = host.split(':').next().unwrap_or(host);
    host.ends_with(".a.run.app") || host.ends_with(".cloudfunctions.net")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unauthenticated(why: &str) -> Response {
    Response::new(
        401,
        "text/html",
        format!("<html><body>401 Unauthorized: {why}</body></html>"),
    )
    .header("www-authenticate", "Bearer error=\"invalid_token\"")
}

/// The front door of a private service on `host`: the request the
/// function sees (the token's signature removed), or Google's refusal.
pub fn admit(req: &Request) -> Result<Request, Response> {
    let host = req.header("host").unwrap_or_default();
    let name = host.split(':').next().unwrap_or(&host).to_string();
    if name.starts_with("public-") {
        return Ok(req.clone());
    }
    let header = if req.header("x-serverless-authorization").is_some() {
        "x-serverless-authorization"
    } else {
        "authorization"
    };
    let Some(token) = req
        .header(header)
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
    else {
        return Err(unauthenticated("no bearer token"));
    };
    let mut audiences = vec![
        format!("https://{name}"),
        format!("https://{name}/"),
        CUSTOM_AUDIENCE.to_string(),
    ];
    if let Some(function) = req.path().trim_start_matches('/').split('/').next() {
        audiences.push(format!("https://{name}/{function}"));
    }
    verify(&token, &audiences, now()).map_err(unauthenticated)?;
    let mut seen = req.clone();
    let unsigned = match token.rsplit_once('.') {
        Some((signed, _)) => format!("Bearer {signed}.{SIGNATURE_REMOVED}"),
        None => String::new(),
    };
    for (n, v) in &mut seen.headers {
        if n.eq_ignore_ascii_case(header) {
            *v = unsigned.clone().into_bytes();
        }
    }
    Ok(seen)
}

/// Google STS's check of an AWS subject token (`gcp-identity.md` §3): the
/// percent-encoded JSON of a `POST` `GetCallerIdentity` request to a
/// regional STS, its `x-goog-cloud-target-resource` the pool provider
/// being exchanged for, and a SigV4 signature (service `sts`, the URL's
/// region) that verifies with credentials the emulator knows, as AWS
/// would when Google replays the request.
pub fn verify_aws_subject(subject: &str, audience: &str) -> Result<(), &'static str> {
    let doc: Value =
        serde_json::from_str(&crate::percent_decode(subject, false)).map_err(|_| "not JSON")?;
    let url = doc["url"].as_str().ok_or("no url")?;
    let rest = url
        .strip_prefix("https://sts.")
        .ok_or("not a regional STS URL")?;
    let (host_rest, query) = rest.split_once('?').ok_or("no query")?;
    let region = host_rest
        .strip_suffix(".amazonaws.com")
        .ok_or("not a regional STS URL")?;
    if query != "Action=GetCallerIdentity&Version=2011-06-15" || doc["method"] != "POST" {
        return Err("not a GetCallerIdentity POST");
    }
    let headers: Vec<(String, Vec<u8>)> = doc["headers"]
        .as_array()
        .ok_or("no headers")?
        .iter()
        .filter_map(|h| {
            Some((
                h["key"].as_str()?.to_string(),
                h["value"].as_str()?.as_bytes().to_vec(),
            ))
        })
        .collect();
    let request = Request {
        method: "POST".into(),
        target: format!("/?{query}"),
        headers,
        body: Vec::new(),
    };
    if request.header("host").as_deref() != Some(format!("sts.{region}.amazonaws.com").as_str()) {
        return Err("the host header is not the URL's");
    }
    if request.header("x-goog-cloud-target-resource").as_deref() != Some(audience) {
        return Err("x-goog-cloud-target-resource is not the audience");
    }
    let endpoint = crate::aws::Endpoint::Lambda {
        region: region.to_string(),
    };
    crate::aws::verify_sigv4(&request, &endpoint, region, "sts")
        .map_err(|_| "the signature does not verify")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_audience_only_until_they_expire() {
        let t = id_token("https://svc.a.run.app", 100, 200);
        let ok = vec!["https://svc.a.run.app".to_string()];
        assert_eq!(verify(&t, &ok, 150).unwrap()["email"], EMAIL);
        assert_eq!(verify(&t, &ok, 200), Err("expired"));
        assert_eq!(
            verify(&t, &["https://other".to_string()], 150),
            Err("wrong audience")
        );
        let mut forged = t.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert_eq!(verify(&forged, &ok, 150), Err("bad signature"));
        assert_eq!(
            b64url_decode(&b64url(b"any bytes!")).unwrap(),
            b"any bytes!"
        );
        assert_eq!(jwks()["keys"][0]["kid"], KEY_ID);
    }
}
