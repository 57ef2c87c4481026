//! The Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`)
//! behind [`crate::aws`]'s SigV4 check, with functions for every response
//! shape the filter must handle.
//!
//! | function | result |
//! |---|---|
//! | `echo-event` | the payload it received, as is |
//! | `proxy-echo` | a proxy result: 200, `x-invoked: <name>:<qualifier>`, two cookies, the payload as `body` |
//! | `v2-echo` | the payload as a bare JSON result (no `statusCode`) |
//! | `envoy-echo` | a result in Envoy's native format whose body is the payload it received, byte for byte (base64) |
//! | `envoy-result` | the `body` of the native-format event it received, as its result (the client says what the function answers) |
//! | `binary` | a proxy result with a base64 PNG-ish body |
//! | `big-number` | raw JSON with a 23-digit number and unsorted keys |
//! | `bad-json`, `no-status`, `bad-base64` | malformed proxy results |
//! | `crash` | `X-Amz-Function-Error: Unhandled` with an error payload |
//! | `throttled` | the Invoke API's own 429 |
//! | `slow` | answers after 2 s |
//! | `large` | a 7 MB payload |
//! | anything else | the Invoke API's 404 `ResourceNotFoundException` |

use crate::http::{Reply, Request, Response, Step, Streamed};
use crate::percent_decode;
use serde_json::{json, Value};
use std::time::Duration;

/// `(function name, qualifier)` from the path's function segment (a name,
/// `name:qualifier`, a partial or a full ARN), and the `Qualifier` query.
pub fn function_of(req: &Request) -> Option<(String, String)> {
    let path = req.path();
    let encoded = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|p| p.strip_suffix("/invocations"))
        .or_else(|| {
            path.strip_prefix("/2021-11-15/functions/")?
                .strip_suffix("/response-streaming-invocations")
        })?;
    let decoded = percent_decode(encoded, false);
    let parts: Vec<&str> = decoded.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [_, "function", name] => (*name, None),
        [_, "function", name, q] => (*name, Some(*q)),
        ["arn", _, "lambda", _, _, "function", name] => (*name, None),
        ["arn", _, "lambda", _, _, "function", name, q] => (*name, Some(*q)),
        _ => return None,
    };
    let query_qualifier = req.query().and_then(|q| {
        q.split('&').find_map(|p| {
            p.strip_prefix("Qualifier=")
                .map(|v| percent_decode(v, true))
        })
    });
    let qualifier = qualifier
        .map(String::from)
        .or(query_qualifier)
        .unwrap_or_else(|| "$LATEST".into());
    Some((name.to_string(), qualifier))
}

fn aws_error(status: u16, kind: &str, message: &str) -> Response {
    Response::new(
        status,
        "application/json",
        json!({"Type": "User", "Message": message}).to_string(),
    )
    .header("x-amzn-errortype", kind)
    .header("x-amzn-requestid", "emulated-request-id")
}

/// The 403 AWS answers a request whose signature it recomputes differently:
/// its message quotes the canonical request and string to sign, with the
/// `x-amz-security-token` and the signature the caller sent.
fn signature_mismatch(req: &Request) -> Response {
    let token = req.header("x-amz-security-token").unwrap_or_default();
    let date = req.header("x-amz-date").unwrap_or_default();
    let authorization = req.header("authorization").unwrap_or_default();
    let signature = authorization
        .rsplit("Signature=")
        .next()
        .unwrap_or_default();
    let message = format!(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
         The Canonical String for this request should have been\n'POST\n{path}\n\n\
         host:lambda.us-east-1.amazonaws.com\nx-amz-date:{date}\nx-amz-security-token:{token}\n\n\
         host;x-amz-date;x-amz-security-token\n'\n\n\
         The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n{date}\n'\n\
         You sent Signature={signature}",
        path = req.target,
    );
    aws_error(403, "SignatureDoesNotMatch", &message)
}

