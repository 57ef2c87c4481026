//! `envoy-faas`: check plugin configs offline, import APISIX or Kong
//! configs. `envoy-faas --help` for usage.

use envoy_faas::filters::{self, Filter};
use envoy_faas::{envoy, import, istio, native, report, Source, Target};
use std::io::Read;
use std::process::ExitCode;

const USAGE: &str = "\
envoy-faas check --filter <aws-lambda|azure-functions|gcp-functions|openfunction> <config.json|config.yaml|->...
    Compiles each plugin config as the filter does when Envoy loads it.
    Prints every error with its route and dotted field; exit 0 if all are
    accepted, 1 otherwise. The AWS_*, AZURE_* and IDENTITY_* variables of
    this shell stand in for the VM's environment (environment_variables).

envoy-faas import <apisix|kong> <file> [options]
    Writes an Envoy bootstrap (or Istio manifests) for the config's
    function routes, and a report of everything not translated.
    -o, --output FILE            the output (default: stdout)
    --report FILE                the report (default: stderr)
    --strict                     exit 1 when anything was not translated
    --target envoy|istio         (default: envoy)
    --forwarding callout|route   callout (default): the filter calls the function;
                                 route: the request is rewritten in place and
                                 Envoy's router forwards it (Invoke routes stay
                                 callouts; each route gets its in-place twin)
  envoy:
    --listen ADDR:PORT           listener (default 0.0.0.0:8080)
    --admin ADDR:PORT            admin interface (default 127.0.0.1:9901)
    --wasm-dir DIR               where the .wasm modules are (default dist)
    --trusted-ca FILE            CA bundle for verified TLS
                                 (default /etc/ssl/certs/ca-certificates.crt)
    --upstream-override ADDR:PORT
                                 TESTING ONLY: every function cluster goes to
                                 ADDR:PORT over plain HTTP (the Host header
                                 still names the function host)
  istio:
    --namespace NS               (default istio-ingress)
    --gateway NS/NAME            (default istio-ingress/ingressgateway)
    --selector KEY=VALUE         gateway workload label (default istio=ingressgateway)
    --version V                  WasmPlugin image tag (default: this command's version)

envoy-faas import envoy <bootstrap.yaml|.json> [-o FILE] [--report FILE] [--strict] [--wasm-dir DIR]
                 [--forwarding callout|route]
    Rewrites an Envoy config that uses Envoy's native aws_lambda and
    aws_request_signing filters with aws_lambda.wasm in their place: the
    same listeners, routes and clusters; each route they acted on named and
    configured in native's payload format (payload_format envoy), so its
    function works unchanged. --forwarding route: Function URL routes
    (aws_request_signing) forward in place, each with its twin route;
    Invoke routes stay callouts.
";

fn usage_error(message: &str) -> ExitCode {
    eprintln!("envoy-faas: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn read_input(path: &str) -> Result<String, String> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// A plugin config as JSON bytes: JSON as is (the module's exact input),
/// YAML (as in an Istio `pluginConfig`) converted.
fn plugin_json(path: &str, text: &str) -> Result<Vec<u8>, String> {
    let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
    if !yaml {
        return Ok(text.as_bytes().to_vec());
    }
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|e| format!("{path}: not YAML: {e}"))?;
    Ok(value.to_string().into_bytes())
}

fn check(args: &[String]) -> ExitCode {
    let mut filter = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--filter" => match it.next().map(|f| (f, Filter::parse(f))) {
                Some((_, Some(f))) => filter = Some(f),
                Some((name, None)) => return usage_error(&format!("unknown filter \"{name}\"")),
                None => return usage_error("--filter needs a name"),
            },
            other if other.starts_with("--filter=") => {
                match Filter::parse(other.trim_start_matches("--filter=")) {
                    Some(f) => filter = Some(f),
                    None => return usage_error(&format!("unknown filter in \"{other}\"")),
                }
            }
            other if other.starts_with("--") => {
                return usage_error(&format!("unknown option {other}"))
            }
            file => files.push(file.to_string()),
        }
    }
    let Some(filter) = filter else {
        return usage_error("check needs --filter");
    };
    if files.is_empty() {
        return usage_error("check needs a config file (or - for stdin)");
    }
    let mut failed = false;
    for file in &files {
        let json = match read_input(file).and_then(|t| plugin_json(file, &t)) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
                continue;
            }
        };
        match filters::compile(filter, &json) {
            Ok(compiled) => {
                println!("{file}: ok ({filter}, {} route(s))", compiled.routes.len());
                for r in &compiled.routes {
                    println!("  route \"{}\" -> cluster \"{}\"", r.route, r.cluster);
                    if r.forwarding == faas_core::layout::Forwarding::Route {
                        println!(
                            "    forwarding in place: the Envoy route's cluster must be \"{}\", \
                             with its twin route (x-envoy-faas-route) first in the virtual host \
                             of \"{}\"",
                            r.cluster,
                            r.function.authority()
                        );
                    }
                    match compiled.streaming.iter().find(|(name, _)| *name == r.route) {
                        Some((_, true)) => println!(
                            "    streams (InvokeWithResponseStream): a request with a body streams in \
                             place with allow_on_headers_stop_iteration (body_layout stop_iteration); \
                             without it, and for requests without a body, the answer comes whole \
                             through a callout"
                        ),
                        Some((_, false)) => println!(
                            "    streams (RESPONSE_STREAM Function URL): in place, as the function writes"
                        ),
                        None => {}
                    }
                }
            }
            Err(errors) => {
                failed = true;
                for e in errors {
                    println!("{file}: {filter}: invalid configuration: {e}");
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn address(value: &str) -> Option<(String, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// The options every import takes: the input, where the output and the
/// report go, `--strict`, `--forwarding`.
#[derive(Default)]
struct ImportArgs {
    input: Option<String>,
    output: Option<String>,
    report_file: Option<String>,
    strict: bool,
    in_place: bool,
}

impl ImportArgs {
    /// Takes `arg` if it is one of the shared options (`value` yields the
    /// option's value), or a positional or unknown argument; `None` leaves
    /// it to the import's own options.
    fn take(
        &mut self,
        arg: &str,
        value: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Option<Result<(), String>> {
        Some(match arg {
            "-o" | "--output" => value(arg).map(|v| self.output = Some(v)),
            "--report" => value(arg).map(|v| self.report_file = Some(v)),
            "--strict" => {
                self.strict = true;
                Ok(())
            }
            "--forwarding" => value(arg).and_then(|v| match v.as_str() {
                "callout" | "route" => {
                    self.in_place = v == "route";
                    Ok(())
                }
                other => Err(format!("--forwarding {other}: callout or route")),
            }),
            other if other.starts_with('-') && other != "-" => return None,
            file if self.input.is_none() => {
                self.input = Some(file.to_string());
                Ok(())
            }
            extra => Err(format!("unexpected argument \"{extra}\"")),
        })
    }
}

/// `import envoy FILE`: the native filters replaced in the config itself.
fn import_native_command(args: &[String]) -> ExitCode {
    let mut it = args.iter();
    let mut shared = ImportArgs::default();
    let mut options = native::Options {
        wasm_dir: "dist".into(),
        in_place: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        let result = match shared.take(arg, &mut value) {
            Some(done) => done,
            None if arg == "--wasm-dir" => value(arg).map(|v| options.wasm_dir = v),
            None => Err(format!("unknown option {arg}")),
        };
        if let Err(e) = result {
            return usage_error(&e);
        }
    }
    options.in_place = shared.in_place;
    let Some(input) = shared.input.clone() else {
        return usage_error("import envoy needs the Envoy config file (or - for stdin)");
    };
    let imported = match read_input(&input).and_then(|text| native::import(&text, &input, &options))
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("envoy-faas: {e}");
            return ExitCode::from(1);
        }
    };
    finish_import(
        "envoy",
        &input,
        (imported.output, imported.routes, &imported.report),
        &shared,
    )
}

/// Writes an import's output and report; with `strict`, anything not
/// translated fails the command.
fn finish_import(
    source: &str,
    input: &str,
    (text, routes, report): (String, usize, &report::Report),
    args: &ImportArgs,
) -> ExitCode {
    let (output, report_file, strict) = (
        args.output.as_deref(),
        args.report_file.as_deref(),
        args.strict,
    );
    let written = match output {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{path}: {e}")),
        None => {
            print!("{text}");
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("envoy-faas: {e}");
        return ExitCode::from(1);
    }
    let summary = format!(
        "envoy-faas import {source} {input}: {routes} function route(s) translated, {} item(s) not translated.\n{report}",
        report.untranslated(),
    );
    match report_file {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &summary) {
                eprintln!("envoy-faas: {path}: {e}");
                return ExitCode::from(1);
            }
        }
        None => eprint!("{summary}"),
    }
    if strict && report.untranslated() > 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn import_command(args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("envoy") {
        return import_native_command(args.get(1..).unwrap_or_default());
    }
    let mut it = args.iter();
    let source = match it.next().map(String::as_str) {
        Some("apisix") => Source::Apisix,
        Some("kong") => Source::Kong,
        Some(other) => {
            return usage_error(&format!(
                "import reads apisix, kong or envoy, not \"{other}\""
            ))
        }
        None => return usage_error("import needs apisix, kong or envoy"),
    };
    let mut shared = ImportArgs::default();
    let mut istio_target = false;
    let mut envoy = envoy::Options {
        listen: ("0.0.0.0".into(), 8080),
        admin: ("127.0.0.1".into(), 9901),
        wasm_dir: "dist".into(),
        trusted_ca: "/etc/ssl/certs/ca-certificates.crt".into(),
        upstream_override: None,
        in_place: false,
    };
    let mut istio = istio::Options {
        namespace: "istio-ingress".into(),
        gateway: "istio-ingress/ingressgateway".into(),
        selector: ("istio".into(), "ingressgateway".into()),
        version: env!("CARGO_PKG_VERSION").into(),
        in_place: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        if let Some(result) = shared.take(arg, &mut value) {
            if let Err(e) = result {
                return usage_error(&e);
            }
            continue;
        }
        let result: Result<(), String> = match arg.as_str() {
            "--target" => value(arg).and_then(|v| match v.as_str() {
                "envoy" | "istio" => {
                    istio_target = v == "istio";
                    Ok(())
                }
                other => Err(format!("unknown target \"{other}\"")),
            }),
            "--listen" => value(arg).and_then(|v| {
                address(&v)
                    .map(|a| envoy.listen = a)
                    .ok_or(format!("--listen {v}: not ADDR:PORT"))
            }),
            "--admin" => value(arg).and_then(|v| {
                address(&v)
                    .map(|a| envoy.admin = a)
                    .ok_or(format!("--admin {v}: not ADDR:PORT"))
            }),
            "--upstream-override" => value(arg).and_then(|v| {
                address(&v)
                    .map(|a| envoy.upstream_override = Some(a))
                    .ok_or(format!("--upstream-override {v}: not ADDR:PORT"))
            }),
            "--wasm-dir" => value(arg).map(|v| envoy.wasm_dir = v),
            "--trusted-ca" => value(arg).map(|v| envoy.trusted_ca = v),
            "--namespace" => value(arg).map(|v| istio.namespace = v),
            "--gateway" => value(arg).map(|v| istio.gateway = v),
            "--version" => value(arg).map(|v| istio.version = v),
            "--selector" => value(arg).and_then(|v| match v.split_once('=') {
                Some((k, l)) => {
                    istio.selector = (k.to_string(), l.to_string());
                    Ok(())
                }
                None => Err(format!("--selector {v}: not KEY=VALUE")),
            }),
            other => Err(format!("unknown option {other}")),
        };
        if let Err(e) = result {
            return usage_error(&e);
        }
    }
    envoy.in_place = shared.in_place;
    let Some(input) = shared.input.clone() else {
        return usage_error("import needs the config file (or - for stdin)");
    };
    istio.in_place = envoy.in_place;
    let target = if istio_target {
        Target::Istio(istio)
    } else {
        Target::Envoy(envoy)
    };
    let imported = match read_input(&input).and_then(|text| import(source, &text, &input, &target))
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("envoy-faas: {e}");
            return ExitCode::from(1);
        }
    };
    finish_import(
        source.name(),
        &input,
        (imported.output, imported.routes, &imported.report),
        &shared,
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check(args.get(1..).unwrap_or_default()),
        Some("import") => {
            // The generated Envoy passes no variables to the VM: compile
            // the routes as that VM will see them, not as this shell does.
            for name in filters::VM_ENVIRONMENT {
                // SAFETY: single-threaded, before anything reads the environment.
                unsafe { std::env::remove_var(name) };
            }
            import_command(args.get(1..).unwrap_or_default())
        }
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("envoy-faas {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => usage_error("a command is needed"),
    }
}
