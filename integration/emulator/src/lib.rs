//! Functions on loopback for the demo, the integration tests and the
//! benchmarks. OpenFunction-style functions (plain HTTP triggers):
//!
//! | path | behaviour |
//! |---|---|
//! | `/default/function-sample[/<name>]`, `/hello[/<name>]` | `Hello, <name>!` from the path remainder, else the `name` query parameter, else the body (a JSON `{"name":..}` or plain text), else `World` |
//! | `/echo[/...]` | JSON of exactly what arrived: method, path, raw query, headers in order with repeats, body as base64 |
//! | `/mirror[/...]` | the request body back, byte for byte, with the request's content-type |
//! | `/delay/<ms>[/...]` | waits, then echoes |
//! | `/status/<code>[/...]` | that status with an empty body |
//! | `/bytes/<n>` | `n` bytes of body |
//! | `/close` | closes the connection without answering |
//! | `/hop` | a response carrying hop-by-hop headers and two `set-cookie` |
//! | `/stream/<n>[?gate=<id>\|?gap_ms=<ms>][&abort=1]`, `/stream/bytes/<n>` | a `RESPONSE_STREAM` Function URL: chunks written as they are made (gated by `POST /_gate/<id>`, or timed) |
//! | `/computeMetadata/v1/instance/service-accounts/default/identity` | GCE's metadata server: an hour-long Google ID token for `?audience=` ([`google`]) |
//! | `/catalog/<item_id>` | the function-backend sample ([`catalog`]): a typed JSON item with the gateway headers it saw, cacheable |
//!
//! AWS front doors (selected by the Host header, see [`aws`]) verify
//! `x-api-key` and SigV4 and then run the same functions; so does an Azure
//! Functions host ([`azure`]) with function keys, and a Cloud Run or
//! Cloud Functions host ([`google`]) with Google-signed ID tokens.

pub mod aws;
pub mod azure;
pub mod catalog;
pub mod google;
pub mod http;
pub mod lambda;
pub mod metadata;

use http::{Handler, Reply, Request, Response};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Decodes `%XX` (and `+` as space when `plus` is set).
pub fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true) == name).then(|| percent_decode(v, true))
    })
}

pub fn b64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The echo document: what arrived, exactly.
pub fn echo(req: &Request) -> Response {
    let headers: Vec<serde_json::Value> = req
        .headers
        .iter()
        .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
        .collect();
    let doc = json!({
        "method": req.method,
        "path": req.path(),
        "query": req.query(),
        "headers": headers,
        "body_base64": b64(&req.body),
    });
    Response::new(200, "application/json", doc.to_string())
}

fn hello(req: &Request, remainder: &str) -> Response {
    let from_path = percent_decode(remainder.trim_matches('/'), false);
    let name = if !from_path.is_empty() {
        from_path
    } else if let Some(n) = query_param(req, "name").filter(|n| !n.is_empty()) {
        n
    } else {
        let body = String::from_utf8_lossy(&req.body).trim().to_string();
        match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) if v.get("name").and_then(|n| n.as_str()).is_some() => {
                v["name"].as_str().unwrap_or_default().to_string()
            }
            _ if !body.is_empty() => body,
            _ => "World".to_string(),
        }
    };
    Response::new(200, "text/plain; charset=utf-8", format!("Hello, {name}!"))
}

/// The `(function, remainder)` of a path: `/delay/5/x` → `("delay", "/5/x")`.
fn function_of(path: &str) -> (&str, &str) {
    if let Some(rest) = path.strip_prefix("/default/function-sample") {
        return ("hello", rest);
    }
    let trimmed = path.trim_start_matches('/');
    let (name, rest) = trimmed
        .split_once('/')
        .map_or((trimmed, ""), |(n, r)| (n, r));
    (
        name,
        &path[path.len() - rest.len() - usize::from(!rest.is_empty())..],
    )
}

fn first_segment(rest: &str) -> &str {
    rest.trim_start_matches('/').split('/').next().unwrap_or("")
}

