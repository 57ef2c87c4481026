//! Fakes of the platform's credential sources, for the credential tests:
//! IMDSv2 (token enforced), ECS / EKS Pod Identity container credentials
//! (authorization checked) and STS (`AssumeRoleWithWebIdentity` with the
//! expected token, `AssumeRole` with its SigV4 signature verified).
//!
//! Azure's managed-identity token sources too: IMDS
//! (`/metadata/identity/oauth2/token`, `Metadata: true` enforced), the
//! Entra ID token endpoint (`/<tenant>/oauth2/v2.0/token`, the federated
//! client assertion checked) and the App Service identity endpoint
//! (`/msi/token`, `X-IDENTITY-HEADER` checked). Their bearer tokens are
//! registered with their audience and expiry; [`bearer_audience`] is how
//! the Azure host's protected function checks them.
//!
//! The session credentials it hands out are derived from their serial and
//! expiry, so the AWS front doors ([`crate::aws`]) accept them, and refuse
//! them like AWS (`ExpiredTokenException`) once they expire. A test sets
//! the lifetime, makes the sources fail, and counts the calls.

use crate::http::{Handler, Reply, Request, Response};
use crate::percent_decode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Session credentials this module issued, recovered from the key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub secret: String,
    pub token: String,
    pub expires_at: u64,
}

const PREFIX: &str = "ASIAFAKE";

/// The key id, secret and token of credentials number `serial`.
pub fn issue(serial: u64, expires_at: u64) -> (String, Issued) {
    (
        format!("{PREFIX}{expires_at}X{serial}"),
        Issued {
            secret: format!("fakeSecret{expires_at}x{serial}"),
            token: format!("fakeToken{expires_at}x{serial}"),
            expires_at,
        },
    )
}

