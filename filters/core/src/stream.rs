//! One client request on a function route: the state machine between
//! Envoy's callbacks (headers, body, trailers, the callout's answer, the
//! response passing back, the end of the stream) and the pure core.
//!
//! It reaches Envoy only through [`StreamHost`], so every transition is
//! unit-tested with [`crate::host::fake::FakeHost`], including the ones
//! Envoy makes hard to provoke. `shell` wires it to proxy-wasm.

use crate::config::PluginConfig;
use crate::headers::HeaderList;
use crate::host::{DispatchError, StreamHost};
use crate::integration::Integration;
use crate::layout::{self, BodyLayout, Forwarding, Placement};
use crate::metrics::{self, Registry};
use crate::observe::Observation;
use crate::path;
use crate::redact;
use crate::request::{Callout, ClientRequest};
use crate::response::{
    classify, envoy_shaped, frame, router_failure, CallResult, CalloutResponse, ErrorReply,
    Failure, LocalReply,
};
use crate::rewrite::{Head, ResponseRewrite, Start};
use proxy_wasm::types::Action;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::SystemTime;

pub type Compiled<I> = PluginConfig<<I as Integration>::Global, <I as Integration>::Route>;

/// Requests paused in headers (`stop_iteration`) that still wait for their
/// body. Envoy withholds the body from such a filter when the PluginConfig
/// lacks `allow_on_headers_stop_iteration`; the request would then hang
/// until a stream timeout. The root's tick finds these requests by
/// comparing Envoy's `request.total_size` with the headers' size, and
/// answers them with the fix instead.
pub struct BodyWatch<R> {
    pub waiting: RefCell<Vec<Waiting<R>>>,
    /// Set once a withheld body was seen: this plugin config runs without
    /// the flag, so later requests with a body are answered at once.
    pub flag_missing: Cell<bool>,
}

impl<R> Default for BodyWatch<R> {
    fn default() -> Self {
        BodyWatch {
            waiting: RefCell::new(Vec::new()),
            flag_missing: Cell::new(false),
        }
    }
}

pub struct Waiting<R> {
    pub context_id: u32,
    pub header_bytes: u64,
    pub route: Rc<R>,
    pub observation: Option<Rc<Observation>>,
}

impl<R> BodyWatch<R> {
    fn forget(&self, context_id: u32) {
        self.waiting
            .borrow_mut()
            .retain(|w| w.context_id != context_id);
    }
}

/// Why a callout answer without headers is reported as too large: Envoy
/// synthesises a 502/503/504 for every failure before the function's
/// headers, so a failure without any headers happened after them. Its
/// async client then either cut a response above its buffer limit (which
/// the plugin cannot see) or the connection broke mid-body.
pub const CUT_OFF: &str = "the function's response was cut off: over Envoy's callout \
limit (33554432 bytes by default, runtime key http.async_response_buffer_limit), or its \
connection broke mid-response";

pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn property(host: &dyn StreamHost, path: &[&str]) -> Option<String> {
    host.property(path).map(text)
}

/// The Envoy route name, else the name the route was configured under.
fn route_label<I: Integration>(host: &dyn StreamHost, route: &I::Route) -> String {
    property(host, &["xds", "route_name"])
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| I::common(route).route.clone())
}

/// Records `error` as the request's outcome (when observed) and returns the
/// route label for its body: the one the request started with, else the
/// Envoy route name read now.
pub fn record_failure<I: Integration>(
    host: &dyn StreamHost,
    observation: Option<&Observation>,
    route: &I::Route,
    error: &ErrorReply,
) -> String {
    if let Some(o) = observation {
        o.failed(host, error.failure, &I::common(route).function.host);
    }
    observation
        .and_then(|o| o.label.clone())
        .unwrap_or_else(|| route_label::<I>(host, route))
}

/// The header that leads the rewritten request to its route's in-place
/// twin when Envoy routes it again.
pub const IN_PLACE_ROUTE_HEADER: &str = "x-envoy-faas-route";

/// Why an in-place request found no route once rewritten.
pub const NO_TWIN_ROUTE: &str = "forwarding \"route\": the rewritten request matched no route;     add the route's in-place twin (a route matching the x-envoy-faas-route header with the route's     name, first in its virtual host; `envoy-faas import` writes it)";

/// Why a forwarded path is refused (the path itself is never echoed).
pub const UNSAFE_PATH: &str = "the forwarded path hides a dot segment behind an encoded separator \
    (%2F, %5C or a backslash); a server that decodes it would leave the function's base path";

/// Sends `reply` to the client of the current request.
fn send_reply<I: Integration>(host: &dyn StreamHost, reply: &LocalReply) {
    if let Err(why) = host.send_response(reply) {
        log::error!("{}: could not send the response: {why}", I::NAME);
    }
}

/// Answers with a JSON error and logs it on one line. Our messages carry
/// no secrets; what the upstream said (`upstream_text`) goes only to the
/// log, without `secrets` (what the filter sent) or any marked credential.
pub fn reject<I: Integration>(
    host: &dyn StreamHost,
    route: &str,
    request_id: Option<&str>,
    error: &ErrorReply,
    secrets: &[String],
) {
    log_error::<I>(route, error, secrets);
    send_reply::<I>(host, &error.render(route, request_id));
}

/// The one log line of an error (unless its producer logged it).
fn log_error<I: Integration>(route: &str, error: &ErrorReply, secrets: &[String]) {
    if !error.log_line {
        return;
    }
    let message = redact::for_log(&error.message, secrets);
    match &error.upstream_text {
        Some(text) => log::warn!(
            "{}: route \"{route}\": {}: {message}; upstream said: {}",
            I::NAME,
            error.code(),
            redact::for_log(text, secrets)
        ),
        None => log::warn!(
            "{}: route \"{route}\": {}: {message}",
            I::NAME,
            error.code()
        ),
    }
}

/// The `:status` of an answer, when it is a valid final HTTP status (a 1xx
/// is interim: as a final answer it would switch or confuse the client).
pub fn proxy_status(headers: &HeaderList) -> Option<u16> {
    crate::headers::get(headers, ":status")
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (200..=599).contains(s))
}

pub struct Stream<I: Integration, H: StreamHost> {
    host: H,
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
    /// comes from the router (see `on_response_headers`).
    replied: bool,
    /// Representation headers Envoy's local reply drops, put back when the
    /// reply passes `on_response_headers` (see [`frame`]).
    restore: HeaderList,
    /// The credentials the call carried, kept out of the log line of an
    /// error the answer causes (see [`crate::redact`]).
    sent_secrets: Vec<String>,
    /// The request was rewritten in place for the router (`forwarding:
    /// route`): the body streams past, the answer is the router's.
    in_place: bool,
    /// `forwarding: route` for a request whose credentials sign its body
    /// (SigV4): the headers wait, paused with the flag, for the whole body;
    /// then the request is signed and rewritten in place. Holds the Envoy
    /// route name the rewrite needs.
    in_place_after_body: Option<Option<String>>,
    /// In place: the integration's rewrite of the streamed answer.
    rewrite: Option<Box<dyn ResponseRewrite>>,
    /// The response headers wait (paused, with the flag) for the rewrite's
    /// first bytes: until then an error can still be a JSON answer.
    holding_head: bool,
    /// The client's status once the head goes out (after a rewrite's edits).
    reply_status: u16,
    /// In place on a streaming route: what the stream metrics need.
    streamed: Option<Streamed>,
}

/// A streamed answer's progress, recorded when the stream ends.
#[derive(Debug, Default)]
struct Streamed {
    bytes: usize,
    first_byte_ms: Option<u64>,
    /// It failed after its first byte (the client's stream was reset).
    reset: Option<crate::outcome::Outcome>,
}

