//! One platform source as a sequence of calls: which call comes first, and
//! what the answer to each call leads to (the next call, or credentials).
//! Pure: the provider sends the calls and feeds the answers back.

use super::container::Endpoint;
use super::environment::Authorization;
use super::profile::{self, Hop, Start};
use super::{container, imds, sts, Credentials, SourceRequest};
use crate::signing::sign;
use crate::sigv4::Signer;
use faas_core::credentials::{
    callout, token_file_content, token_file_request, TOKEN_FILE_AUTHORITY,
};
use sha2::{Digest, Sha256};

pub use faas_core::credentials::CALL_TIMEOUT;
/// The link-local address IMDS answers on (the cluster decides where the
/// call really goes; the name is what IMDS expects to see).
const IMDS_AUTHORITY: &str = "169.254.169.254";

/// What an AssumeRole chains from: keys from the config or the
/// environment, or another registered source.
pub type Base = faas_core::credentials::Base<Credentials>;
/// What the provider does next.
pub type Next = faas_core::credentials::Next<Step, Credentials>;
/// What a fetch needs besides the source.
pub type Context<'a> = faas_core::credentials::Context<'a, Clusters, Credentials>;

/// The Envoy clusters the sources are reached through (top-level config,
/// documented defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clusters {
    pub imds: String,
    pub container: String,
    pub sts: String,
    pub token_files: String,
}

/// Where STS is: its `:authority` (from `aws_sts_endpoint_url`, else the
/// regional endpoint) and the region the AssumeRole call is signed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsEndpoint {
    pub authority: String,
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// EC2 instance role (IMDSv2; v1 only if the token step is refused and
    /// `aws_imds_protocol_version` is `v1`).
    Imds { allow_v1: bool },
    /// ECS task role or EKS Pod Identity.
    Container {
        endpoint: Endpoint,
        authorization: Authorization,
    },
    /// IRSA: STS `AssumeRoleWithWebIdentity` with the token file's content.
    WebIdentity {
        token_file: String,
        role_arn: String,
        session_name: String,
        sts: StsEndpoint,
    },
    /// A profile of the shared files, re-read every `reread_seconds`.
    Profile {
        /// The credentials file, then the config file ("" when not named).
        files: [String; 2],
        profile: String,
        sts: StsEndpoint,
        reread_seconds: u64,
    },
    /// STS `AssumeRole` on top of a base (Kong's `aws_assume_role_arn`).
    AssumeRole {
        base: Base,
        role_arn: String,
        session_name: String,
        external_id: Option<String>,
        sts: StsEndpoint,
    },
}

impl Source {
    /// The name in stats, logs and error messages.
    pub fn label(&self) -> &'static str {
        match self {
            Source::Imds { .. } => "imds",
            Source::Container { .. } => "container",
            Source::WebIdentity { .. } => "web_identity",
            Source::Profile { .. } => "profile",
            Source::AssumeRole { .. } => "assume_role",
        }
    }

    /// Everything that makes two sources different, for the shared-data
    /// key (hashed there: static keys are part of it). Written out rather
    /// than `Debug`, which hides the secrets and costs the module the
    /// string-escaping machinery.
    pub fn identity(&self) -> String {
        let mut parts: Vec<&str> = vec![self.label()];
        let number;
        let sts = match self {
            Source::Imds { allow_v1 } => {
                parts.push(if *allow_v1 { "v1" } else { "v2" });
                None
            }
            Source::Container {
                endpoint,
                authorization,
            } => {
                parts.extend([endpoint.authority.as_str(), &endpoint.path]);
                match authorization {
                    Authorization::None => parts.push("none"),
                    Authorization::Token(t) => parts.extend(["token", t]),
                    Authorization::TokenFile(f) => parts.extend(["file", f]),
                }
                None
            }
            Source::WebIdentity {
                token_file,
                role_arn,
                session_name,
                sts,
            } => {
                parts.extend([token_file.as_str(), role_arn, session_name]);
                Some(sts)
            }
            Source::Profile {
                files,
                profile,
                sts,
                reread_seconds,
            } => {
                number = reread_seconds.to_string();
                parts.extend(files.iter().map(String::as_str));
                parts.extend([profile.as_str(), &number]);
                Some(sts)
            }
            Source::AssumeRole {
                base,
                role_arn,
                session_name,
                external_id,
                sts,
            } => {
                match base {
                    Base::Static(c) => {
                        parts.extend([c.access_key_id.as_str(), &c.secret_access_key])
                    }
                    Base::Chain(i) => {
                        number = i.to_string();
                        parts.push(&number);
                    }
                }
                parts.extend([
                    role_arn.as_str(),
                    session_name,
                    external_id.as_deref().unwrap_or("-"),
                ]);
                Some(sts)
            }
        };
        if let Some(sts) = sts {
            parts.extend([sts.authority.as_str(), &sts.region]);
        }
        parts.join("\u{1f}")
    }
}

