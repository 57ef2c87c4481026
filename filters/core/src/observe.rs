//! What one request on a function route leaves behind: its metrics and
//! the facts Envoy's access log can print.
//!
//! The facts are filter state set through `set_property`, read in an
//! access-log format as `%FILTER_STATE(wasm.faas.<fact>:PLAIN)%`: the
//! function's host, the outcome, the error code, the function's own status
//! and its latency. Each is set once, when the request's outcome is known,
//! before the answer is sent. The route is Envoy's own `%ROUTE_NAME%`, and
//! the fault follows from the outcome (`crate::outcome`). Every fact costs a
//! host call (about 0.7 µs in Envoy 1.40, measured by `make bench`), so
//! only facts Envoy cannot print itself are written, and the optional ones
//! only when they exist.

use crate::host::Host;
use crate::metrics::{RouteMetrics, StreamMetrics};
use crate::outcome::{Failure, Outcome};
use std::cell::Cell;
use std::rc::Rc;
use std::time::SystemTime;

/// The access-log facts, by filter-state key (Envoy adds `wasm.`).
pub mod fact {
    pub const FUNCTION_HOST: &str = "faas.function_host";
    pub const OUTCOME: &str = "faas.outcome";
    pub const ERROR: &str = "faas.error";
    pub const FUNCTION_STATUS: &str = "faas.function_status";
    pub const FUNCTION_LATENCY_MS: &str = "faas.function_latency_ms";
    /// Every fact the filters write.
    pub const ALL: [&str; 5] = [
        FUNCTION_HOST,
        OUTCOME,
        ERROR,
        FUNCTION_STATUS,
        FUNCTION_LATENCY_MS,
    ];
}

/// The switches live with the rest of the compiled config.
pub use crate::config::Observability;

/// One request's observation, shared by the stream and (while the stream
/// waits for a withheld body) the root context that may answer it.
#[derive(Debug)]
pub struct Observation {
    /// The route's label for error bodies, when the request start already
    /// knew it: the Envoy route name, or `*` (metrics may fold it into
    /// `_other`).
    pub label: Option<String>,
    metrics: Option<Rc<RouteMetrics>>,
    access_log_fields: bool,
    sent_at: Cell<Option<SystemTime>>,
    function_status: Cell<Option<u16>>,
    latency_ms: Cell<Option<u64>>,
    finished: Cell<bool>,
}

impl Observation {
    pub fn new(
        label: Option<String>,
        metrics: Option<Rc<RouteMetrics>>,
        access_log_fields: bool,
    ) -> Observation {
        Observation {
            label,
            metrics,
            access_log_fields,
            sent_at: Cell::new(None),
            function_status: Cell::new(None),
            latency_ms: Cell::new(None),
            finished: Cell::new(false),
        }
    }

    /// The call to the function was sent at `now` with a body of `bytes`.
    /// The call left at `now`, with `bytes` of body (`None`: streamed in
    /// place, its size unknown here, so not recorded).
    pub fn sent(&self, host: &dyn Host, now: SystemTime, bytes: Option<usize>) {
        self.sent_at.set(Some(now));
        if let (Some(m), Some(bytes)) = (&self.metrics, bytes) {
            m.request_body(host, bytes);
        }
    }

    /// An answer to the call arrived at `now`: Envoy's own failure
    /// (`status` `None`), or the function's with its status and body size.
    pub fn answered(
        &self,
        host: &dyn Host,
        now: SystemTime,
        status: Option<u16>,
        bytes: Option<usize>,
    ) {
        let latency = self
            .sent_at
            .get()
            .map(|sent| now.duration_since(sent).map_or(0, |d| d.as_millis() as u64));
        self.latency_ms.set(latency);
        self.function_status.set(status);
        if let Some(m) = &self.metrics {
            if let Some(ms) = latency {
                m.function_latency(host, ms);
            }
            if let (Some(_), Some(bytes)) = (status, bytes) {
                m.response_body(host, bytes);
            }
        }
    }

    /// Milliseconds from sending the call to `now` (`None`: not sent).
    pub fn since_sent_ms(&self, now: SystemTime) -> Option<u64> {
        let sent = self.sent_at.get()?;
        Some(now.duration_since(sent).map_or(0, |d| d.as_millis() as u64))
    }

    /// The route's streamed-answer metrics (defined on first use), when
    /// metrics are on.
    pub fn stream_metrics(&self, host: &dyn Host) -> Option<&StreamMetrics> {
        self.metrics.as_ref().map(|m| m.stream(host))
    }

    /// Whether the request already has its outcome.
    pub fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// The function's answer, mapped to a response with `status`.
    pub fn replied(&self, host: &dyn Host, status: u16, function_host: &str) {
        self.finish(host, Outcome::of_status(status), None, function_host);
    }