impl<I: Integration, H: StreamHost> Stream<I, H> {
    pub fn new(
        host: H,
        context_id: u32,
        config: Option<Rc<Compiled<I>>>,
        metrics: Rc<Registry>,
        body_watch: Rc<BodyWatch<I::Route>>,
    ) -> Self {
        Stream {
            host,
            context_id,
            config,
            metrics,
            body_watch,
            route: None,
            observation: None,
            request: ClientRequest::default(),
            body_size: 0,
            answered: false,
            replied: false,
            restore: HeaderList::new(),
            sent_secrets: Vec::new(),
            in_place: false,
            in_place_after_body: None,
            rewrite: None,
            holding_head: false,
            reply_status: 0,
            streamed: None,
        }
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// The configured host of this route's function (access log).
    fn function_host(&self) -> &str {
        self.route
            .as_ref()
            .map_or("", |r| I::common(r).function.host.as_str())
    }

    /// Sends the function's mapped answer. Upstream, it gets a `date` if it
    /// has none: the listener's cache filter stores no answer without one
    /// (Envoy adds `date` only later, on the way to the client).
    fn send(&mut self, reply: LocalReply) {
        self.replied = true;
        let framed = frame(reply, self.request.method() == "HEAD");
        let mut reply = framed.reply;
        self.restore = framed.restore;
        let upstream = self
            .route
            .as_ref()
            .is_some_and(|r| I::common(r).placement == Placement::Upstream);
        if upstream && crate::headers::get(&reply.headers, "date").is_none() {
            let date = crate::calendar::http_date(self.host.now());
            reply.headers.push(("date".into(), date));
        }
        if let Some(o) = &self.observation {
            o.replied(&self.host, reply.status, self.function_host());
        }
        send_reply::<I>(&self.host, &reply);
    }

    fn fail(&mut self, failure: Failure, message: &str) {
        self.reject(&ErrorReply::new(failure, message));
    }

    fn reject(&mut self, error: &ErrorReply) {
        self.replied = true;
        let route = self
            .route
            .as_ref()
            .map(|r| record_failure::<I>(&self.host, self.observation.as_deref(), r, error))
            .unwrap_or_default();
        reject::<I>(
            &self.host,
            &route,
            self.request.header("x-request-id"),
            error,
            &self.sent_secrets,
        );
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
                .or_else(|| property(&self.host, &["xds", "route_name"]))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| metrics::UNNAMED_ROUTE.to_string());
            let route_metrics = self.metrics.route(&self.host, &label);
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

    /// The request facts a call may need besides headers and body.
    fn read_facts(&mut self, route: &I::Route) {
        if I::common(route).placement.reads_peer_address() {
            self.request.peer_address = property(&self.host, &["source", "address"]);
        }
        if I::uses_protocol(route) {
            self.request.protocol = property(&self.host, &["request", "protocol"]);
        }
    }

    /// `forwarding: route`: the call the callout path would send becomes
    /// the request itself (path, authority, credentials, forwarding
    /// headers), and Envoy's router forwards it to the route's cluster,
    /// which must be the config's. The body, if any, streams past.
    fn forward_in_place(&mut self, route_name: Option<String>) -> Action {
        self.answered = true;
        // Only this filter writes the route header: a client's would pick
        // the in-place twin route before the filter ran.
        if self.request.header(IN_PLACE_ROUTE_HEADER).is_some() {
            self.fail(
                Failure::ReservedHeader,
                &format!("{IN_PLACE_ROUTE_HEADER} is set by the gateway, never by a client"),
            );
            return Action::Pause;
        }
        let Some((callout, now)) = self.prepare_call() else {
            return Action::Pause;
        };
        let route_cluster = property(&self.host, &["xds", "cluster_name"]).unwrap_or_default();
        if route_cluster != callout.cluster {
            let message = format!(
                "forwarding \"route\": Envoy's route sends to cluster \"{route_cluster}\", but the \
                 config's cluster is \"{}\"; point the route at the function's cluster",
                callout.cluster
            );
            self.fail(Failure::ForwardingMisconfigured, &message);
            return Action::Pause;
        }
        let replaces_body = self
            .route
            .as_ref()
            .is_some_and(|r| I::in_place_replaces_body(r));
        if replaces_body {
            // The call's body (an event built from the client's) replaces
            // the held one. Envoy has no body buffer to write into for a
            // request that came without a body: such a request is called
            // out instead, as the callout path would.
            if let Err(why) = self
                .host
                .replace_request_body(self.body_size, &callout.body)
            {
                log::debug!("{}: in place body refused ({why}): calling out", I::NAME);
                self.send_call(callout, now);
                return Action::Pause;
            }
        }
        let body_length = callout.body.len();
        let mut headers = callout.headers;
        // Envoy routes the rewritten request again (a proxy-wasm 0.2.1
        // module's header changes clear the route cache): this header
        // leads it to the route's in-place twin (the book, "Forwarding in
        // place"), which sends it to the same cluster and removes it.
        // The lookup or the metrics label may have read it already (a
        // property read costs about 1.2 µs); "*" labels an unnamed route.
        let route_name = route_name
            .or_else(|| {
                let label = self.observation.as_ref()?.label.clone()?;
                (label != metrics::UNNAMED_ROUTE).then_some(label)
            })
            .or_else(|| property(&self.host, &["xds", "route_name"]))
            .unwrap_or_default();
        headers.push((IN_PLACE_ROUTE_HEADER.into(), route_name));
        // Envoy's route lookup finds nothing without `x-forwarded-proto`
        // (its connection manager sets it): a call built from scratch (an
        // Invoke event) keeps the client's.
        if crate::headers::get(&headers, "x-forwarded-proto").is_none() {
            if let Some(proto) = self.request.header("x-forwarded-proto") {
                headers.push(("x-forwarded-proto".into(), proto.to_string()));
            }
        }
        if replaces_body {
            headers.push(("content-length".into(), body_length.to_string()));
        } else if let Some(length) = self.request.header("content-length") {
            // The body streams as the client sends it: keep its framing.
            headers.push(("content-length".into(), length.to_string()));
        }
        self.sent_secrets = redact::credential_values(&headers);
        if let Err(why) = self.host.replace_request_headers(&headers) {
            let message = format!("could not rewrite the request in place ({why})");
            self.fail(Failure::ForwardingMisconfigured, &message);
            return Action::Pause;
        }
        self.in_place = true;
        if let Some(o) = &self.observation {
            // A held (signed) body has its size; a streamed one is not counted.
            let held = (self.body_size > 0).then_some(self.body_size);
            o.sent(&self.host, now, held);
        }
        if let (Some(config), Some(route)) = (&self.config, &self.route) {
            self.rewrite = I::response_rewrite(&config.global, route);
            if I::streams_response(route) {
                self.streamed = Some(Streamed::default());
            }
        }
        Action::Continue
    }

    /// The whole request is here: a body-signing in-place request is signed
    /// and rewritten now (its headers are still paused, so Envoy accepts
    /// the change), any other request is called out.
    fn complete(&mut self) -> Action {
        if self.body_size > 0 {
            self.request.body = self.host.request_body(self.body_size);
        }
        match self.in_place_after_body.take() {
            Some(route_name) => self.forward_in_place(route_name),
            None => {
                self.dispatch();
                Action::Pause
            }
        }
    }

    /// The router's answer to an in-place request, at its headers: the
    /// function's own goes on untouched; the router's own failures become
    /// the errors the callout path gives for them.
    fn in_place_answer(&mut self) -> Action {
        let now = self.host.now();
        let details = property(&self.host, &["response", "code_details"]).unwrap_or_default();
        if details == "route_not_found" {
            // The rewritten request matched no route: its twin is missing.
            if let Some(o) = &self.observation {
                o.answered(&self.host, now, None, None);
            }
            self.fail(Failure::ForwardingMisconfigured, NO_TWIN_ROUTE);
            return Action::Pause;
        }
        let Some(failure) = router_failure(&details) else {
            let status = self
                .host
                .response_header(":status")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (200..=599).contains(s));
            if let Some(o) = &self.observation {
                let function_status = (details == "via_upstream").then_some(status).flatten();
                o.answered(&self.host, now, function_status, None);
            }
            self.replied = true;
            self.reply_status = status.unwrap_or(0);
            let action = match self.rewrite.take() {
                Some(rewrite) => self.start_rewrite(rewrite, status.unwrap_or(0)),
                None => Action::Continue,
            };
            if !self.holding_head && self.observation.is_some() {
                self.replied_in_place();
            }
            return action;
        };
        if let Some(o) = &self.observation {
            o.answered(&self.host, now, None, None);
        }
        self.fail_transport(failure, "the route's timeout");
        Action::Pause
    }