impl faas_core::credentials::Source for Source {
    type Secret = Credentials;
    type Step = Step;
    type Clusters = Clusters;

    fn label(&self) -> &'static str {
        Source::label(self)
    }

    /// A digest of the settings (static keys are part of them).
    fn key(&self) -> String {
        let digest = Sha256::digest(self.identity().as_bytes());
        format!(
            "envoy_faas.aws_lambda.credentials.{}",
            hex::encode(digest.get(..8).unwrap_or_default())
        )
    }

    fn base(&self) -> Option<&Base> {
        match self {
            Source::AssumeRole { base, .. } => Some(base),
            _ => None,
        }
    }

    fn start(&self, ctx: &Context<'_>) -> Next {
        start(self, ctx)
    }

    fn advance(&self, step: Step, status: u16, body: &[u8], ctx: &Context<'_>) -> Next {
        advance(self, step, status, body, ctx)
    }
}

/// Where a fetch is between calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    ImdsToken,
    ImdsRole {
        token: Option<String>,
    },
    ImdsCredentials,
    TokenFile,
    Container,
    WebIdentity,
    AssumeRole,
    /// Reading the shared file `index`; the text of those read before.
    ProfileFile {
        index: usize,
        read: FileText,
    },
    /// Reading a profile's web identity token file.
    ProfileToken {
        role: Hop,
        hops: Vec<Hop>,
    },
    /// An STS answer on a profile's role chain; `hops` are still to go.
    ProfileRole {
        hops: Vec<Hop>,
    },
}

/// Shared-file text held between reads: it holds keys, so `Debug` hides it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileText([String; 2]);

impl std::fmt::Debug for FileText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<file text>")
    }
}

/// The first call of a fetch.
pub fn start(source: &Source, ctx: &Context<'_>) -> Next {
    match source {
        Source::Imds { .. } => imds_call(ctx, Step::ImdsToken, imds::token_request()),
        Source::Container {
            authorization: Authorization::TokenFile(file),
            ..
        }
        | Source::WebIdentity {
            token_file: file, ..
        } => token_file_call(ctx, Step::TokenFile, file),
        Source::Container {
            endpoint,
            authorization,
        } => {
            let token = match authorization {
                Authorization::Token(t) => Some(t.as_str()),
                _ => None,
            };
            container_call(ctx, endpoint, token)
        }
        Source::AssumeRole { .. } => assume_role_call(source, ctx),
        Source::Profile { .. } => profile_file(source, ctx, 0, FileText::default()),
    }
}

/// Reads shared file `index` onwards (skipping those not named), then
/// resolves the profile from all their text.
fn profile_file(source: &Source, ctx: &Context<'_>, index: usize, read: FileText) -> Next {
    let Source::Profile {
        files,
        profile: name,
        sts,
        reread_seconds,
    } = source
    else {
        return Next::Done(Err("profile: not this source".into()));
    };
    if let Some(index) = (index..files.len()).find(|&i| files.get(i).is_some_and(|f| !f.is_empty()))
    {
        let path = files.get(index).map_or("", String::as_str);
        return token_file_call(ctx, Step::ProfileFile { index, read }, path);
    }
    let [credentials, config] = &read.0;
    match profile::resolve(credentials, config, name).map_err(|e| format!("shared files: {e}")) {
        Err(e) => Next::Done(Err(e)),
        Ok(plan) => match plan.start {
            Start::Keys(keys) if plan.hops.is_empty() => Next::Done(Ok(super::Expiring {
                credentials: keys,
                expires_at: faas_core::host::unix_seconds(ctx.now) + 2 * reread_seconds,
            })),
            Start::Keys(keys) => profile_role(sts, ctx, &keys, plan.hops),
            Start::WebIdentity { token_file, role } => token_file_call(
                ctx,
                Step::ProfileToken {
                    role,
                    hops: plan.hops,
                },
                &token_file,
            ),
        },
    }
}