    /// The filter answered with an error.
    pub fn failed(&self, host: &dyn Host, failure: Failure, function_host: &str) {
        self.finish(host, failure.outcome(), Some(failure.code()), function_host);
    }

    /// The stream ends without an answer from this filter.
    pub fn abandoned(&self, host: &dyn Host, function_host: &str) {
        self.finish(host, Outcome::ClientClosed, None, function_host);
    }

    /// Records the outcome, once.
    fn finish(&self, host: &dyn Host, outcome: Outcome, error: Option<&str>, function_host: &str) {
        if self.finished.replace(true) {
            return;
        }
        if let Some(m) = &self.metrics {
            m.count(host, outcome);
        }
        if !self.access_log_fields {
            return;
        }
        host.set_property(fact::FUNCTION_HOST, function_host.as_bytes());
        host.set_property(fact::OUTCOME, outcome.label().as_bytes());
        if let Some(code) = error {
            host.set_property(fact::ERROR, code.as_bytes());
        }
        if let Some(status) = self.function_status.get() {
            host.set_property(fact::FUNCTION_STATUS, status.to_string().as_bytes());
        }
        if let Some(ms) = self.latency_ms.get() {
            host.set_property(fact::FUNCTION_LATENCY_MS, ms.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, Shared};
    use std::time::Duration;

    fn observed(host: &FakeHost, metrics: bool, facts: bool) -> Observation {
        let m = metrics.then(|| Rc::new(RouteMetrics::define(host, "openfunction", "r")));
        Observation::new(Some("r".into()), m, facts)
    }

    const LABELS: &str = "filter=.=openfunction;.;route=.=r;.;";

    #[test]
    fn a_function_answer_records_latency_sizes_status_and_facts() {
        let host = FakeHost::new(Rc::new(Shared::default()));
        let o = observed(&host, true, true);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        o.sent(&host, t0, Some(1024));
        o.answered(&host, t0 + Duration::from_millis(37), Some(200), Some(5));
        o.replied(&host, 201, "fn.example");
        o.replied(&host, 500, "fn.example"); // only the first outcome counts
        let m = |family: &str, tail: &str| host.metric_value(&format!("{family}.{LABELS}{tail}"));
        assert_eq!(
            m(
                "envoy_faas_requests_total",
                "outcome=.=function_2xx;.;fault=.=none;.;"
            ),
            1
        );
        assert_eq!(
            m(
                "envoy_faas_requests_total",
                "outcome=.=function_5xx;.;fault=.=function;.;"
            ),
            0
        );
        assert_eq!(m("envoy_faas_function_latency_ms", ""), 37);
        assert_eq!(m("envoy_faas_request_body_bytes", ""), 1024);
        assert_eq!(m("envoy_faas_response_body_bytes", ""), 5);
        let facts = host.properties();
        assert!(facts.iter().all(|(k, _)| fact::ALL.contains(&k.as_str())));
        assert_eq!(
            facts,
            vec![
                ("faas.function_host".to_string(), "fn.example".to_string()),
                ("faas.outcome".into(), "function_2xx".into()),
                ("faas.function_status".into(), "200".into()),
                ("faas.function_latency_ms".into(), "37".into()),
            ]
        );
    }

    #[test]
    fn an_error_records_its_code_and_fault_and_envoys_failures_have_no_status() {
        let host = FakeHost::new(Rc::new(Shared::default()));
        let o = observed(&host, true, true);
        let t0 = SystemTime::UNIX_EPOCH;
        o.sent(&host, t0, Some(0));
        o.answered(&host, t0 + Duration::from_millis(3000), None, Some(24));
        o.failed(&host, Failure::FunctionTimeout, "h");
        let facts = host.properties();
        assert!(facts.contains(&("faas.error".into(), "function_timeout".into())));
        assert!(facts.contains(&("faas.outcome".into(), "timeout".into())));
        assert!(!facts.iter().any(|(k, _)| k == "faas.function_status"));
        assert_eq!(
            host.metric_value(&format!("envoy_faas_response_body_bytes.{LABELS}")),
            0
        );
    }

    #[test]
    fn switched_off_it_records_nothing() {
        let host = FakeHost::new(Rc::new(Shared::default()));
        let o = observed(&host, false, false);
        o.sent(&host, SystemTime::UNIX_EPOCH, Some(10));
        o.abandoned(&host, "h");
        assert!(host.properties().is_empty());
        assert!(host.defined().is_empty());
        assert!(o.is_finished());
    }

    #[test]
    fn a_request_abandoned_before_the_call_has_no_latency() {
        let host = FakeHost::new(Rc::new(Shared::default()));
        let o = observed(&host, true, true);
        o.abandoned(&host, "h");
        assert!(host
            .properties()
            .contains(&("faas.outcome".into(), "client_closed".into())));
        assert!(!host
            .properties()
            .iter()
            .any(|(k, _)| k == "faas.function_latency_ms"));
    }
}
