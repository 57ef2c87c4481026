//! The thin proxy-wasm shell: moves data between Envoy and the pure core.
//!
//! Host calls are made through `proxy_wasm::hostcalls` (which return
//! `Result`) rather than the SDK's trait helpers (which `unwrap`), and
//! headers are always read as bytes: the SDK's string getters panic on a
//! header value that is not UTF-8, and Envoy accepts such values from
//! clients. A panic would kill the VM for every plugin sharing it.

use crate::config::compile_report;
use crate::headers::HeaderList;
use crate::host::{DispatchError, Host, MetricKind, StreamHost};
use crate::integration::Integration;
use crate::layout;
use crate::metrics::{self, Registry};
use crate::request::Callout;
use crate::response::{CalloutResponse, ErrorReply, Failure, LocalReply};
use crate::stream::{proxy_status, record_failure, reject, text, BodyWatch, Compiled, Stream};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status, StreamType,
};
use std::cell::Cell;
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

    fn dispatch(&self, call: &Callout) -> Result<u32, DispatchError> {
        let headers = crate::headers::borrowed(&call.headers);
        let body = (!call.body.is_empty()).then_some(call.body.as_slice());
        hostcalls::dispatch_http_call(&call.cluster, headers, body, vec![], call.timeout).map_err(
            |status| match status {
                // Envoy's async client finished the call before returning:
                // the router failed it at once (overflow, no healthy host).
                Status::InternalFailure => DispatchError::FailedAtOnce(
                    "the call failed at once (a circuit breaker overflow, or no healthy host)"
                        .to_string(),
                ),
                _ => DispatchError::Refused(format!(
                    "could not call cluster \"{}\" ({status:?}); does the cluster exist?",
                    call.cluster
                )),
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

fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    hostcalls::get_buffer(kind, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn header_map(map: MapType) -> HeaderList {
    hostcalls::get_map_bytes(map)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, text(value)))
        .collect()
}

impl StreamHost for WasmHost {
    fn request_headers(&self) -> HeaderList {
        header_map(MapType::HttpRequestHeaders)
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpRequestBody, size)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn call_response_headers(&self) -> HeaderList {
        header_map(MapType::HttpCallResponseHeaders)
    }

    fn call_response_body(&self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpCallResponseBody, size)
    }

    fn send_response(&self, reply: &LocalReply) -> Result<(), String> {
        let headers = crate::headers::borrowed(&reply.headers);
        hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
            .map_err(|status| format!("{status:?}"))
    }

    fn set_response_header(&self, name: &str, value: &str) {
        if let Err(why) = abi::replace_response_header(name, value) {
            log::warn!("could not set response header {name}: {why}");
        }
    }

    fn replace_request_headers(&self, headers: &HeaderList) -> Result<(), String> {
        let headers = crate::headers::borrowed(headers);
        hostcalls::set_map(MapType::HttpRequestHeaders, headers)
            .map_err(|status| format!("{status:?}"))
    }

    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn response_headers(&self) -> HeaderList {
        header_map(MapType::HttpResponseHeaders)
    }

    fn remove_response_header(&self, name: &str) {
        if let Err(why) = abi::remove_response_header(name) {
            log::warn!("could not remove response header {name}: {why}");
        }
    }

    fn add_response_header(&self, name: &str, value: &str) {
        if let Err(why) = abi::add_response_header(name, value) {
            log::warn!("could not add response header {name}: {why}");
        }
    }

    fn response_body(&self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpResponseBody, size)
    }

    fn replace_response_body(&self, size: usize, bytes: &[u8]) -> Result<(), String> {
        abi::set_buffer(BufferType::HttpResponseBody, size, bytes)
    }

    fn replace_request_body(&self, size: usize, bytes: &[u8]) -> Result<(), String> {
        abi::set_buffer(BufferType::HttpRequestBody, size, bytes)
    }

    fn reset_response(&self) {
        if let Err(why) = abi::close_stream(StreamType::HttpResponse) {
            log::error!("could not reset the client's stream: {why}");
        }
    }
}

