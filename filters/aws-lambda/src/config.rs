//! `aws-lambda` configuration (APISIX field names), compiled once.

use crate::iam::{read_iam_fields, resolve, Global, Iam};
use crate::invoke::Invoke;
use crate::sigv4::Signer;
use faas_core::config::read_function_uri;
use faas_core::layout::Forwarding;
use faas_core::uri::FunctionUri;
use faas_core::{CommonConfig, ConfigError, Fields};

/// `function_uri` mode: API Gateway or a Function URL, called over HTTP.
#[derive(Debug)]
pub struct UrlMode {
    /// Sent as `x-api-key` unless the client sent one (and
    /// `strip_client_apikey` is off).
    pub apikey: Option<String>,
    /// Removes the client's `x-api-key`, so only the gateway chooses the
    /// API Gateway key (and usage plan). Off by default: APISIX parity.
    pub strip_client_apikey: bool,
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
    /// `invoke_mode: RESPONSE_STREAM` (Kong's field): the function streams
    /// its answer, which reaches the client as it comes (in place).
    pub streaming: bool,
}

/// Kong's `invoke_mode` (pull request #13176): `BUFFERED` (default) or
/// `RESPONSE_STREAM`; whether the route streams.
fn read_invoke_mode(fields: &mut Fields) -> Result<bool, ConfigError> {
    match fields.string("invoke_mode")?.as_deref() {
        None | Some("BUFFERED") => Ok(false),
        Some("RESPONSE_STREAM") => Ok(true),
        Some(_) => Err(fields.error("invoke_mode", "must be one of BUFFERED, RESPONSE_STREAM")),
    }
}

impl Route {
    /// The route's IAM signing (always there in Invoke mode).
    pub fn iam(&self) -> Option<&Iam> {
        match &self.mode {
            Mode::Url(url) => url.iam.as_ref(),
            Mode::Invoke(invoke) => Some(&invoke.iam),
        }
    }
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

fn read_url_mode(
    fields: &mut Fields,
    uri: &FunctionUri,
    global: &Global,
) -> Result<UrlMode, ConfigError> {
    let strip_client_apikey = fields.bool("strip_client_apikey")?.unwrap_or(false);
    let Some(mut auth) = fields.object("authorization")? else {
        return Ok(UrlMode {
            apikey: None,
            strip_client_apikey,
            iam: None,
        });
    };
    let apikey = auth.header_value("apikey")?;
    let iam = match auth.object("iam")? {
        None => None,
        Some(mut iam) => {
            let f = read_iam_fields(&mut iam)?;
            let host_region =
                function_url_region(&uri.host).or_else(|| execute_api_region(&uri.host));
            let region = f
                .region
                .or_else(|| host_region.map(String::from))
                .or_else(|| global.env.region.clone())
                .unwrap_or_else(|| "us-east-1".into());
            // Function URLs are signed for `lambda`; AWS refuses `execute-api`
            // there ("Credential should be scoped to correct service: 'lambda'").
            let default_service = if function_url_region(&uri.host).is_some() {
                "lambda"
            } else {
                "execute-api"
            };
            let service = f.service.unwrap_or_else(|| default_service.into());
            let credentials = resolve(
                &iam,
                "authorization.iam",
                f.credentials,
                f.platform,
                &region,
                global,
            )?;
            iam.finish()?;
            Some(Iam {
                signer: Signer::new(&region, &service),
                credentials,
                content_sha256: f.content_sha256,
            })
        }
    };
    auth.finish()?;
    Ok(UrlMode {
        apikey,
        strip_client_apikey,
        iam,
    })
}

pub fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
    let streaming = read_invoke_mode(fields)?;
    if fields.has("function_name") {
        if fields.has("function_uri") {
            return Err(fields.error(
                "function_uri",
                "cannot be combined with function_name (Invoke API mode)",
            ));
        }
        let (invoke, endpoint) = crate::invoke::read(fields, global, streaming)?;
        let common = CommonConfig::read(fields, endpoint)?;
        if common.forwarding == Forwarding::Route && !streaming {
            // The answer is an Invoke result mapped from its body: the
            // response headers would have to wait for it (issue 28).
            return Err(fields.error(
                "forwarding",
                "\"route\" is not available in Invoke API mode (function_name) unless invoke_mode is RESPONSE_STREAM: the result is mapped from the whole answer; use \"callout\"",
            ));
        }
        return Ok(Route {
            common,
            mode: Mode::Invoke(invoke),
            streaming,
        });
    }
    let uri = read_function_uri(fields, "function_uri")?;
    let mode = read_url_mode(fields, &uri, global)?;
    let common = CommonConfig::read(fields, uri)?;
    if streaming && common.forwarding != Forwarding::Route {
        // A Function URL streams as plain HTTP; only the router passes it
        // on as it comes (a callout's answer arrives whole).
        return Err(fields.error(
            "invoke_mode",
            "RESPONSE_STREAM with function_uri streams only in place: set forwarding to \"route\" (the callout path delivers the answer whole)",
        ));
    }
    Ok(Route {
        common,
        mode: Mode::Url(mode),
        streaming,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::environment::Environment;
    use crate::iam::testing::{compile_with as compiled, offline};
    use crate::iam::CredentialSource;

    fn url(r: &Route) -> &UrlMode {
        match &r.mode {
            Mode::Url(u) => u,
            Mode::Invoke(_) => panic!("not url mode"),
        }
    }

    fn route(json: &str) -> std::rc::Rc<Route> {
        let c = compiled(json, offline()).unwrap();
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
        })
        .unwrap();
        let c = compiled(
            r#"{"function_uri": "http://127.0.0.1:9/f", "authorization": {"iam": {}}}"#,
            env,
        )
        .unwrap();
        let r = c.routes.lookup(None).unwrap();
        let iam = url(&r).iam.as_ref().unwrap();
        let CredentialSource::Static(creds) = &iam.credentials else {
            panic!("static")
        };
        assert_eq!(creds.access_key_id, "ENVAK");
        assert_eq!(creds.session_token.as_deref(), Some("ENVTOKEN"));
        assert_eq!(iam.signer.region, "sa-east-1");
    }

    #[test]
    fn iam_without_any_credentials_is_refused_at_load() {
        let e = compiled(r#"{"function_uri": "http://h/f", "authorization": {"iam": {"aws_region": "us-east-1"}}}"#, offline()).unwrap_err();
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
            let e = compiled(&json, offline()).unwrap_err();
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