fn ok(qualifier: &str, body: impl Into<Vec<u8>>) -> Response {
    Response::new(200, "application/json", body)
        .header("x-amzn-requestid", "emulated-request-id")
        .header("x-amz-executed-version", qualifier)
        .header("x-amzn-trace-id", "Root=1-emulated")
}

pub async fn invoke(req: &Request) -> Response {
    let Some((name, qualifier)) = function_of(req) else {
        return aws_error(
            400,
            "InvalidParameterValueException",
            "invalid function name",
        );
    };
    let payload = String::from_utf8_lossy(&req.body).into_owned();
    let mut response = match name.as_str() {
        "echo-event" => ok(&qualifier, req.body.clone()),
        "proxy-echo" => ok(
            &qualifier,
            json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json", "x-invoked": format!("{name}:{qualifier}")},
                "multiValueHeaders": {"set-cookie": ["a=1; Path=/", "b=2; Path=/"]},
                "body": payload,
            })
            .to_string(),
        ),
        "v2-echo" => ok(&qualifier, req.body.clone()),
        "envoy-echo" => ok(
            &qualifier,
            json!({"status_code": 200, "headers": {"content-type": "application/octet-stream"},
                   "body": crate::b64(&req.body), "is_base64_encoded": true})
            .to_string(),
        ),
        "envoy-result" => {
            let event: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            ok(&qualifier, event["body"].as_str().unwrap_or_default().to_string())
        }
        "binary" => ok(
            &qualifier,
            json!({"statusCode": 200, "headers": {"content-type": "image/png"}, "body": "iVBORw0KGgr/AP8=", "isBase64Encoded": true}).to_string(),
        ),
        "big-number" => ok(&qualifier, r#"{"z": 1, "n": 12345678901234567890123, "a": [], "s": "\/x"}"#),
        "bad-json" => ok(&qualifier, "this is not json"),
        "no-status" => ok(&qualifier, r#"{"body": "no status"}"#),
        "bad-base64" => ok(&qualifier, r#"{"statusCode": 200, "isBase64Encoded": true, "body": "%%%"}"#),
        "crash" => ok(
            &qualifier,
            r#"{"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["/var/task/secret_handler.py:3"]}"#,
        )
        .header("x-amz-function-error", "Unhandled"),
        "throttled" => return aws_error(429, "TooManyRequestsException", "Rate Exceeded."),
        // AWS's SignatureDoesNotMatch quotes the canonical request it
        // computed, the caller's session token included, over many lines.
        "signature-mismatch" => return signature_mismatch(req),
        // A proxy result with an interim status (never a final answer).
        "status-101" => ok(
            &qualifier,
            r#"{"statusCode": 101, "headers": {"upgrade": "websocket"}, "body": "switch"}"#,
        ),
        "status-100" => ok(&qualifier, r#"{"statusCode": "100", "body": "continue"}"#),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            ok(&qualifier, req.body.clone())
        }
        "large" => ok(&qualifier, vec![b'7'; 7_000_000]),
        other => {
            return aws_error(
                404,
                "ResourceNotFoundException",
                &format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{other}:{qualifier}"),
            )
        }
    };
    match req.header("x-amz-invocation-type").as_deref() {
        Some("Event") => {
            return Response {
                status: 202,
                headers: vec![("x-amzn-requestid".into(), "emulated-request-id".into())],
                body: Vec::new(),
            }
        }
        Some("DryRun") => {
            return Response {
                status: 204,
                headers: vec![("x-amzn-requestid".into(), "emulated-request-id".into())],
                body: Vec::new(),
            }
        }
        _ => {}
    }
    if req.header("x-amz-log-type").as_deref() == Some("Tail") {
        // base64("START RequestId: emulated\nEND\n")
        response = response.header(
            "x-amz-log-result",
            "U1RBUlQgUmVxdWVzdElkOiBlbXVsYXRlZApFTkQK",
        );
    }
    response
}

/// Whether the call is `InvokeWithResponseStream`.
pub fn is_streaming(req: &Request) -> bool {
    req.path().ends_with("/response-streaming-invocations")
}

fn frame(event: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    aws_lambda::eventstream::encode(
        &[
            (":event-type", event),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A `PayloadChunk` message.
pub fn payload_chunk(bytes: &[u8]) -> Vec<u8> {
    frame("PayloadChunk", "application/octet-stream", bytes)
}

/// An `InvokeComplete` message (`{}` on success).
pub fn invoke_complete(json: &str) -> Vec<u8> {
    frame("InvokeComplete", "application/json", json.as_bytes())
}

/// A setting of a streaming call: from the raw payload's JSON
/// (`{"chunks": 3, "gate": "g1"}`) or an API Gateway event's query.
fn setting(event: &Value, name: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    event
        .get(name)
        .and_then(text)
        .or_else(|| event.get("queryStringParameters")?.get(name).and_then(text))
}

/// `InvokeWithResponseStream` (its 200 head; the function's bytes in
/// eventstream messages), with functions for every shape a gateway must
/// handle. Settings (`chunks`, `gate`, `gap_ms`, `bytes`, `chunk`) come
/// from the payload, see [`setting`].
///
/// | function | stream |
/// |---|---|
/// | `stream-chunks` | `chunks` chunks `chunk <i>\n` (default 3), each after gate `gate` opened i times, or `gap_ms` apart |
/// | `stream-echo` | the payload it received, in three chunks |
/// | `stream-http`, `chat-stream` | HTTP metadata (201, `text/event-stream`, `x-stream`, two cookies) split across messages, then `data: <i>` events as `stream-chunks` |
/// | `stream-bytes` | `bytes` bytes in chunks of `chunk` (default 64 KiB) |
/// | `stream-error-first` | `InvokeComplete` with `ErrorCode` before any byte |
/// | `stream-error-late` | a chunk, then `InvokeComplete` with `ErrorCode` |
/// | `stream-bad-crc` | a chunk, then one whose CRC is wrong |
/// | `stream-truncated` | a chunk, then half a message, then the end |
/// | `stream-exception` | a chunk, then an exception message |
///
/// The last four write their failure after gate `gate` opened once, when
/// the payload names one (the client has seen the first chunk).
pub fn invoke_streaming(req: &Request, name: &str, qualifier: &str) -> Reply {
    let event: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let number = |n: &str, default: usize| {
        setting(&event, n)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let gate = setting(&event, "gate");
    let gap = Duration::from_millis(number("gap_ms", 0) as u64);
    let paced = |i: usize, bytes: Vec<u8>, steps: &mut Vec<Step>| {
        if i > 0 {
            match &gate {
                Some(id) => steps.push(Step::Gate {
                    id: id.clone(),
                    times: i as u64,
                }),
                None if !gap.is_zero() => steps.push(Step::Sleep(gap)),
                None => {}
            }
        }
        steps.push(Step::Write(payload_chunk(&bytes)));
    };
    let mut content_type = "text/plain";
    let mut steps = Vec::new();
    let secret_details = "boom at /var/task/secret_handler.js:7 (token=SECRET-IN-DETAILS)";
    let failed =
        format!(r#"{{"ErrorCode":"Unhandled","ErrorDetails":"{secret_details}","LogResult":""}}"#);
    match name {
        "stream-chunks" => {
            for i in 0..number("chunks", 3) {
                paced(i, format!("chunk {i}\n").into_bytes(), &mut steps);
            }
        }
        "stream-echo" => {
            content_type = "application/json";
            let third = req.body.len().div_ceil(3).max(1);
            for part in req.body.chunks(third) {
                steps.push(Step::Write(payload_chunk(part)));
            }
        }
        // `chat-stream`: the name envoy/lambda-streaming.yaml ships with.
        "stream-http" | "chat-stream" => {
            content_type = "application/vnd.awslambda.http-integration-response";
            let metadata = br#"{"statusCode":201,"headers":{"Content-Type":"text/event-stream","X-Stream":"yes"},"cookies":["a=1; Path=/","b=2; Path=/"]}"#;
            let (first, second) = metadata.split_at(20);
            steps.push(Step::Write(payload_chunk(first)));
            let mut rest = second.to_vec();
            rest.extend_from_slice(&[0; 5]);
            steps.push(Step::Write(payload_chunk(&rest)));
            let mut tail = vec![0u8; 3];
            tail.extend_from_slice(b"data: 0\n\n");
            steps.push(Step::Write(payload_chunk(&tail)));
            for i in 1..number("chunks", 3) {
                paced(i, format!("data: {i}\n\n").into_bytes(), &mut steps);
            }
        }
        "stream-bytes" => {
            content_type = "application/octet-stream";
            let total = number("bytes", 1 << 20);
            let size = number("chunk", 64 * 1024).max(1);
            let block = vec![b's'; size];
            // One message framed once and written again and again: the
            // emulator's cost stays out of the gateway's measurement.
            steps.push(Step::Repeat {
                bytes: payload_chunk(&block),
                times: total / size,
            });
            if total % size > 0 {
                steps.push(Step::Write(payload_chunk(&block[..total % size])));
            }
        }
        "stream-error-first" => {
            steps.push(Step::Write(invoke_complete(&failed)));
            return streamed(qualifier, content_type, steps);
        }
        "stream-error-late" => {
            steps.push(Step::Write(payload_chunk(b"partial ")));
            steps.extend(after_first(&gate));
            steps.push(Step::Write(invoke_complete(&failed)));
            return streamed(qualifier, content_type, steps);
        }
        "stream-bad-crc" => {
            steps.push(Step::Write(payload_chunk(b"good ")));
            steps.extend(after_first(&gate));
            let mut bad = payload_chunk(b"bad");
            if let Some(last) = bad.last_mut() {
                *last ^= 0xff;
            }
            steps.push(Step::Write(bad));
        }
        "stream-truncated" => {
            steps.push(Step::Write(payload_chunk(b"good ")));
            steps.extend(after_first(&gate));
            let half = payload_chunk(b"never whole");
            steps.push(Step::Write(half[..half.len() / 2].to_vec()));
            return streamed(qualifier, content_type, steps);
        }
        "stream-exception" => {
            steps.push(Step::Write(payload_chunk(b"good ")));
            steps.extend(after_first(&gate));
            steps.push(Step::Write(aws_lambda::eventstream::encode(
                &[
                    (":message-type", "exception"),
                    (":exception-type", "ServiceException"),
                    (":content-type", "application/json"),
                ],
                br#"{"message":"internal SECRET-IN-EXCEPTION"}"#,
            )));
            return streamed(qualifier, content_type, steps);
        }
        other => {
            return Reply::Response(aws_error(
                404,
                "ResourceNotFoundException",
                &format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{other}:{qualifier}"),
            ))
        }
    }
    steps.push(Step::Write(invoke_complete("{}")));
    streamed(qualifier, content_type, steps)
}

/// A failing stream's pause after its first chunk: until gate `gate`
/// opens once (the client saw the chunk), when the payload names one.
fn after_first(gate: &Option<String>) -> Option<Step> {
    gate.as_ref().map(|id| Step::Gate {
        id: id.clone(),
        times: 1,
    })
}

fn streamed(qualifier: &str, content_type: &str, steps: Vec<Step>) -> Reply {
    Reply::Stream(Streamed {
        status: 200,
        headers: vec![
            (
                "content-type".into(),
                "application/vnd.amazon.eventstream".into(),
            ),
            ("x-amzn-remapped-content-type".into(), content_type.into()),
            ("x-amzn-requestid".into(), "emulated-request-id".into()),
            ("x-amz-executed-version".into(), qualifier.into()),
        ],
        steps,
    })
}
