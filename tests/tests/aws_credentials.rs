//! Platform credentials (IMDSv2, ECS, EKS Pod Identity, IRSA, AssumeRole,
//! the shared credentials and config files)
//! in real Envoy 1.40: the filter fetches them through Envoy clusters from
//! the emulator's metadata fakes, refreshes them, and signs calls that the
//! emulator's front door verifies with the `aws-sigv4` crate (and refuses,
//! like AWS, once the credentials expire). Nothing here ever reaches a real
//! metadata address: every cluster is loopback, and IMDS is only on where
//! a test turns it on for its fake.

use faas_emulator::metadata::Fakes;
use integration_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const URL_HOST: &str = "fn1.lambda-url.us-east-1.on.aws";
const IMDS_ON: (&str, &str) = ("AWS_EC2_METADATA_DISABLED", "false");

/// A function URL route `/f` signed with whatever the chain yields.
fn plugin(iam: Value) -> Value {
    json!({"cluster": "functions", "routes": {"f": {
        "function_uri": format!("http://{URL_HOST}/hello"), "strip_prefix": "/f",
        "authorization": {"iam": iam}
    }}})
}

fn start(plugin: &Value, env: &[(&str, &str)], fakes: &Fakes) -> Envoy {
    Envoy::start(&platform_bootstrap(plugin, env, fakes.port, None))
        .unwrap_or_else(|log| panic!("{log}"))
}

fn signed_hello(envoy: &Envoy) -> Response {
    get(envoy.port, "/f/platform")
}

fn assert_signed(envoy: &Envoy) {
    let r = signed_hello(envoy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "Hello, platform!");
}

/// The stat name of a platform-credentials metric of `source`.
fn stat(source: &str, family: &str) -> String {
    credentials_stat("aws-lambda", source, family)
}

