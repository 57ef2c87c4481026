//! From the Lambda Invoke API's answer to the client's response (pure).
//!
//! Order of decisions:
//! 1. The Invoke API itself failed (status other than 200/202/204 and no
//!    `X-Amz-Function-Error`): a JSON error, status per [`api_error_status`].
//! 2. The function failed (`X-Amz-Function-Error`): `unhandled_status`, or
//!    502, with the function's `errorType`/`errorMessage` (never its stack).
//! 3. `Event` → 202, `DryRun` → 204, empty bodies.
//! 4. Raw mode: the payload is the body, byte for byte.
//! 5. Proxy integration: API Gateway semantics, validated field by field;
//!    a JSON body the function returned is never re-serialised.
//!
//! The Invoke API's own headers (`x-amzn-*`, `x-amz-*`) reach the client
//! only with `forward_invoke_headers`; `x-amz-log-result` only when
//! `log_type` is `Tail` (the client asked for the log tail).

use faas_core::headers::{self, HeaderList};
use faas_core::outcome::Failure;
use faas_core::{base64, redact, CalloutResponse, ErrorReply, LocalReply};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        }
    }
}

/// How the function's result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// The payload is the response body.
    Raw,
    /// API Gateway proxy integration; `v2` allows a bare result without
    /// `statusCode` (payload format 2.0 semantics).
    Proxy { v2: bool },
    /// Envoy's native `aws_lambda` response ([`envoy_result`]).
    Envoy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSettings {
    pub invocation_type: InvocationType,
    pub result: ResultFormat,
    pub unhandled_status: Option<u16>,
    pub preserve_api_status: bool,
    pub forward_invoke_headers: bool,
    pub log_tail: bool,
}

impl Default for ResponseSettings {
    /// Invoke mode's defaults: a synchronous call whose payload is the body.
    fn default() -> Self {
        ResponseSettings {
            invocation_type: InvocationType::RequestResponse,
            result: ResultFormat::Raw,
            unhandled_status: None,
            preserve_api_status: false,
            forward_invoke_headers: false,
            log_tail: false,
        }
    }
}

/// The client status for an Invoke API error: 413 (payload too large) and
/// 429 (throttled) keep their meaning for the client; every other failure
/// of the gateway's call is a 502. `preserve` passes AWS's status through.
pub fn api_error_status(aws_status: u16, preserve: bool) -> u16 {
    match aws_status {
        s if preserve && (400..=599).contains(&s) => s,
        413 => 413,
        429 => 429,
        _ => 502,
    }
}

/// The text of the first `<name>` element of an XML error body (AWS query
/// protocol errors, and what moto answers).
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text.get(start..)?.find(&format!("</{name}>"))?;
    text.get(start..end)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The Invoke API's error: the client gets our code, AWS's status and
/// error *type*; AWS's message goes only to the log (it may quote the
/// signed request, session token included: see [`faas_core::redact`]).
pub fn invoke_api_error(r: &CalloutResponse, preserve: bool) -> ErrorReply {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(String::from);
    let error_type = headers::get(&r.headers, "x-amzn-errortype")
        .map(|t| t.split(':').next().unwrap_or(t).to_string())
        .or_else(|| text("__type"))
        .or_else(|| xml_element(&r.body, "Code"))
        .and_then(|t| redact::error_type(&t))
        .unwrap_or_else(|| "Unknown".into());
    let aws_message = text("Message")
        .or_else(|| text("message"))
        .or_else(|| xml_element(&r.body, "Message"));
    let failure = match r.status {
        429 => Failure::InvokeThrottled,
        413 => Failure::InvokeRequestTooLarge,
        _ => Failure::InvokeApiFailed,
    };
    let mut e = ErrorReply::new(
        failure,
        format!("the Lambda Invoke API refused the call: {error_type}"),
    )
    .with_status(api_error_status(r.status, preserve))
    .with("aws_status", r.status)
    .with("aws_error_type", error_type);
    if let Some(m) = aws_message {
        e = e.with_upstream_text(m);
    }
    e
}