/// The first of `hops`, signed with `base`; the rest ride in the step.
fn profile_role(
    endpoint: &StsEndpoint,
    ctx: &Context<'_>,
    base: &Credentials,
    mut hops: Vec<Hop>,
) -> Next {
    if hops.is_empty() {
        return Next::Done(Err("profile: no role to assume".into()));
    }
    let hop = hops.remove(0);
    signed_assume_role(endpoint, ctx, base, &hop, Step::ProfileRole { hops })
}

/// The next move after `step`'s answer.
pub fn advance(source: &Source, step: Step, status: u16, body: &[u8], ctx: &Context<'_>) -> Next {
    let status32 = u32::from(status);
    let failed = |what: &str, e: super::SourceError| Next::Done(Err(format!("{what}: {e}")));
    match (step, source) {
        (Step::ImdsToken, Source::Imds { allow_v1 }) => match imds::parse_token(status32, body) {
            Ok(token) => imds_call(
                ctx,
                Step::ImdsRole {
                    token: Some(token.clone()),
                },
                imds::role_request(Some(&token)),
            ),
            Err(_) if *allow_v1 && imds::v1_fallback_allowed(status32) => imds_call(
                ctx,
                Step::ImdsRole { token: None },
                imds::role_request(None),
            ),
            Err(e) => failed("IMDS token", e),
        },
        (Step::ImdsRole { token }, Source::Imds { .. }) => match imds::parse_role(status32, body) {
            Ok(role) => imds_call(
                ctx,
                Step::ImdsCredentials,
                imds::credentials_request(token.as_deref(), &role),
            ),
            Err(e) => failed("IMDS role name", e),
        },
        (Step::ImdsCredentials, Source::Imds { .. }) => Next::Done(
            imds::parse_credentials(status32, body).map_err(|e| format!("IMDS credentials: {e}")),
        ),
        (Step::TokenFile, _) => {
            let token = match token_file_content(status, body) {
                Ok(t) => t,
                Err(why) => return Next::Done(Err(why)),
            };
            match source {
                Source::Container { endpoint, .. } => container_call(ctx, endpoint, Some(&token)),
                Source::WebIdentity {
                    role_arn,
                    session_name,
                    sts: endpoint,
                    ..
                } => call(
                    &ctx.clusters.sts,
                    &endpoint.authority,
                    Step::WebIdentity,
                    sts::assume_role_with_web_identity(
                        role_arn,
                        session_name,
                        &token,
                        sts::DEFAULT_DURATION_SECONDS,
                    ),
                ),
                _ => Next::Done(Err("token file: not used by this source".into())),
            }
        }
        (Step::Container, Source::Container { .. }) => Next::Done(
            container::parse(status32, body).map_err(|e| format!("container credentials: {e}")),
        ),
        (Step::WebIdentity, _) => Next::Done(
            sts::parse(status32, body).map_err(|e| format!("STS AssumeRoleWithWebIdentity: {e}")),
        ),
        (Step::ProfileFile { index, mut read }, _) => {
            let text = match status {
                200 => String::from_utf8_lossy(body).into_owned(),
                // Absent: the SDKs read a missing file as an empty one.
                404 => String::new(),
                s => {
                    return Next::Done(Err(format!(
                        "shared file {index}: the token-file cluster answered HTTP {s}"
                    )))
                }
            };
            if let Some(slot) = read.0.get_mut(index) {
                *slot = text;
            }
            profile_file(source, ctx, index + 1, read)
        }
        (Step::ProfileToken { role, hops }, Source::Profile { sts: endpoint, .. }) => {
            let token = match token_file_content(status, body) {
                Ok(t) => t,
                Err(why) => return Next::Done(Err(why)),
            };
            call(
                &ctx.clusters.sts,
                &endpoint.authority,
                Step::ProfileRole { hops },
                sts::assume_role_with_web_identity(
                    &role.role_arn,
                    &role.session_name,
                    &token,
                    role.duration_seconds,
                ),
            )
        }
        (Step::ProfileRole { hops }, Source::Profile { sts: endpoint, .. }) => {
            match sts::parse(status32, body) {
                Err(e) => failed("STS (profile role)", e),
                Ok(done) if hops.is_empty() => Next::Done(Ok(done)),
                Ok(done) => profile_role(endpoint, ctx, &done.credentials, hops),
            }
        }
        (Step::AssumeRole, _) => {
            Next::Done(sts::parse(status32, body).map_err(|e| format!("STS AssumeRole: {e}")))
        }
        _ => Next::Done(Err("an answer this source did not ask for".into())),
    }
}