    /// Records the client's status of an in-place answer, once its head
    /// goes out.
    fn replied_in_place(&self) {
        if let Some(o) = &self.observation {
            o.replied(&self.host, self.reply_status, self.function_host());
        }
    }

    /// The rewrite's view of the answer's head: an error is the client's
    /// answer now (the platform refused before streaming); otherwise its
    /// edits apply and the head goes on, or waits for the first bytes.
    fn start_rewrite(&mut self, mut rewrite: Box<dyn ResponseRewrite>, status: u16) -> Action {
        let can_hold = self
            .route
            .as_ref()
            .is_some_and(|r| I::common(r).body_layout.pauses_headers())
            && !self.body_watch.flag_missing.get();
        let headers = self.host.response_headers();
        match rewrite.start(status, &headers, can_hold) {
            Err(error) => {
                self.holding_head = true; // no head went out: the outcome is the error's
                self.reject(&error);
                Action::Pause
            }
            Ok(Start::Pass(head)) => {
                self.apply_head(&head);
                self.rewrite = Some(rewrite);
                Action::Continue
            }
            Ok(Start::Hold(head)) => {
                self.apply_head(&head);
                self.rewrite = Some(rewrite);
                self.holding_head = true;
                Action::Pause
            }
        }
    }

    fn apply_head(&mut self, head: &Head) {
        if let Some(status) = head.status {
            self.reply_status = status;
            self.host
                .set_response_header(":status", &status.to_string());
        }
        for name in &head.remove {
            self.host.remove_response_header(name);
        }
        for (name, value) in &head.add {
            self.host.add_response_header(name, value);
        }
    }

    /// Bytes went to the client: the first one's time is measured.
    fn passed(&mut self, bytes: usize) {
        let Some(streamed) = self.streamed.as_mut() else {
            return;
        };
        if bytes > 0 && streamed.first_byte_ms.is_none() {
            let now = self.host.now();
            streamed.first_byte_ms = self.observation.as_ref().and_then(|o| o.since_sent_ms(now));
        }
        streamed.bytes += bytes;
    }

    /// A rewritten stream failed: a JSON answer while its head waits, else
    /// a reset of the client's stream (its status already went out), with
    /// the same log line.
    fn stream_failed(&mut self, size: usize, error: ErrorReply) -> Action {
        self.rewrite = None;
        if self.holding_head {
            self.reject(&error);
            return Action::Pause;
        }
        let route = self
            .observation
            .as_ref()
            .and_then(|o| o.label.clone())
            .unwrap_or_else(|| {
                self.route
                    .as_ref()
                    .map_or_else(String::new, |r| I::common(r).route.clone())
            });
        log_error::<I>(&route, &error, &self.sent_secrets);
        if let Some(streamed) = self.streamed.as_mut() {
            streamed.reset = Some(error.failure.outcome());
        }
        let _ = self.host.replace_response_body(size, &[]);
        self.host.reset_response();
        Action::Pause
    }

    /// Reads what the call needs, admits the request and builds the call
    /// (both paths send this one call). On a refusal the client is
    /// answered here and `None` returned.
    fn prepare_call(&mut self) -> Option<(Callout, SystemTime)> {
        let (config, route) = (self.config.clone()?, self.route.clone()?);
        self.read_facts(&route);
        if let Err(error) = I::admit(&config.global, &route, &self.host) {
            self.reject(&error);
            return None;
        }
        let now = self.host.now();
        match I::build_callout(&config.global, &route, &self.request, now) {
            Ok(callout) => Some((callout, now)),
            Err(error) => {
                self.reject(&error);
                None
            }
        }
    }

    /// The call (or the router) failed before the function answered: its
    /// timeout (`deadline` says which one) or an unreachable function.
    fn fail_transport(&mut self, result: CallResult, deadline: &str) {
        let cluster = self
            .route
            .as_ref()
            .map(|r| I::common(r).cluster.clone())
            .unwrap_or_default();
        match result {
            CallResult::TimedOut => self.fail(
                Failure::FunctionTimeout,
                &format!("the function did not answer within {deadline}"),
            ),
            CallResult::Unreachable(why) => self.fail(
                Failure::FunctionUnreachable,
                &format!("could not reach the function on cluster \"{cluster}\": {why}"),
            ),
            CallResult::Function(_) => {}
        }
    }

    /// The whole request is here: build the call and send it.
    fn dispatch(&mut self) {
        if self.route.is_none() {
            return;
        }
        self.answered = true;
        let Some((callout, now)) = self.prepare_call() else {
            return;
        };
        self.send_call(callout, now);
    }

