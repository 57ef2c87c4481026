//! From the callout's result to the client's response (plain data).

use crate::headers::{self, HeaderList};

/// What came back from `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: u16,
    /// Without `:status`; repeated names are separate entries.
    pub headers: HeaderList,
    pub body: Vec<u8>,
}

/// A response the filter sends to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: HeaderList,
    pub body: Vec<u8>,
}

pub use crate::outcome::Failure;

/// A deliberate error answer, before the shell adds route and request id.
/// `message` and `details` must never contain a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// What went wrong: the code, outcome and fault (see [`crate::outcome`]).
    pub failure: Failure,
    pub status: u16,
    pub message: String,
    /// Extra fields of the JSON body (e.g. the upstream's error type).
    pub details: Vec<(&'static str, serde_json::Value)>,
    /// What the upstream said (its error message, say): for the log line
    /// only, redacted there ([`crate::redact::for_log`]), never rendered.
    pub upstream_text: Option<String>,
    /// Whether answering logs a line; off where the producer logs itself
    /// (credential refusals: one line per outage and interval).
    pub log_line: bool,
}

impl ErrorReply {
    pub fn new(failure: Failure, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            failure,
            status: failure.status(),
            message: message.into(),
            details: Vec::new(),
            upstream_text: None,
            log_line: true,
        }
    }

    /// Answers without a log line of its own (the producer logged it).
    pub fn unlogged(mut self) -> ErrorReply {
        self.log_line = false;
        self
    }

    /// Keeps what the upstream said for the log line (never for the client).
    pub fn with_upstream_text(mut self, text: impl Into<String>) -> ErrorReply {
        self.upstream_text = Some(text.into());
        self
    }

    /// Answers with `status` instead of the failure's default.
    pub fn with_status(mut self, status: u16) -> ErrorReply {
        self.status = status;
        self
    }

    /// The JSON `error` code.
    pub fn code(&self) -> &'static str {
        self.failure.code()
    }

    pub fn with(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> ErrorReply {
        self.details.push((key, value.into()));
        self
    }

    /// The JSON reply: `{"error", "message", "route", "request_id", ...details}`.
    pub fn render(&self, route: &str, request_id: Option<&str>) -> LocalReply {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code().into());
        body.insert("message".into(), self.message.clone().into());
        body.insert("route".into(), route.into());
        if let Some(id) = request_id {
            body.insert("request_id".into(), id.into());
        }
        for (k, v) in &self.details {
            body.insert((*k).into(), v.clone());
        }
        LocalReply {
            status: self.status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&serde_json::Value::Object(body)).unwrap_or_default(),
        }
    }
}

/// How a callout ended, telling Envoy's synthesised failures apart from a
/// function's own 503/504.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    Function(CalloutResponse),
    /// Envoy's async client timed out (synthesised 504).
    TimedOut,
    /// Connect failure, reset, TLS failure, no healthy host (synthesised 503).
    Unreachable(String),
}

/// Envoy's async client answers its own failures with a local reply that
/// carries only `content-length` and `content-type: text/plain` and one of
/// the router's fixed bodies. A function (through Envoy's router) always
/// answers with its own headers, so this shape identifies Envoy's replies.
fn synthesised_by_envoy(r: &CalloutResponse) -> bool {
    envoy_shaped(&r.headers, r.body.len())
}

/// Whether an answer of these headers (no pseudo-headers) and body size
/// may be one of Envoy's own failures: its bodies are short sentences.
pub fn envoy_shaped(headers: &[(String, String)], body_size: usize) -> bool {
    body_size <= 512
        && headers
            .iter()
            .all(|(n, _)| n == "content-length" || n == "content-type")
        && headers::get(headers, "content-type") == Some("text/plain")
}

pub fn classify(response: CalloutResponse) -> CallResult {
    if synthesised_by_envoy(&response) {
        let body = String::from_utf8_lossy(&response.body);
        if response.status == 504 && body == "upstream request timeout" {
            return CallResult::TimedOut;
        }
        let envoy_prefixes: &[&str] = match response.status {
            503 => &[
                "upstream connect error",
                "no healthy upstream",
                "upstream reset",
            ],
            // The function's answer was not HTTP (garbage, an invalid
            // status line): Envoy's codec gives up with this 502.
            502 => &["upstream connect error"],
            _ => &[],
        };
        if envoy_prefixes.iter().any(|p| body.starts_with(p)) {
            return CallResult::Unreachable(body.into_owned());
        }
    }
    CallResult::Function(response)
}