/// The credentials behind a key id [`issue`] made.
pub fn issued(access_key: &str) -> Option<Issued> {
    let (expires, serial) = access_key.strip_prefix(PREFIX)?.split_once('X')?;
    let (expires_at, serial) = (expires.parse().ok()?, serial.parse().ok()?);
    Some(issue(serial, expires_at).1)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(unix: u64) -> String {
    let time = aws_smithy_types::DateTime::from_secs(i64::try_from(unix).unwrap_or(i64::MAX));
    time.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Bearer tokens the Azure fakes issued: token → (audience, expiry).
static BEARER_TOKENS: Mutex<BTreeMap<String, (String, u64)>> = Mutex::new(BTreeMap::new());

/// The audience of an issued, unexpired bearer token.
pub fn bearer_audience(token: &str) -> Option<String> {
    let tokens = BEARER_TOKENS.lock().ok()?;
    let (audience, expires_at) = tokens.get(token)?;
    (now() < *expires_at).then(|| audience.clone())
}

/// What a test controls and observes.
pub struct Controls {
    /// The federated token (client assertion) Entra ID accepts.
    pub federated_token: Mutex<Option<String>>,
    /// The client id Entra ID expects with it.
    pub azure_client_id: Mutex<Option<String>>,
    /// The `X-IDENTITY-HEADER` the App Service endpoint requires.
    pub identity_header: Mutex<Option<String>>,
    /// Lifetime of issued credentials, seconds.
    pub ttl_seconds: AtomicU64,
    /// Every endpoint answers 500 while set.
    pub failing: AtomicBool,
    /// The `Authorization` the container endpoint requires (`None`: any).
    pub container_authorization: Mutex<Option<String>>,
    /// The `WebIdentityToken` STS requires.
    pub web_identity_token: Mutex<Option<String>>,
    /// The subject token Google STS requires (`None`: any).
    pub gcp_subject_token: Mutex<Option<String>>,
    /// Federated access tokens Google STS issued (generateIdToken wants one).
    gcp_access_tokens: Mutex<BTreeSet<String>>,
    serial: AtomicU64,
    imds_tokens: Mutex<BTreeSet<String>>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl Controls {
    /// Calls answered per kind: `imds_token`, `imds_role`,
    /// `imds_credentials`, `container`, `web_identity`, `assume_role`,
    /// `azure_imds`, `entra`, `app_service`, `gcp_identity`, `gcp_sts`,
    /// `gcp_generate_id_token`, `gcp_oauth2` (successes), `refused` (wrong
    /// token, signature, header or method), `failed`.
    pub fn calls(&self, kind: &str) -> u64 {
        self.calls
            .lock()
            .map(|c| c.get(kind).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn count(&self, kind: &'static str) {
        if let Ok(mut c) = self.calls.lock() {
            *c.entry(kind).or_default() += 1;
        }
    }

    /// An Entra ID token answer for `resource`, registered for the
    /// protected function. `expires_on` as IMDS and App Service write it
    /// (a numeric string), or only `expires_in` as the token endpoint does.
    fn bearer_answer(&self, kind: &'static str, resource: &str, expires_on: bool) -> Response {
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let ttl = self.ttl_seconds.load(Ordering::SeqCst);
        let expires_at = now() + ttl;
        let token = format!("eyJmi.{kind}.{serial}.{expires_at}");
        if let Ok(mut tokens) = BEARER_TOKENS.lock() {
            tokens.insert(token.clone(), (resource.to_string(), expires_at));
        }
        self.count(kind);
        let mut doc = serde_json::json!({
            "access_token": token,
            "expires_in": if expires_on { serde_json::json!(ttl.to_string()) } else { serde_json::json!(ttl) },
            "token_type": "Bearer",
        });
        if expires_on {
            doc["expires_on"] = serde_json::json!(expires_at.to_string());
            doc["resource"] = serde_json::json!(resource);
        }
        Response::new(200, "application/json", doc.to_string())
    }

    fn next_credentials(&self) -> (String, Issued) {
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        issue(serial, now() + self.ttl_seconds.load(Ordering::SeqCst))
    }
}

pub struct Fakes {
    pub port: u16,
    pub controls: Arc<Controls>,
}

impl Fakes {
    /// Starts the fakes on a loopback port of their own.
    pub fn start(ttl_seconds: u64) -> std::io::Result<Fakes> {
        let controls = Arc::new(Controls {
            federated_token: Mutex::new(None),
            azure_client_id: Mutex::new(None),
            identity_header: Mutex::new(None),
            ttl_seconds: AtomicU64::new(ttl_seconds),
            failing: AtomicBool::new(false),
            container_authorization: Mutex::new(None),
            web_identity_token: Mutex::new(None),
            gcp_subject_token: Mutex::new(None),
            gcp_access_tokens: Mutex::new(BTreeSet::new()),
            serial: AtomicU64::new(1),
            imds_tokens: Mutex::new(BTreeSet::new()),
            calls: Mutex::new(BTreeMap::new()),
        });
        let state = Arc::clone(&controls);
        let handler: Handler = Arc::new(move |req| {
            let state = Arc::clone(&state);
            Box::pin(async move { Reply::Response(answer(&state, &req)) })
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = crate::serve_background(listener, handler)?;
        Ok(Fakes {
            port: addr.port(),
            controls,
        })
    }
}

const ROLE: &str = "gateway-role";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// IMDSv2: a request for metadata must carry a session token the fakes
/// issued, else 401.
fn imds_session(state: &Controls, req: &Request) -> Result<(), Response> {
    let valid = req
        .header("x-aws-ec2-metadata-token")
        .is_some_and(|t| state.imds_tokens.lock().is_ok_and(|s| s.contains(&t)));
    if valid {
        return Ok(());
    }
    state.count("refused");
    Err(Response::new(401, "text/plain", ""))
}

fn answer(state: &Controls, req: &Request) -> Response {
    if state.failing.load(Ordering::SeqCst) {
        state.count("failed");
        return Response::new(500, "text/plain", "source down");
    }
    let path = req.path();
    match (req.method.as_str(), path) {
        ("PUT", "/latest/api/token") => {
            if req.header("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                state.count("refused");
                return Response::new(400, "text/plain", "missing ttl");
            }
            let token = format!("imds-token-{}", state.serial.fetch_add(1, Ordering::SeqCst));
            if let Ok(mut tokens) = state.imds_tokens.lock() {
                tokens.insert(token.clone());
            }
            state.count("imds_token");
            Response::new(200, "text/plain", token)
        }
        ("GET", "/latest/meta-data/placement/availability-zone") => {
            if let Err(refused) = imds_session(state, req) {
                return refused;
            }
            state.count("imds_region");
            Response::new(200, "text/plain", "us-east-1a")
        }
        // The role listing answers with or without the trailing slash (the
        // SDKs ask with it, Google's AWS source without), as IMDS does.
        ("GET", p) if p.starts_with(ROLE_PATH.trim_end_matches('/')) => {
            if let Err(refused) = imds_session(state, req) {
                return refused;
            }
            match p.get(ROLE_PATH.len()..).unwrap_or_default() {
                "" => {
                    state.count("imds_role");
                    Response::new(200, "text/plain", ROLE)
                }
                ROLE => {
                    state.count("imds_credentials");
                    json_credentials(state)
                }
                _ => Response::new(404, "text/plain", ""),
            }
        }
        ("GET", p) if p.starts_with("/v1/credentials") || p.starts_with("/v2/credentials") => {
            let expected = state
                .container_authorization
                .lock()
                .ok()
                .and_then(|e| e.clone());
            if expected.is_some_and(|e| req.header("authorization") != Some(e)) {
                state.count("refused");
                return Response::new(401, "application/json", r#"{"Message":"bad token"}"#);
            }
            state.count("container");
            json_credentials(state)
        }
        ("POST", "/") => sts(state, req),
        ("GET", "/metadata/identity/oauth2/token") => azure_imds(state, req),
        ("GET", "/msi/token") => app_service(state, req),
        ("POST", p) if p.ends_with("/oauth2/v2.0/token") => entra(state, req),
        ("GET", crate::google::IDENTITY_PATH) => gcp_identity(state, req),
        ("POST", "/v1/token") => gcp_sts(state, req),
        ("POST", "/token") => {
            let token_url = "https://oauth2.googleapis.com/token";
            match crate::google::token_endpoint(&form(&req.body), token_url, now()) {
                Ok(answer) => {
                    state.count("gcp_oauth2");
                    answer
                }
                Err(refused) => {
                    state.count("refused");
                    refused
                }
            }
        }
        ("POST", p) if p.ends_with(":generateIdToken") => gcp_generate_id_token(state, req),
        ("GET", "/oauth2/v3/certs") => {
            Response::new(200, "application/json", crate::google::jwks().to_string())
        }
        _ => Response::new(404, "text/plain", "no such fake"),
    }
}

/// GCE's metadata server's ID tokens ([`crate::google::metadata_identity`]),
/// living the fakes' `ttl_seconds`.
fn gcp_identity(state: &Controls, req: &Request) -> Response {
    match crate::google::metadata_identity(req, state.ttl_seconds.load(Ordering::SeqCst)) {
        Ok(token) => {
            state.count("gcp_identity");
            token
        }
        Err(refused) => {
            state.count("refused");
            refused
        }
    }
}

/// Google STS's token exchange (RFC 8693): a federated access token for
/// the subject token, if it is the one required.
fn gcp_sts(state: &Controls, req: &Request) -> Response {
    let f = form(&req.body);
    let expected = state.gcp_subject_token.lock().ok().and_then(|t| t.clone());
    // An AWS subject is a signed GetCallerIdentity that Google replays to
    // AWS: here the emulator's own SigV4 check stands in for AWS.
    let aws = f.get("subject_token_type").map(String::as_str)
        == Some("urn:ietf:params:aws:token-type:aws4_request");
    if aws {
        let subject = f.get("subject_token").cloned().unwrap_or_default();
        let audience = f.get("audience").cloned().unwrap_or_default();
        if let Err(why) = crate::google::verify_aws_subject(&subject, &audience) {
            state.count("refused");
            let body = json!({"error": "invalid_grant", "error_description": why});
            return Response::new(400, "application/json", body.to_string());
        }
        state.count("gcp_sts_aws");
    }
    let ok = f.get("grant_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:grant-type:token-exchange")
        && f.get("requested_token_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:token-type:access_token")
        && f.get("audience")
            .is_some_and(|a| a.starts_with("//iam.googleapis.com/"))
        && f.get("subject_token")
            .is_some_and(|t| !t.is_empty() && (aws || expected.as_ref().is_none_or(|e| e == t)));
    if !ok {
        state.count("refused");
        return Response::new(400, "application/json", r#"{"error":"invalid_grant"}"#);
    }
    state.count("gcp_sts");
    let token = format!(
        "ya29.federated-{}",
        state.serial.fetch_add(1, Ordering::SeqCst)
    );
    if let Ok(mut tokens) = state.gcp_access_tokens.lock() {
        tokens.insert(token.clone());
    }
    let doc = serde_json::json!({"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600});
    Response::new(200, "application/json", doc.to_string())
}

/// The IAM Credentials API's `generateIdToken`, for a federated access
/// token STS issued: an ID token for the body's `audience`.
fn gcp_generate_id_token(state: &Controls, req: &Request) -> Response {
    let bearer = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
    let known =
        bearer.is_some_and(|t| state.gcp_access_tokens.lock().is_ok_and(|s| s.contains(&t)));
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let audience = body["audience"].as_str().unwrap_or_default().to_string();
    if !known || audience.is_empty() {
        state.count("refused");
        return Response::new(
            401,
            "application/json",
            r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#,
        );
    }
    state.count("gcp_generate_id_token");
    let issued_at = now();
    let token = crate::google::id_token(
        &audience,
        issued_at,
        issued_at + state.ttl_seconds.load(Ordering::SeqCst),
    );
    Response::new(
        200,
        "application/json",
        serde_json::json!({"token": token}).to_string(),
    )
}

fn json_credentials(state: &Controls) -> Response {
    let (key, issued) = state.next_credentials();
    let doc = serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": key,
        "SecretAccessKey": issued.secret,
        "Token": issued.token,
        "Expiration": rfc3339(issued.expires_at),
    });
    Response::new(200, "application/json", doc.to_string())
}

fn query(req: &Request) -> BTreeMap<String, String> {
    form(req.query().unwrap_or_default().as_bytes())
}

fn azure_error(status: u16, code: &str) -> Response {
    Response::new(
        status,
        "application/json",
        serde_json::json!({"error": code, "error_description": "refused by the fake"}).to_string(),
    )
}

/// Azure IMDS: `Metadata: true`, an api-version and a resource.
fn azure_imds(state: &Controls, req: &Request) -> Response {
    let q = query(req);
    if req.header("metadata").as_deref() != Some("true") || !q.contains_key("api-version") {
        state.count("refused");
        return azure_error(400, "bad_request");
    }
    match q.get("resource") {
        Some(resource) if !resource.is_empty() => state.bearer_answer("azure_imds", resource, true),
        _ => {
            state.count("refused");
            azure_error(400, "invalid_resource")
        }
    }
}

/// App Service identity endpoint: the secret header, api-version 2019-08-01.
fn app_service(state: &Controls, req: &Request) -> Response {
    let q = query(req);
    let expected = state.identity_header.lock().ok().and_then(|h| h.clone());
    if expected.is_none() || req.header("x-identity-header") != expected {
        state.count("refused");
        return azure_error(401, "unauthorized");
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        state.count("refused");
        return azure_error(400, "bad_api_version");
    }
    match q.get("resource") {
        Some(resource) if !resource.is_empty() => {
            state.bearer_answer("app_service", resource, true)
        }
        _ => azure_error(400, "invalid_resource"),
    }
}

/// Entra ID's token endpoint: the client-assertion grant with the expected
/// federated token and client id, for `<resource>/.default`.
fn entra(state: &Controls, req: &Request) -> Response {
    let f = form(&req.body);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let assertion = state.federated_token.lock().ok().and_then(|t| t.clone());
    let client = state.azure_client_id.lock().ok().and_then(|c| c.clone());
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        || assertion.as_deref() != Some(field("client_assertion"))
        || client.is_some_and(|c| c != field("client_id"))
    {
        state.count("refused");
        return azure_error(401, "invalid_client");
    }
    match field("scope").strip_suffix("/.default") {
        Some(resource) if !resource.is_empty() => state.bearer_answer("entra", resource, false),
        _ => {
            state.count("refused");
            azure_error(400, "invalid_scope")
        }
    }
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k, true), percent_decode(v, true)))
        .collect()
}

fn sts_error(status: u16, code: &str) -> Response {
    Response::new(
        status,
        "text/xml",
        format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>refused</Message></Error></ErrorResponse>"),
    )
}

fn sts(state: &Controls, req: &Request) -> Response {
    let params = form(&req.body);
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    let kind = match action {
        "AssumeRoleWithWebIdentity" => {
            let expected = state.web_identity_token.lock().ok().and_then(|e| e.clone());
            if expected.is_none() || params.get("WebIdentityToken") != expected.as_ref() {
                state.count("refused");
                return sts_error(400, "InvalidIdentityToken");
            }
            "web_identity"
        }
        "AssumeRole" => {
            let endpoint = crate::aws::Endpoint::Lambda {
                region: "us-east-1".into(),
            };
            if crate::aws::verify_sigv4(req, &endpoint, "us-east-1", "sts").is_err() {
                state.count("refused");
                return sts_error(403, "SignatureDoesNotMatch");
            }
            "assume_role"
        }
        _ => return sts_error(400, "InvalidAction"),
    };
    if !params.get("RoleArn").is_some_and(|r| r.contains(":role/")) {
        return sts_error(400, "ValidationError");
    }
    state.count(kind);
    let (key, issued) = state.next_credentials();
    Response::new(
        200,
        "text/xml",
        format!(
            "<{action}Response><{action}Result><Credentials><AccessKeyId>{key}</AccessKeyId>\
             <SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken>\
             <Expiration>{}</Expiration></Credentials></{action}Result></{action}Response>",
            issued.secret,
            issued.token,
            rfc3339(issued.expires_at)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credentials_are_recovered_from_their_key_id() {
        let (key, issued_now) = issue(7, 1_795_000_000);
        assert_eq!(issued(&key), Some(issued_now));
        assert_eq!(issued("AKIDEXAMPLE"), None);
        assert_eq!(issued("ASIAFAKEnotanumberX1"), None);
        assert_eq!(rfc3339(1_795_284_000), "2026-11-21T18:00:00Z");
    }
}
