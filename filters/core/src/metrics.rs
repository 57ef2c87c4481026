//! The filters' metrics, declared once: their names, labels and kinds.
//!
//! Envoy keeps proxy-wasm metrics under the `wasmcustom.` namespace, which
//! its Prometheus endpoint strips. Labels travel inside the stat name as
//! `<family>.<label>=.=<value>;.;…`, and the `stats_config.stats_tags`
//! regexes in [`TAG_REGEXES`] (shipped in every config in `envoy/`) turn
//! them back into labels, so `/stats/prometheus` shows one family per
//! measurement:
//! `envoy_faas_requests_total{filter="aws-lambda",route="orders",outcome="timeout",fault="function"}`.
//!
//! A route's metrics are defined once, when its name is first known (at
//! configure time for a `routes` table), and kept across reconfigurations:
//! Envoy hands out a new id for every definition, even of a known name.

use crate::host::{Host, MetricKind};
use crate::outcome::Outcome;
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

/// Counter: requests on function routes, by how they ended.
pub const REQUESTS: &str = "envoy_faas_requests_total";
/// Histogram: milliseconds from sending the call to the function's answer.
pub const FUNCTION_LATENCY_MS: &str = "envoy_faas_function_latency_ms";
/// Histogram: bytes of the client's request body sent to the function.
pub const REQUEST_BODY_BYTES: &str = "envoy_faas_request_body_bytes";
/// Histogram: bytes of the function's response body as received.
pub const RESPONSE_BODY_BYTES: &str = "envoy_faas_response_body_bytes";
/// Streamed answers (in place, on routes that stream: Lambda's
/// `RESPONSE_STREAM`), defined on a route's first streamed answer:
/// counter of the body bytes passed to clients; histograms of the
/// milliseconds from sending the request to the first body byte passed
/// on, and to the stream's end; counter of streams that failed after
/// their first byte (the client's stream was reset), by `outcome`
/// (`function_error`, `invalid_response`).
pub const STREAM_BYTES: &str = "envoy_faas_stream_bytes_total";
pub const STREAM_FIRST_BYTE_MS: &str = "envoy_faas_stream_first_byte_ms";
pub const STREAM_DURATION_MS: &str = "envoy_faas_stream_duration_ms";
pub const STREAM_RESETS: &str = "envoy_faas_stream_resets_total";
/// Gauge: the VM's linear memory (it only grows; a leak shows here first).
pub const WASM_MEMORY_BYTES: &str = "envoy_faas_wasm_memory_bytes";
/// Gauge, always 1: the module's version and commit as labels.
pub const BUILD_INFO: &str = "envoy_faas_build_info";

/// Platform credentials (`aws-lambda`), per `source`: refreshes started,
/// succeeded and failed, requests refused for want of credentials, and
/// the seconds until the current credentials expire (gauge).
pub const CREDENTIALS_REFRESH_ATTEMPTS: &str = "envoy_faas_credentials_refresh_attempts_total";
pub const CREDENTIALS_REFRESHES: &str = "envoy_faas_credentials_refreshes_total";
pub const CREDENTIALS_REFRESH_FAILURES: &str = "envoy_faas_credentials_refresh_failures_total";
pub const CREDENTIALS_REQUESTS_REFUSED: &str = "envoy_faas_credentials_requests_refused_total";
pub const CREDENTIALS_EXPIRY_SECONDS: &str = "envoy_faas_credentials_expiry_seconds";

/// Every label the filters use, with the `stats_tags` regex that extracts
/// it: the first group is cut from the name, the second is the value.
pub const TAG_REGEXES: [(&str, &str); 7] = [
    ("filter", r"(filter=\.=(.*?);\.;)"),
    ("route", r"(route=\.=(.*?);\.;)"),
    ("outcome", r"(outcome=\.=(.*?);\.;)"),
    ("fault", r"(fault=\.=(.*?);\.;)"),
    ("source", r"(source=\.=(.*?);\.;)"),
    ("version", r"(version=\.=(.*?);\.;)"),
    ("commit", r"(commit=\.=(.*?);\.;)"),
];

/// Route label of requests on an Envoy route without a name.
pub const UNNAMED_ROUTE: &str = "*";

/// Routes beyond this many distinct names share the label `_other`: a
/// bound on the number of series one plugin can create.
pub const MAX_ROUTES: usize = 10_000;
const OVERFLOW_ROUTE: &str = "_other";

