//! Invoke API mode: `POST /2015-03-31/functions/<name>/invocations`, with
//! the client's request turned into a Lambda event (Kong `aws-lambda` parity).

use crate::credentials::Credentials;
use crate::events::{self, EventContext, Forward};
use crate::iam::{
    is_aws_name, read_iam_fields, read_platform_fields, resolve, Global, Iam, IamFields,
};
use crate::invoke_response::{InvocationType, ResponseSettings, ResultFormat};
use crate::sigv4::{uri_encode, Signer};
use faas_core::uri::FunctionUri;
use faas_core::{Callout, ClientRequest, CommonConfig, ConfigError, Fields};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the function receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// The client's body, as is.
    Raw,
    ApiGatewayV1,
    ApiGatewayV2,
    /// Kong's `forward_request_*` object.
    KongForward(Forward),
    /// Envoy's native `aws_lambda` JSON (`payload_passthrough: false`).
    EnvoyNative,
    /// An Application Load Balancer target group's event; `multi_value`
    /// is the group's multi-value headers setting.
    Alb {
        multi_value: bool,
    },
}

impl Payload {
    pub fn is_api_gateway(&self) -> bool {
        matches!(self, Payload::ApiGatewayV1 | Payload::ApiGatewayV2)
    }
}

#[derive(Debug)]
pub struct Invoke {
    /// `/2015-03-31/functions/<name>/invocations[?Qualifier=..]`.
    pub path: String,
    pub iam: Iam,
    pub payload: Payload,
    /// The ALB event's `requestContext.elb.targetGroupArn`.
    pub target_group_arn: String,
    pub base64_encode_body: bool,
    pub response: ResponseSettings,
    /// `invoke_mode: RESPONSE_STREAM`: InvokeWithResponseStream, whose
    /// answer is an eventstream ([`crate::response_stream`]).
    pub streaming: bool,
}

/// A function name as AWS accepts it: `name`, `name:qualifier`,
/// `account:function:name[:qualifier]` or a full ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionName {
    /// As given (sent percent-encoded in the path).
    pub value: String,
    pub region: Option<String>,
    pub qualifier: Option<String>,
}

fn valid_name(s: &str) -> bool {
    (1..=140).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_qualifier(s: &str) -> bool {
    s == "$LATEST"
        || ((1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

pub fn parse_function_name(value: &str) -> Result<FunctionName, &'static str> {
    let parts: Vec<&str> = value.split(':').collect();
    let (region, name, qualifier) = match parts.as_slice() {
        [name] => (None, *name, None),
        [name, q] => (None, *name, Some(*q)),
        [account, "function", name] => (account_ok(account)?, *name, None),
        [account, "function", name, q] => (account_ok(account)?, *name, Some(*q)),
        ["arn", _partition, "lambda", region, account, "function", name] => (arn_region(region, account)?, *name, None),
        ["arn", _partition, "lambda", region, account, "function", name, q] => (arn_region(region, account)?, *name, Some(*q)),
        _ => return Err("must be a function name, name:qualifier, account:function:name or a Lambda function ARN"),
    };
    if !valid_name(name) {
        return Err("has an invalid function name (letters, digits, - and _)");
    }
    if qualifier.is_some_and(|q| !valid_qualifier(q)) {
        return Err("has an invalid qualifier (a version, an alias or $LATEST)");
    }
    Ok(FunctionName {
        value: value.to_string(),
        region,
        qualifier: qualifier.map(String::from),
    })
}

fn account_ok(account: &str) -> Result<Option<String>, &'static str> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(None)
    } else {
        Err("has an invalid account id (12 digits)")
    }
}

fn arn_region(region: &str, account: &str) -> Result<Option<String>, &'static str> {
    account_ok(account)?;
    if is_aws_name(region) {
        Ok(Some(region.to_string()))
    } else {
        Err("has an invalid region in its ARN")
    }
}

