//! A client request forwarded to a function: path remainder, query and
//! headers as a client may send them. The callout must always be a request
//! Envoy accepts (an absolute path, no line breaks in any header).
#![no_main]

use envoy_faas_fuzz::client_request;
use faas_core::config::compile;
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
        let call = forward(OpenFunction::common(&route), request);
        let path = call.header(":path").unwrap_or_default();
        assert!(path.starts_with('/'), "path {path:?}");
        for (name, value) in &call.headers {
            assert!(
                !name.contains(['\r', '\n']) && !value.contains(['\r', '\n']),
                "{name}: {value:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let request = client_request(data);
    CONFIGS.with(|configs| check(configs, &request));
});