/// `function_uri` mode with SigV4: AWS's front door (a Function URL, API
/// Gateway) refusing the signed request answers with `x-amzn-errortype`
/// and a message that may quote the canonical request, session token
/// included (API Gateway's InvalidSignatureException does). That answer is
/// replaced by our error with the type; the message goes to the log only.
/// A function's own 4xx (no `x-amzn-errortype`) passes through.
pub fn signed_request_refused(r: &CalloutResponse) -> Option<ErrorReply> {
    if !matches!(r.status, 400 | 401 | 403) {
        return None;
    }
    let raw_type = headers::get(&r.headers, "x-amzn-errortype")?;
    let error_type = redact::error_type(raw_type.split(':').next().unwrap_or(raw_type))
        .unwrap_or_else(|| "Unknown".into());
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str).map(String::from));
    let mut e = ErrorReply::new(
        Failure::AwsSigningRefused,
        format!("AWS refused the signed request: {error_type}"),
    )
    .with("aws_status", r.status)
    .with("aws_error_type", error_type);
    if let Some(m) = message {
        e = e.with_upstream_text(m);
    }
    Some(e)
}

/// The function ran and failed: the client gets our code and the
/// function's `errorType`; its `errorMessage` (which may quote anything
/// the function saw) goes only to the log.
fn function_error(r: &CalloutResponse, kind: &str, status: Option<u16>) -> ErrorReply {
    let payload: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let kind = redact::error_type(kind).unwrap_or_else(|| "Unhandled".into());
    let mut e = ErrorReply::new(
        Failure::FunctionError,
        format!("the function failed ({kind})"),
    );
    if let Some(status) = status {
        e = e.with_status(status);
    }
    if let Some(t) = payload
        .get("errorType")
        .and_then(Value::as_str)
        .and_then(redact::error_type)
    {
        e = e.with("error_type", t);
    }
    if let Some(m) = payload.get("errorMessage").and_then(Value::as_str) {
        e = e.with_upstream_text(m);
    }
    e
}

fn invalid(message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(Failure::InvalidFunctionResponse, message)
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn checked_header(field: &str, name: &str, value: &Value) -> Result<(String, String), ErrorReply> {
    // The function's header names are its text: errors name the field only.
    let text =
        header_text(value).ok_or_else(|| invalid(format!("a value in {field} is not a string")))?;
    if !is_token(name) {
        return Err(invalid(format!("{field} has an invalid header name")));
    }
    if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(invalid(format!(
            "a value in {field} contains a line break or NUL"
        )));
    }
    Ok((name.to_ascii_lowercase(), text))
}

fn status_of(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    // A final status: 1xx are interim (101 would switch protocols).
    u16::try_from(n).ok().filter(|s| (200..=599).contains(s))
}

