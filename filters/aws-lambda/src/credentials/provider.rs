//! Keeps platform credentials fresh for every VM of an Envoy, and hands
//! them to the signer only while they are valid.
//!
//! - Every worker has its own VM, but the refreshed credentials live in
//!   the VMs' shared data (one entry per source, keyed by the source's
//!   settings), so every worker signs with the same credentials.
//! - The entry also holds the schedule and a lease. On each tick a VM whose
//!   schedule says "now" takes the lease with a compare-and-swap; only the
//!   winner calls the source, so N workers make one set of calls. A VM that
//!   dies mid-fetch loses the lease when it runs out.
//! - The last good credentials stay until their real expiry; failures are
//!   retried with capped backoff; without valid credentials requests get a
//!   503 (never an unsigned or expired signature).

use super::chain::{self, Base, Clusters, Context, Next, Source, Step};
use super::refresh::{backoff_seconds, refresh_at, usable};
use super::{Credentials, Expiring};
use faas_core::host::unix_seconds;
use faas_core::response::Failure;
use faas_core::{metrics, CalloutResponse, ErrorReply, Host, Integration, MetricKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// How long a lease lasts: longer than a whole fetch (four calls).
pub const LEASE_SECONDS: u64 = 15;

/// One source's shared state (the shared-data value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub credentials: Option<Expiring>,
    /// Unix second of the next fetch.
    pub refresh_at: u64,
    /// Failed fetches in a row.
    pub failures: u32,
    /// A VM is fetching until this Unix second.
    pub lease_until: u64,
    /// Why the last fetch failed (no values, only what failed).
    pub last_error: Option<String>,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let credentials = self.credentials.as_ref().map(|e| {
            json!({
                "k": e.credentials.access_key_id,
                "s": e.credentials.secret_access_key,
                "t": e.credentials.session_token,
                "e": e.expires_at,
            })
        });
        json!({
            "c": credentials,
            "r": self.refresh_at,
            "f": self.failures,
            "l": self.lease_until,
            "x": self.last_error,
        })
        .to_string()
        .into_bytes()
    }

    /// A missing or unreadable value is an empty entry: fetch now.
    pub fn decode(bytes: Option<&[u8]>) -> Entry {
        let Some(doc) = bytes.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
            return Entry::default();
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let number = |k: &str| doc.get(k).and_then(Value::as_u64).unwrap_or(0);
        let credentials = doc.get("c").and_then(|c| {
            Some(Expiring {
                credentials: Credentials {
                    access_key_id: text(c, "k")?,
                    secret_access_key: text(c, "s")?,
                    session_token: text(c, "t"),
                },
                expires_at: c.get("e").and_then(Value::as_u64)?,
            })
        });
        Entry {
            credentials,
            refresh_at: number("r"),
            failures: u32::try_from(number("f")).unwrap_or(u32::MAX),
            lease_until: number("l"),
            last_error: text(&doc, "x"),
        }
    }

    /// The credentials, if they may sign at `now`.
    pub fn usable(&self, now: u64) -> Option<&Credentials> {
        self.credentials
            .as_ref()
            .filter(|e| usable(now, e.expires_at))
            .map(|e| &e.credentials)
    }
}

/// The metric ids of one source, defined on first use.
#[derive(Clone, Copy, Default)]
struct Stats {
    attempted: Option<u32>,
    succeeded: Option<u32>,
    failed: Option<u32>,
    refused: Option<u32>,
    expiry: Option<u32>,
}

impl Stats {
    fn define(label: &str, host: &dyn Host) -> Stats {
        let labels = [("filter", crate::AwsLambda::NAME), ("source", label)];
        let define = |kind, family| host.metric(kind, &metrics::stat_name(family, &labels));
        let counter = |family| define(MetricKind::Counter, family);
        Stats {
            attempted: counter(metrics::CREDENTIALS_REFRESH_ATTEMPTS),
            succeeded: counter(metrics::CREDENTIALS_REFRESHES),
            failed: counter(metrics::CREDENTIALS_REFRESH_FAILURES),
            refused: counter(metrics::CREDENTIALS_REQUESTS_REFUSED),
            expiry: define(MetricKind::Gauge, metrics::CREDENTIALS_EXPIRY_SECONDS),
        }
    }
}

fn bump(host: &dyn Host, metric: Option<u32>) {
    if let Some(id) = metric {
        host.increment(id, 1);
    }
}

/// A fetch this VM is running (it holds the lease).
struct InFlight {
    token: u32,
    step: Step,
    deadline: u64,
}

struct Chain {
    source: Source,
    key: String,
    /// The entry as last read, with its shared-data version.
    snapshot: RefCell<(Option<u32>, Entry)>,
    fetch: RefCell<Option<InFlight>>,
    stats: RefCell<Option<Stats>>,
}

