"""The library installs: a wheel built from this repository holds one top-level package, `leanstack`,
and a program outside the repository (examples/shop) runs from it under Pulumi's mocks.

Fast and offline: the wheel is built without build isolation (setuptools from uv.lock's build group),
the fresh virtualenv borrows the project's third-party packages through a .pth file, and pip
installs the wheel with --no-deps --no-index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from support.repo_copy import REPO, copy_repository
from tests.conftest import starts_servers

# A wheel built and installed into fresh virtualenvs with its dependencies (pip, each step up to 10 minutes).
pytestmark = pytest.mark.timeout(1800)

ROOMS = ("components", "config", "host", "policy")

RUN_EXAMPLE = """
import json, sys
from pathlib import Path
import leanstack
from leanstack.components import DatabaseArgs, ConfigError
from leanstack.mocks import run_program
try:
    DatabaseArgs(instance_class="foo")
    refused = ""
except ConfigError as error:
    refused = str(error)
config = {"aws:region": "eu-west-1", "shop:alertEmail": "oncall@shop.example.org", "shop:databaseClass": "db.t4g.small"}
run = run_program("dev", config, Path(sys.argv[1]) / "__main__.py")
print(json.dumps({
    "package": leanstack.__file__,
    "path": sys.path,
    "refused": refused,
    "resources": [[r.type, r.name, r.inputs.get("instanceClass")] for r in run.resources],
    "outputs": sorted(run.outputs),
}))
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
@starts_servers
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_repository(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(out), str(source)],
        source,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("leanstack-*.whl")
    return found


def test_the_wheel_holds_one_top_level_package_with_its_data_files(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"leanstack"}
    # Every file the code reads (templates, the CA, prices, the policy pack's metadata) and every module.
    shipped = [f"leanstack/{p.relative_to(REPO)}" for room in ROOMS for p in (REPO / room).rglob("*") if p.is_file()]
    shipped += ["leanstack/pricing.json", "leanstack/__main__.py"]
    runbook_templates = (REPO / "leanstack" / "runbook" / "templates").rglob("*")
    shipped += [str(p.relative_to(REPO)) for p in runbook_templates if p.is_file()]
    missing = [n for n in shipped if "__pycache__" not in n and n not in names]
    assert missing == []
    assert not [n for n in names if n.startswith(("leanstack/tests", "tests/", "support/", "bench/"))]


def test_the_example_runs_from_the_installed_wheel_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path).returncode == 0
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).stdout.strip()
    )
    # Third-party packages (pulumi, the providers, jinja2, yaml) from the project's environment; not leanstack.
    borrowed = sysconfig.get_path("purelib")
    (site / "borrowed.pth").write_text(borrowed + "\n")
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", str(wheel)],
        tmp_path,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    ours = sorted(
        p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "_distutils_hack"
    )
    assert ours == ["leanstack"]

    example = shutil.copytree(REPO / "examples" / "shop", tmp_path / "shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run([str(python), "-I", "-c", RUN_EXAMPLE, str(example)], elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(site)), result["package"]
    # Nothing of the repository is importable but the borrowed third-party packages (its .venv, in CI).
    assert [p for p in result["path"] if p == str(REPO) or p.startswith(str(REPO) + os.sep)] in ([], [borrowed])
    assert result["refused"].startswith('DatabaseArgs.instance_class: got "foo"; expected an RDS instance class')
    by_type = {t: (name, cls) for t, name, cls in result["resources"]}
    for component in ("Alerts", "Network", "Database"):
        assert f"leanstack:index:{component}" in by_type
    assert by_type["aws:rds/instance:Instance"][1] == "db.t4g.small"  # the example's own config reached the database
    assert "aws:ec2/instance:Instance" not in by_type  # only what the example asked for
    assert result["outputs"] == ["alertTopicArn", "databaseAddress"]


def test_the_wheel_installs_with_its_own_dependencies_and_every_command_runs(wheel: Path, tmp_path: Path) -> None:
    """A fresh virtualenv (nothing borrowed) gets the wheel and what it declares, from pip's index and cache."""
    from leanstack.__main__ import COMMANDS, DEPLOY_COMMANDS, OPERATE_COMMANDS, RECOVERY_COMMANDS

    venv = tmp_path / "fresh"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    python, leanstack = venv / "bin" / "python", venv / "bin" / "leanstack"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = _run([*pip, str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # Without the aws extra: a command that calls AWS says what to install, in one line.
    shipped = str(REPO / "tests" / "fixtures" / "shipped" / "stacks")
    env_run = {**os.environ, "LEANSTACK_STACKS": shipped}
    env_run.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(leanstack), "deploy", "dev", "v1", "--instance-id", "i-0123456789abcdef0"],
        cwd=elsewhere, env=env_run, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert "needs boto3" in done.stderr and "pip install 'leanstack[aws]'" in done.stderr

    with_aws = _run([*pip, f"{wheel}[aws]"], tmp_path)
    assert with_aws.returncode == 0, with_aws.stderr[-3000:]
    for command in [*COMMANDS, *DEPLOY_COMMANDS, *OPERATE_COMMANDS, *RECOVERY_COMMANDS]:
        helped = _run([str(leanstack), command, "--help"], elsewhere)
        assert helped.returncode == 0 and helped.stdout.startswith("usage: "), (command, helped.stderr[-2000:])
    key = _run([str(leanstack), "recovery-key", "new"], elsewhere)
    assert key.returncode == 0, key.stderr[-2000:]
    assert "-----BEGIN PRIVATE KEY-----" in key.stdout and "PUBLIC half" in key.stdout
    imported = _run([str(python), "-I", "-c", "import leanstack, sys; print(leanstack.__file__)"], elsewhere)
    assert imported.stdout.strip().startswith(str(venv)), "the fresh virtualenv's own leanstack"

    # The installed command reads the project in the current directory, not its folder in site-packages.
    project = tmp_path / "project"
    shutil.copytree(shipped, project / "stacks")
    env_run.pop("LEANSTACK_STACKS")
    for cwd, args in ((project, ["validate", "dev"]), (elsewhere, ["--repo", str(project), "validate", "prod"])):
        done = subprocess.run(
            [str(leanstack), *args], cwd=cwd, env=env_run, capture_output=True, text=True, timeout=300, check=False
        )
        assert (done.returncode, done.stdout) == (0, f"stacks/Pulumi.{args[-1]}.yaml: valid\n"), done.stderr
