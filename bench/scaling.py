"""`make bench`'s second half (issue 16): how the cost per request scales,
where it goes, and how fast SHA-256 runs inside Envoy's V8.

- routes: openfunction and Invoke with a `routes` map of 1, 100 and 10,000
  entries (the request's Envoy route is one of them): our lookup must stay
  flat.
- bodies: 1 KiB to 4 MiB POSTs over HTTP/1.1: CPU µs/req should grow
  linearly; the slope (ns per byte) is what each byte costs.
- concurrency: Envoy with 2 workers on both cores against 1 pinned worker:
  CPU µs/req is the cost per request on a core, so equal figures mean
  throughput per core holds.
- CPU split: `perf` (if installed) samples Envoy during a GET run; the
  share in V8's JIT code (our wasm), Envoy's C++, the kernel and libc,
  times CPU µs/req, says which part of a request is ours.
- sha256: the probe filter hashes 256 KiB inside Envoy and reports the
  time from Envoy's clock around the hash alone; native references
  (coreutils `sha256sum`, OpenSSL with and without SHA-NI) run on the same
  machine in the same run.

Each uses run.py's Envoy, h2load and measure; BENCH_SCALING=0 skips all.
"""

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import run

SCALING_DURATION = float(os.environ.get("BENCH_SCALING_DURATION", "3"))
ROUTE_COUNTS = [1, 100, 10000]
ROUTE_FILTERS = {
    "openfunction": (
        "openfunction.wasm",
        "openfunction",
        {"function_uri": "http://bench.openfunction.local/bench"},
        {"cluster": "fn"},
        run.FIXED_BODY,
    ),
    "aws-invoke": (
        "aws_lambda.wasm",
        "aws-lambda",
        {"function_name": "bench"},
        {
            "cluster": "fn",
            "aws_region": "us-east-1",
            "endpoint": f"http://{run.LAMBDA_HOST}",
            "payload_format": "apigateway_v2",
            "aws_key": run.AKID,
            "aws_secret": run.SECRET,
        },
        run.TRANSFORMED_BODY,
    ),
}
BODY_SIZES = [1024, 16 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]
BODY_SCENARIOS = ["plain", "native", "aws-url", "aws-invoke", "openfunction", "openfunction-route", "probe-callout"]
# 4 MiB bodies need more than Envoy's default 1 MiB connection buffer.
BODY_BUFFER_LIMIT = 16 * 1024 * 1024
CONCURRENCY_SCENARIOS = ["plain", "native", "openfunction", "aws-invoke"]
CONCURRENCY_CASES = [("GET", 0), ("POST 1 KiB", 1024)]
SPLIT_SCENARIOS = [
    "plain", "native", "aws-url", "aws-invoke", "azure", "openfunction", "probe-callout",
    "openfunction-route", "aws-url-route", "probe-rewrite",
]
SHA_BYTES = 256 * 1024


def routes_scenario(base, count):
    """`base`'s filter with a `routes` map of `count` entries; the Envoy
    route ("fn") is the last one."""
    module, name, route, defaults, expected = ROUTE_FILTERS[base]
    names = [f"route-{i:05d}" for i in range(count - 1)] + ["fn"]
    config = dict(defaults, routes={n: dict(route) for n in names})
    key = f"{base}-routes-{count}"
    run.SCENARIOS[key] = (
        f"{run.SCENARIOS[base][0]}, {count} routes",
        lambda: [run.wasm_filter(module, config, name)],
        expected,
        None,
    )
    return key


def route_scaling(envoy_bin, endpoint_port, workdir):
    results = {}
    for rep in range(run.REPS):
        for base in ROUTE_FILTERS:
            for count in ROUTE_COUNTS:
                key = routes_scenario(base, count)
                started = time.monotonic()
                envoy = run.Envoy(envoy_bin, key, endpoint_port, workdir)
                start_s = time.monotonic() - started
                try:
                    run.check(envoy, key)
                    m = run.measure(envoy, "HTTP/1.1", 0, workdir, SCALING_DURATION)
                    m["start_s"] = start_s
                    m["rss_mib"] = envoy.rss_bytes() / 2**20
                finally:
                    envoy.stop()
                results.setdefault(base, {}).setdefault(str(count), []).append(m)
                print(
                    f"bench: routes round {rep + 1}/{run.REPS} {base:13} {count:6} routes "
                    f"{m['cpu_us_per_req']:6.1f} us CPU/req  start {start_s:.1f} s",
                    flush=True,
                )
    return {
        base: {count: run.median_of(ms) for count, ms in by_count.items()}
        for base, by_count in results.items()
    }