    /// Sends the call built at `now` (the callout path).
    fn send_call(&mut self, callout: Callout, now: SystemTime) {
        self.sent_secrets = redact::credential_values(&callout.headers);
        match self.host.dispatch(&callout) {
            Ok(_) => {
                if let Some(o) = &self.observation {
                    o.sent(&self.host, now, Some(self.body_size));
                }
            }
            Err(DispatchError::Refused(why)) => self.fail(Failure::CalloutFailed, &why),
            Err(DispatchError::FailedAtOnce(why)) => {
                self.fail_transport(CallResult::Unreachable(why), "");
            }
        }
    }

    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let route_name = if config.routes.needs_route_name() {
            property(&self.host, &["xds", "route_name"])
        } else {
            None
        };
        let Some(route) = config.routes.lookup(route_name.as_deref()) else {
            return Action::Continue; // not a function route: pass through untouched
        };
        let limit = I::common(&route).max_req_body_size;
        self.route = Some(Rc::clone(&route));
        // In place needs the route's name again; the lookup may have read it.
        let forwarding = I::common(&route).forwarding;
        let in_place_name = match forwarding {
            Forwarding::Route => route_name.clone(),
            Forwarding::Callout => None,
        };
        self.observe(&config, route_name);
        self.request.headers = self.host.request_headers();
        let strip_prefix = I::common(&route).strip_prefix.as_deref();
        if path::forwarded_path_escapes(strip_prefix, self.request.target()) {
            self.answered = true;
            self.fail(Failure::UnsafePath, UNSAFE_PATH);
            return Action::Pause;
        }
        let body_layout = I::common(&route).body_layout;
        if forwarding == Forwarding::Route {
            // In place there is no body to hold, so no size ceiling.
            // A body the call replaces (an event built from it) is held.
            let streams_body = I::in_place_with_body(&route) && !I::in_place_replaces_body(&route);
            if end_of_stream || streams_body {
                return self.forward_in_place(in_place_name);
            }
            // Credentials that sign the body: with the flag the headers
            // wait for it and are rewritten from the body callback; behind
            // a holding filter they cannot be (Envoy refuses header changes
            // once they went on), so such a request takes the callout path.
            if body_layout.pauses_headers() {
                self.in_place_after_body = Some(in_place_name);
            }
        }
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
        match body_layout {
            // The flag lets the body reach a filter that paused here.
            BodyLayout::StopIteration => self.pause_for_body(route),
            // The holding filter after this one keeps the headers from the
            // router; this filter holds the body until it is complete.
            BodyLayout::HoldingFilter => Action::Continue,
        }
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(route) = self.route.clone() else {
            return Action::Continue;
        };
        if self.in_place {
            return Action::Continue; // the body streams to the router
        }
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
            return self.complete();
        }
        Action::Pause
    }

    /// Trailers end the request: with or without a body, it is complete.
    pub fn on_request_trailers(&mut self) -> Action {
        if self.route.is_none() || self.in_place {
            return Action::Continue;
        }
        self.stop_watching();
        if self.answered {
            return Action::Pause;
        }
        self.complete()
    }

    /// On a function route every response is this filter's own, unless
    /// the router got the request: in `holding_filter` layout that means
    /// no holding filter follows. The router's answer (or its connect
    /// error) is replaced by the fix. The filter's own reply gets back the
    /// headers Envoy's local-reply path dropped.
    pub fn on_response_headers(&mut self) -> Action {
        if self.in_place && !self.replied {
            return self.in_place_answer();
        }
        match &self.route {
            Some(route) if !self.replied && !I::common(route).body_layout.pauses_headers() => {
                self.answered = true;
                self.fail(Failure::BodyLayoutMisconfigured, layout::NO_HOLDING_FILTER);
                Action::Pause
            }
            _ => {
                for (name, value) in std::mem::take(&mut self.restore) {
                    self.host.set_response_header(&name, &value);
                }
                Action::Continue
            }
        }
    }

    /// A piece of the answer's body. In place, a rewrite turns it into the
    /// client's bytes (and may still set the held head); a streaming
    /// route's pieces are measured. Everything else passes untouched.
    pub fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.in_place {
            return Action::Continue;
        }
        let Some(rewrite) = self.rewrite.as_mut() else {
            self.passed(body_size);
            return Action::Continue;
        };
        let bytes = self.host.response_body(body_size);
        let piece = rewrite.piece(&bytes, end_of_stream);
        if let Some(error) = piece.failure {
            return self.stream_failed(body_size, error);
        }
        if let Some(head) = piece.head.as_ref().filter(|_| self.holding_head) {
            self.apply_head(head);
        }
        if piece.bytes != bytes {
            if let Err(why) = self.host.replace_response_body(body_size, &piece.bytes) {
                log::error!("{}: could not rewrite the response body: {why}", I::NAME);
            }
        }
        if self.holding_head {
            if piece.bytes.is_empty() && piece.head.is_none() && !end_of_stream {
                // Nothing for the client yet: the head keeps waiting (the
                // emptied buffer holds nothing to feed again).
                return Action::Pause;
            }
            self.holding_head = false;
            self.replied_in_place();
        }
        self.passed(piece.bytes.len());
        Action::Continue
    }

    /// The stream is complete (Envoy calls this before its access logs):
    /// a request this filter never answered was abandoned by its client.
    /// A streamed answer's metrics are recorded here, once.
    pub fn on_log(&mut self) {
        if let Some(o) = self.observation.as_ref().filter(|o| !o.is_finished()) {
            o.abandoned(&self.host, self.function_host());
        }
        // Only an answer whose head went out streamed (not an error's).
        let went_out = self.reply_status != 0 && !self.holding_head;
        let (Some(streamed), Some(o)) = (self.streamed.take(), self.observation.as_ref()) else {
            return;
        };
        if !went_out {
            return;
        }
        let now = self.host.now();
        let Some(metrics) = o.stream_metrics(&self.host) else {
            return;
        };
        metrics.bytes(&self.host, streamed.bytes);
        if let Some(ms) = streamed.first_byte_ms {
            metrics.first_byte(&self.host, ms);
        }
        if let Some(ms) = o.since_sent_ms(now) {
            metrics.duration(&self.host, ms);
        }
        if let Some(outcome) = streamed.reset {
            metrics.reset(&self.host, outcome);
        }
    }

    /// Records the function's answer (when observed) and fails the request:
    /// the answer came, but is not one the client may get.
    fn fail_answered(
        &mut self,
        now: SystemTime,
        status: Option<u16>,
        body_size: usize,
        failure: Failure,
        message: &str,
    ) {
        if let Some(o) = &self.observation {
            o.answered(&self.host, now, status, Some(body_size));
        }
        self.fail(failure, message);
    }

    /// The function's answer (`num_headers` 0: the call failed, see
    /// [`CUT_OFF`]).
    pub fn on_call_response(&mut self, num_headers: usize, body_size: usize) {
        let (Some(config), Some(route)) = (self.config.clone(), self.route.clone()) else {
            return;
        };
        if self.replied {
            return; // answered meanwhile (the router's response was replaced)
        }
        let common = I::common(&route);
        let now = self.host.now();
        if num_headers == 0 {
            return self.fail_answered(now, None, 0, Failure::FunctionResponseTooLarge, CUT_OFF);
        }
        let mut headers = self.host.call_response_headers();
        let status = proxy_status(&headers);
        headers.retain(|(n, _)| !n.starts_with(':'));
        // An oversized answer is refused unread, unless it may be Envoy's
        // own short failure (a 24-byte timeout must not pass for a large
        // answer when max_resp_body_size is tiny).
        let limit = common.max_resp_body_size;
        let too_large = body_size > limit;
        let too_large_message = || {
            format!(
                "function response of {body_size} bytes exceeds max_resp_body_size ({limit} bytes)"
            )
        };
        if too_large && !envoy_shaped(&headers, body_size) {
            let message = too_large_message();
            let failure = Failure::FunctionResponseTooLarge;
            return self.fail_answered(now, status, body_size, failure, &message);
        }
        let body = self.host.call_response_body(body_size);
        let Some(status) = status else {
            let message = "the function's response had no valid status";
            return self.fail_answered(now, None, body_size, Failure::FunctionUnreachable, message);
        };
        let result = classify(CalloutResponse {
            status,
            headers,
            body,
        });
        if too_large && matches!(result, CallResult::Function(_)) {
            let message = too_large_message();
            let failure = Failure::FunctionResponseTooLarge;
            return self.fail_answered(now, Some(status), body_size, failure, &message);
        }
        if let Some(o) = &self.observation {
            let function_status = matches!(result, CallResult::Function(_)).then_some(status);
            o.answered(&self.host, now, function_status, Some(body_size));
        }
        match result {
            CallResult::Function(response) => {
                match I::map_response(&config.global, &route, response) {
                    Ok(reply) => self.send(reply),
                    Err(error) => self.reject(&error),
                }
            }
            failed => {
                // u64, not the u128 of as_millis: its formatter costs 1.5 KB of wasm.
                let ms = u64::try_from(common.timeout.as_millis()).unwrap_or(u64::MAX);
                self.fail_transport(failed, &format!("{ms} ms"));
            }
        }
    }
}

impl<I: Integration, H: StreamHost> Drop for Stream<I, H> {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

#[cfg(test)]
mod tests {
    //! Every transition of the state machine, over the fake host. The
    //! comments name the Envoy callback sequence each test plays.

    use super::*;
    use crate::config::{compile, read_function_uri, CommonConfig};
    use crate::fields::{ConfigError, Fields};
    use crate::headers::owned;
    use crate::host::fake::{FakeHost, Shared};
    use crate::request::{forward, Callout};
    use crate::rewrite::Piece;

    /// The smallest integration: forwards the request, passes the answer.
    struct Plain;

    impl Integration for Plain {
        const NAME: &'static str = "plain";
        type Global = ();
        type Route = CommonConfig;

        fn read_global(_: &mut Fields) -> Result<(), ConfigError> {
            Ok(())
        }

        fn read_route(fields: &mut Fields, _: &()) -> Result<CommonConfig, ConfigError> {
            let uri = read_function_uri(fields, "function_uri")?;
            CommonConfig::read(fields, uri)
        }

        fn common(route: &CommonConfig) -> &CommonConfig {
            route
        }