impl Chain {
    fn stats(&self, host: &dyn Host) -> Stats {
        *self
            .stats
            .borrow_mut()
            .get_or_insert_with(|| Stats::define(self.source.label(), host))
    }

    /// Loads the shared entry into the snapshot (decoding only when
    /// another VM changed it).
    fn sync(&self, host: &dyn Host) {
        let (bytes, cas) = host.shared_data(&self.key);
        let mut snapshot = self.snapshot.borrow_mut();
        if cas.is_none() || cas != snapshot.0 {
            *snapshot = (cas, Entry::decode(bytes.as_deref()));
        }
    }
}

/// A CAS no entry ever has: Envoy's counter starts at 1 and we never see
/// it reach this. With it, a set creates a missing key but fails on one
/// that exists.
const CREATE_ONLY: u32 = u32::MAX;

/// Writes the lease if the entry is still the one this VM saw (`cas`), or,
/// when it saw none, if there is still none. Envoy creates a missing key
/// whatever the CAS, so "saw none" cannot be a plain unconditional set:
/// VMs whose first ticks coincide would all win and all fetch.
fn take_lease(host: &dyn Host, key: &str, leased: &Entry, cas: Option<u32>) -> bool {
    host.set_shared_data(key, &leased.encode(), Some(cas.unwrap_or(CREATE_ONLY)))
}

/// The platform credential sources of one plugin configuration.
pub struct Provider {
    clusters: Clusters,
    chains: Vec<Chain>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.chains.iter().map(|c| c.source.label()).collect();
        f.debug_struct("Provider")
            .field("sources", &labels)
            .finish()
    }
}

impl Provider {
    pub fn new(clusters: Clusters) -> Provider {
        Provider {
            clusters,
            chains: Vec::new(),
        }
    }

    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// Adds a source (once per distinct settings) and returns its index.
    pub fn register(&mut self, source: Source) -> usize {
        let digest = Sha256::digest(source.identity().as_bytes());
        let key = format!(
            "envoy_faas.aws_lambda.credentials.{}",
            hex::encode(digest.get(..8).unwrap_or_default())
        );
        if let Some(i) = self.chains.iter().position(|c| c.key == key) {
            return i;
        }
        self.chains.push(Chain {
            source,
            key,
            snapshot: RefCell::new((None, Entry::default())),
            fetch: RefCell::new(None),
            stats: RefCell::new(None),
        });
        self.chains.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// The registered sources (what `envoy-faas import` adds clusters for).
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.chains.iter().map(|c| &c.source)
    }

    /// Source `index`'s credentials if they may sign now, from this VM's
    /// snapshot (see [`Provider::admit`]).
    pub fn credentials(&self, index: usize, now: u64) -> Option<Credentials> {
        let chain = self.chains.get(index)?;
        let snapshot = chain.snapshot.borrow();
        snapshot.1.usable(now).cloned()
    }

    /// Loads source `index`'s shared entry; a request may go ahead only
    /// with valid credentials, else it gets the 503.
    pub fn admit(&self, index: usize, host: &dyn Host) -> Result<(), ErrorReply> {
        let Some(chain) = self.chains.get(index) else {
            return Err(ErrorReply::new(
                Failure::CredentialsUnavailable,
                "no credential source for this route",
            ));
        };
        let now = unix_seconds(host.now());
        chain.sync(host);
        let snapshot = chain.snapshot.borrow();
        let entry = &snapshot.1;
        if entry.usable(now).is_some() {
            return Ok(());
        }
        bump(host, chain.stats(host).refused);
        let label = chain.source.label();
        let message = match (&entry.credentials, &entry.last_error) {
            (None, None) => {
                format!("AWS credentials from {label} are not available yet: the first fetch has not completed")
            }
            (Some(_), None) => {
                format!("AWS credentials from {label} expired; a refresh is under way")
            }
            (_, Some(why)) => format!(
                "no valid AWS credentials from {label}: the last refresh failed ({why}); retrying"
            ),
        };
        Err(ErrorReply::new(Failure::CredentialsUnavailable, message).with("source", label))
    }