/// Host calls whose refusal is a possible answer here: the SDK's wrappers
/// (`hostcalls::set_buffer`, `reset_http_response`) panic on any status
/// but `Ok`, and a panic kills the VM. Same imports, same types.
mod abi {
    #[cfg(target_arch = "wasm32")]
    use proxy_wasm::types::MapType;
    use proxy_wasm::types::{BufferType, Status, StreamType};

    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_set_buffer_bytes(
            buffer_type: BufferType,
            start: usize,
            size: usize,
            buffer_data: *const u8,
            buffer_size: usize,
        ) -> Status;
        fn proxy_close_stream(stream_type: StreamType) -> Status;
        fn proxy_remove_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
        ) -> Status;
        fn proxy_replace_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> Status;
        fn proxy_add_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> Status;
    }

    /// Removes a response header; `Err` where Envoy refuses header changes.
    pub fn remove_response_header(name: &str) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: pointer and length describe `name` for the call.
        let status = unsafe {
            proxy_remove_header_map_value(MapType::HttpResponseHeaders, name.as_ptr(), name.len())
        };
        #[cfg(not(target_arch = "wasm32"))]
        let status = {
            let _ = name;
            Status::NotFound
        };
        checked(status)
    }

    /// The signature of the imports that set or add a header value.
    #[cfg(target_arch = "wasm32")]
    type SetValue = unsafe extern "C" fn(MapType, *const u8, usize, *const u8, usize) -> Status;

    /// Calls `import` with a response header's name and value.
    #[cfg(target_arch = "wasm32")]
    fn header_value_call(import: SetValue, name: &str, value: &str) -> Result<(), String> {
        // SAFETY: pointers and lengths describe `name` and `value`, which
        // outlive the call; the host copies them.
        let status = unsafe {
            import(
                MapType::HttpResponseHeaders,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
        checked(status)
    }

    /// Sets a response header (`:status` too); `Err` where Envoy refuses.
    pub fn replace_response_header(name: &str, value: &str) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        return header_value_call(proxy_replace_header_map_value, name, value);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, value);
            checked(Status::NotFound)
        }
    }

    /// Adds a response header value; `Err` where Envoy refuses it.
    pub fn add_response_header(name: &str, value: &str) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        return header_value_call(proxy_add_header_map_value, name, value);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, value);
            checked(Status::NotFound)
        }
    }

    fn checked(status: Status) -> Result<(), String> {
        match status {
            Status::Ok => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// Replaces the first `size` bytes of a body buffer with `bytes`.
    pub fn set_buffer(kind: BufferType, size: usize, bytes: &[u8]) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the pointer and length describe `bytes`, which outlives
        // the call; the host copies them.
        let status = unsafe { proxy_set_buffer_bytes(kind, 0, size, bytes.as_ptr(), bytes.len()) };
        #[cfg(not(target_arch = "wasm32"))]
        let status = {
            let _ = (kind, size, bytes);
            Status::NotFound
        };
        checked(status)
    }

    /// Closes (resets) a stream of the current request.
    pub fn close_stream(kind: StreamType) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: no pointers cross.
        let status = unsafe { proxy_close_stream(kind) };
        #[cfg(not(target_arch = "wasm32"))]
        let status = {
            let _ = kind;
            Status::NotFound
        };
        checked(status)
    }
}

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
        let mut headers = WasmHost.call_response_headers();
        // No status at all: treat as Envoy's own failure.
        let status = proxy_status(&headers).unwrap_or(503);
        headers.retain(|(n, _)| !n.starts_with(':'));
        let body = WasmHost.call_response_body(body_size);
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
        let bytes = buffer(BufferType::PluginConfiguration, size);
        match compile_report(&bytes, I::read_global, I::read_route) {
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
            Err(errors) => {
                // Returning false makes Envoy refuse this config (and keep
                // the previous one on an xDS/ECDS update). One line per
                // error, as `envoy-faas check` prints them.
                for e in errors.all() {
                    log::error!("{}: invalid configuration: {e}", I::NAME);
                }
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        self.record_memory();
        Some(Box::new(Request::<I>(Stream::new(
            WasmHost,
            context_id,
            self.config.clone(),
            Rc::clone(&self.metrics),
            Rc::clone(&self.body_watch),
        ))))
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
            let total = WasmHost
                .property(&["request", "total_size"])
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_le_bytes);
            match total {
                Some(total) if layout::body_withheld(total, w.header_bytes) => {
                    self.body_watch.flag_missing.set(true);
                    let error =
                        ErrorReply::new(Failure::BodyLayoutMisconfigured, layout::FLAG_MISSING);
                    let route =
                        record_failure::<I>(&WasmHost, w.observation.as_deref(), &w.route, &error);
                    let request_id = WasmHost.property(&["request", "id"]).map(text);
                    reject::<I>(&WasmHost, &route, request_id.as_deref(), &error, &[]);
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

/// One request's context: proxy-wasm's callbacks handed to [`Stream`].
struct Request<I: Integration>(Stream<I, WasmHost>);

impl<I: Integration> HttpContext for Request<I> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.0.on_request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_request_trailers()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.0.on_response_headers()
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_response_body(body_size, end_of_stream)
    }

    fn on_log(&mut self) {
        self.0.on_log();
    }
}

impl<I: Integration> Context for Request<I> {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.0.on_call_response(num_headers, body_size);
    }
}