        /// A function under `/signed` stands for SigV4: its credentials
        /// carry the body (as `x-signed-body`), so they need it first.
        fn in_place_with_body(route: &CommonConfig) -> bool {
            !route.function.path.starts_with("/signed")
        }

        /// A function under `/event` gets an event built from the body.
        fn in_place_replaces_body(route: &CommonConfig) -> bool {
            route.function.path.starts_with("/event")
        }

        /// A function under `/framed` frames its answer ([`Shouting`]).
        fn response_rewrite(_: &(), route: &CommonConfig) -> Option<Box<dyn ResponseRewrite>> {
            route
                .function
                .path
                .starts_with("/framed")
                .then(|| Box::new(Shouting) as Box<dyn ResponseRewrite>)
        }

        fn streams_response(route: &CommonConfig) -> bool {
            route.function.path.starts_with("/framed")
        }

        fn build_callout(
            _: &(),
            route: &CommonConfig,
            request: &ClientRequest,
            _: SystemTime,
        ) -> Result<Callout, ErrorReply> {
            let mut callout = forward(route, request);
            if Self::in_place_replaces_body(route) {
                callout.body = [b"event:", request.body.as_slice()].concat();
            }
            if !Self::in_place_with_body(route) {
                let signed = String::from_utf8_lossy(&request.body).into_owned();
                callout.headers.push(("x-signed-body".into(), signed));
            }
            Ok(callout)
        }
    }

    /// A test rewrite: a 418 is refused, the head is held when it may be
    /// (and gets `x-shouted`), bytes are upper-cased, `!` fails the stream.
    struct Shouting;

    impl ResponseRewrite for Shouting {
        fn start(
            &mut self,
            status: u16,
            _: &[(String, String)],
            can_hold: bool,
        ) -> Result<Start, ErrorReply> {
            if status == 418 {
                return Err(ErrorReply::new(
                    Failure::InvalidFunctionResponse,
                    "a teapot",
                ));
            }
            let head = Head {
                status: None,
                remove: vec!["content-length".into()],
                add: owned(&[("x-shouted", "yes")]),
            };
            Ok(if can_hold {
                Start::Hold(head)
            } else {
                Start::Pass(head)
            })
        }

        fn piece(&mut self, bytes: &[u8], _end: bool) -> Piece {
            if bytes.contains(&b'!') {
                let failure = ErrorReply::new(Failure::FunctionError, "the function shouted !");
                return Piece {
                    failure: Some(failure),
                    ..Piece::default()
                };
            }
            let head = bytes.starts_with(b"201").then(|| Head {
                status: Some(201),
                ..Head::default()
            });
            Piece {
                head,
                bytes: bytes.to_ascii_uppercase(),
                failure: None,
            }
        }
    }

    type TestStream = Stream<Plain, FakeHost>;

    fn stream_with(config: &str, watch: &Rc<BodyWatch<CommonConfig>>) -> TestStream {
        let compiled = compile(config.as_bytes(), Plain::read_global, Plain::read_route)
            .expect("test config compiles");
        Stream::new(
            FakeHost::new(Rc::new(Shared::default())),
            7,
            Some(Rc::new(compiled)),
            Rc::new(Registry::new("plain")),
            Rc::clone(watch),
        )
    }

    const CONFIG: &str = r#"{"function_uri": "http://fn.test/f", "cluster": "functions",
        "max_req_body_size": 10, "max_resp_body_size": 20}"#;

    fn stream() -> TestStream {
        stream_with(CONFIG, &Rc::new(BodyWatch::default()))
    }

    /// Sets the client's request as Envoy would present it.
    fn request(s: &TestStream, method: &str, extra: &[(&str, &str)], body: &str) {
        let mut headers = owned(&[(":method", method), (":path", "/f"), (":authority", "gw")]);
        headers.extend(owned(extra));
        let mut r = s.host().request.borrow_mut();
        r.headers = headers;
        r.body = body.as_bytes().to_vec();
    }

    /// Sets the callout's answer.
    fn answer(s: &TestStream, status: &str, headers: &[(&str, &str)], body: &str) {
        let mut all = owned(&[(":status", status)]);
        all.extend(owned(headers));
        let mut r = s.host().request.borrow_mut();
        r.call_headers = all;
        r.call_body = body.as_bytes().to_vec();
    }

