//! The provider over a fake host: several "VMs" (providers) share one
//! store and clock, as Envoy's workers share `vm_id`-scoped data.

use super::*;
use crate::credentials::chain::tests::clusters;
use crate::credentials::chain::{self, Base};
use crate::credentials::Expiring;
use faas_core::credentials::provider::take_lease;
use faas_core::host::fake::{FakeHost, Shared};
use faas_core::{metrics, CalloutResponse, Host};
use std::rc::Rc;

const T0: u64 = 1_795_000_000;

/// One VM: its provider (with the IMDS source registered) and its host.
fn vm(shared: &Rc<Shared>) -> (Provider, FakeHost) {
    let mut p = provider(clusters());
    assert_eq!(p.register(Source::Imds { allow_v1: false }), 0);
    (p, FakeHost::new(Rc::clone(shared)))
}

fn answer(status: u16, body: &str) -> CalloutResponse {
    CalloutResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn rfc3339(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = crate::clock::civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn creds_doc(key: &str, expires_at: u64) -> String {
    let expiration = rfc3339(expires_at);
    format!(
        r#"{{"AccessKeyId":"{key}","SecretAccessKey":"secret-{key}","Token":"token-{key}","Expiration":"{expiration}"}}"#
    )
}

/// Answers the three IMDS calls of one refresh with credentials `key`.
fn serve_imds(p: &Provider, host: &FakeHost, key: &str, expires_at: u64) {
    for body in [
        "tok".to_string(),
        "role".to_string(),
        creds_doc(key, expires_at),
    ] {
        let calls = host.take_calls();
        assert_eq!(calls.len(), 1, "one call at a time");
        let (token, _) = calls.into_iter().next().unwrap();
        p.on_response(token, &answer(200, &body), host);
    }
}

fn failing(p: &Provider, host: &FakeHost) {
    let calls = host.take_calls();
    assert_eq!(calls.len(), 1);
    p.on_response(calls[0].0, &answer(503, "no healthy upstream"), host);
}

/// The stat name of an IMDS credentials metric.
fn imds(family: &str) -> String {
    format!("{family}.filter=.=aws-lambda;.;source=.=imds;.;")
}

#[test]
fn one_vm_refreshes_and_every_vm_signs_with_the_result() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (a, host_a) = vm(&shared);
    let (b, host_b) = vm(&shared);
    assert!(a.admit(0, &host_a).is_err(), "nothing fetched yet");
    a.tick(&host_a);
    b.tick(&host_b);
    assert_eq!(host_a.calls.borrow().len(), 1, "A won the lease");
    assert!(host_b.calls.borrow().is_empty(), "B did not call");
    serve_imds(&a, &host_a, "ASIA1", T0 + 3600);
    assert_eq!(
        host_a.metric_value(&imds(metrics::CREDENTIALS_EXPIRY_SECONDS)),
        3600,
        "the gauge is set as the credentials arrive"
    );
    assert!(b.admit(0, &host_b).is_ok());
    assert_eq!(b.credentials(0, T0).unwrap().access_key_id, "ASIA1");
    assert_eq!(
        host_a.metric_value(&imds(metrics::CREDENTIALS_REFRESH_ATTEMPTS)),
        1
    );
    assert_eq!(
        host_a.metric_value(&imds(metrics::CREDENTIALS_REFRESHES)),
        1
    );
    assert_eq!(
        host_a.metric_value(&imds(metrics::CREDENTIALS_REQUESTS_REFUSED)),
        1
    );
    // Nothing more until the refresh time, 15 min (minus jitter) before expiry.
    shared.unix_seconds.set(T0 + 2000);
    a.tick(&host_a);
    b.tick(&host_b);
    assert!(host_a.calls.borrow().is_empty() && host_b.calls.borrow().is_empty());
    assert_eq!(
        host_b.metric_value(&imds(metrics::CREDENTIALS_EXPIRY_SECONDS)),
        1600
    );
    shared.unix_seconds.set(T0 + 3600 - 900);
    b.tick(&host_b);
    a.tick(&host_a);
    assert_eq!(
        host_b.calls.borrow().len(),
        1,
        "B's turn: whoever ticks first"
    );
    assert!(host_a.calls.borrow().is_empty());
    serve_imds(&b, &host_b, "ASIA2", T0 + 7200);
    assert!(a.admit(0, &host_a).is_ok());
    assert_eq!(a.credentials(0, T0 + 2700).unwrap().access_key_id, "ASIA2");
}

#[test]
fn an_outage_keeps_valid_credentials_then_fails_closed_then_recovers() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (p, host) = vm(&shared);
    p.tick(&host);
    serve_imds(&p, &host, "ASIA1", T0 + 60);
    // Refresh time (half the life left at most): the source is down.
    shared.unix_seconds.set(T0 + 30);
    p.tick(&host);
    failing(&p, &host);
    assert!(p.admit(0, &host).is_ok(), "old credentials still valid");
    assert_eq!(p.credentials(0, T0 + 30).unwrap().access_key_id, "ASIA1");
    // Backoff: 1 s, then 1-2 s, ... never a call before it is due.
    shared.unix_seconds.set(T0 + 31);
    p.tick(&host);
    failing(&p, &host);
    p.tick(&host);
    assert!(host.calls.borrow().is_empty(), "backing off");
    // Past the expiry (minus the margin): refused, with the reason.
    shared.unix_seconds.set(T0 + 56);
    let refused = p.admit(0, &host).unwrap_err();
    assert_eq!(
        (refused.status, refused.code()),
        (503, "credentials_unavailable")
    );
    assert!(
        refused
            .message
            .contains("IMDS token: the endpoint answered HTTP 503"),
        "{}",
        refused.message
    );
    assert!(!refused.message.contains("secret-ASIA1") && !refused.message.contains("token-ASIA1"));
    p.tick(&host);
    serve_imds(&p, &host, "ASIA2", T0 + 3600);
    assert!(p.admit(0, &host).is_ok(), "recovered by itself");
    assert_eq!(
        host.metric_value(&imds(metrics::CREDENTIALS_REFRESH_FAILURES)),
        2
    );
}

