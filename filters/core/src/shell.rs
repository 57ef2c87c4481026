//! The thin proxy-wasm shell: moves data between Envoy and the pure core.
//!
//! Host calls are made through `proxy_wasm::hostcalls` (which return
//! `Result`) rather than the SDK's trait helpers (which `unwrap`), and
//! headers are always read as bytes: the SDK's string getters panic on a
//! header value that is not UTF-8, and Envoy accepts such values from
//! clients. A panic would kill the VM for every plugin sharing it.

use crate::config::{compile, PluginConfig};
use crate::headers::HeaderList;
use crate::host::{Host, MetricKind};
use crate::integration::Integration;
use crate::layout::{self, BodyLayout, Placement};
use crate::metrics::{self, Registry};
use crate::observe::Observation;
use crate::request::{Callout, ClientRequest};
use crate::response::{classify, CallResult, CalloutResponse, ErrorReply, Failure, LocalReply};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// Registers the root context of integration `I`; call from `proxy_wasm::main!`.
pub fn install<I: Integration>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root::<I> {
            config: None,
            metrics: Rc::new(Registry::new(I::NAME)),
            memory_gauge: None,
            memory_pages: Cell::new(0),
            body_watch: Rc::new(BodyWatch::default()),
        })
    });
}

/// The module's linear memory in 64 KiB pages (0 off wasm, for host tests).
fn memory_pages() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// [`Host`] over proxy-wasm's host calls.
pub struct WasmHost;

impl Host for WasmHost {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }

    fn dispatch(&self, call: &Callout) -> Result<u32, String> {
        let headers = crate::headers::borrowed(&call.headers);
        let body = (!call.body.is_empty()).then_some(call.body.as_slice());
        hostcalls::dispatch_http_call(&call.cluster, headers, body, vec![], call.timeout).map_err(
            |status| {
                format!(
                    "could not call cluster \"{}\" ({status:?}); does the cluster exist?",
                    call.cluster
                )
            },
        )
    }

    fn metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment(&self, metric: u32, by: u64) {
        let _ = hostcalls::increment_metric(metric, i64::try_from(by).unwrap_or(i64::MAX));
    }

    fn record(&self, metric: u32, value: u64) {
        let _ = hostcalls::record_metric(metric, value);
    }

    /// A fact the host refuses is only missing from the access log.
    fn set_property(&self, name: &str, value: &[u8]) {
        let _ = hostcalls::set_property(vec![name], Some(value));
    }
}

type Compiled<I> = PluginConfig<<I as Integration>::Global, <I as Integration>::Route>;

struct Root<I: Integration> {
    config: Option<Rc<Compiled<I>>>,
    /// Every route's metrics, kept across reconfigurations.
    metrics: Rc<Registry>,
    /// Gauge [`metrics::WASM_MEMORY_BYTES`]: the VM's linear memory, which
    /// only grows; a leak shows up here first.
    memory_gauge: Option<u32>,
    /// Last value recorded, so the gauge costs a host call only on growth.
    memory_pages: Cell<usize>,
    /// Requests paused in headers that wait for their body.
    body_watch: Rc<BodyWatch<I::Route>>,
}

/// How often the root checks paused requests for a withheld body.
const BODY_WATCH_PERIOD: Duration = Duration::from_millis(200);

/// Requests paused in headers (`stop_iteration`) that still wait for their
/// body. Envoy withholds the body from such a filter when the PluginConfig
/// lacks `allow_on_headers_stop_iteration`; the request would then hang
/// until a stream timeout. The root's tick finds these requests by
/// comparing Envoy's `request.total_size` with the headers' size, and
/// answers them with the fix instead.
struct BodyWatch<R> {
    waiting: RefCell<Vec<Waiting<R>>>,
    /// Set once a withheld body was seen: this plugin config runs without
    /// the flag, so later requests with a body are answered at once.
    flag_missing: Cell<bool>,
}

impl<R> Default for BodyWatch<R> {
    fn default() -> Self {
        BodyWatch {
            waiting: RefCell::new(Vec::new()),
            flag_missing: Cell::new(false),
        }
    }
}

struct Waiting<R> {
    context_id: u32,
    header_bytes: u64,
    route: Rc<R>,
    observation: Option<Rc<Observation>>,
}

