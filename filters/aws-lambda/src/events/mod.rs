//! Lambda event payloads built from the client's request (pure).
//!
//! - [`apigw_v1`]: API Gateway REST proxy event (payload format 1.0).
//! - [`apigw_v2`]: API Gateway HTTP API event (payload format 2.0).
//! - [`kong_forward`]: Kong's `forward_request_*` object.
//! - [`envoy_native`]: Envoy's native `aws_lambda` request JSON.
//! - [`alb`]: an Application Load Balancer target group's event.
//!
//! Bodies: sent as text when the content type is textual (any `charset`
//! parameter is ignored, unlike Envoy's native filter) and the bytes are
//! valid UTF-8; otherwise base64-encoded with `isBase64Encoded: true`.

use crate::clock::clf_time;
use crate::json_writer::JsonWriter;
use faas_core::headers::grouped;
use faas_core::path::{form_decode, split_path_query};
use faas_core::request::peer_ip;
use faas_core::{base64, ClientRequest};
use serde_json::{json, Map, Value};

#[cfg(any(test, feature = "reference-events"))]
pub mod reference;

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

/// An event's `body`: the request body as text when it may be, else
/// base64 (`isBase64Encoded`).
#[derive(Debug, PartialEq, Eq)]
pub enum EventBody<'a> {
    Empty,
    Text(&'a str),
    Base64(String),
}

pub fn event_body<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
    base64_encode_body: bool,
) -> EventBody<'a> {
    if body.is_empty() {
        return EventBody::Empty;
    }
    let textual = content_type.is_some_and(is_textual) || !base64_encode_body;
    match std::str::from_utf8(body) {
        Ok(text) if textual => EventBody::Text(text),
        _ => EventBody::Base64(base64::encode(body)),
    }
}

/// `(body, isBase64Encoded)`; `None` for an empty body.
pub fn encode_body(
    content_type: Option<&str>,
    body: &[u8],
    base64_encode_body: bool,
) -> (Option<String>, bool) {
    match event_body(content_type, body, base64_encode_body) {
        EventBody::Empty => (None, false),
        EventBody::Text(text) => (Some(text.to_string()), false),
        EventBody::Base64(encoded) => (Some(encoded), true),
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
fn event_headers(request: &ClientRequest) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len());
    if !request.authority().is_empty() && request.header("host").is_none() {
        out.push(("host", request.authority()));
    }
    out.extend(
        request
            .headers
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    out
}

fn protocol(request: &ClientRequest) -> &str {
    match request.protocol.as_deref() {
        Some("HTTP/2") => "HTTP/2.0",
        Some("HTTP/3") => "HTTP/3.0",
        Some(p) if !p.is_empty() => p,
        _ => "HTTP/1.1",
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

fn source_ip(request: &ClientRequest) -> &str {
    request.peer_address.as_deref().map(peer_ip).unwrap_or("")
}

/// `pathParameters.proxy`: what follows the stripped prefix, if anything.
fn proxy_parameter<'a>(path: &'a str, strip_prefix: Option<&str>) -> Option<&'a str> {
    strip_prefix
        .and_then(|p| faas_core::path::forwarded_remainder(path, p))
        .map(|rest| rest.trim_start_matches('/'))
        .filter(|rest| !rest.is_empty())
}

/// `{"name": "v1,v2"}`: repeats joined with commas (payload format 2.0).
fn write_joined(w: &mut JsonWriter, groups: &[(&str, Vec<&str>)]) {
    w.begin_object();
    for (name, values) in groups {
        w.key(name);
        w.string(&values.join(","));
    }
    w.end_object();
}

/// `{"name": "last"}` and `{"name": ["v1", "v2"]}` (payload format 1.0).
fn write_single_and_multi(w: &mut JsonWriter, groups: &[(&str, Vec<&str>)], multi: bool) {
    w.begin_object();
    for (name, values) in groups {
        w.key(name);
        if multi {
            w.begin_array();
            for v in values {
                w.string(v);
            }
            w.end_array();
        } else {
            w.string(values.last().copied().unwrap_or_default()); // last wins, as in API Gateway
        }
    }
    w.end_object();
}

/// Payload format 1.0's query maps: `null` without a query, unlike its
/// header maps.
fn write_query_v1(w: &mut JsonWriter, groups: &[(&str, Vec<&str>)], multi: bool) {
    if groups.is_empty() {
        w.null();
    } else {
        write_single_and_multi(w, groups, multi);
    }
}

fn write_body(w: &mut JsonWriter, body: &EventBody<'_>) {
    match body {
        EventBody::Empty => w.null(),
        EventBody::Text(text) => w.string(text),
        EventBody::Base64(encoded) => w.plain_string(encoded),
    }
}

/// What both API Gateway formats read from the request.
struct Parts<'a> {
    path: &'a str,
    raw_query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    query: Vec<(String, Option<String>)>,
    body: EventBody<'a>,
}