#[test]
fn backoff_is_capped_at_a_minute() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (p, host) = vm(&shared);
    let mut gaps = Vec::new();
    let mut last = T0;
    for _ in 0..12 {
        // Advance second by second until the provider calls again.
        loop {
            p.tick(&host);
            if !host.calls.borrow().is_empty() {
                break;
            }
            shared.unix_seconds.set(shared.unix_seconds.get() + 1);
        }
        gaps.push(shared.unix_seconds.get() - last);
        last = shared.unix_seconds.get();
        failing(&p, &host);
    }
    assert!(gaps.iter().all(|&g| g <= 60), "{gaps:?}");
    assert!(gaps.iter().rev().take(3).all(|&g| g >= 30), "{gaps:?}");
}

#[test]
fn a_vm_that_never_answers_loses_the_lease() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (a, host_a) = vm(&shared);
    let (b, host_b) = vm(&shared);
    a.tick(&host_a);
    assert_eq!(host_a.take_calls().len(), 1);
    drop(a); // the VM went away mid-fetch
    shared.unix_seconds.set(T0 + LEASE_SECONDS - 1);
    b.tick(&host_b);
    assert!(host_b.calls.borrow().is_empty(), "lease still held");
    shared.unix_seconds.set(T0 + LEASE_SECONDS);
    b.tick(&host_b);
    serve_imds(&b, &host_b, "ASIA1", T0 + 3600);
    assert!(b.admit(0, &host_b).is_ok());
}

#[test]
fn a_missing_cluster_is_a_failed_refresh_with_its_name() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (p, host) = vm(&shared);
    host.missing_clusters.borrow_mut().push("imds".into());
    p.tick(&host);
    let refused = p.admit(0, &host).unwrap_err();
    assert!(refused.message.contains("\"imds\""), "{}", refused.message);
}

#[test]
fn assume_role_waits_for_its_base_then_signs_with_it() {
    let shared = Rc::new(Shared::default());
    shared.unix_seconds.set(T0);
    let (mut p, host) = vm(&shared);
    let role = p.register(Source::AssumeRole {
        base: Base::Chain(0),
        role_arn: "arn:aws:iam::1:role/r".into(),
        session_name: "s".into(),
        external_id: None,
        sts: chain::StsEndpoint {
            authority: "sts.us-east-1.amazonaws.com".into(),
            region: "us-east-1".into(),
        },
    });
    p.tick(&host);
    let calls = host.calls.borrow().clone();
    assert_eq!(calls.len(), 1, "only the base fetches first");
    assert_eq!(calls[0].1.cluster, "imds");
    serve_imds(&p, &host, "ASIABASE", T0 + 3600);
    shared.unix_seconds.set(T0 + 1);
    p.tick(&host);
    let calls = host.take_calls();
    assert_eq!(calls[0].1.cluster, "sts");
    assert!(calls[0]
        .1
        .header("authorization")
        .unwrap()
        .contains("Credential=ASIABASE/"));
    let xml = format!(
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>{}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>",
        rfc3339(T0 + 3600)
    );
    p.on_response(calls[0].0, &answer(200, &xml), &host);
    assert!(p.admit(role, &host).is_ok());
    assert_eq!(
        p.credentials(role, T0 + 1).unwrap().access_key_id,
        "ASIAROLE"
    );
}

#[test]
fn entries_round_trip_and_garbage_means_fetch_now() {
    let e = Entry {
        credentials: Some(Expiring {
            credentials: Credentials {
                access_key_id: "A".into(),
                secret_access_key: "S".into(),
                session_token: None,
            },
            expires_at: 9,
        }),
        refresh_at: 5,
        failures: 2,
        lease_until: 7,
        last_error: Some("why".into()),
    };
    assert_eq!(Entry::decode(Some(&e.encode())), e);
    assert_eq!(Entry::decode(Some(b"{not json")), Entry::default());
    assert_eq!(Entry::decode(None), Entry::default());
}

#[test]
fn vms_whose_first_ticks_coincide_take_one_lease() {
    // Both VMs read the store before either wrote: neither saw an entry.
    let shared = Rc::new(Shared::default());
    let (host_a, host_b) = (
        FakeHost::new(Rc::clone(&shared)),
        FakeHost::new(Rc::clone(&shared)),
    );
    let leased = Entry {
        lease_until: T0 + 30,
        ..Entry::default()
    };
    assert!(
        take_lease(&host_a, "k", &leased, None),
        "A creates the entry"
    );
    assert!(!take_lease(&host_b, "k", &leased, None), "B finds it taken");
    // Seen entries compare as before: the current CAS wins, a stale one not.
    let (_, cas) = host_b.shared_data("k");
    assert!(take_lease(&host_b, "k", &leased, cas));
    assert!(!take_lease(&host_a, "k", &leased, cas), "stale CAS");
}
