//! The host calls a filter's background work needs (shared data, callouts,
//! metrics, the clock), behind a trait: the shell implements it over
//! proxy-wasm, and the logic that uses it is unit-tested with a fake.

use crate::headers::HeaderList;
use crate::request::Callout;
use crate::response::LocalReply;
use std::fmt;
use std::time::SystemTime;

/// Why the host did not send a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchError {
    /// Refused: an unknown cluster, or headers it will not send (Envoy's
    /// `BadArgument`): the gateway's configuration is wrong.
    Refused(String),
    /// Accepted, then failed before returning (Envoy's `InternalFailure`):
    /// the cluster's circuit breaker overflowed or it has no healthy host,
    /// the failures the router reports for an in-place request.
    FailedAtOnce(String),
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::Refused(why) | DispatchError::FailedAtOnce(why) => f.write_str(why),
        }
    }
}

pub trait Host {
    /// The wall clock.
    fn now(&self) -> SystemTime;

    /// A value of the VM-wide shared data (every worker's VM of the same
    /// `vm_id` sees it) with its compare-and-swap version.
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);

    /// Stores `value` if the version is still `cas` (`None`: always).
    /// `false` when another VM wrote first, or the host refused.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;

    /// Sends `call` from the current context; the token identifies its
    /// answer.
    fn dispatch(&self, call: &Callout) -> Result<u32, DispatchError>;

    /// Defines a counter, gauge or histogram by its full name (Envoy hands
    /// out a new id even for a name it knows: define each name once).
    fn metric(&self, kind: MetricKind, name: &str) -> Option<u32>;

    /// Adds to a counter.
    fn increment(&self, metric: u32, by: u64);

    /// Sets a gauge, or records a value in a histogram.
    fn record(&self, metric: u32, value: u64);

    /// Sets a property of the current request (Envoy keeps it as filter
    /// state `wasm.<name>`, which access logs can print).
    fn set_property(&self, name: &str, value: &[u8]);
}

/// What one request's context reads from and sends to Envoy, on top of
/// [`Host`]. Reads that fail give empty values: the state machine treats
/// them like absent data, never as a reason to panic.
pub trait StreamHost: Host {
    /// The client's request headers, pseudo-headers included.
    fn request_headers(&self) -> HeaderList;

    /// The first `size` bytes of the buffered request body.
    fn request_body(&self, size: usize) -> Vec<u8>;

    /// A request property (`xds.route_name`, `source.address`, ...).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// The callout answer's headers, `:status` included.
    fn call_response_headers(&self) -> HeaderList;

    /// The callout answer's body.
    fn call_response_body(&self, size: usize) -> Vec<u8>;

    /// Answers the client with `reply` (Envoy's local-reply path).
    fn send_response(&self, reply: &LocalReply) -> Result<(), String>;

    /// Sets a header of the response passing the filter.
    fn set_response_header(&self, name: &str, value: &str);

    /// Replaces the request's headers, pseudo-headers included (in place
    /// forwarding). Only valid in the request-headers callback.
    fn replace_request_headers(&self, headers: &HeaderList) -> Result<(), String>;

    /// One header of the response passing the filter (`:status`): one
    /// host call, where the whole map would copy every header.
    fn response_header(&self, name: &str) -> Option<String>;

    /// Every header of the response passing the filter (a rewritten
    /// stream's start reads the platform's headers).
    fn response_headers(&self) -> HeaderList;

    /// Removes every value of a response header.
    fn remove_response_header(&self, name: &str);

    /// Adds a value to a response header (repeats kept).
    fn add_response_header(&self, name: &str, value: &str);

    /// The first `size` bytes of the response body Envoy hands over now.
    fn response_body(&self, size: usize) -> Vec<u8>;

    /// Replaces the first `size` bytes of that body with `bytes`.
    fn replace_response_body(&self, size: usize, bytes: &[u8]) -> Result<(), String>;

    /// Replaces the first `size` bytes of the request body (in place, with
    /// the body held, or `size` 0 for a request without one).
    fn replace_request_body(&self, size: usize, bytes: &[u8]) -> Result<(), String>;

