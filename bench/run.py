#!/usr/bin/env python3
"""`make bench`: every envoy-faas filter against Envoy's own best, same run.

One Envoy (`--concurrency 1`) per scenario, pinned to one core; the load
generator (h2load, HTTP/1.1 and h2c) and the benchmark endpoint
(`faas-emulator --fixed`) share the other core. Each scenario is first
checked with one real request (status and body), then loaded; the Envoy
process's CPU time (from /proc) gives CPU per request and tells whether
Envoy was the bottleneck. Results go to bench/results/ (JSON, Markdown,
PNG) and into BENCHMARKS.md between the `bench:begin`/`bench:end` markers.

Environment: BENCH_DURATION (seconds per measurement, default 5),
BENCH_REPS (rounds, median reported, default 3), BENCH_SCENARIOS
(comma-separated subset), BENCH_MEMORY_REQUESTS (default 200000; 0 skips),
BENCH_HOSTCALLS (0 skips the host-call prices), BENCH_SCALING (0 skips
bench/scaling.py: routes, bodies, workers, CPU split, SHA-256),
BENCH_SCALING_DURATION (seconds per scaling point, default 3).
With BENCH_VARIANTS=1 each wasm filter also runs as `<name>-nometrics` and
`<name>-dark` (metrics, then also access-log fields, off) right after
itself in every round, on the small-body cases.
"""

import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
RESULTS = ROOT / "bench" / "results"
FIXED_BODY = (
    '{"statusCode":200,"headers":{"content-type":"text/plain"},'
    '"body":"hello from the function"}'
)
TRANSFORMED_BODY = "hello from the function"

# AWS's documented example keys: the endpoint does not verify signatures
# (that is what the test suite is for); signing still costs what it costs.
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LAMBDA_HOST = "lambda.us-east-1.amazonaws.com"

DURATION = float(os.environ.get("BENCH_DURATION", "5"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
MEMORY_REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "200000"))
IN_FLIGHT = 16  # concurrent requests, both protocols

BODIES = [("GET", 0), ("POST 1 KiB", 1024), ("POST 256 KiB", 256 * 1024)]
PROTOCOLS = ["HTTP/1.1", "HTTP/2"]


def wasm_filter(module, configuration, name):
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "allow_on_headers_stop_iteration": True,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                    if isinstance(configuration, str)
                    else json.dumps(configuration),
                },
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(DIST / module)}},
                },
            },
        },
    }


def native_lambda_filter():
    return {
        "name": "envoy.filters.http.aws_lambda",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.Config",
            "arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
            "payload_passthrough": False,
            "invocation_mode": "SYNCHRONOUS",
            "host_rewrite": LAMBDA_HOST,
            "credentials": {"access_key_id": AKID, "secret_access_key": SECRET},
        },
    }


# name -> (label, http filters, expected body, cluster metadata)
SCENARIOS = {
    "plain": ("plain Envoy route (ceiling)", lambda: [], FIXED_BODY, None),
    "native": (
        "Envoy native aws_lambda (C++)",
        lambda: [native_lambda_filter()],
        TRANSFORMED_BODY,
        {"com.amazonaws.lambda": {"egress_gateway": True}},
    ),
    "aws-url": (
        "aws_lambda.wasm function_uri + IAM",
        lambda: [
            wasm_filter(
                "aws_lambda.wasm",
                {
                    "cluster": "fn",
                    "function_uri": "http://bench.lambda-url.us-east-1.on.aws/",
                    "authorization": {"iam": {"accesskey": AKID, "secretkey": SECRET}},
                },
                "aws-lambda",
            )
        ],
        FIXED_BODY,
        None,
    ),
    "aws-invoke": (
        "aws_lambda.wasm Invoke, API GW 2.0 + proxy",
        lambda: [
            wasm_filter(
                "aws_lambda.wasm",
                {
                    "cluster": "fn",
                    "function_name": "bench",
                    "aws_region": "us-east-1",
                    "endpoint": f"http://{LAMBDA_HOST}",
                    "payload_format": "apigateway_v2",
                    "aws_key": AKID,
                    "aws_secret": SECRET,
                },
                "aws-lambda",
            )
        ],
        TRANSFORMED_BODY,
        None,
    ),
    "azure": (
        "azure_functions.wasm",
        lambda: [
            wasm_filter(
                "azure_functions.wasm",
                {
                    "cluster": "fn",
                    "function_uri": "http://bench.azurewebsites.net/api/bench",
                    "authorization": {"apikey": "bench-function-key"},
                },
                "azure-functions",
            )
        ],
        FIXED_BODY,
        None,
    ),
    "openfunction": (
        "openfunction.wasm",
        lambda: [
            wasm_filter(
                "openfunction.wasm",
                {"cluster": "fn", "function_uri": "http://bench.openfunction.local/bench"},
                "openfunction",
            )
        ],
        FIXED_BODY,
        None,
    ),
    "probe-callout": (
        "probe: bare wasm callout (Envoy's cost)",
        lambda: [wasm_filter("bench_probe.wasm", "callout fn bench.local", "probe")],
        FIXED_BODY,
        None,
    ),
    "probe-forward": (
        "probe: bare wasm in-place forward",
        lambda: [wasm_filter("bench_probe.wasm", "forward fn bench.local", "probe")],
        FIXED_BODY,
        None,
    ),
    "probe-rewrite": (
        "probe: bare wasm rewrite in headers (in-place floor)",
        lambda: [wasm_filter("bench_probe.wasm", "rewrite fn bench.local", "probe")],
        FIXED_BODY,
        None,
    ),
}

