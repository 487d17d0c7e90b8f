"""The rendered nginx.conf, run by Debian's nginx on loopback in front of a test app.

A test CA stands in for Cloudflare's origin-pull CA and a throw-away certificate for the
Origin CA certificate. 127.0.0.1 stands in for Cloudflare's ranges; requests from
127.0.0.2 play a client that reached the port without going through Cloudflare.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from leanstack.host.params import HostParams
from leanstack.host.render import ORIGIN_PULL_CA_PEM, render_nginx_conf
from support.nginx_harness import (
    BIG_HTML,
    Pki,
    RunningNginx,
    TestUpstream,
    client_context,
    loopback_paths,
    nginx_check,
    request,
)
from support.ports import free_port
from tests.host.helpers import HOST, OTHER_HOST

TRUSTED_EDGE = "127.0.0.1"
UNTRUSTED_SOURCE = "127.0.0.2"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _params(app_port: int, **changes: object) -> HostParams:
    base = HostParams(
        stack="test",
        region="eu-west-1",
        hostnames=(HOST, OTHER_HOST),
        app_port=app_port,
        cloudflare_ipv4_cidrs=(f"{TRUSTED_EDGE}/32", "198.51.100.0/24"),
        cloudflare_ipv6_cidrs=("2400:cb00::/32",),
        max_body_mb=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Stack:
    nginx: RunningNginx
    upstream: TestUpstream
    pki: Pki

    @property
    def port(self) -> int:
        return self.nginx.paths.listen_port

    def edge(self) -> ssl.SSLContext:
        """What Cloudflare's edge presents: the origin-pull client certificate."""
        return client_context(self.pki, client_cert=self.pki.client_cert, client_key=self.pki.client_key)


