//! Workload Identity Federation (`external_account`, `gcp-identity.md` §3):
//! a gateway outside Google Cloud (on AWS, Azure or any OIDC platform)
//! trades its platform's token for a Google ID token, in three calls:
//! 1. the subject token: a file (read through the token-file cluster, the
//!    VM has no filesystem) or a URL (Azure IMDS, an OIDC endpoint);
//! 2. Google STS's token exchange (RFC 8693) → a federated access token;
//! 3. the IAM Credentials API's `generateIdToken` for the impersonated
//!    service account, with that access token → the ID token.
//!
//! The configuration is the credential configuration file that
//! `gcloud iam workload-identity-pools create-cred-config` writes, pasted
//! as `external_account` (top level). Pure: `identity::Source` sends the
//! calls.

use crate::aws_subject::{self, AwsSource};
pub use crate::wire::Endpoint;
use crate::wire::{query_encode, token_in_json};
use faas_core::credentials::{
    callout, token_file_content, token_file_request, SourceRequest, TOKEN_FILE_AUTHORITY,
};
use faas_core::uri::FunctionUri;
use faas_core::{Callout, ConfigError, Fields};

/// How the subject token is read from its source's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// The whole answer, trimmed.
    Text,
    /// A field of a JSON answer.
    Json(String),
}

