"""The cloud-init document and user data, checked by Debian's cloud-init, and the boot
script that fetches the origin certificate, run with a stand-in `aws` command."""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import stat
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from leanstack.host.params import HostFile, HostParams
from leanstack.host.render import (
    ORIGIN_PULL_CA_PEM,
    USER_DATA_LIMIT_BYTES,
    NginxPaths,
    render_cloud_config,
    render_cloudwatch_agent_config,
    render_nginx_conf,
    render_tls_fetch_script,
    render_upstream,
    render_user_data,
)
from support.nginx_harness import loopback_paths, make_pki
from support.system import require_program

BACKUP_FILES = (
    HostFile("/usr/local/bin/leanstack-backup", "#!/usr/bin/python3\nprint('backup')\n", permissions="0755"),
    HostFile("/etc/systemd/system/leanstack-backup.service", "[Service]\nType=oneshot\n"),
    HostFile("/etc/systemd/system/leanstack-backup.timer", "[Timer]\nOnCalendar=*-*-* 03:30:00\n"),
    HostFile("/etc/leanstack/backup.json", '{"bucket": "b"}\n', permissions="0640", owner="root:root"),
)


def _params(**changes: object) -> HostParams:
    base = HostParams(
        stack="prod",
        region="eu-west-1",
        hostnames=("example.com", "www.example.com"),
        app_port=8000,
        cloudflare_ipv4_cidrs=(
            "173.245.48.0/20",
            "103.21.244.0/22",
            "103.22.200.0/22",
            "103.31.4.0/22",
            "141.101.64.0/18",
            "108.162.192.0/18",
            "190.93.240.0/20",
            "188.114.96.0/20",
            "197.234.240.0/22",
            "198.41.128.0/17",
            "162.158.0.0/15",
            "104.16.0.0/13",
            "104.24.0.0/14",
            "172.64.0.0/13",
            "131.0.72.0/22",
        ),
        cloudflare_ipv6_cidrs=(
            "2400:cb00::/32",
            "2606:4700::/32",
            "2803:f800::/32",
            "2405:b500::/32",
            "2405:8100::/32",
            "2a06:98c0::/29",
            "2c0f:f248::/32",
        ),
        tls_parameter_prefix="/leanstack/prod/tls",
        access_log_group="/leanstack/prod/nginx/access",
        extra_files=(HostFile("/etc/leanstack/stack", "prod\n"),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _typical() -> str:
    return render_cloud_config(
        _params(),
        extra_files=BACKUP_FILES,
        packages=("postgresql17",),
        enable_units=("leanstack-backup.timer",),
    )


def _schema(document: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cloud_init = require_program("cloud-init", "cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(document, encoding="utf-8")
    return subprocess.run(
        [cloud_init, "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _files(document: str) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in yaml.safe_load(document)["write_files"]}


@pytest.mark.servers
def test_cloud_config_passes_cloud_init_schema(tmp_path: Path) -> None:
    checked = _schema(_typical(), tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout


@pytest.mark.servers
def test_schema_check_catches_a_broken_document(tmp_path: Path) -> None:
    document = yaml.safe_load(_typical())
    document["write_files"][0]["defer"] = "after packages"
    document["packages"] = "nginx"
    broken = "#cloud-config\n" + yaml.safe_dump(document)
    checked = _schema(broken, tmp_path)
    assert checked.returncode != 0
    assert "write_files.0.defer" in checked.stderr


def test_cloud_config_installs_packages_writes_files_and_starts_services() -> None:
    document = _typical()
    assert document.startswith("#cloud-config\n")
    parsed = yaml.safe_load(document)
    assert parsed["packages"] == ["nginx", "amazon-cloudwatch-agent", "postgresql17"]
    files = _files(document)
    nginx_conf = files["/etc/nginx/nginx.conf"]
    assert nginx_conf["content"] == render_nginx_conf(_params())
    assert (nginx_conf["owner"], nginx_conf["permissions"]) == ("root:root", "0644")
    # The app upstream starts at app.port; `leanstack-app deploy` rewrites this file.
    assert files["/etc/nginx/leanstack-upstream.conf"]["content"] == render_upstream(8000)
    assert "include /etc/nginx/leanstack-upstream.conf;" in nginx_conf["content"]
    assert files["/etc/nginx/tls/cloudflare-origin-pull-ca.pem"]["content"] == ORIGIN_PULL_CA_PEM
    script = files["/usr/local/sbin/leanstack-fetch-origin-tls"]
    assert (script["owner"], script["permissions"]) == ("root:root", "0750")
    assert "aws ssm get-parameter" in script["content"]
    assert (
        "ExecStartPre=/usr/local/sbin/leanstack-fetch-origin-tls"
        in (files["/etc/systemd/system/nginx.service.d/leanstack.conf"]["content"])
    )
    for name in ("50x.html", "4xx.html"):
        assert f"/usr/share/nginx/leanstack-errors/{name}" in files
    # The backup engineer's files and HostParams.extra_files, with their own modes.
    assert files["/usr/local/bin/leanstack-backup"]["permissions"] == "0755"
    assert files["/etc/leanstack/backup.json"]["permissions"] == "0640"
    assert files["/etc/leanstack/stack"]["content"] == "prod\n"
    assert all(entry["defer"] is True for entry in files.values())
    runcmd = parsed["runcmd"]
    assert ["systemctl", "enable", "--now", "nginx.service"] in runcmd
    assert ["systemctl", "enable", "--now", "leanstack-backup.timer"] in runcmd
    assert runcmd.index(["systemctl", "daemon-reload"]) < runcmd.index(
        ["systemctl", "enable", "--now", "nginx.service"]
    )
    agent = [command for command in runcmd if command[0].endswith("amazon-cloudwatch-agent-ctl")]
    assert agent and "file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json" in agent[0]


def test_no_secret_is_inlined() -> None:
    document = _typical()
    assert "PRIVATE KEY" not in document
    assert "/leanstack/prod/tls/origin-key" in document  # only the parameter's name


def test_cloudwatch_agent_ships_the_nginx_json_log() -> None:
    files = _files(_typical())
    agent = json.loads(files["/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"]["content"])
    (collected,) = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected["file_path"] == NginxPaths().access_log_path
    assert f"access_log {collected['file_path']} leanstack_json" in render_nginx_conf(_params())
    assert collected["log_group_name"] == "/leanstack/prod/nginx/access"
    assert agent["metrics"]["namespace"] == "Leanstack"
    assert "cpu" not in agent["metrics"]["metrics_collected"]


def test_agent_config_escapes_through_json() -> None:
    text = render_cloudwatch_agent_config(_params(metrics_namespace="Team #1/Web: prod"))
    assert json.loads(text)["metrics"]["namespace"] == "Team #1/Web: prod"


def test_user_data_is_gzipped_base64_of_the_document_and_deterministic() -> None:
    kwargs: dict[str, Any] = {"extra_files": BACKUP_FILES, "packages": ("postgresql17",)}
    user_data = render_user_data(_params(), **kwargs)
    raw = base64.b64decode(user_data)
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw).decode() == render_cloud_config(_params(), **kwargs)
    assert len(raw) <= USER_DATA_LIMIT_BYTES
    assert render_user_data(_params(), **kwargs) == user_data


def test_user_data_over_the_ec2_limit_is_refused() -> None:
    # Random bytes do not compress: 20 KB of them cannot fit in 16 KB.
    blob = HostFile("/etc/leanstack/blob", base64.b64encode(secrets.token_bytes(20_000)).decode())
    with pytest.raises(ValueError, match="16384"):
        render_user_data(_params(), extra_files=(blob,))


# --- the TLS fetch script, run for real with a stand-in `aws` ----------------------------


@pytest.fixture
def fake_aws(tmp_path: Path) -> Path:
    """A directory with an `aws` that serves SSM parameters from files, and logs its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(
        "#!/bin/bash\n"
        'echo "$*" >>"$FAKE_AWS_LOG"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --name ] && name=$2; shift; done\n'
        'file="$FAKE_SSM_DIR/$(basename "$name")"\n'
        '[ -f "$file" ] || { echo "ParameterNotFound: $name" >&2; exit 254; }\n'
        'cat "$file"\n',
        encoding="utf-8",
    )
    aws.chmod(0o755)
    (tmp_path / "ssm").mkdir()
    return bin_dir


def _run_script(tmp_path: Path, bin_dir: Path, paths: NginxPaths) -> subprocess.CompletedProcess[str]:
    bash = require_program("bash", "bash")
    require_program("openssl", "openssl")
    script = tmp_path / "fetch.sh"
    script.write_text(render_tls_fetch_script(_params(), paths=paths), encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_AWS_LOG": str(tmp_path / "aws.log"),
        "FAKE_SSM_DIR": str(tmp_path / "ssm"),
        "LEANSTACK_RETRY_SECONDS": "0",
    }
    return subprocess.run([bash, str(script)], capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="the script sets owners, so it runs as root")
def test_fetch_script_installs_a_matching_pair_root_only(tmp_path: Path, fake_aws: Path) -> None:
    pki = make_pki(tmp_path / "pki", ("example.com",))
    (tmp_path / "ssm" / "origin-cert").write_bytes(pki.origin_cert.read_bytes())
    (tmp_path / "ssm" / "origin-key").write_bytes(pki.origin_key.read_bytes())
    paths = loopback_paths(tmp_path / "host", 8443)

    done = _run_script(tmp_path, fake_aws, paths)

    assert done.returncode == 0, done.stderr
    cert, key = Path(paths.cert_path), Path(paths.key_path)
    assert cert.read_bytes() == pki.origin_cert.read_bytes()
    assert key.read_bytes() == pki.origin_key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o640
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o750
    calls = (tmp_path / "aws.log").read_text().splitlines()
    assert calls == [
        f"ssm get-parameter --region eu-west-1 --name /leanstack/prod/tls/{name} --with-decryption "
        "--query Parameter.Value --output text"
        for name in ("origin-cert", "origin-key")
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="the script sets owners, so it runs as root")
def test_fetch_script_keeps_the_working_pair_when_ssm_gives_a_mismatched_key(tmp_path: Path, fake_aws: Path) -> None:
    pki = make_pki(tmp_path / "pki", ("example.com",))
    other = make_pki(tmp_path / "other", ("example.com",))
    paths = loopback_paths(tmp_path / "host", 8443)
    (tmp_path / "ssm" / "origin-cert").write_bytes(pki.origin_cert.read_bytes())
    (tmp_path / "ssm" / "origin-key").write_bytes(pki.origin_key.read_bytes())
    assert _run_script(tmp_path, fake_aws, paths).returncode == 0

    (tmp_path / "ssm" / "origin-key").write_bytes(other.origin_key.read_bytes())
    done = _run_script(tmp_path, fake_aws, paths)

    assert done.returncode == 0, done.stderr
    assert "keeping the installed one" in done.stderr
    assert Path(paths.key_path).read_bytes() == pki.origin_key.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="the script sets owners, so it runs as root")
def test_fetch_script_fails_when_there_is_no_certificate_at_all(tmp_path: Path, fake_aws: Path) -> None:
    paths = loopback_paths(tmp_path / "host", 8443)
    done = _run_script(tmp_path, fake_aws, paths)
    assert done.returncode == 1
    assert "ParameterNotFound" in done.stderr
    assert not Path(paths.key_path).exists()


# --- the nginx.service drop-in, parsed by systemd ---------------------------------------


def _verify_drop_in(tmp_path: Path, drop_in: str) -> subprocess.CompletedProcess[str]:
    analyze = require_program("systemd-analyze", "systemd")
    require_program("nginx", "nginx", extra_dirs=("/usr/sbin",))
    packaged = Path("/lib/systemd/system/nginx.service")
    if not packaged.exists():
        pytest.skip("Debian's nginx.service is not installed")
    units = tmp_path / "units"
    (units / "nginx.service.d").mkdir(parents=True)
    (units / "nginx.service").write_text(packaged.read_text())
    # systemd checks that every ExecStartPre exists; the fetch script is not installed here.
    (units / "nginx.service.d" / "leanstack.conf").write_text(
        drop_in.replace("/usr/local/sbin/leanstack-fetch-origin-tls", "/bin/true")
    )
    return subprocess.run(
        [analyze, "verify", str(units / "nginx.service")],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
        timeout=60,
        check=False,
    )


@pytest.mark.servers
def test_nginx_drop_in_parses_with_systemd(tmp_path: Path) -> None:
    drop_in = _files(_typical())["/etc/systemd/system/nginx.service.d/leanstack.conf"]["content"]
    checked = _verify_drop_in(tmp_path, drop_in)
    assert checked.returncode == 0, checked.stderr
    assert "leanstack.conf" not in checked.stderr, checked.stderr


@pytest.mark.servers
def test_systemd_check_flags_a_mistyped_drop_in(tmp_path: Path) -> None:
    checked = _verify_drop_in(tmp_path, "[Service]\nExecStartPree=/bin/true\n")
    assert "Unknown key" in checked.stderr and "leanstack.conf" in checked.stderr
