//! Conformance against moto's server: a Lambda endpoint that recomputes our
//! SigV4 signature (with botocore) and refuses bad ones, so no code of
//! ours can fake a pass. Auth is enforced after setup.
//!
//! moto quirks designed around (see shared/reference/sigv4.md): every
//! request carries a non-empty body (moto fails empty-body signatures), and
//! its "simple" Lambda backend echoes the payload for any function name.

use integration_tests::*;
use serde_json::{json, Value};

fn envoy_for(moto: &Moto, entry_fields: Value) -> Envoy {
    let entry = json!({"endpoint": format!("http://127.0.0.1:{}", moto.port), "cluster": "moto"});
    let plugin = single_route(merged(entry, entry_fields));
    Envoy::start(&bootstrap(
        vec![route("f", "/f", "moto")],
        vec![wasm_filter("aws-lambda", &plugin)],
        vec![cluster("moto", moto.port)],
    ))
    .unwrap_or_else(|log| panic!("{log}"))
}

fn keys(moto: &Moto, who: &str) -> Value {
    json!({"aws_key": moto.setup[who]["key"], "aws_secret": moto.setup[who]["secret"]})
}

#[test]
fn names_arns_qualifiers_and_invocation_types_are_accepted_by_moto() {
    let moto = Moto::start();
    let arn = moto.setup["function_arn"]
        .as_str()
        .expect("arn")
        .to_string();
    let cases = [
        json!({"function_name": "echo"}),
        json!({"function_name": arn}),
        json!({"function_name": "123456789012:function:echo"}),
        json!({"function_name": "echo:live"}),
        json!({"function_name": "echo", "qualifier": "$LATEST"}),
        json!({"function_name": format!("{arn}:7")}),
    ];
    for case in cases {
        let envoy = envoy_for(&moto, merged(keys(&moto, "invoker"), case.clone()));
        let body = br#"{"hello":"moto","n":[1,2,3]}"#;
        let r = http1(
            envoy.port,
            "POST",
            "/f",
            &[("content-type", "application/json")],
            body,
        );
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        assert_eq!(r.body, body, "{case}: moto echoes the payload");
    }
    let envoy = envoy_for(
        &moto,
        merged(
            keys(&moto, "invoker"),
            json!({"function_name": "echo", "invocation_type": "Event"}),
        ),
    );
    assert_eq!(
        http1(envoy.port, "POST", "/f", &[], b"{\"e\":1}").status,
        202
    );
    let envoy = envoy_for(
        &moto,
        merged(
            keys(&moto, "invoker"),
            json!({"function_name": "echo", "invocation_type": "DryRun"}),
        ),
    );
    assert_eq!(
        http1(envoy.port, "POST", "/f", &[], b"{\"d\":1}").status,
        204
    );
    // An API Gateway v2 event is signed over its JSON body like any other.
    let envoy = envoy_for(
        &moto,
        merged(
            keys(&moto, "invoker"),
            json!({"function_name": "echo", "payload_format": "apigateway_v2", "is_proxy_integration": false}),
        ),
    );
    let r = http1(envoy.port, "GET", "/f/x?y=1", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rawQueryString"], "y=1");
}

#[test]
fn session_credentials_from_moto_sts() {
    let moto = Moto::start();
    let s = &moto.setup["session"];
    let route = json!({"function_name": "echo", "authorization": {"iam": {
        "accesskey": s["key"], "secretkey": s["secret"], "session_token": s["token"]
    }}});
    let envoy = envoy_for(&moto, route);
    let r = http1(envoy.port, "POST", "/f", &[], b"{\"session\":true}");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"{\"session\":true}"[..]),
        "{}",
        r.text()
    );

    let wrong_token = json!({"function_name": "echo", "authorization": {"iam": {
        "accesskey": s["key"], "secretkey": s["secret"], "session_token": "not-the-token"
    }}});
    let envoy = envoy_for(&moto, wrong_token);
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["aws_error_type"], "InvalidClientTokenId");
}

#[test]
fn moto_refuses_a_wrong_secret_and_an_unauthorised_user() {
    let moto = Moto::start();
    let mut wrong = keys(&moto, "invoker");
    wrong["aws_secret"] = json!("wrong-secret-wrong-secret-wrong-secret00");
    let envoy = envoy_for(&moto, merged(wrong, json!({"function_name": "echo"})));
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!(r.status, 502, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["error"].as_str(), v["aws_status"].as_u64()),
        (Some("lambda_invoke_failed"), Some(403))
    );
    assert_eq!(v["aws_error_type"], "SignatureDoesNotMatch");
    assert!(!envoy.log().contains("wrong-secret"), "secret in log");

    let envoy = envoy_for(
        &moto,
        merged(
            keys(&moto, "nobody"),
            json!({"function_name": "echo", "preserve_lambda_api_error_code": true}),
        ),
    );
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["aws_error_type"], "AccessDenied");
}

/// Kong's `aws_assume_role_arn` against moto's STS: the AssumeRole call is
/// signed with the invoker's key (moto verifies it and checks the user may
/// assume roles), and the Invoke call with the role's session credentials.
fn assume_role_envoy(moto: &Moto, who: &str) -> Envoy {
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let route = merged(
        keys(moto, who),
        json!({"endpoint": endpoint, "cluster": "moto", "function_name": "echo",
               "aws_assume_role_arn": moto.setup["role_arn"],
               "aws_role_session_name": "envoy-faas-test",
               "aws_sts_endpoint_url": endpoint}),
    );
    let plugin = json!({"sts_cluster": "moto", "routes": {"f": route}});
    Envoy::start(&bootstrap(
        vec![route_to("f", "/f", "moto")],
        vec![wasm_filter("aws-lambda", &plugin)],
        vec![cluster("moto", moto.port)],
    ))
    .unwrap_or_else(|log| panic!("{log}"))
}

fn route_to(name: &str, prefix: &str, cluster: &str) -> Value {
    integration_tests::route(name, prefix, cluster)
}

#[test]
fn assume_role_through_moto_sts_then_invoke_with_the_role() {
    let moto = Moto::start();
    let mut envoy = assume_role_envoy(&moto, "invoker");
    envoy
        .wait_stat(
            "envoy_faas_credentials_refreshes_total.filter=.=aws-lambda;.;source=.=assume_role;.;",
            1,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", moto.log()));
    let body = br#"{"via":"assumed role"}"#;
    let r = http1(envoy.port, "POST", "/f", &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, body);
}

#[test]
fn assume_role_refused_by_moto_fails_closed() {
    let moto = Moto::start();
    // `nobody` has no policy: moto refuses its AssumeRole.
    let mut envoy = assume_role_envoy(&moto, "nobody");
    envoy
        .wait_stat("envoy_faas_credentials_refresh_failures_total.filter=.=aws-lambda;.;source=.=assume_role;.;", 1)
        .unwrap();
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "credentials_unavailable");
    let secret = moto.setup["nobody"]["secret"].as_str().unwrap();
    assert!(!r.text().contains(secret) && !envoy.log().contains(secret));
}