/// Maps a function's result: an API Gateway proxy result (`Proxy`, v1 or
/// v2), or Envoy's native `aws_lambda` response (`Envoy`), as Envoy 1.40
/// reads it: `status_code` or `statusCode` (0 or none keeps 200), string
/// `headers` (pseudo-headers skipped), `cookies`, `body` and
/// `is_base64_encoded` or `isBase64Encoded`, anything else (API Gateway's
/// `multiValueHeaders` too) ignored, `content-type` `application/json`
/// unless set. Where native answers a malformed result with an empty 500,
/// a 200 without the bad base64 body, or an invalid status line, this is
/// the 502 `invalid_function_response`.
pub fn proxy_result(payload: &[u8], format: ResultFormat) -> Result<LocalReply, ErrorReply> {
    let (v2, envoy) = match format {
        ResultFormat::Proxy { v2 } => (v2, false),
        _ => (false, true),
    };
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| invalid(format!("the function's result is not valid JSON: {e}")))?;
    let object: &Map<String, Value> = match &value {
        Value::Object(o) if o.contains_key("statusCode") || !v2 => o,
        _ if v2 => {
            // Payload 2.0: a result without statusCode is the body itself,
            // sent exactly as the function produced it.
            return Ok(LocalReply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: payload.to_vec(),
            });
        }
        _ => {
            return Err(invalid(
                "the function's result must be a JSON object with statusCode",
            ))
        }
    };
    let field = |camel: &str, snake: &str| {
        object
            .get(camel)
            .or_else(|| object.get(snake).filter(|_| envoy))
            .filter(|v| !v.is_null())
    };
    let status = match field("statusCode", "status_code") {
        None if envoy => 200,
        Some(v) if envoy && (v.as_u64() == Some(0) || v.as_str() == Some("0")) => 200,
        None => return Err(invalid("statusCode is missing")),
        Some(v) => status_of(v).ok_or_else(|| {
            invalid("statusCode must be a number or numeric string from 200 to 599")
        })?,
    };
    let mut headers: HeaderList = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, value) in h {
                if envoy && name.starts_with(':') {
                    continue; // native skips them
                }
                if envoy && !value.is_string() {
                    return Err(invalid("a value in headers is not a string"));
                }
                headers.push(checked_header("headers", name, value)?);
            }
        }
        Some(_) => return Err(invalid("headers must be an object")),
    }
    match object.get("multiValueHeaders").filter(|_| !envoy) {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, values) in h {
                let Value::Array(values) = values else {
                    return Err(invalid("a value in multiValueHeaders is not an array"));
                };
                let lower = name.to_ascii_lowercase();
                headers.retain(|(n, _)| *n != lower); // multiValueHeaders win, as in API Gateway
                for v in values {
                    headers.push(checked_header("multiValueHeaders", name, v)?);
                }
            }
        }
        Some(_) => return Err(invalid("multiValueHeaders must be an object")),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for c in cookies {
                headers.push(checked_header("cookies", "set-cookie", c)?);
            }
        }
        Some(_) => return Err(invalid("cookies must be an array of strings")),
    }
    let is_base64 = match field("isBase64Encoded", "is_base64_encoded") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) if envoy => false,
        Some(_) => return Err(invalid("isBase64Encoded must be a boolean")),
    };
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if is_base64 => base64::decode(s)
            .ok_or_else(|| invalid("body is not valid base64 although isBase64Encoded is true"))?,
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(_) => return Err(invalid("body must be a string")),
    };
    // content-length stays: the shell's framing drops it, or restores it
    // for a HEAD (see faas_core::response::frame).
    let mut headers = headers::end_to_end(&headers, |_| false);
    if headers::get(&headers, "content-type").is_none() && (envoy || !body.is_empty()) {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(LocalReply {
        status,
        headers,
        body,
    })
}

/// The Invoke API's own response headers a client may see.
fn invoke_headers(r: &CalloutResponse, settings: &ResponseSettings) -> HeaderList {
    r.headers
        .iter()
        .filter(|(n, _)| {
            (settings.forward_invoke_headers
                && (n.starts_with("x-amzn-") || n.starts_with("x-amz-")))
                || (settings.log_tail && n == "x-amz-log-result")
        })
        .cloned()
        .collect()
}

