//! Lambda event payloads built from the client's request (pure).
//!
//! - [`apigw_v1`]: API Gateway REST proxy event (payload format 1.0).
//! - [`apigw_v2`]: API Gateway HTTP API event (payload format 2.0).
//! - [`kong_forward`]: Kong's `forward_request_*` object.
//!
//! Bodies: sent as text when the content type is textual (any `charset`
//! parameter is ignored, unlike Envoy's native filter) and the bytes are
//! valid UTF-8; otherwise base64-encoded with `isBase64Encoded: true`.

use crate::clock::clf_time;
use faas_core::path::{form_decode, split_path_query};
use faas_core::request::peer_ip;
use faas_core::{base64, ClientRequest};
use serde_json::{json, Map, Value};

/// What an event needs besides the request itself.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub request_id: &'a str,
    pub now_ms: u64,
    /// The part of the path after this prefix is `pathParameters.proxy`.
    pub strip_prefix: Option<&'a str>,
    /// Kong's `base64_encode_body`: `false` sends textual-looking bodies
    /// raw even with a binary content type (binary bytes are always encoded).
    pub base64_encode_body: bool,
}

/// Is this media type text (sent as a JSON string rather than base64)?
pub fn is_textual(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = media.split_once('/') else {
        return false;
    };
    kind == "text"
        || sub.ends_with("+json")
        || sub.ends_with("+xml")
        || matches!(
            (kind, sub),
            (
                "application",
                "json"
                    | "xml"
                    | "javascript"
                    | "x-www-form-urlencoded"
                    | "graphql"
                    | "yaml"
                    | "x-yaml"
            )
        )
}

/// `(body, isBase64Encoded)`; `None` for an empty body.
pub fn encode_body(
    content_type: Option<&str>,
    body: &[u8],
    base64_encode_body: bool,
) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let textual = content_type.is_some_and(is_textual) || !base64_encode_body;
    match std::str::from_utf8(body) {
        Ok(text) if textual => (Some(text.to_string()), false),
        _ => (Some(base64::encode(body)), true),
    }
}

/// Decoded query pairs in order (a valueless key has `None`).
pub fn query_pairs(raw: &str) -> Vec<(String, Option<String>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (form_decode(k), Some(form_decode(v))),
            None => (form_decode(p), None),
        })
        .collect()
}

/// Request headers for events: pseudo headers dropped, `:authority` as `host`.
fn event_headers(request: &ClientRequest) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(request.headers.len());
    if !request.authority().is_empty() && request.header("host").is_none() {
        out.push(("host".into(), request.authority().to_string()));
    }
    out.extend(
        request
            .headers
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .cloned(),
    );
    out
}

fn protocol(request: &ClientRequest) -> String {
    match request.protocol.as_deref() {
        Some("HTTP/2") => "HTTP/2.0".into(),
        Some("HTTP/3") => "HTTP/3.0".into(),
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "HTTP/1.1".into(),
    }
}

fn domain(request: &ClientRequest) -> (String, String) {
    let host = request.authority();
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']'))
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    let prefix = name.split('.').next().unwrap_or("").to_string();
    (name, prefix)
}

fn source_ip(request: &ClientRequest) -> String {
    request
        .peer_address
        .as_deref()
        .map(peer_ip)
        .unwrap_or("")
        .to_string()
}

fn proxy_parameter(path: &str, strip_prefix: Option<&str>) -> Value {
    match strip_prefix.and_then(|p| faas_core::path::forwarded_remainder(path, p)) {
        Some(rest) if !rest.trim_start_matches('/').is_empty() => {
            json!({"proxy": rest.trim_start_matches('/')})
        }
        _ => Value::Null,
    }
}

/// Appends `value` to the array under `key` (API Gateway's multi-value maps).
fn push_multi(map: &mut Map<String, Value>, key: String, value: String) {
    if let Value::Array(values) = map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        values.push(Value::String(value));
    }
}

