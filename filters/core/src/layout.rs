//! How the request body reaches the filter, and how to tell when a
//! deployment gets it wrong (plain data; the shell acts on it).
//!
//! Envoy hands a request body to a filter that paused in request headers
//! only when its `PluginConfig` sets `allow_on_headers_stop_iteration`.
//! Istio and Envoy Gateway never set it. Without the flag the filter must
//! let the headers go on, and a *holding filter* placed right after it
//! (`envoy.filters.http.buffer`, or a Lua filter that calls `body()`)
//! keeps them from the router until the filter has answered.

use crate::headers::HeaderList;

/// The deployment's layout, set per route with `body_layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyLayout {
    /// The flag is set: pause in request headers, receive the body.
    #[default]
    StopIteration,
    /// No flag; a holding filter follows: let the headers go on, hold the
    /// body here until it is complete.
    HoldingFilter,
}

impl BodyLayout {
    pub fn parse(name: &str) -> Option<BodyLayout> {
        match name {
            "stop_iteration" => Some(BodyLayout::StopIteration),
            "holding_filter" => Some(BodyLayout::HoldingFilter),
            _ => None,
        }
    }

    /// Whether request headers followed by a body are paused here (rather
    /// than passed on to the holding filter).
    pub fn pauses_headers(self) -> bool {
        self == BodyLayout::StopIteration
    }
}

/// Where the filter runs, set per route with `placement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// In the listener's HTTP filter chain (the usual place).
    #[default]
    Listener,
    /// In a cluster's upstream HTTP filters (before `upstream_codec`), the
    /// arrangement that lets Envoy's cache filter store function answers.
    Upstream,
}

impl Placement {
    pub fn parse(name: &str) -> Option<Placement> {
        match name {
            "listener" => Some(Placement::Listener),
            "upstream" => Some(Placement::Upstream),
            _ => None,
        }
    }

    /// Whether the filter may read the `source.address` property: Envoy
    /// 1.40 crashes (a null dereference, the whole process) when an
    /// upstream filter reads it. Upstream, `x-forwarded-for` is forwarded
    /// as the HCM set it (`use_remote_address: true` appends the client).
    pub fn reads_peer_address(self) -> bool {
        self == Placement::Listener
    }
}

/// How the function is called, set per route (or filter-wide) with
/// `forwarding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forwarding {
    /// The filter calls the function's cluster (`dispatch_http_call`) and
    /// answers the client with the result: APISIX's and Kong's model.
    #[default]
    Callout,
    /// The filter rewrites the request in place (path, authority,
    /// credentials, forwarding headers) in the request-headers callback and
    /// Envoy's router forwards it to the route's cluster: bodies stream
    /// both ways, no size ceiling, the router's retries and timeouts apply.
    Route,
}

impl Forwarding {
    pub fn parse(name: &str) -> Option<Forwarding> {
        match name {
            "callout" => Some(Forwarding::Callout),
            "route" => Some(Forwarding::Route),
            _ => None,
        }
    }
}

/// Envoy's `HeaderMap::byteSize()`: names plus values, pseudo-headers
/// included. Envoy's `request.total_size` is this plus the body bytes it
/// has received, so the difference tells whether body bytes arrived.
pub fn header_bytes(headers: &HeaderList) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.len() + value.len()) as u64)
        .sum()
}

/// Whether Envoy received body bytes that never reached the filter: the
/// filter paused in headers and Envoy buffered the body instead of passing
/// it on, which it does exactly when the flag is missing.
pub fn body_withheld(total_size: u64, header_bytes: u64) -> bool {
    total_size > header_bytes
}

/// The reply (and log line) when the flag is missing in `stop_iteration`.
pub const FLAG_MISSING: &str = "Envoy did not pass the request body to the filter: set \
     allow_on_headers_stop_iteration: true on the wasm PluginConfig, or place a holding filter \
     (envoy.filters.http.buffer, or Lua calling body()) right after this one and set \
     \"body_layout\": \"holding_filter\"";

/// The reply (and log line) when `holding_filter` runs without one.
pub const NO_HOLDING_FILTER: &str = "the request reached the route's own cluster: \
     \"body_layout\": \"holding_filter\" needs a holding filter (envoy.filters.http.buffer, or \
     Lua calling body()) right after this filter and before the router; add it, or set \
     allow_on_headers_stop_iteration: true and \"body_layout\": \"stop_iteration\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_layouts_only() {
        assert_eq!(
            BodyLayout::parse("stop_iteration"),
            Some(BodyLayout::StopIteration)
        );
        assert_eq!(
            BodyLayout::parse("holding_filter"),
            Some(BodyLayout::HoldingFilter)
        );
        assert_eq!(BodyLayout::parse("buffer"), None);
        assert_eq!(BodyLayout::parse(""), None);
        assert!(BodyLayout::default().pauses_headers());
        assert!(!BodyLayout::HoldingFilter.pauses_headers());
    }

    #[test]
    fn header_bytes_counts_names_and_values_like_envoy() {
        let headers: HeaderList = vec![
            (":method".into(), "POST".into()),
            (":path".into(), "/f".into()),
            ("content-length".into(), "5".into()),
        ];
        assert_eq!(header_bytes(&headers), 7 + 4 + 5 + 2 + 14 + 1);
        assert_eq!(header_bytes(&Vec::new()), 0);
    }

    #[test]
    fn body_is_withheld_only_when_envoy_has_more_than_the_headers() {
        assert!(!body_withheld(33, 33));
        assert!(!body_withheld(10, 33));
        assert!(body_withheld(34, 33));
    }

    #[test]
    fn fix_messages_name_the_setting() {
        assert!(FLAG_MISSING.contains("allow_on_headers_stop_iteration: true"));
        assert!(FLAG_MISSING.contains("holding_filter"));
        assert!(NO_HOLDING_FILTER.contains("envoy.filters.http.buffer"));
    }
}