# Forwarding in place (`"forwarding": "route"`, issue 28): the same filters
# and configs, the request rewritten and forwarded by Envoy's router; each
# route gets its in-place twin (the book, "Forwarding in place").
IN_PLACE = {"aws-url-route": "aws-url", "azure-route": "azure", "openfunction-route": "openfunction"}


def in_place_scenario(base):
    label, filters, expected, metadata = SCENARIOS[base]

    def routed():
        out = filters()
        config = json.loads(out[0]["typed_config"]["config"]["configuration"]["value"])
        config["forwarding"] = "route"
        out[0]["typed_config"]["config"]["configuration"]["value"] = json.dumps(config)
        return out

    return (label + " in place", routed, expected, metadata)


SCENARIOS.update({name: in_place_scenario(base) for name, base in IN_PLACE.items()})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cores():
    return sorted(os.sched_getaffinity(0))


def pinned(core, argv):
    """Pins to one core when there are two or more (and taskset exists)."""
    if len(cores()) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)] + argv
    return argv


def envoy_core():
    return cores()[0]


def load_core():
    return cores()[-1]


def bootstrap(port, endpoint_port, http_filters, metadata, buffer_limit=None, twin=False):
    cluster = {
        "name": "fn",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "fn",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": "127.0.0.1",
                                        "port_value": endpoint_port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if metadata:
        cluster["metadata"] = {"filter_metadata": metadata}
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "AUTO",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": (
                        [
                            {
                                "name": "fn",
                                "match": {
                                    "prefix": "/",
                                    "headers": [
                                        {
                                            "name": "x-envoy-faas-route",
                                            "string_match": {"exact": "fn"},
                                        }
                                    ],
                                },
                                "route": {"cluster": "fn", "timeout": "30s"},
                                "request_headers_to_remove": ["x-envoy-faas-route"],
                            }
                        ]
                        if twin
                        else []
                    )
                    + [
                        {
                            "name": "fn",
                            "match": {"prefix": "/"},
                            "route": {"cluster": "fn", "timeout": "30s"},
                        }
                    ],
                }
            ]
        },
        "http_filters": http_filters + [router],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "bench",
                    **(
                        {"per_connection_buffer_limit_bytes": buffer_limit}
                        if buffer_limit
                        else {}
                    ),
                    "address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": port}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [cluster],
        },
    }