fn call(cluster: &str, authority: &str, step: Step, request: SourceRequest) -> Next {
    Next::Call(step, callout(cluster, authority, request))
}

fn imds_call(ctx: &Context<'_>, step: Step, request: SourceRequest) -> Next {
    call(&ctx.clusters.imds, IMDS_AUTHORITY, step, request)
}

/// A read of `file` through the token-file listener, answered at `step`.
fn token_file_call(ctx: &Context<'_>, step: Step, file: &str) -> Next {
    call(
        &ctx.clusters.token_files,
        TOKEN_FILE_AUTHORITY,
        step,
        token_file_request(file),
    )
}

fn container_call(ctx: &Context<'_>, endpoint: &Endpoint, token: Option<&str>) -> Next {
    call(
        &ctx.clusters.container,
        &endpoint.authority,
        Step::Container,
        container::request(endpoint, token),
    )
}

/// The AssumeRole call, signed (service `sts`) with the base credentials.
fn assume_role_call(source: &Source, ctx: &Context<'_>) -> Next {
    let (
        Source::AssumeRole {
            role_arn,
            session_name,
            external_id,
            sts: endpoint,
            ..
        },
        Some(base),
    ) = (source, ctx.base)
    else {
        return Next::Done(Err("STS AssumeRole: no base credentials".into()));
    };
    let hop = Hop {
        role_arn: role_arn.clone(),
        session_name: session_name.clone(),
        external_id: external_id.clone(),
        duration_seconds: sts::DEFAULT_DURATION_SECONDS,
    };
    signed_assume_role(endpoint, ctx, base, &hop, Step::AssumeRole)
}