/// Kong fields that a block exported from Kong always lists. Each is
/// accepted at Kong's default (or `null`) and at any value whose effect
/// envoy-faas already has; only values it cannot honour are refused.
fn read_kong_only_fields(fields: &mut Fields) -> Result<(), ConfigError> {
    if fields.take("proxy_url").is_some() {
        return Err(fields.error(
            "proxy_url",
            "is the function cluster's job in Envoy: an http_11_proxy transport socket (envoy-faas import translates it)",
        ));
    }
    // true (Kong's default) omits bodies nginx spilled to disk; false reads
    // them. envoy-faas always sends the whole body up to max_req_body_size
    // and answers 413 above it: either value loads, neither omits a body.
    fields.bool("skip_large_bodies")?;
    // legacy (Kong's default) turns [] into {} in re-serialised results;
    // envoy-faas passes results through byte for byte, as with correct.
    choice(fields, "empty_arrays_mode", &["legacy", "correct"])?;
    Ok(())
}

fn choice<'a>(
    fields: &mut Fields,
    name: &str,
    allowed: &[&'a str],
) -> Result<Option<&'a str>, ConfigError> {
    match fields.string(name)? {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .map(|a| Some(*a))
            .ok_or_else(|| fields.error(name, format!("must be one of {}", allowed.join(", ")))),
    }
}

/// The request payload, and whether it came from Kong's fields: Kong reads
/// the result as a proxy response only with `is_proxy_integration: true`.
fn read_payload(fields: &mut Fields) -> Result<(Payload, bool), ConfigError> {
    let format = choice(
        fields,
        "payload_format",
        &[
            "raw",
            "apigateway_v1",
            "apigateway_v2",
            "envoy",
            "alb",
            "alb_multi_value",
        ],
    )?;
    let compatible = fields.bool("awsgateway_compatible")?;
    let version = choice(
        fields,
        "awsgateway_compatible_payload_version",
        &["1.0", "2.0"],
    )?;
    let gateway = if version == Some("2.0") {
        Payload::ApiGatewayV2
    } else {
        Payload::ApiGatewayV1
    };
    let forward = Forward {
        method: fields.bool("forward_request_method")?.unwrap_or(false),
        uri: fields.bool("forward_request_uri")?.unwrap_or(false),
        headers: fields.bool("forward_request_headers")?.unwrap_or(false),
        body: fields.bool("forward_request_body")?.unwrap_or(false),
    };
    let kong = match (compatible, forward.any()) {
        (Some(true), _) => Some(gateway), // Kong: takes precedence over forward_request_*
        (_, true) => Some(Payload::KongForward(forward)),
        _ => None,
    };
    match (format, kong) {
        (Some(_), Some(_)) => Err(fields.error(
            "payload_format",
            "cannot be combined with Kong's awsgateway_compatible or forward_request_* fields",
        )),
        (Some("apigateway_v1"), None) => Ok((Payload::ApiGatewayV1, false)),
        (Some("apigateway_v2"), None) => Ok((Payload::ApiGatewayV2, false)),
        (Some("envoy"), None) => Ok((Payload::EnvoyNative, false)),
        (Some("alb"), None) => Ok((Payload::Alb { multi_value: false }, false)),
        (Some("alb_multi_value"), None) => Ok((Payload::Alb { multi_value: true }, false)),
        (_, Some(p)) => Ok((p, true)),
        _ => Ok((Payload::Raw, false)),
    }
}

/// Invoke-mode credentials: Kong's `aws_key`/`aws_secret` and role fields
/// at the route level, or `authorization.iam` (which then holds them all).
fn read_credentials(fields: &mut Fields) -> Result<IamFields, ConfigError> {
    let key = fields.header_value("aws_key")?;
    let secret = fields.header_value("aws_secret")?;
    let platform = read_platform_fields(fields)?;
    let iam = match fields.object("authorization")? {
        None => None,
        Some(mut auth) => {
            if auth.has("apikey") {
                return Err(auth.error(
                    "apikey",
                    "is not used by the Lambda Invoke API (it is an API Gateway key)",
                ));
            }
            let iam = match auth.object("iam")? {
                Some(mut iam) => {
                    let f = read_iam_fields(&mut iam)?;
                    iam.finish()?;
                    Some(f)
                }
                None => None,
            };
            auth.finish()?;
            iam
        }
    };
    let kong_credentials = match (key, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: None,
        }),
        (Some(_), None) => {
            return Err(fields.error("aws_secret", "is required when aws_key is set"))
        }
        (None, Some(_)) => {
            return Err(fields.error("aws_key", "is required when aws_secret is set"))
        }
        (None, None) => None,
    };
    match iam {
        Some(_) if platform.assume_role_arn.is_some() || platform.imds_allow_v1 => Err(fields
            .error(
                "aws_assume_role_arn",
                "with authorization.iam, put the role fields inside it",
            )),
        Some(_) if kong_credentials.is_some() => Err(fields.error(
            "aws_key",
            "give credentials either as aws_key/aws_secret or as authorization.iam, not both",
        )),
        Some(f) => Ok(f),
        None => Ok(IamFields {
            credentials: kong_credentials,
            region: None,
            service: None,
            content_sha256: false,
            platform,
        }),
    }
}