/// The stat name of `family` with `labels`. A `;` in a value would end the
/// value early, so it is replaced by `_`.
pub fn stat_name(family: &str, labels: &[(&str, &str)]) -> String {
    let mut name = String::with_capacity(family.len() + 1 + labels.len() * 32);
    name.push_str(family);
    name.push('.');
    for (label, value) in labels {
        name.push_str(label);
        name.push_str("=.=");
        name.push_str(&value.replace(';', "_"));
        name.push_str(";.;");
    }
    name
}

/// One route's metrics (ids from [`Host::metric`]; `None` if the host
/// refused a definition, which then just goes unrecorded).
#[derive(Debug)]
pub struct RouteMetrics {
    /// The `route` label.
    pub route: String,
    filter: &'static str,
    requests: [Option<u32>; Outcome::ALL.len()],
    latency_ms: Option<u32>,
    request_body_bytes: Option<u32>,
    response_body_bytes: Option<u32>,
    /// Defined on the route's first streamed answer: most routes never
    /// stream, and each definition is a stat in Envoy.
    stream: OnceCell<StreamMetrics>,
}

/// A route's streamed-answer metrics (see [`STREAM_BYTES`]).
#[derive(Debug)]
pub struct StreamMetrics {
    bytes: Option<u32>,
    first_byte_ms: Option<u32>,
    duration_ms: Option<u32>,
    /// By outcome: `function_error`, `invalid_response`.
    resets: [Option<u32>; 2],
}

impl StreamMetrics {
    pub fn bytes(&self, host: &dyn Host, bytes: usize) {
        if let Some(id) = self.bytes.filter(|_| bytes > 0) {
            host.increment(id, bytes as u64);
        }
    }

    pub fn first_byte(&self, host: &dyn Host, ms: u64) {
        record(host, self.first_byte_ms, ms);
    }

    pub fn duration(&self, host: &dyn Host, ms: u64) {
        record(host, self.duration_ms, ms);
    }

    /// A stream that failed after its first byte, by its outcome.
    pub fn reset(&self, host: &dyn Host, outcome: Outcome) {
        let at = usize::from(outcome != Outcome::FunctionError);
        if let Some(Some(id)) = self.resets.get(at) {
            host.increment(*id, 1);
        }
    }
}

impl RouteMetrics {
    /// Defines every metric of `route` (one definition each, up front, so
    /// every outcome shows from the start, at zero).
    pub fn define(host: &dyn Host, filter: &'static str, route: &str) -> RouteMetrics {
        let scoped = [("filter", filter), ("route", route)];
        let histogram = |family| host.metric(MetricKind::Histogram, &stat_name(family, &scoped));
        RouteMetrics {
            route: route.to_string(),
            filter,
            stream: OnceCell::new(),
            requests: Outcome::ALL.map(|outcome| {
                let labels = [
                    ("filter", filter),
                    ("route", route),
                    ("outcome", outcome.label()),
                    ("fault", outcome.fault().label()),
                ];
                host.metric(MetricKind::Counter, &stat_name(REQUESTS, &labels))
            }),
            latency_ms: histogram(FUNCTION_LATENCY_MS),
            request_body_bytes: histogram(REQUEST_BODY_BYTES),
            response_body_bytes: histogram(RESPONSE_BODY_BYTES),
        }
    }

    pub fn count(&self, host: &dyn Host, outcome: Outcome) {
        if let Some(Some(id)) = self.requests.get(outcome.index()) {
            host.increment(*id, 1);
        }
    }

    pub fn function_latency(&self, host: &dyn Host, ms: u64) {
        record(host, self.latency_ms, ms);
    }

    pub fn request_body(&self, host: &dyn Host, bytes: usize) {
        record(host, self.request_body_bytes, bytes as u64);
    }

    pub fn response_body(&self, host: &dyn Host, bytes: usize) {
        record(host, self.response_body_bytes, bytes as u64);
    }

    /// The streamed-answer metrics, defined on first use.
    pub fn stream(&self, host: &dyn Host) -> &StreamMetrics {
        self.stream.get_or_init(|| {
            let scoped = [("filter", self.filter), ("route", self.route.as_str())];
            let define = |kind, family| host.metric(kind, &stat_name(family, &scoped));
            let reset = |outcome: Outcome| {
                let labels = [
                    ("filter", self.filter),
                    ("route", self.route.as_str()),
                    ("outcome", outcome.label()),
                ];
                host.metric(MetricKind::Counter, &stat_name(STREAM_RESETS, &labels))
            };
            StreamMetrics {
                bytes: define(MetricKind::Counter, STREAM_BYTES),
                first_byte_ms: define(MetricKind::Histogram, STREAM_FIRST_BYTE_MS),
                duration_ms: define(MetricKind::Histogram, STREAM_DURATION_MS),
                resets: [
                    reset(Outcome::FunctionError),
                    reset(Outcome::InvalidResponse),
                ],
            }
        })
    }
}

