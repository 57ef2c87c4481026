#!/usr/bin/env python3
"""Streamed answers through real Envoy (issue 29): time to first byte,
throughput and Envoy's resident memory for a 100 MiB answer, in one run:

- plain Envoy proxying a chunked stream (the emulator's RESPONSE_STREAM
  Function URL, `/stream/bytes/<n>`), no filter: the baseline;
- aws-lambda in place on the same Function URL, SigV4-signed
  (`invoke_mode: RESPONSE_STREAM`, `forwarding: route`);
- aws-lambda in place on InvokeWithResponseStream: the filter decodes the
  eventstream (64 KiB PayloadChunk messages, CRCs checked) and passes the
  bytes on.

Envoy runs with one worker; each case runs BENCH_STREAM_ROUNDS times
(default 3) and the median is reported, with ratios to plain Envoy from
the same run. Resident memory is sampled every 10 ms during the transfer;
the growth is the peak minus the value before it. Writes
bench/results/streaming.json and the table between the
`<!-- bench-streaming:begin -->` markers of BENCHMARKS.md.

Usage: streaming.py ENVOY EMULATOR RESULTS_DIR
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZE = int(os.environ.get("BENCH_STREAM_BYTES", str(100 * 1024 * 1024)))
ROUNDS = int(os.environ.get("BENCH_STREAM_ROUNDS", "3"))
BEGIN, END = "<!-- bench-streaming:begin -->", "<!-- bench-streaming:end -->"
# The emulator's fixed test keys (integration/emulator/src/aws.rs).
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL_HOST = "fn1.lambda-url.us-east-1.on.aws"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(port):
    endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    return {
        "name": "functions",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "functions",
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
    }


def listener(name, port, routes, filters):
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {"virtual_hosts": [{"name": name, "domains": ["*"], "routes": routes}]},
        "http_filters": filters + [router],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def twin(name):
    return {
        "name": name,
        "match": {
            "prefix": "/",
            "headers": [{"name": "x-envoy-faas-route", "string_match": {"exact": name}}],
        },
        "route": {"cluster": "functions", "timeout": "0s"},
        "request_headers_to_remove": ["x-envoy-faas-route"],
    }


def bootstrap(plain_port, wasm_port, emulator_port, module):
    plugin = {
        "routes": {
            "url": {
                "function_uri": f"http://{URL_HOST}/",
                "strip_prefix": "/url",
                "cluster": "functions",
                "forwarding": "route",
                "invoke_mode": "RESPONSE_STREAM",
                "authorization": {"iam": {"accesskey": KEY, "secretkey": SECRET}},
            },
            "invoke": {
                "function_name": "stream-bytes",
                "endpoint": "http://lambda.us-east-1.amazonaws.com",
                "aws_key": KEY,
                "aws_secret": SECRET,
                "cluster": "functions",
                "forwarding": "route",
                "invoke_mode": "RESPONSE_STREAM",
            },
        }
    }
    wasm = {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "aws-lambda",
                "root_id": "aws-lambda",
                "allow_on_headers_stop_iteration": True,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin),
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "vm_id": "aws-lambda",
                    "code": {"local": {"filename": str(module)}},
                    "environment_variables": {
                        "key_values": {"AWS_EC2_METADATA_DISABLED": "true"}
                    },
                },
            },
        },
    }
    plain_routes = [
        {
            "match": {"prefix": "/plain/"},
            "route": {"cluster": "functions", "prefix_rewrite": "/stream/", "timeout": "0s"},
        }
    ]
    wasm_routes = [twin("url"), twin("invoke")] + [
        {"name": n, "match": {"prefix": f"/{n}"}, "route": {"cluster": "functions", "timeout": "0s"}}
        for n in ("url", "invoke")
    ]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                listener("plain", plain_port, plain_routes, []),
                listener("wasm", wasm_port, wasm_routes, [wasm]),
            ],
            "clusters": [cluster(emulator_port)],
        },
    }


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def exchange(port, method, target, body, pid):
    """One request: (ms to the first body byte, MiB/s, bytes, RSS growth in KiB)."""
    stop = threading.Event()
    peak = [rss_kib(pid)]
    before = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    head = (
        f"{method} {target} HTTP/1.1\r\nhost: bench.test\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        started = time.perf_counter()
        s.sendall(head + body)
        received = bytearray()
        first = None
        total = 0
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            if first is None:
                received += chunk
                at = received.find(b"\r\n\r\n")
                if at >= 0 and len(received) > at + 4:
                    first = time.perf_counter()
                    status = received.split(b" ", 2)[1]
                    if status != b"200":
                        raise RuntimeError(f"{target}: {bytes(received[:300])!r}")
                    total = len(received) - at - 4
            else:
                total += len(chunk)
        done = time.perf_counter()
    stop.set()
    sampler.join()
    if first is None:
        raise RuntimeError(f"{target}: no body")
    mib_s = (total / (1024 * 1024)) / (done - first)
    return (first - started) * 1000, mib_s, total, peak[0] - before


def measure(envoy_bin, emulator_bin, module):
    emulator_port, plain_port, wasm_port = free_port(), free_port(), free_port()
    emulator = subprocess.Popen(
        [emulator_bin, "--listen", f"127.0.0.1:{emulator_port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    emulator.stdout.readline()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "envoy.json"
        config.write_text(json.dumps(bootstrap(plain_port, wasm_port, emulator_port, module)))
        log = open(Path(tmp) / "envoy.log", "w")
        envoy = subprocess.Popen(
            [envoy_bin, "-c", str(config), "--concurrency", "1", "--use-dynamic-base-id",
             "--log-level", "warn"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.time() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", wasm_port), timeout=1).close()
                    socket.create_connection(("127.0.0.1", plain_port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or envoy.poll() is not None:
                        raise RuntimeError((Path(tmp) / "envoy.log").read_text()[-3000:])
                    time.sleep(0.1)
            invoke_body = json.dumps({"bytes": SIZE, "chunk": 65536}).encode()
            cases = {
                "plain Envoy, chunked Function URL stream": (
                    plain_port, "GET", f"/plain/bytes/{SIZE}", b""),
                "aws-lambda in place, RESPONSE_STREAM Function URL (SigV4)": (
                    wasm_port, "GET", f"/url/stream/bytes/{SIZE}", b""),
                "aws-lambda in place, InvokeWithResponseStream (eventstream decoded)": (
                    wasm_port, "POST", "/invoke", invoke_body),
            }
            # One warm-up each (V8 compiles the module's paths lazily).
            for port, method, target, body in cases.values():
                exchange(port, method, target, body, envoy.pid)
            results = {}
            for label, (port, method, target, body) in cases.items():
                runs = [exchange(port, method, target, body, envoy.pid) for _ in range(ROUNDS)]
                for _, _, total, _ in runs:
                    if total < SIZE:
                        raise RuntimeError(f"{label}: {total} of {SIZE} bytes")
                results[label] = {
                    "first_byte_ms": statistics.median(r[0] for r in runs),
                    "mib_per_s": statistics.median(r[1] for r in runs),
                    "rss_growth_mib": max(r[3] for r in runs) / 1024,
                }
            return results
        finally:
            envoy.terminate()
            envoy.wait(timeout=30)
            emulator.terminate()
            emulator.wait(timeout=30)


def render(results):
    base = next(iter(results.values()))
    rows = [
        f"A {SIZE // (1024 * 1024)} MiB streamed answer through Envoy 1.40 (one worker), "
        f"median of {ROUNDS} rounds after a warm-up; ratios to plain Envoy in the same run. "
        "`make bench-streaming` reproduces it (`bench/streaming.py`).",
        "",
        "| path | first byte | throughput | vs plain | Envoy RSS growth (peak) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        ratio = r["mib_per_s"] / base["mib_per_s"]
        rows.append(
            f"| {label} | {r['first_byte_ms']:.1f} ms | {r['mib_per_s']:.0f} MiB/s "
            f"| {ratio:.2f}× | {r['rss_growth_mib']:.1f} MiB |"
        )
    return "\n".join(rows)


def splice(markdown, body):
    text = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    markdown.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def main():
    envoy_bin, emulator_bin, results_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    root = Path(__file__).resolve().parent.parent
    results = measure(envoy_bin, emulator_bin, root / "dist" / "aws_lambda.wasm")
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "streaming.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    print(table)
    splice(root / "BENCHMARKS.md", table)


if __name__ == "__main__":
    main()
