"""How much the rendered nginx costs: wrk against an app directly, then through nginx.

Run from the repository root: `.venv/bin/python bench/proxy.py [--seconds 8] [--rounds 3]`.

What is measured, and why this way:
- The "app" is a second, minimal nginx that answers every request with a small fixed
  body. A Python test server would saturate long before the proxy does, and the ratio
  would then only measure Python. A fast app gives the proxy's overhead its worst case.
- The proxy is the very nginx.conf the host gets, rendered with `NginxPaths(tls=False)`:
  wrk cannot present the Authenticated Origin Pulls client certificate, so TLS is off
  and the benchmark measures proxying, headers, gzip decisions and the JSON access log,
  not the TLS handshake (Cloudflare keeps its origin connections alive, so handshakes are
  rare in production anyway).
- Everything shares this machine's cores (wrk, the proxy, the app). Each side gets one
  nginx worker and wrk one thread, so the direct and proxied runs have the same number of
  busy processes plus one, and the rounds alternate direct and proxied to spread noise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # only for require_program's skip/fail exceptions

from host.params import HostParams
from tests.host.nginx_harness import RunningNginx, free_port, loopback_paths
from tests.system import require_program

BODY = "ok " * 40  # ~120 bytes: a small JSON-sized answer, below gzip_min_length

APP_CONF = """\
worker_processes 1;
pid {dir}/app.pid;
error_log {dir}/app-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 "{body}\\n"; }}
    }}
}}
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {percentile}% latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(wrk: str, url: str, host: str, seconds: int, connections: int) -> WrkResult:
    done = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    output = done.stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if not rps or not total:
        raise RuntimeError(f"no request count in wrk output:\n{output}")
    errors = re.search(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", output, re.MULTILINE)
    return WrkResult(
        int(total.group(1)),
        float(rps.group(1)),
        _latency(output, "50"),
        _latency(output, "99"),
        errors.group(1) if errors else "",
    )


def cpu_seconds(master_pid: int) -> float:
    """User+system CPU time used so far by an nginx master's worker processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in children:
        # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


@dataclass(frozen=True)
class Measured:
    wrk: WrkResult
    # CPU microseconds per request spent by the app's and by the proxy's workers.
    app_us: float
    proxy_us: float


def measure(wrk: str, url: str, host: str, seconds: int, connections: int, app_pid: int, proxy_pid: int) -> Measured:
    app_before, proxy_before = cpu_seconds(app_pid), cpu_seconds(proxy_pid)
    result = run_wrk(wrk, url, host, seconds, connections)
    app_cpu, proxy_cpu = cpu_seconds(app_pid) - app_before, cpu_seconds(proxy_pid) - proxy_before
    return Measured(result, app_cpu / result.requests * 1e6, proxy_cpu / result.requests * 1e6)


class AppNginx:
    """The stand-in app: a one-worker nginx that returns BODY."""

    def __init__(self, nginx: str, directory: Path) -> None:
        self.port = free_port()
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        self.conf = directory / "app.conf"
        self.conf.write_text(APP_CONF.format(dir=directory, port=self.port, body=BODY), encoding="utf-8")
        self.process = subprocess.Popen(
            [
                nginx,
                "-p",
                str(directory),
                "-e",
                str(directory / "app-start.log"),
                "-c",
                str(self.conf),
                "-g",
                "daemon off;",
            ]
        )
        time.sleep(0.3)
        if self.process.poll() is not None:
            raise RuntimeError("the stand-in app nginx did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="direct/proxied pairs; medians are reported")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    try:
        nginx = require_program("nginx", "nginx", extra_dirs=("/usr/sbin",))
        wrk = require_program("wrk", "wrk")
    except (pytest.skip.Exception, pytest.fail.Exception) as missing:
        print(f"cannot run the benchmark: {missing}", file=sys.stderr)
        return 2

    host = "app.leanstack.test"
    with tempfile.TemporaryDirectory(prefix="leanstack-bench-") as temp:
        directory = Path(temp)
        app = AppNginx(nginx, directory / "app")
        try:
            params = HostParams(
                stack="bench",
                region="eu-west-1",
                hostnames=(host,),
                app_port=app.port,
                cloudflare_ipv4_cidrs=("127.0.0.1/32",),
            )
            paths = loopback_paths(directory / "proxy", free_port(), tls=False, workers="1")
            with RunningNginx(nginx, params, paths, directory / "proxy") as proxy:
                direct_url = f"http://127.0.0.1:{app.port}/"
                proxied_url = f"http://127.0.0.1:{proxy.paths.listen_port}/"
                # Warm both paths (upstream keepalive pool, page cache) before measuring.
                run_wrk(wrk, direct_url, host, 2, args.connections)
                run_wrk(wrk, proxied_url, host, 2, args.connections)
                assert proxy.process is not None
                pids = (app.process.pid, proxy.process.pid)
                direct: list[Measured] = []
                proxied: list[Measured] = []
                for _ in range(args.rounds):
                    direct.append(measure(wrk, direct_url, host, args.seconds, args.connections, *pids))
                    proxied.append(measure(wrk, proxied_url, host, args.seconds, args.connections, *pids))
                with Path(proxy.paths.access_log_path).open(encoding="utf-8") as log:
                    logged = sum(1 for _ in log)
        finally:
            app.stop()

    def median(results: list[Measured], attribute: str) -> float:
        values: list[float] = [
            getattr(result if hasattr(result, attribute) else result.wrk, attribute) for result in results
        ]
        return statistics.median(values)

    direct_rps, proxied_rps = median(direct, "requests_per_second"), median(proxied, "requests_per_second")
    ratio = proxied_rps / direct_rps
    print(f"leanstack proxy benchmark ({os.cpu_count()} CPUs, shared by wrk, proxy and app)")
    print(
        f"  wrk: 1 thread, {args.connections} keep-alive connections, "
        f"{args.seconds} s x {args.rounds} rounds; {len(BODY) + 1}-byte body"
    )
    print("  proxy: the rendered host nginx.conf over plain HTTP (wrk cannot present the origin-pull")
    print("         client certificate), 1 worker, JSON access log on; app: a 1-worker nginx")
    for label, results in (("direct ", direct), ("proxied", proxied)):
        rps, p50, p99 = (median(results, name) for name in ("requests_per_second", "p50_ms", "p99_ms"))
        print(f"  {label}: {rps:10.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        for result in results:
            if result.wrk.errors:
                print(f"  {label} errors: {result.wrk.errors}")
    print(f"  access log lines written by the proxy: {logged}")
    print(f"  throughput ratio (proxied/direct): {ratio:.1%}  (target >= 80%)")
    print(f"  added p99 latency: {median(proxied, 'p99_ms') - median(direct, 'p99_ms'):+.2f} ms")
    app_us, proxy_us = median(proxied, "app_us"), median(proxied, "proxy_us")
    print(f"  CPU per request when proxied: app {app_us:.1f} us, proxy {proxy_us:.1f} us")
    print(
        f"  so the proxy costs about {proxy_us * 1000 / 1e6:.1%} of one core per 1,000 req/s, and is not"
        f" the bottleneck in front of an app needing more than {proxy_us:.0f} us CPU per request"
    )
    # When app and proxy share the host's CPUs, proxied throughput is app/(app+proxy) of
    # direct: at least 80% whenever the app's CPU per request is at least 4x the proxy's.
    print(f"  on a CPU-bound host the 80% target holds for any app needing >= {4 * proxy_us:.0f} us CPU per request")
    if ratio < 0.8:
        print(
            "  below target: wrk, proxy and app share the same cores here, and each proxied request"
            f" costs the proxy's {proxy_us:.0f} us on top of the app's {app_us:.0f} us"
        )
    return 0


if __name__ == "__main__":
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        print("note: nginx is not installed; require_program will try apt-get", file=sys.stderr)
    sys.exit(main())