def slope_ns_per_byte(points):
    """Least-squares slope of CPU µs/req over body bytes, in ns per byte."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if not var:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 1000.0


def body_scaling(envoy_bin, endpoint_port, workdir, selected):
    scenarios = [s for s in BODY_SCENARIOS if s in selected]
    results = {}
    for rep in range(run.REPS):
        for scenario in scenarios:
            envoy = run.Envoy(
                envoy_bin, scenario, endpoint_port, workdir, buffer_limit=BODY_BUFFER_LIMIT
            )
            try:
                run.check(envoy, scenario)
                for size in BODY_SIZES:
                    m = run.measure(envoy, "HTTP/1.1", size, workdir, SCALING_DURATION)
                    results.setdefault(scenario, {}).setdefault(str(size), []).append(m)
                    print(
                        f"bench: bodies round {rep + 1}/{run.REPS} {scenario:14} {size:8} B "
                        f"{m['rps']:8.0f} req/s {m['cpu_us_per_req']:8.1f} us CPU/req",
                        flush=True,
                    )
            finally:
                envoy.stop()
    out = {}
    for scenario, by_size in results.items():
        points = {size: run.median_of(ms) for size, ms in by_size.items()}
        out[scenario] = {
            "points": points,
            "ns_per_byte": slope_ns_per_byte(
                [(int(size), p["cpu_us_per_req"]) for size, p in points.items()]
            ),
        }
    return out


def concurrency_scaling(envoy_bin, endpoint_port, workdir, selected):
    scenarios = [s for s in CONCURRENCY_SCENARIOS if s in selected]
    results = {}
    for rep in range(run.REPS):
        for scenario in scenarios:
            for workers in (1, 2):
                envoy = run.Envoy(envoy_bin, scenario, endpoint_port, workdir, concurrency=workers)
                try:
                    run.check(envoy, scenario)
                    for body, size in CONCURRENCY_CASES:
                        m = run.measure(envoy, "HTTP/1.1", size, workdir, SCALING_DURATION)
                        key = f"{body}|{workers}"
                        results.setdefault(scenario, {}).setdefault(key, []).append(m)
                        print(
                            f"bench: workers round {rep + 1}/{run.REPS} {scenario:14} {body:11} "
                            f"x{workers} {m['rps']:8.0f} req/s {m['cpu_us_per_req']:6.1f} us CPU/req",
                            flush=True,
                        )
                finally:
                    envoy.stop()
    return {
        scenario: {key: run.median_of(ms) for key, ms in by_key.items()}
        for scenario, by_key in results.items()
    }


def dso_group(dso):
    if dso.startswith("[JIT]"):
        return "wasm"
    if dso == "envoy":
        return "envoy"
    if dso.startswith("[kernel"):
        return "kernel"
    return "other"


def cpu_split(envoy_bin, endpoint_port, workdir, selected):
    """CPU µs/req of a GET over HTTP/1.1, split by where perf saw it."""
    perf = shutil.which("perf")
    if not perf:
        return {}
    out = {}
    for scenario in (s for s in SPLIT_SCENARIOS if s in selected):
        envoy = run.Envoy(envoy_bin, scenario, endpoint_port, workdir)
        data = Path(tempfile.mkstemp(dir=workdir, suffix=".perf")[1])
        try:
            run.check(envoy, scenario)
            run.h2load(envoy.url(), "HTTP/1.1", 0, workdir, duration=1)
            recorder = subprocess.Popen(
                [perf, "record", "-q", "-F", "999", "-o", str(data), "-p", str(envoy.proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            m = run.measure(envoy, "HTTP/1.1", 0, workdir, SCALING_DURATION)
            recorder.send_signal(2)
            recorder.wait(timeout=60)
        finally:
            envoy.stop()
        report = subprocess.run(
            [perf, "report", "-i", str(data), "--sort", "dso", "--stdio"],
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
        data.unlink(missing_ok=True)
        shares = {}
        for line in report.splitlines():
            found = re.match(r"\s*([\d.]+)%\s+(.+?)\s*$", line)
            if found:
                group = dso_group(found.group(2))
                shares[group] = shares.get(group, 0.0) + float(found.group(1)) / 100
        if not shares:
            continue
        out[scenario] = {
            "cpu_us_per_req": m["cpu_us_per_req"],
            "us": {g: share * m["cpu_us_per_req"] for g, share in shares.items()},
        }
        print(
            f"bench: split {scenario:14} "
            + "  ".join(f"{g} {v:.1f}" for g, v in out[scenario]["us"].items())
            + " us/req",
            flush=True,
        )
    return out


def sha256_in_envoy(envoy_bin, workdir):
    """Median hashing time of SHA_BYTES inside Envoy's V8, per round."""
    scenario = "probe-sha256"
    run.SCENARIOS[scenario] = (
        "probe: sha256",
        lambda: [run.wasm_filter("bench_probe.wasm", f"sha256 {SHA_BYTES}", "probe")],
        "",
        None,
    )
    medians = []
    for _ in range(max(run.REPS, 3)):
        envoy = run.Envoy(envoy_bin, scenario, 1, workdir)
        try:
            ns = []
            for _ in range(60):
                with urllib.request.urlopen(envoy.url(), timeout=10) as r:
                    ns.append(int(r.headers["x-probe-ns"]))
            medians.append(statistics.median(ns[10:]))
        finally:
            envoy.stop()
    return medians


