//! The filters, and their config compilers: exactly what each module
//! runs in `on_configure` (`faas_core::config::compile_report` with the
//! filter's `read_global` and `read_route`), compiled natively.

use aws_lambda::credentials::chain::Source;
use faas_core::config::{compile_report, PluginConfig};
use faas_core::{CommonConfig, ConfigError, Integration};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    AwsLambda,
    AzureFunctions,
    GcpFunctions,
    OpenFunction,
}

impl Filter {
    pub const ALL: [Filter; 4] = [
        Filter::AwsLambda,
        Filter::AzureFunctions,
        Filter::GcpFunctions,
        Filter::OpenFunction,
    ];

    /// The plugin name (APISIX's and Kong's, and the filter's root id).
    pub fn name(self) -> &'static str {
        match self {
            Filter::AwsLambda => aws_lambda::AwsLambda::NAME,
            Filter::AzureFunctions => azure_functions::AzureFunctions::NAME,
            Filter::GcpFunctions => gcp_functions::GcpFunctions::NAME,
            Filter::OpenFunction => openfunction::OpenFunction::NAME,
        }
    }

    /// `aws-lambda` or `aws_lambda` (the module's file name).
    pub fn parse(name: &str) -> Option<Filter> {
        let name = name.trim_end_matches(".wasm").replace('_', "-");
        Filter::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The module's file name under `dist/`.
    pub fn wasm_file(self) -> String {
        format!("{}.wasm", self.name().replace('-', "_"))
    }

    /// The variable `make oci` writes the image digest to.
    pub fn digest_variable(self) -> String {
        format!("{}_SHA256", self.name().replace('-', "_").to_uppercase())
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cluster a credential source calls (aws-lambda platform credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialCluster {
    /// EC2 instance metadata, `169.254.169.254:80`.
    Imds { cluster: String },
    /// STS over TLS at `authority` (`host[:port]`).
    Sts { cluster: String, authority: String },
    /// A source whose endpoint comes from the VM's environment (ECS, Pod
    /// Identity, IRSA token files): see envoy/aws-platform-credentials.yaml.
    FromEnvironment { source: &'static str },
}

/// A configuration the filter accepted.
#[derive(Debug)]
pub struct Compiled {
    /// Every route's shared settings, in route-name order.
    pub routes: Vec<CommonConfig>,
    /// Clusters the credential sources need, besides the functions'.
    pub credential_clusters: Vec<CredentialCluster>,
    /// Routes whose answers stream (Lambda's `RESPONSE_STREAM`), by name,
    /// with whether the call's body is an event built from the client's
    /// (then only a held body streams, the book, "Lambda response streaming").
    pub streaming: Vec<(String, bool)>,
}

fn streaming<I: Integration>(config: &PluginConfig<I::Global, I::Route>) -> Vec<(String, bool)> {
    let mut routes: Vec<(String, bool)> = config
        .routes
        .iter()
        .filter(|r| I::streams_response(r))
        .map(|r| (I::common(r).route.clone(), I::in_place_replaces_body(r)))
        .collect();
    routes.sort();
    routes
}

fn run<I: Integration>(json: &[u8]) -> Result<PluginConfig<I::Global, I::Route>, Vec<ConfigError>> {
    compile_report(json, I::read_global, I::read_route).map_err(|e| e.all().to_vec())
}

fn commons<I: Integration>(config: &PluginConfig<I::Global, I::Route>) -> Vec<CommonConfig> {
    let mut routes: Vec<CommonConfig> =
        config.routes.iter().map(|r| I::common(r).clone()).collect();
    routes.sort_by(|a, b| a.route.cmp(&b.route));
    routes
}

/// Compiles `json` as `filter`'s module would; `Err` holds every route's
/// first error (the lines the module logs before Envoy refuses the config).
pub fn compile(filter: Filter, json: &[u8]) -> Result<Compiled, Vec<ConfigError>> {
    match filter {
        Filter::AwsLambda => {
            let config = run::<aws_lambda::AwsLambda>(json)?;
            let provider = config.global.provider.borrow();
            let clusters = provider.clusters();
            let mut credential_clusters = Vec::new();
            // An AssumeRole on a platform base is registered after its base,
            // so the base's cluster comes from its own entry here.
            for source in provider.sources() {
                let needed = match source {
                    Source::Imds { .. } => CredentialCluster::Imds {
                        cluster: clusters.imds.clone(),
                    },
                    Source::AssumeRole { sts, .. } => CredentialCluster::Sts {
                        cluster: clusters.sts.clone(),
                        authority: sts.authority.clone(),
                    },
                    other => CredentialCluster::FromEnvironment {
                        source: other.label(),
                    },
                };
                if !credential_clusters.contains(&needed) {
                    credential_clusters.push(needed);
                }
            }
            Ok(Compiled {
                routes: commons::<aws_lambda::AwsLambda>(&config),
                credential_clusters,
                streaming: streaming::<aws_lambda::AwsLambda>(&config),
            })
        }
        Filter::AzureFunctions => {
            let config = run::<azure_functions::AzureFunctions>(json)?;
            Ok(Compiled {
                routes: commons::<azure_functions::AzureFunctions>(&config),
                credential_clusters: Vec::new(),
                streaming: Vec::new(),
            })
        }
        Filter::GcpFunctions => {
            let config = run::<gcp_functions::GcpFunctions>(json)?;
            Ok(Compiled {
                routes: commons::<gcp_functions::GcpFunctions>(&config),
                credential_clusters: Vec::new(),
                streaming: Vec::new(),
            })
        }
        Filter::OpenFunction => {
            let config = run::<openfunction::OpenFunction>(json)?;
            Ok(Compiled {
                routes: commons::<openfunction::OpenFunction>(&config),
                credential_clusters: Vec::new(),
                streaming: Vec::new(),
            })
        }
    }
}

/// The variables the modules read from their VM environment at load:
/// aws-lambda's credential sources, azure-functions' managed identity.
/// `import` compiles without them (the generated VM has none), so the
/// verdict does not depend on the shell the command runs in.
pub const VM_ENVIRONMENT: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];
