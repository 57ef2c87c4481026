//! Managed identity to the function: an Entra ID bearer token for the
//! gateway's own identity, sent as `Authorization: Bearer …` to a Function
//! App protected by App Service authentication (Azure API Management's
//! `authentication-managed-identity` policy).
//!
//! One module per token source, each a pure request builder (the answers
//! share one parser, [`parse_token_answer`]): [`imds`] (Azure Instance Metadata Service: VMs, AKS node
//! identities), [`workload`] (AKS workload identity: the federated token
//! file exchanged at Entra ID), [`app_service`] (App Service and Container
//! Apps identity endpoint). [`environment`] reads which source applies and
//! [`chain`] turns a source into its calls; the refresh, the shared-data
//! lease and the fail-closed admission are `faas_core::credentials`, the
//! machinery `aws-lambda`'s credentials run on.

pub mod app_service;
pub mod chain;
pub mod environment;
pub mod imds;
pub mod workload;

use faas_core::credentials::SourceError;
use faas_core::{ConfigError, Fields};
use serde_json::Value;

/// An access token (the shared type: `Debug` never prints it).
pub use faas_core::credentials::BearerToken;

/// A token as a source hands it out, with its expiry.
pub type Expiring = faas_core::credentials::Expiring<BearerToken>;

/// Which identity a route uses, and for which audience (APIM's
/// `authentication-managed-identity` `resource` and `client-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// The token's audience: the Function App's application ID URI or
    /// client id (`api://…`, a GUID, or an `https://` URL).
    pub resource: String,
    /// A user-assigned identity's client id; `None`: the system-assigned
    /// identity (IMDS, App Service) or `AZURE_CLIENT_ID` (workload identity).
    pub client_id: Option<String>,
    /// `source`: which token source; `Auto` chooses from the environment
    /// (and logs which and why).
    pub source: SourceChoice,
    /// `header`: where the token goes (`Bearer <token>`), lower case. Not
    /// `authorization`: the client's `Authorization` is forwarded as sent
    /// (APIM's `output-token-variable-name` use).
    pub header: String,
}

/// `managed_identity.source`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceChoice {
    #[default]
    Auto,
    WorkloadIdentity,
    AppService,
    Imds,
}

impl SourceChoice {
    pub const NAMES: &'static str = "auto, workload_identity, app_service, imds";

    pub fn parse(name: &str) -> Option<SourceChoice> {
        Some(match name {
            "auto" => SourceChoice::Auto,
            "workload_identity" => SourceChoice::WorkloadIdentity,
            "app_service" => SourceChoice::AppService,
            "imds" => SourceChoice::Imds,
            _ => return None,
        })
    }
}

/// Headers the token may not go into: Envoy or HTTP own them.
fn reserved_header(name: &str) -> bool {
    name.starts_with(':')
        || name.starts_with("x-envoy-")
        || matches!(
            name,
            "host"
                | "content-length"
                | "content-type"
                | "transfer-encoding"
                | "connection"
                | "te"
                | "upgrade"
                | "keep-alive"
                | "x-functions-key"
                | "x-functions-clientid"
        )
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Reads `managed_identity` (`resource`, `client_id`).
pub fn read_managed_identity(fields: &mut Fields) -> Result<Option<ManagedIdentity>, ConfigError> {
    let Some(mut mi) = fields.object("managed_identity")? else {
        return Ok(None);
    };
    let resource = mi.required_string("resource")?;
    if !printable(&resource) {
        return Err(mi.error(
            "resource",
            "must be an application ID URI, client id or URL without spaces",
        ));
    }
    let client_id = mi.non_empty_string("client_id")?;
    if client_id.as_deref().is_some_and(|c| !printable(c)) {
        return Err(mi.error("client_id", "must be a client id without spaces"));
    }
    let source = match mi.string("source")? {
        None => SourceChoice::Auto,
        Some(name) => SourceChoice::parse(&name)
            .ok_or_else(|| mi.error("source", format!("must be one of {}", SourceChoice::NAMES)))?,
    };
    let header = match mi.non_empty_string("header")? {
        None => "authorization".to_string(),
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            let token = lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token || reserved_header(&lower) {
                return Err(mi.error(
                    "header",
                    "must be a header name the function may receive (not a pseudo, hop-by-hop, \
                     framing, x-envoy-* or function-key header)",
                ));
            }
            lower
        }
    };
    mi.finish()?;
    Ok(Some(ManagedIdentity {
        resource,
        client_id,
        source,
        header,
    }))
}

/// The Envoy clusters the token sources are reached through (top-level
/// config, documented defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clusters {
    pub imds: String,
    pub identity_endpoint: String,
    pub entra: String,
    pub token_files: String,
}