@pytest.fixture(scope="module")
def stack(nginx: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("nginx")
    with TestUpstream() as upstream:
        running = RunningNginx(
            nginx,
            _params(upstream.port),
            loopback_paths(directory, free_port()),
            directory,
            client_ca=pki.pull_ca,
            origin_cert=pki.origin_cert,
            origin_key=pki.origin_key,
        )
        with running:
            yield Stack(running, upstream, pki)


def test_real_host_config_with_cloudflares_ca_passes_nginx_t(nginx: str, pki: Pki, tmp_path: Path) -> None:
    # The embedded origin-pull CA itself must load in nginx, not only the test CA.
    real_ca = tmp_path / "cloudflare-origin-pull-ca.pem"
    real_ca.write_text(ORIGIN_PULL_CA_PEM, encoding="ascii")
    running = RunningNginx(
        nginx,
        _params(8000),
        loopback_paths(tmp_path, free_port()),
        tmp_path,
        client_ca=real_ca,
        origin_cert=pki.origin_cert,
        origin_key=pki.origin_key,
    )
    running.write()
    checked = nginx_check(nginx, running.conf)
    assert checked.returncode == 0, checked.stderr


def test_nginx_t_fails_when_the_origin_certificate_is_missing(nginx: str, pki: Pki, tmp_path: Path) -> None:
    # Shows `nginx -t` is a real check here: the same config without its key fails.
    running = RunningNginx(
        nginx,
        _params(8000),
        loopback_paths(tmp_path, free_port()),
        tmp_path,
        client_ca=pki.pull_ca,
        origin_cert=pki.origin_cert,
    )
    running.write()
    checked = nginx_check(nginx, running.conf)
    assert checked.returncode != 0
    assert "origin.key" in checked.stderr


def test_edge_request_is_proxied_with_real_client_ip_and_request_id(stack: Stack) -> None:
    response = request(
        stack.port,
        "/hello?x=1",
        host=HOST,
        context=stack.edge(),
        headers={"CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "10.9.9.9", "CF-IPCountry": "GB"},
    )
    assert response.status == 200
    request_id = response.header("X-Request-ID") or ""
    assert REQUEST_ID.match(request_id), request_id
    seen = stack.upstream.find(request_id)
    assert seen is not None, "the app did not see the request id nginx returned"
    assert seen.path == "/hello?x=1"
    assert seen.headers["X-Real-IP"] == "203.0.113.7"
    # Replaced, not appended to: the client's own X-Forwarded-For is not believed.
    assert seen.headers["X-Forwarded-For"] == "203.0.113.7"
    assert seen.headers["X-Forwarded-Proto"] == "https"
    assert seen.headers["Host"] == HOST
    assert seen.headers["X-Forwarded-Host"] == HOST
    # Cloudflare's own headers reach the app as sent (the README lists what the app receives).
    assert (seen.headers["CF-Connecting-IP"], seen.headers["CF-IPCountry"]) == ("203.0.113.7", "GB")


def test_callers_request_id_is_kept_when_it_is_a_plain_token(stack: Stack) -> None:
    kept = request(stack.port, "/", host=HOST, context=stack.edge(), headers={"X-Request-ID": "trace-42.abc"})
    assert kept.header("X-Request-ID") == "trace-42.abc"
    assert stack.upstream.find("trace-42.abc") is not None

    odd = request(stack.port, "/", host=HOST, context=stack.edge(), headers={"X-Request-ID": 'a"b c'})
    minted = odd.header("X-Request-ID") or ""
    assert REQUEST_ID.match(minted), minted
    assert stack.upstream.find(minted) is not None


def test_cf_connecting_ip_from_an_untrusted_source_is_ignored(stack: Stack) -> None:
    response = request(
        stack.port,
        "/",
        host=HOST,
        context=stack.edge(),
        headers={"CF-Connecting-IP": "203.0.113.99"},
        source=UNTRUSTED_SOURCE,
    )
    assert response.status == 200
    seen = stack.upstream.find(response.header("X-Request-ID") or "")
    assert seen is not None
    assert seen.headers["X-Real-IP"] == UNTRUSTED_SOURCE
    assert seen.headers["X-Forwarded-For"] == UNTRUSTED_SOURCE


def test_request_without_client_certificate_is_refused(stack: Stack) -> None:
    before = stack.upstream.count()
    response = request(stack.port, "/", host=HOST, context=client_context(stack.pki))
    assert response.status == 400
    assert b"could not be accepted" in response.body
    assert stack.upstream.count() == before, "a request without the client certificate reached the app"


def test_client_certificate_from_another_ca_is_refused(stack: Stack) -> None:
    before = stack.upstream.count()
    context = client_context(stack.pki, client_cert=stack.pki.rogue_client_cert, client_key=stack.pki.rogue_client_key)
    response = request(stack.port, "/", host=HOST, context=context)
    assert response.status == 400
    assert b"could not be accepted" in response.body
    assert stack.upstream.count() == before


def test_unknown_server_name_is_refused_at_the_handshake(stack: Stack) -> None:
    with pytest.raises(ssl.SSLError):
        request(stack.port, "/", host="evil.example", sni="evil.example", context=stack.edge())
    # Straight to the IP: Python sends no SNI for an IP literal.
    context = stack.edge()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ssl.SSLError):
        request(stack.port, "/", host="127.0.0.1", context=context)


def test_unknown_host_header_is_not_proxied(stack: Stack) -> None:
    before = stack.upstream.count()
    # A valid SNI but another Host: the default server answers, with 444 (close, no reply).
    with pytest.raises(http.client.RemoteDisconnected):
        request(stack.port, "/", host="evil.example", sni=HOST, context=stack.edge())
    assert stack.upstream.count() == before


def test_health_path_passes_through_to_the_app(stack: Stack) -> None:
    response = request(stack.port, "/healthz", host=HOST, context=stack.edge())
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/healthz"
    assert stack.upstream.find(response.header("X-Request-ID") or "") is not None


def test_security_headers_and_no_version_or_app_internals(stack: Stack) -> None:
    response = request(stack.port, "/", host=HOST, context=stack.edge())
    assert response.header("Strict-Transport-Security") == "max-age=31536000"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("X-Frame-Options") == "SAMEORIGIN"
    assert response.header("Server") == "nginx", "server_tokens off leaves the bare name only"
    assert response.header("X-Powered-By") is None
    assert len(response.headers.get_all("X-Request-ID") or []) == 1


def test_gzip_for_text_but_not_for_images(stack: Stack) -> None:
    text = request(stack.port, "/big.html", host=HOST, context=stack.edge(), headers={"Accept-Encoding": "gzip"})
    assert text.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (text.header("Vary") or "")
    assert gzip.decompress(text.body) == BIG_HTML
    assert len(text.body) < len(BIG_HTML) / 4

    image = request(stack.port, "/logo.png", host=HOST, context=stack.edge(), headers={"Accept-Encoding": "gzip"})
    assert image.status == 200
    assert image.header("Content-Encoding") is None


IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("path", "immutable"),
    [
        ("/assets/app.3f9a1c2b.css", True),
        ("/assets/index-B4x9z2Qa.css", True),
        ("/_next/static/chunks/main-0123456789abcdef.css", True),
        ("/assets/app.css", False),
        ("/fonts/roboto-condensed.css", False),
        ("/notfound.3f9a1c2b.js", False),
    ],
)
def test_long_cache_only_for_fingerprinted_static_files(stack: Stack, path: str, immutable: bool) -> None:
    # The app sends no Cache-Control: the decision is nginx's.
    response = request(stack.port, path, host=HOST, context=stack.edge(), headers={"X-Test-Cache-Control": ""})
    cache_controls = response.headers.get_all("Cache-Control") or []
    if immutable:
        assert response.status == 200
        assert cache_controls == [IMMUTABLE]
        assert response.header("X-Content-Type-Options") == "nosniff"
        assert response.header("X-Powered-By") is None
    elif response.status == 200:
        assert cache_controls == []
    else:
        assert response.status == 404
        assert cache_controls == []