#[test]
fn imds_v2_credentials_sign_the_call() {
    let fakes = Fakes::start(3600).expect("fakes");
    let mut envoy = start(&plugin(json!({})), &[IMDS_ON], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    assert_signed(&envoy);
    let c = &fakes.controls;
    assert_eq!(
        (
            c.calls("imds_token"),
            c.calls("imds_role"),
            c.calls("imds_credentials")
        ),
        (1, 1, 1),
        "token PUT, role GET, credentials GET, each with the token"
    );
    assert_eq!(c.calls("refused"), 0);
    let expiry = envoy
        .stat_ending(&stat("imds", "envoy_faas_credentials_expiry_seconds"))
        .unwrap()
        .1;
    assert!((3500..=3600).contains(&expiry), "{expiry}");
    assert!(!envoy.log().contains("fakeSecret"), "no secret in the log");
}

#[test]
fn without_credentials_the_client_gets_503_and_nothing_goes_out_unsigned() {
    // IMDS is on but its cluster leads nowhere: no credentials, ever.
    let fakes = Fakes::start(3600).expect("fakes");
    fakes.controls.failing.store(true, Ordering::SeqCst);
    let mut envoy = start(&plugin(json!({})), &[IMDS_ON], &fakes);
    envoy
        .wait_stat(
            &stat("imds", "envoy_faas_credentials_refresh_failures_total"),
            1,
        )
        .unwrap();
    let r = signed_hello(&envoy);
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "credentials_unavailable");
    assert_eq!(body["source"], "imds");
    assert!(
        body["message"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
    assert!(
        envoy
            .stat_ending(&stat(
                "imds",
                "envoy_faas_credentials_requests_refused_total"
            ))
            .unwrap()
            .1
            >= 1
    );
}

#[test]
fn ecs_container_credentials_with_an_authorization_token() {
    let fakes = Fakes::start(3600).expect("fakes");
    *fakes.controls.container_authorization.lock().unwrap() = Some("ecs-secret-token".into());
    let full_uri = format!("http://127.0.0.1:{}/v1/credentials", fakes.port);
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-secret-token"),
    ];
    let mut envoy = start(&plugin(json!({})), &env, &fakes);
    envoy
        .wait_stat(
            &stat("container", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_signed(&envoy);
    assert_eq!(fakes.controls.calls("container"), 1);
    assert_eq!(fakes.controls.calls("imds_token"), 0, "IMDS never asked");
    assert!(!envoy.log().contains("ecs-secret-token"));
}

#[test]
fn eks_pod_identity_reads_the_rotating_token_file_through_envoy() {
    let fakes = Fakes::start(20).expect("fakes");
    let dir = token_dir("pod-identity", "eks-pod-identity-token", "pod-token-v1");
    let token_file = dir.0.join("eks-pod-identity-token");
    let full_uri = format!("http://127.0.0.1:{}/v1/credentials", fakes.port);
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
    ];
    *fakes.controls.container_authorization.lock().unwrap() = Some("pod-token-v1".into());
    let token_port = free_port();
    let dir_path = dir.0.to_str().unwrap().to_string();
    let bootstrap = platform_bootstrap(
        &plugin(json!({})),
        &env,
        fakes.port,
        Some((token_port, &[dir_path.as_str()])),
    );
    let mut envoy = Envoy::start(&bootstrap).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(
            &stat("container", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_signed(&envoy);
    // The kubelet rotates the token; the next refresh (20 s credentials:
    // 8 to 10 s in) must send the new one, which is now the only one valid.
    rotate_token_file(&dir, "eks-pod-identity-token", "pod-token-v2");
    *fakes.controls.container_authorization.lock().unwrap() = Some("pod-token-v2".into());
    envoy
        .wait_stat(
            &stat("container", "envoy_faas_credentials_refreshes_total"),
            2,
        )
        .unwrap();
    assert_eq!(
        fakes.controls.calls("refused"),
        0,
        "the old token was never sent after rotation"
    );
    assert_signed(&envoy);
    // The listener serves only the mapped directory.
    let outside = get(token_port, "/etc/passwd");
    assert_eq!(outside.status, 404);
}

#[test]
fn irsa_web_identity_token_goes_to_sts_and_its_credentials_sign() {
    let fakes = Fakes::start(3600).expect("fakes");
    let dir = token_dir("irsa", "token", "eyJ.irsa-jwt.sig\n");
    *fakes.controls.web_identity_token.lock().unwrap() = Some("eyJ.irsa-jwt.sig".into());
    let token_file = dir.0.join("token");
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gateway"),
        ("AWS_ROLE_SESSION_NAME", "gw-test"),
    ];
    let dir_path = dir.0.to_str().unwrap().to_string();
    let bootstrap = platform_bootstrap(
        &plugin(json!({})),
        &env,
        fakes.port,
        Some((free_port(), &[dir_path.as_str()])),
    );
    let mut envoy = Envoy::start(&bootstrap).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(
            &stat("web_identity", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_signed(&envoy);
    assert_eq!(fakes.controls.calls("web_identity"), 1);
    assert!(!envoy.log().contains("irsa-jwt"), "the token is not logged");
}

#[test]
fn assume_role_chains_from_imds_and_signs_sts_with_the_instance_role() {
    let fakes = Fakes::start(3600).expect("fakes");
    let iam = json!({"aws_assume_role_arn": "arn:aws:iam::123456789012:role/cross-account",
                     "aws_assume_role_external_id": "ext-1"});
    let mut envoy = start(&plugin(iam), &[IMDS_ON], &fakes);
    envoy
        .wait_stat(
            &stat("assume_role", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_signed(&envoy);
    assert_eq!(
        (
            fakes.controls.calls("imds_credentials"),
            fakes.controls.calls("assume_role")
        ),
        (1, 1),
        "the STS call's signature (with the instance role) was verified"
    );
}

#[test]
fn short_lived_credentials_rotate_before_expiry_with_zero_failed_requests() {
    // 20 s credentials: refreshed 8 to 10 s in (the shortest lifetime the
    // schedule serves fully); the front door refuses expired ones.
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(json!({})), &[IMDS_ON], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let (sent, failed) = steady_traffic(&envoy, "/f/platform", Duration::from_secs(24));
    assert!(sent > 50, "{sent}");
    assert!(failed.is_empty(), "{failed:?}");
    let issued = fakes.controls.calls("imds_credentials");
    assert!(issued >= 3, "rotated at least twice: {issued}");
}

#[test]
fn an_outage_keeps_signing_until_expiry_then_503_then_recovers() {
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(json!({})), &[IMDS_ON], &fakes);
    let refreshes = stat("imds", "envoy_faas_credentials_refreshes_total");
    envoy.wait_stat(&refreshes, 1).unwrap();
    // Valid credentials keep signing while every refresh fails ...
    let (at, body) = outage_until_refused(&envoy, &fakes.controls, "/f/platform")
        .expect("refused once the credentials expired");
    // Refreshes fail from ~8 s on; the credentials sign until 5 s before
    // their expiry at 20 s.
    assert!(
        at >= Duration::from_secs(13),
        "kept the valid credentials: {at:?}"
    );
    assert_eq!(body["error"], "credentials_unavailable");
    assert!(fakes.controls.calls("failed") >= 1);
    envoy
        .wait_stat(
            &stat("imds", "envoy_faas_credentials_refresh_failures_total"),
            1,
        )
        .unwrap();
    // ... and the source coming back is picked up without a restart.
    end_outage(&mut envoy, &fakes.controls, &refreshes);
    assert_signed(&envoy);
}

#[test]
fn two_workers_make_one_refresh_per_period() {
    let fakes = Fakes::start(20).expect("fakes");
    let bootstrap = platform_bootstrap(&plugin(json!({})), &[IMDS_ON], fakes.port, None);
    let started = Instant::now();
    let mut envoy = Envoy::start_with_workers(&bootstrap, 2).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let (_, failed) = steady_traffic(&envoy, "/f/platform", Duration::from_secs(13));
    assert!(failed.is_empty(), "{failed:?}");
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 2)
        .unwrap();
    let c = &fakes.controls;
    // 3 VMs (2 workers + main) tick; uncoordinated each would fetch: 3
    // initial fetches and 3 more per refresh. Coordinated: the initial one
    // and one refresh per period (the first 8 to 10 s in, then every 8 s),
    // however long a loaded machine made the test take.
    let fetches = c.calls("imds_credentials");
    let periods = started.elapsed().as_secs() / 8;
    assert!(
        (2..=1 + periods).contains(&fetches),
        "credential fetches: {fetches} in {periods} refresh periods"
    );
    assert_eq!(
        c.calls("imds_token"),
        fetches,
        "every fetch is one whole chain"
    );
    let attempted = envoy
        .stat_ending(&stat(
            "imds",
            "envoy_faas_credentials_refresh_attempts_total",
        ))
        .unwrap()
        .1;
    assert_eq!(attempted, fetches);
}

#[test]
fn kong_fields_are_accepted_and_bad_values_refused_at_load() {
    let fakes = Fakes::start(3600).expect("fakes");
    let bad = json!({"cluster": "functions", "routes": {"f": {
        "function_name": "echo", "aws_assume_role_arn": "not-an-arn"}}});
    let log = Envoy::start(&platform_bootstrap(&bad, &[], fakes.port, None))
        .err()
        .expect("refused");
    assert!(
        log.contains("field \"aws_assume_role_arn\": must be a role ARN"),
        "{log}"
    );
    let none = json!({"cluster": "functions", "routes": {"f": {"function_name": "echo"}}});
    let log = Envoy::start(&platform_bootstrap(&none, &[], fakes.port, None))
        .err()
        .expect("refused without any source");
    assert!(log.contains("no credentials"), "{log}");
}

/// Issue 27: a deployment that left a variable out is refused naming it,
/// a named `credential_source` must be complete (and is used whatever else
/// the environment holds), and `auto` says which source it chose and why.
#[test]
fn the_source_is_named_or_logged_and_half_a_pair_is_refused() {
    let fakes = Fakes::start(3600).expect("fakes");
    let named = |source: &str| {
        let mut p = plugin(json!({}));
        p["credential_source"] = source.into();
        p
    };
    let refused = |plugin: &Value, env: &[(&str, &str)]| {
        Envoy::start(&platform_bootstrap(plugin, env, fakes.port, None))
            .err()
            .expect("refused")
    };
    for (env, expected) in [
        (
            vec![IMDS_ON, ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")],
            r#"field "AWS_SECRET_ACCESS_KEY": (environment) is required with AWS_ACCESS_KEY_ID"#,
        ),
        (
            vec![
                IMDS_ON,
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gw"),
            ],
            r#"field "AWS_WEB_IDENTITY_TOKEN_FILE": (environment) is required with AWS_ROLE_ARN"#,
        ),
    ] {
        let log = refused(&plugin(json!({})), &env);
        assert!(log.contains(expected), "{expected}: {log}");
    }
    for (source, expected) in [
        (
            "web_identity",
            r#"route "f": field "AWS_WEB_IDENTITY_TOKEN_FILE": (environment) is required (with AWS_ROLE_ARN): credential_source is web_identity"#,
        ),
        (
            "container",
            r#"field "AWS_CONTAINER_CREDENTIALS_FULL_URI": (environment) (or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) is required"#,
        ),
        (
            "environment",
            r#"field "AWS_ACCESS_KEY_ID": (environment) is required: credential_source is environment"#,
        ),
        (
            "instance",
            r#"field "credential_source": must be one of auto, environment, profile, web_identity, container, imds"#,
        ),
    ] {
        let log = refused(&named(source), &[IMDS_ON]);
        assert!(log.contains(expected), "{source}: {log}");
    }
    let log = refused(&named("imds"), &[("AWS_EC2_METADATA_DISABLED", "true")]);
    assert!(
        log.contains(r#"field "AWS_EC2_METADATA_DISABLED": (environment) is true, but credential_source is imds"#),
        "{log}"
    );
    // Named: IMDS signs although the environment also offers a container.
    let container = format!("http://127.0.0.1:{}/v2/credentials/task", fakes.port);
    let env = [
        IMDS_ON,
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", container.as_str()),
    ];
    let mut envoy = start(&named("imds"), &env, &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    assert_signed(&envoy);
    assert_eq!(fakes.controls.calls("container"), 0);
    assert!(envoy
        .log()
        .contains(r#"route "f": credentials from imds (credential_source is imds)"#));
    // auto: the line names the source and why, off EC2 the hint too.
    let mut envoy = start(&plugin(json!({})), &[IMDS_ON], &fakes);
    envoy
        .wait_log(
            "credentials from imds (no keys, web identity or container variables reach the VM",
        )
        .unwrap();
}

/// A metadata service Envoy cannot reach is reported as unreachable, and
/// an outage logs once when it starts, not once per refused request.
#[test]
fn an_unreachable_metadata_service_is_named_and_refusals_do_not_flood_the_log() {
    let bootstrap = platform_bootstrap(&plugin(json!({})), &[IMDS_ON], dead_port(), None);
    assert_unreachable_and_logged_once(&bootstrap, "aws-lambda", "/f/platform");
}

/// The shared files in a directory the token-file listener serves, and the
/// VM environment that names them with `profile`.
struct SharedFiles {
    dir: ScratchDir,
    credentials: String,
    config: String,
}

impl SharedFiles {
    fn new(tag: &str, credentials: &str, config: &str) -> SharedFiles {
        let dir = token_dir(tag, "credentials", credentials);
        std::fs::write(dir.0.join("config"), config).expect("write the config file");
        let path = |name: &str| dir.0.join(name).to_str().expect("utf-8").to_string();
        SharedFiles {
            credentials: path("credentials"),
            config: path("config"),
            dir,
        }
    }

    /// Envoy with `plugin`, the files named in the VM's environment with
    /// `profile`, and the token-file listener serving their directory.
    fn start(&self, plugin: &Value, profile: &str, fakes: &Fakes) -> Envoy {
        let env = [
            ("AWS_SHARED_CREDENTIALS_FILE", self.credentials.as_str()),
            ("AWS_CONFIG_FILE", self.config.as_str()),
            ("AWS_PROFILE", profile),
        ];
        let dir = self.dir.0.to_str().expect("utf-8").to_string();
        let bootstrap = platform_bootstrap(
            plugin,
            &env,
            fakes.port,
            Some((free_port(), &[dir.as_str()])),
        );
        Envoy::start(&bootstrap).unwrap_or_else(|log| panic!("{log}"))
    }
}

/// The fixed keys the emulator's front door and STS accept.
const FILE_KEYS: &str = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
const FILE_SESSION_KEYS: &str = "[default]\n# rotated\naws_access_key_id=ASIAEXAMPLESESSION\naws_secret_access_key=sessionSecretEXAMPLEKEY0123456789abcdef\naws_session_token=IQoJb3JpZ2luX2VjEXAMPLE//session+token=\n";

/// The key id the function saw in the SigV4 `Authorization` header.
fn signing_key_id(envoy: &Envoy) -> String {
    let r = get(envoy.port, "/f/echo");
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    let headers = echo["headers"].as_array().expect("headers");
    let authorization = headers
        .iter()
        .find(|h| h[0] == "authorization")
        .and_then(|h| h[1].as_str())
        .expect("signed");
    let credential = authorization
        .split("Credential=")
        .nth(1)
        .expect("credential");
    credential.split('/').next().expect("key id").to_string()
}

/// `/f/...` to the Function URL's `/...`: `/f/echo` shows what arrived.
fn url_plugin(top: Value) -> Value {
    let mut p = json!({"cluster": "functions", "routes": {"f": {
        "function_uri": format!("http://{URL_HOST}/"), "strip_prefix": "/f",
        "authorization": {"iam": {}}
    }}});
    if let (Some(p), Some(top)) = (p.as_object_mut(), top.as_object()) {
        p.extend(top.clone());
    }
    p
}

#[test]
fn keys_from_the_shared_credentials_file_sign_and_a_rotated_key_is_picked_up() {
    let fakes = Fakes::start(3600).expect("fakes");
    let files = SharedFiles::new("shared-keys", FILE_KEYS, "");
    let plugin = url_plugin(json!({"credentials_file_refresh_seconds": 10}));
    let mut envoy = files.start(&plugin, "default", &fakes);
    let refreshes = stat("profile", "envoy_faas_credentials_refreshes_total");
    envoy.wait_stat(&refreshes, 1).unwrap();
    assert_eq!(signing_key_id(&envoy), "AKIDEXAMPLE");
    envoy
        .wait_log(r#"route "f": credentials from profile (AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE is set)"#)
        .unwrap();
    // The secret store rotates the mounted file: the next read (10 s
    // period) signs with the new keys and their session token, and not one
    // request fails on the way.
    rotate_token_file(&files.dir, "credentials", FILE_SESSION_KEYS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while signing_key_id(&envoy) != "ASIAEXAMPLESESSION" {
        assert!(Instant::now() < deadline, "the rotated key was never read");
    }
    envoy.wait_stat(&refreshes, 2).unwrap();
    let log = envoy.log();
    for secret in ["wJalrXUtnFEMI", "sessionSecretEXAMPLEKEY", "IQoJb3JpZ2lu"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn a_profile_chain_assumes_each_role_from_its_source_profile() {
    let fakes = Fakes::start(3600).expect("fakes");
    let config = "[profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = default\nexternal_id = ext-1\n\n\
                  [profile cross]\nrole_arn = arn:aws:iam::210987654321:role/cross\nsource_profile = app\nrole_session_name = gw-cross\n";
    let files = SharedFiles::new("shared-chain", FILE_KEYS, config);
    let mut envoy = files.start(&url_plugin(json!({})), "cross", &fakes);
    envoy
        .wait_stat(
            &stat("profile", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    // The file's keys signed the first AssumeRole, its answer the second
    // (STS verified both signatures); the last role's credentials sign.
    assert_eq!(fakes.controls.calls("assume_role"), 2);
    assert!(signing_key_id(&envoy).starts_with("ASIAFAKE"));
}

#[test]
fn a_web_identity_profile_reads_its_token_file_then_chains() {
    let fakes = Fakes::start(3600).expect("fakes");
    *fakes.controls.web_identity_token.lock().unwrap() = Some("eyJ.profile-jwt.sig".into());
    let files = SharedFiles::new("shared-irsa", "", "");
    std::fs::write(files.dir.0.join("token"), "eyJ.profile-jwt.sig\n").expect("token");
    let token = files.dir.0.join("token");
    let config = format!(
        "[profile irsa]\nrole_arn = arn:aws:iam::123456789012:role/irsa\nweb_identity_token_file = {}\n\
         [profile next]\nrole_arn = arn:aws:iam::123456789012:role/next\nsource_profile = irsa\n",
        token.display()
    );
    std::fs::write(&files.config, config).expect("config");
    // No credentials file at all: a file that is not there is an empty one.
    std::fs::remove_file(&files.credentials).expect("remove");
    let mut envoy = files.start(
        &url_plugin(json!({"credential_source": "profile"})),
        "next",
        &fakes,
    );
    envoy
        .wait_stat(
            &stat("profile", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_eq!(
        (
            fakes.controls.calls("web_identity"),
            fakes.controls.calls("assume_role")
        ),
        (1, 1)
    );
    assert!(signing_key_id(&envoy).starts_with("ASIAFAKE"));
    assert!(
        !envoy.log().contains("profile-jwt"),
        "the token is not logged"
    );
}

#[test]
fn a_profile_that_cannot_resolve_fails_closed_naming_the_key_and_no_value() {
    let fakes = Fakes::start(3600).expect("fakes");
    let config = "[profile sso]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\nmfa_serial = arn:aws:iam::1:mfa/me\n";
    let files = SharedFiles::new("shared-bad", FILE_KEYS, config);
    let mut envoy = files.start(&url_plugin(json!({})), "sso", &fakes);
    envoy
        .wait_stat(
            &stat("profile", "envoy_faas_credentials_refresh_failures_total"),
            1,
        )
        .unwrap();
    let r = get(envoy.port, "/f/echo");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "credentials_unavailable");
    envoy
        .wait_log(r#"profile "sso": mfa_serial is not supported in the VM"#)
        .unwrap();
    assert!(!envoy.log().contains("wJalrXUtnFEMI"));
    assert_eq!(
        fakes.controls.calls("assume_role"),
        0,
        "nothing signed with a half-read profile"
    );
    // A profile without files is refused at load, naming the variable.
    let log = Envoy::start(&platform_bootstrap(
        &url_plugin(json!({})),
        &[("AWS_PROFILE", "x")],
        fakes.port,
        None,
    ))
    .err()
    .expect("refused");
    assert!(
        log.contains(r#"field "AWS_SHARED_CREDENTIALS_FILE": (environment) (or AWS_CONFIG_FILE) is required with AWS_PROFILE"#),
        "{log}"
    );
}
