"""The credentials endpoint's host files: the unit passes systemd-analyze verify, and the
environment file is what the endpoint reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from leanstack.host.agent.credentials import Settings
from leanstack.host.credentials.install import CREDENTIALS_ENV_PATH, container_environment, credentials_host_files
from leanstack.host.params import HostFile
from support.system import require_program

ROLE_ARN = "arn:aws:iam::123456789012:role/leanstack-prod-app"


def install_into(root: Path, files: tuple[HostFile, ...]) -> None:
    for file in files:
        target = root / file.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.content, encoding="utf-8")
        target.chmod(int(file.permissions, 8))


def test_the_env_file_is_what_the_endpoint_reads() -> None:
    files = {file.path: file for file in credentials_host_files(ROLE_ARN, "eu-west-1")}
    env = dict(re.findall(r'^([A-Z_]+)="(.*)"$', files[CREDENTIALS_ENV_PATH].content, re.MULTILINE))
    settings = Settings.from_env(env)
    assert (settings.role_arn, settings.region, settings.address) == (ROLE_ARN, "eu-west-1", "169.254.170.2")
    uri = container_environment()["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert uri == f"http://{settings.address}:{settings.port}{settings.path}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((ROLE_ARN, "eu-west-1", "172.17.0.1"), "address must be loopback or one of 169.254.170.2, 169.254.170.23"),
        (("arn:aws:iam::123456789012:user/app", "eu-west-1"), "role_arn must be an IAM role ARN"),
        ((ROLE_ARN, "Europe"), "region must be an AWS region"),
    ],
)
def test_bad_arguments_are_refused(arguments: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        credentials_host_files(*arguments)


@pytest.mark.servers
@pytest.mark.parametrize("address", ["169.254.170.2", "127.0.0.1"])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, address: str) -> None:
    systemd_analyze = require_program("systemd-analyze", "systemd")
    system_units = next((Path(d) for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if Path(d).is_dir()), None)
    if system_units is None:
        pytest.skip("no system unit directory to verify the units against")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    files = credentials_host_files(ROLE_ARN, "eu-west-1", address)
    install_into(root, files)
    unit = root / "etc/systemd/system/leanstack-credentials.service"
    assert ("ExecStartPre=+/usr/sbin/ip address replace" in unit.read_text()) == (address == "169.254.170.2")
    ip = shutil.which("ip")
    if ip is None:
        pytest.skip("no ip program (iproute2) to put where the unit expects it")
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    shutil.copy(ip, root / "usr/sbin/ip")
    verified = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    if verified.returncode != 0 and "Failed to" in verified.stderr and "leanstack" not in verified.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {verified.stderr.strip()}")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr
    # The check can fail: an unknown setting is reported.
    unit.write_text(unit.read_text() + "NoSuchSetting=1\n")
    rejected = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert "NoSuchSetting" in rejected.stderr
    assert os.access(root / "usr/local/bin/leanstack-credentials", os.X_OK)
