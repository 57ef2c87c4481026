//! The API Gateway events as they were built before the byte writer: a
//! `serde_json::Value` tree rendered by `serde_json::to_vec`. Kept as the
//! oracle for the golden tests and the fuzz differential (feature
//! `reference-events`); the filter never compiles it in.

use super::{domain, encode_body, event_headers, protocol, query_pairs, source_ip, EventContext};
use crate::clock::clf_time;
use faas_core::path::split_path_query;
use faas_core::ClientRequest;
use serde_json::{json, Map, Value};

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
    for &(n, v) in &headers {
        single.insert(n.to_string(), Value::String(v.to_string())); // last value wins, as in API Gateway
        push_multi(&mut multi, n.to_string(), v.to_string());
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
    for (n, v) in event_headers(request)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
    {
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
