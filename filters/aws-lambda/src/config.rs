//! `aws-lambda` configuration (APISIX field names), compiled once.

use crate::credentials::Credentials;
use crate::iam::{read_iam_fields, resolve, Global, Iam};
use crate::invoke::Invoke;
use crate::sigv4::Signer;
use faas_core::config::read_function_uri;
use faas_core::layout::Forwarding;
use faas_core::uri::FunctionUri;
use faas_core::{Callout, CommonConfig, ConfigError, Fields};
use std::time::SystemTime;

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

impl UrlMode {
    /// `function_uri` mode: the API key (unless the client sent one) and SigV4
    /// with `credentials` (required when the mode has IAM).
    pub fn authorize(
        &self,
        credentials: Option<&Credentials>,
        callout: &mut Callout,
        now: SystemTime,
    ) {
        if self.strip_client_apikey {
            callout.remove_header("x-api-key");
        }
        if let Some(key) = &self.apikey {
            // APISIX parity: a key the client sent (its own usage plan) wins,
            // unless `strip_client_apikey` removed it above.
            if callout.header("x-api-key").is_none() {
                callout.set_header("x-api-key", key.clone());
            }
        }
        if let (Some(iam), Some(credentials)) = (&self.iam, credentials) {
            callout
                .headers
                .retain(|(n, _)| !crate::signing::client_aws_header(n));
            crate::signing::sign(&iam.signer, credentials, iam.content_sha256, callout, now);
        }
    }
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

#[cfg(test)]
mod signing_tests {
    use super::*;
    use crate::iam::testing::{compile_with, offline};
    use crate::iam::CredentialSource;
    use crate::sigv4::hex_sha256;
    use faas_core::request::forward;
    use faas_core::ClientRequest;
    use std::time::{Duration, UNIX_EPOCH};

    fn callout(config: &str, client: &[(&str, &str)], body: &[u8]) -> Callout {
        let c = compile_with(config, offline()).unwrap();
        let route = c.routes.lookup(None).unwrap();
        let request = ClientRequest {
            headers: faas_core::headers::owned(client),
            peer_address: Some("10.1.2.3:4".into()),
            protocol: None,
            body: body.to_vec(),
        };
        let mut call = forward(&route.common, &request);
        let Mode::Url(mode) = &route.mode else {
            panic!("url mode")
        };
        let credentials = match mode.iam.as_ref().map(|i| &i.credentials) {
            Some(CredentialSource::Static(c)) => Some(c),
            None => None,
            Some(CredentialSource::Platform(_)) => panic!("static keys expected"),
        };
        mode.authorize(
            credentials,
            &mut call,
            UNIX_EPOCH + Duration::from_secs(1_440_938_160),
        );
        call
    }

    const IAM: &str = r#"{"function_uri": "https://abc.lambda-url.us-east-1.on.aws/fn?x=1", "strip_prefix": "/", "authorization": {"apikey": "cfg-key", "iam": {"accesskey": "AKIDEXAMPLE", "secretkey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session_token": "TOKEN", "content_sha256": true}}}"#;

    #[test]
    fn signs_only_headers_the_filter_controls_and_drops_client_aws_headers() {
        let call = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p?b=2"),
                (":authority", "gw"),
                ("content-type", "application/json"),
                ("authorization", "Bearer client"),
                ("x-amz-date", "19990101T000000Z"),
                ("x-amzn-trace-id", "Root=1"),
                ("x-amzn-vpce-id", "vpce-1"),
                ("user-agent", "curl"),
                ("x-api-key", "client-key"),
            ],
            b"{}",
        );
        let names: Vec<&str> = call.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            !names.contains(&"x-amzn-trace-id") && !names.contains(&"x-amzn-vpce-id"),
            "{names:?}"
        );
        assert_eq!(
            call.headers
                .iter()
                .filter(|(n, _)| n == "authorization")
                .count(),
            1
        );
        assert_eq!(call.header("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(call.header("x-amz-security-token"), Some("TOKEN"));
        assert_eq!(
            call.header("x-amz-content-sha256"),
            Some(hex_sha256(b"{}").as_str())
        );
        assert_eq!(
            call.header("x-api-key"),
            Some("client-key"),
            "the client's key wins"
        );
        let auth = call.header("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-api-key, Signature="), "{auth}");
        assert_eq!(call.header(":path"), Some("/fn/p?x=1&b=2"));
    }

    #[test]
    fn strip_client_apikey_makes_the_configured_key_the_only_one() {
        let config = r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod",
            "strip_client_apikey": true, "authorization": {"apikey": "cfg-key"}}"#;
        let call = callout(
            config,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("x-api-key", "client-key"),
            ],
            b"",
        );
        let keys: Vec<&str> = call
            .headers
            .iter()
            .filter(|(n, _)| n == "x-api-key")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(keys, vec!["cfg-key"]);
        // Without a configured key, the client's is still removed.
        let call = callout(
            r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod", "strip_client_apikey": true}"#,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("x-api-key", "client-key"),
            ],
            b"",
        );
        assert_eq!(call.header("x-api-key"), None);
    }

    #[test]
    fn apikey_only_adds_the_key_and_leaves_the_client_authorization() {
        let call = callout(
            r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod", "authorization": {"apikey": "cfg-key"}}"#,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("authorization", "Bearer jwt"),
                ("x-amzn-foo", "1"),
            ],
            b"",
        );
        assert_eq!(call.header("x-api-key"), Some("cfg-key"));
        assert_eq!(call.header("authorization"), Some("Bearer jwt"));
        assert!(call.header("x-amz-date").is_none());
    }

    #[test]
    fn a_signature_changes_with_every_signed_input() {
        let base = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p"),
                ("content-type", "a/b"),
            ],
            b"body",
        );
        let sig = |c: &Callout| c.header("authorization").unwrap().to_string();
        for (client, body) in [
            (
                vec![(":method", "PUT"), (":path", "/p"), ("content-type", "a/b")],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/q"),
                    ("content-type", "a/b"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p?z=1"),
                    ("content-type", "a/b"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p"),
                    ("content-type", "a/c"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p"),
                    ("content-type", "a/b"),
                ],
                &b"bodY"[..],
            ),
        ] {
            assert_ne!(sig(&callout(IAM, &client, body)), sig(&base), "{client:?}");
        }
        // Headers the filter does not control are not signed.
        let other = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p"),
                ("content-type", "a/b"),
                ("x-custom", "1"),
            ],
            b"body",
        );
        assert_eq!(sig(&other), sig(&base));
    }
}
