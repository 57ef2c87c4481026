//! IAM settings both modes share: where the credentials come from (config
//! keys, the environment, or a platform source, optionally chained through
//! STS AssumeRole), the signing region and service. Reading them registers
//! platform sources with the filter-wide [`Provider`].

use crate::credentials::chain::{Base, Clusters, Source, StsEndpoint};
use crate::credentials::environment::{Chosen, Environment, SourceChoice};
use crate::credentials::provider::{provider, Provider};
use crate::credentials::Credentials;
use crate::sigv4::Signer;
use faas_core::uri::FunctionUri;
use faas_core::{ConfigError, Fields};
use std::cell::RefCell;

/// Filter-wide settings: the environment and the platform sources.
#[derive(Debug)]
pub struct Global {
    pub env: Environment,
    /// `credential_source`: which source signs routes without config keys.
    pub source: SourceChoice,
    /// `credentials_file_refresh_seconds`: how often the shared files are
    /// read again (keys from them are kept twice as long).
    pub shared_files_reread: u64,
    /// Sources are registered while routes compile, then only read.
    pub provider: RefCell<Provider>,
}

impl Global {
    /// Reads the top-level cluster fields (each with its documented
    /// default); `env` is the VM's environment.
    pub fn read(fields: &mut Fields, env: Environment) -> Result<Global, ConfigError> {
        let mut cluster = |field: &str, default: &str| -> Result<String, ConfigError> {
            Ok(fields
                .non_empty_string(field)?
                .unwrap_or_else(|| default.to_string()))
        };
        let clusters = Clusters {
            imds: cluster("imds_cluster", "aws_imds")?,
            container: cluster("container_credentials_cluster", "aws_container_credentials")?,
            sts: cluster("sts_cluster", "aws_sts")?,
            token_files: cluster("token_file_cluster", "aws_token_files")?,
        };
        let source = match fields.string("credential_source")? {
            None => SourceChoice::Auto,
            Some(name) => SourceChoice::parse(&name).ok_or_else(|| {
                fields.error(
                    "credential_source",
                    format!("must be one of {}", SourceChoice::NAMES),
                )
            })?,
        };
        let shared_files_reread = fields
            .integer("credentials_file_refresh_seconds", 10, 3_600)?
            .unwrap_or(300);
        Ok(Global {
            env,
            source,
            shared_files_reread,
            provider: RefCell::new(provider(clusters)),
        })
    }
}

/// Where a route's signing credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Static(Credentials),
    /// A platform source of the [`Provider`], by index.
    Platform(usize),
}

/// IAM (SigV4) signing for one route.
#[derive(Debug)]
pub struct Iam {
    pub signer: Signer,
    pub credentials: CredentialSource,
    /// Also send (and sign) `x-amz-content-sha256`.
    pub content_sha256: bool,
}

pub fn is_aws_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Kong's role-chaining and IMDS fields (route level in Invoke mode,
/// `authorization.iam` in `function_uri` mode).
#[derive(Debug, Default)]
pub struct PlatformFields {
    pub assume_role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub sts_endpoint: Option<String>,
    pub external_id: Option<String>,
    pub imds_allow_v1: bool,
}

/// The session name as STS accepts it: `[\w+=,.@-]{2,64}`.
fn valid_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

pub fn read_platform_fields(fields: &mut Fields) -> Result<PlatformFields, ConfigError> {
    let assume_role_arn = fields.non_empty_string("aws_assume_role_arn")?;
    if assume_role_arn
        .as_deref()
        .is_some_and(|a| !(a.starts_with("arn:") && a.contains(":role/")))
    {
        return Err(fields.error(
            "aws_assume_role_arn",
            "must be a role ARN (arn:aws:iam::<account>:role/<name>)",
        ));
    }
    let role_session_name = fields.non_empty_string("aws_role_session_name")?;
    if role_session_name
        .as_deref()
        .is_some_and(|s| !valid_session_name(s))
    {
        return Err(fields.error(
            "aws_role_session_name",
            "must be 2 to 64 characters of letters, digits and _+=,.@-",
        ));
    }
    let sts_endpoint = match fields.non_empty_string("aws_sts_endpoint_url")? {
        None => None,
        Some(url) => {
            let uri = FunctionUri::parse(&url)
                .map_err(|why| fields.error("aws_sts_endpoint_url", why))?;
            if uri.path != "/" || !uri.query.is_empty() {
                return Err(fields.error(
                    "aws_sts_endpoint_url",
                    "must be scheme://host[:port] without a path or query",
                ));
            }
            Some(uri.authority())
        }
    };
    let external_id = fields.header_value("aws_assume_role_external_id")?;
    // Kong exports aws_role_session_name ("kong") and aws_sts_endpoint_url
    // with every block; without a role Kong ignores them, and so do we.
    if assume_role_arn.is_none() && external_id.is_some() {
        return Err(fields.error("aws_assume_role_external_id", "needs aws_assume_role_arn"));
    }
    let imds_allow_v1 = match fields.string("aws_imds_protocol_version")?.as_deref() {
        None | Some("v2") => false,
        Some("v1") => true,
        Some(_) => return Err(fields.error("aws_imds_protocol_version", "must be one of v1, v2")),
    };
    Ok(PlatformFields {
        assume_role_arn,
        role_session_name,
        sts_endpoint,
        external_id,
        imds_allow_v1,
    })
}

/// The regional STS endpoint's host.
fn sts_authority(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("sts.{region}.{suffix}")
}

