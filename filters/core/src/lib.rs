//! Shared core of the envoy-faas filters.
//!
//! Everything except [`shell`] is plain Rust over plain data and is unit
//! tested on the host: config parsing ([`config`], [`fields`], [`uri`]),
//! the function call ([`request`], [`path`], [`headers`]), the answer
//! ([`response`]) and how the body reaches the filter ([`layout`]).
//! [`stream`] is one request's state machine; it and the background work
//! reach Envoy only through the [`host::Host`] and [`host::StreamHost`]
//! traits, so both are unit-tested with a fake. [`shell`] is the only module
//! that talks to Envoy.

pub mod base64;
pub mod calendar;
pub mod config;
pub mod credentials;
pub mod decimal;
pub mod fields;
pub mod headers;
pub mod host;
pub mod integration;
pub mod layout;
pub mod metrics;
pub mod observe;
pub mod outcome;
pub mod path;
pub mod redact;
pub mod request;
pub mod response;
pub mod rewrite;
pub mod shell;
pub mod sigv4;
pub mod stream;
pub mod uri;

/// The module's version, and the git commit it was built from (stamped by
/// `make build` through `ENVOY_FAAS_COMMIT`); logged when a VM starts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = match option_env!("ENVOY_FAAS_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

pub use config::CommonConfig;
pub use fields::{ConfigError, Fields};
pub use host::{Host, MetricKind, StreamHost};
pub use integration::Integration;
pub use request::{Callout, ClientRequest};
pub use response::{CalloutResponse, ErrorReply, LocalReply};