@pytest.mark.parametrize(
    ("status", "app_cache_control", "expected"),
    [
        # A per-user file under a fingerprint-like name: the app's word must reach Cloudflare.
        (200, "private, no-store", ["private, no-store"]),
        (200, "public, max-age=60", ["public, max-age=60"]),
        (404, "no-store", ["no-store"]),
        # The app left it to nginx: a year only for a success, nothing for anything else.
        (200, "", [IMMUTABLE]),
        (206, "", [IMMUTABLE]),
        (304, "", [IMMUTABLE]),
        (301, "", []),
        (302, "", []),
        (404, "", []),
        (500, "", []),
    ],
)
def test_the_apps_cache_control_wins_on_fingerprinted_paths(
    stack: Stack, status: int, app_cache_control: str, expected: list[str]
) -> None:
    response = request(
        stack.port,
        "/assets/user-report.3f9a1c2b.png",
        host=HOST,
        context=stack.edge(),
        headers={"X-Test-Status": str(status), "X-Test-Cache-Control": app_cache_control},
    )
    assert response.status == status
    assert (response.headers.get_all("Cache-Control") or []) == expected
    # The security headers stay on every answer of the location.
    assert response.header("X-Content-Type-Options") == "nosniff"


def test_body_over_the_limit_gets_413_and_the_refusal_page(stack: Stack) -> None:
    before = stack.upstream.count()
    big = b"x" * (1024 * 1024 + 1)
    response = request(stack.port, "/upload", host=HOST, context=stack.edge(), method="POST", body=big)
    assert response.status == 413
    assert b"could not be accepted" in response.body
    assert b"nginx" not in response.body.lower()
    assert stack.upstream.count() == before
    small = request(stack.port, "/upload", host=HOST, context=stack.edge(), method="POST", body=b"y" * 1000)
    assert small.status == 200


def test_json_access_log_line_carries_the_fields(stack: Stack) -> None:
    response = request(
        stack.port,
        "/logged?q=1",
        host=HOST,
        context=stack.edge(),
        headers={
            "CF-Connecting-IP": "203.0.113.8",
            "User-Agent": 'probe "quoted"\\ agent',
            "CF-Ray": "8abc-LHR",
        },
    )
    request_id = response.header("X-Request-ID") or ""
    entries = stack.nginx.log_entries(request_id)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["client_ip"] == "203.0.113.8"
    assert entry["method"] == "GET"
    assert entry["uri"] == "/logged?q=1"
    assert entry["status"] == 200 and isinstance(entry["status"], int)
    assert entry["bytes"] == len(response.body)
    assert isinstance(entry["request_time"], int | float)
    assert float(entry["upstream_response_time"]) >= 0
    assert entry["upstream_status"] == "200"
    assert entry["host"] == HOST
    assert entry["user_agent"] == 'probe "quoted"\\ agent'
    assert entry["cf_ray"] == "8abc-LHR"
    assert entry["tls_protocol"].startswith("TLSv1.")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", entry["time"])


def test_json_access_log_line_is_flushed_while_nginx_keeps_running(stack: Stack) -> None:
    # The log is buffered (flush=1s): the line must reach the file by the timer alone, with
    # nginx neither stopped nor reloaded, as the CloudWatch agent tailing it needs.
    started = time.monotonic()
    response = request(stack.port, "/flushed", host=HOST, context=stack.edge())
    entries = stack.nginx.log_entries(response.header("X-Request-ID") or "", timeout=5.0)
    waited = time.monotonic() - started
    assert stack.nginx.process is not None and stack.nginx.process.poll() is None
    assert len(entries) == 1 and entries[0]["uri"] == "/flushed", entries
    assert waited < 3.5, f"the line took {waited:.1f} s to reach the file"


