//! Keeps platform credentials fresh for every VM of an Envoy, and lets a
//! request through only while they are valid.
//!
//! - Every worker has its own VM, but the refreshed credentials live in
//!   the VMs' shared data (one entry per source, keyed by the source's
//!   settings), so every worker uses the same credentials.
//! - The entry also holds the schedule and a lease. On each tick a VM whose
//!   schedule says "now" takes the lease with a compare-and-swap; only the
//!   winner calls the source, so N workers make one set of calls. A VM that
//!   dies mid-fetch loses the lease when it runs out.
//! - The last good credentials stay until their real expiry; failures are
//!   retried with capped backoff; without valid credentials requests get a
//!   503 (never an unauthenticated or expired call).

use super::refresh::{backoff_seconds, refresh_at, usable};
use super::{Base, Context, Expiring, Next, Secret, Source};
use crate::host::unix_seconds;
use crate::response::{classify, CallResult, Failure};
use crate::{metrics, CalloutResponse, ErrorReply, Host, MetricKind};
use serde_json::{json, Value};
use std::cell::{Ref, RefCell};
use std::time::SystemTime;

/// How long a lease lasts: longer than a whole fetch (four calls).
pub const LEASE_SECONDS: u64 = 15;

/// One source's shared state (the shared-data value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<S> {
    pub credentials: Option<Expiring<S>>,
    /// Unix second of the next fetch.
    pub refresh_at: u64,
    /// Failed fetches in a row.
    pub failures: u32,
    /// A VM is fetching until this Unix second.
    pub lease_until: u64,
    /// Why the last fetch failed (no values, only what failed).
    pub last_error: Option<String>,
}

impl<S> Default for Entry<S> {
    fn default() -> Self {
        Entry {
            credentials: None,
            refresh_at: 0,
            failures: 0,
            lease_until: 0,
            last_error: None,
        }
    }
}

impl<S: Secret> Entry<S> {
    pub fn encode(&self) -> Vec<u8> {
        let credentials = self.credentials.as_ref().map(|e| {
            let mut doc = e.credentials.to_json();
            if let Some(o) = doc.as_object_mut() {
                o.insert("e".into(), Value::from(e.expires_at));
            }
            doc
        });
        let entry = json!({
            "c": credentials,
            "r": self.refresh_at,
            "f": self.failures,
            "l": self.lease_until,
            "x": self.last_error,
        });
        // to_vec, as the error bodies are written: one serializer compiled in.
        serde_json::to_vec(&entry).unwrap_or_default()
    }