    /// One tick: every source whose time has come is fetched by the one VM
    /// that wins its lease.
    pub fn tick(&self, host: &dyn Host) {
        let now = unix_seconds(host.now());
        for chain in &self.chains {
            chain.sync(host);
            let entry = chain.snapshot.borrow().1.clone();
            let stats = chain.stats(host);
            if let Some(gauge) = stats.expiry {
                let left = entry
                    .credentials
                    .as_ref()
                    .map_or(0, |e| e.expires_at.saturating_sub(now));
                host.record(gauge, left);
            }
            let overdue = chain.fetch.borrow().as_ref().map(|f| now >= f.deadline);
            match overdue {
                Some(false) => continue,
                Some(true) => {
                    chain.fetch.borrow_mut().take();
                    self.finish(chain, Err("no answer in time".into()), host);
                    continue;
                }
                None => {}
            }
            if now < entry.refresh_at || now < entry.lease_until {
                continue;
            }
            let base = match &chain.source {
                Source::AssumeRole { base, .. } => match self.base(base, now) {
                    Some(c) => Some(c),
                    None => continue, // wait for the base source's first fetch
                },
                _ => None,
            };
            let leased = Entry {
                lease_until: now + LEASE_SECONDS,
                ..entry
            };
            let cas = chain.snapshot.borrow().0;
            if !take_lease(host, &chain.key, &leased, cas) {
                continue; // another VM took it
            }
            bump(host, stats.attempted);
            let ctx = Context {
                clusters: &self.clusters,
                now: host.now(),
                base: base.as_ref(),
            };
            self.proceed(chain, chain::start(&chain.source, &ctx), host);
        }
    }

    /// The answer to one of this VM's calls.
    pub fn on_response(&self, token: u32, response: &CalloutResponse, host: &dyn Host) {
        let Some(chain) = self
            .chains
            .iter()
            .find(|c| c.fetch.borrow().as_ref().is_some_and(|f| f.token == token))
        else {
            return;
        };
        let Some(fetch) = chain.fetch.borrow_mut().take() else {
            return;
        };
        let now = unix_seconds(host.now());
        let base = match &chain.source {
            Source::AssumeRole { base, .. } => self.base(base, now),
            _ => None,
        };
        let ctx = Context {
            clusters: &self.clusters,
            now: host.now(),
            base: base.as_ref(),
        };
        let next = chain::advance(
            &chain.source,
            fetch.step,
            response.status,
            &response.body,
            &ctx,
        );
        self.proceed(chain, next, host);
    }

    fn base(&self, base: &Base, now: u64) -> Option<Credentials> {
        match base {
            Base::Static(c) => Some(c.clone()),
            Base::Chain(i) => self.credentials(*i, now),
        }
    }

    fn proceed(&self, chain: &Chain, next: Next, host: &dyn Host) {
        match next {
            Next::Call(step, callout) => match host.dispatch(&callout) {
                Ok(token) => {
                    *chain.fetch.borrow_mut() = Some(InFlight {
                        token,
                        step,
                        deadline: unix_seconds(host.now()) + LEASE_SECONDS,
                    });
                }
                Err(why) => self.finish(chain, Err(why), host),
            },
            Next::Done(result) => self.finish(chain, result, host),
        }
    }

    /// Records a fetch's result in the shared entry and releases the lease.
    fn finish(&self, chain: &Chain, result: Result<Expiring, String>, host: &dyn Host) {
        let now = unix_seconds(host.now());
        let seed = host
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let result = result.and_then(|e| {
            if usable(now, e.expires_at) {
                Ok(e)
            } else {
                Err(format!(
                    "the source handed out credentials that expire in {} s",
                    e.expires_at.saturating_sub(now)
                ))
            }
        });
        let label = chain.source.label();
        let stats = chain.stats(host);
        match &result {
            Ok(e) => {
                bump(host, stats.succeeded);
                if let Some(gauge) = stats.expiry {
                    host.record(gauge, e.expires_at.saturating_sub(now));
                }
                log::info!(
                    "aws-lambda: credentials from {label} refreshed (key {}), valid for {} s",
                    e.credentials.access_key_id,
                    e.expires_at.saturating_sub(now)
                );
            }
            Err(why) => {
                bump(host, stats.failed);
                log::warn!("aws-lambda: refreshing credentials from {label} failed: {why}");
            }
        }
        // Another VM may have written meanwhile (a gauge, a lease that ran
        // out): retry the compare-and-swap on the fresh value.
        for _ in 0..8 {
            let (bytes, cas) = host.shared_data(&chain.key);
            let mut entry = Entry::decode(bytes.as_deref());
            match &result {
                Ok(e) => {
                    entry.refresh_at = refresh_at(now, e.expires_at, seed);
                    entry.credentials = Some(e.clone());
                    entry.failures = 0;
                    entry.last_error = None;
                }
                Err(why) => {
                    entry.failures = entry.failures.saturating_add(1);
                    entry.refresh_at = now + backoff_seconds(entry.failures, seed);
                    entry.last_error = Some(why.clone());
                }
            }
            entry.lease_until = 0;
            if host.set_shared_data(&chain.key, &entry.encode(), cas) {
                return;
            }
        }
        log::error!("aws-lambda: could not store the credentials from {label} (shared data busy)");
    }
}

#[cfg(test)]
mod tests;