fn read_endpoint(fields: &mut Fields, region: &str) -> Result<FunctionUri, ConfigError> {
    let endpoint = fields.non_empty_string("endpoint")?;
    let host = fields.non_empty_string("host")?;
    let port = fields.integer("port", 1, 65_535)?;
    let disable_https = fields.bool("disable_https")?.unwrap_or(false);
    let url = match (endpoint, host) {
        (Some(_), Some(_)) => return Err(fields.error("host", "cannot be combined with endpoint")),
        (Some(e), None) => e,
        (None, Some(h)) => {
            let scheme = if disable_https { "http" } else { "https" };
            let port = port.unwrap_or(if disable_https { 80 } else { 443 });
            format!("{scheme}://{h}:{port}")
        }
        (None, None) => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://lambda.{region}.{suffix}")
        }
    };
    let uri = FunctionUri::parse(&url).map_err(|why| fields.error("endpoint", why))?;
    if uri.path != "/" || !uri.query.is_empty() {
        return Err(fields.error(
            "endpoint",
            "must be scheme://host[:port] without a path or query",
        ));
    }
    Ok(uri)
}

/// Reads an Invoke-mode route; returns it and the endpoint the common
/// fields (cluster default, timeout, ...) apply to.
/// The API paths of the two invocation forms.
const INVOKE_PATH: (&str, &str) = ("/2015-03-31/functions/", "/invocations");
const STREAM_PATH: (&str, &str) = ("/2021-11-15/functions/", "/response-streaming-invocations");