impl<'a> Parts<'a> {
    fn of(request: &'a ClientRequest, ctx: &EventContext<'_>) -> Parts<'a> {
        let (path, raw_query) = split_path_query(request.target());
        Parts {
            path,
            raw_query,
            headers: event_headers(request),
            query: query_pairs(raw_query),
            body: event_body(
                request.header("content-type"),
                &request.body,
                ctx.base64_encode_body,
            ),
        }
    }

    /// The query's pairs by name, as serde_json's map kept them; a
    /// valueless key has the empty value.
    fn query_groups(&self) -> Vec<(&str, Vec<&str>)> {
        grouped(
            self.query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or(""))),
        )
    }
}

/// The start of `requestContext`, the same in both formats: the (fixed)
/// account and API, and the domain the client asked for.
fn write_context_start(w: &mut JsonWriter, request: &ClientRequest) {
    let (domain_name, domain_prefix) = domain(request);
    w.key("accountId");
    w.plain_string("envoy");
    w.key("apiId");
    w.plain_string("envoy");
    w.key("domainName");
    w.string(&domain_name);
    w.key("domainPrefix");
    w.string(&domain_prefix);
}

/// The event's size before it is written: the body and the headers twice
/// (1.0 has them twice), plus the fixed keys.
fn capacity(request: &ClientRequest) -> usize {
    let headers: usize = request
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 8)
        .sum();
    request.body.len() * 4 / 3 + 2 * headers + 1024
}

/// API Gateway REST proxy event, payload format 1.0, as JSON bytes.
pub fn apigw_v1(request: &ClientRequest, ctx: &EventContext<'_>) -> Vec<u8> {
    let parts = Parts::of(request, ctx);
    let (path, body) = (parts.path, &parts.body);
    let header_groups = grouped(parts.headers.iter().copied());
    let query_groups = parts.query_groups();
    let proxy = proxy_parameter(path, ctx.strip_prefix);
    let resource = match proxy {
        None => path.to_string(),
        Some(_) => format!(
            "{}/{{proxy+}}",
            ctx.strip_prefix.unwrap_or("").trim_end_matches('/')
        ),
    };
    let mut w = JsonWriter::with_capacity(capacity(request));
    w.begin_object();
    w.key("body");
    write_body(&mut w, body);
    w.key("headers");
    write_single_and_multi(&mut w, &header_groups, false);
    w.key("httpMethod");
    w.string(request.method());
    w.key("isBase64Encoded");
    w.bool(matches!(body, EventBody::Base64(_)));
    w.key("multiValueHeaders");
    write_single_and_multi(&mut w, &header_groups, true);
    w.key("multiValueQueryStringParameters");
    write_query_v1(&mut w, &query_groups, true);
    w.key("path");
    w.string(path);
    w.key("pathParameters");
    write_proxy_parameter(&mut w, proxy);
    w.key("queryStringParameters");
    write_query_v1(&mut w, &query_groups, false);
    w.key("requestContext");
    w.begin_object();
    write_context_start(&mut w, request);
    w.key("extendedRequestId");
    w.string(ctx.request_id);
    w.key("httpMethod");
    w.string(request.method());
    w.key("identity");
    w.begin_object();
    w.key("sourceIp");
    w.string(source_ip(request));
    w.key("userAgent");
    w.optional_string(request.header("user-agent"));
    w.end_object();
    w.key("path");
    w.string(path);
    w.key("protocol");
    w.string(protocol(request));
    w.key("requestId");
    w.string(ctx.request_id);
    w.key("requestTime");
    w.plain_string(&clf_time(ctx.now_ms / 1000));
    w.key("requestTimeEpoch");
    w.u64(ctx.now_ms);
    w.key("resourcePath");
    w.string(&resource);
    w.key("stage");
    w.plain_string("$default");
    w.end_object();
    w.key("resource");
    w.string(&resource);
    w.key("stageVariables");
    w.null();
    w.key("version");
    w.plain_string("1.0");
    w.end_object();
    w.into_bytes()
}