    /// Resets the client's stream: what an HTTP gateway must do when a
    /// response fails after its first bytes went out.
    fn reset_response(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Unix seconds of a wall-clock time (0 before 1970).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An in-memory [`Host`] for unit tests: shared data with versions (one
/// store can back several "VMs"), recorded calls, metrics by name and a
/// settable clock.
#[cfg(any(test, feature = "fake-host"))]
pub mod fake {
    use super::{DispatchError, Host, MetricKind, StreamHost};
    use crate::headers::HeaderList;
    use crate::request::Callout;
    use crate::response::LocalReply;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use std::time::{Duration, SystemTime};

    /// What several VMs of one Envoy share: the data and the clock.
    #[derive(Default)]
    pub struct Shared {
        pub data: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
        pub unix_seconds: Cell<u64>,
        /// Metric values by name (counters add, gauges set).
        pub metrics: RefCell<BTreeMap<String, u64>>,
    }

    pub struct FakeHost {
        pub shared: Rc<Shared>,
        /// Calls this VM dispatched, with their tokens.
        pub calls: RefCell<Vec<(u32, Callout)>>,
        /// Clusters the host refuses to call (they do not exist).
        pub missing_clusters: RefCell<Vec<String>>,
        /// Clusters that fail every call at once (a full circuit breaker).
        pub full_clusters: RefCell<Vec<String>>,
        names: RefCell<Vec<String>>,
        next_token: Cell<u32>,
        properties: RefCell<Vec<(String, String)>>,
        /// What the current request looks like to [`StreamHost`] reads.
        pub request: RefCell<FakeRequest>,
        /// Replies sent to the client, in order.
        pub sent: RefCell<Vec<LocalReply>>,
        /// Headers set on the response passing the filter, in order.
        pub response_headers_set: RefCell<HeaderList>,
        /// The client went away: replies fail as Envoy's do then.
        pub client_gone: Cell<bool>,
        /// Every host call made, by kind, in order: each is a crossing
        /// into Envoy, so the stream tests hold the per-request count.
        log: RefCell<Vec<&'static str>>,
    }

    /// The request and callout answer a [`FakeHost`] hands out.
    #[derive(Default)]
    pub struct FakeRequest {
        pub headers: HeaderList,
        pub body: Vec<u8>,
        /// Readable properties by dotted path (`xds.route_name`).
        pub properties: BTreeMap<String, Vec<u8>>,
        pub call_headers: HeaderList,
        pub call_body: Vec<u8>,
        /// The response passing the filter (in place forwarding).
        pub response_headers: HeaderList,
        /// The response body piece the current callback hands over.
        pub response_piece: Vec<u8>,
        /// What each body callback's piece was replaced with, in order.
        pub response_out: Vec<Vec<u8>>,
        /// The client's stream was reset.
        pub reset: bool,
        /// Refuse request body writes (Envoy without a body buffer).
        pub refuse_request_body: bool,
    }

    impl FakeHost {
        pub fn new(shared: Rc<Shared>) -> FakeHost {
            FakeHost {
                shared,
                calls: RefCell::new(Vec::new()),
                missing_clusters: RefCell::new(Vec::new()),
                full_clusters: RefCell::new(Vec::new()),
                names: RefCell::new(Vec::new()),
                next_token: Cell::new(1),
                properties: RefCell::new(Vec::new()),
                request: RefCell::new(FakeRequest::default()),
                sent: RefCell::new(Vec::new()),
                response_headers_set: RefCell::new(Vec::new()),
                client_gone: Cell::new(false),
                log: RefCell::new(Vec::new()),
            }
        }

        /// The host calls made so far, by kind, in order.
        pub fn host_calls(&self) -> Vec<&'static str> {
            self.log.borrow().clone()
        }

        fn logged(&self, kind: &'static str) {
            self.log.borrow_mut().push(kind);
        }

        /// The properties set so far, in order.
        pub fn properties(&self) -> Vec<(String, String)> {
            self.properties.borrow().clone()
        }

        /// Every definition so far, as `Kind:name`.
        pub fn defined(&self) -> Vec<String> {
            self.names.borrow().clone()
        }

        pub fn metric_value(&self, name: &str) -> u64 {
            self.shared.metrics.borrow().get(name).copied().unwrap_or(0)
        }

        /// Takes the calls dispatched so far.
        pub fn take_calls(&self) -> Vec<(u32, Callout)> {
            std::mem::take(&mut *self.calls.borrow_mut())
        }
    }

    impl Host for FakeHost {
        fn now(&self) -> SystemTime {
            self.logged("clock");
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.shared.unix_seconds.get())
        }

        fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.logged("shared_data");
            match self.shared.data.borrow().get(key) {
                Some((value, cas)) => (Some(value.clone()), Some(*cas)),
                None => (None, None),
            }
        }

        fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            self.logged("set_shared_data");
            let mut data = self.shared.data.borrow_mut();
            let current = data.get(key).map(|(_, c)| *c);
            // As Envoy (proxy-wasm-cpp-host SharedData::set): a CAS is
            // checked against an existing key; a missing key is created
            // whatever the CAS.
            if current.is_some() && cas.is_some_and(|c| Some(c) != current) {
                return false;
            }
            let next = current.unwrap_or(0) + 1;
            data.insert(key.to_string(), (value.to_vec(), next));
            true
        }

