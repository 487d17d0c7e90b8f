"""How much the rendered nginx costs: wrk against an upstream directly, then through nginx.

Run from the repository root: `.venv/bin/python bench/proxy.py [--seconds 5] [--rounds 5]`.

Two cases, in one run:

(a) The test upstream: the small threaded HTTP/1.1 app the tests put behind nginx
    (`support.nginx_harness.TestUpstream`, answering a few hundred bytes of JSON). This
    is the case the proxy's target is about: nginx keeps >= 80% of direct throughput for
    small responses on loopback. It is run twice: (a1) with the headers a request from
    Cloudflare's edge carries, (a2) with bare requests (Host only), where the five headers
    nginx adds are most of what the upstream has to parse. The upstream echoes the request
    headers, so proxied answers are a little longer: that counts against the proxy.
(b) A stress case: a one-worker nginx answering a fixed 121-byte body, an upstream far
    cheaper than any real app. The ratio here is bounded by how much CPU the proxy needs
    per request compared with the upstream, and the output says what that bound is.

Each round measures three routes to the same upstream: direct; through a bare nginx (one
worker, `proxy_pass` over keep-alive connections and nothing else: no log, no added
headers, no request id) -- the floor any nginx configuration starts from on this machine;
and through the rendered nginx.conf. The floor separates what proxying itself costs here
(two more loopback TCP hops per request, on the CPU the upstream needs) from what the
rendered configuration's features add.

How, and why this way:
- The proxy is the very nginx.conf the host gets, rendered with `NginxPaths(tls=False)`:
  wrk cannot present the Authenticated Origin Pulls client certificate, so TLS is off and
  the benchmark measures proxying, headers, the request id, gzip decisions and the JSON
  access log, not TLS (Cloudflare keeps its origin connections alive, so handshakes are
  rare in production anyway). One worker process.
- With at least two CPUs, wrk is pinned to one and the upstream and the proxy to another
  (`taskset`): the load generator then never steals CPU from what is measured, and the
  proxy competes with the upstream for one core, as it does with the app on the host.
- Each round runs the three routes back to back, starting with a different one each time,
  to spread the noise of a shared machine; a round's ratios compare runs seconds apart, and
  the medians are reported with the range over the rounds.
- CPU per request is read from /proc (user + system time of the proxy's worker and of the
  upstream's process or workers, divided by the requests wrk completed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # only for require_program's skip/fail exceptions

from leanstack.host.params import HostParams
from support.nginx_harness import RunningNginx, TestUpstream, loopback_paths
from support.ports import free_port
from support.system import require_program

TARGET = 0.80
HOST = "app.leanstack.test"
STATIC_BODY = "ok " * 40  # + "\n": 121 bytes, below gzip_min_length
# What a request from Cloudflare's edge to the origin carries besides Host (values made up).
# No Accept-Encoding: the answers stay small and uncompressed, as the target says.
EDGE_HEADERS: tuple[str, ...] = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept: application/json",
    "Accept-Language: en-GB,en;q=0.5",
    "CF-Connecting-IP: 203.0.113.7",
    "CF-IPCountry: GB",
    "CF-Ray: 8abc1234def56789-LHR",
    'CF-Visitor: {"scheme":"https"}',
    "X-Forwarded-For: 203.0.113.7",
    "X-Forwarded-Proto: https",
)

# A one-worker nginx with nothing but `{http}` in its http block: case (b)'s static upstream,
# and the bare proxy that measures the floor.
ONE_WORKER_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
{http}
}}
"""
STATIC_HTTP = """\
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 "{body}\\n"; }}
    }}"""
# As the rendered config does it, minus everything else: HTTP/1.1 and an empty Connection
# header, so upstream connections are kept alive; the same pool size.
BARE_PROXY_HTTP = """\
    upstream app {{
        server 127.0.0.1:{upstream_port};
        keepalive 32;
        keepalive_requests 100000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""


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


def run_wrk(
    prefix: Sequence[str], wrk: str, url: str, seconds: int, connections: int, headers: Sequence[str] = ()
) -> WrkResult:
    header_args = [arg for header in (f"Host: {HOST}", *headers) for arg in ("-H", header)]
    done = subprocess.run(
        [*prefix, wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *header_args, url],
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
    errors = re.findall(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", output, re.MULTILINE)
    return WrkResult(
        int(total.group(1)),
        float(rps.group(1)),
        _latency(output, "50"),
        _latency(output, "99"),
        "; ".join(errors),
    )


def _process_cpu(pid: int) -> int:
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU time used so far by one process (all its threads)."""
    return _process_cpu(pid) / os.sysconf("SC_CLK_TCK")


