//! The AWS shared files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`)
//! and one profile in them (`AWS_PROFILE`): what the profile resolves to.
//! Pure: the chain reads the files through the token-file cluster on every
//! refresh and hands their text here.
//!
//! Resolution follows the AWS CLI (botocore): a profile with `role_arn`
//! assumes that role from its `source_profile` (which may chain further)
//! or from its `web_identity_token_file`; otherwise its keys are used. In
//! the credentials file a section is `[name]`, in the config file
//! `[profile name]` (`[default]` in both); for the same profile, the
//! credentials file wins key by key, as in the SDKs.

use super::Credentials;

/// Role chains longer than this are refused (a loop is refused at once).
const MAX_HOPS: usize = 5;

/// An `AssumeRole` on the way to the profile's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: u32,
}

/// Where the chain starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    Keys(Credentials),
    /// `web_identity_token_file` with its profile's role (the first hop,
    /// `AssumeRoleWithWebIdentity`).
    WebIdentity {
        token_file: String,
        role: Hop,
    },
}

/// What a profile resolves to: a start, then roles assumed in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub start: Start,
    pub hops: Vec<Hop>,
}

/// One profile's keys, credentials file first.
struct Profile<'a> {
    name: &'a str,
    sections: [Option<&'a str>; 2],
}

impl<'a> Profile<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.sections
            .iter()
            .flatten()
            .find_map(|section| value(section, key))
    }
}

/// The body of a section (the text up to the next header), if present.
/// `config` selects the config file's `[profile name]` spelling.
fn section<'a>(text: &'a str, name: &str, config: bool) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Some(begin) = start {
                return text.get(begin..offset);
            }
            let header = header.trim();
            // In the config file only `[default]` goes without the prefix
            // (botocore reads other bare sections as something else).
            let header = match header.strip_prefix("profile ") {
                Some(named) if config => Some(named.trim()),
                _ if config && header != "default" => None,
                _ => Some(header),
            };
            if header == Some(name) {
                start = Some(offset + line.len());
            }
        }
        offset += line.len();
    }
    start.and_then(|begin| text.get(begin..))
}

/// `key = value` in a section body; indented lines (nested settings) and
/// `#` / `;` comments do not count.
fn value<'a>(section: &'a str, key: &str) -> Option<&'a str> {
    section.lines().find_map(|line| {
        if line.starts_with([' ', '\t']) {
            return None;
        }
        let (k, v) = line.split_once('=')?;
        (k.trim() == key)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// The profile `name` from the credentials and config files' text.
fn profile<'a>(credentials: &'a str, config: &'a str, name: &'a str) -> Option<Profile<'a>> {
    let sections = [
        section(credentials, name, false),
        section(config, name, true),
    ];
    sections
        .iter()
        .any(Option::is_some)
        .then_some(Profile { name, sections })
}

/// One key of profile `name` as the resolver reads it (the credentials
/// file first, then the config file): what `tests/tests/profile_oracle.rs`
/// compares with botocore's merged profiles.
pub fn lookup<'a>(
    credentials: &'a str,
    config: &'a str,
    name: &'a str,
    key: &str,
) -> Option<&'a str> {
    profile(credentials, config, name)?.get(key)
}

/// Resolves profile `name`. The error names the profile and the key at
/// fault, never a value.
pub fn resolve(credentials: &str, config: &str, name: &str) -> Result<Plan, String> {
    let mut hops = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut current = name;
    loop {
        let p = profile(credentials, config, current)
            .ok_or_else(|| format!("profile \"{current}\" is in neither file"))?;
        let role = p.get("role_arn");
        // A source profile's own keys end the chain when it names itself
        // (botocore's self-reference rule).
        let self_source = p.get("source_profile") == Some(current);
        if let (Some(role_arn), false) = (role, self_source && !seen.is_empty()) {
            for unsupported in ["credential_source", "credential_process", "mfa_serial"] {
                if p.get(unsupported).is_some() {
                    return Err(format!(
                        "profile \"{current}\": {unsupported} is not supported in the VM; \
                         use source_profile or web_identity_token_file"
                    ));
                }
            }
            let hop = hop(&p, role_arn)?;
            if let Some(token_file) = p.get("web_identity_token_file") {
                hops.reverse();
                return Ok(Plan {
                    start: Start::WebIdentity {
                        token_file: token_file.to_string(),
                        role: hop,
                    },
                    hops,
                });
            }
            hops.push(hop);
            let source = p.get("source_profile").ok_or_else(|| {
                format!("profile \"{current}\": role_arn needs source_profile or web_identity_token_file")
            })?;
            seen.push(current);
            if (seen.contains(&source) && source != current) || hops.len() > MAX_HOPS {
                return Err(format!(
                    "profile \"{current}\": source_profile loops or chains more than {MAX_HOPS} roles"
                ));
            }
            current = source;
            continue;
        }
        let keys = keys(&p)?;
        hops.reverse();
        return Ok(Plan {
            start: Start::Keys(keys),
            hops,
        });
    }
}