impl<R> BodyWatch<R> {
    fn forget(&self, context_id: u32) {
        self.waiting
            .borrow_mut()
            .retain(|w| w.context_id != context_id);
    }
}

impl<I: Integration> Root<I> {
    fn record_memory(&self) {
        let pages = memory_pages();
        if let Some(gauge) = self
            .memory_gauge
            .filter(|_| pages != self.memory_pages.get())
        {
            self.memory_pages.set(pages);
            let _ = hostcalls::record_metric(gauge, (pages * 65536) as u64);
        }
    }
}

impl<I: Integration> Context for Root<I> {
    /// The answer to a call the background work dispatched.
    fn on_http_call_response(
        &mut self,
        token: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(config) = &self.config else {
            return;
        };
        let mut headers = header_map(MapType::HttpCallResponseHeaders);
        // No status at all: treat as Envoy's own failure.
        let status = proxy_status(&headers).unwrap_or(503);
        headers.retain(|(n, _)| !n.starts_with(':'));
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let response = CalloutResponse {
            status,
            headers,
            body,
        };
        I::on_background_response(&config.global, token, response, &WasmHost);
    }
}

impl<I: Integration> RootContext for Root<I> {
    /// Says which build runs, once per VM, and sets the build-info gauge.
    fn on_vm_start(&mut self, _size: usize) -> bool {
        log::info!(
            "{}: envoy-faas {} (commit {}) started",
            I::NAME,
            crate::VERSION,
            crate::COMMIT
        );
        let labels = [
            ("filter", I::NAME),
            ("version", crate::VERSION),
            ("commit", crate::COMMIT),
        ];
        let info = metrics::stat_name(metrics::BUILD_INFO, &labels);
        if let Some(gauge) = WasmHost.metric(MetricKind::Gauge, &info) {
            WasmHost.record(gauge, 1);
        }
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        if self.memory_gauge.is_none() {
            let name = metrics::stat_name(metrics::WASM_MEMORY_BYTES, &[("filter", I::NAME)]);
            self.memory_gauge = WasmHost.metric(MetricKind::Gauge, &name);
        }
        self.memory_pages.set(0);
        self.record_memory();
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match compile(&bytes, I::read_global, I::read_route) {
            Ok(compiled) => {
                if compiled.routes.is_empty() {
                    log::warn!(
                        "{}: the plugin configuration is empty: no function routes, every request passes through",
                        I::NAME
                    );
                } else {
                    log::info!("{}: configuration accepted", I::NAME);
                }
                let pausing = compiled
                    .routes
                    .iter()
                    .any(|r| I::common(r).body_layout.pauses_headers());
                let period = [
                    pausing.then_some(BODY_WATCH_PERIOD),
                    I::background_period(&compiled.global),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(Duration::ZERO);
                if let Err(status) = hostcalls::set_tick_period(period) {
                    log::error!("{}: could not set the tick period: {status:?}", I::NAME);
                }
                if compiled.observability.metrics {
                    for name in compiled.routes.names() {
                        self.metrics.route(&WasmHost, name);
                    }
                }
                self.body_watch = Rc::new(BodyWatch::default());
                self.config = Some(Rc::new(compiled));
                true
            }
            Err(e) => {
                // Returning false makes Envoy refuse this config (and keep
                // the previous one on an xDS/ECDS update).
                log::error!("{}: invalid configuration: {e}", I::NAME);
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        self.record_memory();
        Some(Box::new(Stream::<I> {
            context_id,
            config: self.config.clone(),
            metrics: Rc::clone(&self.metrics),
            body_watch: Rc::clone(&self.body_watch),
            route: None,
            observation: None,
            request: ClientRequest::default(),
            body_size: 0,
            answered: false,
            replied: false,
        }))
    }

    /// Runs the integration's background work, and answers the paused
    /// requests whose body Envoy withholds (see [`BodyWatch`]). Requests
    /// still waiting for a slow client stay.
    fn on_tick(&mut self) {
        if let Some(config) = &self.config {
            I::on_tick(&config.global, &WasmHost);
        }
        let waiting = std::mem::take(&mut *self.body_watch.waiting.borrow_mut());
        let mut still_waiting = Vec::with_capacity(waiting.len());
        for w in waiting {
            if hostcalls::set_effective_context(w.context_id).is_err() {
                continue; // the request is gone
            }
            let total = hostcalls::get_property(vec!["request", "total_size"])
                .ok()
                .flatten()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_le_bytes);
            match total {
                Some(total) if layout::body_withheld(total, w.header_bytes) => {
                    self.body_watch.flag_missing.set(true);
                    let error =
                        ErrorReply::new(Failure::BodyLayoutMisconfigured, layout::FLAG_MISSING);
                    let route = record_failure::<I>(w.observation.as_deref(), &w.route, &error);
                    let request_id = property(&["request", "id"]);
                    reject::<I>(&route, request_id.as_deref(), &error);
                }
                _ => still_waiting.push(w),
            }
        }
        // Streams may have registered while replies were sent.
        self.body_watch.waiting.borrow_mut().extend(still_waiting);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream<I: Integration> {
    context_id: u32,
    config: Option<Rc<Compiled<I>>>,
    metrics: Rc<Registry>,
    body_watch: Rc<BodyWatch<I::Route>>,
    /// Set when this request is ours to answer.
    route: Option<Rc<I::Route>>,
    /// Its metrics and access-log facts (unless both are switched off).
    observation: Option<Rc<Observation>>,
    request: ClientRequest,
    /// Body bytes Envoy has buffered so far.
    body_size: usize,
    /// The call was dispatched or the client already answered: later body
    /// or trailer callbacks must not act again.
    answered: bool,
    /// This filter sent the client's response: a response it did not send
    /// comes from the router (see `on_http_response_headers`).
    replied: bool,
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn property(path: &[&str]) -> Option<String> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .map(text)
}

fn header_map(map: MapType) -> HeaderList {
    hostcalls::get_map_bytes(map)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, text(value)))
        .collect()
}

/// The Envoy route name, else the name the route was configured under.
fn route_label<I: Integration>(route: &I::Route) -> String {
    property(&["xds", "route_name"])
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| I::common(route).route.clone())
}

/// Records `error` as the request's outcome (when observed) and returns the
/// route label for its body: the one the request started with, else the
/// Envoy route name read now.
fn record_failure<I: Integration>(
    observation: Option<&Observation>,
    route: &I::Route,
    error: &ErrorReply,
) -> String {
    if let Some(o) = observation {
        o.failed(&WasmHost, error.failure, &I::common(route).function.host);
    }
    observation
        .and_then(|o| o.label.clone())
        .unwrap_or_else(|| route_label::<I>(route))
}

/// Sends `reply` to the client of the effective context.
fn send<I: Integration>(reply: LocalReply) {
    let headers = crate::headers::borrowed(&reply.headers);
    if let Err(status) =
        hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
    {
        log::error!("{}: could not send the response: {status:?}", I::NAME);
    }
}

/// Answers with a JSON error and logs it (messages carry no secrets).
fn reject<I: Integration>(route: &str, request_id: Option<&str>, error: &ErrorReply) {
    log::warn!(
        "{}: route \"{route}\": {}: {}",
        I::NAME,
        error.code(),
        error.message
    );
    send::<I>(error.render(route, request_id));
}

impl<I: Integration> Stream<I> {
    /// The configured host of this route's function (access log).
    fn function_host(&self) -> &str {
        self.route
            .as_ref()
            .map_or("", |r| I::common(r).function.host.as_str())
    }

