//! What the VM's environment says about credentials
//! (`vm_config.environment_variables`; Istio: `WasmPlugin.vmConfig.env`),
//! read once at configuration: static keys, the region, and which platform
//! source the chain uses.

use super::container::{self, Endpoint};
use super::{imds, Credentials};

/// How a container credentials request is authorised.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    None,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Token(String),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (EKS Pod Identity): read
    /// through the token-file cluster on every refresh, as it rotates.
    TokenFile(String),
}

impl std::fmt::Debug for Authorization {
    // The static token is a secret; file paths are not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::None => f.write_str("None"),
            Authorization::Token(_) => f.write_str("Token(<redacted>)"),
            Authorization::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
        }
    }
}

/// IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentity {
    pub token_file: String,
    pub role_arn: String,
    pub session_name: String,
}

/// The shared files and the profile in them: `AWS_SHARED_CREDENTIALS_FILE`,
/// `AWS_CONFIG_FILE` (named: the VM has no home directory to find
/// `~/.aws` in), `AWS_PROFILE` (else `default`). Read through the
/// token-file cluster on every refresh; a file that is not there counts as
/// empty, as in the SDKs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFiles {
    /// The credentials file, then the config file ("" when not named).
    pub files: [String; 2],
    pub profile: String,
}

/// `AWS_CONTAINER_CREDENTIALS_*` (ECS task role, EKS Pod Identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub endpoint: Endpoint,
    pub authorization: Authorization,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub credentials: Option<Credentials>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    pub web_identity: Option<WebIdentity>,
    pub container: Option<Container>,
    /// Set when a shared-file variable is.
    pub shared_files: Option<SharedFiles>,
    /// `AWS_EC2_METADATA_DISABLED=true`.
    pub imds_disabled: bool,
}

/// An environment variable that is set but unusable; the text names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    pub variable: &'static str,
    pub message: String,
}

impl Environment {
    /// Reads the variables through `get` (the VM's environment in the filter).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Environment, EnvError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        // Half a pair is a deployment that forgot a variable (host_env_keys
        // lists each one): refused, never quietly another source.
        let missing = |variable: &'static str, with: &str| EnvError {
            variable,
            message: format!("is required with {with} (pass both to the VM)"),
        };
        let credentials = match (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: non_empty("AWS_SESSION_TOKEN"),
            }),
            (Some(_), None) => return Err(missing("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
            (None, Some(_)) => return Err(missing("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
            (None, None) => None,
        };
        let web_identity = match (
            non_empty("AWS_WEB_IDENTITY_TOKEN_FILE"),
            non_empty("AWS_ROLE_ARN"),
        ) {
            (Some(file), Some(role_arn)) => Some(WebIdentity {
                token_file: token_file("AWS_WEB_IDENTITY_TOKEN_FILE", file)?,
                role_arn,
                session_name: non_empty("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| "envoy-faas".into()),
            }),
            (Some(_), None) => {
                return Err(EnvError {
                    variable: "AWS_ROLE_ARN",
                    message: "is required with AWS_WEB_IDENTITY_TOKEN_FILE".into(),
                })
            }
            (None, Some(_)) => return Err(missing("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")),
            (None, None) => None,
        };
        let endpoint = container::endpoint(
            non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").as_deref(),
            non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        )
        .map_err(|message| EnvError {
            variable: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            message,
        })?;
        let container = match endpoint {
            None => None,
            Some(endpoint) => Some(Container {
                endpoint,
                // The file wins, as in the SDKs: it is the rotating one.
                authorization: match (
                    non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
                    non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
                ) {
                    (Some(file), _) => Authorization::TokenFile(token_file(
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                        file,
                    )?),
                    (None, Some(token)) => Authorization::Token(token),
                    (None, None) => Authorization::None,
                },
            }),
        };
        let named_file = |variable: &'static str| match non_empty(variable) {
            Some(path) => token_file(variable, path),
            None => Ok(String::new()),
        };
        let files = [
            named_file("AWS_SHARED_CREDENTIALS_FILE")?,
            named_file("AWS_CONFIG_FILE")?,
        ];
        let profile = non_empty("AWS_PROFILE");
        let shared_files = if files.iter().all(String::is_empty) {
            if profile.is_some() {
                return Err(EnvError {
                    variable: "AWS_SHARED_CREDENTIALS_FILE",
                    message: "(or AWS_CONFIG_FILE) is required with AWS_PROFILE: the VM has no home directory".into(),
                });
            }
            None
        } else {
            Some(SharedFiles {
                files,
                profile: profile.unwrap_or_else(|| "default".into()),
            })
        };
        Ok(Environment {
            credentials,
            shared_files,
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
            web_identity,
            container,
            imds_disabled: imds::disabled(get("AWS_EC2_METADATA_DISABLED").as_deref()),
        })
    }
}

/// `credential_source`: which source signs routes without keys in their
/// config. `Auto` is the AWS SDKs' order (and logs which one it chose and
/// why); a named source must be fully set up, or the config is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceChoice {
    #[default]
    Auto,
    Environment,
    WebIdentity,
    Container,
    Imds,
    Profile,
}