fn hop(p: &Profile<'_>, role_arn: &str) -> Result<Hop, String> {
    let duration_seconds = match p.get("duration_seconds") {
        None => super::sts::DEFAULT_DURATION_SECONDS,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (900..=43_200).contains(d))
            .ok_or_else(|| {
                format!(
                    "profile \"{}\": duration_seconds must be 900 to 43200",
                    p.name
                )
            })?,
    };
    Ok(Hop {
        role_arn: role_arn.to_string(),
        session_name: p
            .get("role_session_name")
            .unwrap_or("envoy-faas")
            .to_string(),
        external_id: p.get("external_id").map(str::to_string),
        duration_seconds,
    })
}

fn keys(p: &Profile<'_>) -> Result<Credentials, String> {
    let missing = |key: &str| format!("profile \"{}\": no {key}", p.name);
    Ok(Credentials {
        access_key_id: p
            .get("aws_access_key_id")
            .ok_or_else(|| missing("aws_access_key_id"))?
            .to_string(),
        secret_access_key: p
            .get("aws_secret_access_key")
            .ok_or_else(|| missing("aws_secret_access_key"))?
            .to_string(),
        session_token: p
            .get("aws_session_token")
            .or_else(|| p.get("aws_security_token"))
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
# static keys
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = default/secret

[base]
aws_access_key_id=AKIDBASE
aws_secret_access_key=base/secret
aws_session_token = base-token
[shadowed]
aws_access_key_id = FROMCREDENTIALS
";

    const CONFIG: &str = "\
[default]
region = us-east-1
s3 =
  aws_access_key_id = NESTED

[profile shadowed]
aws_access_key_id = FROMCONFIG
aws_secret_access_key = config/secret

[profile app]
role_arn = arn:aws:iam::111122223333:role/app
source_profile = base
external_id = ext-7
role_session_name = gw
duration_seconds = 900

[profile cross]
role_arn = arn:aws:iam::444455556666:role/cross
source_profile = app

[profile irsa]
role_arn = arn:aws:iam::111122223333:role/irsa
web_identity_token_file = /var/run/secrets/token

[profile via-irsa]
role_arn = arn:aws:iam::444455556666:role/after-irsa
source_profile = irsa

[profile self]
role_arn = arn:aws:iam::111122223333:role/self
source_profile = self
aws_access_key_id = AKIDSELF
aws_secret_access_key = self/secret

[profile loop-a]
role_arn = arn:aws:iam::1:role/a
source_profile = loop-b
[profile loop-b]
role_arn = arn:aws:iam::1:role/b
source_profile = loop-a
[profile orphan]
role_arn = arn:aws:iam::1:role/orphan
[profile process]
credential_process = /bin/give-me-keys
role_arn = arn:aws:iam::1:role/p
source_profile = base
";

    fn keys_of(plan: &Plan) -> &Credentials {
        match &plan.start {
            Start::Keys(k) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn static_keys_with_and_without_a_session_token() {
        let plan = resolve(CREDENTIALS, CONFIG, "default").unwrap();
        assert_eq!(keys_of(&plan).access_key_id, "AKIDDEFAULT");
        assert_eq!(keys_of(&plan).session_token, None);
        assert!(plan.hops.is_empty());
        let base = resolve(CREDENTIALS, CONFIG, "base").unwrap();
        assert_eq!(keys_of(&base).session_token.as_deref(), Some("base-token"));
    }

    #[test]
    fn the_credentials_file_wins_key_by_key_and_nested_keys_do_not_count() {
        let plan = resolve(CREDENTIALS, CONFIG, "shadowed").unwrap();
        assert_eq!(keys_of(&plan).access_key_id, "FROMCREDENTIALS");
        assert_eq!(keys_of(&plan).secret_access_key, "config/secret");
        let only_config = resolve("", CONFIG, "default");
        assert_eq!(
            only_config.unwrap_err(),
            "profile \"default\": no aws_access_key_id",
            "the nested s3 key is not the profile's"
        );
    }

    #[test]
    fn role_chains_run_from_the_source_profile_outwards() {
        let plan = resolve(CREDENTIALS, CONFIG, "cross").unwrap();
        assert_eq!(keys_of(&plan).access_key_id, "AKIDBASE");
        let roles: Vec<&str> = plan.hops.iter().map(|h| h.role_arn.as_str()).collect();
        assert_eq!(
            roles,
            [
                "arn:aws:iam::111122223333:role/app",
                "arn:aws:iam::444455556666:role/cross"
            ]
        );
        let app = &plan.hops[0];
        assert_eq!(
            (
                app.session_name.as_str(),
                app.external_id.as_deref(),
                app.duration_seconds
            ),
            ("gw", Some("ext-7"), 900)
        );
        assert_eq!(plan.hops[1].session_name, "envoy-faas");
        assert_eq!(plan.hops[1].duration_seconds, 3600);
    }

    #[test]
    fn web_identity_starts_a_chain() {
        let plan = resolve("", CONFIG, "via-irsa").unwrap();
        let Start::WebIdentity { token_file, role } = &plan.start else {
            panic!("{plan:?}")
        };
        assert_eq!(token_file, "/var/run/secrets/token");
        assert_eq!(role.role_arn, "arn:aws:iam::111122223333:role/irsa");
        assert_eq!(plan.hops.len(), 1);
        assert_eq!(
            plan.hops[0].role_arn,
            "arn:aws:iam::444455556666:role/after-irsa"
        );
    }

    #[test]
    fn a_source_profile_naming_itself_uses_its_own_keys() {
        let plan = resolve("", CONFIG, "self").unwrap();
        assert_eq!(keys_of(&plan).access_key_id, "AKIDSELF");
        assert_eq!(plan.hops.len(), 1);
    }

    #[test]
    fn errors_name_the_profile_and_key_never_a_value() {
        for (name, expected) in [
            ("missing", "profile \"missing\" is in neither file"),
            ("loop-a", "loops"),
            ("orphan", "needs source_profile"),
            ("process", "credential_process is not supported"),
        ] {
            let e = resolve(CREDENTIALS, CONFIG, name).unwrap_err();
            assert!(e.contains(expected), "{name}: {e}");
            assert!(!e.contains("secret") && !e.contains("AKID"), "{e}");
        }
        let bad = CONFIG.replace("duration_seconds = 900", "duration_seconds = 60");
        assert!(resolve(CREDENTIALS, &bad, "app")
            .unwrap_err()
            .contains("duration_seconds"));
    }

    #[test]
    fn the_config_file_needs_the_profile_prefix_and_the_credentials_file_does_not() {
        let creds = "[profile base]\naws_access_key_id = A\naws_secret_access_key = S\n";
        assert!(resolve(creds, "", "base").is_err());
        let config = "[base]\naws_access_key_id = A\naws_secret_access_key = S\n";
        assert!(resolve("", config, "base").is_err());
        assert!(resolve(
            "",
            "[profile base]\naws_access_key_id=A\naws_secret_access_key=S",
            "base"
        )
        .is_ok());
    }

    #[test]
    fn debug_output_hides_the_keys() {
        let shown = format!("{:?}", resolve(CREDENTIALS, CONFIG, "base").unwrap());
        assert!(
            !shown.contains("base/secret") && !shown.contains("base-token"),
            "{shown}"
        );
    }
}
