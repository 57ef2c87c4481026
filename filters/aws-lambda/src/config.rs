//! `aws-lambda` configuration (APISIX field names), compiled once.

use crate::invoke::Invoke;
use crate::sigv4::{Credentials, Signer};
use faas_core::config::read_function_uri;
use faas_core::uri::FunctionUri;
use faas_core::{CommonConfig, ConfigError, Fields};

/// Credentials and region handed to the VM with
/// `vm_config.environment_variables` (Istio: `WasmPlugin.vmConfig.env`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub credentials: Option<Credentials>,
    pub region: Option<String>,
}

impl Environment {
    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` and `AWS_REGION` through `get`.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Environment {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let credentials = match (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: non_empty("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        Environment {
            credentials,
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
        }
    }
}

/// IAM (SigV4) signing for one route.
#[derive(Debug)]
pub struct Iam {
    pub signer: Signer,
    /// Also send (and sign) `x-amz-content-sha256`.
    pub content_sha256: bool,
}

/// `function_uri` mode: API Gateway or a Function URL, called over HTTP.
#[derive(Debug)]
pub struct UrlMode {
    /// Sent as `x-api-key` unless the client sent one.
    pub apikey: Option<String>,
    pub iam: Option<Iam>,
}

/// How the route calls its function.
#[derive(Debug)]
pub enum Mode {
    Url(UrlMode),
    Invoke(Invoke),
}

/// One route's compiled settings.
#[derive(Debug)]
pub struct Route {
    pub common: CommonConfig,
    pub mode: Mode,
}

/// The region of a Lambda Function URL host (`<id>.lambda-url.<region>.on.aws`).
pub fn function_url_region(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".on.aws")?;
    let (_, region) = rest.split_once(".lambda-url.")?;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

/// The region of an API Gateway host (`<id>.execute-api.<region>.amazonaws.com[.cn]`).
pub fn execute_api_region(host: &str) -> Option<&str> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (_, region) = rest.split_once(".execute-api.")?;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

pub fn is_aws_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `authorization.iam` as written; defaults that depend on the mode are
/// applied by the caller.
#[derive(Debug)]
pub struct IamFields {
    pub credentials: Credentials,
    pub region: Option<String>,
    pub service: Option<String>,
    pub content_sha256: bool,
}

pub fn read_iam_fields(mut iam: Fields, env: &Environment) -> Result<IamFields, ConfigError> {
    let access = iam.header_value("accesskey")?;
    let secret = iam.header_value("secretkey")?;
    let token = iam.header_value("session_token")?;
    let credentials = match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        },
        (Some(_), None) => return Err(iam.error("secretkey", "is required when accesskey is set")),
        (None, Some(_)) => return Err(iam.error("accesskey", "is required when secretkey is set")),
        (None, None) if token.is_some() => {
            return Err(iam.error(
                "session_token",
                "needs accesskey and secretkey in the same object",
            ))
        }
        (None, None) => env
            .credentials
            .clone()
            .ok_or_else(|| no_credentials(iam.route(), "authorization.iam"))?,
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
    iam.finish()?;
    Ok(IamFields {
        credentials,
        region,
        service,
        content_sha256,
    })
}

pub fn no_credentials(route: &str, field: &str) -> ConfigError {
    ConfigError::new(
        route,
        field,
        "IAM signing is configured but there are no credentials: set accesskey and secretkey, \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in vm_config.environment_variables",
    )
}

fn read_url_mode(
    fields: &mut Fields,
    uri: &FunctionUri,
    env: &Environment,
) -> Result<UrlMode, ConfigError> {
    let Some(mut auth) = fields.object("authorization")? else {
        return Ok(UrlMode {
            apikey: None,
            iam: None,
        });
    };
    let apikey = auth.header_value("apikey")?;
    let iam = match auth.object("iam")? {
        None => None,
        Some(iam) => {
            let f = read_iam_fields(iam, env)?;
            let host_region =
                function_url_region(&uri.host).or_else(|| execute_api_region(&uri.host));
            let region = f
                .region
                .or_else(|| host_region.map(String::from))
                .or_else(|| env.region.clone())
                .unwrap_or_else(|| "us-east-1".into());
            // Function URLs are signed for `lambda`; AWS refuses `execute-api`
            // there ("Credential should be scoped to correct service: 'lambda'").
            let default_service = if function_url_region(&uri.host).is_some() {
                "lambda"
            } else {
                "execute-api"
            };
            let service = f.service.unwrap_or_else(|| default_service.into());
            Some(Iam {
                signer: Signer::new(f.credentials, &region, &service),
                content_sha256: f.content_sha256,
            })
        }
    };
    auth.finish()?;
    Ok(UrlMode { apikey, iam })
}

pub fn read_route(fields: &mut Fields, env: &Environment) -> Result<Route, ConfigError> {
    if fields.has("function_name") {
        if fields.has("function_uri") {
            return Err(fields.error(
                "function_uri",
                "cannot be combined with function_name (Invoke API mode)",
            ));
        }
        let (invoke, endpoint) = crate::invoke::read(fields, env)?;
        let common = CommonConfig::read(fields, endpoint)?;
        return Ok(Route {
            common,
            mode: Mode::Invoke(invoke),
        });
    }
    let uri = read_function_uri(fields, "function_uri")?;
    let mode = read_url_mode(fields, &uri, env)?;
    let common = CommonConfig::read(fields, uri)?;
    Ok(Route {
        common,
        mode: Mode::Url(mode),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::config::{compile, PluginConfig};

    fn compiled(
        json: &str,
        env: Environment,
    ) -> Result<PluginConfig<Environment, Route>, ConfigError> {
        compile(json.as_bytes(), move |_| Ok(env), read_route)
    }

    fn url(r: &Route) -> &UrlMode {
        match &r.mode {
            Mode::Url(u) => u,
            Mode::Invoke(_) => panic!("not url mode"),
        }
    }

    fn route(json: &str) -> std::rc::Rc<Route> {
        let c = compiled(json, Environment::default()).unwrap();
        c.routes.lookup(None).unwrap()
    }

    const KEYS: &str = r#""accesskey": "AK", "secretkey": "SK""#;

    #[test]
    fn regions_and_services_default_from_the_host() {
        let r = route(&format!(
            r#"{{"function_uri": "https://abc.lambda-url.eu-west-3.on.aws/", "authorization": {{"iam": {{{KEYS}}}}}}}"#
        ));
        let s = &url(&r).iam.as_ref().unwrap().signer;
        assert_eq!(
            (s.region.as_str(), s.service.as_str()),
            ("eu-west-3", "lambda")
        );
        let r = route(&format!(
            r#"{{"function_uri": "https://x1.execute-api.ap-south-1.amazonaws.com/prod/f", "authorization": {{"iam": {{{KEYS}}}}}}}"#
        ));
        let s = &url(&r).iam.as_ref().unwrap().signer;
        assert_eq!(
            (s.region.as_str(), s.service.as_str()),
            ("ap-south-1", "execute-api")
        );
        let r = route(&format!(
            r#"{{"function_uri": "http://127.0.0.1:9/f", "authorization": {{"iam": {{{KEYS}}}}}}}"#
        ));
        let s = &url(&r).iam.as_ref().unwrap().signer;
        assert_eq!(
            (s.region.as_str(), s.service.as_str()),
            ("us-east-1", "execute-api")
        );
        let r = route(&format!(
            r#"{{"function_uri": "https://abc.lambda-url.eu-west-3.on.aws/", "authorization": {{"iam": {{{KEYS}, "aws_region": "us-west-2", "service": "execute-api"}}}}}}"#
        ));
        let s = &url(&r).iam.as_ref().unwrap().signer;
        assert_eq!(
            (s.region.as_str(), s.service.as_str()),
            ("us-west-2", "execute-api")
        );
    }

    #[test]
    fn environment_credentials_and_region_are_used_when_the_config_has_none() {
        let env = Environment::read(|k| match k {
            "AWS_ACCESS_KEY_ID" => Some("ENVAK".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("ENVSK".into()),
            "AWS_SESSION_TOKEN" => Some("ENVTOKEN".into()),
            "AWS_REGION" => Some("sa-east-1".into()),
            _ => None,
        });
        let c = compiled(
            r#"{"function_uri": "http://127.0.0.1:9/f", "authorization": {"iam": {}}}"#,
            env,
        )
        .unwrap();
        let r = c.routes.lookup(None).unwrap();
        let s = &url(&r).iam.as_ref().unwrap().signer;
        assert_eq!(s.credentials.access_key_id, "ENVAK");
        assert_eq!(s.credentials.session_token.as_deref(), Some("ENVTOKEN"));
        assert_eq!(s.region, "sa-east-1");
    }

    #[test]
    fn iam_without_any_credentials_is_refused_at_load() {
        let e = compiled(r#"{"function_uri": "http://h/f", "authorization": {"iam": {"aws_region": "us-east-1"}}}"#, Environment::default()).unwrap_err();
        assert_eq!(e.field, "authorization.iam");
        assert!(e.message.contains("no credentials"), "{e}");
    }

    #[test]
    fn invalid_authorization_names_the_field_and_hides_values() {
        let cases = [
            (
                r#"{"iam": {"accesskey": "AKSECRETISH"}}"#,
                "authorization.iam.secretkey",
                "is required when accesskey is set",
            ),
            (
                r#"{"iam": {"secretkey": "S3CR3T"}}"#,
                "authorization.iam.accesskey",
                "is required when secretkey is set",
            ),
            (
                r#"{"iam": {"session_token": "TOK"}}"#,
                "authorization.iam.session_token",
                "needs accesskey and secretkey in the same object",
            ),
            (
                r#"{"iam": {"accesskey": "A", "secretkey": "S3CR3T", "aws_region": "Bad Region"}}"#,
                "authorization.iam.aws_region",
                "must be a region name such as us-east-1",
            ),
            (
                r#"{"iam": {"accesskey": "A", "secretkey": "S3CR3T", "secret_key": "x"}}"#,
                "authorization.iam.secret_key",
                "unknown field",
            ),
            (
                r#"{"apikey": 5}"#,
                "authorization.apikey",
                "must be a string, got number",
            ),
            (
                r#"{"apikey": "k\n"}"#,
                "authorization.apikey",
                "must not contain control characters",
            ),
            (
                r#"{"iam": "yes"}"#,
                "authorization.iam",
                "must be an object, got string",
            ),
        ];
        for (auth, field, message) in cases {
            let json = format!(r#"{{"function_uri": "http://h/f", "authorization": {auth}}}"#);
            let e = compiled(&json, Environment::default()).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                (field, message),
                "{auth}"
            );
            assert!(!e.to_string().contains("S3CR3T") && !e.to_string().contains("AKSECRETISH"));
        }
    }

    #[test]
    fn host_region_parsing() {
        assert_eq!(
            function_url_region("abc.lambda-url.us-east-1.on.aws"),
            Some("us-east-1")
        );
        assert_eq!(function_url_region("lambda-url.us-east-1.on.aws"), None);
        assert_eq!(function_url_region("a.lambda-url.x.y.on.aws"), None);
        assert_eq!(
            execute_api_region("a1.execute-api.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            execute_api_region("a1.execute-api.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert_eq!(execute_api_region("example.com"), None);
    }
}