pub fn read(
    fields: &mut Fields,
    global: &Global,
    streaming: bool,
) -> Result<(Invoke, FunctionUri), ConfigError> {
    read_kong_only_fields(fields)?;
    let raw_name = fields.required_string("function_name")?;
    let name = parse_function_name(&raw_name).map_err(|why| fields.error("function_name", why))?;
    let qualifier = fields.non_empty_string("qualifier")?;
    if qualifier.as_deref().is_some_and(|q| !valid_qualifier(q)) {
        return Err(fields.error("qualifier", "must be a version, an alias or $LATEST"));
    }
    if let (Some(q), Some(in_name)) = (&qualifier, &name.qualifier) {
        if q != in_name {
            return Err(fields.error("qualifier", "differs from the qualifier in function_name"));
        }
    }
    let iam_fields = read_credentials(fields)?;
    let configured_region = fields
        .non_empty_string("aws_region")?
        .or(iam_fields.region.clone());
    if configured_region
        .as_deref()
        .is_some_and(|r| !is_aws_name(r))
    {
        return Err(fields.error("aws_region", "must be a region name such as us-east-1"));
    }
    let region = match (&name.region, configured_region) {
        (Some(arn), Some(cfg)) if *arn != cfg => {
            return Err(fields.error("aws_region", "differs from the region in the function ARN"))
        }
        (Some(arn), _) => arn.clone(),
        (None, Some(cfg)) => cfg,
        (None, None) => global
            .env
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".into()),
    };
    let endpoint = read_endpoint(fields, &region)?;
    let invocation_type = match choice(
        fields,
        "invocation_type",
        &["RequestResponse", "Event", "DryRun"],
    )? {
        Some("Event") if streaming => {
            return Err(fields.error(
                "invocation_type",
                "\"Event\" cannot stream: invoke_mode RESPONSE_STREAM (InvokeWithResponseStream) takes RequestResponse or DryRun",
            ))
        }
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        _ => InvocationType::RequestResponse,
    };
    let log_tail = choice(fields, "log_type", &["None", "Tail"])? == Some("Tail");
    let unhandled_status = fields
        .integer("unhandled_status", 100, 599)?
        .and_then(|s| u16::try_from(s).ok());
    let (payload, from_kong) = read_payload(fields)?;
    let base64_encode_body = fields.bool("base64_encode_body")?.unwrap_or(true);
    let target_group_arn = match fields.header_value("target_group_arn")? {
        Some(_) if !matches!(payload, Payload::Alb { .. }) => {
            return Err(fields.error(
                "target_group_arn",
                "applies to payload_format alb and alb_multi_value only",
            ))
        }
        Some(arn) => arn,
        None => format!(
            "arn:aws:elasticloadbalancing:{region}:000000000000:targetgroup/envoy-faas/0000000000000000"
        ),
    };
    // Our payload_format implies a proxy result, as API Gateway does; Kong's
    // awsgateway_compatible shapes only the request.
    // An ALB target group reads the same result as API Gateway 1.0
    // (`statusCode`, `headers` / `multiValueHeaders`, `isBase64Encoded`).
    let is_apigateway = matches!(
        payload,
        Payload::ApiGatewayV1 | Payload::ApiGatewayV2 | Payload::Alb { .. }
    );
    let proxy_integration = fields.bool("is_proxy_integration")?;
    if streaming && proxy_integration == Some(true) {
        return Err(fields.error(
            "is_proxy_integration",
            "does not apply to invoke_mode RESPONSE_STREAM: a streamed answer is the function's bytes; it sets status and headers with awslambda.HttpResponseStream.from, which the filter applies",
        ));
    }
    let result = match (payload, proxy_integration) {
        (Payload::EnvoyNative, Some(_)) => return Err(fields.error(
            "is_proxy_integration",
            "does not apply to payload_format envoy: the result is read in Envoy's native format",
        )),
        (Payload::EnvoyNative, None) if !streaming => ResultFormat::Envoy,
        _ => match proxy_integration.unwrap_or(is_apigateway && !from_kong && !streaming) {
            true => ResultFormat::Proxy {
                v2: payload == Payload::ApiGatewayV2,
            },
            false => ResultFormat::Raw,
        },
    };
    let response = ResponseSettings {
        invocation_type,
        result,
        unhandled_status,
        preserve_api_status: fields
            .bool("preserve_lambda_api_error_code")?
            .unwrap_or(false),
        forward_invoke_headers: fields.bool("forward_invoke_headers")?.unwrap_or(false),
        log_tail,
    };
    let (prefix, suffix) = if streaming { STREAM_PATH } else { INVOKE_PATH };
    let mut path = String::from(prefix);
    uri_encode(name.value.as_bytes(), false, &mut path);
    path.push_str(suffix);
    if let Some(q) = &qualifier {
        path.push_str("?Qualifier=");
        uri_encode(q.as_bytes(), false, &mut path);
    }
    let service = iam_fields.service.unwrap_or_else(|| "lambda".into());
    let credentials = resolve(
        fields,
        "aws_key",
        iam_fields.credentials,
        iam_fields.platform,
        &region,
        global,
    )?;
    let iam = Iam {
        signer: Signer::new(&region, &service),
        credentials,
        content_sha256: iam_fields.content_sha256,
    };
    Ok((
        Invoke {
            path,
            iam,
            payload,
            target_group_arn,
            base64_encode_body,
            response,
            streaming,
        },
        endpoint,
    ))
}

