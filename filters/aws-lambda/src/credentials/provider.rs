//! The platform credentials provider of `aws-lambda`: the shared
//! machinery of [`faas_core::credentials::provider`] over this filter's
//! sources ([`super::chain::Source`]).

use super::chain::{Clusters, Source};
use super::Credentials;
use faas_core::Integration;

pub use faas_core::credentials::provider::LEASE_SECONDS;

/// The provider of this filter's sources.
pub type Provider = faas_core::credentials::provider::Provider<Source>;
/// One source's shared-data entry.
pub type Entry = faas_core::credentials::provider::Entry<Credentials>;

/// An empty provider for `clusters`.
pub fn provider(clusters: Clusters) -> Provider {
    Provider::new(crate::AwsLambda::NAME, "AWS credentials", clusters)
}

#[cfg(test)]
mod tests;