    /// A missing or unreadable value is an empty entry: fetch now.
    pub fn decode(bytes: Option<&[u8]>) -> Entry<S> {
        let Some(doc) = bytes.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
            return Entry::default();
        };
        let number = |k: &str| doc.get(k).and_then(Value::as_u64).unwrap_or(0);
        let credentials = doc.get("c").and_then(|c| {
            Some(Expiring {
                credentials: S::from_json(c)?,
                expires_at: c.get("e").and_then(Value::as_u64)?,
            })
        });
        Entry {
            credentials,
            refresh_at: number("r"),
            failures: u32::try_from(number("f")).unwrap_or(u32::MAX),
            lease_until: number("l"),
            last_error: doc.get("x").and_then(Value::as_str).map(str::to_string),
        }
    }

    /// The credentials, if they may be used at `now`.
    pub fn usable(&self, now: u64) -> Option<&S> {
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
    fn define(filter: &str, label: &str, host: &dyn Host) -> Stats {
        let labels = [("filter", filter), ("source", label)];
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
struct InFlight<Step> {
    token: u32,
    step: Step,
    deadline: u64,
}

struct Chain<Src: Source> {
    source: Src,
    key: String,
    /// The entry as last read, with its shared-data version.
    snapshot: RefCell<(Option<u32>, Entry<Src::Secret>)>,
    fetch: RefCell<Option<InFlight<Src::Step>>>,
    stats: RefCell<Option<Stats>>,
    /// This VM's refusals, for the log: one line when they start, one
    /// summary per [`SUMMARY_SECONDS`], one when they end.
    refusals: RefCell<Refusals>,
}

/// How often, at most, a VM logs that it keeps refusing requests.
pub const SUMMARY_SECONDS: u64 = 60;

/// A VM's refusals since it last said so in the log.
#[derive(Default)]
struct Refusals {
    /// Refusing now (the state a line is logged on changing).
    active: bool,
    /// Refused since the last line.
    unlogged: u64,
    /// Refused in this outage, in all.
    total: u64,
    last_line: u64,
}

/// A CAS no entry ever has: Envoy's counter starts at 1 and we never see
/// it reach this. With it, a set creates a missing key but fails on one
/// that exists.
const CREATE_ONLY: u32 = u32::MAX;

/// Writes the lease if the entry is still the one this VM saw (`cas`), or,
/// when it saw none, if there is still none. Envoy creates a missing key
/// whatever the CAS, so "saw none" cannot be a plain unconditional set:
/// VMs whose first ticks coincide would all win and all fetch.
pub fn take_lease<S: Secret>(
    host: &dyn Host,
    key: &str,
    leased: &Entry<S>,
    cas: Option<u32>,
) -> bool {
    host.set_shared_data(key, &leased.encode(), Some(cas.unwrap_or(CREATE_ONLY)))
}

/// The platform sources of one plugin configuration.
pub struct Provider<Src: Source> {
    /// The filter's name: the `filter` label of the stats, the log prefix.
    filter: &'static str,
    /// What the sources hand out, for messages ("AWS credentials").
    noun: &'static str,
    clusters: Src::Clusters,
    chains: Vec<Chain<Src>>,
}

impl<Src: Source> std::fmt::Debug for Provider<Src> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.chains.iter().map(|c| c.source.label()).collect();
        f.debug_struct("Provider")
            .field("sources", &labels)
            .finish()
    }
}

/// What the request path and the root's tick need of a provider, whatever
/// its source type: the filters hand theirs to the shell through
/// [`crate::Integration::credentials`].
pub trait CredentialWork {
    /// Whether no source is registered (no background work).
    fn is_empty(&self) -> bool;
    /// Loads source `index`'s shared credentials for a request; `Err` is
    /// the client's 503.
    fn admit(&self, index: usize, host: &dyn Host) -> Result<(), ErrorReply>;
    /// The root's tick: refreshes what is due.
    fn tick(&self, host: &dyn Host);
    /// The answer to a call `tick` dispatched.
    fn on_response(&self, token: u32, response: &CalloutResponse, host: &dyn Host);
}

/// A filter's provider as the shell's [`CredentialWork`] (what
/// `Integration::credentials` returns).
pub fn work<Src: Source>(provider: &RefCell<Provider<Src>>) -> Ref<'_, dyn CredentialWork> {
    Ref::map(provider.borrow(), |p| p as &dyn CredentialWork)
}

impl<Src: Source> CredentialWork for Provider<Src> {
    fn is_empty(&self) -> bool {
        Provider::is_empty(self)
    }

    fn admit(&self, index: usize, host: &dyn Host) -> Result<(), ErrorReply> {
        Provider::admit(self, index, host)
    }

    fn tick(&self, host: &dyn Host) {
        Provider::tick(self, host)
    }

    fn on_response(&self, token: u32, response: &CalloutResponse, host: &dyn Host) {
        Provider::on_response(self, token, response, host)
    }
}

impl<Src: Source> Provider<Src> {
    pub fn new(filter: &'static str, noun: &'static str, clusters: Src::Clusters) -> Self {
        Provider {
            filter,
            noun,
            clusters,
            chains: Vec::new(),
        }
    }

    pub fn clusters(&self) -> &Src::Clusters {
        &self.clusters
    }

