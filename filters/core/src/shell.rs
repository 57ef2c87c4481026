//! The thin proxy-wasm shell: moves data between Envoy and the pure core.
//!
//! Host calls are made through `proxy_wasm::hostcalls` (which return
//! `Result`) rather than the SDK's trait helpers (which `unwrap`), and
//! headers are always read as bytes: the SDK's string getters panic on a
//! header value that is not UTF-8, and Envoy accepts such values from
//! clients. A panic would kill the VM for every plugin sharing it.

use crate::config::{compile, PluginConfig};
use crate::headers::HeaderList;
use crate::integration::Integration;
use crate::request::ClientRequest;
use crate::response::{classify, CalloutResponse, ErrorReply, Failure, LocalReply, Outcome};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::cell::Cell;
use std::rc::Rc;
use std::time::SystemTime;

/// Registers the root context of integration `I`; call from `proxy_wasm::main!`.
pub fn install<I: Integration>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root::<I> {
            config: None,
            memory_gauge: None,
            memory_pages: Cell::new(0),
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

type Compiled<I> = PluginConfig<<I as Integration>::Global, <I as Integration>::Route>;

struct Root<I: Integration> {
    config: Option<Rc<Compiled<I>>>,
    /// Gauge `envoy_faas.<filter>.wasm_memory_bytes`: the VM's linear
    /// memory, which only grows; a leak shows up here first.
    memory_gauge: Option<u32>,
    /// Last value recorded, so the gauge costs a host call only on growth.
    memory_pages: Cell<usize>,
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

impl<I: Integration> Context for Root<I> {}

impl<I: Integration> RootContext for Root<I> {
    fn on_configure(&mut self, size: usize) -> bool {
        if self.memory_gauge.is_none() {
            let name = format!("envoy_faas.{}.wasm_memory_bytes", I::NAME);
            self.memory_gauge = hostcalls::define_metric(MetricType::Gauge, &name).ok();
        }
        self.memory_pages.set(0);
        self.record_memory();
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        match compile(&bytes, I::read_global, I::read_route) {
            Ok(compiled) => {
                log::info!("{}: configuration accepted", I::NAME);
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        self.record_memory();
        Some(Box::new(Stream::<I> {
            config: self.config.clone(),
            route: None,
            request: ClientRequest::default(),
            body_size: 0,
            answered: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream<I: Integration> {
    config: Option<Rc<Compiled<I>>>,
    /// Set when this request is ours to answer.
    route: Option<Rc<I::Route>>,
    request: ClientRequest,
    /// Body bytes Envoy has buffered so far.
    body_size: usize,
    /// The call was dispatched or the client already answered: later body
    /// or trailer callbacks must not act again.
    answered: bool,
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

impl<I: Integration> Stream<I> {
    fn route_label(&self) -> String {
        property(&["xds", "route_name"])
            .filter(|n| !n.is_empty())
            .or_else(|| self.route.as_ref().map(|r| I::common(r).route.clone()))
            .unwrap_or_default()
    }

    fn send(&self, reply: LocalReply) {
        let headers = crate::headers::borrowed(&reply.headers);
        if let Err(status) =
            hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
        {
            log::error!("{}: could not send the response: {status:?}", I::NAME);
        }
    }

    fn fail(&self, failure: Failure, message: &str) {
        self.reject(&ErrorReply::new(failure, message));
    }

    /// Answers with a JSON error and logs it (messages carry no secrets).
    fn reject(&self, error: &ErrorReply) {
        let route = self.route_label();
        log::warn!(
            "{}: route \"{route}\": {}: {}",
            I::NAME,
            error.code,
            error.message
        );
        self.send(error.render(&route, self.request.header("x-request-id")));
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
        self.request.peer_address = property(&["source", "address"]);
        if I::uses_protocol(&route) {
            self.request.protocol = property(&["request", "protocol"]);
        }
        let callout =
            match I::build_callout(&config.global, &route, &self.request, SystemTime::now()) {
                Ok(c) => c,
                Err(error) => return self.reject(&error),
            };
        let headers = crate::headers::borrowed(&callout.headers);
        let body = (!callout.body.is_empty()).then_some(callout.body.as_slice());
        if let Err(status) =
            hostcalls::dispatch_http_call(&callout.cluster, headers, body, vec![], callout.timeout)
        {
            self.fail(
                Failure::CalloutFailed,
                &format!(
                    "could not call cluster \"{}\" ({status:?}); does the cluster exist?",
                    callout.cluster
                ),
            );
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
        self.route = Some(route);
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
            self.dispatch();
        }
        // Pause: without the body the router must not start; with
        // `allow_on_headers_stop_iteration` the body callbacks still run.
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(route) = self.route.clone() else {
            return Action::Continue;
        };
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
        let common = I::common(&route);
        if body_size > common.max_resp_body_size {
            return self.fail(
                Failure::FunctionResponseTooLarge,
                &format!(
                    "function response of {body_size} bytes exceeds max_resp_body_size ({} bytes)",
                    common.max_resp_body_size
                ),
            );
        }
        let mut headers = header_map(MapType::HttpCallResponseHeaders);
        let status = proxy_status(&headers);
        headers.retain(|(n, _)| !n.starts_with(':'));
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(status) = status else {
            return self.fail(
                Failure::FunctionUnreachable,
                "the function's response had no valid status",
            );
        };
        match classify(CalloutResponse {
            status,
            headers,
            body,
        }) {
            Outcome::TimedOut => self.fail(
                Failure::FunctionTimeout,
                &format!(
                    "the function did not answer within {} ms",
                    common.timeout.as_millis()
                ),
            ),
            Outcome::Unreachable(why) => self.fail(
                Failure::FunctionUnreachable,
                &format!(
                    "could not reach the function on cluster \"{}\": {why}",
                    common.cluster
                ),
            ),
            Outcome::Function(response) => {
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