/// How the router's own answer on an in-place route (its
/// `response.code_details`) maps to the errors the callout path gives for
/// the same failures: `None` for the function's own answer
/// (`via_upstream`) and for replies of other filters, which pass as they are.
pub fn router_failure(details: &str) -> Option<CallResult> {
    // Envoy 1.40's details for a route timeout is `response_timeout`.
    const TIMEOUTS: [&str; 5] = [
        "response_timeout",
        "upstream_response_timeout",
        "upstream_per_try_timeout",
        "upstream_per_try_idle_timeout",
        "upstream_max_stream_duration_reached",
    ];
    const UNREACHABLE: [&str; 3] = [
        "upstream_reset_before_response_started",
        "no_healthy_upstream",
        "maintenance_mode",
    ];
    if TIMEOUTS.iter().any(|t| details.starts_with(t)) {
        return Some(CallResult::TimedOut);
    }
    UNREACHABLE
        .iter()
        .any(|u| details.starts_with(u))
        .then(|| CallResult::Unreachable(details.to_string()))
}

/// The client gets the function's status, end-to-end headers (repeats kept
/// in order, `content-length` included: see [`frame`]) and body, byte for
/// byte.
pub fn passthrough(response: CalloutResponse) -> LocalReply {
    LocalReply {
        status: response.status,
        headers: headers::end_to_end(&response.headers, |_| false),
        body: response.body,
    }
}

/// A reply ready for Envoy's local-reply path, and the headers to put back
/// when it passes this filter's response hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    pub reply: LocalReply,
    pub restore: HeaderList,
}

