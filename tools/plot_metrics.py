#!/usr/bin/env python3
"""`make observe-plot`: the the book's metrics plot, from a short real run.

Starts the emulator and Envoy with envoy/demo.yaml (the shipped config; only
its ports are moved to free ones and the stats flush is 1 s instead of 5 s,
so histograms move every scrape), drives a mixed load for about 45 s
(healthy calls on every filter, a phase of timeouts and unreachable
functions, a phase of oversized requests), scrapes /stats/prometheus every
second, and plots what the Grafana dashboard shows: requests per second by
route, the error ratio by outcome, and function latency percentiles.

Usage: plot_metrics.py <envoy> <faas-emulator> <output.png> [seconds]
"""

import concurrent.futures
import http.client
import math
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what}: the process exited")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def get(url, data=None, timeout=5):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(admin):
    """{(name, frozenset(labels)): value} of the envoy_faas_* samples."""
    _, body = get(f"http://127.0.0.1:{admin}/stats/prometheus")
    out = {}
    for line in body.decode().splitlines():
        m = SAMPLE.match(line)
        if not m or not m.group(1).startswith("envoy_faas_"):
            continue
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def demo_config(work, listen, admin, functions):
    text = (ROOT / "envoy" / "demo.yaml").read_text()
    text = text.replace("port_value: 10000", f"port_value: {listen}")
    text = text.replace("port_value: 9901", f"port_value: {admin}")
    text = text.replace("port_value: 8090", f"port_value: {functions}")
    text = text.replace("filename: dist/", f"filename: {ROOT}/dist/")
    path = work / "demo.yaml"
    path.write_text("stats_flush_interval: 1s\n" + text)
    return path


# (path, method, body). Six workers send the healthy mix as fast as they
# can, all along; two more send each phase's trouble, one request per
# TROUBLE_PACE seconds each (each phase lasts a third of the run).
TROUBLE_PACE = 0.02
HEALTHY = [
    ("/hello/world", "GET", None),
    ("/echo/a", "POST", b"x" * 512),
    ("/lambda/x", "GET", None),
    ("/orders/42", "POST", b'{"item": 1}'),
    ("/azure", "GET", None),
]
PHASES = [
    ("healthy", []),
    ("function trouble", [("/slow", "GET", None), ("/unreachable", "GET", None)]),
    ("oversized requests", [("/echo/big", "OVERSIZED", None)]),
]


def oversized(listen, path):
    """Announces a 7 MiB body (over the 6 MiB default limit) and waits for
    the filter's 413, which comes before any body byte is read."""
    conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
    try:
        conn.putrequest("POST", path)
        conn.putheader("content-length", str(7 * 1024 * 1024))
        conn.endheaders()
        conn.getresponse().read()
    finally:
        conn.close()


def load(listen, stop, phase_of):
    def one(i, trouble):
        while not stop.is_set():
            requests = PHASES[phase_of()][1] if trouble else HEALTHY
            if not requests:
                time.sleep(0.05)
                continue
            path, method, body = requests[i % len(requests)]
            if trouble:
                time.sleep(TROUBLE_PACE)
            else:
                i += 1
            try:
                if method == "OVERSIZED":
                    oversized(listen, path)
                else:
                    get(f"http://127.0.0.1:{listen}{path}", data=body if method == "POST" else None)
            except OSError:
                pass

    pool = concurrent.futures.ThreadPoolExecutor(8)
    return [pool.submit(one, i, i >= 6) for i in range(8)], pool


def quantile(q, buckets):
    """histogram_quantile over [(le, cumulative count)]."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return math.nan
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            span = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / span if span else 0)
        prev_le, prev_count = le, count
    return prev_le


def main():
    envoy_bin, emulator_bin, output = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 45
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    work = Path(tempfile.mkdtemp(prefix="envoy-faas-plot-"))
    listen, admin, functions = free_port(), free_port(), free_port()
    emulator = subprocess.Popen(
        [emulator_bin, "--listen", f"127.0.0.1:{functions}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    envoy = None
    stop = threading.Event()
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", functions)).close() or True,
                 "the emulator", emulator)
        config = demo_config(work, listen, admin, functions)
        envoy = subprocess.Popen(
            [envoy_bin, "-c", str(config), "--use-dynamic-base-id", "--concurrency", "1",
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=(work / "envoy.log").open("w"),
        )
        wait_for(lambda: get(f"http://127.0.0.1:{admin}/ready")[0] == 200, "Envoy", envoy)
        start = time.monotonic()
        phase_of = lambda: min(int((time.monotonic() - start) / seconds * 3), 2)  # noqa: E731
        workers, pool = load(listen, stop, phase_of)
        series = []
        previous = scrape(admin)
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            now = scrape(admin)
            series.append((time.monotonic() - start, previous, now))
            previous = now
        stop.set()
        for w in workers:
            w.result()
        pool.shutdown()
    finally:
        stop.set()
        for p in (envoy, emulator):
            if p is not None:
                p.terminate()
                p.wait()

    def per_second(name, by):
        out = defaultdict(list)
        for t, before, after in series:
            sums = defaultdict(float)
            for (n, labels), v in after.items():
                if n == name:
                    key = by(dict(labels))
                    if key is not None:
                        sums[key] += v - before.get((n, labels), 0.0)
            for key, v in sums.items():
                out[key].append((t, v))
        return out

    rps = per_second("envoy_faas_requests_total", lambda l: l["route"])
    total = defaultdict(float)
    for points in rps.values():
        for t, v in points:
            total[t] += v
    errors = per_second(
        "envoy_faas_requests_total",
        lambda l: l["outcome"] if l["fault"] != "none" else None,
    )
    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True)
    for route, points in sorted(rps.items()):
        if any(v for _, v in points):
            axes[0].plot([t for t, _ in points], [v for _, v in points], label=route)
    axes[0].set_title("requests per second by route (envoy_faas_requests_total)")
    for outcome, points in sorted(errors.items()):
        if any(v for _, v in points):
            axes[1].plot([t for t, _ in points],
                         [v / total[t] if total[t] else 0 for t, v in points], label=outcome)
    axes[1].set_title("error ratio by outcome (fault != none)")
    for route in ("hello", "orders", "slow"):
        for q, style in ((0.5, "-"), (0.99, "--")):
            xs, ys = [], []
            for t, before, after in series:
                buckets = []
                for (n, labels), v in after.items():
                    labels = dict(labels)
                    if n == "envoy_faas_function_latency_ms_bucket" and labels.get("route") == route:
                        delta = v - before.get((n, frozenset(labels.items())), 0.0)
                        buckets.append((float(labels["le"].replace("+Inf", "inf")), delta))
                value = quantile(q, buckets)
                if not math.isnan(value):
                    xs.append(t)
                    ys.append(value)
            if xs:
                axes[2].plot(xs, ys, style, label=f"{route} p{int(q * 100)}")
    axes[2].set_yscale("log")
    axes[2].set_title("function latency, ms (envoy_faas_function_latency_ms)")
    axes[2].set_xlabel("seconds")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        for i, (name, _) in enumerate(PHASES):
            ax.axvspan(seconds * i / 3, seconds * (i + 1) / 3, alpha=0.04 * (i + 1), color="grey")
    for i, (name, _) in enumerate(PHASES):
        axes[0].text(seconds * i / 3 + 0.5, 0.02, name, fontsize=8, transform=axes[0].get_xaxis_transform())
    fig.suptitle("envoy-faas demo gateway under a mixed load: what /stats/prometheus shows", fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80)
    print(f"wrote {output} ({len(series)} scrapes)")


if __name__ == "__main__":
    main()
