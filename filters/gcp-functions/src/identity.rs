//! Google-signed ID tokens for a private Cloud Run service or function:
//! `Authorization: Bearer <JWT>` (or `X-Serverless-Authorization`) with the
//! service's URL, or a custom audience, as `aud` (`gcp-identity.md` §1).
//!
//! The source here is the metadata server (GCE, GKE Workload Identity,
//! Cloud Run itself, §2): one `GET` with `Metadata-Flavor: Google`, whose
//! answer is the raw JWT; its expiry is the token's own `exp`. The refresh,
//! the shared-data lease (one fetch per Envoy) and the fail-closed
//! admission are `faas_core::credentials`, as for the AWS and Azure
//! credentials.

use crate::aws_subject;
use crate::federation::{self, ExternalAccount, Subject};
use crate::service_account;
use crate::wire::base64url_decode;
pub use crate::wire::{query_encode, token_in_json};
use faas_core::credentials::{
    callout, token_file_request, Expiring, Next, SourceError, SourceRequest, TOKEN_FILE_AUTHORITY,
};
use faas_core::host::unix_seconds;
use serde_json::Value;

/// An ID token: a bearer token (`Debug` never prints it).
pub type IdToken = faas_core::credentials::BearerToken;

/// The metadata server's name: what it expects as `:authority` (the
/// cluster decides where the call goes).
pub const METADATA_AUTHORITY: &str = "metadata.google.internal";
const IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// The Envoy clusters the sources are reached through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clusters {
    pub metadata: String,
    pub sts: String,
    pub iam_credentials: String,
    pub token_files: String,
    pub subject_token: String,
    pub oauth2: String,
}

/// Where a route's tokens come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The metadata server's `identity` endpoint, for `audience`.
    MetadataServer { audience: String },
    /// Workload Identity Federation ([`crate::federation`]), for `audience`.
    ExternalAccount {
        account: Box<ExternalAccount>,
        audience: String,
    },
    /// A service-account key file ([`crate::service_account`]), for `audience`.
    ServiceAccountKey { key_file: String, audience: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Metadata,
    Subject,
    /// An AWS subject's instance-metadata call.
    Aws(aws_subject::Stage, aws_subject::Progress),
    Sts,
    IdToken,
    KeyFile,
    OAuthToken,
}

pub type Context<'a> = faas_core::credentials::Context<'a, Clusters, IdToken>;

/// The metadata server's ID token request for `audience` (`format=full`,
/// as Google's client libraries ask).
pub fn metadata_request(audience: &str) -> SourceRequest {
    SourceRequest {
        method: "GET",
        path: format!(
            "{IDENTITY_PATH}?audience={}&format=full",
            query_encode(audience)
        ),
        headers: vec![("metadata-flavor", "Google".into())],
        body: Vec::new(),
    }
}

/// The metadata server's answer: a JWT whose payload's `exp` is its expiry.
/// The token is checked for shape only (Google's front end verifies it).
pub fn parse_id_token(status: u16, body: &[u8]) -> Result<Expiring<IdToken>, SourceError> {
    if status != 200 {
        return Err(SourceError::Status(u32::from(status)));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| SourceError::Malformed("the token is not text".into()))?
        .trim();
    let mut parts = text.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SourceError::Malformed("the answer is not a JWT".into()));
    };
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SourceError::Malformed("the token is not printable".into()));
    }
    let claims: Value = base64url_decode(payload)
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| SourceError::Malformed("the token's claims are not JSON".into()))?;
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| SourceError::Malformed("the token has no numeric exp".into()))?;
    Ok(Expiring {
        credentials: faas_core::credentials::BearerToken(text.to_string()),
        expires_at,
    })
}