fn write_proxy_parameter(w: &mut JsonWriter, proxy: Option<&str>) {
    match proxy {
        Some(rest) => {
            w.begin_object();
            w.key("proxy");
            w.string(rest);
            w.end_object();
        }
        None => w.null(),
    }
}

/// API Gateway HTTP API event, payload format 2.0, as JSON bytes.
pub fn apigw_v2(request: &ClientRequest, ctx: &EventContext<'_>) -> Vec<u8> {
    let parts = Parts::of(request, ctx);
    let (path, body) = (parts.path, &parts.body);
    let cookies: Vec<&str> = parts
        .headers
        .iter()
        .filter(|(n, _)| *n == "cookie")
        .flat_map(|(_, v)| v.split(';').map(str::trim).filter(|c| !c.is_empty()))
        .collect();
    let header_groups = grouped(
        parts
            .headers
            .iter()
            .filter(|(n, _)| *n != "cookie")
            .copied(),
    );
    let query_groups = parts.query_groups();
    let mut w = JsonWriter::with_capacity(capacity(request));
    w.begin_object();
    if !matches!(body, EventBody::Empty) {
        w.key("body");
        write_body(&mut w, body);
    }
    if !cookies.is_empty() {
        w.key("cookies");
        w.begin_array();
        for c in &cookies {
            w.string(c);
        }
        w.end_array();
    }
    w.key("headers");
    write_joined(&mut w, &header_groups);
    w.key("isBase64Encoded");
    w.bool(matches!(body, EventBody::Base64(_)));
    if let Some(rest) = proxy_parameter(path, ctx.strip_prefix) {
        w.key("pathParameters");
        write_proxy_parameter(&mut w, Some(rest));
    }
    if !query_groups.is_empty() {
        w.key("queryStringParameters");
        write_joined(&mut w, &query_groups);
    }
    w.key("rawPath");
    w.string(path);
    w.key("rawQueryString");
    w.string(parts.raw_query);
    w.key("requestContext");
    w.begin_object();
    write_context_start(&mut w, request);
    w.key("http");
    w.begin_object();
    w.key("method");
    w.string(request.method());
    w.key("path");
    w.string(path);
    w.key("protocol");
    w.string(protocol(request));
    w.key("sourceIp");
    w.string(source_ip(request));
    w.key("userAgent");
    w.string(request.header("user-agent").unwrap_or(""));
    w.end_object();
    w.key("requestId");
    w.string(ctx.request_id);
    w.key("routeKey");
    w.plain_string("$default");
    w.key("stage");
    w.plain_string("$default");
    w.key("time");
    w.plain_string(&clf_time(ctx.now_ms / 1000));
    w.key("timeEpoch");
    w.u64(ctx.now_ms);
    w.end_object();
    w.key("routeKey");
    w.plain_string("$default");
    w.key("version");
    w.plain_string("2.0");
    w.end_object();
    w.into_bytes()
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

/// An Application Load Balancer target group's event (AWS's "Lambda
/// functions as targets"): `requestContext.elb.targetGroupArn`,
/// `httpMethod`, `path` and the query as received (ALB decodes neither,
/// and a name without `=` has `""`), headers (names lower-case) with `host`; with `multi_value` (the
/// target group's multi-value headers setting) every value in
/// `multiValueQueryStringParameters` and `multiValueHeaders`, else the last
/// one in `queryStringParameters` and `headers`; the body as text for
/// `text/*`, `application/json`, `application/javascript` and
/// `application/xml` without a `content-encoding`, else base64.
pub fn alb(request: &ClientRequest, target_group_arn: &str, multi_value: bool) -> Vec<u8> {
    let (path, raw_query) = split_path_query(request.target());
    let mut w = JsonWriter::with_capacity(capacity(request));
    w.begin_object();
    w.key("requestContext");
    w.begin_object();
    w.key("elb");
    w.begin_object();
    w.key("targetGroupArn");
    w.string(target_group_arn);
    w.end_object();
    w.end_object();
    w.key("httpMethod");
    w.string(request.method());
    w.key("path");
    w.string(path);
    let query = grouped(
        raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, ""))),
    );
    let (query_key, headers_key) = if multi_value {
        ("multiValueQueryStringParameters", "multiValueHeaders")
    } else {
        ("queryStringParameters", "headers")
    };
    w.key(query_key);
    write_single_and_multi(&mut w, &query, multi_value);
    w.key(headers_key);
    // Envoy's header names are lower-case already, as ALB writes them.
    write_single_and_multi(&mut w, &grouped(event_headers(request)), multi_value);
    let media = request
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let textual = request.header("content-encoding").is_none()
        && (media.starts_with("text/")
            || matches!(
                media.as_str(),
                "application/json" | "application/javascript" | "application/xml"
            ));
    let text = std::str::from_utf8(&request.body).ok().filter(|_| textual);
    w.key("isBase64Encoded");
    w.bool(text.is_none() && !request.body.is_empty());
    w.key("body");
    match text {
        Some(text) => w.string(text),
        None => w.plain_string(&base64::encode(&request.body)),
    }
    w.end_object();
    w.into_bytes()
}

