//! What a filter plugs into the shared shell: its config fields, how it
//! builds the function call, and how it maps the answer.

use crate::config::CommonConfig;
use crate::credentials::provider::CredentialWork;
use crate::fields::{ConfigError, Fields};
use crate::host::Host;
use crate::request::{Callout, ClientRequest};
use crate::response::{passthrough, CalloutResponse, ErrorReply, LocalReply};
use crate::rewrite::ResponseRewrite;
use std::cell::Ref;
use std::time::{Duration, SystemTime};

/// How often every VM looks at its credentials' schedule.
pub const CREDENTIALS_TICK: Duration = Duration::from_secs(1);

pub trait Integration: 'static {
    /// Filter name for logs.
    const NAME: &'static str;
    /// Filter-wide settings read from the top level of the config.
    type Global: 'static;
    /// One route's compiled settings.
    type Route: 'static;

    /// Takes the filter-wide fields out of the top-level object (before the
    /// rest becomes the per-route defaults).
    fn read_global(fields: &mut Fields) -> Result<Self::Global, ConfigError>;

    /// Compiles one route's (merged) object; must take every field it knows.
    fn read_route(fields: &mut Fields, global: &Self::Global) -> Result<Self::Route, ConfigError>;

    /// The shared settings of a compiled route.
    fn common(route: &Self::Route) -> &CommonConfig;

    /// Whether `build_callout` reads [`ClientRequest::protocol`] for this
    /// route. The shell fetches the property only then: it is a host call
    /// (and a property evaluation in Envoy) on every request otherwise.
    fn uses_protocol(_route: &Self::Route) -> bool {
        false
    }

    /// The filter's platform credentials (`faas_core::credentials`), when
    /// it has any: the defaults of [`Integration::admit`] and the
    /// background hooks run them.
    fn credentials(_global: &Self::Global) -> Option<Ref<'_, dyn CredentialWork>> {
        None
    }

    /// Which registered credentials source signs `route`'s calls, if any.
    fn credentials_index(_route: &Self::Route) -> Option<usize> {
        None
    }

    /// Runs just before [`Integration::build_callout`], with the host: the
    /// place to load state other VMs share (refreshed credentials). An
    /// error is the client's answer and no call is made. By default a
    /// route with a credentials source loads them (503 while there are
    /// none).
    fn admit(
        global: &Self::Global,
        route: &Self::Route,
        host: &dyn Host,
    ) -> Result<(), ErrorReply> {
        match (Self::credentials(global), Self::credentials_index(route)) {
            (Some(provider), Some(index)) => provider.admit(index, host),
            _ => Ok(()),
        }
    }

    /// Builds the function call for a complete client request. `now` is
    /// the wall clock (request signing needs it).
    fn build_callout(
        global: &Self::Global,
        route: &Self::Route,
        request: &ClientRequest,
        now: SystemTime,
    ) -> Result<Callout, ErrorReply>;

    /// `forwarding: route`: whether a request with a body may go in place
    /// (its credentials do not depend on the body). When not, such a
    /// request takes the callout path; a body-less one still goes in place.
    fn in_place_with_body(_route: &Self::Route) -> bool {
        true
    }

    /// In place: whether the call's body replaces the client's (an event
    /// built from it). Such a request is held whole, like a signed one,
    /// and its new body is written before the router forwards it.
    fn in_place_replaces_body(_route: &Self::Route) -> bool {
        false
    }

    /// In place: a rewrite of the function's streamed answer, when the
    /// platform frames it (Lambda's eventstream); `None` passes it as is.
    fn response_rewrite(
        _global: &Self::Global,
        _route: &Self::Route,
    ) -> Option<Box<dyn ResponseRewrite>> {
        None
    }

    /// In place: whether the route's answers are streams worth measuring
    /// (time to first byte, duration, bytes, failures after the first
    /// byte). Off by default: each costs host calls per request.
    fn streams_response(_route: &Self::Route) -> bool {
        false
    }

    /// Maps the function's answer to the client's response.
    fn map_response(
        _global: &Self::Global,
        _route: &Self::Route,
        response: CalloutResponse,
    ) -> Result<LocalReply, ErrorReply> {
        Ok(passthrough(response))
    }

    /// How often [`Integration::on_tick`] runs in every VM's root context;
    /// `None`: the filter has no background work for this config. By
    /// default every second while credentials sources are registered.
    fn background_period(global: &Self::Global) -> Option<Duration> {
        Self::credentials(global)
            .filter(|p| !p.is_empty())
            .map(|_| CREDENTIALS_TICK)
    }

    /// Background work, on the root context's tick: by default the
    /// credentials' refresh.
    fn on_tick(global: &Self::Global, host: &dyn Host) {
        if let Some(provider) = Self::credentials(global) {
            provider.tick(host);
        }
    }

    /// The answer to a call [`Integration::on_tick`] dispatched, by token.
    /// Envoy's own failures (no host, timeout) arrive as its 503/504.
    fn on_background_response(
        global: &Self::Global,
        token: u32,
        response: CalloutResponse,
        host: &dyn Host,
    ) {
        if let Some(provider) = Self::credentials(global) {
            provider.on_response(token, &response, host);
        }
    }
}