async fn handle(req: Request) -> Reply {
    // The demo's metadata server (hour-long ID tokens); tests use the
    // controllable one of `metadata::Fakes`.
    if req.path() == google::IDENTITY_PATH {
        let answer = google::metadata_identity(&req, 3600);
        return Reply::Response(answer.unwrap_or_else(|refused| refused));
    }
    // Google's front end checks a private service's ID token first.
    let req = if req
        .header("host")
        .as_deref()
        .is_some_and(google::is_google_host)
    {
        match google::admit(&req) {
            Ok(seen) => seen,
            Err(refused) => return Reply::Response(refused),
        }
    } else {
        req
    };
    // AWS front doors check credentials first, then run the function behind them.
    let function_path = match req.header("host").as_deref().and_then(aws::endpoint) {
        Some(endpoint) => match aws::admit(&req, &endpoint) {
            Ok(_) if matches!(endpoint, aws::Endpoint::Lambda { .. }) => {
                if lambda::is_streaming(&req) {
                    return match lambda::function_of(&req) {
                        Some((name, qualifier)) => {
                            lambda::invoke_streaming(&req, &name, &qualifier)
                        }
                        None => Reply::Response(lambda::invoke(&req).await),
                    };
                }
                return Reply::Response(lambda::invoke(&req).await);
            }
            Ok(path) => path,
            Err(denied) => return Reply::Response(denied),
        },
        None if req
            .header("host")
            .as_deref()
            .is_some_and(azure::is_azure_host) =>
        {
            if req.path() == "/api/protected" {
                return Reply::Response(azure::protected(&req));
            }
            match azure::admit(&req) {
                Ok(path) if path == "/greet" => return Reply::Response(azure::greet(&req)),
                Ok(path) => path,
                Err(denied) => return Reply::Response(denied),
            }
        }
        None => req.path().to_string(),
    };
    let (function, rest) = function_of(&function_path);
    let response = match function {
        "hello" => hello(&req, rest),
        "echo" => echo(&req),
        "catalog" => catalog::handle(&req, rest),
        "mirror" => {
            let ct = req
                .header("content-type")
                .unwrap_or_else(|| "application/octet-stream".into());
            Response::new(200, &ct, req.body.clone())
        }
        "delay" => {
            let ms: u64 = first_segment(rest).parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            echo(&req)
        }
        "status" => {
            let code: u16 = first_segment(rest).parse().unwrap_or(500);
            Response {
                status: code,
                headers: vec![("x-emulator-status".into(), code.to_string())],
                body: Vec::new(),
            }
        }
        "bytes" => {
            let n: usize = first_segment(rest).parse().unwrap_or(0);
            Response::new(200, "application/octet-stream", vec![b'a'; n])
        }
        "close" => return Reply::Close,
        "_gate" => {
            http::open_gate(first_segment(rest));
            Response::new(200, "text/plain", "opened")
        }
        "stream" => return stream(&req, rest),
        "hop" => Response::new(200, "text/plain", "hop")
            .header("connection", "x-hop-resp")
            .header("x-hop-resp", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic realm=x")
            .header("set-cookie", "a=1; Path=/")
            .header("x-end-to-end", "kept")
            .header("set-cookie", "b=2; Path=/"),
        _ => Response::new(
            404,
            "application/json",
            json!({"error": "no such function", "path": req.path()}).to_string(),
        ),
    };
    Reply::Response(response)
}

/// A Function URL in `RESPONSE_STREAM` mode (`/stream/<n>`): `n` chunks
/// `chunk <i>\n` of `text/event-stream`, each after gate `?gate=` opened
/// i times, or `?gap_ms=` apart; `?abort=1` drops the connection after
/// them; `/stream/bytes/<total>` streams `total` bytes in 64 KiB chunks.
fn stream(req: &Request, rest: &str) -> Reply {
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let head = |ct: &str| vec![("content-type".to_string(), ct.to_string())];
    if segments.first() == Some(&"bytes") {
        let total = segments.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        return Reply::Stream(http::Streamed {
            status: 200,
            headers: head("application/octet-stream"),
            steps: vec![http::Step::Fill {
                total,
                size: 64 * 1024,
            }],
        });
    }
    let n: usize = segments.first().and_then(|n| n.parse().ok()).unwrap_or(3);
    let gate = query_param(req, "gate");
    let gap: u64 = query_param(req, "gap_ms")
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let mut steps = Vec::new();
    for i in 0..n {
        if i > 0 {
            match &gate {
                Some(id) => steps.push(http::Step::Gate {
                    id: id.clone(),
                    times: i as u64,
                }),
                None => steps.push(http::Step::Sleep(Duration::from_millis(gap))),
            }
        }
        steps.push(http::Step::Write(format!("chunk {i}\n").into_bytes()));
    }
    if query_param(req, "abort").is_some() {
        steps.push(http::Step::Abort);
    }
    Reply::Stream(http::Streamed {
        status: 200,
        headers: head("text/event-stream"),
        steps,
    })
}

pub fn handler() -> Handler {
    Arc::new(|req| Box::pin(handle(req)))
}

/// The benchmark endpoint's one answer: a Lambda proxy result, so the same
/// bytes serve a plain route (passed through), Envoy's native `aws_lambda`
/// filter and our Invoke mode with `is_proxy_integration` (both transform it).
pub const FIXED_BODY: &str = r#"{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"hello from the function"}"#;

pub mod fixed;

/// Serves on an already bound listener, on a runtime of its own in a
/// background thread (for tests). Returns the bound address.
pub fn start_background(listener: std::net::TcpListener) -> std::io::Result<SocketAddr> {
    serve_background(listener, handler())
}

/// Serves `handler` on an already bound listener, on a runtime of its own
/// in a background thread. Returns the bound address.
pub fn serve_background(
    listener: std::net::TcpListener,
    handler: Handler,
) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                http::serve(listener, handler).await;
            }
        })
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_routing() {
        assert_eq!(
            function_of("/default/function-sample/123"),
            ("hello", "/123")
        );
        assert_eq!(function_of("/delay/50/x"), ("delay", "/50/x"));
        assert_eq!(function_of("/echo"), ("echo", ""));
        assert_eq!(function_of("/hello/a/b"), ("hello", "/a/b"));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b+c%2", true), "a b c%2");
        assert_eq!(percent_decode("caf%C3%A9", false), "café");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(b"fo"), "Zm8=");
    }
}