def native_sha256(workdir):
    """MB/s of native SHA-256 on this machine: coreutils (portable C) and
    OpenSSL with and without the SHA extensions."""
    out = {}
    data = workdir / "sha-input"
    data.write_bytes(b"x" * (64 * 2**20))
    if shutil.which("sha256sum"):
        best = None
        for _ in range(3):
            t0 = time.monotonic()
            subprocess.run(["sha256sum", str(data)], capture_output=True, check=True)
            elapsed = time.monotonic() - t0
            best = min(best, elapsed) if best else elapsed
        out["coreutils sha256sum (portable C)"] = 64 * 2**20 / best / 1e6
    data.unlink()
    if shutil.which("openssl"):
        for label, env in [
            ("OpenSSL, SHA extensions (SHA-NI)", {}),
            ("OpenSSL, SHA extensions off (AVX2 assembly)", {"OPENSSL_ia32cap": ":~0x20000000"}),
        ]:
            r = subprocess.run(
                ["openssl", "speed", "-bytes", str(SHA_BYTES), "-seconds", "2", "sha256"],
                capture_output=True,
                text=True,
                env=dict(os.environ, **env),
            )
            found = re.search(r"^sha256\s+([\d.]+)k", r.stdout, re.M)
            if found:
                out[label] = float(found.group(1)) * 1000 / 1e6
    return out


def sha256_speed(envoy_bin, workdir):
    medians = sha256_in_envoy(envoy_bin, workdir)
    return {
        "bytes": SHA_BYTES,
        "envoy_round_medians_us": [m / 1000 for m in medians],
        "envoy_mb_s": SHA_BYTES / min(medians) * 1000,
        "native_mb_s": native_sha256(workdir),
    }


def all_phases(envoy_bin, endpoint_port, workdir, selected):
    if os.environ.get("BENCH_SCALING", "1") == "0":
        return {}
    out = {}
    print("bench: SHA-256 inside Envoy ...", flush=True)
    out["sha256"] = sha256_speed(envoy_bin, workdir)
    out["cpu_split"] = cpu_split(envoy_bin, endpoint_port, workdir, selected)
    out["routes"] = route_scaling(envoy_bin, endpoint_port, workdir)
    out["bodies"] = body_scaling(envoy_bin, endpoint_port, workdir, selected)
    out["concurrency"] = concurrency_scaling(envoy_bin, endpoint_port, workdir, selected)
    return out