    fn calls(s: &TestStream) -> Vec<Callout> {
        s.host()
            .calls
            .borrow()
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    fn sent(s: &TestStream) -> Vec<LocalReply> {
        s.host().sent.borrow().clone()
    }

    /// The JSON error code of the only reply.
    fn only_error(s: &TestStream) -> (u16, String) {
        let replies = sent(s);
        assert_eq!(replies.len(), 1, "exactly one reply: {replies:?}");
        let reply = replies.first().expect("one reply");
        let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON error");
        (
            reply.status,
            v["error"].as_str().unwrap_or_default().to_string(),
        )
    }

    fn outcome(s: &TestStream) -> Vec<String> {
        s.host()
            .properties()
            .into_iter()
            .filter(|(n, _)| n == crate::observe::fact::OUTCOME)
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn without_a_config_or_off_a_function_route_everything_passes() {
        let watch = Rc::new(BodyWatch::default());
        let mut s = Stream::<Plain, _>::new(
            FakeHost::new(Rc::new(Shared::default())),
            1,
            None,
            Rc::new(Registry::new("plain")),
            watch,
        );
        assert_eq!(s.on_request_headers(true), Action::Continue);
        let mut s = stream_with(
            r#"{"routes": {"fn": {"function_uri": "http://fn.test/f"}}}"#,
            &Rc::new(BodyWatch::default()),
        );
        s.host()
            .request
            .borrow_mut()
            .properties
            .insert("xds.route_name".into(), b"other".to_vec());
        assert_eq!(s.on_request_headers(false), Action::Continue);
        assert_eq!(s.on_request_body(3, true), Action::Continue);
        assert_eq!(s.on_request_trailers(), Action::Continue);
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert!(calls(&s).is_empty() && sent(&s).is_empty());
    }

    /// Every host call is a crossing into Envoy (BENCHMARKS.md prices
    /// them): a GET answered by the function makes exactly these, in this
    /// order. A new one must be deliberate.
    #[test]
    fn a_function_request_makes_the_documented_host_calls() {
        let mut s = stream();
        request(&s, "GET", &[], "");
        s.host()
            .request
            .borrow_mut()
            .properties
            .insert("source.address".into(), b"10.0.0.1:5".to_vec());
        s.on_request_headers(true);
        answer(&s, "200", &[("content-type", "text/plain")], "ok");
        s.on_call_response(2, 2);
        s.on_response_headers();
        s.on_log();
        let expected = vec![
            // request: the metrics label, the headers, the client's address
            // (x-forwarded-for), the call's time, the call, its body size
            "property",
            "request_headers",
            "property",
            "clock",
            "dispatch",
            "histogram",
            // the answer: its time, headers and body, its latency and size
            "clock",
            "call_headers",
            "call_body",
            "histogram",
            "histogram",
            // the outcome: the request counter, the access-log facts, the reply
            "counter",
            "set_property",
            "set_property",
            "set_property",
            "set_property",
            "send_response",
        ];
        // The route's metrics are defined once, on its first request.
        let calls = s.host().host_calls();
        assert!(calls.contains(&"define_metric"), "{calls:?}");
        let per_request: Vec<&str> = calls
            .iter()
            .copied()
            .filter(|c| *c != "define_metric")
            .collect();
        assert_eq!(per_request, expected);
        assert_eq!(sent(&s).first().map(|r| r.status), Some(200));
    }

    #[test]
    fn a_header_only_request_is_dispatched_from_the_headers_once() {
        let mut s = stream();
        request(&s, "GET", &[("x-a", "1")], "");
        assert_eq!(s.on_request_headers(true), Action::Pause);
        let c = calls(&s);
        assert_eq!(c.len(), 1);
        assert_eq!(c.first().map(|c| c.cluster.as_str()), Some("functions"));
        assert_eq!(c.first().and_then(|c| c.header("x-a")), Some("1"));
        // A stray trailer callback after dispatch does nothing.
        assert_eq!(s.on_request_trailers(), Action::Pause);
        assert_eq!(calls(&s).len(), 1);
    }

    #[test]
    fn a_body_is_accumulated_until_its_end_then_dispatched_once() {
        let watch = Rc::new(BodyWatch::default());
        let mut s = stream_with(CONFIG, &watch);
        request(&s, "POST", &[], "hello");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        assert_eq!(watch.waiting.borrow().len(), 1, "waits for its body");
        assert_eq!(s.on_request_body(3, false), Action::Pause);
        assert!(watch.waiting.borrow().is_empty(), "the body arrived");
        assert!(calls(&s).is_empty(), "not before the end of the body");
        assert_eq!(s.on_request_body(5, true), Action::Pause);
        let c = calls(&s);
        assert_eq!(c.first().map(|c| c.body.clone()), Some(b"hello".to_vec()));
        // A second end-of-body callback after dispatch (Envoy resumes the
        // paused chunk) must not send the call again.
        assert_eq!(s.on_request_body(5, true), Action::Pause);
        assert_eq!(calls(&s).len(), 1);
    }

    #[test]
    fn trailers_without_a_body_complete_the_request() {
        let watch = Rc::new(BodyWatch::default());
        let mut s = stream_with(CONFIG, &watch);
        request(&s, "POST", &[], "");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        assert_eq!(s.on_request_trailers(), Action::Pause);
        assert_eq!(calls(&s).len(), 1);
        assert!(watch.waiting.borrow().is_empty(), "no longer watched");
    }

    #[test]
    fn an_announced_oversized_body_gets_413_before_a_byte_is_read() {
        let mut s = stream();
        request(&s, "POST", &[("content-length", "11")], "");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        assert_eq!(only_error(&s), (413, "request_body_too_large".into()));
        // The body still streams in: nothing more happens.
        assert_eq!(s.on_request_body(11, true), Action::Pause);
        assert_eq!(s.on_request_trailers(), Action::Pause);
        assert!(calls(&s).is_empty());
        assert_eq!(sent(&s).len(), 1);
    }

    #[test]
    fn a_chunked_body_over_the_limit_gets_413_once() {
        let mut s = stream();
        request(&s, "POST", &[], "");
        s.on_request_headers(false);
        assert_eq!(s.on_request_body(11, false), Action::Pause);
        assert_eq!(s.on_request_body(30, true), Action::Pause);
        assert_eq!(only_error(&s), (413, "request_body_too_large".into()));
        assert!(calls(&s).is_empty());
    }

    #[test]
    fn the_functions_answer_becomes_the_reply() {
        let mut s = stream();
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        answer(&s, "201", &[("x-fn", "1"), ("content-length", "2")], "ok");
        s.on_call_response(3, 2);
        let reply = sent(&s);
        let reply = reply.first().expect("a reply");
        assert_eq!(
            (reply.status, reply.body.as_slice()),
            (201, b"ok".as_slice())
        );
        // Envoy frames the body itself.
        assert_eq!(reply.headers, owned(&[("x-fn", "1")]));
        assert_eq!(outcome(&s), vec!["function_2xx".to_string()]);
        // The reply passes the response hook unchanged.
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert!(s.host().response_headers_set.borrow().is_empty());
    }

    #[test]
    fn representation_headers_come_back_on_the_replys_way_out() {
        let mut s = stream();
        request(&s, "HEAD", &[], "");
        s.on_request_headers(true);
        answer(
            &s,
            "200",
            &[("content-type", "text/csv"), ("content-length", "42")],
            "",
        );
        s.on_call_response(3, 0);
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert_eq!(
            *s.host().response_headers_set.borrow(),
            owned(&[("content-type", "text/csv"), ("content-length", "42")])
        );
    }

    #[test]
    fn a_call_that_failed_after_the_functions_headers_is_a_response_cut_off() {
        let mut s = stream();
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        s.on_call_response(0, 0);
        assert_eq!(only_error(&s), (502, "function_response_too_large".into()));
        let body = sent(&s).first().map(|r| r.body.clone()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["message"], CUT_OFF);
        assert!(CUT_OFF.contains(&crate::config::ENVOY_CALLOUT_RESPONSE_CAP.to_string()));
        assert_eq!(outcome(&s), vec!["response_too_large".to_string()]);
    }

    #[test]
    fn over_max_resp_body_size_timeouts_and_envoys_failures_are_json_errors() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, (u16, &'a str));
        let cases: [Case; 3] = [
            (
                "200",
                &[],
                "012345678901234567890",
                (502, "function_response_too_large"),
            ),
            (
                "504",
                &[("content-length", "24"), ("content-type", "text/plain")],
                "upstream request timeout",
                (504, "function_timeout"),
            ),
            (
                "503",
                &[("content-length", "19"), ("content-type", "text/plain")],
                "no healthy upstream",
                (502, "function_unreachable"),
            ),
        ];
        for (status, headers, body, expected) in cases {
            let mut s = stream();
            request(&s, "GET", &[], "");
            s.on_request_headers(true);
            answer(&s, status, headers, body);
            s.on_call_response(headers.len() + 1, body.len());
            assert_eq!(only_error(&s), (expected.0, expected.1.to_string()));
        }
    }

    #[test]
    fn an_answer_after_the_client_went_away_is_dropped_quietly() {
        let mut s = stream();
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        // The client disconnects: Envoy ends the stream and logs it.
        s.host().client_gone.set(true);
        s.on_log();
        assert_eq!(outcome(&s), vec!["client_closed".to_string()]);
        // Should the answer still arrive, the failed reply is only logged
        // and the request is not counted twice.
        answer(&s, "200", &[], "late");
        s.on_call_response(1, 4);
        assert!(sent(&s).is_empty());
        assert_eq!(outcome(&s), vec!["client_closed".to_string()]);
        s.on_log();
        assert_eq!(outcome(&s).len(), 1);
    }

    #[test]
    fn the_routers_answer_is_replaced_when_no_holding_filter_follows() {
        let mut s = stream_with(
            r#"{"function_uri": "http://fn.test/f", "body_layout": "holding_filter"}"#,
            &Rc::new(BodyWatch::default()),
        );
        request(&s, "POST", &[], "");
        assert_eq!(s.on_request_headers(false), Action::Continue);
        // The router answered before the body reached us.
        assert_eq!(s.on_response_headers(), Action::Pause);
        assert_eq!(only_error(&s), (500, "body_layout_misconfigured".into()));
        // The body, and then the function's answer, come too late to act.
        assert_eq!(s.on_request_body(3, true), Action::Pause);
        assert!(calls(&s).is_empty());
        answer(&s, "200", &[], "");
        s.on_call_response(1, 0);
        assert_eq!(sent(&s).len(), 1);
    }

    const IN_PLACE: &str = r#"{"function_uri": "http://fn.test/base", "cluster": "functions",
        "strip_prefix": "/f", "forwarding": "route", "max_req_body_size": 10}"#;

    fn in_place_stream(route_cluster: &str) -> TestStream {
        let s = stream_with(IN_PLACE, &Rc::new(BodyWatch::default()));
        let mut r = s.host().request.borrow_mut();
        r.properties
            .insert("xds.cluster_name".into(), route_cluster.as_bytes().to_vec());
        r.properties
            .insert("xds.route_name".into(), b"orders".to_vec());
        drop(r);
        s
    }

    /// The router's answer as the in-place hook sees it.
    fn routed(s: &TestStream, status: &str, details: &str) {
        let mut r = s.host().request.borrow_mut();
        r.response_headers = owned(&[(":status", status)]);
        r.properties
            .insert("response.code_details".into(), details.as_bytes().to_vec());
    }

    #[test]
    fn in_place_the_request_is_rewritten_and_its_body_streams_past() {
        let mut s = in_place_stream("functions");
        request(&s, "POST", &[("content-length", "1000"), ("x-a", "1")], "");
        s.host().request.borrow_mut().headers[1] = (":path".into(), "/f/orders?x=1".into());
        // No ceiling in place: a body over max_req_body_size goes on.
        assert_eq!(s.on_request_headers(false), Action::Continue);
        assert!(calls(&s).is_empty(), "no callout");
        let headers = s.host().request.borrow().headers.clone();
        let get = |n: &str| crate::headers::get(&headers, n).map(str::to_string);
        assert_eq!(get(":path").as_deref(), Some("/base/orders?x=1"));
        assert_eq!(get(":authority").as_deref(), Some("fn.test"));
        assert_eq!(get("x-a").as_deref(), Some("1"));
        assert_eq!(get("content-length").as_deref(), Some("1000"));
        assert_eq!(get("x-forwarded-host").as_deref(), Some("gw"));
        // Leads Envoy's second routing to the route's in-place twin.
        assert_eq!(get(IN_PLACE_ROUTE_HEADER).as_deref(), Some("orders"));
        assert_eq!(s.on_request_body(1000, true), Action::Continue);
        assert_eq!(s.on_request_trailers(), Action::Continue);
        // The function's own answer, even a 503, passes untouched.
        routed(&s, "503", "via_upstream");
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert!(sent(&s).is_empty());
        assert_eq!(outcome(&s), vec!["function_5xx".to_string()]);
        // Streamed bodies are not measured: the one histogram is latency.
        let calls = s.host().host_calls();
        // Four reads: the route name once (label and twin header), the
        // peer address, the route's cluster, the router's code details.
        assert_eq!(
            calls.iter().filter(|c| **c == "property").count(),
            4,
            "{calls:?}"
        );
        assert_eq!(calls.iter().filter(|c| **c == "histogram").count(), 1);
        assert!(!calls.contains(&"request_body"), "the body is never read");
    }

    fn signed_in_place_stream(layout: &str) -> TestStream {
        let config = IN_PLACE
            .replace("http://fn.test/base", "http://fn.test/signed")
            .replace(
                r#""forwarding""#,
                &format!(r#""body_layout": "{layout}", "forwarding""#),
            );
        let s = stream_with(&config, &Rc::new(BodyWatch::default()));
        s.host()
            .request
            .borrow_mut()
            .properties
            .insert("xds.cluster_name".into(), b"functions".to_vec());
        s
    }

    #[test]
    fn in_place_a_body_the_credentials_sign_is_held_then_signed_into_the_headers() {
        // on_request_headers(false) → body chunks → end of stream.
        let mut s = signed_in_place_stream("stop_iteration");
        request(&s, "POST", &[("content-length", "5")], "hello");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        let header = |s: &TestStream, n: &str| {
            crate::headers::get(&s.host().request.borrow().headers, n).map(str::to_string)
        };
        assert_eq!(
            header(&s, ":path").as_deref(),
            Some("/f"),
            "not yet rewritten"
        );
        assert_eq!(s.on_request_body(3, false), Action::Pause);
        assert_eq!(s.on_request_body(5, true), Action::Continue);
        assert!(calls(&s).is_empty(), "no callout");
        assert_eq!(header(&s, "x-signed-body").as_deref(), Some("hello"));
        assert_eq!(header(&s, ":path").as_deref(), Some("/signed"));
        assert_eq!(header(&s, "content-length").as_deref(), Some("5"));
        routed(&s, "200", "via_upstream");
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert!(sent(&s).is_empty());
        // The body is held to be signed: the ceiling applies.
        let mut s = signed_in_place_stream("stop_iteration");
        request(&s, "POST", &[], "");
        s.on_request_headers(false);
        assert_eq!(s.on_request_body(11, false), Action::Pause);
        assert_eq!(only_error(&s), (413, "request_body_too_large".into()));
        // Trailers complete a held body too.
        let mut s = signed_in_place_stream("stop_iteration");
        request(&s, "POST", &[], "abc");
        s.on_request_headers(false);
        s.on_request_body(3, false);
        assert_eq!(s.on_request_trailers(), Action::Continue);
        assert_eq!(header(&s, "x-signed-body").as_deref(), Some("abc"));
    }

    #[test]
    fn in_place_a_signed_body_behind_a_holding_filter_is_called_out() {
        // Headers went on before the body: Envoy refuses changes to them
        // from the body callback, so the call takes the callout path.
        let mut s = signed_in_place_stream("holding_filter");
        request(&s, "POST", &[], "hello");
        assert_eq!(s.on_request_headers(false), Action::Continue);
        assert_eq!(s.on_request_body(5, true), Action::Pause);
        let call = calls(&s);
        assert_eq!(call.len(), 1);
        assert_eq!(
            crate::headers::get(&call[0].headers, "x-signed-body"),
            Some("hello")
        );
        assert_eq!(
            crate::headers::get(&s.host().request.borrow().headers, ":path"),
            Some("/f"),
            "the request itself is untouched"
        );
        // Without a body it still goes in place.
        let mut s = signed_in_place_stream("holding_filter");
        request(&s, "GET", &[], "");
        assert_eq!(s.on_request_headers(true), Action::Continue);
        assert!(calls(&s).is_empty());
    }

    #[test]
    fn in_place_the_routers_failures_are_the_callouts_errors() {
        for (details, status, code) in [
            ("upstream_response_timeout", 504, "function_timeout"),
            (
                "upstream_reset_before_response_started{remote_connection_failure}",
                502,
                "function_unreachable",
            ),
            ("no_healthy_upstream", 502, "function_unreachable"),
        ] {
            let mut s = in_place_stream("functions");
            request(&s, "GET", &[], "");
            assert_eq!(s.on_request_headers(true), Action::Continue);
            routed(&s, "503", details);
            assert_eq!(s.on_response_headers(), Action::Pause);
            assert_eq!(only_error(&s), (status, code.to_string()), "{details}");
            // Our reply passes the hook on its way out.
            assert_eq!(s.on_response_headers(), Action::Continue);
        }
    }

    #[test]
    fn in_place_a_client_cannot_send_the_route_header() {
        let mut s = in_place_stream("functions");
        request(&s, "GET", &[(IN_PLACE_ROUTE_HEADER, "orders")], "");
        assert_eq!(s.on_request_headers(true), Action::Pause);
        assert_eq!(only_error(&s), (400, "reserved_header".into()));
    }

    #[test]
    fn in_place_a_route_to_another_cluster_is_refused() {
        let mut s = in_place_stream("some_other_cluster");
        request(&s, "GET", &[], "");
        assert_eq!(s.on_request_headers(true), Action::Pause);
        assert_eq!(only_error(&s), (500, "forwarding_misconfigured".into()));
        let message = String::from_utf8_lossy(&sent(&s)[0].body).into_owned();
        assert!(
            message.contains("some_other_cluster") && message.contains("functions"),
            "{message}"
        );
    }

    #[test]
    fn once_the_flag_is_known_missing_bodies_are_refused_at_once() {
        let watch = Rc::new(BodyWatch::default());
        watch.flag_missing.set(true);
        let mut s = stream_with(CONFIG, &watch);
        request(&s, "POST", &[], "");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        assert_eq!(only_error(&s), (500, "body_layout_misconfigured".into()));
        assert!(watch.waiting.borrow().is_empty());
        // A header-only request on the same config is still served.
        let mut s = stream_with(CONFIG, &watch);
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        assert_eq!(calls(&s).len(), 1);
    }

    #[test]
    fn a_dropped_stream_stops_being_watched() {
        let watch = Rc::new(BodyWatch::default());
        let mut s = stream_with(CONFIG, &watch);
        request(&s, "POST", &[], "");
        s.on_request_headers(false);
        assert_eq!(watch.waiting.borrow().len(), 1);
        drop(s);
        assert!(watch.waiting.borrow().is_empty());
    }

    #[test]
    fn a_call_the_cluster_fails_at_once_is_an_unreachable_function() {
        // A full circuit breaker: the error the router gives in place.
        let mut s = stream();
        s.host().full_clusters.borrow_mut().push("functions".into());
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        assert_eq!(only_error(&s), (502, "function_unreachable".into()));
        assert_eq!(outcome(&s), vec!["unreachable".to_string()]);
    }

    #[test]
    fn a_cluster_the_host_refuses_is_a_callout_failure() {
        let mut s = stream();
        s.host()
            .missing_clusters
            .borrow_mut()
            .push("functions".into());
        request(&s, "GET", &[("x-request-id", "rid-1")], "");
        s.on_request_headers(true);
        assert_eq!(only_error(&s), (500, "callout_failed".into()));
        let body = sent(&s).first().map(|r| r.body.clone()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["request_id"], "rid-1");
    }

    #[test]
    fn upstream_replies_get_a_date() {
        let mut s = stream_with(
            r#"{"function_uri": "http://fn.test/f", "placement": "upstream"}"#,
            &Rc::new(BodyWatch::default()),
        );
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        answer(&s, "200", &[], "ok");
        s.on_call_response(1, 2);
        let reply = sent(&s);
        let date = reply
            .first()
            .and_then(|r| crate::headers::get(&r.headers, "date").map(str::to_string));
        assert_eq!(date.as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
    }

    const FRAMED: &str = r#"{"function_uri": "http://fn.test/framed", "cluster": "functions",
        "forwarding": "route"}"#;

    fn framed_stream(config: &str) -> TestStream {
        let s = stream_with(config, &Rc::new(BodyWatch::default()));
        let mut r = s.host().request.borrow_mut();
        r.properties
            .insert("xds.cluster_name".into(), b"functions".to_vec());
        r.properties
            .insert("xds.route_name".into(), b"orders".to_vec());
        drop(r);
        s
    }

    /// The next piece of the router's answer body, as Envoy hands it over.
    fn body_piece(s: &mut TestStream, bytes: &str, end: bool) -> Action {
        s.host().request.borrow_mut().response_piece = bytes.as_bytes().to_vec();
        s.on_response_body(bytes.len(), end)
    }

    fn out(s: &TestStream) -> Vec<String> {
        let r = s.host().request.borrow();
        r.response_out
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn in_place_a_rewrite_holds_the_head_until_its_first_bytes_then_streams() {
        let mut s = framed_stream(FRAMED);
        request(&s, "GET", &[], "");
        assert_eq!(s.on_request_headers(true), Action::Continue);
        routed(&s, "200", "via_upstream");
        s.host()
            .request
            .borrow_mut()
            .response_headers
            .push(("content-length".into(), "9".into()));
        assert_eq!(
            s.on_response_headers(),
            Action::Pause,
            "held (the flag is set)"
        );
        let head = s.host().request.borrow().response_headers.clone();
        assert_eq!(head, owned(&[(":status", "200"), ("x-shouted", "yes")]));
        assert_eq!(
            outcome(&s),
            Vec::<String>::new(),
            "no outcome while the head waits"
        );
        // A piece that gives nothing keeps the head waiting.
        s.host().request.borrow_mut().response_piece.clear();
        assert_eq!(s.on_response_body(0, false), Action::Pause);
        // The first bytes (and the status they name) release it.
        assert_eq!(body_piece(&mut s, "201 hello ", false), Action::Continue);
        assert_eq!(
            *s.host().response_headers_set.borrow(),
            owned(&[(":status", "201")])
        );
        assert_eq!(body_piece(&mut s, "world", true), Action::Continue);
        assert_eq!(
            out(&s),
            vec!["201 HELLO ", "WORLD"],
            "an unchanged piece is not written"
        );
        assert_eq!(outcome(&s), vec!["function_2xx".to_string()]);
        s.on_log();
        let bytes = "envoy_faas_stream_bytes_total.filter=.=plain;.;route=.=orders;.;";
        assert_eq!(s.host().metric_value(bytes), 15);
    }

    #[test]
    fn in_place_a_stream_failing_before_its_first_byte_is_json_after_it_a_reset() {
        let mut s = framed_stream(FRAMED);
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        routed(&s, "200", "via_upstream");
        s.on_response_headers();
        assert_eq!(body_piece(&mut s, "oops!", false), Action::Pause);
        assert_eq!(only_error(&s), (502, "function_error".to_string()));
        assert!(!s.host().request.borrow().reset);

        let mut s = framed_stream(FRAMED);
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        routed(&s, "200", "via_upstream");
        s.on_response_headers();
        assert_eq!(body_piece(&mut s, "fine ", false), Action::Continue);
        assert_eq!(body_piece(&mut s, "then!", false), Action::Pause);
        assert!(
            s.host().request.borrow().reset,
            "the client's stream is reset"
        );
        assert!(sent(&s).is_empty(), "no reply after the status went out");
        s.on_log();
        let resets = "envoy_faas_stream_resets_total.filter=.=plain;.;route=.=orders;.;outcome=.=function_error;.;";
        assert_eq!(s.host().metric_value(resets), 1);
    }

    #[test]
    fn in_place_without_the_flag_a_rewrite_passes_the_head_at_once() {
        let config = FRAMED.replace(
            "\"forwarding\"",
            "\"body_layout\": \"holding_filter\", \"forwarding\"",
        );
        let mut s = framed_stream(&config);
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        routed(&s, "200", "via_upstream");
        assert_eq!(s.on_response_headers(), Action::Continue);
        assert_eq!(outcome(&s), vec!["function_2xx".to_string()]);
        assert_eq!(body_piece(&mut s, "a", true), Action::Continue);
    }

    #[test]
    fn in_place_a_refused_head_and_a_missing_twin_are_json_errors() {
        let mut s = framed_stream(FRAMED);
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        routed(&s, "418", "via_upstream");
        assert_eq!(s.on_response_headers(), Action::Pause);
        assert_eq!(
            only_error(&s),
            (502, "invalid_function_response".to_string())
        );

        let mut s = in_place_stream("functions");
        request(&s, "GET", &[], "");
        s.on_request_headers(true);
        routed(&s, "404", "route_not_found");
        assert_eq!(s.on_response_headers(), Action::Pause);
        assert_eq!(
            only_error(&s),
            (500, "forwarding_misconfigured".to_string())
        );
    }

    #[test]
    fn in_place_a_replaced_body_is_written_or_the_request_is_called_out() {
        let config = r#"{"function_uri": "http://fn.test/event", "cluster": "functions", "forwarding": "route"}"#;
        // With a held body: it becomes the event, with its length.
        let mut s = framed_stream(config);
        request(&s, "POST", &[("content-length", "2")], "hi");
        assert_eq!(s.on_request_headers(false), Action::Pause);
        assert_eq!(s.on_request_body(2, true), Action::Continue);
        let r = s.host().request.borrow();
        assert_eq!(r.body, b"event:hi");
        assert_eq!(crate::headers::get(&r.headers, "content-length"), Some("8"));
        drop(r);
        // Without one Envoy refuses the write: the callout path answers.
        let mut s = framed_stream(config);
        request(&s, "GET", &[], "");
        s.host().request.borrow_mut().refuse_request_body = true;
        assert_eq!(s.on_request_headers(true), Action::Pause);
        assert_eq!(calls(&s).len(), 1);
        assert_eq!(calls(&s)[0].body, b"event:");
    }
}
