//! One token source as a sequence of calls: which call comes first, and
//! what each answer leads to (the next call, or a token). Pure: the
//! provider (`faas_core::credentials::provider`) sends the calls.

use super::{app_service, imds, parse_token_answer, workload, BearerToken, Clusters};
use faas_core::credentials::{
    callout, token_file_content, token_file_request, SourceRequest, TOKEN_FILE_AUTHORITY,
};
use faas_core::host::unix_seconds;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Azure Instance Metadata Service.
    Imds {
        client_id: Option<String>,
        resource: String,
    },
    /// App Service / Container Apps identity endpoint.
    AppService {
        /// `host:port` and path of `IDENTITY_ENDPOINT`.
        authority: String,
        path: String,
        /// `IDENTITY_HEADER`, a secret: never in `key`, logs or errors.
        header: String,
        client_id: Option<String>,
        resource: String,
    },
    /// AKS workload identity.
    Workload {
        token_file: String,
        tenant: String,
        client_id: String,
        /// `AZURE_AUTHORITY_HOST`'s authority and path.
        authority: String,
        authority_path: String,
        resource: String,
    },
}

/// Where a fetch is between calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Imds,
    AppService,
    TokenFile,
    Entra,
}

pub type Next = faas_core::credentials::Next<Step, BearerToken>;
pub type Context<'a> = faas_core::credentials::Context<'a, Clusters, BearerToken>;

/// FNV-1a: the settings that tell sources apart hold no secret, so the
/// key needs no cryptographic digest.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn call(cluster: &str, authority: &str, step: Step, request: SourceRequest) -> Next {
    Next::Call(step, callout(cluster, authority, request))
}

fn done(what: &str, result: Result<super::Expiring, faas_core::credentials::SourceError>) -> Next {
    Next::Done(result.map_err(|e| format!("{what}: {e}")))
}

impl faas_core::credentials::Source for Source {
    type Secret = BearerToken;
    type Step = Step;
    type Clusters = Clusters;

