//! The AWS shared files as botocore reads them (issue 30): for every
//! profile and key of a set of tricky files, the value the filter's
//! resolver reads (`credentials::profile::lookup`) is the one in botocore's
//! merged profiles (`Session.full_config`, the project venv's botocore):
//! `[profile x]` in the config file, `[x]` in the credentials file, the
//! credentials file winning key by key, `[default]` in both, comments, and
//! nested (indented) settings that are not the profile's own keys.

use aws_lambda::credentials::profile::lookup;
use integration_tests::*;
use serde_json::Value;

const CREDENTIALS: &str = "\
# keys
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = default/secret

[base]
aws_access_key_id=AKIDBASE
aws_secret_access_key=base/secret
aws_session_token = base-token
[shadowed]
aws_access_key_id = FROMCREDENTIALS
[profile literal]
aws_access_key_id = LITERAL
";

const CONFIG: &str = "\
[default]
region = us-east-1
s3 =
  max_concurrent_requests = 20

[profile shadowed]
aws_access_key_id = FROMCONFIG
aws_secret_access_key = config/secret
; a comment
[profile app]
role_arn = arn:aws:iam::111122223333:role/app
source_profile = base
external_id = ext-7
role_session_name = gw
duration_seconds = 900

[base]
aws_access_key_id = BARE-SECTION-IN-CONFIG

[profile irsa]
role_arn = arn:aws:iam::111122223333:role/irsa
web_identity_token_file = /var/run/secrets/token
";

const BOTOCORE_PROFILES: &str = r#"
import json, sys, botocore.session
s = botocore.session.Session()
s.set_config_variable("config_file", sys.argv[1])
s.set_config_variable("credentials_file", sys.argv[2])
print(json.dumps(s.full_config.get("profiles", {})))
"#;

#[test]
fn the_resolver_reads_every_profile_key_as_botocore_does() {
    let dir = ScratchDir::new("profile-oracle");
    let (config, credentials) = (dir.0.join("config"), dir.0.join("credentials"));
    std::fs::write(&config, CONFIG).expect("config");
    std::fs::write(&credentials, CREDENTIALS).expect("credentials");
    let out = std::process::Command::new(venv_bin("python"))
        .args(["-c", BOTOCORE_PROFILES])
        .arg(&config)
        .arg(&credentials)
        .output()
        .expect("run the venv's python (make moto installs botocore)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profiles: Value = serde_json::from_slice(&out.stdout).expect("botocore's JSON");
    let profiles = profiles.as_object().expect("profiles");
    // A credentials-file section is taken literally: `[profile literal]`
    // there is a profile named "profile literal".
    for name in [
        "default",
        "base",
        "shadowed",
        "app",
        "irsa",
        "profile literal",
    ] {
        assert!(
            profiles.contains_key(name),
            "botocore sees {name}: {profiles:?}"
        );
    }
    let keys = [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "role_arn",
        "source_profile",
        "external_id",
        "role_session_name",
        "duration_seconds",
        "web_identity_token_file",
        "region",
    ];
    let mut compared = 0;
    for (name, settings) in profiles {
        for key in keys {
            let theirs = settings.get(key).and_then(Value::as_str);
            let ours = lookup(CREDENTIALS, CONFIG, name, key);
            assert_eq!(ours, theirs, "profile {name:?}, key {key}");
            compared += usize::from(theirs.is_some());
        }
    }
    assert!(compared >= 15, "{compared}");
    // The config file's bare `[base]` is not a profile (botocore keeps it
    // elsewhere): base's key id comes from the credentials file.
    assert_eq!(
        lookup(CREDENTIALS, CONFIG, "base", "aws_access_key_id"),
        Some("AKIDBASE")
    );
}