def test_client_connection_outlives_a_thousand_requests(stack: Stack) -> None:
    # nginx's default keepalive_requests (1000) would close Cloudflare's connection, and cost
    # a new TLS handshake, every 1000 requests; the config allows 10000.
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    connection = http.client.HTTPConnection(HOST, stack.port, timeout=10)
    connection.sock = stack.edge().wrap_socket(sock, server_hostname=HOST)
    try:
        for number in range(1, 1101):
            connection.request("HEAD", "/ka-long", headers={"Host": HOST})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close, f"nginx closed the connection after {number} requests"
    finally:
        connection.close()


def test_upstream_connections_are_kept_alive(stack: Stack) -> None:
    connections_before = stack.upstream.connections
    requests_before = stack.upstream.count()
    for _ in range(20):
        # Each request on a new client connection: only nginx's side can reuse anything.
        assert request(stack.port, "/ka", host=HOST, context=stack.edge()).status == 200
    assert stack.upstream.count() - requests_before == 20
    new_connections = stack.upstream.connections - connections_before
    # One worker process: everything after the first request rides one idle connection.
    assert new_connections <= 2, f"{new_connections} upstream connections for 20 requests"


def test_app_down_gives_the_502_page_without_internals(nginx: str, pki: Pki, tmp_path: Path) -> None:
    dead_port = free_port()  # nothing listens there
    with RunningNginx(
        nginx,
        _params(dead_port),
        loopback_paths(tmp_path, free_port()),
        tmp_path,
        client_ca=pki.pull_ca,
        origin_cert=pki.origin_cert,
        origin_key=pki.origin_key,
    ) as running:
        edge = client_context(pki, client_cert=pki.client_cert, client_key=pki.client_key)
        response = request(running.paths.listen_port, "/anything", host=HOST, context=edge)
        health = request(running.paths.listen_port, "/healthz", host=HOST, context=edge)
        log = running.log_entries(response.header("X-Request-ID") or "")
    assert response.status == 502
    assert health.status == 502
    body = response.body.decode()
    assert "right back" in body
    for internal in ("nginx", "127.0.0.1", str(dead_port), "upstream", "leanstack_app"):
        assert internal not in body.lower(), internal
    assert response.header("Server") == "nginx"
    assert response.header("Cache-Control") == "no-store"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert log and log[0]["status"] == 502 and log[0]["upstream_status"] == "502"


def test_hung_app_gives_504_on_the_health_path_within_its_short_timeout(nginx: str, pki: Pki, tmp_path: Path) -> None:
    # An app that accepts connections and never answers.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with RunningNginx(
            nginx,
            _params(listener.getsockname()[1]),
            loopback_paths(tmp_path, free_port()),
            tmp_path,
            client_ca=pki.pull_ca,
            origin_cert=pki.origin_cert,
            origin_key=pki.origin_key,
        ) as running:
            edge = client_context(pki, client_cert=pki.client_cert, client_key=pki.client_key)
            started = time.monotonic()
            response = request(running.paths.listen_port, "/healthz", host=HOST, context=edge, timeout=30)
            waited = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()
    assert response.status == 504
    assert "right back" in response.body.decode()
    assert 4.5 <= waited < 15, waited


def test_without_cdn_no_client_certificate_and_no_trusted_header(nginx: str, pki: Pki, tmp_path: Path) -> None:
    with TestUpstream() as upstream:
        params = _params(
            upstream.port,
            cdn_proxied=False,
            cloudflare_ipv4_cidrs=(),
            cloudflare_ipv6_cidrs=(),
            hsts_max_age_seconds=0,
        )
        with RunningNginx(
            nginx,
            params,
            loopback_paths(tmp_path, free_port()),
            tmp_path,
            origin_cert=pki.origin_cert,
            origin_key=pki.origin_key,
        ) as running:
            response = request(
                running.paths.listen_port,
                "/",
                host=HOST,
                context=client_context(pki),
                headers={"CF-Connecting-IP": "203.0.113.9"},
            )
        assert response.status == 200
        assert response.header("Strict-Transport-Security") is None
        seen = upstream.find(response.header("X-Request-ID") or "")
        assert seen is not None
        assert seen.headers["X-Real-IP"] == TRUSTED_EDGE
        assert "CF-Connecting-IP" not in seen.headers


def test_rendered_config_names_no_cloudflare_trust_without_cdn() -> None:
    text = render_nginx_conf(_params(8000, cdn_proxied=False, cloudflare_ipv4_cidrs=()))
    assert "ssl_verify_client" not in text
    assert "set_real_ip_from" not in text