/// Prepares `reply` for `send_http_response`. Envoy computes the framing
/// itself: it sets `content-length` from the body, and for an empty body
/// removes both `content-length` and `content-type`, even for a HEAD,
/// whose empty body says nothing about the representation. Those headers
/// are kept aside in `restore` as the function sent them: `content-type`
/// of any empty body, and a HEAD's `content-length` (what a GET would
/// carry; without it an HTTP/1.1 client would get a chunked HEAD answer).
pub fn frame(mut reply: LocalReply, head: bool) -> Framed {
    let mut restore = HeaderList::new();
    let empty = reply.body.is_empty();
    reply.headers.retain(|(name, value)| {
        let length = name == "content-length";
        let number = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        if empty && (name == "content-type" || (length && head && number)) {
            restore.push((name.clone(), value.clone()));
        }
        !length
    });
    Framed { reply, restore }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, hs: &[(&str, &str)], body: &str) -> CalloutResponse {
        CalloutResponse {
            status,
            headers: crate::headers::owned(hs),
            body: body.as_bytes().to_vec(),
        }
    }

    const SYNTH: &[(&str, &str)] = &[("content-length", "24"), ("content-type", "text/plain")];

    #[test]
    fn recognises_envoy_timeouts_and_connect_failures() {
        assert_eq!(
            classify(resp(504, SYNTH, "upstream request timeout")),
            CallResult::TimedOut
        );
        let refused = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
        assert_eq!(
            classify(resp(503, SYNTH, refused)),
            CallResult::Unreachable(refused.into())
        );
        assert!(matches!(
            classify(resp(503, SYNTH, "no healthy upstream")),
            CallResult::Unreachable(_)
        ));
    }

    #[test]
    fn envoys_502_for_a_function_that_does_not_speak_http_is_a_transport_failure() {
        let broken = "upstream connect error or disconnect/reset before headers. reset reason: protocol error";
        assert_eq!(
            classify(resp(502, SYNTH, broken)),
            CallResult::Unreachable(broken.into())
        );
        // A function's own 502, even a text/plain one, passes through.
        assert!(matches!(
            classify(resp(502, SYNTH, "function502")),
            CallResult::Function(_)
        ));
        let own = &[("content-type", "text/plain"), ("x-fn", "1")];
        assert!(matches!(
            classify(resp(502, own, broken)),
            CallResult::Function(_)
        ));
    }

    #[test]
    fn a_functions_own_503_and_504_pass_through() {
        let own = &[
            ("content-type", "text/plain"),
            ("content-length", "24"),
            ("server", "fn"),
        ];
        assert!(matches!(
            classify(resp(504, own, "upstream request timeout")),
            CallResult::Function(_)
        ));
        assert!(matches!(
            classify(resp(503, SYNTH, "busy")),
            CallResult::Function(_)
        ));
        assert!(matches!(
            classify(resp(503, &[], "")),
            CallResult::Function(_)
        ));
    }

    #[test]
    fn the_routers_failures_map_like_the_callouts_and_everything_else_passes() {
        assert_eq!(
            router_failure("response_timeout"),
            Some(CallResult::TimedOut)
        );
        assert_eq!(
            router_failure("upstream_per_try_timeout"),
            Some(CallResult::TimedOut)
        );
        let refused = "upstream_reset_before_response_started{remote_connection_failure}";
        assert_eq!(
            router_failure(refused),
            Some(CallResult::Unreachable(refused.into()))
        );
        assert!(matches!(
            router_failure("no_healthy_upstream"),
            Some(CallResult::Unreachable(_))
        ));
        for passes in [
            "via_upstream",
            "local_rate_limited",
            "",
            "request_payload_too_large",
        ] {
            assert_eq!(router_failure(passes), None, "{passes}");
        }
    }

    #[test]
    fn framing_keeps_what_envoy_drops_from_empty_bodies_aside() {
        let reply = |hs: &[(&str, &str)], body: &str| LocalReply {
            status: 200,
            headers: crate::headers::owned(hs),
            body: body.as_bytes().to_vec(),
        };
        let csv = [("content-type", "text/csv"), ("content-length", "42")];
        // HEAD: the GET's length and type come back after Envoy drops them.
        let f = frame(reply(&csv, ""), true);
        assert_eq!(
            f.reply.headers,
            crate::headers::owned(&[("content-type", "text/csv")])
        );
        assert_eq!(
            f.restore,
            crate::headers::owned(&[("content-type", "text/csv"), ("content-length", "42")])
        );
        // GET with an empty body: only the type (Envoy sends length 0).
        let f = frame(reply(&csv[..1], ""), false);
        assert_eq!(
            f.restore,
            crate::headers::owned(&[("content-type", "text/csv")])
        );
        // A body: Envoy frames it, nothing to restore, no stale length.
        let f = frame(reply(&[("content-length", "99"), ("x", "1")], "ok"), true);
        assert_eq!(f.reply.headers, crate::headers::owned(&[("x", "1")]));
        assert!(f.restore.is_empty());
        // A length that is not a number is not restored.
        let f = frame(reply(&[("content-length", "4x")], ""), true);
        assert!(f.restore.is_empty() && f.reply.headers.is_empty());
    }

    #[test]
    fn passthrough_strips_hop_by_hop_but_keeps_repeats() {
        let r = resp(
            201,
            &[
                ("set-cookie", "a=1"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("content-length", "2"),
                ("transfer-encoding", "chunked"),
                ("set-cookie", "b=2"),
            ],
            "ok",
        );
        let out = passthrough(r);
        assert_eq!(out.status, 201);
        assert_eq!(out.body, b"ok");
        assert_eq!(
            out.headers,
            crate::headers::owned(&[
                ("set-cookie", "a=1"),
                ("content-length", "2"),
                ("set-cookie", "b=2")
            ])
        );
    }

    #[test]
    fn error_replies_are_json_with_code_route_and_request_id() {
        let r = ErrorReply::new(Failure::FunctionTimeout, "no answer within 100 ms")
            .render("hello \"x\"", Some("rid"));
        assert_eq!(r.status, 504);
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "function_timeout");
        assert_eq!(v["route"], "hello \"x\"");
        assert_eq!(v["request_id"], "rid");
        assert_eq!(Failure::RequestBodyTooLarge.status(), 413);
        assert_eq!(Failure::FunctionUnreachable.status(), 502);
        assert_eq!(Failure::FunctionResponseTooLarge.status(), 502);
    }
}
