//! `aws-lambda`: an Envoy route becomes a call to an AWS Lambda function,
//! signed with our own SigV4 signer, in one of two modes:
//! - `function_uri`: through API Gateway or a Lambda Function URL (APISIX
//!   `aws-lambda` parity): the request is forwarded as HTTP;
//! - `function_name`: the Lambda Invoke API (Kong `aws-lambda` parity): the
//!   request becomes an event ([`events`]) and the result a response
//!   ([`invoke_response`]).
//!
//! Everything but credentials is the shared forwarding behaviour of
//! `faas-core`: [`config`] compiles the route, [`signing`] adds
//! `x-api-key` and/or SigV4 to the callout, [`sigv4`] is the signer.

pub mod clock;
pub mod config;
pub mod credentials;
pub mod events;
pub mod invoke;
pub mod invoke_response;
pub mod signing;
pub mod sigv4;

use config::{Environment, Mode, Route};
use faas_core::request::forward;
use faas_core::response::passthrough;
use faas_core::{
    Callout, CalloutResponse, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields,
    Integration, LocalReply,
};
use std::time::SystemTime;

pub struct AwsLambda;

impl Integration for AwsLambda {
    const NAME: &'static str = "aws-lambda";
    type Global = Environment;
    type Route = Route;

    fn read_global(_fields: &mut Fields) -> Result<Environment, ConfigError> {
        // Envoy passes `vm_config.environment_variables` through WASI.
        Ok(Environment::read(|name| std::env::var(name).ok()))
    }

    fn read_route(fields: &mut Fields, env: &Environment) -> Result<Route, ConfigError> {
        config::read_route(fields, env)
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    /// Only API Gateway events carry the protocol (`requestContext`).
    fn uses_protocol(route: &Route) -> bool {
        matches!(&route.mode, Mode::Invoke(invoke) if invoke.payload.is_api_gateway())
    }

    fn build_callout(
        _: &Environment,
        route: &Route,
        request: &ClientRequest,
        now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        Ok(match &route.mode {
            Mode::Url(mode) => {
                let mut callout = forward(&route.common, request);
                signing::authorize(mode, &mut callout, now);
                callout
            }
            Mode::Invoke(invoke) => {
                let mut callout = invoke::callout(&route.common, invoke, request, now);
                signing::sign(&invoke.iam, &mut callout, now);
                callout
            }
        })
    }

    fn map_response(
        _: &Environment,
        route: &Route,
        response: CalloutResponse,
    ) -> Result<LocalReply, ErrorReply> {
        match &route.mode {
            Mode::Url(_) => Ok(passthrough(response)),
            Mode::Invoke(invoke) => invoke_response::map(response, &invoke.response),
        }
    }
}

// The module entry point exists only in the filter build: with `lib-only`
// (or on the host) several filters link into one program, the
// micro-benchmarks, without clashing entry points.
#[cfg(all(target_arch = "wasm32", not(feature = "lib-only")))]
proxy_wasm::main! {{
    faas_core::shell::install::<AwsLambda>();
}}