pub fn map(r: CalloutResponse, settings: &ResponseSettings) -> Result<LocalReply, ErrorReply> {
    let function_error_kind = headers::get(&r.headers, "x-amz-function-error").map(String::from);
    if function_error_kind.is_none() && !matches!(r.status, 200 | 202 | 204) {
        return Err(invoke_api_error(&r, settings.preserve_api_status));
    }
    let extra = invoke_headers(&r, settings);
    if let Some(kind) = function_error_kind {
        return Err(function_error(&r, &kind, settings.unhandled_status));
    }
    let mut reply = match (settings.invocation_type, settings.result) {
        (InvocationType::Event, _) => LocalReply {
            status: 202,
            headers: Vec::new(),
            body: Vec::new(),
        },
        (InvocationType::DryRun, _) => LocalReply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        },
        (InvocationType::RequestResponse, ResultFormat::Raw) => {
            let content_type =
                headers::get(&r.headers, "content-type").unwrap_or("application/json");
            LocalReply {
                status: 200,
                headers: vec![("content-type".into(), content_type.to_string())],
                body: r.body,
            }
        }
        (InvocationType::RequestResponse, format) => proxy_result(&r.body, format)?,
    };
    reply.headers.extend(extra);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke(status: u16, hs: &[(&str, &str)], body: &str) -> CalloutResponse {
        CalloutResponse {
            status,
            headers: faas_core::headers::owned(hs),
            body: body.as_bytes().to_vec(),
        }
    }

    fn settings(result: ResultFormat) -> ResponseSettings {
        ResponseSettings {
            invocation_type: InvocationType::RequestResponse,
            result,
            unhandled_status: None,
            preserve_api_status: false,
            forward_invoke_headers: false,
            log_tail: false,
        }
    }

    const AWS_HEADERS: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("x-amzn-requestid", "req-1"),
        ("x-amz-executed-version", "$LATEST"),
        ("x-amzn-trace-id", "Root=1"),
    ];

    fn header<'a>(r: &'a LocalReply, name: &str) -> Vec<&'a str> {
        r.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn raw_results_pass_byte_for_byte_without_aws_headers() {
        let payload = r#"{"z":1,"a":12345678901234567890123,"s":"\/"}"#;
        let r = map(
            invoke(200, AWS_HEADERS, payload),
            &settings(ResultFormat::Raw),
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, payload.as_bytes()));
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        let mut s = settings(ResultFormat::Raw);
        s.forward_invoke_headers = true;
        let r = map(invoke(200, AWS_HEADERS, payload), &s).unwrap();
        assert_eq!(header(&r, "x-amzn-requestid"), vec!["req-1"]);
        assert_eq!(header(&r, "x-amz-executed-version"), vec!["$LATEST"]);
    }

    #[test]
    fn log_tail_reaches_the_client_only_when_asked_for() {
        let hs = &[
            ("content-type", "application/json"),
            ("x-amz-log-result", "U1RBUlQ="),
        ];
        let r = map(invoke(200, hs, "{}"), &settings(ResultFormat::Raw)).unwrap();
        assert!(header(&r, "x-amz-log-result").is_empty());
        let mut s = settings(ResultFormat::Raw);
        s.log_tail = true;
        assert_eq!(
            header(&map(invoke(200, hs, "{}"), &s).unwrap(), "x-amz-log-result"),
            vec!["U1RBUlQ="]
        );
    }

    #[test]
    fn event_and_dry_run_statuses() {
        let mut s = settings(ResultFormat::Proxy { v2: true });
        s.invocation_type = InvocationType::Event;
        let r = map(invoke(202, AWS_HEADERS, ""), &s).unwrap();
        assert_eq!((r.status, r.body.len()), (202, 0));
        s.invocation_type = InvocationType::DryRun;
        assert_eq!(map(invoke(204, AWS_HEADERS, ""), &s).unwrap().status, 204);
    }

    #[test]
    fn valid_proxy_results() {
        let v1 = ResultFormat::Proxy { v2: false };
        let v2 = ResultFormat::Proxy { v2: true };
        // (format, payload, status, headers, body)
        type Case<'a> = (ResultFormat, &'a str, u16, Vec<(&'a str, &'a str)>, Vec<u8>);
        let cases: Vec<Case> = vec![
            (
                v1,
                r#"{"statusCode":201,"headers":{"X-A":"1","content-type":"text/plain"},"body":"made"}"#,
                201,
                vec![("x-a", "1"), ("content-type", "text/plain")],
                b"made".to_vec(),
            ),
            (
                v1,
                r#"{"statusCode":"404","body":"nope"}"#,
                404,
                vec![("content-type", "application/json")],
                b"nope".to_vec(),
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"set-cookie":"x=0"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]}}"#,
                200,
                vec![("set-cookie", "a=1"), ("set-cookie", "b=2")],
                Vec::new(),
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"content-type":"image/png","x-n":5,"x-b":true},"body":"iVBO/w==","isBase64Encoded":true}"#,
                200,
                vec![("content-type", "image/png"), ("x-b", "true"), ("x-n", "5")],
                vec![0x89, 0x50, 0x4e, 0xff],
            ),
            (
                v1,
                r#"{"statusCode":204,"headers":null,"body":null,"isBase64Encoded":null}"#,
                204,
                vec![],
                Vec::new(),
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"connection":"close","content-length":"99","x-k":"v"},"body":"ok"}"#,
                200,
                // content-length is left to the shell's framing.
                vec![
                    ("content-length", "99"),
                    ("x-k", "v"),
                    ("content-type", "application/json"),
                ],
                b"ok".to_vec(),
            ),
            (
                v2,
                r#"{"statusCode":200,"cookies":["a=1; Secure","b=2"],"body":"c"}"#,
                200,
                vec![
                    ("set-cookie", "a=1; Secure"),
                    ("set-cookie", "b=2"),
                    ("content-type", "application/json"),
                ],
                b"c".to_vec(),
            ),
            (
                v2,
                r#"{"b": 1, "a": 12345678901234567890123, "s": "\/"}"#,
                200,
                vec![("content-type", "application/json")],
                br#"{"b": 1, "a": 12345678901234567890123, "s": "\/"}"#.to_vec(),
            ),
            (
                v2,
                r#""just a string""#,
                200,
                vec![("content-type", "application/json")],
                br#""just a string""#.to_vec(),
            ),
            (
                v2,
                r#"[1,2]"#,
                200,
                vec![("content-type", "application/json")],
                b"[1,2]".to_vec(),
            ),
        ];
        for (format, payload, status, hs, body) in cases {
            let r = map(invoke(200, AWS_HEADERS, payload), &settings(format))
                .unwrap_or_else(|e| panic!("{payload}: {e:?}"));
            let got: Vec<(&str, &str)> = r
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!((r.status, got, r.body), (status, hs, body), "{payload}");
        }
    }

    #[test]
    fn invalid_proxy_results_are_502_with_the_reason() {
        let v1 = ResultFormat::Proxy { v2: false };
        let v2 = ResultFormat::Proxy { v2: true };
        let cases = [
            (v1, "not json", "the function's result is not valid JSON"),
            (
                v2,
                "{\"statusCode\": 200, ",
                "the function's result is not valid JSON",
            ),
            (v1, "", "the function's result is not valid JSON"),
            (v1, r#"{"body":"x"}"#, "statusCode is missing"),
            (v1, r#"[1]"#, "must be a JSON object with statusCode"),
            (
                v1,
                r#"{"statusCode":99}"#,
                "statusCode must be a number or numeric string from 200 to 599",
            ),
            // 1xx are interim answers, never a final one (101 would switch
            // the client's protocol; HTTP/2 has no such response).
            (v1, r#"{"statusCode":100}"#, "from 200 to 599"),
            (v2, r#"{"statusCode":"101"}"#, "from 200 to 599"),
            (v1, r#"{"statusCode":199}"#, "from 200 to 599"),
            (v1, r#"{"statusCode":"abc"}"#, "statusCode must be"),
            (v2, r#"{"statusCode":700}"#, "statusCode must be"),
            (v1, r#"{"statusCode":true}"#, "statusCode must be"),
            (
                v1,
                r#"{"statusCode":200,"headers":[]}"#,
                "headers must be an object",
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"x":{"y":1}}}"#,
                "a value in headers is not a string",
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"bad name":"v"}}"#,
                "invalid header name",
            ),
            (
                v1,
                r#"{"statusCode":200,"headers":{"x":"a\r\nInjected: 1"}}"#,
                "contains a line break",
            ),
            (
                v1,
                r#"{"statusCode":200,"multiValueHeaders":{"x":"v"}}"#,
                "a value in multiValueHeaders is not an array",
            ),
            (
                v2,
                r#"{"statusCode":200,"cookies":"a=1"}"#,
                "cookies must be an array of strings",
            ),
            (
                v1,
                r#"{"statusCode":200,"body":{"a":1}}"#,
                "body must be a string",
            ),
            (
                v1,
                r#"{"statusCode":200,"isBase64Encoded":"yes"}"#,
                "isBase64Encoded must be a boolean",
            ),
            (
                v1,
                r#"{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}"#,
                "body is not valid base64",
            ),
        ];
        for (format, payload, reason) in cases {
            let e = map(invoke(200, AWS_HEADERS, payload), &settings(format)).unwrap_err();
            assert_eq!(
                (e.status, e.code()),
                (502, "invalid_function_response"),
                "{payload}"
            );
            assert!(e.message.contains(reason), "{payload}: {}", e.message);
        }
    }

    #[test]
    fn aws_refusals_of_signed_requests_are_replaced_and_function_4xx_kept() {
        let quoted = r#"{"message":"The request signature we calculated does not match.\n\nThe Canonical String for this request should have been\n'GET\n/\n\nx-amz-security-token:TOKEN'"}"#;
        let r = invoke(
            403,
            &[("x-amzn-errortype", "InvalidSignatureException")],
            quoted,
        );
        let e = signed_request_refused(&r).unwrap();
        assert_eq!((e.status, e.code()), (502, "aws_signing_refused"));
        let rendered = String::from_utf8(e.render("r", None).body).unwrap();
        assert!(rendered.contains("InvalidSignatureException"), "{rendered}");
        assert!(
            !rendered.contains("TOKEN") && !rendered.contains("Canonical"),
            "{rendered}"
        );
        assert!(e.upstream_text.unwrap().contains("TOKEN"));
        // The function's own 403 and AWS's other answers pass through.
        assert!(signed_request_refused(&invoke(403, &[], "{}")).is_none());
        let throttled = invoke(
            429,
            &[("x-amzn-errortype", "TooManyRequestsException")],
            "{}",
        );
        assert!(signed_request_refused(&throttled).is_none());
    }

    #[test]
    fn function_errors_map_to_unhandled_status_or_502_without_the_stack() {
        let hs = &[
            ("content-type", "application/json"),
            ("x-amz-function-error", "Unhandled"),
        ];
        let payload =
            r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":["secret/path.py:1"]}"#;
        let e = map(invoke(200, hs, payload), &settings(ResultFormat::Raw)).unwrap_err();
        assert_eq!((e.status, e.code()), (502, "function_error"));
        let rendered = String::from_utf8(e.render("r", None).body).unwrap();
        // The type reaches the client; the message (the function's text)
        // only the log, and the stack nothing.
        assert!(
            rendered.contains("ValueError")
                && !rendered.contains("boom")
                && !rendered.contains("secret/path"),
            "{rendered}"
        );
        assert_eq!(e.upstream_text.as_deref(), Some("boom"));
        let mut s = settings(ResultFormat::Proxy { v2: true });
        s.unhandled_status = Some(500);
        assert_eq!(map(invoke(200, hs, payload), &s).unwrap_err().status, 500);
    }

    #[test]
    fn invoke_api_errors_have_a_documented_status_mapping() {
        let cases = [
            (403, "AccessDeniedException", 502),
            (404, "ResourceNotFoundException", 502),
            (400, "InvalidRequestContentException", 502),
            (413, "RequestTooLargeException", 413),
            (429, "TooManyRequestsException", 429),
            (500, "ServiceException", 502),
            (502, "EC2UnexpectedException", 502),
        ];
        let xml = "<ErrorResponse><Errors><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature does not match</Message></Error></Errors></ErrorResponse>";
        let e = map(
            invoke(403, &[("content-type", "text/xml")], xml),
            &settings(ResultFormat::Raw),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "the Lambda Invoke API refused the call: SignatureDoesNotMatch"
        );
        assert_eq!(
            e.upstream_text.as_deref(),
            Some("The request signature does not match")
        );
        let rendered = String::from_utf8(e.render("r", None).body).unwrap();
        assert!(!rendered.contains("does not match"), "{rendered}");
        for (aws, kind, expected) in cases {
            let body = format!(r#"{{"Type":"User","Message":"msg for {kind}"}}"#);
            let hs = [
                ("x-amzn-errortype", kind),
                ("content-type", "application/json"),
            ];
            let e = map(invoke(aws, &hs, &body), &settings(ResultFormat::Raw)).unwrap_err();
            assert_eq!(
                (e.status, e.code()),
                (expected, "lambda_invoke_failed"),
                "{kind}"
            );
            assert!(
                e.message.contains(kind) && !e.message.contains("msg for"),
                "{}",
                e.message
            );
            assert!(e.details.contains(&("aws_status", Value::from(aws))));
            let mut s = settings(ResultFormat::Raw);
            s.preserve_api_status = true;
            assert_eq!(map(invoke(aws, &hs, &body), &s).unwrap_err().status, aws);
        }
    }
}