    /// Sends the function's mapped answer. Upstream, it gets a `date` if it
    /// has none: the listener's cache filter stores no answer without one
    /// (Envoy adds `date` only later, on the way to the client).
    fn send(&mut self, mut reply: LocalReply) {
        self.replied = true;
        let upstream = self
            .route
            .as_ref()
            .is_some_and(|r| I::common(r).placement == Placement::Upstream);
        if upstream && crate::headers::get(&reply.headers, "date").is_none() {
            let date = crate::calendar::http_date(SystemTime::now());
            reply.headers.push(("date".into(), date));
        }
        if let Some(o) = &self.observation {
            o.replied(&WasmHost, reply.status, self.function_host());
        }
        send::<I>(reply);
    }

    fn fail(&mut self, failure: Failure, message: &str) {
        self.reject(&ErrorReply::new(failure, message));
    }

    fn reject(&mut self, error: &ErrorReply) {
        self.replied = true;
        let route = self
            .route
            .as_ref()
            .map(|r| record_failure::<I>(self.observation.as_deref(), r, error))
            .unwrap_or_default();
        reject::<I>(&route, self.request.header("x-request-id"), error);
    }

    /// Starts observing a request on a function route. `route_name` is the
    /// Envoy route name when the lookup already read it; metrics need it
    /// (a property read costs about 1.2 µs, so only they fetch it).
    fn observe(&mut self, config: &Compiled<I>, route_name: Option<String>) {
        let wanted = config.observability;
        if !wanted.any() {
            return;
        }
        let (label, route_metrics) = if wanted.metrics {
            let label = route_name
                .or_else(|| property(&["xds", "route_name"]))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| metrics::UNNAMED_ROUTE.to_string());
            let route_metrics = self.metrics.route(&WasmHost, &label);
            (Some(label), Some(route_metrics))
        } else {
            (route_name, None)
        };
        self.observation = Some(Rc::new(Observation::new(
            label,
            route_metrics,
            wanted.access_log_fields,
        )));
    }