/// Envoy's native `aws_lambda` filter's request (`payload_passthrough:
/// false`, its `request_response.proto`), as Envoy 1.40 writes it: fields
/// in proto order; `raw_path` the path and query as sent; every non-pseudo
/// header, repeats joined with `,` (no `host`: it is `:authority`);
/// `query_string_parameters` not decoded, the first of a repeated name,
/// `""` for a name without `=` (and for an empty segment); the body as text only for `text/*`,
/// `application/json`, `application/javascript` and `application/xml`
/// exactly (so `application/json; charset=utf-8` goes as base64, as in
/// native), else base64; strings escaped as protobuf escapes them. One
/// difference, deliberate: a text body that is not UTF-8 goes as base64
/// (native replaces each invalid byte with a space).
pub fn envoy_native(request: &ClientRequest) -> Vec<u8> {
    let mut w = JsonWriter::protobuf(capacity(request));
    w.begin_object();
    w.key("raw_path");
    w.string(request.target());
    w.key("method");
    w.string(request.method());
    w.key("headers");
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    write_joined(&mut w, &grouped(headers));
    w.key("query_string_parameters");
    w.begin_object();
    let (_, query) = split_path_query(request.target());
    // Native keeps empty segments (`a=1&&` has a `""` name), not an empty
    // query; the first value of a repeated name. Grouped (a binary search
    // per pair), not a scan of the names seen: a URL may hold thousands.
    let pairs = query
        .split('&')
        .filter(|_| !query.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    for (name, values) in grouped(pairs) {
        w.key(name);
        w.string(values.first().copied().unwrap_or_default());
    }
    w.end_object();
    let textual = request.header("content-type").is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("text/")
            || matches!(
                t.as_str(),
                "application/json" | "application/javascript" | "application/xml"
            )
    });
    let text = std::str::from_utf8(&request.body).ok().filter(|_| textual);
    w.key("body");
    match text {
        Some(text) => w.string(text),
        None => w.plain_string(&base64::encode(&request.body)),
    }
    w.key("is_base64_encoded");
    w.bool(text.is_none() && !request.body.is_empty());
    w.end_object();
    w.into_bytes()
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
            .map(|(n, v)| (n.to_string(), Some(v.to_string())))
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
    use proptest::prelude::*;

    /// The event as written, after checking it byte for byte against the
    /// serde_json rendering it replaced (the golden rule of issue 16).
    fn written_v1(request: &ClientRequest, ctx: &EventContext<'_>) -> Value {
        let bytes = apigw_v1(request, ctx);
        let reference = serde_json::to_vec(&reference::apigw_v1(request, ctx)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&reference)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    fn written_v2(request: &ClientRequest, ctx: &EventContext<'_>) -> Value {
        let bytes = apigw_v2(request, ctx);
        let reference = serde_json::to_vec(&reference::apigw_v2(request, ctx)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&reference)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    fn header_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("cookie".to_string()),
            Just("host".to_string()),
            Just("user-agent".to_string()),
            Just("content-type".to_string()),
            "[a-zA-Z:-]{1,6}",
        ]
    }

    proptest! {
        /// Any request: the written event is the serde_json rendering.
        #[test]
        fn written_events_match_the_serde_json_rendering(
            target in "(/[a-zA-Z0-9%+/._~-]{0,12})?(\\?[a-z0-9=&%+;\"\\\\\\x00-\\x1f\u{e9}]{0,24})?",
            authority in "([a-zA-Z.]{0,10}(:[0-9a-z]{0,4})?|\\[::1\\](:80)?)",
            headers in proptest::collection::vec((header_name(), "[ -~\t\u{e9}\u{1f600}]{0,12}"), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..24),
            text_body in "[ -~\n\u{7f}\u{e9}]{0,24}",
            use_text in any::<bool>(),
            protocol in prop_oneof![Just(""), Just("HTTP/1.0"), Just("HTTP/2"), Just("HTTP/3")],
            peer in proptest::option::of(prop_oneof![Just("10.0.0.1:5"), Just("[::1]:80"), Just("x")]),
            strip_prefix in proptest::option::of(prop_oneof![Just("/"), Just("/api"), Just("/api/")]),
            base64_encode_body in any::<bool>(),
            now_ms in any::<u64>(),
            request_id in "[ -~]{0,8}",
        ) {
            let mut pairs = vec![
                (":method".to_string(), "POST".to_string()),
                (":path".to_string(), target),
                (":authority".to_string(), authority),
            ];
            pairs.extend(headers);
            let request = ClientRequest {
                headers: pairs,
                peer_address: peer.map(str::to_string),
                protocol: Some(protocol.to_string()),
                body: if use_text { text_body.into_bytes() } else { body },
            };
            let ctx = EventContext {
                request_id: &request_id,
                now_ms: now_ms % 4_102_444_800_000,
                strip_prefix,
                base64_encode_body,
            };
            written_v1(&request, &ctx);
            written_v2(&request, &ctx);
        }
    }

    /// The example event of AWS's "Lambda functions as targets of an
    /// Application Load Balancer" (Elastic Load Balancing User Guide), from
    /// the request it describes, and its multi-value examples.
    #[test]
    fn alb_events_are_the_documented_ones() {
        let arn = "arn:aws:elasticloadbalancing:region:123456789012:targetgroup/my-target-group/6d0ecf831eec9f09";
        let r = request(
            &[
                (":method", "GET"),
                (":path", "/"),
                (":authority", "lambda-846800462-us-east-2.elb.amazonaws.com"),
                ("accept", "text/html,application/xhtml+xml"),
                ("accept-language", "en-US,en;q=0.8"),
                ("content-type", "text/plain"),
                ("cookie", "cookies"),
                (
                    "user-agent",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6)",
                ),
                (
                    "x-amzn-trace-id",
                    "Root=1-5bdb40ca-556d8b0c50dc66f0511bf520",
                ),
                ("x-forwarded-for", "72.21.198.66"),
                ("x-forwarded-port", "443"),
                ("x-forwarded-proto", "https"),
            ],
            b"request_body",
            "HTTP/1.1",
        );
        let event: Value = serde_json::from_slice(&alb(&r, arn, false)).unwrap();
        assert_eq!(
            event,
            json!({
                "requestContext": {"elb": {"targetGroupArn": arn}},
                "httpMethod": "GET",
                "path": "/",
                "queryStringParameters": {},
                "headers": {
                    "accept": "text/html,application/xhtml+xml",
                    "accept-language": "en-US,en;q=0.8",
                    "content-type": "text/plain",
                    "cookie": "cookies",
                    "host": "lambda-846800462-us-east-2.elb.amazonaws.com",
                    "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6)",
                    "x-amzn-trace-id": "Root=1-5bdb40ca-556d8b0c50dc66f0511bf520",
                    "x-forwarded-for": "72.21.198.66",
                    "x-forwarded-port": "443",
                    "x-forwarded-proto": "https"
                },
                "isBase64Encoded": false,
                "body": "request_body"
            })
        );
        let twice = request(
            &[
                (":method", "GET"),
                (":path", "/?&myKey=val1&myKey=val2&enc=a%20b"),
                (":authority", "www.example.com"),
                ("cookie", "name1=value1"),
                ("cookie", "name2=value2"),
            ],
            b"",
            "HTTP/1.1",
        );
        let single: Value = serde_json::from_slice(&alb(&twice, arn, false)).unwrap();
        assert_eq!(
            single["queryStringParameters"],
            json!({"myKey": "val2", "enc": "a%20b"})
        );
        assert_eq!(single["headers"]["cookie"], "name2=value2");
        assert!(single.get("multiValueHeaders").is_none());
        let multi: Value = serde_json::from_slice(&alb(&twice, arn, true)).unwrap();
        assert_eq!(
            multi["multiValueQueryStringParameters"],
            json!({"myKey": ["val1", "val2"], "enc": ["a%20b"]})
        );
        assert_eq!(
            multi["multiValueHeaders"]["cookie"],
            json!(["name1=value1", "name2=value2"])
        );
        assert!(multi.get("headers").is_none() && multi.get("queryStringParameters").is_none());
        assert_eq!(
            (multi["body"].as_str(), multi["isBase64Encoded"].as_bool()),
            (Some(""), Some(false))
        );
        let gzipped = request(
            &[
                (":method", "POST"),
                (":path", "/"),
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            b"{}",
            "HTTP/1.1",
        );
        let event: Value = serde_json::from_slice(&alb(&gzipped, arn, false)).unwrap();
        assert_eq!(
            (event["body"].as_str(), event["isBase64Encoded"].as_bool()),
            (Some("e30="), Some(true))
        );
    }

    #[test]
    fn the_envoy_native_event_is_natives_shape_and_rules() {
        let r = request(
            &[
                (":method", "POST"),
                (":path", "/o/1?a=1&a=2&b=x%20y&flag&&"),
                (":authority", "gw.example"),
                ("content-type", "application/json; charset=utf-8"),
                ("x-rep", "one"),
                ("x-rep", "two"),
            ],
            br#"{"x":1}"#,
            "HTTP/1.1",
        );
        let text = String::from_utf8(envoy_native(&r)).unwrap();
        assert!(
            text.starts_with(
                r#"{"raw_path":"/o/1?a=1&a=2&b=x%20y&flag&&","method":"POST","headers":{"#
            ),
            "{text}"
        );
        let event: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            event["headers"],
            json!({"content-type": "application/json; charset=utf-8", "x-rep": "one,two"}),
            "no host: native skips :authority"
        );
        assert_eq!(
            event["query_string_parameters"],
            json!({"a": "1", "b": "x%20y", "flag": "", "": ""}),
            "first value, not decoded, empty segments kept"
        );
        assert_eq!(
            (event["body"].as_str(), event["is_base64_encoded"].as_bool()),
            (Some("eyJ4IjoxfQ=="), Some(true)),
            "a charset parameter makes JSON base64, as in native"
        );
        let get = request(&[(":method", "GET"), (":path", "/")], b"", "HTTP/1.1");
        assert_eq!(
            String::from_utf8(envoy_native(&get)).unwrap(),
            r#"{"raw_path":"/","method":"GET","headers":{},"query_string_parameters":{},"body":"","is_base64_encoded":false}"#
        );
        let text = request(
            &[
                (":method", "PUT"),
                (":path", "/t"),
                ("content-type", "Text/Plain"),
            ],
            b"<hi>",
            "HTTP/1.1",
        );
        assert!(String::from_utf8(envoy_native(&text))
            .unwrap()
            .ends_with(r#""body":"\u003chi\u003e","is_base64_encoded":false}"#));
        let not_utf8 = request(
            &[
                (":method", "PUT"),
                (":path", "/t"),
                ("content-type", "text/plain"),
            ],
            b"\xff",
            "HTTP/1.1",
        );
        assert!(String::from_utf8(envoy_native(&not_utf8))
            .unwrap()
            .ends_with(r#""body":"/w==","is_base64_encoded":true}"#));
    }

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
        let event = written_v1(&request(HEADERS, br#"{"n":1}"#, "HTTP/1.1"), &ctx());
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
        let event = written_v2(&request(HEADERS, br#"{"n":1}"#, "HTTP/2"), &ctx());
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
        let v1 = written_v1(&get, &ctx());
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
        let v2 = written_v2(&get, &ctx());
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
        for event in [written_v1(&binary, &ctx()), written_v2(&binary, &ctx())] {
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
        assert_eq!(written_v2(&bad_text, &ctx())["isBase64Encoded"], true);
        // No content type: binary unless base64_encode_body is off.
        let untyped = request(
            &[(":method", "POST"), (":path", "/x")],
            b"plain",
            "HTTP/1.1",
        );
        assert_eq!(written_v2(&untyped, &ctx())["isBase64Encoded"], true);
        let raw_ctx = EventContext {
            base64_encode_body: false,
            ..ctx()
        };
        assert_eq!(written_v2(&untyped, &raw_ctx)["body"], "plain");
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