/// API Gateway REST proxy event, payload format 1.0.
pub fn apigw_v1(request: &ClientRequest, ctx: &EventContext<'_>) -> Value {
    let (path, raw_query) = split_path_query(request.target());
    let headers = event_headers(request);
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (n, v) in &headers {
        single.insert(n.clone(), Value::String(v.clone())); // last value wins, as in API Gateway
        push_multi(&mut multi, n.clone(), v.clone());
    }
    let pairs = query_pairs(raw_query);
    let (query, multi_query) = if pairs.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let mut q = Map::new();
        let mut mq: Map<String, Value> = Map::new();
        for (k, v) in pairs {
            let v = v.unwrap_or_default();
            q.insert(k.clone(), Value::String(v.clone()));
            push_multi(&mut mq, k, v);
        }
        (Value::Object(q), Value::Object(mq))
    };
    let (body, is_base64) = encode_body(
        request.header("content-type"),
        &request.body,
        ctx.base64_encode_body,
    );
    let (domain_name, domain_prefix) = domain(request);
    let path_parameters = proxy_parameter(path, ctx.strip_prefix);
    let resource = if path_parameters.is_null() {
        path.to_string()
    } else {
        format!(
            "{}/{{proxy+}}",
            ctx.strip_prefix.unwrap_or("").trim_end_matches('/')
        )
    };
    json!({
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": request.method(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": null,
        "requestContext": {
            "accountId": "envoy",
            "apiId": "envoy",
            "resourcePath": resource,
            "httpMethod": request.method(),
            "path": path,
            "protocol": protocol(request),
            "stage": "$default",
            "requestId": ctx.request_id,
            "extendedRequestId": ctx.request_id,
            "requestTime": clf_time(ctx.now_ms / 1000),
            "requestTimeEpoch": ctx.now_ms,
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "identity": {
                "sourceIp": source_ip(request),
                "userAgent": request.header("user-agent"),
            },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// API Gateway HTTP API event, payload format 2.0.
pub fn apigw_v2(request: &ClientRequest, ctx: &EventContext<'_>) -> Value {
    let (path, raw_query) = split_path_query(request.target());
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (n, v) in event_headers(request) {
        if n == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_string())),
            );
            continue;
        }
        let joined = match headers.get(&n).and_then(Value::as_str) {
            Some(existing) => format!("{existing},{v}"),
            None => v,
        };
        headers.insert(n, Value::String(joined));
    }
    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!("$default"));
    event.insert("rawPath".into(), json!(path));
    event.insert("rawQueryString".into(), json!(raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), Value::Array(cookies));
    }
    event.insert("headers".into(), Value::Object(headers));
    let pairs = query_pairs(raw_query);
    if !pairs.is_empty() {
        let mut q: Map<String, Value> = Map::new();
        for (k, v) in pairs {
            let v = v.unwrap_or_default();
            let joined = match q.get(&k).and_then(Value::as_str) {
                Some(existing) => format!("{existing},{v}"),
                None => v,
            };
            q.insert(k, Value::String(joined));
        }
        event.insert("queryStringParameters".into(), Value::Object(q));
    }
    let path_parameters = proxy_parameter(path, ctx.strip_prefix);
    if !path_parameters.is_null() {
        event.insert("pathParameters".into(), path_parameters);
    }
    let (domain_name, domain_prefix) = domain(request);
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": "envoy",
            "apiId": "envoy",
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method(),
                "path": path,
                "protocol": protocol(request),
                "sourceIp": source_ip(request),
                "userAgent": request.header("user-agent").unwrap_or(""),
            },
            "requestId": ctx.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(ctx.now_ms / 1000),
            "timeEpoch": ctx.now_ms,
        }),
    );
    let (body, is_base64) = encode_body(
        request.header("content-type"),
        &request.body,
        ctx.base64_encode_body,
    );
    if let Some(body) = body {
        event.insert("body".into(), Value::String(body));
    }
    event.insert("isBase64Encoded".into(), Value::Bool(is_base64));
    Value::Object(event)
}

/// Which parts of the request Kong's `forward_request_*` object carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forward {
    pub method: bool,
    pub uri: bool,
    pub headers: bool,
    pub body: bool,
}

impl Forward {
    pub fn any(self) -> bool {
        self.method || self.uri || self.headers || self.body
    }
}

/// Kong-style args: a valueless key is `true`, repeats become arrays.
fn kong_args(pairs: Vec<(String, Option<String>)>) -> Map<String, Value> {
    let mut args: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        let v = v.map_or(Value::Bool(true), Value::String);
        match args.get_mut(&k) {
            Some(Value::Array(a)) => a.push(v),
            Some(existing) => *existing = Value::Array(vec![existing.clone(), v]),
            None => {
                args.insert(k, v);
            }
        }
    }
    args
}

