//! `aws-lambda`: an Envoy route becomes a call to an AWS Lambda function
//! through API Gateway or a Lambda Function URL (APISIX `aws-lambda`
//! parity), with our own SigV4 signer.
//!
//! Everything but credentials is the shared forwarding behaviour of
//! `faas-core`: [`config`] compiles the route, [`signing`] adds
//! `x-api-key` and/or SigV4 to the callout, [`sigv4`] is the signer.

pub mod clock;
pub mod config;
pub mod events;
pub mod invoke_response;
pub mod signing;
pub mod sigv4;

use config::{Environment, Route};
use faas_core::request::forward;
use faas_core::{
    Callout, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields, Integration,
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

    fn build_callout(
        _: &Environment,
        route: &Route,
        request: &ClientRequest,
        now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        let mut callout = forward(&route.common, request);
        signing::authorize(route, &mut callout, now);
        Ok(callout)
    }
}

proxy_wasm::main! {{
    faas_core::shell::install::<AwsLambda>();
}}