def wait_for(predicate, what, timeout=60.0):
    """Polls `predicate` until it returns a truthy value (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def http_get(url, data=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Envoy:
    def __init__(self, envoy_bin, scenario, endpoint_port, workdir, concurrency=1, buffer_limit=None):
        self.label, filters, self.expected, metadata = SCENARIOS[scenario]
        self.port = free_port()
        config = workdir / f"{scenario}.json"
        config.write_text(
            json.dumps(
                bootstrap(
                    self.port, endpoint_port, filters(), metadata, buffer_limit,
                    twin=scenario in IN_PLACE,
                )
            )
        )
        admin_file = workdir / f"{scenario}.admin"
        admin_file.unlink(missing_ok=True)
        self.log = open(workdir / f"{scenario}.log", "w")
        argv = [
            envoy_bin, "-c", str(config), "--concurrency", str(concurrency),
            "--use-dynamic-base-id", "--admin-address-path", str(admin_file),
            "--log-level", "warn",
        ]
        self.proc = subprocess.Popen(
            # One worker: pinned to its core. More: every core, shared with the load.
            pinned(envoy_core(), argv) if concurrency == 1 else argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            admin = wait_for(
                lambda: self._alive() and admin_file.exists() and admin_file.read_text().strip(),
                "Envoy's admin address",
            )
            self.admin = f"http://{admin}"
            wait_for(lambda: self._alive() and self._ready(), "Envoy ready")
        except Exception:
            self.stop()
            raise RuntimeError(f"Envoy did not start for {scenario}; see {self.log.name}")

    def _alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"Envoy exited with {self.proc.returncode}; see {self.log.name}")
        return True

    def _ready(self):
        try:
            return http_get(self.admin + "/ready", timeout=1)[0] == 200
        except OSError:
            return False

    def url(self, path="/bench"):
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self):
        """User + system CPU of the Envoy process (all threads)."""
        # taskset execs Envoy, so the pid is Envoy's own.
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_bytes(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stats(self, pattern):
        status, text = http_get(self.admin + "/stats?format=json&filter=" + pattern)
        if status != 200:
            return {}
        return {s["name"]: s.get("value") for s in json.loads(text).get("stats", []) if "name" in s}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_endpoint(emulator_bin):
    port = free_port()
    proc = subprocess.Popen(
        pinned(load_core(), [emulator_bin, "--fixed", "--listen", f"127.0.0.1:{port}"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"benchmark endpoint did not start: {line!r}")
    return proc, port


def body_file(workdir, size):
    path = workdir / f"body-{size}.json"
    if not path.exists():
        # A JSON document of exactly `size` bytes: text, so every event
        # format carries it without base64.
        filler = "x" * (size - len('{"data":""}'))
        path.write_text('{"data":"' + filler + '"}')
    return path


def h2load(url, protocol, size, workdir, duration=None, requests=None, log=None):
    argv = ["h2load", "-t", "1"]
    if protocol == "HTTP/1.1":
        argv += ["--h1", "-c", str(IN_FLIGHT)]
    else:
        argv += ["-c", "2", "-m", str(IN_FLIGHT // 2)]
    if duration is not None:
        argv += ["-D", f"{duration:g}"]
    else:
        argv += ["-n", str(requests)]
    if size:
        argv += ["-d", str(body_file(workdir, size)), "-H", "content-type: application/json"]
    if log:
        argv += ["--log-file", str(log)]
    argv.append(url)
    proc = subprocess.run(pinned(load_core(), argv), capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not done or not codes:
        raise RuntimeError(f"h2load output not understood:\n{out}")
    return {"done": int(done.group(1)), "ok_2xx": int(codes.group(1)), "output": out}


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def measure(envoy, protocol, size, workdir, duration=None):
    """One measured run; warm-up first (connections, VM, caches)."""
    duration = duration or DURATION
    h2load(envoy.url(), protocol, size, workdir, duration=1)
    log = workdir / "latency.log"
    log.unlink(missing_ok=True)
    cpu0 = envoy.cpu_seconds()
    t0 = time.monotonic()
    result = h2load(envoy.url(), protocol, size, workdir, duration=duration, log=log)
    wall = time.monotonic() - t0
    cpu = envoy.cpu_seconds() - cpu0
    latencies = []
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("2"):
            latencies.append(int(parts[2]))
    latencies.sort()
    if result["ok_2xx"] != result["done"] or result["done"] == 0:
        raise RuntimeError(
            f"{envoy.label} {protocol} {size}: {result['done'] - result['ok_2xx']} non-2xx answers\n"
            + result["output"]
        )
    return {
        "rps": result["done"] / duration,
        "p50_us": percentile(latencies, 50),
        "p99_us": percentile(latencies, 99),
        "p999_us": percentile(latencies, 99.9),
        "cpu_us_per_req": cpu * 1e6 / result["done"],
        "envoy_cpu_util": cpu / wall,
    }


def median_of(ms):
    """Each metric's median over the rounds' measurements."""
    return {metric: statistics.median(m[metric] for m in ms) for metric in ms[0]}


def check(envoy, scenario):
    """One real request per shape: the scenario must do what it claims."""
    for method_data in (None, b'{"probe":true}'):
        headers = {"content-type": "application/json"} if method_data else {}
        status, body = http_get(envoy.url(), data=method_data, headers=headers)
        if status != 200 or body != envoy.expected:
            raise RuntimeError(
                f"scenario {scenario} is broken: got {status} {body[:300]!r}, "
                f"expected 200 {envoy.expected!r}"
            )


def wasm_memory(envoy):
    """The filter's own gauge of its linear memory (bytes), if it has one."""
    values = [v for k, v in envoy.stats("wasm_memory_bytes").items() if v is not None]
    return max(values) if values else None