/// An AssumeRole call for `hop`, signed (service `sts`) with `base`.
fn signed_assume_role(
    endpoint: &StsEndpoint,
    ctx: &Context<'_>,
    base: &Credentials,
    hop: &Hop,
    step: Step,
) -> Next {
    let request = sts::assume_role(&sts::AssumeRole {
        role_arn: &hop.role_arn,
        session_name: &hop.session_name,
        external_id: hop.external_id.as_deref(),
        duration_seconds: hop.duration_seconds,
    });
    let mut call = callout(&ctx.clusters.sts, &endpoint.authority, request);
    let signer = Signer::new(&endpoint.region, "sts");
    sign(&signer, base, false, &mut call, ctx.now);
    Next::Call(step, call)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use faas_core::Callout;
    use std::time::{Duration, SystemTime};

    pub(crate) fn clusters() -> Clusters {
        Clusters {
            imds: "imds".into(),
            container: "ecs".into(),
            sts: "sts".into(),
            token_files: "files".into(),
        }
    }

    fn ctx<'a>(clusters: &'a Clusters, base: Option<&'a Credentials>) -> Context<'a> {
        Context {
            clusters,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            base,
        }
    }

    fn expect_call(next: Next) -> (Step, Callout) {
        match next {
            Next::Call(step, callout) => (step, callout),
            Next::Done(r) => panic!("expected a call, got {r:?}"),
        }
    }

    const CREDS_JSON: &[u8] = br#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-21T18:00:00Z"}"#;

    #[test]
    fn imds_walks_token_role_credentials_through_its_cluster() {
        let c = clusters();
        let source = Source::Imds { allow_v1: false };
        let (step, call) = expect_call(start(&source, &ctx(&c, None)));
        assert_eq!(call.cluster, "imds");
        assert_eq!(call.header(":method"), Some("PUT"));
        assert_eq!(call.header(":authority"), Some("169.254.169.254"));
        let (step, call) = expect_call(advance(&source, step, 200, b"tok", &ctx(&c, None)));
        assert_eq!(call.header("x-aws-ec2-metadata-token"), Some("tok"));
        let (step, call) = expect_call(advance(&source, step, 200, b"role", &ctx(&c, None)));
        assert_eq!(
            call.header(":path"),
            Some("/latest/meta-data/iam/security-credentials/role")
        );
        assert_eq!(call.header("x-aws-ec2-metadata-token"), Some("tok"));
        match advance(&source, step, 200, CREDS_JSON, &ctx(&c, None)) {
            Next::Done(Ok(e)) => assert_eq!(e.credentials.access_key_id, "ASIA1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn imds_v1_fallback_only_when_allowed_and_refused() {
        let c = clusters();
        let strict = Source::Imds { allow_v1: false };
        assert!(matches!(
            advance(&strict, Step::ImdsToken, 403, b"", &ctx(&c, None)),
            Next::Done(Err(e)) if e.contains("IMDS token") && e.contains("403")
        ));
        let v1 = Source::Imds { allow_v1: true };
        let (step, call) = expect_call(advance(&v1, Step::ImdsToken, 403, b"", &ctx(&c, None)));
        assert_eq!(step, Step::ImdsRole { token: None });
        assert_eq!(call.header("x-aws-ec2-metadata-token"), None);
        assert!(matches!(
            advance(&v1, Step::ImdsToken, 503, b"", &ctx(&c, None)),
            Next::Done(Err(_))
        ));
    }

    #[test]
    fn pod_identity_reads_the_token_file_then_sends_it() {
        let c = clusters();
        let source = Source::Container {
            endpoint: Endpoint {
                authority: "169.254.170.23".into(),
                path: "/v1/credentials".into(),
            },
            authorization: Authorization::TokenFile("/var/run/tok".into()),
        };
        let (step, call) = expect_call(start(&source, &ctx(&c, None)));
        assert_eq!(
            (call.cluster.as_str(), call.header(":path")),
            ("files", Some("/var/run/tok"))
        );
        let (step, call) = expect_call(advance(&source, step, 200, b"jwt-v2\n", &ctx(&c, None)));
        assert_eq!(step, Step::Container);
        assert_eq!(call.cluster, "ecs");
        assert_eq!(call.header(":authority"), Some("169.254.170.23"));
        assert_eq!(call.header("authorization"), Some("jwt-v2"));
        assert!(matches!(
            advance(&source, Step::TokenFile, 404, b"", &ctx(&c, None)),
            Next::Done(Err(e)) if e.contains("404")
        ));
    }

    #[test]
    fn web_identity_posts_the_token_to_sts_unsigned() {
        let c = clusters();
        let source = Source::WebIdentity {
            token_file: "/t".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s".into(),
            sts: StsEndpoint {
                authority: "sts.eu-west-1.amazonaws.com".into(),
                region: "eu-west-1".into(),
            },
        };
        let (step, _) = expect_call(start(&source, &ctx(&c, None)));
        let (_, call) = expect_call(advance(&source, step, 200, b"eyJjwt", &ctx(&c, None)));
        assert_eq!(call.cluster, "sts");
        assert_eq!(
            call.header(":authority"),
            Some("sts.eu-west-1.amazonaws.com")
        );
        assert!(call.header("authorization").is_none());
        assert!(String::from_utf8_lossy(&call.body).contains("WebIdentityToken=eyJjwt"));
    }

    fn profile_source(files: [&str; 2], profile: &str) -> Source {
        Source::Profile {
            files: files.map(str::to_string),
            profile: profile.into(),
            sts: StsEndpoint {
                authority: "sts.us-east-1.amazonaws.com".into(),
                region: "us-east-1".into(),
            },
            reread_seconds: 300,
        }
    }

    #[test]
    fn a_profile_reads_both_files_then_signs_each_hop_with_the_last() {
        let c = clusters();
        let source = profile_source(["/aws/credentials", "/aws/config"], "cross");
        let (step, call) = expect_call(start(&source, &ctx(&c, None)));
        assert_eq!(
            (call.cluster.as_str(), call.header(":path")),
            ("files", Some("/aws/credentials"))
        );
        assert!(!format!("{step:?}").contains("secret"));
        let credentials =
            b"[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base/secret\n";
        let (step, call) = expect_call(advance(&source, step, 200, credentials, &ctx(&c, None)));
        assert_eq!(call.header(":path"), Some("/aws/config"));
        assert!(!format!("{step:?}").contains("base/secret"), "{step:?}");
        let config = b"[profile app]\nrole_arn = arn:aws:iam::1:role/app\nsource_profile = base\n\
                       [profile cross]\nrole_arn = arn:aws:iam::2:role/cross\nsource_profile = app\n";
        let (step, call) = expect_call(advance(&source, step, 200, config, &ctx(&c, None)));
        assert_eq!(call.cluster, "sts");
        assert!(call
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=AKIDBASE/")));
        assert!(String::from_utf8_lossy(&call.body).contains("role%2Fapp"));
        let answer = b"<R><Credentials><AccessKeyId>ASIAHOP1</AccessKeyId><SecretAccessKey>s1</SecretAccessKey>\
                       <SessionToken>t1</SessionToken><Expiration>2026-11-21T18:00:00Z</Expiration></Credentials></R>";
        let (step, call) = expect_call(advance(&source, step, 200, answer, &ctx(&c, None)));
        assert!(call
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=ASIAHOP1/")));
        assert!(String::from_utf8_lossy(&call.body).contains("role%2Fcross"));
        let Next::Done(Ok(done)) = advance(
            &source,
            step,
            200,
            String::from_utf8_lossy(answer)
                .replace("HOP1", "HOP2")
                .as_bytes(),
            &ctx(&c, None),
        ) else {
            panic!("the last hop's credentials")
        };
        assert_eq!(done.credentials.access_key_id, "ASIAHOP2");
    }

    #[test]
    fn profile_keys_live_two_reread_periods_and_an_absent_file_is_empty() {
        let c = clusters();
        let source = profile_source(["", "/aws/config"], "default");
        let (step, call) = expect_call(start(&source, &ctx(&c, None)));
        assert_eq!(
            call.header(":path"),
            Some("/aws/config"),
            "the unnamed file is skipped"
        );
        let keys = b"[default]\naws_access_key_id=A\naws_secret_access_key=S\n";
        let Next::Done(Ok(done)) = advance(&source, step.clone(), 200, keys, &ctx(&c, None)) else {
            panic!("keys")
        };
        assert_eq!(done.expires_at, 1_795_000_000 + 600);
        let Next::Done(Err(why)) = advance(&source, step.clone(), 404, b"", &ctx(&c, None)) else {
            panic!("no profile")
        };
        assert_eq!(why, "shared files: profile \"default\" is in neither file");
        let Next::Done(Err(why)) = advance(&source, step, 403, b"", &ctx(&c, None)) else {
            panic!("refused")
        };
        assert!(why.contains("HTTP 403"), "{why}");
    }

    #[test]
    fn assume_role_is_signed_for_sts_with_the_base_credentials() {
        let c = clusters();
        let base = Credentials {
            access_key_id: "AKIDBASE".into(),
            secret_access_key: "base-secret".into(),
            session_token: Some("base-token".into()),
        };
        let source = Source::AssumeRole {
            base: Base::Chain(0),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s".into(),
            external_id: Some("ext".into()),
            sts: StsEndpoint {
                authority: "sts.us-east-1.amazonaws.com".into(),
                region: "us-east-1".into(),
            },
        };
        let (step, call) = expect_call(start(&source, &ctx(&c, Some(&base))));
        assert_eq!(step, Step::AssumeRole);
        let auth = call.header("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDBASE/20261118/us-east-1/sts/aws4_request"
            ),
            "{auth}"
        );
        assert_eq!(call.header("x-amz-security-token"), Some("base-token"));
        assert!(String::from_utf8_lossy(&call.body).contains("ExternalId=ext"));
        assert!(matches!(start(&source, &ctx(&c, None)), Next::Done(Err(_))));
    }

    #[test]
    fn identities_differ_by_every_setting_and_never_show_the_secret() {
        let a = Source::Imds { allow_v1: false };
        let b = Source::Imds { allow_v1: true };
        assert_ne!(a.identity(), b.identity());
        let with = |secret: &str| Source::AssumeRole {
            base: Base::Static(Credentials {
                access_key_id: "AK".into(),
                secret_access_key: secret.into(),
                session_token: None,
            }),
            role_arn: "r".into(),
            session_name: "s".into(),
            external_id: None,
            sts: StsEndpoint {
                authority: "a".into(),
                region: "r".into(),
            },
        };
        assert_ne!(with("SECRET-1").identity(), with("SECRET-2").identity());
        assert!(!format!("{:?}", with("SECRET-1")).contains("SECRET-1"));
    }
}
