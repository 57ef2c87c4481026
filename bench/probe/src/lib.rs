//! A benchmark probe, never shipped. Its plugin configuration is one line,
//! `<mode> <cluster> <authority>`, and it does the least a function gateway
//! filter can do in each of two designs, so `make bench` can tell Envoy's
//! cost from ours:
//!
//! - `callout`: buffer the request, `dispatch_http_call` it to the cluster
//!   and answer the client with the callout's status and body. This is the
//!   envoy-faas design (a local reply), minus config lookup, request
//!   building, signing and response mapping.
//! - `forward`: buffer the request, rewrite `:authority`, add one header,
//!   and let the router send it upstream, as Envoy's native `aws_lambda`
//!   filter does. The alternative design.
//! - `rewrite`: the same rewrite, but in the request-headers callback, the
//!   body streaming past unheld: the floor of `forwarding: route`.
//! - `hostcalls <kind> <n>`: make `n` host calls of one kind per request
//!   (`none`, `counter`, `histogram`, `clock`, `route_name`,
//!   `set_property`), then answer `200 ok` locally. Against `none`, this
//!   prices one host call in Envoy, which is what observability costs.
//!
//! - `sha256 <bytes>`: hash `bytes` bytes with the filters' SHA-256 (the
//!   `sha2` crate, built as they build it) and answer `200` with the
//!   hashing time in `x-probe-ns`, read from Envoy's clock around the hash
//!   alone: SHA-256's speed inside Envoy's V8, without a request around it.
//!
//! Failures answer 500 instead of panicking, like the real filters.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};
use sha2::{Digest, Sha256};
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { plan: None }) });
}}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Callout,
    Forward,
    Rewrite,
    HostCalls(HostCall, usize),
    Sha256(usize),
}

#[derive(Clone, Copy, PartialEq)]
enum HostCall {
    None,
    Counter,
    Histogram,
    Clock,
    RouteName,
    SetProperty,
}

impl HostCall {
    fn parse(kind: &str) -> Option<HostCall> {
        Some(match kind {
            "none" => HostCall::None,
            "counter" => HostCall::Counter,
            "histogram" => HostCall::Histogram,
            "clock" => HostCall::Clock,
            "route_name" => HostCall::RouteName,
            "set_property" => HostCall::SetProperty,
            _ => return None,
        })
    }
}

/// Property names for `set_property`: each set once per request, as the
/// filters' access-log facts are.
const PROPERTIES: [&str; 8] = [
    "probe.a", "probe.b", "probe.c", "probe.d", "probe.e", "probe.f", "probe.g", "probe.h",
];

struct Plan {
    mode: Mode,
    cluster: String,
    authority: String,
    /// Metric ids for the `counter` and `histogram` host calls.
    metrics: Vec<u32>,
    /// The bytes the `sha256` mode hashes: allocated once, as a request
    /// body already in the VM would be.
    input: Vec<u8>,
}

struct Root {
    plan: Option<Rc<Plan>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let words: Vec<&str> = text.split_whitespace().collect();
        let (mode, cluster, authority) = match words.as_slice() {
            ["callout", c, a] => (Mode::Callout, *c, *a),
            ["forward", c, a] => (Mode::Forward, *c, *a),
            ["rewrite", c, a] => (Mode::Rewrite, *c, *a),
            ["sha256", n] => match n.parse() {
                Ok(n) => (Mode::Sha256(n), "", ""),
                Err(_) => return false,
            },
            ["hostcalls", kind, n] => match (HostCall::parse(kind), n.parse()) {
                (Some(kind), Ok(n)) => (Mode::HostCalls(kind, n), "", ""),
                _ => return false,
            },
            _ => return false,
        };
        let kind = match mode {
            Mode::HostCalls(HostCall::Histogram, _) => MetricType::Histogram,
            _ => MetricType::Counter,
        };
        let metrics = (0..4)
            .filter_map(|i| hostcalls::define_metric(kind, &format!("probe_{i}")).ok())
            .collect();
        self.plan = Some(Rc::new(Plan {
            mode,
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            metrics,
            input: match mode {
                Mode::Sha256(n) => vec![b'x'; n],
                _ => Vec::new(),
            },
        }));
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            plan: self.plan.clone(),
            body_size: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    plan: Option<Rc<Plan>>,
    body_size: usize,
}