/// The Invoke API call for a client request.
pub fn callout(
    common: &CommonConfig,
    invoke: &Invoke,
    request: &ClientRequest,
    now: SystemTime,
) -> Callout {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let ctx = EventContext {
        request_id: request.header("x-request-id").unwrap_or(""),
        now_ms,
        strip_prefix: common.strip_prefix.as_deref(),
        base64_encode_body: invoke.base64_encode_body,
    };
    let body = match invoke.payload {
        Payload::Raw => request.body.clone(),
        // Written straight to bytes (events::apigw_*): no Value tree.
        Payload::ApiGatewayV1 => events::apigw_v1(request, &ctx),
        Payload::ApiGatewayV2 => events::apigw_v2(request, &ctx),
        Payload::EnvoyNative => events::envoy_native(request),
        Payload::Alb { multi_value } => events::alb(request, &invoke.target_group_arn, multi_value),
        Payload::KongForward(f) => {
            let event = events::kong_forward(request, f, invoke.base64_encode_body);
            serde_json::to_vec(&event).unwrap_or_default()
        }
    };
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), invoke.path.clone()),
        (":authority".to_string(), common.function.authority()),
        (
            ":scheme".to_string(),
            common.function.scheme.as_str().to_string(),
        ),
        (
            "x-amz-invocation-type".to_string(),
            invoke.response.invocation_type.as_str().to_string(),
        ),
    ];
    if invoke.response.log_tail {
        headers.push(("x-amz-log-type".into(), "Tail".into()));
    }
    if let Some(id) = request.header("x-request-id") {
        headers.push(("x-request-id".into(), id.to_string()));
    }
    Callout {
        cluster: common.cluster.clone(),
        headers,
        body,
        timeout: common.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, Route};
    use crate::iam::testing::{compile_with, offline};
    use std::rc::Rc;

    const KEYS: &str =
        r#""aws_key": "AKIDEXAMPLE", "aws_secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY""#;

    fn route(extra: &str) -> Result<Rc<Route>, ConfigError> {
        let json = format!("{{{KEYS}, {extra}}}");
        let c = compile_with(&json, offline())?;
        Ok(c.routes.lookup(None).unwrap())
    }

    fn invoke(r: &Route) -> &Invoke {
        match &r.mode {
            Mode::Invoke(i) => i,
            Mode::Url(_) => panic!("not invoke mode"),
        }
    }

    #[test]
    fn paths_regions_and_endpoints() {
        let r =
            route(r#""function_name": "arn:aws:lambda:eu-west-1:123456789012:function:f:live""#)
                .unwrap();
        let i = invoke(&r);
        assert_eq!(i.path, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Af%3Alive/invocations");
        assert_eq!(
            (i.iam.signer.region.as_str(), i.iam.signer.service.as_str()),
            ("eu-west-1", "lambda")
        );
        assert_eq!(
            r.common.function.authority(),
            "lambda.eu-west-1.amazonaws.com"
        );
        assert_eq!(r.common.cluster, "lambda.eu-west-1.amazonaws.com");

        let r =
            route(r#""function_name": "f", "qualifier": "$LATEST", "aws_region": "cn-north-1""#)
                .unwrap();
        assert_eq!(
            invoke(&r).path,
            "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST"
        );
        assert_eq!(
            r.common.function.authority(),
            "lambda.cn-north-1.amazonaws.com.cn"
        );

        let r = route(
            r#""function_name": "f", "endpoint": "http://127.0.0.1:5000", "cluster": "moto""#,
        )
        .unwrap();
        assert_eq!(
            (r.common.function.authority(), r.common.cluster.as_str()),
            ("127.0.0.1:5000".into(), "moto")
        );
        let r = route(
            r#""function_name": "f", "host": "localstack", "port": 4566, "disable_https": true"#,
        )
        .unwrap();
        assert_eq!(r.common.function.authority(), "localstack:4566");
    }

    #[test]
    fn kong_fields_choose_payload_and_result_formats() {
        let cases = [
            (r#""function_name": "f""#, Payload::Raw, ResultFormat::Raw),
            (
                r#""function_name": "f", "payload_format": "envoy""#,
                Payload::EnvoyNative,
                ResultFormat::Envoy,
            ),
            (
                r#""function_name": "f", "payload_format": "alb""#,
                Payload::Alb { multi_value: false },
                ResultFormat::Proxy { v2: false },
            ),
            (
                r#""function_name": "f", "payload_format": "alb_multi_value""#,
                Payload::Alb { multi_value: true },
                ResultFormat::Proxy { v2: false },
            ),
            (
                r#""function_name": "f", "payload_format": "apigateway_v2""#,
                Payload::ApiGatewayV2,
                ResultFormat::Proxy { v2: true },
            ),
            (
                r#""function_name": "f", "payload_format": "apigateway_v1", "is_proxy_integration": false"#,
                Payload::ApiGatewayV1,
                ResultFormat::Raw,
            ),
            // Kong: awsgateway_compatible shapes the request only.
            (
                r#""function_name": "f", "awsgateway_compatible": true"#,
                Payload::ApiGatewayV1,
                ResultFormat::Raw,
            ),
            (
                r#""function_name": "f", "awsgateway_compatible": true, "forward_request_body": true, "is_proxy_integration": true"#,
                Payload::ApiGatewayV1,
                ResultFormat::Proxy { v2: false },
            ),
            (
                r#""function_name": "f", "awsgateway_compatible": true, "awsgateway_compatible_payload_version": "2.0", "is_proxy_integration": true"#,
                Payload::ApiGatewayV2,
                ResultFormat::Proxy { v2: true },
            ),
            // The version alone does not switch the gateway event on.
            (
                r#""function_name": "f", "awsgateway_compatible": false, "awsgateway_compatible_payload_version": "2.0""#,
                Payload::Raw,
                ResultFormat::Raw,
            ),
            (
                r#""function_name": "f", "forward_request_method": true, "is_proxy_integration": true"#,
                Payload::KongForward(Forward {
                    method: true,
                    ..Forward::default()
                }),
                ResultFormat::Proxy { v2: false },
            ),
        ];
        for (extra, payload, result) in cases {
            let r = route(extra).unwrap();
            assert_eq!(
                (invoke(&r).payload, invoke(&r).response.result),
                (payload, result),
                "{extra}"
            );
        }
        let r = route(r#""function_name": "f", "invocation_type": "Event", "log_type": "Tail", "unhandled_status": 500, "timeout": 60000, "keepalive": 60000"#).unwrap();
        let i = invoke(&r);
        assert_eq!(
            (
                i.response.invocation_type,
                i.response.log_tail,
                i.response.unhandled_status
            ),
            (InvocationType::Event, true, Some(500))
        );
    }

    #[test]
    fn invalid_invoke_configs_name_the_field() {
        let cases = [
            (
                r#""function_name": "a b""#,
                "function_name",
                "has an invalid function name",
            ),
            (
                r#""function_name": "f:one", "qualifier": "two""#,
                "qualifier",
                "differs from the qualifier in function_name",
            ),
            (
                r#""function_name": "arn:aws:lambda:eu-west-1:123456789012:function:f", "aws_region": "us-east-1""#,
                "aws_region",
                "differs from the region in the function ARN",
            ),
            (
                r#""function_name": "f", "invocation_type": "Sync""#,
                "invocation_type",
                "must be one of RequestResponse, Event, DryRun",
            ),
            (
                r#""function_name": "f", "log_type": "tail""#,
                "log_type",
                "must be one of None, Tail",
            ),
            (
                r#""function_name": "f", "unhandled_status": 99"#,
                "unhandled_status",
                "must be between 100 and 599, got 99",
            ),
            (
                r#""function_name": "f", "payload_format": "apigateway_v2", "forward_request_uri": true"#,
                "payload_format",
                "cannot be combined",
            ),
            (
                r#""function_name": "f", "endpoint": "http://h:1/path""#,
                "endpoint",
                "without a path",
            ),
            (
                r#""function_name": "f", "aws_assume_role_arn": "arn:x""#,
                "aws_assume_role_arn",
                "must be a role ARN",
            ),
            (
                r#""function_name": "f", "aws_assume_role_external_id": "x1""#,
                "aws_assume_role_external_id",
                "needs aws_assume_role_arn",
            ),
            (
                r#""function_name": "f", "proxy_url": "http://proxy:3128""#,
                "proxy_url",
                "http_11_proxy transport socket",
            ),
            (
                r#""function_name": "f", "empty_arrays_mode": "fixed""#,
                "empty_arrays_mode",
                "must be one of legacy, correct",
            ),
            (
                r#""function_name": "f", "awsgateway_compatible_payload_version": "3.0""#,
                "awsgateway_compatible_payload_version",
                "must be one of 1.0, 2.0",
            ),
            (
                r#""function_name": "f", "payload_format": "envoy", "is_proxy_integration": true"#,
                "is_proxy_integration",
                "does not apply to payload_format envoy",
            ),
            (
                r#""function_name": "f", "payload_format": "elb""#,
                "payload_format",
                "must be one of raw, apigateway_v1, apigateway_v2, envoy, alb, alb_multi_value",
            ),
            (
                r#""function_name": "f", "target_group_arn": "arn:x""#,
                "target_group_arn",
                "applies to payload_format alb and alb_multi_value only",
            ),
            (
                r#""function_name": "f", "skip_large_bodies": "yes""#,
                "skip_large_bodies",
                "must be a boolean",
            ),
            (
                r#""function_name": "f", "aws_assume_role_arn": "arn:aws:iam::1:role/r", "aws_role_session_name": "a b""#,
                "aws_role_session_name",
                "must be 2 to 64 characters",
            ),
            (
                r#""function_name": "f", "aws_assume_role_arn": "arn:aws:iam::1:role/r", "aws_sts_endpoint_url": "https://sts.example/x""#,
                "aws_sts_endpoint_url",
                "without a path or query",
            ),
            (
                r#""function_name": "f", "aws_imds_protocol_version": "v3""#,
                "aws_imds_protocol_version",
                "must be one of v1, v2",
            ),
            (
                r#""function_name": "f", "aws_assume_role_arn": "arn:aws:iam::1:role/r", "authorization": {"iam": {}}"#,
                "aws_assume_role_arn",
                "put the role fields inside it",
            ),
            (
                r#""function_name": "f", "function_uri": "http://h/""#,
                "function_uri",
                "cannot be combined with function_name",
            ),
            (
                r#""function_name": "f", "authorization": {"apikey": "k"}"#,
                "authorization.apikey",
                "is not used by the Lambda Invoke API",
            ),
        ];
        for (extra, field, message) in cases {
            let e = route(extra).unwrap_err();
            assert_eq!(e.field, field, "{extra}: {e}");
            assert!(e.message.contains(message), "{extra}: {e}");
        }
        let e = compile_with(r#"{"function_name": "f"}"#, offline()).unwrap_err();
        assert_eq!(e.field, "aws_key");
        assert!(e.message.contains("no credentials"), "{e}");
    }

    #[test]
    fn the_callout_carries_the_event_and_invocation_headers() {
        let r = route(r#""function_name": "f", "payload_format": "apigateway_v2", "log_type": "Tail", "strip_prefix": "/api""#).unwrap();
        let request = ClientRequest {
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), "/api/x?a=1".into()),
                (":authority".into(), "gw".into()),
                ("x-request-id".into(), "rid".into()),
            ],
            ..Default::default()
        };
        let call = callout(&r.common, invoke(&r), &request, UNIX_EPOCH);
        assert_eq!(
            call.header(":path"),
            Some("/2015-03-31/functions/f/invocations")
        );
        assert_eq!(call.header(":method"), Some("POST"));
        assert_eq!(
            call.header("x-amz-invocation-type"),
            Some("RequestResponse")
        );
        assert_eq!(call.header("x-amz-log-type"), Some("Tail"));
        let event: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            (
                event["rawPath"].as_str(),
                event["requestContext"]["requestId"].as_str()
            ),
            (Some("/api/x"), Some("rid"))
        );
        assert_eq!(event["pathParameters"]["proxy"], "x");
    }

    #[test]
    fn function_names_and_arns() {
        let ok = [
            ("my-fn", None, None),
            ("my-fn:prod", None, Some("prod")),
            ("my-fn:$LATEST", None, Some("$LATEST")),
            ("123456789012:function:my-fn", None, None),
            ("123456789012:function:my-fn:7", None, Some("7")),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:my-fn",
                Some("eu-west-1"),
                None,
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:f_1:live",
                Some("cn-north-1"),
                Some("live"),
            ),
        ];
        for (input, region, qualifier) in ok {
            let n = parse_function_name(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (n.region.as_deref(), n.qualifier.as_deref()),
                (region, qualifier),
                "{input}"
            );
        }
        for bad in [
            "",
            "my fn",
            "a:b:c",
            "12345:function:f",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:US:123456789012:function:f",
            "f:bad/q",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
        ] {
            assert!(parse_function_name(bad).is_err(), "{bad}");
        }
    }
}