impl Clusters {
    pub fn read(fields: &mut Fields) -> Result<Clusters, ConfigError> {
        let mut cluster = |field: &str, default: &str| -> Result<String, ConfigError> {
            Ok(fields
                .non_empty_string(field)?
                .unwrap_or_else(|| default.to_string()))
        };
        Ok(Clusters {
            imds: cluster("imds_cluster", "azure_imds")?,
            identity_endpoint: cluster("identity_endpoint_cluster", "azure_identity_endpoint")?,
            entra: cluster("entra_cluster", "azure_entra")?,
            token_files: cluster("token_file_cluster", "azure_token_files")?,
        })
    }
}

/// A token document's `access_token`: present, printable (it becomes a
/// header value).
fn access_token(doc: &Value) -> Result<BearerToken, SourceError> {
    doc.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| printable(t))
        .map(|t| BearerToken(t.to_string()))
        .ok_or_else(|| SourceError::Malformed("no usable \"access_token\"".into()))
}

/// A whole number of seconds, as a JSON number or a numeric string (IMDS
/// and App Service write `expires_on` and `expires_in` as strings).
fn seconds(doc: &Value, field: &str) -> Option<u64> {
    match doc.get(field)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An Entra ID token answer (IMDS, App Service, the token endpoint): the
/// token and its expiry, from `expires_on` (Unix seconds) or else
/// `expires_in` (seconds from `now`).
pub fn parse_token_answer(status: u32, body: &[u8], now: u64) -> Result<Expiring, SourceError> {
    let doc: Option<Value> = serde_json::from_slice(body).ok();
    if status != 200 {
        let code = doc
            .as_ref()
            .and_then(|d| d.get("error"))
            .and_then(Value::as_str)
            .map(faas_core::credentials::short_code);
        return Err(match code {
            Some(code) if !code.is_empty() => {
                SourceError::Refused(format!("{code} (HTTP {status})"))
            }
            _ => SourceError::Status(status),
        });
    }
    let doc = doc.ok_or_else(|| SourceError::Malformed("not a JSON document".into()))?;
    let token = access_token(&doc)?;
    let expires_at = seconds(&doc, "expires_on")
        .or_else(|| seconds(&doc, "expires_in").map(|s| now.saturating_add(s)))
        .ok_or_else(|| SourceError::Malformed("no \"expires_on\" or \"expires_in\"".into()))?;
    Ok(Expiring {
        credentials: token,
        expires_at,
    })
}

/// `<path>?api-version=…&resource=…[&client_id=…]`: the token request
/// target IMDS and the identity endpoint share.
fn token_target(path: &str, api_version: &str, resource: &str, client_id: Option<&str>) -> String {
    let mut target = format!(
        "{path}?api-version={api_version}&resource={}",
        form_encode(resource)
    );
    if let Some(id) = client_id {
        target.push_str("&client_id=");
        target.push_str(&form_encode(id));
    }
    target
}

/// `application/x-www-form-urlencoded` and query encoding of one value.
pub fn form_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let hex = |nibble: u8| char::from(HEX.get(usize::from(nibble & 0xf)).copied().unwrap_or(b'0'));
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_take_expires_on_or_expires_in() {
        let imds = br#"{"access_token":"eyJ0.a.b","expires_on":"1800000000","expires_in":"3599","token_type":"Bearer"}"#;
        let t = parse_token_answer(200, imds, 1_799_996_401).unwrap();
        assert_eq!(
            (t.credentials.0.as_str(), t.expires_at),
            ("eyJ0.a.b", 1_800_000_000)
        );
        let entra = br#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}"#;
        assert_eq!(
            parse_token_answer(200, entra, 100).unwrap().expires_at,
            3699
        );
        let refused =
            br#"{"error":"invalid_client","error_description":"AADSTS700016: secret-ish detail"}"#;
        let e = parse_token_answer(401, refused, 0).unwrap_err();
        assert_eq!(e, SourceError::Refused("invalid_client (HTTP 401)".into()));
        assert!(
            !e.to_string().contains("AADSTS"),
            "descriptions are not repeated"
        );
        assert_eq!(
            parse_token_answer(500, b"", 0).unwrap_err(),
            SourceError::Status(500)
        );
        for bad in [
            &br#"{"expires_in":1}"#[..],
            br#"{"access_token":"a b","expires_in":1}"#,
            br#"{"access_token":"t"}"#,
            b"<html>",
        ] {
            assert!(matches!(
                parse_token_answer(200, bad, 0),
                Err(SourceError::Malformed(_))
            ));
        }
        assert!(!format!("{:?}", t.credentials).contains("eyJ0"));
    }

    #[test]
    fn form_encoding_keeps_unreserved_only() {
        assert_eq!(
            form_encode("api://fn-app/.default"),
            "api%3A%2F%2Ffn-app%2F.default"
        );
        assert_eq!(form_encode("a b+c"), "a%20b%2Bc");
    }
}