fn internal_error() {
    let _ = hostcalls::send_http_response(500, vec![], Some(b"probe failed"));
}

impl Stream {
    /// The whole request is buffered: act on it.
    fn complete(&mut self) -> Action {
        let Some(plan) = self.plan.clone() else {
            return Action::Continue;
        };
        match plan.mode {
            Mode::Sha256(_) => {
                let input = plan.input.as_slice();
                let start = hostcalls::get_current_time().ok();
                let digest = Sha256::digest(std::hint::black_box(&input));
                let end = hostcalls::get_current_time().ok();
                let ns = match (start, end) {
                    (Some(s), Some(e)) => e.duration_since(s).map_or(0, |d| d.as_nanos()),
                    _ => 0,
                };
                let ns = ns.to_string();
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                let _ = hostcalls::send_http_response(
                    200,
                    vec![("x-probe-ns", ns.as_str())],
                    Some(hex.as_bytes()),
                );
                Action::Pause
            }
            Mode::HostCalls(kind, n) => {
                host_calls(&plan, kind, n);
                let _ = hostcalls::send_http_response(200, vec![], Some(b"ok"));
                Action::Pause
            }
            Mode::Forward | Mode::Rewrite => {
                let ok = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    ":authority",
                    Some(&plan.authority),
                )
                .and(hostcalls::add_map_value(
                    MapType::HttpRequestHeaders,
                    "x-probe",
                    "forward",
                ));
                if ok.is_err() {
                    internal_error();
                    return Action::Pause;
                }
                Action::Continue
            }
            Mode::Callout => {
                let body = if self.body_size > 0 {
                    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, self.body_size)
                        .ok()
                        .flatten()
                } else {
                    None
                };
                let headers = vec![
                    (":method", "POST"),
                    (":path", "/"),
                    (":authority", plan.authority.as_str()),
                ];
                if hostcalls::dispatch_http_call(
                    &plan.cluster,
                    headers,
                    body.as_deref(),
                    vec![],
                    Duration::from_secs(10),
                )
                .is_err()
                {
                    internal_error();
                }
                Action::Pause
            }
        }
    }
}

/// `n` host calls of `kind`, their results ignored.
fn host_calls(plan: &Plan, kind: HostCall, n: usize) {
    for i in 0..n {
        let metric = plan.metrics.get(i % 4).copied().unwrap_or(0);
        match kind {
            HostCall::None => {}
            HostCall::Counter => {
                let _ = hostcalls::increment_metric(metric, 1);
            }
            HostCall::Histogram => {
                let _ = hostcalls::record_metric(metric, 42);
            }
            HostCall::Clock => {
                std::hint::black_box(std::time::SystemTime::now());
            }
            HostCall::RouteName => {
                let _ = std::hint::black_box(hostcalls::get_property(vec!["xds", "route_name"]));
            }
            HostCall::SetProperty => {
                // A fresh name per call: the filters create each fact once per
                // request, and creating the filter-state entry is the cost.
                let name = PROPERTIES.get(i % 8).copied().unwrap_or("probe.a");
                let name = format!("{name}{}", i / 8);
                let _ = hostcalls::set_property(vec![name.as_str()], Some(b"function_timeout"));
            }
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        if end_of_stream || self.plan.as_ref().is_some_and(|p| p.mode == Mode::Rewrite) {
            return self.complete();
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.plan.as_ref().is_some_and(|p| p.mode == Mode::Rewrite) {
            return Action::Continue; // rewritten in headers; the body streams
        }
        self.body_size = body_size;
        if end_of_stream {
            return self.complete();
        }
        Action::Pause
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _t: usize) {
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| String::from_utf8(s).ok())
            .and_then(|s| s.parse::<u32>().ok());
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match status {
            Some(status) => {
                let _ = hostcalls::send_http_response(
                    status,
                    vec![("content-type", "application/json")],
                    Some(&body),
                );
            }
            None => internal_error(),
        }
    }
}