        fn dispatch(&self, call: &Callout) -> Result<u32, DispatchError> {
            self.logged("dispatch");
            if self.missing_clusters.borrow().contains(&call.cluster) {
                let why = format!("no cluster \"{}\"", call.cluster);
                return Err(DispatchError::Refused(why));
            }
            if self.full_clusters.borrow().contains(&call.cluster) {
                let why = format!("cluster \"{}\" failed the call at once", call.cluster);
                return Err(DispatchError::FailedAtOnce(why));
            }
            let token = self.next_token.get();
            self.next_token.set(token + 1);
            self.calls.borrow_mut().push((token, call.clone()));
            Ok(token)
        }

        fn metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
            self.logged("define_metric");
            let mut names = self.names.borrow_mut();
            names.push(format!("{kind:?}:{name}"));
            u32::try_from(names.len() - 1).ok()
        }

        fn increment(&self, metric: u32, by: u64) {
            self.logged("counter");
            let name = self.name_of(metric);
            *self.shared.metrics.borrow_mut().entry(name).or_default() += by;
        }

        fn record(&self, metric: u32, value: u64) {
            self.logged("histogram");
            let name = self.name_of(metric);
            self.shared.metrics.borrow_mut().insert(name, value);
        }

        fn set_property(&self, name: &str, value: &[u8]) {
            self.logged("set_property");
            let value = String::from_utf8_lossy(value).into_owned();
            self.properties.borrow_mut().push((name.to_string(), value));
        }
    }

    impl StreamHost for FakeHost {
        fn request_headers(&self) -> HeaderList {
            self.logged("request_headers");
            self.request.borrow().headers.clone()
        }

        fn request_body(&self, size: usize) -> Vec<u8> {
            self.logged("request_body");
            let body = &self.request.borrow().body;
            body.get(..size).unwrap_or(body).to_vec()
        }

        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.logged("property");
            self.request
                .borrow()
                .properties
                .get(&path.join("."))
                .cloned()
        }

        fn call_response_headers(&self) -> HeaderList {
            self.logged("call_headers");
            self.request.borrow().call_headers.clone()
        }

        fn call_response_body(&self, size: usize) -> Vec<u8> {
            self.logged("call_body");
            let body = &self.request.borrow().call_body;
            body.get(..size).unwrap_or(body).to_vec()
        }

        fn send_response(&self, reply: &LocalReply) -> Result<(), String> {
            self.logged("send_response");
            if self.client_gone.get() {
                return Err("NotFound".into());
            }
            self.sent.borrow_mut().push(reply.clone());
            Ok(())
        }

        fn set_response_header(&self, name: &str, value: &str) {
            self.logged("set_response_header");
            self.response_headers_set
                .borrow_mut()
                .push((name.to_string(), value.to_string()));
        }

        fn replace_request_headers(&self, headers: &HeaderList) -> Result<(), String> {
            self.logged("replace_request_headers");
            self.request.borrow_mut().headers = headers.clone();
            Ok(())
        }

        fn response_header(&self, name: &str) -> Option<String> {
            self.logged("response_header");
            crate::headers::get(&self.request.borrow().response_headers, name).map(str::to_string)
        }

        fn response_headers(&self) -> HeaderList {
            self.logged("response_headers");
            self.request.borrow().response_headers.clone()
        }

        fn remove_response_header(&self, name: &str) {
            self.logged("remove_response_header");
            let mut request = self.request.borrow_mut();
            request
                .response_headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }

        fn add_response_header(&self, name: &str, value: &str) {
            self.logged("add_response_header");
            let mut request = self.request.borrow_mut();
            request
                .response_headers
                .push((name.to_string(), value.to_string()));
        }

        fn response_body(&self, size: usize) -> Vec<u8> {
            self.logged("response_body");
            let piece = &self.request.borrow().response_piece;
            piece.get(..size).unwrap_or(piece).to_vec()
        }

        fn replace_response_body(&self, _size: usize, bytes: &[u8]) -> Result<(), String> {
            self.logged("replace_response_body");
            self.request.borrow_mut().response_out.push(bytes.to_vec());
            Ok(())
        }

        fn replace_request_body(&self, _size: usize, bytes: &[u8]) -> Result<(), String> {
            self.logged("replace_request_body");
            let mut request = self.request.borrow_mut();
            if request.refuse_request_body {
                return Err("NotFound".into());
            }
            request.body = bytes.to_vec();
            Ok(())
        }

        fn reset_response(&self) {
            self.logged("reset_response");
            self.request.borrow_mut().reset = true;
        }
    }

    impl FakeHost {
        fn name_of(&self, metric: u32) -> String {
            let names = self.names.borrow();
            let full = names.get(metric as usize).cloned().unwrap_or_default();
            full.split_once(':')
                .map(|(_, n)| n.to_string())
                .unwrap_or(full)
        }
    }
}