impl SourceChoice {
    pub const NAMES: &'static str = "auto, environment, profile, web_identity, container, imds";

    pub fn parse(name: &str) -> Option<SourceChoice> {
        Some(match name {
            "auto" => SourceChoice::Auto,
            "environment" => SourceChoice::Environment,
            "web_identity" => SourceChoice::WebIdentity,
            "container" => SourceChoice::Container,
            "imds" => SourceChoice::Imds,
            "profile" => SourceChoice::Profile,
            _ => return None,
        })
    }
}

/// The source the environment provides for a route without config keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chosen<'a> {
    Keys(&'a Credentials),
    Profile(&'a SharedFiles),
    WebIdentity(&'a WebIdentity),
    Container(&'a Container),
    Imds,
}

impl Environment {
    /// The source `choice` selects, and why (for the startup log line), or
    /// the variable a named source lacks.
    pub fn choose(&self, choice: SourceChoice) -> Result<(Chosen<'_>, &'static str), EnvError> {
        let lacks = |variable: &'static str, message: &str| EnvError {
            variable,
            message: message.to_string(),
        };
        match choice {
            SourceChoice::Auto => Ok(if let Some(c) = &self.credentials {
                (Chosen::Keys(c), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set")
            } else if let Some(p) = &self.shared_files {
                (Chosen::Profile(p), "AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE is set")
            } else if let Some(w) = &self.web_identity {
                (Chosen::WebIdentity(w), "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are set")
            } else if let Some(c) = &self.container {
                (Chosen::Container(c), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set")
            } else if !self.imds_disabled {
                (
                    Chosen::Imds,
                    "no keys, web identity or container variables reach the VM, and \
                     AWS_EC2_METADATA_DISABLED is not true; off EC2, name the source in credential_source",
                )
            } else {
                return Err(lacks(
                    "AWS_EC2_METADATA_DISABLED",
                    "is true and no other source's variables reach the VM",
                ));
            }),
            SourceChoice::Environment => self
                .credentials
                .as_ref()
                .map(|c| (Chosen::Keys(c), "credential_source is environment"))
                .ok_or_else(|| lacks("AWS_ACCESS_KEY_ID", "is required: credential_source is environment")),
            SourceChoice::Profile => self
                .shared_files
                .as_ref()
                .map(|p| (Chosen::Profile(p), "credential_source is profile"))
                .ok_or_else(|| {
                    lacks(
                        "AWS_SHARED_CREDENTIALS_FILE",
                        "(or AWS_CONFIG_FILE) is required: credential_source is profile",
                    )
                }),
            SourceChoice::WebIdentity => self
                .web_identity
                .as_ref()
                .map(|w| (Chosen::WebIdentity(w), "credential_source is web_identity"))
                .ok_or_else(|| {
                    lacks(
                        "AWS_WEB_IDENTITY_TOKEN_FILE",
                        "is required (with AWS_ROLE_ARN): credential_source is web_identity",
                    )
                }),
            SourceChoice::Container => self
                .container
                .as_ref()
                .map(|c| (Chosen::Container(c), "credential_source is container"))
                .ok_or_else(|| {
                    lacks(
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                        "(or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) is required: credential_source is container",
                    )
                }),
            SourceChoice::Imds if self.imds_disabled => Err(lacks(
                "AWS_EC2_METADATA_DISABLED",
                "is true, but credential_source is imds",
            )),
            SourceChoice::Imds => Ok((Chosen::Imds, "credential_source is imds")),
        }
    }
}

/// A token file's path, which becomes the request path to the token-file
/// cluster: absolute, printable, no dot segments.
fn token_file(variable: &'static str, path: String) -> Result<String, EnvError> {
    let valid = path.starts_with('/')
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !path.split('/').any(|s| s == "." || s == "..")
        && !path.contains(['?', '#', '%']);
    if valid {
        Ok(path)
    } else {
        Err(EnvError {
            variable,
            message: "must be an absolute file path without spaces, '..', '?', '#' or '%'".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Environment, EnvError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::read(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn static_keys_region_and_the_imds_switch() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .unwrap();
        assert_eq!(e.credentials.unwrap().access_key_id, "AK");
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert!(e.imds_disabled);
        assert!(!env(&[]).unwrap().imds_disabled, "IMDS is on by default");
    }

    #[test]
    fn web_identity_needs_a_role_and_an_absolute_token_file() {
        let e = env(&[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gw"),
        ])
        .unwrap();
        let w = e.web_identity.unwrap();
        assert_eq!(w.session_name, "envoy-faas");
        let no_role = env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]).unwrap_err();
        assert_eq!(no_role.variable, "AWS_ROLE_ARN");
        for bad in ["token", "/a/../etc/shadow", "/a b", "/a?x"] {
            let e =
                env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", bad), ("AWS_ROLE_ARN", "r")]).unwrap_err();
            assert_eq!(e.variable, "AWS_WEB_IDENTITY_TOKEN_FILE", "{bad}");
        }
    }

    #[test]
    fn half_a_pair_is_refused_naming_the_missing_variable() {
        for (set, missing) in [
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ] {
            assert_eq!(env(&[(set, "v")]).unwrap_err().variable, missing, "{set}");
        }
    }

    #[test]
    fn a_named_source_must_be_set_up_and_auto_says_why() {
        let none = env(&[]).unwrap();
        let (chosen, why) = none.choose(SourceChoice::Auto).unwrap();
        assert_eq!(chosen, Chosen::Imds);
        assert!(why.contains("credential_source"), "{why}");
        for (choice, variable) in [
            (SourceChoice::Environment, "AWS_ACCESS_KEY_ID"),
            (SourceChoice::WebIdentity, "AWS_WEB_IDENTITY_TOKEN_FILE"),
            (
                SourceChoice::Container,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ),
        ] {
            assert_eq!(none.choose(choice).unwrap_err().variable, variable);
        }
        let off = env(&[("AWS_EC2_METADATA_DISABLED", "true")]).unwrap();
        assert_eq!(
            off.choose(SourceChoice::Imds).unwrap_err().variable,
            "AWS_EC2_METADATA_DISABLED"
        );
        let keys = env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/id",
            ),
        ])
        .unwrap();
        assert!(matches!(
            keys.choose(SourceChoice::Auto).unwrap().0,
            Chosen::Keys(_)
        ));
        assert!(matches!(
            keys.choose(SourceChoice::Container).unwrap().0,
            Chosen::Container(_)
        ));
        assert_eq!(keys.choose(SourceChoice::Imds).unwrap().0, Chosen::Imds);
        assert_eq!(SourceChoice::parse("imds"), Some(SourceChoice::Imds));
        assert_eq!(SourceChoice::parse("IMDS"), None);
    }

    #[test]
    fn shared_files_are_named_files_with_a_profile_and_come_after_env_keys() {
        let e = env(&[("AWS_CONFIG_FILE", "/aws/config"), ("AWS_PROFILE", "app")]).unwrap();
        let files = e.shared_files.clone().unwrap();
        assert_eq!(files.files, [String::new(), "/aws/config".to_string()]);
        assert_eq!(files.profile, "app");
        assert!(matches!(
            e.choose(SourceChoice::Auto).unwrap().0,
            Chosen::Profile(_)
        ));
        let d = env(&[("AWS_SHARED_CREDENTIALS_FILE", "/aws/credentials")]).unwrap();
        assert_eq!(d.shared_files.unwrap().profile, "default");
        let both = env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_CONFIG_FILE", "/aws/config"),
        ])
        .unwrap();
        assert!(matches!(
            both.choose(SourceChoice::Auto).unwrap().0,
            Chosen::Keys(_)
        ));
        assert!(matches!(
            both.choose(SourceChoice::Profile).unwrap().0,
            Chosen::Profile(_)
        ));
        let alone = env(&[("AWS_PROFILE", "app")]).unwrap_err();
        assert_eq!(alone.variable, "AWS_SHARED_CREDENTIALS_FILE");
        assert_eq!(
            env(&[("AWS_CONFIG_FILE", "aws/config")])
                .unwrap_err()
                .variable,
            "AWS_CONFIG_FILE"
        );
        assert_eq!(
            env(&[])
                .unwrap()
                .choose(SourceChoice::Profile)
                .unwrap_err()
                .variable,
            "AWS_SHARED_CREDENTIALS_FILE"
        );
    }

    #[test]
    fn container_authorization_prefers_the_rotating_file() {
        let e = env(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "static"),
        ])
        .unwrap();
        assert!(matches!(
            e.container.unwrap().authorization,
            Authorization::TokenFile(f) if f.ends_with("eks-pod-identity-token")
        ));
        let e = env(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/id",
        )])
        .unwrap();
        assert_eq!(e.container.unwrap().authorization, Authorization::None);
        let e = env(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://10.0.0.1/creds",
        )])
        .unwrap_err();
        assert_eq!(e.variable, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    }
}
