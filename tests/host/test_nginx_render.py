"""The renderer refuses stack values it cannot render safely, and embeds the real
Cloudflare origin-pull CA."""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from leanstack.host.params import HostFile, HostParams
from leanstack.host.render import (
    ORIGIN_PULL_CA_PEM,
    NginxPaths,
    render_cloud_config,
    render_nginx_conf,
    render_tls_fetch_script,
    render_upstream,
)
from support.system import require_program


def _params(**changes: object) -> HostParams:
    base = HostParams(
        stack="dev",
        region="eu-west-1",
        hostnames=("example.com", "www.example.com"),
        app_port=8000,
        cloudflare_ipv4_cidrs=("173.245.48.0/20",),
        cloudflare_ipv6_cidrs=("2400:cb00::/32",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_valid_params_render() -> None:
    text = render_nginx_conf(_params())
    assert "server_name example.com www.example.com;" in text
    # The app server lives in the included file the deploy script rewrites.
    assert "include /etc/nginx/leanstack-upstream.conf;" in text
    assert "127.0.0.1:8000" not in text
    assert render_upstream(8000).splitlines()[-1] == "server 127.0.0.1:8000 max_fails=0;"
    assert "set_real_ip_from 173.245.48.0/20;" in text
    assert "set_real_ip_from 2400:cb00::/32;" in text
    assert "client_max_body_size 10m;" in text


@pytest.mark.parametrize("port", [0, 65536, True, "8000"])
def test_upstream_for_a_bad_port_is_refused(port: object) -> None:
    with pytest.raises(ValueError, match="app_port"):
        render_upstream(port)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hostname",
    [
        "example.com\nserver_name evil.com",
        "example.com\n",
        "example.com;",
        "exa mple.com",
        "*.example.com",
        "-example.com",
        "example..com",
        "example.com.",
        "exämple.com",
        "a" * 64 + ".com",
        "",
        "example.com}",
    ],
)
def test_unsafe_hostname_is_rejected(hostname: str) -> None:
    with pytest.raises(ValueError, match=r"hostnames\[1\]"):
        render_nginx_conf(_params(hostnames=("ok.example.com", hostname)))


def test_no_hostnames_and_duplicates_are_rejected() -> None:
    with pytest.raises(ValueError, match="hostnames"):
        render_nginx_conf(_params(hostnames=()))
    with pytest.raises(ValueError, match="hostnames"):
        render_nginx_conf(_params(hostnames=("a.example.com", "A.example.com")))


@pytest.mark.parametrize(
    "path",
    ["healthz", "/health z", "/h;return 200", '/h"', "/h'", "/h{", "/h}", "/h\n", "/h$x", "/h#x", ""],
)
def test_unsafe_health_path_is_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="health_path"):
        render_nginx_conf(_params(health_path=path))


@pytest.mark.parametrize("port", [0, -1, 65536, True, "8000"])
def test_app_port_out_of_range_is_rejected(port: object) -> None:
    with pytest.raises(ValueError, match="app_port"):
        render_nginx_conf(_params(app_port=port))


def test_app_port_equal_to_listen_port_is_rejected() -> None:
    with pytest.raises(ValueError, match="app_port"):
        render_nginx_conf(_params(app_port=443))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cloudflare_ipv4_cidrs", ("173.245.48.1/20",)),  # host bits set
        ("cloudflare_ipv4_cidrs", ("2400:cb00::/32",)),
        ("cloudflare_ipv4_cidrs", ("173.245.48.0/20; allow all",)),
        ("cloudflare_ipv6_cidrs", ("173.245.48.0/20",)),
        ("hsts_max_age_seconds", -1),
        ("max_body_mb", 0),
        ("region", "eu-west-1; rm -rf /"),
        ("stack", "dev\nprod"),
        ("tls_parameter_prefix", "/leanstack/dev/tls/"),
        ("tls_parameter_prefix", "/leanstack/$(reboot)/tls"),
        ("tls_parameter_prefix", "leanstack/dev/tls"),
        ("access_log_group", 'x", "evil": "y'),
        ("metrics_namespace", "AWS/EC2"),
    ],
)
def test_other_unsafe_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        render_nginx_conf(_params(**{field: value}))


