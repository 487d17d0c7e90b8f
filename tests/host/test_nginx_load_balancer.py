"""The rendered nginx.conf in behind-the-load-balancer mode (scale mode), run by Debian's nginx.

The load balancer verifies Cloudflare's client certificate itself and connects to the hosts
without SNI and without a client certificate; its health check's Host header is the host's
IP address. Here 127.0.0.1/32 plays the VPC's CIDR (the load balancer's addresses) and
127.0.0.2 a peer outside it, whose CF-Connecting-IP must not be believed.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from leanstack.host.params import HostParams
from leanstack.host.render import host_files, render_nginx_conf
from support.nginx_harness import (
    BIG_HTML,
    Pki,
    Response,
    RunningNginx,
    TestUpstream,
    client_context,
    load_balancer_context,
    loopback_paths,
    request,
)
from support.ports import free_port
from tests.host.helpers import HOST, OTHER_HOST

LOAD_BALANCER = "127.0.0.1"
OUTSIDE_THE_VPC = "127.0.0.2"
# What the target group's health check sends as Host: the target's private address.
TARGET_IP = "10.20.0.37"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _params(app_port: int, **changes: object) -> HostParams:
    base = HostParams(
        stack="test",
        region="eu-west-1",
        hostnames=(HOST, OTHER_HOST),
        app_port=app_port,
        # Cloudflare's ranges as the stack passes them; behind the load balancer they must not matter.
        cloudflare_ipv4_cidrs=(f"{OUTSIDE_THE_VPC}/32", "198.51.100.0/24"),
        cloudflare_ipv6_cidrs=("2400:cb00::/32",),
        behind_load_balancer=True,
        load_balancer_cidrs=(f"{LOAD_BALANCER}/32",),
        max_body_mb=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def from_load_balancer(port: int, pki: Pki, path: str, **kwargs: Any) -> Response:
    """A request as the load balancer sends it: TLS without SNI and without a client certificate."""
    return request(port, path, context=load_balancer_context(pki), send_sni=False, **kwargs)


@dataclass
class Behind:
    nginx: RunningNginx
    upstream: TestUpstream
    pki: Pki

    @property
    def port(self) -> int:
        return self.nginx.paths.listen_port

    def request(self, path: str, **kwargs: Any) -> Response:
        return from_load_balancer(self.port, self.pki, path, **kwargs)

    def seen(self, response_request_id: str | None) -> dict[str, str]:
        recorded = self.upstream.find(response_request_id or "")
        assert recorded is not None, "the request did not reach the app"
        return recorded.headers


def _run(nginx: str, pki: Pki, directory: Path, params: HostParams) -> RunningNginx:
    # No client CA file: in this mode the config must not name one, and nginx -t would fail if it did.
    return RunningNginx(
        nginx,
        params,
        loopback_paths(directory, free_port()),
        directory,
        origin_cert=pki.origin_cert,
        origin_key=pki.origin_key,
    )


@pytest.fixture(scope="module")
def behind(nginx: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Behind]:
    directory = tmp_path_factory.mktemp("nginx-lb")
    with TestUpstream() as upstream, _run(nginx, pki, directory, _params(upstream.port)) as running:
        yield Behind(running, upstream, pki)


def test_health_check_without_sni_client_certificate_or_hostname_reaches_the_app(behind: Behind) -> None:
    # As the target group's health check: no SNI, no client certificate, Host is the host's IP.
    # The context trusts only the origin certificate, so the handshake also proves nginx served it.
    response = behind.request("/healthz", host=TARGET_IP)
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/healthz"
    assert behind.seen(response.header("X-Request-ID"))["Host"] == TARGET_IP


def test_users_request_for_the_stack_hostname_is_proxied_without_sni(behind: Behind) -> None:
    response = behind.request("/shop?page=2", host=HOST)
    assert response.status == 200
    headers = behind.seen(response.header("X-Request-ID"))
    assert headers["Host"] == HOST
    assert headers["X-Forwarded-Proto"] == "https"
    other = behind.request("/", host=OTHER_HOST)
    assert other.status == 200


def test_cf_connecting_ip_from_the_load_balancer_is_the_client(behind: Behind) -> None:
    response = behind.request(
        "/who",
        host=HOST,
        # The load balancer's own X-Forwarded-For ends with Cloudflare's edge: not the client.
        headers={"CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "198.51.100.9, 162.158.1.2"},
    )
    assert response.status == 200
    headers = behind.seen(response.header("X-Request-ID"))
    assert headers["X-Real-IP"] == "203.0.113.7"
    assert headers["X-Forwarded-For"] == "203.0.113.7"
    [entry] = behind.nginx.log_entries(response.header("X-Request-ID") or "")
    assert entry["client_ip"] == "203.0.113.7"


def test_cf_connecting_ip_from_outside_the_vpc_is_ignored(behind: Behind) -> None:
    # 127.0.0.2 is in the Cloudflare ranges passed in: behind the load balancer they are not trusted.
    response = behind.request(
        "/who",
        host=HOST,
        headers={"CF-Connecting-IP": "203.0.113.66"},
        source=OUTSIDE_THE_VPC,
    )
    assert response.status == 200
    headers = behind.seen(response.header("X-Request-ID"))
    assert headers["X-Real-IP"] == OUTSIDE_THE_VPC
    assert headers["X-Forwarded-For"] == OUTSIDE_THE_VPC
    [entry] = behind.nginx.log_entries(response.header("X-Request-ID") or "")
    assert entry["client_ip"] == OUTSIDE_THE_VPC


def test_another_hostname_gets_421_and_the_refusal_page_not_the_app(behind: Behind) -> None:
    before = behind.upstream.count()
    for path in ("/", "/assets/app.3f9a1c2b.js"):
        response = behind.request(path, host="evil.example")
        assert response.status == 421, path
        assert b"could not be accepted" in response.body
        assert response.header("X-Content-Type-Options") == "nosniff"
    # The health path only answers on every name; its neighbours do not.
    near = behind.request("/healthz/x", host=TARGET_IP)
    assert near.status == 421
    assert behind.upstream.count() == before


def test_sni_and_a_client_certificate_are_still_accepted(behind: Behind) -> None:
    # Nothing here depends on what the load balancer leaves out: a client that sends both is served too.
    edge = client_context(behind.pki, client_cert=behind.pki.client_cert, client_key=behind.pki.client_key)
    assert request(behind.port, "/", host=HOST, context=edge).status == 200


def test_headers_gzip_request_id_and_log_are_kept(behind: Behind) -> None:
    response = behind.request(
        "/big.html",
        host=HOST,
        headers={"Accept-Encoding": "gzip", "X-Request-ID": "trace-lb-1", "CF-Ray": "8abc-FRA"},
    )
    assert response.status == 200
    assert response.header("X-Request-ID") == "trace-lb-1"
    assert response.header("Strict-Transport-Security") == "max-age=31536000"
    assert response.header("X-Frame-Options") == "SAMEORIGIN"
    assert response.header("X-Powered-By") is None
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == BIG_HTML
    [entry] = behind.nginx.log_entries("trace-lb-1")
    assert (entry["status"], entry["host"], entry["cf_ray"]) == (200, HOST, "8abc-FRA")
    assert entry["tls_protocol"].startswith("TLSv1.")
    minted = behind.request("/", host=HOST).header("X-Request-ID")
    assert REQUEST_ID.match(minted or ""), minted


def test_app_down_gives_the_health_check_the_502_page(nginx: str, pki: Pki, tmp_path: Path) -> None:
    # The health path on the host's IP goes through nginx's error page too (an internal redirect
    # that the Host check must let through): the load balancer sees a 502, the host is unhealthy.
    with _run(nginx, pki, tmp_path, _params(free_port())) as running:
        response = from_load_balancer(running.paths.listen_port, pki, "/healthz", host=TARGET_IP)
    assert response.status == 502
    assert "right back" in response.body.decode()


def test_without_cdn_the_load_balancers_last_forwarded_for_entry_is_the_client(
    nginx: str, pki: Pki, tmp_path: Path
) -> None:
    params = _params(0, cdn_proxied=False, cloudflare_ipv4_cidrs=(), cloudflare_ipv6_cidrs=())
    with TestUpstream() as upstream:
        with _run(nginx, pki, tmp_path, replace(params, app_port=upstream.port)) as running:
            port = running.paths.listen_port
            # The client wrote the first entry itself; the load balancer appended the second.
            forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5", "CF-Connecting-IP": "192.0.2.1"}
            trusted = from_load_balancer(port, pki, "/", host=HOST, headers=forged)
            outside = from_load_balancer(port, pki, "/", host=HOST, headers=forged, source=OUTSIDE_THE_VPC)
        seen = upstream.find(trusted.header("X-Request-ID") or "")
        assert seen is not None
        assert seen.headers["X-Real-IP"] == "203.0.113.5"
        assert seen.headers["X-Forwarded-For"] == "203.0.113.5"
        # Without Cloudflare in front, this header can only be forged.
        assert "CF-Connecting-IP" not in seen.headers
        ignored = upstream.find(outside.header("X-Request-ID") or "")
        assert ignored is not None and ignored.headers["X-Real-IP"] == OUTSIDE_THE_VPC


def test_rendered_config_asks_no_client_certificate_and_rejects_no_handshake() -> None:
    text = render_nginx_conf(_params(8000))
    for absent in ("ssl_verify_client", "ssl_client_certificate", "ssl_reject_handshake", "return 444"):
        assert absent not in text, absent
    assert "listen 443 ssl default_server;" in text
    # Trust moves from Cloudflare's ranges to the load balancer's.
    assert "set_real_ip_from 127.0.0.1/32;" in text and "198.51.100.0/24" not in text
    # The host no longer needs the origin-pull CA: the load balancer's trust store holds it.
    assert not any(f.path.endswith("cloudflare-origin-pull-ca.pem") for f in host_files(_params(8000)))


def test_maintenance_keeps_the_load_balancers_health_check_answered(nginx: str, pki: Pki, tmp_path: Path) -> None:
    # Issue 21, item 6: with the page on, a 503 on the health check would have every host
    # replaced about 45 s later. The load balancer's check (the host's IP as Host) is answered
    # by nginx itself, even while the app is down for the switch; users still get the page.
    with _run(nginx, pki, tmp_path, _params(free_port())) as running:
        port = running.paths.listen_port
        page = Path(running.paths.maintenance_page)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<p>Down for maintenance</p>")
        health = from_load_balancer(port, pki, "/healthz", host=TARGET_IP)
        user = from_load_balancer(port, pki, "/", host=HOST)
        users_health = from_load_balancer(port, pki, "/healthz", host=HOST)
        page.unlink()
        after = from_load_balancer(port, pki, "/healthz", host=TARGET_IP)
    assert health.status == 200, health.body
    assert health.header("Cache-Control") == "no-store"
    assert user.status == 503 and "Down for maintenance" in user.body.decode()
    # Through the CDN (the stack's hostname) the health path tells the truth: not serving.
    assert users_health.status == 503
    # Page off: the check reaches the app again (down here, so 502).
    assert after.status == 502