def memory_run(envoy_bin, scenario, endpoint_port, workdir):
    envoy = Envoy(envoy_bin, scenario, endpoint_port, workdir)
    try:
        check(envoy, scenario)
        h2load(envoy.url(), "HTTP/1.1", 1024, workdir, requests=5000)
        points = [(5000, envoy.rss_bytes(), wasm_memory(envoy))]
        half = MEMORY_REQUESTS // 2
        for _ in range(2):
            r = h2load(envoy.url(), "HTTP/1.1", 1024, workdir, requests=half)
            if r["ok_2xx"] != half:
                raise RuntimeError(f"memory run {scenario}: {half - r['ok_2xx']} failures")
            points.append((points[-1][0] + half, envoy.rss_bytes(), wasm_memory(envoy)))
        return points
    finally:
        envoy.stop()


def endpoint_ceiling(endpoint_port, workdir):
    """The endpoint alone, loaded directly: must far exceed every scenario."""
    url = f"http://127.0.0.1:{endpoint_port}/bench"
    out = {}
    for name, size in BODIES:
        h2load(url, "HTTP/1.1", size, workdir, requests=2000)
        r = h2load(url, "HTTP/1.1", size, workdir, duration=min(DURATION, 3))
        out[name] = r["done"] / min(DURATION, 3)
    return out


def versions(envoy_bin):
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "envoy": first_line([envoy_bin, "--version"]).split("version: ")[-1],
        "h2load": first_line(["h2load", "--version"]),
        "rustc": first_line(["rustc", "--version"]),
        "cpu": cpu,
        "cores": len(cores()),
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
    }


# The wasm filters again with their metrics off ("-nometrics": access-log
# facts still on) and with both off ("-dark"), right after themselves in
# every round: the cost of metrics is default vs -nometrics, the cost of
# the access-log facts -nometrics vs -dark. Small bodies only: the cost is
# per request, and the 256 KiB cases would only add noise and minutes.
OBSERVED = ["aws-url", "aws-invoke", "azure", "openfunction"]
VARIANTS = {
    "-nometrics": ("metrics off", {"metrics": False}),
    "-dark": ("metrics and access-log fields off", {"metrics": False, "access_log_fields": False}),
}
VARIANT_BODIES = [("GET", 0), ("POST 1 KiB", 1024)]


# The probe making N host calls of one kind per request, answered locally
# (GET, HTTP/1.1): against "none", the price of one host call in Envoy.
HOSTCALL_KINDS = ["none", "counter", "histogram", "clock", "route_name", "set_property"]
HOSTCALLS_PER_REQUEST = 32
HOSTCALLS = os.environ.get("BENCH_HOSTCALLS", "1") != "0"
for _kind in HOSTCALL_KINDS:
    SCENARIOS[f"hostcalls-{_kind}"] = (
        f"probe: {HOSTCALLS_PER_REQUEST} × {_kind}",
        lambda kind=_kind: [
            wasm_filter("bench_probe.wasm", f"hostcalls {kind} {HOSTCALLS_PER_REQUEST}", "probe")
        ],
        "ok",
        None,
    )


def is_hostcalls(name):
    return name.startswith("hostcalls-")


def hostcall_costs(envoy_bin, endpoint_port, workdir):
    """µs of Envoy CPU per host call of each kind (median of REPS rounds)."""
    cpu = {kind: [] for kind in HOSTCALL_KINDS}
    for rep in range(REPS):
        for kind in HOSTCALL_KINDS:
            envoy = Envoy(envoy_bin, f"hostcalls-{kind}", endpoint_port, workdir)
            try:
                check(envoy, f"hostcalls-{kind}")
                m = measure(envoy, "HTTP/1.1", 0, workdir)
                cpu[kind].append(m["cpu_us_per_req"])
                print(f"bench: host calls round {rep + 1}/{REPS} {kind:13} {m['cpu_us_per_req']:6.1f} us CPU/req", flush=True)
            finally:
                envoy.stop()
    base = statistics.median(cpu["none"])
    return {
        "per_request": HOSTCALLS_PER_REQUEST,
        "base_us_per_req": base,
        "us_per_call": {
            kind: (statistics.median(v) - base) / HOSTCALLS_PER_REQUEST
            for kind, v in cpu.items()
            if kind != "none"
        },
    }