def test_cdn_proxied_without_cloudflare_ranges_is_rejected() -> None:
    with pytest.raises(ValueError, match="cloudflare_ipv4_cidrs"):
        render_nginx_conf(_params(cloudflare_ipv4_cidrs=(), cloudflare_ipv6_cidrs=()))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # Trusting nobody would log the load balancer as every client.
        ({"behind_load_balancer": True}, r"load_balancer_cidrs: \(\) is not allowed: the VPC's CIDR blocks"),
        # A direct host trusting a private range would believe a forged header from anything in it.
        ({"load_balancer_cidrs": ("10.20.0.0/16",)}, "load_balancer_cidrs: .* no networks unless behind_load"),
        ({"behind_load_balancer": "yes", "load_balancer_cidrs": ("10.0.0.0/16",)}, "behind_load_balancer: 'yes'"),
        ({"behind_load_balancer": True, "load_balancer_cidrs": ("10.20.0.1/16",)}, r"load_balancer_cidrs\[0\]"),
        ({"behind_load_balancer": True, "load_balancer_cidrs": ("10.0.0.0/8;allow",)}, r"load_balancer_cidrs\[0\]"),
        ({"behind_load_balancer": True, "load_balancer_cidrs": "10.0.0.0/8"}, "load_balancer_cidrs: '10.0.0.0/8'"),
    ],
)
def test_load_balancer_mode_needs_the_load_balancers_networks(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_nginx_conf(_params(**changes))


def test_load_balancer_mode_accepts_ipv4_and_ipv6_networks_and_needs_no_cloudflare_ranges() -> None:
    text = render_nginx_conf(
        _params(
            behind_load_balancer=True,
            load_balancer_cidrs=("10.20.0.0/16", "2600:1f18:abcd::/56"),
            cloudflare_ipv4_cidrs=(),
            cloudflare_ipv6_cidrs=(),
        )
    )
    assert "set_real_ip_from 10.20.0.0/16;" in text and "set_real_ip_from 2600:1f18:abcd::/56;" in text


@pytest.mark.parametrize(
    "paths",
    [
        NginxPaths(cert_path="/etc/nginx/tls/origin.crt;"),
        NginxPaths(error_root="relative/errors"),
        NginxPaths(temp_dir="/var/lib/../../etc"),
        NginxPaths(listen_address="localhost"),
        NginxPaths(user="root; worker_processes 1"),
        NginxPaths(worker_processes="0"),
        NginxPaths(upstream_path="/etc/nginx/upstream.conf; include /etc/shadow"),
    ],
)
def test_unsafe_nginx_paths_are_rejected(paths: NginxPaths) -> None:
    with pytest.raises(ValueError, match="paths"):
        render_nginx_conf(_params(), paths=paths)


def test_extra_files_are_validated() -> None:
    with pytest.raises(ValueError, match=r"extra_files\[0\]\.path"):
        render_cloud_config(_params(), extra_files=(HostFile("/etc/x\nruncmd", "x"),))
    with pytest.raises(ValueError, match=r"extra_files\[0\]\.permissions"):
        render_cloud_config(_params(), extra_files=(HostFile("/etc/x", "x", permissions="rwx"),))
    with pytest.raises(ValueError, match=r"extra_files\[0\]\.owner"):
        render_cloud_config(_params(), extra_files=(HostFile("/etc/x", "x", owner="root:root\n"),))
    with pytest.raises(ValueError, match="extra_files"):
        render_cloud_config(_params(), extra_files=(HostFile("/etc/nginx/nginx.conf", "user root;"),))
    with pytest.raises(ValueError, match=r"packages\[0\]"):
        render_cloud_config(_params(), packages=("postgresql17; reboot",))
    with pytest.raises(ValueError, match=r"enable_units\[0\]"):
        render_cloud_config(_params(), enable_units=("backup.timer --now; reboot",))


def test_fetch_script_quotes_everything_for_the_shell() -> None:
    script = render_tls_fetch_script(_params(tls_parameter_prefix="/leanstack/dev/tls"))
    assert "cert_parameter=/leanstack/dev/tls/origin-cert\n" in script
    assert "region=eu-west-1\n" in script


def test_embedded_origin_pull_ca_is_cloudflares() -> None:
    certificate = x509.load_pem_x509_certificate(ORIGIN_PULL_CA_PEM.encode())
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "origin-pull.cloudflare.net"
    assert certificate.subject == certificate.issuer
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.not_valid_after_utc == datetime.datetime(2029, 11, 1, 17, 0, tzinfo=datetime.UTC)
    # A transcription error would break the self-signature.
    certificate.verify_directly_issued_by(certificate)


def test_embedded_origin_pull_ca_parses_with_openssl(tmp_path: Path) -> None:
    openssl = require_program("openssl", "openssl")
    pem = tmp_path / "ca.pem"
    pem.write_text(ORIGIN_PULL_CA_PEM, encoding="ascii")
    shown = subprocess.run(
        [openssl, "x509", "-in", str(pem), "-noout", "-subject", "-enddate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CN = origin-pull.cloudflare.net" in shown
    assert "notAfter=Nov  1 17:00:00 2029 GMT" in shown
    verified = subprocess.run(
        [openssl, "verify", "-CAfile", str(pem), str(pem)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr


def test_tuning_for_throughput_is_rendered() -> None:
    text = render_nginx_conf(_params())
    # Regexes compiled to machine code once, not interpreted per request.
    assert "\npcre_jit on;\n" in text
    # One write(2) per 64 KB of log lines; a line reaches the file (and the CloudWatch agent) within 1 s.
    assert "leanstack_json buffer=64k flush=1s;" in text
    # Client (Cloudflare) connections are not closed every 1000 requests.
    assert "\n    keepalive_requests 10000;\n" in text
