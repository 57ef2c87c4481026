//! A client request forwarded to a function: path remainder, query and
//! headers as a client may send them. The callout must always be a request
//! Envoy accepts (an absolute path, no line breaks in any header); it
//! carries no client forwarding header the filter does not set; and a
//! request the filter would forward (not refused as `unsafe_path`) stays
//! below the function's base path even for a server that decodes `%2F`,
//! `%5C` and backslashes once.
#![no_main]

use envoy_faas_fuzz::client_request;
use faas_core::config::compile;
use faas_core::path::{forwarded_path_escapes, split_path_query};
use faas_core::request::forward;
use faas_core::{ClientRequest, Integration};
use libfuzzer_sys::fuzz_target;
use openfunction::OpenFunction;

type Compiled = faas_core::config::PluginConfig<(), openfunction::Route>;

thread_local! {
    // Compiled once; the configs hold Rc, so one set per (fuzzing) thread.
    static CONFIGS: Vec<Compiled> = [
        r#"{"function_uri": "http://fn.test/"}"#,
        r#"{"function_uri": "http://fn.test:8080/base/f?fixed=1", "strip_prefix": "/api"}"#,
        r#"{"function_uri": "https://fn.test/a%20b/", "strip_prefix": "/"}"#,
    ]
    .iter()
    .filter_map(|c| compile(c.as_bytes(), OpenFunction::read_global, OpenFunction::read_route).ok())
    .collect();
}

fn check(configs: &[Compiled], request: &ClientRequest) {
    assert_eq!(configs.len(), 3, "every config compiles");
    for config in configs {
        let Some(route) = config.routes.lookup(None) else {
            continue;
        };
        let common = OpenFunction::common(&route);
        let call = forward(common, request);
        let path = call.header(":path").unwrap_or_default();
        assert!(path.starts_with('/'), "path {path:?}");
        for (name, value) in &call.headers {
            assert!(
                !name.contains(['\r', '\n']) && !value.contains(['\r', '\n']),
                "{name}: {value:?}"
            );
            let rebuilt = matches!(
                name.as_str(),
                "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
            );
            assert!(
                rebuilt || !(name.starts_with("x-forwarded-") || name == "forwarded"),
                "client forwarding header {name} reached the function"
            );
        }
        let strip_prefix = common.strip_prefix.as_deref();
        if !forwarded_path_escapes(strip_prefix, request.target()) {
            let base = split_path_query(&common.function.path).0.trim_end_matches('/');
            let decoded = split_path_query(path)
                .0
                .replace("%2F", "/")
                .replace("%2f", "/")
                .replace("%5C", "/")
                .replace("%5c", "/")
                .replace('\\', "/");
            let below = decoded.get(base.len()..).unwrap_or_default();
            assert!(
                decoded.starts_with(base)
                    && !below.split('/').any(|s| {
                        let s = s.to_ascii_lowercase().replace("%2e", ".");
                        s == "." || s == ".."
                    }),
                "{path:?} leaves {base:?} once decoded"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let request = client_request(data);
    CONFIGS.with(|configs| check(configs, &request));
});