    /// Pauses request headers that a body follows, and watches for Envoy
    /// withholding that body (no `allow_on_headers_stop_iteration`).
    fn pause_for_body(&mut self, route: Rc<I::Route>) -> Action {
        if self.body_watch.flag_missing.get() {
            self.answered = true;
            self.fail(Failure::BodyLayoutMisconfigured, layout::FLAG_MISSING);
            return Action::Pause;
        }
        self.body_watch.waiting.borrow_mut().push(Waiting {
            context_id: self.context_id,
            header_bytes: layout::header_bytes(&self.request.headers),
            route,
            observation: self.observation.clone(),
        });
        Action::Pause
    }

    /// The body arrived, or the stream ends: it no longer waits (only
    /// `stop_iteration` routes ever register).
    fn stop_watching(&self) {
        if self
            .route
            .as_ref()
            .is_some_and(|r| I::common(r).body_layout.pauses_headers())
        {
            self.body_watch.forget(self.context_id);
        }
    }

    fn body_too_large(&mut self, size: usize, limit: usize) {
        self.answered = true;
        self.fail(
            Failure::RequestBodyTooLarge,
            &format!("request body of {size} bytes exceeds max_req_body_size ({limit} bytes)"),
        );
    }

    /// The whole request is here: build the call and send it.
    fn dispatch(&mut self) {
        let (Some(config), Some(route)) = (self.config.clone(), self.route.clone()) else {
            return;
        };
        self.answered = true;
        if self.body_size > 0 {
            self.request.body =
                hostcalls::get_buffer(BufferType::HttpRequestBody, 0, self.body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
        }
        if I::common(&route).placement.reads_peer_address() {
            self.request.peer_address = property(&["source", "address"]);
        }
        if I::uses_protocol(&route) {
            self.request.protocol = property(&["request", "protocol"]);
        }
        if let Err(error) = I::admit(&config.global, &route, &WasmHost) {
            return self.reject(&error);
        }
        let now = SystemTime::now();
        let callout = match I::build_callout(&config.global, &route, &self.request, now) {
            Ok(c) => c,
            Err(error) => return self.reject(&error),
        };
        match WasmHost.dispatch(&callout) {
            Ok(_) => {
                if let Some(o) = &self.observation {
                    o.sent(&WasmHost, now, self.body_size);
                }
            }
            Err(why) => self.fail(Failure::CalloutFailed, &why),
        }
    }
}

impl<I: Integration> HttpContext for Stream<I> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let route_name = if config.routes.needs_route_name() {
            property(&["xds", "route_name"])
        } else {
            None
        };
        let Some(route) = config.routes.lookup(route_name.as_deref()) else {
            return Action::Continue; // not a function route: pass through untouched
        };
        let limit = I::common(&route).max_req_body_size;
        self.route = Some(Rc::clone(&route));
        self.observe(&config, route_name);
        self.request.headers = header_map(MapType::HttpRequestHeaders);
        // Refuse before reading a byte of an announced oversized body.
        let announced = self
            .request
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(size) = announced.filter(|&n| n > limit as u64) {
            self.body_too_large(usize::try_from(size).unwrap_or(usize::MAX), limit);
            return Action::Pause;
        }
        if end_of_stream {
            // Header-only: answer from here; the router never starts.
            self.dispatch();
            return Action::Pause;
        }
        match I::common(&route).body_layout {
            // The flag lets the body reach a filter that paused here.
            BodyLayout::StopIteration => self.pause_for_body(route),
            // The holding filter after this one keeps the headers from the
            // router; this filter holds the body until it is complete.
            BodyLayout::HoldingFilter => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(route) = self.route.clone() else {
            return Action::Continue;
        };
        self.stop_watching();
        if self.answered {
            return Action::Pause;
        }
        self.body_size = body_size;
        let limit = I::common(&route).max_req_body_size;
        if body_size > limit {
            self.body_too_large(body_size, limit);
            return Action::Pause;
        }
        if end_of_stream {
            self.dispatch();
        }
        Action::Pause
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.route.is_none() {
            return Action::Continue;
        }
        if !self.answered {
            self.dispatch();
        }
        Action::Pause
    }