fn record(host: &dyn Host, metric: Option<u32>, value: u64) {
    if let Some(id) = metric {
        host.record(id, value);
    }
}

/// The routes' metrics of one filter, by route label; lives as long as the
/// VM (across reconfigurations). Sorted by label: a lookup is a binary
/// search (14 comparisons at [`MAX_ROUTES`]), and the module carries no
/// second hash-map instance for it.
#[derive(Debug)]
pub struct Registry {
    filter: &'static str,
    routes: RefCell<Vec<Rc<RouteMetrics>>>,
}

impl Registry {
    pub fn new(filter: &'static str) -> Registry {
        Registry {
            filter,
            routes: RefCell::new(Vec::new()),
        }
    }

    fn position(&self, route: &str) -> Result<usize, usize> {
        self.routes
            .borrow()
            .binary_search_by(|m| m.route.as_str().cmp(route))
    }

    /// The metrics of `route`, defined on first use. Past [`MAX_ROUTES`]
    /// names, new routes share the `_other` label.
    pub fn route(&self, host: &dyn Host, route: &str) -> Rc<RouteMetrics> {
        if let Some(found) = self.get(route) {
            return found;
        }
        let full = self.routes.borrow().len() >= MAX_ROUTES;
        let label = if full { OVERFLOW_ROUTE } else { route };
        if let Some(found) = self.get(label) {
            return found;
        }
        let defined = Rc::new(RouteMetrics::define(host, self.filter, label));
        let at = self.position(label).unwrap_or_else(|insert_at| insert_at);
        self.routes.borrow_mut().insert(at, Rc::clone(&defined));
        defined
    }

    /// Looks `route` up without defining it.
    pub fn get(&self, route: &str) -> Option<Rc<RouteMetrics>> {
        let i = self.position(route).ok()?;
        self.routes.borrow().get(i).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, Shared};

    fn host() -> FakeHost {
        FakeHost::new(Rc::new(Shared::default()))
    }

    #[test]
    fn names_carry_labels_the_tag_regexes_take_back_out() {
        let name = stat_name(
            REQUESTS,
            &[("route", "orders.v1:80"), ("outcome", "timeout")],
        );
        assert_eq!(
            name,
            "envoy_faas_requests_total.route=.=orders.v1:80;.;outcome=.=timeout;.;"
        );
        assert_eq!(
            stat_name(REQUESTS, &[("route", "a;b")]),
            "envoy_faas_requests_total.route=.=a_b;.;"
        );
        for (label, regex) in TAG_REGEXES {
            assert_eq!(regex, format!(r"({label}=\.=(.*?);\.;)"));
        }
    }

    #[test]
    fn a_route_defines_every_outcome_and_counts_the_one_it_ends_with() {
        let host = host();
        let route = RouteMetrics::define(&host, "openfunction", "r1");
        route.count(&host, Outcome::Timeout);
        route.count(&host, Outcome::Timeout);
        route.function_latency(&host, 12);
        let timeout = "envoy_faas_requests_total.filter=.=openfunction;.;route=.=r1;.;outcome=.=timeout;.;fault=.=function;.;";
        assert_eq!(host.metric_value(timeout), 2);
        assert_eq!(
            host.metric_value(
                "envoy_faas_function_latency_ms.filter=.=openfunction;.;route=.=r1;.;"
            ),
            12
        );
        let defined = host.defined();
        assert_eq!(defined.len(), Outcome::ALL.len() + 3);
        assert!(defined.contains(&format!("Counter:{timeout}")));
        assert!(defined.contains(
            &"Histogram:envoy_faas_request_body_bytes.filter=.=openfunction;.;route=.=r1;.;"
                .to_string()
        ));
    }

    #[test]
    fn the_registry_defines_each_route_once_and_bounds_the_labels() {
        let host = host();
        let registry = Registry::new("aws-lambda");
        let first = registry.route(&host, "a");
        let again = registry.route(&host, "a");
        assert!(Rc::ptr_eq(&first, &again));
        assert_eq!(host.defined().len(), Outcome::ALL.len() + 3);
        for i in 0..MAX_ROUTES {
            registry.route(&host, &format!("r{i}"));
        }
        let late = registry.route(&host, "one-too-many");
        assert_eq!(late.route, "_other");
        assert!(Rc::ptr_eq(&late, &registry.route(&host, "another")));
        assert!(registry.get("one-too-many").is_none());
    }
}