    /// Adds a source (once per distinct settings) and returns its index.
    pub fn register(&mut self, source: Src) -> usize {
        let key = source.key();
        if let Some(i) = self.chains.iter().position(|c| c.key == key) {
            return i;
        }
        self.chains.push(Chain {
            source,
            key,
            snapshot: RefCell::new((None, Entry::default())),
            fetch: RefCell::new(None),
            stats: RefCell::new(None),
            refusals: RefCell::new(Refusals::default()),
        });
        self.chains.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// The registered sources (what `envoy-faas import` adds clusters for).
    pub fn sources(&self) -> impl Iterator<Item = &Src> {
        self.chains.iter().map(|c| &c.source)
    }

    fn stats(&self, chain: &Chain<Src>, host: &dyn Host) -> Stats {
        *chain
            .stats
            .borrow_mut()
            .get_or_insert_with(|| Stats::define(self.filter, chain.source.label(), host))
    }

    /// Loads the shared entry into the snapshot (decoding only when
    /// another VM changed it).
    fn sync(chain: &Chain<Src>, host: &dyn Host) {
        let (bytes, cas) = host.shared_data(&chain.key);
        let mut snapshot = chain.snapshot.borrow_mut();
        if cas.is_none() || cas != snapshot.0 {
            *snapshot = (cas, Entry::decode(bytes.as_deref()));
        }
    }

    /// Source `index`'s credentials if they may be used now, from this VM's
    /// snapshot (see [`Provider::admit`]).
    pub fn credentials(&self, index: usize, now: u64) -> Option<Src::Secret> {
        let chain = self.chains.get(index)?;
        let snapshot = chain.snapshot.borrow();
        snapshot.1.usable(now).cloned()
    }

    /// Source `index`'s credentials to send a call with at `now`, or the
    /// client's 503 `credentials_unavailable` saying `missing` (never sent
    /// without them).
    pub fn current(
        &self,
        index: usize,
        now: SystemTime,
        missing: &'static str,
    ) -> Result<Src::Secret, ErrorReply> {
        self.credentials(index, unix_seconds(now))
            .ok_or_else(|| ErrorReply::new(Failure::CredentialsUnavailable, missing))
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
        Self::sync(chain, host);
        let snapshot = chain.snapshot.borrow();
        let entry = &snapshot.1;
        if entry.usable(now).is_some() {
            self.refusals_end(chain);
            return Ok(());
        }
        bump(host, self.stats(chain, host).refused);
        let (noun, label) = (self.noun, chain.source.label());
        let message = match (&entry.credentials, &entry.last_error) {
            (None, None) => {
                format!(
                    "{noun} from {label} are not available yet: the first fetch has not completed"
                )
            }
            (Some(_), None) => format!("{noun} from {label} expired; a refresh is under way"),
            (_, Some(why)) => {
                format!("no valid {noun} from {label}: the last refresh failed ({why}); retrying")
            }
        };
        self.refusal_logged(chain, now, &message);
        // The log has the refusal already (see `refusal_logged`): one line
        // per outage and interval, not one per request.
        Err(ErrorReply::new(Failure::CredentialsUnavailable, message)
            .with("source", label)
            .unlogged())
    }

    /// Counts a refusal, and logs when refusals start and at most once per
    /// [`SUMMARY_SECONDS`] after that, with the count.
    fn refusal_logged(&self, chain: &Chain<Src>, now: u64, message: &str) {
        let mut r = chain.refusals.borrow_mut();
        r.unlogged += 1;
        r.total += 1;
        let filter = self.filter;
        if !r.active {
            log::warn!("{filter}: refusing requests with 503 credentials_unavailable: {message}");
            *r = Refusals {
                active: true,
                unlogged: 0,
                total: 1,
                last_line: now,
            };
        } else if now >= r.last_line + SUMMARY_SECONDS {
            log::warn!(
                "{filter}: {} requests refused in the last {} s (still: {message})",
                r.unlogged,
                now - r.last_line
            );
            r.unlogged = 0;
            r.last_line = now;
        }
    }

    /// Valid credentials again: one line closes the outage.
    fn refusals_end(&self, chain: &Chain<Src>) {
        let mut r = chain.refusals.borrow_mut();
        if r.active {
            log::info!(
                "{}: {} from {} available again; {} requests were refused meanwhile",
                self.filter,
                self.noun,
                chain.source.label(),
                r.total
            );
            *r = Refusals::default();
        }
    }

    fn base(&self, base: &Base<Src::Secret>, now: u64) -> Option<Src::Secret> {
        match base {
            Base::Static(c) => Some(c.clone()),
            Base::Chain(i) => self.credentials(*i, now),
        }
    }

    /// One tick: every source whose time has come is fetched by the one VM
    /// that wins its lease.
    pub fn tick(&self, host: &dyn Host) {
        let now = unix_seconds(host.now());
        for chain in &self.chains {
            Self::sync(chain, host);
            let entry = chain.snapshot.borrow().1.clone();
            let stats = self.stats(chain, host);
            // Only a VM that knows credentials records their expiry: one
            // whose snapshot predates the first fetch would otherwise
            // overwrite the fetching VM's figure with 0 (the VMs share the
            // gauge, and tick on their own threads).
            if let (Some(gauge), Some(e)) = (stats.expiry, &entry.credentials) {
                host.record(gauge, e.expires_at.saturating_sub(now));
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
            let base = match chain.source.base() {
                Some(b) => match self.base(b, now) {
                    Some(c) => Some(c),
                    None => continue, // wait for the base source's first fetch
                },
                None => None,
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
            self.proceed(chain, chain.source.start(&ctx), host);
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
        let base = chain.source.base().and_then(|b| self.base(b, now));
        let ctx = Context {
            clusters: &self.clusters,
            now: host.now(),
            base: base.as_ref(),
        };
        // Envoy answers for an endpoint it could not reach (or that did not
        // answer in time) with its own 503/504: say so, not "HTTP 503".
        let label = chain.source.label();
        let next = match classify(response.clone()) {
            CallResult::TimedOut => Next::Done(Err(format!(
                "{label}: the endpoint did not answer within {} s (timed out)",
                super::CALL_TIMEOUT.as_secs()
            ))),
            CallResult::Unreachable(_) => Next::Done(Err(format!(
                "{label}: the endpoint could not be reached (connection refused or reset, or no healthy host in its cluster)"
            ))),
            CallResult::Function(_) => {
                chain
                    .source
                    .advance(fetch.step, response.status, &response.body, &ctx)
            }
        };
        self.proceed(chain, next, host);
    }

    fn proceed(&self, chain: &Chain<Src>, next: Next<Src::Step, Src::Secret>, host: &dyn Host) {
        match next {
            Next::Call(step, callout) => match host.dispatch(&callout) {
                Ok(token) => {
                    *chain.fetch.borrow_mut() = Some(InFlight {
                        token,
                        step,
                        deadline: unix_seconds(host.now()) + LEASE_SECONDS,
                    });
                }
                Err(why) => self.finish(chain, Err(why.to_string()), host),
            },
            Next::Done(result) => self.finish(chain, result, host),
        }
    }

    /// Records a fetch's result in the shared entry and releases the lease.
    fn finish(
        &self,
        chain: &Chain<Src>,
        result: Result<Expiring<Src::Secret>, String>,
        host: &dyn Host,
    ) {
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
                    "the source handed out {} that expire in {} s",
                    self.noun,
                    e.expires_at.saturating_sub(now)
                ))
            }
        });
        let (filter, noun, label) = (self.filter, self.noun, chain.source.label());
        let stats = self.stats(chain, host);
        match &result {
            Ok(e) => {
                bump(host, stats.succeeded);
                if let Some(gauge) = stats.expiry {
                    host.record(gauge, e.expires_at.saturating_sub(now));
                }
                log::info!(
                    "{filter}: {noun} from {label} refreshed{}, valid for {} s",
                    e.credentials.log_id(),
                    e.expires_at.saturating_sub(now)
                );
            }
            Err(why) => {
                bump(host, stats.failed);
                log::warn!("{filter}: refreshing {noun} from {label} failed: {why}");
            }
        }
        // Another VM may have written meanwhile (a gauge, a lease that ran
        // out): retry the compare-and-swap on the fresh value.
        for _ in 0..8 {
            let (bytes, cas) = host.shared_data(&chain.key);
            let mut entry = Entry::<Src::Secret>::decode(bytes.as_deref());
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
        log::error!("{filter}: could not store the {noun} from {label} (shared data busy)");
    }
}
