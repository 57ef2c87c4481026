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
        let credentials = match (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: non_empty("AWS_SESSION_TOKEN"),
            }),
            _ => None,
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
            _ => None,
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
        Ok(Environment {
            credentials,
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
            web_identity,
            container,
            imds_disabled: imds::disabled(get("AWS_EC2_METADATA_DISABLED").as_deref()),
        })
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