/// Where the subject token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    File {
        path: String,
        format: Format,
    },
    Url {
        authority: String,
        path: String,
        headers: Vec<(String, String)>,
        format: Format,
    },
    /// AWS (`environment_id: aws1`): a signed `GetCallerIdentity`.
    Aws(Box<AwsSource>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAccount {
    /// The workload identity pool provider (STS `audience`).
    pub audience: String,
    pub subject_token_type: String,
    pub sts: Endpoint,
    /// `…/serviceAccounts/<sa>:generateIdToken` on the IAM Credentials API.
    pub id_token: Endpoint,
    pub subject: Subject,
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

fn endpoint(fields: &Fields, field: &str, url: &str) -> Result<Endpoint, ConfigError> {
    let uri = FunctionUri::parse(url).map_err(|why| fields.error(field, why))?;
    let mut path = if uri.path.is_empty() {
        "/".to_string()
    } else {
        uri.path.clone()
    };
    if !uri.query.is_empty() {
        path.push('?');
        path.push_str(&uri.query);
    }
    Ok(Endpoint {
        authority: uri.authority(),
        path,
    })
}

fn read_format(source: &mut Fields) -> Result<Format, ConfigError> {
    let Some(mut format) = source.object("format")? else {
        return Ok(Format::Text);
    };
    let kind = format.string("type")?;
    let field = format.non_empty_string("subject_token_field_name")?;
    let result = match (kind.as_deref(), field) {
        (None | Some("text"), None) => Format::Text,
        (Some("json"), Some(name)) => Format::Json(name),
        (Some("json"), None) => {
            return Err(format.error("subject_token_field_name", "is required with type json"))
        }
        (None | Some("text"), Some(_)) => {
            return Err(format.error("subject_token_field_name", "applies to type json only"))
        }
        (Some(_), _) => return Err(format.error("type", "must be one of text, json")),
    };
    format.finish()?;
    Ok(result)
}

/// Reads `external_account` (the credential configuration file's JSON).
pub fn read(fields: &mut Fields) -> Result<Option<ExternalAccount>, ConfigError> {
    let Some(mut account) = fields.object("external_account")? else {
        return Ok(None);
    };
    if account.string("type")?.as_deref() != Some("external_account") {
        return Err(account.error("type", "must be external_account"));
    }
    let audience = account.required_string("audience")?;
    let subject_token_type = account.required_string("subject_token_type")?;
    let token_url = account
        .non_empty_string("token_url")?
        .unwrap_or_else(|| "https://sts.googleapis.com/v1/token".to_string());
    let sts = endpoint(&account, "token_url", &token_url)?;
    let Some(impersonation) = account.non_empty_string("service_account_impersonation_url")? else {
        return Err(account.error(
            "service_account_impersonation_url",
            "is required: Google issues ID tokens for a service account, which the federated identity impersonates",
        ));
    };
    let Some(base) = impersonation.strip_suffix(":generateAccessToken") else {
        return Err(account.error(
            "service_account_impersonation_url",
            "must end with :generateAccessToken (the file gcloud writes)",
        ));
    };
    let id_token = endpoint(
        &account,
        "service_account_impersonation_url",
        &format!("{base}:generateIdToken"),
    )?;
    // Read and ignored: the ID token's lifetime is Google's (an hour).
    account.object("service_account_impersonation")?;
    for ignored in ["universe_domain", "quota_project_id", "token_info_url"] {
        account.string(ignored)?;
    }
    let Some(mut source) = account.object("credential_source")? else {
        return Err(account.error("credential_source", "is required"));
    };
    if let Some(id) = source.string("environment_id")? {
        if id != "aws1" {
            return Err(source.error(
                "environment_id",
                "must be aws1 (the one version Google defines)",
            ));
        }
        let aws = aws_subject::read(
            source.non_empty_string("url")?,
            source.non_empty_string("region_url")?,
            source.non_empty_string("regional_cred_verification_url")?,
            source.non_empty_string("imdsv2_session_token_url")?,
        )
        .map_err(|(field, why)| source.error(field, why))?;
        source.finish()?;
        account.finish()?;
        return Ok(Some(ExternalAccount {
            audience,
            subject_token_type,
            sts,
            id_token,
            subject: Subject::Aws(Box::new(aws)),
        }));
    }
    let format = read_format(&mut source)?;
    let subject =
        match (
            source.non_empty_string("file")?,
            source.non_empty_string("url")?,
        ) {
            (Some(path), None) => {
                if !path.starts_with('/') {
                    return Err(source.error("file", "must be an absolute path"));
                }
                Subject::File { path, format }
            }
            (None, Some(url)) => {
                let at = endpoint(&source, "url", &url)?;
                let mut headers = Vec::new();
                if let Some(mut given) = source.object("headers")? {
                    for name in given.keys() {
                        let value = given.header_value(&name)?.unwrap_or_default();
                        headers.push((name.to_ascii_lowercase(), value));
                    }
                    given.finish()?;
                }
                Subject::Url {
                    authority: at.authority,
                    path: at.path,
                    headers,
                    format,
                }
            }
            (Some(_), Some(_)) => return Err(source.error("url", "cannot be combined with file")),
            (None, None) => return Err(source.error(
                "file",
                "or url (or environment_id aws1) is required (executable and certificate sources are not supported)",
            )),
        };
    source.finish()?;
    account.finish()?;
    Ok(Some(ExternalAccount {
        audience,
        subject_token_type,
        sts,
        id_token,
        subject,
    }))
}

/// Call 1: the subject token, from the token-file cluster or the URL's;
/// `None` for AWS sources, which [`aws_subject`] builds instead.
pub fn subject_call(
    account: &ExternalAccount,
    token_files: &str,
    url_cluster: &str,
) -> Option<Callout> {
    Some(match &account.subject {
        Subject::Aws(_) => return None,
        Subject::File { path, .. } => {
            callout(token_files, TOKEN_FILE_AUTHORITY, token_file_request(path))
        }
        Subject::Url {
            authority,
            path,
            headers,
            ..
        } => {
            let mut call = callout(
                url_cluster,
                authority,
                SourceRequest {
                    method: "GET",
                    path: path.clone(),
                    headers: Vec::new(),
                    body: Vec::new(),
                },
            );
            call.headers.extend(headers.iter().cloned());
            call
        }
    })
}

/// The subject token in its source's answer.
pub fn subject_token(
    account: &ExternalAccount,
    status: u16,
    body: &[u8],
) -> Result<String, String> {
    let format = match &account.subject {
        Subject::File { format, .. } | Subject::Url { format, .. } => format,
        Subject::Aws(_) => return Err("subject token: AWS sources are signed, not read".into()),
    };
    match format {
        Format::Text => {
            token_file_content(status, body).map_err(|e| e.replace("token file", "subject token"))
        }
        Format::Json(field) => token_in_json("subject token", field, status, body),
    }
}

/// Call 2: Google STS's token exchange for the subject token.
pub fn sts_call(account: &ExternalAccount, cluster: &str, subject_token: &str) -> Callout {
    let form = format!(
        "grant_type={}&audience={}&scope={}&requested_token_type={}&subject_token={}&subject_token_type={}",
        query_encode(TOKEN_EXCHANGE),
        query_encode(&account.audience),
        query_encode(SCOPE),
        query_encode(ACCESS_TOKEN_TYPE),
        query_encode(subject_token),
        query_encode(&account.subject_token_type),
    );
    callout(
        cluster,
        &account.sts.authority,
        SourceRequest {
            method: "POST",
            path: account.sts.path.clone(),
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            body: form.into_bytes(),
        },
    )
}

/// Call 3: `generateIdToken` for `audience`, as the service account.
pub fn id_token_call(
    account: &ExternalAccount,
    cluster: &str,
    access_token: &str,
    audience: &str,
) -> Callout {
    let body = serde_json::json!({"audience": audience, "includeEmail": true}).to_string();
    callout(
        cluster,
        &account.id_token.authority,
        SourceRequest {
            method: "POST",
            path: account.id_token.path.clone(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("authorization", format!("Bearer {access_token}")),
            ],
            body: body.into_bytes(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::Value;

    fn account(source: Value) -> Result<Option<ExternalAccount>, ConfigError> {
        let doc = json!({"external_account": {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
            "credential_source": source,
        }});
        let Value::Object(map) = doc else {
            unreachable!()
        };
        read(&mut Fields::new("*", map))
    }

    #[test]
    fn the_three_calls_carry_what_google_expects() {
        let a = account(json!({"file": "/var/run/token"})).unwrap().unwrap();
        assert_eq!(
            a.sts,
            Endpoint {
                authority: "sts.googleapis.com".into(),
                path: "/v1/token".into()
            }
        );
        assert_eq!(
            a.id_token.path,
            "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateIdToken"
        );
        let first = subject_call(&a, "files", "url").unwrap();
        assert_eq!(
            (first.cluster.as_str(), first.header(":path")),
            ("files", Some("/var/run/token"))
        );
        let token = subject_token(&a, 200, b"subject.jwt.value\n").unwrap();
        let sts = sts_call(&a, "sts", &token);
        let form = String::from_utf8(sts.body.clone()).unwrap();
        assert!(form.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=%2F%2Fiam.googleapis.com"), "{form}");
        assert!(form.contains("&subject_token=subject.jwt.value&"), "{form}");
        let access = token_in_json(
            "STS",
            "access_token",
            200,
            br#"{"access_token":"ya29.x","expires_in":3599}"#,
        )
        .unwrap();
        let call = id_token_call(&a, "iam", &access, "https://svc.a.run.app");
        assert_eq!(call.header("authorization"), Some("Bearer ya29.x"));
        assert_eq!(
            serde_json::from_slice::<Value>(&call.body).unwrap(),
            json!({"audience": "https://svc.a.run.app", "includeEmail": true})
        );
        assert_eq!(
            token_in_json("g", "token", 200, br#"{"token":"a.b.c"}"#).unwrap(),
            "a.b.c"
        );
        for (status, body) in [
            (403, &b"{}"[..]),
            (200, b"nope"),
            (200, b"{}"),
            (200, br#"{"access_token":"a b"}"#),
        ] {
            let e = token_in_json("STS", "access_token", status, body).unwrap_err();
            assert!(!e.contains("ya29") && !e.contains("a b"), "{e}");
        }
    }

    #[test]
    fn url_sources_take_headers_and_json_fields() {
        let a = account(
            json!({"url": "http://169.254.169.254/token?r=1", "headers": {"Metadata": "true"},
            "format": {"type": "json", "subject_token_field_name": "access_token"}}),
        )
        .unwrap()
        .unwrap();
        let call = subject_call(&a, "files", "subject").unwrap();
        assert_eq!(call.cluster, "subject");
        assert_eq!(call.header(":path"), Some("/token?r=1"));
        assert_eq!(call.header("metadata"), Some("true"));
        assert_eq!(
            subject_token(&a, 200, br#"{"access_token":"tok"}"#).unwrap(),
            "tok"
        );
        assert!(subject_token(&a, 200, br#"{"other":"tok"}"#).is_err());
    }

    #[test]
    fn incomplete_files_are_refused_naming_the_field() {
        let cases = [
            (json!({}), "external_account.credential_source.file"),
            (
                json!({"file": "relative"}),
                "external_account.credential_source.file",
            ),
            (
                json!({"file": "/a", "url": "http://b/"}),
                "external_account.credential_source.url",
            ),
            (
                json!({"url": "http://b/", "format": {"type": "json"}}),
                "external_account.credential_source.format.subject_token_field_name",
            ),
            (
                json!({"file": "/a", "format": {"type": "xml"}}),
                "external_account.credential_source.format.type",
            ),
        ];
        for (source, field) in cases {
            let e = account(source.clone()).unwrap_err();
            assert_eq!(e.field, field, "{source}");
        }
    }
}