def is_variant(name):
    return any(name.endswith(suffix) for suffix in VARIANTS)


def variant(name, suffix):
    label, filters, body, metadata = SCENARIOS[name]
    what, switches = VARIANTS[suffix]

    def switched_filters():
        out = filters()
        for f in out:
            configuration = f["typed_config"]["config"]["configuration"]
            plugin = json.loads(configuration["value"])
            plugin.update(switches)
            configuration["value"] = json.dumps(plugin)
        return out

    return (f"{label}, {what}", switched_filters, body, metadata)


SCENARIOS = dict(
    pair
    for name, scenario in SCENARIOS.items()
    for pair in [(name, scenario)]
    + ([(name + suffix, variant(name, suffix)) for suffix in VARIANTS] if name in OBSERVED else [])
)


def main():
    envoy_bin, emulator_bin, micro_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    # The metrics-off twins (issue 13's observability cost) add ~10 min:
    # BENCH_VARIANTS=1 includes them.
    with_variants = os.environ.get("BENCH_VARIANTS", "0") == "1"
    default = ",".join(
        s for s in SCENARIOS if not is_hostcalls(s) and (with_variants or not is_variant(s))
    )
    selected = [s for s in os.environ.get("BENCH_SCENARIOS", default).split(",") if s]
    for s in selected:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="envoy-faas-bench-"))
    endpoint, endpoint_port = start_endpoint(emulator_bin)
    runs = {s: {} for s in selected}
    try:
        print("bench: endpoint alone ...", flush=True)
        ceiling = endpoint_ceiling(endpoint_port, workdir)
        for rep in range(REPS):
            for scenario in selected:
                envoy = Envoy(envoy_bin, scenario, endpoint_port, workdir)
                try:
                    check(envoy, scenario)
                    # V8 starts wasm in its baseline tier and recompiles hot
                    # functions in the background: load every path first so
                    # no measured case pays for the tier-up.
                    bodies = VARIANT_BODIES if is_variant(scenario) else BODIES
                    for _, size in bodies:
                        h2load(envoy.url(), "HTTP/1.1", size, workdir, duration=1)
                    for body, size in bodies:
                        for protocol in PROTOCOLS:
                            m = measure(envoy, protocol, size, workdir)
                            runs[scenario].setdefault(f"{body}|{protocol}", []).append(m)
                            print(
                                f"bench: round {rep + 1}/{REPS} {scenario:14} {body:13} {protocol:8} "
                                f"{m['rps']:9.0f} req/s  p99 {m['p99_us'] / 1000:6.2f} ms  "
                                f"{m['cpu_us_per_req']:6.1f} us CPU/req  Envoy CPU {m['envoy_cpu_util']:.0%}",
                                flush=True,
                            )
                finally:
                    envoy.stop()
        hostcalls = hostcall_costs(envoy_bin, endpoint_port, workdir) if HOSTCALLS else {}
        import scaling  # bench/scaling.py: routes, bodies, workers, CPU split, SHA-256

        phases = scaling.all_phases(envoy_bin, endpoint_port, workdir, selected)
        memory = {}
        if MEMORY_REQUESTS:
            for scenario in (s for s in selected if not is_variant(s)):
                print(f"bench: memory {scenario} ({MEMORY_REQUESTS} requests) ...", flush=True)
                memory[scenario] = memory_run(envoy_bin, scenario, endpoint_port, workdir)
    finally:
        endpoint.terminate()
        endpoint.wait()
    summary = {s: {k: median_of(ms) for k, ms in by_case.items()} for s, by_case in runs.items()}
    micro = {}
    for engine in ("native", "wasm"):
        path = micro_dir / f"micro-{engine}.json"
        if path.exists() and path.read_text().strip():
            micro[engine] = json.loads(path.read_text())
    sizes = {p.name: p.stat().st_size for p in sorted(DIST.glob("*.wasm"))}
    report = {
        "command": "make bench",
        "settings": {
            "duration_s": DURATION, "reps": REPS, "in_flight": IN_FLIGHT,
            "memory_requests": MEMORY_REQUESTS,
        },
        "machine": versions(envoy_bin),
        "endpoint_alone_rps": ceiling,
        "labels": {s: SCENARIOS[s][0] for s in selected},
        "summary": summary,
        "runs": runs,
        "memory": memory,
        "hostcalls": hostcalls,
        "scaling": phases,
        "micro": micro,
        "wasm_sizes": sizes,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=1))
    import report as render  # bench/report.py

    render.write(report, RESULTS, ROOT / "BENCHMARKS.md")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