/// Kong's `forward_request_*` payload.
pub fn kong_forward(request: &ClientRequest, forward: Forward, base64_encode_body: bool) -> Value {
    let mut out = Map::new();
    if forward.method {
        out.insert("request_method".into(), json!(request.method()));
    }
    if forward.uri {
        let (_, raw_query) = split_path_query(request.target());
        out.insert("request_uri".into(), json!(request.target()));
        out.insert(
            "request_uri_args".into(),
            Value::Object(kong_args(query_pairs(raw_query))),
        );
    }
    if forward.headers {
        let pairs = event_headers(request)
            .into_iter()
            .map(|(n, v)| (n, Some(v)))
            .collect();
        out.insert("request_headers".into(), Value::Object(kong_args(pairs)));
    }
    if forward.body {
        let content_type = request.header("content-type").unwrap_or("");
        let (body, is_base64) = encode_body(Some(content_type), &request.body, base64_encode_body);
        out.insert("request_body".into(), json!(body.unwrap_or_default()));
        if is_base64 {
            out.insert("request_body_base64".into(), Value::Bool(true));
        }
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let args = match media.as_str() {
            "application/x-www-form-urlencoded" => Value::Object(kong_args(query_pairs(
                &String::from_utf8_lossy(&request.body),
            ))),
            "application/json" => {
                serde_json::from_slice(&request.body).unwrap_or(Value::Object(Map::new()))
            }
            _ => Value::Object(Map::new()),
        };
        out.insert("request_body_args".into(), args);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)], body: &[u8], protocol: &str) -> ClientRequest {
        ClientRequest {
            headers: faas_core::headers::owned(pairs),
            peer_address: Some("203.0.113.9:51234".into()),
            protocol: Some(protocol.into()),
            body: body.to_vec(),
        }
    }

    fn ctx() -> EventContext<'static> {
        EventContext {
            request_id: "rid-1",
            now_ms: 1_440_938_160_123,
            strip_prefix: Some("/api"),
            base64_encode_body: true,
        }
    }

    const HEADERS: &[(&str, &str)] = &[
        (":method", "POST"),
        (":path", "/api/orders/42?a=1&a=2&flag&sp=x+y&enc=%2F"),
        (":authority", "gw.example.com:8443"),
        (":scheme", "https"),
        ("user-agent", "curl/8"),
        ("x-multi", "one"),
        ("cookie", "a=1; b=2"),
        ("x-multi", "two"),
        ("cookie", "c=3"),
        ("content-type", "application/json; charset=utf-8"),
    ];

    #[test]
    fn v1_golden_event() {
        let event = apigw_v1(&request(HEADERS, br#"{"n":1}"#, "HTTP/1.1"), &ctx());
        let expected = json!({
            "version": "1.0",
            "resource": "/api/{proxy+}",
            "path": "/api/orders/42",
            "httpMethod": "POST",
            "headers": {"host": "gw.example.com:8443", "user-agent": "curl/8", "x-multi": "two", "cookie": "c=3", "content-type": "application/json; charset=utf-8"},
            "multiValueHeaders": {"host": ["gw.example.com:8443"], "user-agent": ["curl/8"], "x-multi": ["one", "two"], "cookie": ["a=1; b=2", "c=3"], "content-type": ["application/json; charset=utf-8"]},
            "queryStringParameters": {"a": "2", "flag": "", "sp": "x y", "enc": "/"},
            "multiValueQueryStringParameters": {"a": ["1", "2"], "flag": [""], "sp": ["x y"], "enc": ["/"]},
            "pathParameters": {"proxy": "orders/42"},
            "stageVariables": null,
            "requestContext": {
                "accountId": "envoy", "apiId": "envoy", "resourcePath": "/api/{proxy+}", "httpMethod": "POST",
                "path": "/api/orders/42", "protocol": "HTTP/1.1", "stage": "$default",
                "requestId": "rid-1", "extendedRequestId": "rid-1",
                "requestTime": "30/Aug/2015:12:36:00 +0000", "requestTimeEpoch": 1_440_938_160_123u64,
                "domainName": "gw.example.com", "domainPrefix": "gw",
                "identity": {"sourceIp": "203.0.113.9", "userAgent": "curl/8"}
            },
            "body": "{\"n\":1}",
            "isBase64Encoded": false
        });
        assert_eq!(event, expected);
    }

    #[test]
    fn v2_golden_event_over_http2() {
        let event = apigw_v2(&request(HEADERS, br#"{"n":1}"#, "HTTP/2"), &ctx());
        let expected = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/api/orders/42",
            "rawQueryString": "a=1&a=2&flag&sp=x+y&enc=%2F",
            "cookies": ["a=1", "b=2", "c=3"],
            "headers": {"host": "gw.example.com:8443", "user-agent": "curl/8", "x-multi": "one,two", "content-type": "application/json; charset=utf-8"},
            "queryStringParameters": {"a": "1,2", "flag": "", "sp": "x y", "enc": "/"},
            "pathParameters": {"proxy": "orders/42"},
            "requestContext": {
                "accountId": "envoy", "apiId": "envoy", "domainName": "gw.example.com", "domainPrefix": "gw",
                "http": {"method": "POST", "path": "/api/orders/42", "protocol": "HTTP/2.0", "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
                "requestId": "rid-1", "routeKey": "$default", "stage": "$default",
                "time": "30/Aug/2015:12:36:00 +0000", "timeEpoch": 1_440_938_160_123u64
            },
            "body": "{\"n\":1}",
            "isBase64Encoded": false
        });
        assert_eq!(event, expected);
    }

    #[test]
    fn empty_and_binary_bodies() {
        let get = request(
            &[(":method", "GET"), (":path", "/x"), (":authority", "h")],
            b"",
            "HTTP/1.1",
        );
        let v1 = apigw_v1(&get, &ctx());
        assert_eq!(
            (v1["body"].clone(), v1["isBase64Encoded"].clone()),
            (Value::Null, json!(false))
        );
        assert_eq!(
            (
                v1["queryStringParameters"].clone(),
                v1["pathParameters"].clone()
            ),
            (Value::Null, Value::Null)
        );
        let v2 = apigw_v2(&get, &ctx());
        assert!(
            v2.get("body").is_none()
                && v2.get("cookies").is_none()
                && v2.get("queryStringParameters").is_none()
        );
        assert_eq!(v2["rawQueryString"], "");

        let binary = request(
            &[
                (":method", "POST"),
                (":path", "/x"),
                ("content-type", "image/png"),
            ],
            &[0x89, b'P', 0xff, 0],
            "HTTP/1.1",
        );
        for event in [apigw_v1(&binary, &ctx()), apigw_v2(&binary, &ctx())] {
            assert_eq!(event["body"], base64::encode(&[0x89, b'P', 0xff, 0]));
            assert_eq!(event["isBase64Encoded"], true);
        }
        // Textual content type but invalid UTF-8: base64 all the same.
        let bad_text = request(
            &[
                (":method", "POST"),
                (":path", "/x"),
                ("content-type", "text/plain"),
            ],
            &[0xff],
            "HTTP/1.1",
        );
        assert_eq!(apigw_v2(&bad_text, &ctx())["isBase64Encoded"], true);
        // No content type: binary unless base64_encode_body is off.
        let untyped = request(
            &[(":method", "POST"), (":path", "/x")],
            b"plain",
            "HTTP/1.1",
        );
        assert_eq!(apigw_v2(&untyped, &ctx())["isBase64Encoded"], true);
        let raw_ctx = EventContext {
            base64_encode_body: false,
            ..ctx()
        };
        assert_eq!(apigw_v2(&untyped, &raw_ctx)["body"], "plain");
    }

    #[test]
    fn textual_content_types() {
        for t in [
            "text/plain",
            "text/html; charset=ISO-8859-1",
            "application/json; charset=utf-8",
            "application/vnd.api+json",
            "application/xml",
            "application/soap+xml",
            "application/x-www-form-urlencoded",
            "APPLICATION/JSON",
        ] {
            assert!(is_textual(t), "{t}");
        }
        for t in [
            "application/octet-stream",
            "image/png",
            "multipart/form-data; boundary=x",
            "application/pdf",
            "",
            "json",
        ] {
            assert!(!is_textual(t), "{t}");
        }
    }

    #[test]
    fn kong_forward_request_object() {
        let req = request(
            &[
                (":method", "POST"),
                (":path", "/p?k=1&k=2&flag"),
                (":authority", "h"),
                ("x-a", "1"),
                ("x-a", "2"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            b"f=1&g=x+y",
            "HTTP/1.1",
        );
        let all = Forward {
            method: true,
            uri: true,
            headers: true,
            body: true,
        };
        assert_eq!(
            kong_forward(&req, all, true),
            json!({
                "request_method": "POST",
                "request_uri": "/p?k=1&k=2&flag",
                "request_uri_args": {"k": ["1", "2"], "flag": true},
                "request_headers": {"host": "h", "x-a": ["1", "2"], "content-type": "application/x-www-form-urlencoded"},
                "request_body": "f=1&g=x+y",
                "request_body_args": {"f": "1", "g": "x y"}
            })
        );
        let only_method = Forward {
            method: true,
            ..Forward::default()
        };
        assert_eq!(
            kong_forward(&req, only_method, true),
            json!({"request_method": "POST"})
        );
        let bin = request(
            &[
                (":method", "POST"),
                (":path", "/"),
                ("content-type", "application/octet-stream"),
            ],
            &[1, 2, 255],
            "HTTP/1.1",
        );
        let v = kong_forward(
            &bin,
            Forward {
                body: true,
                ..Forward::default()
            },
            true,
        );
        assert_eq!(
            (v["request_body"].clone(), v["request_body_base64"].clone()),
            (json!(base64::encode(&[1, 2, 255])), json!(true))
        );
    }
}
