//! The command's interface: exit statuses, inputs, and what it prints.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn envoy_faas(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_envoy-faas"))
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_accepts_a_good_config_from_stdin_and_names_its_cluster() {
    let o = envoy_faas(
        &["check", "--filter", "openfunction", "-"],
        r#"{"function_uri": "https://fn.example.com/f"}"#,
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("-: ok (openfunction, 1 route(s))"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(r#"route "*" -> cluster "fn.example.com""#));
}

#[test]
fn check_says_what_an_in_place_route_needs() {
    let o = envoy_faas(
        &["check", "--filter", "openfunction", "-"],
        r#"{"function_uri": "https://fn.example.com:8443/f", "forwarding": "route", "cluster": "fn"}"#,
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(r#"forwarding in place: the Envoy route's cluster must be "fn""#)
            && out.contains(r#"virtual host of "fn.example.com:8443""#),
        "{out}"
    );
    // Invoke mode is refused in place, naming the field, unless it streams.
    let invoke = r#""function_name": "f", "aws_region": "us-east-1", "aws_key": "AKIDEXAMPLE", "aws_secret": "s", "forwarding": "route""#;
    let o = envoy_faas(
        &["check", "--filter", "aws-lambda", "-"],
        &format!("{{{invoke}}}"),
    );
    assert!(!o.status.success());
    assert!(stdout(&o).contains("forwarding"), "{}", stdout(&o));
    let o = envoy_faas(
        &["check", "--filter", "aws-lambda", "-"],
        &format!(r#"{{{invoke}, "invoke_mode": "RESPONSE_STREAM"}}"#),
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("streams (InvokeWithResponseStream): a request with a body streams"),
        "{}",
        stdout(&o)
    );
    // A streaming Function URL needs the in-place path.
    let o = envoy_faas(
        &["check", "--filter", "aws-lambda", "-"],
        r#"{"function_uri": "https://a.lambda-url.us-east-1.on.aws/", "invoke_mode": "RESPONSE_STREAM"}"#,
    );
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains(r#"field "invoke_mode""#),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_prints_every_routes_error_without_values_and_exits_1() {
    let secret = "s3cr3t-key-value";
    let config = format!(
        r#"{{"routes": {{"a": {{"function_uri": "http://h/a", "authorization": {{"service_token": "{secret}"}}}},
                        "b": {{"function_uri": "http://h/b", "timeout": 1}}}}}}"#
    );
    let o = envoy_faas(&["check", "--filter", "openfunction", "-"], &config);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(r#"invalid configuration: route "a": field "authorization.service_token""#),
        "{out}"
    );
    assert!(
        out.contains(r#"invalid configuration: route "b": field "timeout""#),
        "{out}"
    );
    assert!(!out.contains(secret), "a value was printed: {out}");
}

#[test]
fn check_reads_yaml_plugin_configs() {
    let dir = std::env::temp_dir().join(format!("envoy-faas-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("plugin.yaml");
    std::fs::write(
        &file,
        "routes:\n  hello:\n    function_uri: http://fn.local/f\n    timeout: 99\n",
    )
    .expect("write");
    let o = envoy_faas(
        &[
            "check",
            "--filter=openfunction",
            file.to_str().expect("path"),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(r#"route "hello": field "timeout""#),
        "{}",
        stdout(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    for (args, says) in [
        (vec![], "a command is needed"),
        (vec!["check", "-"], "check needs --filter"),
        (
            vec!["check", "--filter", "lambda", "-"],
            "unknown filter \"lambda\"",
        ),
        (
            vec!["import", "nginx", "x"],
            "import reads apisix, kong or envoy",
        ),
        (
            vec!["import", "envoy", "x", "--listen", "0:1"],
            "unknown option --listen",
        ),
        (
            vec!["import", "envoy"],
            "import envoy needs the Envoy config file",
        ),
        (
            vec!["import", "kong", "x", "--listen", "nowhere"],
            "not ADDR:PORT",
        ),
    ] {
        let o = envoy_faas(&args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn import_strict_fails_when_something_was_not_translated() {
    let kong = "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/r]\n  plugins:\n  - name: azure-functions\n    config: {appname: a, functionname: f}\n  - name: cors\n";
    let o = envoy_faas(&["import", "kong", "-", "--strict"], kong);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("plugin cors: CORS is Envoy's cors filter"),
        "{err}"
    );
    // The output is still written, for what was translated.
    assert!(stdout(&o).contains("name: r"), "{}", stdout(&o));
    let o = envoy_faas(&["import", "kong", "-"], kong);
    assert!(o.status.success());
}

#[test]
fn import_refuses_a_route_whose_secret_is_in_a_vault() {
    let kong = "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/r]\n  plugins:\n  - name: aws-lambda\n    config: {function_name: f, aws_region: us-east-1, aws_key: '{vault://env/key}', aws_secret: '{vault://env/secret}'}\n";
    let o = envoy_faas(&["import", "kong", "-"], kong);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("references a secret store (aws_key, aws_secret)"),
        "{err}"
    );
    assert!(err.contains("0 function route(s) translated"), "{err}");
    assert!(!err.contains("vault://env"), "a value was printed: {err}");
}

#[test]
fn import_leaves_out_routes_that_match_on_conditions_it_cannot_carry() {
    let apisix = "routes:\n- id: 1\n  uri: /a\n  vars: [[\"http_x\", \"==\", \"1\"]]\n  plugins:\n    openfunction: {function_uri: 'http://f/a'}\n- id: 2\n  uri: /b\n  plugins:\n    openfunction: {function_uri: 'http://f/b'}\n";
    let o = envoy_faas(&["import", "apisix", "-"], apisix);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("APISIX route \"1\": route left out: it matches on vars"),
        "{err}"
    );
    assert!(err.contains("1 function route(s) translated"), "{err}");
    let out = stdout(&o);
    assert!(
        out.contains("path: /b") && !out.contains("path: /a"),
        "{out}"
    );
}