/// Resolves a route's credentials, in the AWS SDKs' chain order: keys in
/// the config, keys in the environment, web identity (IRSA), container
/// (ECS, Pod Identity), IMDS; then AssumeRole on top when configured. The
/// first source whose settings are present is the one used: a failing
/// source does not fall through to the next (a misconfigured task role
/// must not quietly become the instance role).
pub fn resolve(
    fields: &Fields,
    field: &str,
    configured: Option<Credentials>,
    platform: PlatformFields,
    region: &str,
    global: &Global,
) -> Result<CredentialSource, ConfigError> {
    let env = &global.env;
    let mut provider = global.provider.borrow_mut();
    let base = if let Some(c) = configured {
        Base::Static(c)
    } else {
        let (chosen, why) = env.choose(global.source).map_err(|e| match global.source {
            SourceChoice::Auto => no_credentials(fields.route(), field),
            _ => ConfigError::new(
                fields.route(),
                e.variable,
                format!("(environment) {}", e.message),
            ),
        })?;
        let label = match &chosen {
            Chosen::Keys(_) => "environment",
            Chosen::Profile(_) => "profile",
            Chosen::WebIdentity(_) => "web_identity",
            Chosen::Container(_) => "container",
            Chosen::Imds => "imds",
        };
        // One line per route at load: which identity signs, and why.
        log::info!(
            "aws-lambda: route \"{}\": credentials from {label} ({why})",
            fields.route()
        );
        let env_sts = || {
            let region = env.region.as_deref().unwrap_or(region);
            StsEndpoint {
                authority: sts_authority(region),
                region: region.to_string(),
            }
        };
        match chosen {
            Chosen::Keys(c) => Base::Static(c.clone()),
            Chosen::Profile(p) => Base::Chain(provider.register(Source::Profile {
                files: p.files.clone(),
                profile: p.profile.clone(),
                sts: env_sts(),
                reread_seconds: global.shared_files_reread,
            })),
            Chosen::WebIdentity(w) => Base::Chain(provider.register(Source::WebIdentity {
                token_file: w.token_file.clone(),
                role_arn: w.role_arn.clone(),
                session_name: w.session_name.clone(),
                sts: env_sts(),
            })),
            Chosen::Container(c) => Base::Chain(provider.register(Source::Container {
                endpoint: c.endpoint.clone(),
                authorization: c.authorization.clone(),
            })),
            Chosen::Imds => Base::Chain(provider.register(Source::Imds {
                allow_v1: platform.imds_allow_v1,
            })),
        }
    };
    let Some(role_arn) = platform.assume_role_arn else {
        return Ok(match base {
            Base::Static(c) => CredentialSource::Static(c),
            Base::Chain(i) => CredentialSource::Platform(i),
        });
    };
    Ok(CredentialSource::Platform(
        provider.register(Source::AssumeRole {
            base,
            role_arn,
            session_name: platform
                .role_session_name
                .unwrap_or_else(|| "envoy-faas".into()),
            external_id: platform.external_id,
            sts: StsEndpoint {
                authority: platform
                    .sts_endpoint
                    .unwrap_or_else(|| sts_authority(region)),
                region: region.to_string(),
            },
        }),
    ))
}

/// `authorization.iam` as written; defaults that depend on the mode are
/// applied by the caller.
#[derive(Debug)]
pub struct IamFields {
    pub credentials: Option<Credentials>,
    pub region: Option<String>,
    pub service: Option<String>,
    pub content_sha256: bool,
    pub platform: PlatformFields,
}

pub fn read_iam_fields(iam: &mut Fields) -> Result<IamFields, ConfigError> {
    let access = iam.header_value("accesskey")?;
    let secret = iam.header_value("secretkey")?;
    let token = iam.header_value("session_token")?;
    let credentials = match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        }),
        (Some(_), None) => return Err(iam.error("secretkey", "is required when accesskey is set")),
        (None, Some(_)) => return Err(iam.error("accesskey", "is required when secretkey is set")),
        (None, None) if token.is_some() => {
            return Err(iam.error(
                "session_token",
                "needs accesskey and secretkey in the same object",
            ))
        }
        (None, None) => None,
    };
    let region = iam.non_empty_string("aws_region")?;
    if region.as_deref().is_some_and(|r| !is_aws_name(r)) {
        return Err(iam.error("aws_region", "must be a region name such as us-east-1"));
    }
    let service = iam.non_empty_string("service")?;
    if service.as_deref().is_some_and(|s| !is_aws_name(s)) {
        return Err(iam.error(
            "service",
            "must be a service signing name such as execute-api or lambda",
        ));
    }
    let content_sha256 = iam.bool("content_sha256")?.unwrap_or(false);
    let platform = read_platform_fields(iam)?;
    Ok(IamFields {
        credentials,
        region,
        service,
        content_sha256,
        platform,
    })
}

pub fn no_credentials(route: &str, field: &str) -> ConfigError {
    ConfigError::new(
        route,
        field,
        "IAM signing is configured but there are no credentials: set keys in the config, \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity or container source in \
         vm_config.environment_variables, or leave instance metadata on (AWS_EC2_METADATA_DISABLED is true)",
    )
}

/// Test helpers: compile a config as the filter does, with a given environment.
#[cfg(test)]
pub(crate) mod testing {
    use super::Global;
    use crate::config::{read_route, Route};
    use crate::credentials::environment::Environment;
    use faas_core::config::{compile, PluginConfig};
    use faas_core::ConfigError;

    pub fn compile_with(
        json: &str,
        env: Environment,
    ) -> Result<PluginConfig<Global, Route>, ConfigError> {
        compile(json.as_bytes(), |f| Global::read(f, env), read_route)
    }

    /// No credentials anywhere and instance metadata off (as in CI).
    pub fn offline() -> Environment {
        Environment {
            imds_disabled: true,
            ..Environment::default()
        }
    }
}