    /// On a function route every response is this filter's own, unless
    /// the router got the request: in `holding_filter` layout that means
    /// no holding filter follows. The router's answer (or its connect
    /// error) is replaced by the fix.
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match &self.route {
            Some(route) if !self.replied && !I::common(route).body_layout.pauses_headers() => {
                self.answered = true;
                self.fail(Failure::BodyLayoutMisconfigured, layout::NO_HOLDING_FILTER);
                Action::Pause
            }
            _ => Action::Continue,
        }
    }

    /// The stream is complete (Envoy calls this before its access logs):
    /// a request this filter never answered was abandoned by its client.
    fn on_log(&mut self) {
        if let Some(o) = self.observation.as_ref().filter(|o| !o.is_finished()) {
            o.abandoned(&WasmHost, self.function_host());
        }
    }
}

impl<I: Integration> Drop for Stream<I> {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

impl<I: Integration> Context for Stream<I> {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(config), Some(route)) = (self.config.clone(), self.route.clone()) else {
            return;
        };
        if self.replied {
            return; // answered meanwhile (the router's response was replaced)
        }
        let common = I::common(&route);
        let now = SystemTime::now();
        let mut headers = header_map(MapType::HttpCallResponseHeaders);
        let status = proxy_status(&headers);
        if body_size > common.max_resp_body_size {
            if let Some(o) = &self.observation {
                o.answered(&WasmHost, now, status, body_size);
            }
            return self.fail(
                Failure::FunctionResponseTooLarge,
                &format!(
                    "function response of {body_size} bytes exceeds max_resp_body_size ({} bytes)",
                    common.max_resp_body_size
                ),
            );
        }
        headers.retain(|(n, _)| !n.starts_with(':'));
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(status) = status else {
            if let Some(o) = &self.observation {
                o.answered(&WasmHost, now, None, body_size);
            }
            return self.fail(
                Failure::FunctionUnreachable,
                "the function's response had no valid status",
            );
        };
        let result = classify(CalloutResponse {
            status,
            headers,
            body,
        });
        if let Some(o) = &self.observation {
            let function_status = matches!(result, CallResult::Function(_)).then_some(status);
            o.answered(&WasmHost, now, function_status, body_size);
        }
        match result {
            CallResult::TimedOut => self.fail(
                Failure::FunctionTimeout,
                &format!(
                    "the function did not answer within {} ms",
                    common.timeout.as_millis()
                ),
            ),
            CallResult::Unreachable(why) => self.fail(
                Failure::FunctionUnreachable,
                &format!(
                    "could not reach the function on cluster \"{}\": {why}",
                    common.cluster
                ),
            ),
            CallResult::Function(response) => {
                match I::map_response(&config.global, &route, response) {
                    Ok(reply) => self.send(reply),
                    Err(error) => self.reject(&error),
                }
            }
        }
    }
}

fn proxy_status(headers: &HeaderList) -> Option<u16> {
    crate::headers::get(headers, ":status")
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
}