def workers_cpu_seconds(master_pid: int) -> float:
    """User+system CPU time used so far by an nginx master's worker processes."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return sum(_process_cpu(int(pid)) for pid in children) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measured:
    wrk: WrkResult
    # CPU microseconds per request of the upstream and of the proxy's worker.
    upstream_us: float
    proxy_us: float


@dataclass(frozen=True)
class Pinning:
    wrk: tuple[str, ...]
    servers: tuple[str, ...]
    description: str


def pinning() -> Pinning:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return Pinning((), (), f"{len(cpus)} CPU(s) usable, no pinning: wrk, upstream and proxy share them")
    wrk_cpu, server_cpu = cpus[0], cpus[1]
    return Pinning(
        ("taskset", "-c", str(wrk_cpu)),
        ("taskset", "-c", str(server_cpu)),
        f"wrk pinned to CPU {wrk_cpu}; upstream and proxy pinned together to CPU {server_cpu}"
        f" ({len(cpus)} CPUs usable)",
    )


class OneWorkerNginx:
    """A one-worker nginx from ONE_WORKER_CONF, pinned like the upstream; stopped with stop()."""

    def __init__(self, nginx: str, directory: Path, prefix: Sequence[str], http: str) -> None:
        self.port = free_port()
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        conf = directory / "nginx.conf"
        conf.write_text(ONE_WORKER_CONF.format(dir=directory, http=http.format(port=self.port)), encoding="utf-8")
        self.process = subprocess.Popen(
            [
                *prefix,
                nginx,
                "-p",
                str(directory),
                "-e",
                str(directory / "start.log"),
                "-c",
                str(conf),
                "-g",
                "daemon off;",
            ]
        )
        wait_listening(self.port, self.process)

    def cpu_seconds(self) -> float:
        return workers_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT)


def static_nginx(nginx: str, directory: Path, prefix: Sequence[str]) -> OneWorkerNginx:
    """Case (b)'s upstream: returns STATIC_BODY."""
    return OneWorkerNginx(nginx, directory, prefix, STATIC_HTTP.replace("{body}", STATIC_BODY))


def bare_proxy(nginx: str, directory: Path, prefix: Sequence[str], upstream_port: int) -> OneWorkerNginx:
    """The floor: nginx proxying to the upstream with nothing else configured."""
    http = BARE_PROXY_HTTP.replace("{upstream_port}", str(upstream_port))
    return OneWorkerNginx(nginx, directory, prefix, http)


