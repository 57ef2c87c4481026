//! The Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`)
//! behind [`crate::aws`]'s SigV4 check, with functions for every response
//! shape the filter must handle.
//!
//! | function | result |
//! |---|---|
//! | `echo-event` | the payload it received, as is |
//! | `proxy-echo` | a proxy result: 200, `x-invoked: <name>:<qualifier>`, two cookies, the payload as `body` |
//! | `v2-echo` | the payload as a bare JSON result (no `statusCode`) |
//! | `binary` | a proxy result with a base64 PNG-ish body |
//! | `big-number` | raw JSON with a 23-digit number and unsorted keys |
//! | `bad-json`, `no-status`, `bad-base64` | malformed proxy results |
//! | `crash` | `X-Amz-Function-Error: Unhandled` with an error payload |
//! | `throttled` | the Invoke API's own 429 |
//! | `slow` | answers after 2 s |
//! | `large` | a 7 MB payload |
//! | anything else | the Invoke API's 404 `ResourceNotFoundException` |

use crate::http::{Request, Response};
use crate::percent_decode;
use serde_json::json;
use std::time::Duration;

/// `(function name, qualifier)` from the path's function segment (a name,
/// `name:qualifier`, a partial or a full ARN), and the `Qualifier` query.
pub fn function_of(req: &Request) -> Option<(String, String)> {
    let encoded = req
        .path()
        .strip_prefix("/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
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