/// FNV-1a: the settings that tell sources apart hold no secret.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl faas_core::credentials::Source for Source {
    type Secret = IdToken;
    type Step = Step;
    type Clusters = Clusters;

    fn label(&self) -> &'static str {
        match self {
            Source::MetadataServer { .. } => "metadata_server",
            Source::ExternalAccount { .. } => "external_account",
            Source::ServiceAccountKey { .. } => "service_account_key",
        }
    }

    fn key(&self) -> String {
        let settings = match self {
            Source::MetadataServer { audience } => format!("metadata|{audience}"),
            Source::ExternalAccount { account, audience } => format!(
                "external|{}|{}|{}|{audience}",
                account.audience, account.id_token.authority, account.id_token.path
            ),
            Source::ServiceAccountKey { key_file, audience } => {
                format!("key|{key_file}|{audience}")
            }
        };
        format!(
            "envoy_faas.gcp_functions.id_token.{:016x}",
            fnv1a(&settings)
        )
    }

    fn start(&self, ctx: &Context<'_>) -> Next<Step, IdToken> {
        match self {
            Source::MetadataServer { audience } => Next::Call(
                Step::Metadata,
                callout(
                    &ctx.clusters.metadata,
                    METADATA_AUTHORITY,
                    metadata_request(audience),
                ),
            ),
            Source::ServiceAccountKey { key_file, .. } => Next::Call(
                Step::KeyFile,
                callout(
                    &ctx.clusters.token_files,
                    TOKEN_FILE_AUTHORITY,
                    token_file_request(key_file),
                ),
            ),
            Source::ExternalAccount { account, .. } => {
                match federation::subject_call(
                    account,
                    &ctx.clusters.token_files,
                    &ctx.clusters.subject_token,
                ) {
                    Some(call) => Next::Call(Step::Subject, call),
                    None => aws_next(account, ctx, |aws| {
                        aws_subject::start(aws, &ctx.clusters.subject_token)
                    }),
                }
            }
        }
    }

    fn advance(
        &self,
        step: Step,
        status: u16,
        body: &[u8],
        ctx: &Context<'_>,
    ) -> Next<Step, IdToken> {
        let id_token = |status: u16, body: &[u8], what: &str| {
            Next::Done(parse_id_token(status, body).map_err(|e| format!("{what}: {e}")))
        };
        match (step, self) {
            (Step::Metadata, _) => id_token(status, body, "metadata server ID token"),
            (Step::Subject, Source::ExternalAccount { account, .. }) => {
                match federation::subject_token(account, status, body) {
                    Ok(token) => Next::Call(
                        Step::Sts,
                        federation::sts_call(account, &ctx.clusters.sts, &token),
                    ),
                    Err(why) => Next::Done(Err(why)),
                }
            }
            (Step::Aws(stage, progress), Source::ExternalAccount { account, .. }) => {
                let call = (
                    ctx.clusters.subject_token.as_str(),
                    account.audience.as_str(),
                    ctx.now,
                );
                aws_next(account, ctx, |aws| {
                    aws_subject::advance(aws, (stage, progress), status, body, call)
                })
            }
            (Step::Sts, Source::ExternalAccount { account, audience }) => {
                match token_in_json("STS token exchange", "access_token", status, body) {
                    Ok(token) => Next::Call(
                        Step::IdToken,
                        federation::id_token_call(
                            account,
                            &ctx.clusters.iam_credentials,
                            &token,
                            audience,
                        ),
                    ),
                    Err(why) => Next::Done(Err(why)),
                }
            }
            (Step::IdToken, _) => match token_in_json("generateIdToken", "token", status, body) {
                Ok(token) => id_token(200, token.as_bytes(), "generateIdToken"),
                Err(why) => Next::Done(Err(why)),
            },
            (Step::KeyFile, Source::ServiceAccountKey { audience, .. }) => {
                match service_account::parse(status, body) {
                    Ok(key) => Next::Call(
                        Step::OAuthToken,
                        service_account::token_call(
                            &key,
                            &ctx.clusters.oauth2,
                            audience,
                            unix_seconds(ctx.now),
                        ),
                    ),
                    Err(why) => Next::Done(Err(why)),
                }
            }
            (Step::OAuthToken, _) => {
                match token_in_json("token endpoint", "id_token", status, body) {
                    Ok(token) => id_token(200, token.as_bytes(), "token endpoint"),
                    Err(why) => Next::Done(Err(why)),
                }
            }
            // An answer for a step this source does not take.
            _ => Next::Done(Err("unexpected answer".into())),
        }
    }
}

/// An AWS subject's next move (`step` runs it): a metadata call, or the
/// signed subject token straight on to Google STS.
fn aws_next(
    account: &ExternalAccount,
    ctx: &Context<'_>,
    step: impl FnOnce(&aws_subject::AwsSource) -> Result<aws_subject::Next, String>,
) -> Next<Step, IdToken> {
    let Subject::Aws(aws) = &account.subject else {
        return Next::Done(Err("not an AWS subject".into()));
    };
    match step(aws) {
        Ok(aws_subject::Next::Call(stage, progress, call)) => {
            Next::Call(Step::Aws(stage, progress), call)
        }
        Ok(aws_subject::Next::Subject(token)) => Next::Call(
            Step::Sts,
            federation::sts_call(account, &ctx.clusters.sts, &token),
        ),
        Err(why) => Next::Done(Err(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| {
            faas_core::base64::encode(s.as_bytes())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")
        };
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","kid":"k"}"#),
            b64(claims)
        )
    }

    #[test]
    fn the_request_names_the_audience_and_the_flavor() {
        let r = metadata_request("https://svc-abc-uc.a.run.app");
        assert_eq!(
            r.path,
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2Fsvc-abc-uc.a.run.app&format=full"
        );
        assert_eq!(r.headers, vec![("metadata-flavor", "Google".to_string())]);
    }

    #[test]
    fn a_token_expires_at_its_exp_and_bad_answers_are_errors_without_the_token() {
        let token = jwt(r#"{"aud":"https://x","exp":1700003600,"iat":1700000000}"#);
        let t = parse_id_token(200, format!("{token}\n").as_bytes()).unwrap();
        assert_eq!(
            (t.credentials.0.as_str(), t.expires_at),
            (token.as_str(), 1_700_003_600)
        );
        assert_eq!(
            parse_id_token(404, b"").unwrap_err(),
            SourceError::Status(404)
        );
        for bad in [
            "not a jwt".to_string(),
            jwt(r#"{"aud":"x"}"#),
            jwt(r#"{"exp":"soon"}"#),
            "a.b.c.d".to_string(),
            "a.%%%.c".to_string(),
        ] {
            let e = parse_id_token(200, bad.as_bytes()).unwrap_err();
            assert!(!e.to_string().contains(&bad), "{e}");
        }
    }

    #[test]
    fn keys_tell_audiences_apart() {
        let a = Source::MetadataServer {
            audience: "https://a".into(),
        };
        let b = Source::MetadataServer {
            audience: "https://b".into(),
        };
        use faas_core::credentials::Source as _;
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), a.clone().key());
    }
}