class PythonUpstream:
    """Case (a)'s upstream: the tests' TestUpstream, in a process of its own (pinnable, own GIL)."""

    def __init__(self, prefix: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [*prefix, sys.executable, str(Path(__file__).resolve()), "--serve-test-upstream"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # http.server prints a traceback for each connection wrk resets at the end of a run.
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            stop_process(self.process, signal.SIGTERM)
            raise RuntimeError(f"the test upstream did not start: {line!r}")
        self.port = int(line)
        wait_listening(self.port, self.process)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # EOF: the server shuts down
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop_process(self.process, signal.SIGTERM)
        if self.process.stdout is not None:
            self.process.stdout.close()


def serve_test_upstream() -> int:
    """Child mode: run a TestUpstream until stdin closes; print its port first."""
    with TestUpstream(record=False) as upstream:
        print(upstream.port, flush=True)
        sys.stdin.read()
    return 0


def wait_listening(port: int, process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the upstream on port {port} exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after 10 s")


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


DIRECT, BARE, RENDERED = "direct", "bare nginx", "rendered nginx"
ROUTES = (DIRECT, BARE, RENDERED)


@dataclass(frozen=True)
class CaseResult:
    title: str
    runs: dict[str, list[Measured]]  # by route, one per round
    logged: int
    proxied_requests: int

    def ratios(self, route: str) -> list[float]:
        """Throughput through `route` over direct throughput, round by round."""
        return [
            p.wrk.requests_per_second / d.wrk.requests_per_second
            for d, p in zip(self.runs[DIRECT], self.runs[route], strict=True)
        ]


def run_case(
    title: str,
    upstream_port: int,
    upstream_cpu: Callable[[], float],
    nginx: str,
    wrk: str,
    pin: Pinning,
    directory: Path,
    args: argparse.Namespace,
    headers: Sequence[str] = (),
) -> CaseResult:
    params = HostParams(
        stack="bench",
        region="eu-west-1",
        hostnames=(HOST,),
        app_port=upstream_port,
        # wrk connects from 127.0.0.1: it plays Cloudflare, so the real_ip rules are exercised.
        cloudflare_ipv4_cidrs=("127.0.0.1/32",),
    )
    paths = loopback_paths(directory / "rendered", free_port(), tls=False, workers="1")
    rendered = RunningNginx(nginx, params, paths, directory / "rendered", command_prefix=pin.servers)
    bare = bare_proxy(nginx, directory / "bare", pin.servers, upstream_port)
    runs: dict[str, list[Measured]] = {route: [] for route in ROUTES}
    proxied_requests = 0
    try:
        with rendered:
            assert rendered.process is not None
            rendered_pid = rendered.process.pid
            routes: dict[str, tuple[str, Callable[[], float]]] = {
                DIRECT: (f"http://127.0.0.1:{upstream_port}/", lambda: 0.0),
                BARE: (f"http://127.0.0.1:{bare.port}/", bare.cpu_seconds),
                RENDERED: (f"http://127.0.0.1:{paths.listen_port}/", lambda: workers_cpu_seconds(rendered_pid)),
            }

            def measure(route: str) -> Measured:
                url, proxy_cpu = routes[route]
                upstream_before, proxy_before = upstream_cpu(), proxy_cpu()
                result = run_wrk(pin.wrk, wrk, url, args.seconds, args.connections, headers)
                upstream_used = upstream_cpu() - upstream_before
                proxy_used = proxy_cpu() - proxy_before
                return Measured(result, upstream_used / result.requests * 1e6, proxy_used / result.requests * 1e6)

            # Warm every path (upstream keepalive pools, threads, page cache) before measuring.
            for route, (url, _) in routes.items():
                warm = run_wrk(pin.wrk, wrk, url, 2, args.connections, headers)
                if route == RENDERED:
                    proxied_requests += warm.requests
            for round_number in range(args.rounds):
                # Each round starts with a different route, so none always runs first or last.
                shift = round_number % len(ROUTES)
                for route in ROUTES[shift:] + ROUTES[:shift]:
                    runs[route].append(measure(route))
                proxied_requests += runs[RENDERED][-1].wrk.requests
    finally:
        bare.stop()
    # Counted after nginx stopped: stopping flushes the access log's buffer.
    with Path(paths.access_log_path).open(encoding="utf-8") as log:
        logged = sum(1 for _ in log)
    return CaseResult(title, runs, logged, proxied_requests)


def _spread(values: Sequence[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def verdict_text(ratios: Sequence[float]) -> str:
    """Whether the median ratio meets the target, and whether every round agrees."""
    ratio = statistics.median(ratios)
    if ratio >= TARGET:
        return "meets" if min(ratios) >= TARGET else "meets at the median, not in every round, of"
    return "misses" if max(ratios) < TARGET else "misses at the median, though some rounds reach,"


def _median_upstream_us(results: Sequence[Measured]) -> float:
    return statistics.median(r.upstream_us for r in results)


def _median_proxy_us(results: Sequence[Measured]) -> float:
    return statistics.median(r.proxy_us for r in results)


def report(case: CaseResult, *, target_case: bool) -> str:
    print(f"\n{case.title}")
    for route in ROUTES:
        results = case.runs[route]
        rps = [r.wrk.requests_per_second for r in results]
        p50 = [r.wrk.p50_ms for r in results]
        p99 = [r.wrk.p99_ms for r in results]
        print(
            f"  {route:>14}: {_spread(rps, '.0f')} req/s   p50 {_spread(p50, '.2f')} ms   p99 {_spread(p99, '.2f')} ms"
        )
        for result in results:
            if result.wrk.errors:
                print(f"  {route:>14} wrk reported: {result.wrk.errors}")
    direct = case.runs[DIRECT]
    for route in (BARE, RENDERED):
        results = case.runs[route]
        ratios = case.ratios(route)
        added_p99 = [p.wrk.p99_ms - d.wrk.p99_ms for d, p in zip(direct, results, strict=True)]
        print(
            f"  {route}: keeps {statistics.median(ratios):.1%} (rounds {min(ratios):.1%}-{max(ratios):.1%})"
            f" of direct throughput; added p99 {_spread(added_p99, '+.2f')} ms;"
            f" CPU per request: proxy {_spread([r.proxy_us for r in results], '.1f')} us,"
            f" upstream {_spread([r.upstream_us for r in results], '.1f')} us"
            f" (direct: {_spread([r.upstream_us for r in direct], '.1f')} us)"
        )
    ratios = case.ratios(RENDERED)
    ratio = statistics.median(ratios)
    verdict = verdict_text(ratios)
    bare_ratios = case.ratios(BARE)
    print(
        f"  -> the rendered nginx.conf {verdict} the >= {TARGET:.0%} target"
        + ("" if target_case else " (the target is about case (a); this case is shown for the proxy's cost)")
        + f"; a bare nginx, which does less per request than any useful configuration, keeps"
        f" {statistics.median(bare_ratios):.1%}"
    )
    direct_up = _median_upstream_us(direct)
    bare_up, bare_px = _median_upstream_us(case.runs[BARE]), _median_proxy_us(case.runs[BARE])
    up, px = _median_upstream_us(case.runs[RENDERED]), _median_proxy_us(case.runs[RENDERED])
    print(
        f"  what the rendered configuration adds over the bare one: proxy {px - bare_px:+.1f} us,"
        f" upstream {up - bare_up:+.1f} us (the headers it adds, which this upstream parses and echoes) per request"
    )
    # Upstream and proxy share one CPU: once it is the bottleneck, proxied/direct throughput is
    # (the upstream's CPU per direct request) / (its CPU per proxied request + the proxy's).
    print(
        f"  CPU-bound expectation: {direct_up:.1f}/({up:.1f}+{px:.1f}) us = {direct_up / (up + px):.1%};"
        f" {TARGET:.0%} would need an upstream costing >= {TARGET / (1 - TARGET) * (px + up - direct_up):.0f} us"
        f" per request (>= {TARGET / (1 - TARGET) * bare_px:.0f} us even behind the bare nginx)"
    )
    print(
        f"  access log: {case.logged} JSON lines for {case.proxied_requests} requests wrk completed through"
        " the rendered nginx (wrk stops with some requests in flight, which nginx still logs)"
    )
    return (
        f"{case.title.split(' ', 1)[0]} rendered {ratio:.1%} ({min(ratios):.1%}-{max(ratios):.1%}), "
        f"bare {statistics.median(bare_ratios):.1%} ({min(bare_ratios):.1%}-{max(bare_ratios):.1%}): "
        f"the rendered nginx.conf {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of direct, bare and rendered runs per case; medians are reported"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve-test-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_test_upstream:
        return serve_test_upstream()

    try:
        nginx = require_program("nginx", "nginx", extra_dirs=("/usr/sbin",))
        wrk = require_program("wrk", "wrk")
    except (pytest.skip.Exception, pytest.fail.Exception) as missing:
        print(f"cannot run the benchmark: {missing}", file=sys.stderr)
        return 2

    pin = pinning()
    print(
        "leanstack proxy benchmark: the rendered host nginx.conf (plain HTTP, 1 worker, JSON access log on)"
        " and a bare proxy_pass nginx, against the upstream directly"
    )
    print(f"  {pin.description}")
    print(
        f"  wrk: 1 thread, {args.connections} keep-alive connections, {args.seconds} s per run,"
        f" {args.rounds} rounds of direct, bare and rendered runs per case; median (min-max over rounds)"
    )
    print(f"  target: nginx keeps >= {TARGET:.0%} of direct throughput for small responses, case (a)")

    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="leanstack-bench-") as temp:
        directory = Path(temp)
        for name, title, headers in (
            (
                "a1",
                f"(a1) the test upstream (the tests' threaded Python HTTP/1.1 app, small JSON answers),"
                f" requests with an edge's {len(EDGE_HEADERS) + 1} headers -- the case the target is about",
                EDGE_HEADERS,
            ),
            (
                "a2",
                "(a2) the same upstream, bare requests (Host only): nginx's 5 added headers are then most"
                " of what the upstream parses -- also the target's case",
                (),
            ),
        ):
            python_upstream = PythonUpstream(pin.servers)
            try:
                case = run_case(
                    title,
                    python_upstream.port,
                    python_upstream.cpu_seconds,
                    nginx,
                    wrk,
                    pin,
                    directory / name,
                    args,
                    headers,
                )
            finally:
                python_upstream.stop()
            summary.append(report(case, target_case=True))

        static = static_nginx(nginx, directory / "static", pin.servers)
        try:
            case_b = run_case(
                f"(b) stress case: a 1-worker nginx answering a fixed {len(STATIC_BODY) + 1}-byte body"
                " -- far cheaper than any app, so this shows the proxy's own cost",
                static.port,
                static.cpu_seconds,
                nginx,
                wrk,
                pin,
                directory / "b",
                args,
            )
        finally:
            static.stop()
        summary.append(report(case_b, target_case=False))
    print(f"\nthroughput kept through nginx, median (range over rounds), against the >= {TARGET:.0%} target:")
    for line in summary:
        print(f"  {line} the target")
    print(
        "  the target is about (a1)/(a2), the test upstream; (b) is the stress case; the bare nginx shows"
        " what proxying alone costs on this machine"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