    fn label(&self) -> &'static str {
        match self {
            Source::Imds { .. } => "imds",
            Source::AppService { .. } => "app_service",
            Source::Workload { .. } => "workload_identity",
        }
    }

    fn key(&self) -> String {
        let settings = match self {
            Source::Imds {
                client_id,
                resource,
            } => format!("imds|{}|{resource}", client_id.as_deref().unwrap_or("")),
            Source::AppService {
                authority,
                path,
                client_id,
                resource,
                ..
            } => format!(
                "app_service|{authority}|{path}|{}|{resource}",
                client_id.as_deref().unwrap_or("")
            ),
            Source::Workload {
                token_file,
                tenant,
                client_id,
                authority,
                authority_path,
                resource,
            } => format!(
                "workload|{token_file}|{tenant}|{client_id}|{authority}|{authority_path}|{resource}"
            ),
        };
        format!("envoy_faas.azure_functions.token.{:016x}", fnv1a(&settings))
    }

    fn start(&self, ctx: &Context<'_>) -> Next {
        match self {
            Source::Imds {
                client_id,
                resource,
            } => call(
                &ctx.clusters.imds,
                imds::AUTHORITY,
                Step::Imds,
                imds::request(resource, client_id.as_deref()),
            ),
            Source::AppService {
                authority,
                path,
                header,
                client_id,
                resource,
            } => call(
                &ctx.clusters.identity_endpoint,
                authority,
                Step::AppService,
                app_service::request(path, header, resource, client_id.as_deref()),
            ),
            Source::Workload { token_file, .. } => call(
                &ctx.clusters.token_files,
                TOKEN_FILE_AUTHORITY,
                Step::TokenFile,
                token_file_request(token_file),
            ),
        }
    }

    fn advance(&self, step: Step, status: u16, body: &[u8], ctx: &Context<'_>) -> Next {
        let now = unix_seconds(ctx.now);
        let status32 = u32::from(status);
        match (step, self) {
            (Step::Imds, _) => done("IMDS token", parse_token_answer(status32, body, now)),
            (Step::AppService, _) => done(
                "identity endpoint token",
                parse_token_answer(status32, body, now),
            ),
            (
                Step::TokenFile,
                Source::Workload {
                    tenant,
                    client_id,
                    authority,
                    authority_path,
                    resource,
                    ..
                },
            ) => match token_file_content(status, body) {
                Ok(assertion) => call(
                    &ctx.clusters.entra,
                    authority,
                    Step::Entra,
                    workload::request(authority_path, tenant, client_id, &assertion, resource),
                ),
                Err(why) => Next::Done(Err(why)),
            },
            (Step::Entra, _) => done(
                "Entra ID token endpoint",
                parse_token_answer(status32, body, now),
            ),
            // A token-file answer for a source without a token file.
            (Step::TokenFile, _) => Next::Done(Err("token file: not used by this source".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::credentials::Source as _;
    use std::time::{Duration, UNIX_EPOCH};

    fn clusters() -> Clusters {
        Clusters {
            imds: "imds".into(),
            identity_endpoint: "idep".into(),
            entra: "entra".into(),
            token_files: "files".into(),
        }
    }

    fn ctx(clusters: &Clusters) -> Context<'_> {
        Context {
            clusters,
            now: UNIX_EPOCH + Duration::from_secs(1_000),
            base: None,
        }
    }

    fn header<'a>(next: &'a Next, name: &str) -> &'a str {
        match next {
            Next::Call(_, c) => c.header(name).unwrap_or(""),
            Next::Done(r) => panic!("no call: {r:?}"),
        }
    }

    #[test]
    fn workload_identity_reads_the_token_file_then_exchanges_it() {
        let source = Source::Workload {
            token_file: "/var/run/secrets/azure/tokens/azure-identity-token".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            authority: "login.microsoftonline.com".into(),
            authority_path: String::new(),
            resource: "api://fn".into(),
        };
        let clusters = clusters();
        let first = source.start(&ctx(&clusters));
        assert_eq!(
            header(&first, ":path"),
            "/var/run/secrets/azure/tokens/azure-identity-token"
        );
        let Next::Call(Step::TokenFile, c) = &first else {
            panic!("{first:?}")
        };
        assert_eq!(c.cluster, "files");
        let second = source.advance(Step::TokenFile, 200, b"eyJ.fed.sig\n", &ctx(&clusters));
        assert_eq!(header(&second, ":authority"), "login.microsoftonline.com");
        let Next::Call(Step::Entra, c) = &second else {
            panic!("{second:?}")
        };
        assert_eq!(c.cluster, "entra");
        assert!(String::from_utf8_lossy(&c.body).contains("client_assertion=eyJ.fed.sig&"));
        let done = source.advance(
            Step::Entra,
            200,
            br#"{"access_token":"tok","expires_in":3600}"#,
            &ctx(&clusters),
        );
        let Next::Done(Ok(token)) = done else {
            panic!("{done:?}")
        };
        assert_eq!(
            (token.credentials.0.as_str(), token.expires_at),
            ("tok", 4_600)
        );
        let missing = source.advance(Step::TokenFile, 404, b"", &ctx(&clusters));
        assert!(matches!(missing, Next::Done(Err(ref why)) if why.contains("HTTP 404")));
    }

    #[test]
    fn keys_tell_settings_apart_and_hold_no_secret() {
        let app = |header: &str, resource: &str| Source::AppService {
            authority: "127.0.0.1:1".into(),
            path: "/msi/token".into(),
            header: header.into(),
            client_id: None,
            resource: resource.into(),
        };
        assert_eq!(app("h1", "api://a").key(), app("h2", "api://a").key());
        assert_ne!(app("h1", "api://a").key(), app("h1", "api://b").key());
        assert!(!app("secret-header", "api://a").key().contains("secret"));
        let imds = Source::Imds {
            client_id: None,
            resource: "api://a".into(),
        };
        assert_ne!(imds.key(), app("h", "api://a").key());
        let clusters = clusters();
        let call = imds.start(&ctx(&clusters));
        assert_eq!(header(&call, "metadata"), "true");
        assert_eq!(header(&call, ":authority"), "169.254.169.254");
    }
}
