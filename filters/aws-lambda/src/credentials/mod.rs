//! Credentials: static ones, and those from the platform.
//!
//! One module per source, as the AWS SDKs and Envoy's `credential_providers`
//! split them, each a pure request builder and answer parser:
//! [`imds`] (EC2 instance role, IMDSv2), [`container`] (ECS task role, EKS
//! Pod Identity), [`sts`] (web identity / IRSA and AssumeRole).
//! [`environment`] reads which source applies, [`chain`] turns a source
//! into its sequence of calls, [`refresh`] decides when to fetch again, and
//! [`provider`] runs it all over the [`faas_core::Host`] port: shared data
//! so one VM refreshes for all, stats, and the fail-closed admission.

pub mod chain;
pub mod container;
pub mod environment;
pub mod imds;
pub mod profile;
pub mod provider;
pub mod sts;

/// The refresh schedule and the generic machinery live in `faas-core`,
/// shared with the other filters' platform sources.
pub use faas_core::credentials::{refresh, short_code, SourceError, SourceRequest};

/// AWS credentials (the type lives with the signer in `faas-core`).
pub use faas_core::sigv4::Credentials;

/// Credentials as a source hands them out, with their expiry.
pub type Expiring = faas_core::credentials::Expiring<Credentials>;

/// The JSON document IMDS and the container endpoints share:
/// `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (RFC 3339).
pub(crate) fn parse_json_credentials(body: &[u8]) -> Result<Expiring, SourceError> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| SourceError::Malformed("not a JSON document".into()))?;
    if let Some(code) = doc.get("Code").and_then(|c| c.as_str()) {
        if code != "Success" {
            return Err(SourceError::Refused(short_code(code)));
        }
    }
    let field = |name: &str| -> Result<String, SourceError> {
        doc.get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| SourceError::Malformed(format!("no \"{name}\"")))
    };
    expiring_from(field, "Token", "\"Expiration\"")
}

/// Credentials from a source's fields, however the document names them:
/// `field` reads one by name (erring with what is missing), `token` is the
/// session token's name, `shown_expiration` how errors name the expiry.
pub(crate) fn expiring_from(
    field: impl Fn(&str) -> Result<String, SourceError>,
    token: &str,
    shown_expiration: &str,
) -> Result<Expiring, SourceError> {
    let expires_at = crate::clock::parse_rfc3339(&field("Expiration")?).ok_or_else(|| {
        SourceError::Malformed(format!("{shown_expiration} is not an RFC 3339 time"))
    })?;
    Ok(Expiring {
        credentials: Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field(token)?),
        },
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Code":"Success","LastUpdated":"2026-11-21T12:00:00Z","Type":"AWS-HMAC",
        "AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"secret/key","Token":"token==",
        "Expiration":"2026-11-21T18:00:00Z"}"#;

    #[test]
    fn the_shared_json_document_parses_with_its_expiry() {
        let e = parse_json_credentials(DOC.as_bytes()).unwrap();
        assert_eq!(e.credentials.access_key_id, "ASIAEXAMPLE");
        assert_eq!(e.credentials.secret_access_key, "secret/key");
        assert_eq!(e.credentials.session_token.as_deref(), Some("token=="));
        assert_eq!(e.expires_at, 1_795_284_000);
    }

    #[test]
    fn missing_fields_and_failure_codes_are_errors_without_values() {
        let no_token = DOC.replace(r#""Token":"token==","#, "");
        assert_eq!(
            parse_json_credentials(no_token.as_bytes()),
            Err(SourceError::Malformed("no \"Token\"".into()))
        );
        let failed = DOC.replace("Success", "Failure <script>");
        assert_eq!(
            parse_json_credentials(failed.as_bytes()),
            Err(SourceError::Refused("Failurescript".into()))
        );
        let bad_time = DOC.replace("2026-11-21T18:00:00Z", "tomorrow");
        assert!(matches!(
            parse_json_credentials(bad_time.as_bytes()),
            Err(SourceError::Malformed(m)) if m.contains("RFC 3339")
        ));
        assert!(parse_json_credentials(b"<html>").is_err());
    }

    #[test]
    fn debug_output_hides_tokens() {
        let r = SourceRequest {
            method: "GET",
            path: "/x".into(),
            headers: vec![("authorization", "secret-token".into())],
            body: b"WebIdentityToken=jwt".to_vec(),
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("secret-token") && !shown.contains("jwt"),
            "{shown}"
        );
        let e = parse_json_credentials(DOC.as_bytes()).unwrap();
        let shown = format!("{e:?}");
        assert!(shown.contains("ASIAEXAMPLE"), "the key id is not secret");
        assert!(
            !shown.contains("secret/key") && !shown.contains("token=="),
            "{shown}"
        );
    }
}
