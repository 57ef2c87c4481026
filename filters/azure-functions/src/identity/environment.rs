//! Which token source applies, from the VM's environment (Envoy's
//! `vm_config.environment_variables`, Istio's `vmConfig.env`), in the order
//! Azure's SDKs choose among these three: AKS workload identity when its
//! variables are set, else the App Service / Container Apps identity
//! endpoint when its variables are set, else IMDS. The first whose settings
//! are present is the source; a failing source never falls through to
//! another (that would quietly switch to another identity, such as the
//! AKS node's).

use super::chain::Source;
use super::ManagedIdentity;
use faas_core::uri::FunctionUri;

/// The variables, as read at configure time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub federated_token_file: Option<String>,
    pub authority_host: Option<String>,
    pub identity_endpoint: Option<String>,
    pub identity_header: Option<String>,
}

/// Entra ID's public-cloud authority (`AZURE_AUTHORITY_HOST`'s default).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// A misconfigured environment: which variable, and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub variable: &'static str,
    pub message: String,
}

impl Environment {
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Environment {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Environment {
            client_id: var("AZURE_CLIENT_ID"),
            tenant_id: var("AZURE_TENANT_ID"),
            federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE"),
            authority_host: var("AZURE_AUTHORITY_HOST"),
            identity_endpoint: var("IDENTITY_ENDPOINT"),
            identity_header: var("IDENTITY_HEADER"),
        }
    }

    /// The source for `identity`, or what is wrong with the environment.
    pub fn source_for(&self, identity: &ManagedIdentity) -> Result<Source, EnvError> {
        let resource = identity.resource.clone();
        if let Some(token_file) = &self.federated_token_file {
            if !token_file.starts_with('/') {
                return Err(EnvError {
                    variable: "AZURE_FEDERATED_TOKEN_FILE",
                    message: "must be an absolute path".into(),
                });
            }
            let tenant = self.tenant_id.clone().ok_or(EnvError {
                variable: "AZURE_TENANT_ID",
                message: "is required with AZURE_FEDERATED_TOKEN_FILE".into(),
            })?;
            if !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(EnvError {
                    variable: "AZURE_TENANT_ID",
                    message: "must be a tenant id or domain".into(),
                });
            }
            let client_id = identity.client_id.clone().or_else(|| self.client_id.clone()).ok_or(EnvError {
                variable: "AZURE_CLIENT_ID",
                message: "is required with AZURE_FEDERATED_TOKEN_FILE (or set managed_identity.client_id)".into(),
            })?;
            let host = self
                .authority_host
                .as_deref()
                .unwrap_or(DEFAULT_AUTHORITY_HOST);
            let authority = FunctionUri::parse(host)
                .ok()
                .filter(|u| u.query.is_empty())
                .ok_or(EnvError {
                    variable: "AZURE_AUTHORITY_HOST",
                    message: "must be an https:// URL".into(),
                })?;
            return Ok(Source::Workload {
                token_file: token_file.clone(),
                tenant,
                client_id,
                authority: authority.authority(),
                authority_path: authority.path.trim_end_matches('/').to_string(),
                resource,
            });
        }
        match (&self.identity_endpoint, &self.identity_header) {
            (Some(endpoint), Some(header)) => {
                let url = FunctionUri::parse(endpoint).map_err(|why| EnvError {
                    variable: "IDENTITY_ENDPOINT",
                    message: why,
                })?;
                Ok(Source::AppService {
                    authority: url.authority(),
                    path: url.path,
                    header: header.clone(),
                    client_id: identity.client_id.clone(),
                    resource,
                })
            }
            (Some(_), None) => Err(EnvError {
                variable: "IDENTITY_HEADER",
                message: "is required with IDENTITY_ENDPOINT".into(),
            }),
            (None, _) => Ok(Source::Imds {
                client_id: identity.client_id.clone(),
                resource,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::read(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    fn mi(client_id: Option<&str>) -> ManagedIdentity {
        ManagedIdentity {
            resource: "api://fn".into(),
            client_id: client_id.map(String::from),
        }
    }

    #[test]
    fn workload_identity_then_app_service_then_imds() {
        let workload = env(&[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_TENANT_ID", "t-1"),
            ("AZURE_CLIENT_ID", "c-env"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]);
        match workload.source_for(&mi(None)).unwrap() {
            Source::Workload {
                client_id,
                authority,
                authority_path,
                tenant,
                ..
            } => {
                assert_eq!(client_id, "c-env");
                assert_eq!(authority, "login.microsoftonline.com");
                assert_eq!((authority_path.as_str(), tenant.as_str()), ("", "t-1"));
            }
            other => panic!("{other:?}"),
        }
        match workload.source_for(&mi(Some("c-route"))).unwrap() {
            Source::Workload { client_id, .. } => assert_eq!(client_id, "c-route"),
            other => panic!("{other:?}"),
        }
        let app = env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]);
        match app.source_for(&mi(None)).unwrap() {
            Source::AppService {
                authority, path, ..
            } => {
                assert_eq!(
                    (authority.as_str(), path.as_str()),
                    ("127.0.0.1:41741", "/msi/token")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            env(&[]).source_for(&mi(None)).unwrap(),
            Source::Imds { .. }
        ));
    }

    #[test]
    fn incomplete_settings_name_the_variable() {
        let cases = [
            (
                vec![("AZURE_FEDERATED_TOKEN_FILE", "/t")],
                "AZURE_TENANT_ID",
            ),
            (
                vec![
                    ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                    ("AZURE_TENANT_ID", "t"),
                ],
                "AZURE_CLIENT_ID",
            ),
            (
                vec![("AZURE_FEDERATED_TOKEN_FILE", "relative")],
                "AZURE_FEDERATED_TOKEN_FILE",
            ),
            (
                vec![
                    ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                    ("AZURE_TENANT_ID", "t"),
                    ("AZURE_CLIENT_ID", "c"),
                    ("AZURE_AUTHORITY_HOST", "login"),
                ],
                "AZURE_AUTHORITY_HOST",
            ),
            (
                vec![("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")],
                "IDENTITY_HEADER",
            ),
            (
                vec![("IDENTITY_ENDPOINT", "nope"), ("IDENTITY_HEADER", "h")],
                "IDENTITY_ENDPOINT",
            ),
        ];
        for (vars, variable) in cases {
            assert_eq!(
                env(&vars).source_for(&mi(None)).unwrap_err().variable,
                variable,
                "{vars:?}"
            );
        }
    }
}
