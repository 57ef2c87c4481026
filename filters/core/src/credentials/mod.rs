//! Credentials a filter fetches from its platform and keeps fresh: the
//! machinery every source shares, whatever it hands out (AWS session
//! credentials, an Entra ID bearer token).
//!
//! - [`refresh`]: when to fetch again (ahead of the expiry, with jitter;
//!   capped backoff after failures). Pure.
//! - [`provider`]: runs the sources over the [`crate::Host`] port: one
//!   shared-data entry per source so one VM refreshes for all (a CAS lease),
//!   the stats, and the fail-closed admission (503 `credentials_unavailable`).
//!
//! A filter brings its sources: a [`Source`] turns its settings into calls
//! ([`Next::Call`]) and answers into credentials ([`Next::Done`]); its
//! [`Secret`] says how the credentials are stored and what a log may show.

pub mod provider;
pub mod refresh;

use crate::request::Callout;
use serde_json::Value;
use std::time::SystemTime;

/// A bearer token (Entra ID's access tokens, Google's ID tokens): the
/// whole value is the secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl Secret for BearerToken {
    fn to_json(&self) -> Value {
        serde_json::json!({ "a": self.0 })
    }

    fn from_json(doc: &Value) -> Option<Self> {
        doc.get("a")
            .and_then(Value::as_str)
            .map(|t| BearerToken(t.to_string()))
    }

    /// Nothing about a bearer token is safe to log.
    fn log_id(&self) -> String {
        String::new()
    }
}

/// What a source hands out. `Debug` must not print the secret itself.
pub trait Secret: Clone + PartialEq + std::fmt::Debug {
    /// The secret's fields in the shared-data entry (an object).
    fn to_json(&self) -> Value;
    fn from_json(doc: &Value) -> Option<Self>;
    /// What the refresh log line may say about it (a key id, or nothing).
    fn log_id(&self) -> String;
}

/// Credentials as a source hands them out: with the Unix second they stop
/// being valid, which every platform source reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiring<S> {
    pub credentials: S,
    pub expires_at: u64,
}

/// What a source chains from (AWS's AssumeRole on top of other credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base<S> {
    /// Fixed credentials (config or environment).
    Static(S),
    /// Another registered source, by index.
    Chain(usize),
}

/// What a fetch needs besides the source: the clusters, the time, and the
/// base credentials of a chained source.
pub struct Context<'a, C, S> {
    pub clusters: &'a C,
    pub now: SystemTime,
    pub base: Option<&'a S>,
}

/// What the provider does next.
#[derive(Debug)]
pub enum Next<Step, S> {
    /// Send this call; its answer comes back with `Step`.
    Call(Step, Callout),
    /// The fetch ended; the error text names the step, never a value.
    Done(Result<Expiring<S>, String>),
}

/// One platform source: its settings, and the calls that fetch from it.
pub trait Source {
    type Secret: Secret;
    /// Where a fetch is between calls.
    type Step;
    /// The Envoy clusters the calls go through.
    type Clusters;

    /// The name in stats, logs and error messages (`imds`, ...).
    fn label(&self) -> &'static str;
    /// The shared-data key of this source's entry: equal for equal
    /// settings, different otherwise, and never a secret in clear.
    fn key(&self) -> String;
    /// The credentials this source needs before it can fetch, if any.
    fn base(&self) -> Option<&Base<Self::Secret>> {
        None
    }
    /// The first call of a fetch.
    fn start(
        &self,
        ctx: &Context<'_, Self::Clusters, Self::Secret>,
    ) -> Next<Self::Step, Self::Secret>;
    /// The next move after `step`'s answer.
    fn advance(
        &self,
        step: Self::Step,
        status: u16,
        body: &[u8],
        ctx: &Context<'_, Self::Clusters, Self::Secret>,
    ) -> Next<Self::Step, Self::Secret>;
}

/// Why a source yielded nothing. Messages name fields and statuses, never
/// values: they end up in logs and error bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceError {
    /// The endpoint answered with this HTTP status.
    Status(u32),
    /// The answer was not what the source documents; the text says what.
    Malformed(String),
    /// The source answered with an error of its own (a short code).
    Refused(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Status(s) => write!(f, "the endpoint answered HTTP {s}"),
            SourceError::Malformed(what) => write!(f, "malformed answer: {what}"),
            SourceError::Refused(code) => write!(f, "refused: {code}"),
        }
    }
}

/// An error code from a source, kept short and to its safe characters.
pub fn short_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect()
}

/// A token file as the token-file listener serves it (`file_server`):
/// the token, trimmed, or why not. Never the content in an error.
pub fn token_file_content(status: u16, body: &[u8]) -> Result<String, String> {
    if status != 200 {
        return Err(format!(
            "token file: the token-file cluster answered HTTP {status}"
        ));
    }
    let token = std::str::from_utf8(body).map(str::trim).unwrap_or_default();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("token file: empty or not a printable token".into());
    }
    Ok(token.to_string())
}

/// How long one call to a source may take.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// The `:authority` of token-file reads (the loopback token-file listener).
pub const TOKEN_FILE_AUTHORITY: &str = "localhost";

/// A request to a metadata, token or STS endpoint, for the provider to send
/// through the source's Envoy cluster. Header values and bodies may hold
/// tokens: never log them.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for SourceRequest {
    // Tokens travel in headers and bodies: print neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("SourceRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A source request as a callout to `cluster`, naming `authority`.
pub fn callout(cluster: &str, authority: &str, request: SourceRequest) -> Callout {
    let mut headers = vec![
        (":method".to_string(), request.method.to_string()),
        (":path".to_string(), request.path),
        (":authority".to_string(), authority.to_string()),
    ];
    headers.extend(request.headers.into_iter().map(|(n, v)| (n.to_string(), v)));
    Callout {
        cluster: cluster.to_string(),
        headers,
        body: request.body,
        timeout: CALL_TIMEOUT,
    }
}

/// The read of a token file (its path on the token-file listener).
pub fn token_file_request(path: &str) -> SourceRequest {
    SourceRequest {
        method: "GET",
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}
