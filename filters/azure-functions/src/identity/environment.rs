//! Which token source applies, from the VM's environment (Envoy's
//! `vm_config.environment_variables`, Istio's `vmConfig.env`), in the order
//! Azure's SDKs choose among these three: AKS workload identity when its
//! variables are set, else the App Service / Container Apps identity
//! endpoint when its variables are set, else IMDS. The first whose settings
//! are present is the source; a failing source never falls through to
//! another (that would quietly switch to another identity, such as the
//! AKS node's).

use super::chain::Source;
use super::{ManagedIdentity, SourceChoice};
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

    /// The source for `identity` (its `source` choice), and why it was
    /// chosen (the startup log line), or what the environment lacks.
    pub fn source_for(
        &self,
        identity: &ManagedIdentity,
    ) -> Result<(Source, &'static str), EnvError> {
        let lacks = |variable: &'static str, message: &str| EnvError {
            variable,
            message: message.to_string(),
        };
        match identity.source {
            SourceChoice::WorkloadIdentity => match &self.federated_token_file {
                Some(file) => Ok((
                    self.workload(identity, file)?,
                    "source is workload_identity",
                )),
                None => Err(lacks(
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "is required: managed_identity.source is workload_identity",
                )),
            },
            SourceChoice::AppService => match &self.identity_endpoint {
                Some(_) => Ok((self.app_service(identity)?, "source is app_service")),
                None => Err(lacks(
                    "IDENTITY_ENDPOINT",
                    "is required (with IDENTITY_HEADER): managed_identity.source is app_service",
                )),
            },
            SourceChoice::Imds => Ok((Self::imds(identity), "source is imds")),
            SourceChoice::Auto => {
                if let Some(file) = &self.federated_token_file {
                    return Ok((
                        self.workload(identity, file)?,
                        "AZURE_FEDERATED_TOKEN_FILE is set (AKS workload identity)",
                    ));
                }
                // Workload identity's other variables without its token file:
                // a deployment that left the file out of host_env_keys. IMDS
                // would be the node's identity: refused, never a quiet switch.
                if self.tenant_id.is_some() {
                    return Err(lacks(
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "is not set although AZURE_TENANT_ID is: pass it to the VM for workload \
                         identity, or set managed_identity.source to imds",
                    ));
                }
                if self.identity_endpoint.is_some() || self.identity_header.is_some() {
                    return Ok((
                        self.app_service(identity)?,
                        "IDENTITY_ENDPOINT is set (App Service identity endpoint)",
                    ));
                }
                Ok((
                    Self::imds(identity),
                    "no workload identity or App Service variables reach the VM",
                ))
            }
        }
    }

    /// AKS workload identity: the federated token file, exchanged at Entra ID.
    fn workload(&self, identity: &ManagedIdentity, token_file: &str) -> Result<Source, EnvError> {
        let resource = identity.resource.clone();
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
        Ok(Source::Workload {
            token_file: token_file.to_string(),
            tenant,
            client_id,
            authority: authority.authority(),
            authority_path: authority.path.trim_end_matches('/').to_string(),
            resource,
        })
    }

    /// The App Service / Container Apps identity endpoint.
    fn app_service(&self, identity: &ManagedIdentity) -> Result<Source, EnvError> {
        let resource = identity.resource.clone();
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
            (None, _) => Err(EnvError {
                variable: "IDENTITY_ENDPOINT",
                message: "is required with IDENTITY_HEADER".into(),
            }),
        }
    }

    /// Azure IMDS: the VM's (or AKS node's) identity.
    fn imds(identity: &ManagedIdentity) -> Source {
        Source::Imds {
            client_id: identity.client_id.clone(),
            resource: identity.resource.clone(),
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
            source: SourceChoice::Auto,
            header: "authorization".into(),
        }
    }

    fn with_source(source: SourceChoice) -> ManagedIdentity {
        ManagedIdentity { source, ..mi(None) }
    }

    #[test]
    fn a_named_source_must_be_set_up_and_auto_refuses_half_a_workload_identity() {
        let none = env(&[]);
        for (choice, variable) in [
            (SourceChoice::WorkloadIdentity, "AZURE_FEDERATED_TOKEN_FILE"),
            (SourceChoice::AppService, "IDENTITY_ENDPOINT"),
        ] {
            assert_eq!(
                none.source_for(&with_source(choice)).unwrap_err().variable,
                variable
            );
        }
        assert!(matches!(
            none.source_for(&with_source(SourceChoice::Imds)).unwrap().0,
            Source::Imds { .. }
        ));
        // AKS with the token file left out: not the node's identity.
        let half = env(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]);
        assert_eq!(
            half.source_for(&mi(None)).unwrap_err().variable,
            "AZURE_FEDERATED_TOKEN_FILE"
        );
        assert!(matches!(
            half.source_for(&with_source(SourceChoice::Imds)).unwrap().0,
            Source::Imds { .. }
        ));
        let (_, why) = none.source_for(&mi(None)).unwrap();
        assert!(why.contains("no workload identity"), "{why}");
        assert_eq!(
            env(&[("IDENTITY_HEADER", "h")])
                .source_for(&mi(None))
                .unwrap_err()
                .variable,
            "IDENTITY_ENDPOINT"
        );
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
        match workload.source_for(&mi(None)).unwrap().0 {
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
        match workload.source_for(&mi(Some("c-route"))).unwrap().0 {
            Source::Workload { client_id, .. } => assert_eq!(client_id, "c-route"),
            other => panic!("{other:?}"),
        }
        let app = env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]);
        match app.source_for(&mi(None)).unwrap().0 {
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
            env(&[]).source_for(&mi(None)).unwrap().0,
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
