"""leanstack-seal-secrets' host files: the units pass systemd-analyze verify and the
environment file carries the public key and the secrets' names only."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from leanstack.host.backup.seal_install import SEAL_ENV_PATH, seal_host_files
from leanstack.recovery_key import new_keypair
from support.system import require_program
from tests.host.helpers import install_into


@pytest.fixture(scope="module")
def public_key() -> str:
    return new_keypair()[1]


def test_env_file_holds_the_public_key_and_names(public_key: str) -> None:
    files = {file.path: file for file in seal_host_files(public_key, ("leanstack/prod/mail",), "*-*-* 04:00")}
    env = dict(re.findall(r'^([A-Z_]+)="(.*)"$', files[SEAL_ENV_PATH].content, re.MULTILINE))
    assert env == {"RECOVERY_PUBLIC_KEY": public_key, "SECRET_IDS": "leanstack/prod/mail"}
    assert "OnCalendar=*-*-* 04:00 UTC" in files["/etc/systemd/system/leanstack-seal-secrets.timer"].content


@pytest.mark.parametrize(
    ("key", "ids", "message"),
    [
        ("not a key", (), "RECOVERY_PUBLIC_KEY is not base64"),
        (None, ("rds!db-1234",), "secret_ids: 'rds!db-1234' is not a secret name leanstack may seal"),
    ],
)
def test_bad_input_is_refused(public_key: str, key: str | None, ids: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        seal_host_files(key or public_key, ids, "daily")


@pytest.mark.servers
def test_units_pass_systemd_analyze_verify(tmp_path: Path, public_key: str) -> None:
    systemd_analyze = require_program("systemd-analyze", "systemd")
    system_units = next((Path(d) for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if Path(d).is_dir()), None)
    if system_units is None:
        pytest.skip("no system unit directory to verify the units against")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    install_into(root, seal_host_files(public_key, (), "*-*-* 04:00"))
    units = [str(path) for path in sorted((root / "etc/systemd/system").iterdir())]
    assert len(units) == 2
    verified = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", *units], capture_output=True, text=True, check=False
    )
    if verified.returncode != 0 and "Failed to" in verified.stderr and "leanstack" not in verified.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {verified.stderr.strip()}")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr
    service = root / "etc/systemd/system/leanstack-seal-secrets.service"
    text = service.read_text()
    # backup.env first (the bucket, the stack), then the seal's own settings.
    assert text.index("EnvironmentFile=/etc/leanstack/backup.env") < text.index(f"EnvironmentFile={SEAL_ENV_PATH}")
    service.write_text(text + "NoSuchSetting=1\n")
    rejected = subprocess.run(
        [systemd_analyze, f"--root={root}", "verify", str(service)], capture_output=True, text=True, check=False
    )
    assert "NoSuchSetting" in rejected.stderr
