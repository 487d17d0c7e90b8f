"""The set-up and the package wherever it is checked out or installed.

One lock (uv.lock) from the public index only, npm's lockfile from the public registry, every
Debian program a test needs listed for `make system-packages`; a checkout without symlinks stops at
import and at build in one line naming the fix; an installed package reads the project in the
current directory (or --repo), never its own folder in site-packages.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from leanstack import mocks, room_link_problem
from leanstack.__main__ import main
from support.repo_copy import REPO, copy_repository
from support.system import NPM_MODULES, listed_programs

SHIPPED = REPO / "tests" / "fixtures" / "shipped" / "stacks"


def test_the_lock_names_only_the_public_index_and_holds_one_protobuf() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    hosts = set(re.findall(r'(?:url|registry) = "(https?://[^/"]+)', (REPO / "uv.lock").read_text()))
    assert hosts == {"https://pypi.org", "https://files.pythonhosted.org"}
    by_name: dict[str, list[str]] = {}
    for package in lock["package"]:
        by_name.setdefault(package["name"], []).append(package.get("version", ""))
        # Every file has its hash (uv sync --frozen checks them).
        for wheel in [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]:
            assert wheel["hash"].startswith("sha256:"), package["name"]
    assert len(by_name["protobuf"]) == 1 and by_name["protobuf"][0].startswith("5.")
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    assert {"dev", "policy", "build"} <= set(groups)
    # moto only with the services' extras the tests start, never [server] (cfn-lint, docker, ...).
    assert "cfn-lint" not in by_name and "docker" not in by_name and "aws-xray-sdk" not in by_name


def test_the_npm_tools_come_from_their_lockfile_and_the_public_registry() -> None:
    folder = NPM_MODULES.parent
    wanted = json.loads((folder / "package.json").read_text())["dependencies"]
    lock = json.loads((folder / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == wanted
    for name, entry in lock["packages"].items():
        if name:
            assert entry["resolved"].startswith("https://registry.npmjs.org/") and entry["integrity"], name


def test_every_debian_program_a_test_needs_is_listed_for_make_system_packages() -> None:
    called = re.compile(r'require_program\(\s*"([^"]+)",\s*"([^"]+)"')
    needed = {
        found
        for folder in ("tests", "support", "bench")
        for path in (REPO / folder).rglob("*.py")
        for found in called.findall(path.read_text(encoding="utf-8"))
    }
    assert len(needed) >= 6
    listed = listed_programs()
    assert [(program, package) for program, package in sorted(needed) if listed.get(program) != package] == []
    # No test or helper installs anything itself.
    installs = [
        str(path.relative_to(REPO))
        for folder in ("tests", "support")
        for path in (REPO / folder).rglob("*.py")
        if path != Path(__file__).resolve()
        and re.search(r'"apt-get", "install"|"npm", "(?:install|ci)"', path.read_text(encoding="utf-8"))
    ]
    assert installs == []


def test_a_checkout_without_symlinks_stops_at_import_and_at_build_in_one_line(tmp_path: Path) -> None:
    source = copy_repository(tmp_path / "source", commit=True)
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "-c", "core.symlinks=false", str(source), str(clone)], check=True, capture_output=True
    )
    # What git writes for a link without symlinks: a small file holding the target.
    assert (clone / "leanstack" / "components").read_text() == "../components"
    expected = room_link_problem(clone / "leanstack")
    assert expected is not None and "`git config core.symlinks true`" in expected and "\n" not in expected
    assert room_link_problem(REPO / "leanstack") is None

    imported = subprocess.run(
        [sys.executable, "-c", "import leanstack"], cwd=clone, capture_output=True, text=True, timeout=60, check=False
    )
    assert imported.returncode == 1
    assert imported.stderr.strip().splitlines()[-1] == f"ImportError: {expected}"

    out = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(out), str(clone)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode != 0
    # pip frames the backend's output ("  │ "); the backend's own message is that one line.
    assert [line for line in built.stderr.splitlines() if line.endswith(f"error: {expected}")], built.stderr
    assert not list(out.glob("*.whl"))


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """leanstack as an installed package sees itself: a folder in site-packages, no project around it."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(mocks, "REPO", site)
    monkeypatch.delenv(mocks.STACKS_ENV, raising=False)
    # Set, so that monkeypatch restores it after `--repo` writes it.
    monkeypatch.setenv(mocks.PROJECT_ENV, "")
    project = tmp_path / "project"
    shutil.copytree(SHIPPED, project / "stacks")
    return project


def test_an_installed_package_reads_the_stacks_of_the_current_directory(
    installed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(installed)
    assert mocks.stacks_dir() == installed / "stacks"
    assert main(["validate", "dev"]) == 0
    assert capsys.readouterr().out == "stacks/Pulumi.dev.yaml: valid\n"

    elsewhere = installed.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["validate", "dev"]) == 2
    assert capsys.readouterr().err == (
        f"leanstack: unknown stack 'dev': no stacks/Pulumi.dev.yaml (stacks: none in {elsewhere / 'stacks'}; "
        "pass --repo DIR)\n"
    )
    assert main(["--repo", str(installed), "validate", "prod"]) == 0
    assert capsys.readouterr().out == "stacks/Pulumi.prod.yaml: valid\n"
    assert mocks.project_dir() == installed


def test_repo_needs_a_folder_and_a_command(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--repo"], ["--repo", str(installed / "nowhere"), "plan", "dev"], [f"--repo={installed}"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1
