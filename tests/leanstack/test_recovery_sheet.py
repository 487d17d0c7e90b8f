"""The recovery part of the sheet: triage first, numbered steps that check and undo, commands that exist."""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from leanstack.__main__ import COMMANDS, DEPLOY_COMMANDS, OPERATE_COMMANDS, RECOVERY_COMMANDS, main
from leanstack.config import ConfigError, StackConfig, load_stack_config
from leanstack.host.agent.restore import RestoreOptions
from leanstack.mocks import StackRun
from leanstack.runbook import (
    BEFORE_PULUMI,
    BRANCH_NAMES,
    HOST,
    LAPTOP,
    Branch,
    Step,
    alarm_steps,
    recovery_branches,
    runbook_markdown,
)
from tests.components.helpers import user_data_of
from tests.conftest import RECOVERY_PUBLIC_KEY, merged, read_stack_config, run_with

REPO = Path(__file__).parents[2]
TRIAGE = ["Rows deleted or corrupted", "App database dropped", "Instance deleted", "Host gone", "Region down"]
# Steps whose commands switch or rebuild something: each must say how to check it worked.
RISKY = re.compile(r"leanstack-restore(?![\w-])|restore-db-instance|pg_restore|pulumi up|pulumi import")


def config_of(run: StackRun, overrides: dict[str, Any] | None = None) -> StackConfig:
    return load_stack_config(merged(read_stack_config(run.stack), overrides or {}), run.stack)


def branches_of(run: StackRun, overrides: dict[str, Any] | None = None) -> list[Branch]:
    return recovery_branches(run, config_of(run, overrides))


# prod with a recovery key: the sealed copy exists.
WITH_KEY = {"leanstack:backup": {"recoveryPublicKey": RECOVERY_PUBLIC_KEY}}


@pytest.fixture(scope="module")
def run_with_key() -> StackRun:
    return run_with(WITH_KEY, "prod")


def commands(run: StackRun, where: str | None = None, overrides: dict[str, Any] | None = None) -> Iterator[str]:
    """Every command line of every step (continuations joined), optionally only those run in one place."""
    for branch in branches_of(run, overrides):
        for step in branch.steps:
            if where is None or step.where == where:
                yield from _joined(step.commands)
            if where in (None, LAPTOP):
                yield from _joined(c for c in step.check_commands if c.startswith(("aws ", "curl ")))


def _joined(lines: Any) -> Iterator[str]:
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""


def test_the_sheet_starts_with_triage_and_names_who_decides(prod: StackRun) -> None:
    text = runbook_markdown(prod, config_of(prod))
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections[0] == "What is gone? Start here"
    triage = text.split("## What is gone? Start here", 1)[1].split("\n### ", 1)[0]
    assert "**Who decides**: Ops team, ops@example.com decides" in triage
    for heading in TRIAGE:
        anchor = heading.lower().replace(" ", "-")
        assert f"[{heading}](#{anchor})" in triage
        assert f"\n### {heading}\n" in text
    assert [b.heading for b in branches_of(prod)] == TRIAGE


@pytest.mark.parametrize("stack", ["dev", "prod", "scale"])
def test_every_branch_is_numbered_steps_with_checks_and_an_undo_where_it_switches(
    stack: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    run = {"dev": dev, "prod": prod, "scale": scale}[stack]
    text = runbook_markdown(run, config_of(run))
    for branch in branches_of(run):
        body = text.split(f"\n### {branch.heading}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        numbers = [int(n) for n in re.findall(r"^(\d+)\. ", body, flags=re.M)]
        assert numbers == list(range(1, len(branch.steps) + 1)), branch.heading
        assert branch.symptoms and branch.loses
        for step in branch.steps:
            if any(RISKY.search(command) for command in step.commands):
                assert step.check, f"{branch.heading}: {step.text[:60]}... switches something without a check"
        switches = any("--swap" in c or "restore-db-instance" in c for s in branch.steps for c in s.commands)
        if switches:
            assert branch.undo and "**Undo the switch**" in body, branch.heading


def test_nothing_on_the_host_needs_pulumi(dev: StackRun, prod: StackRun, scale: StackRun) -> None:
    for run in (dev, prod, scale):
        host = list(commands(run, HOST))
        assert host and not [c for c in host if re.search(r"\bpulumi\b", c)]
        # The host's values come from its own files, never from a laptop.
        assert not [c for c in host if "pulumi stack output" in c]


def _aws_calls(line: str) -> Iterator[tuple[str, str, list[str]]]:
    """(service, command, --options) of every `aws` call in a shell line, in $(...) and pipes too."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    for i, token in enumerate(tokens):
        if token.split("(")[-1] != "aws" or i + 2 >= len(tokens):
            continue
        options = []
        for word in tokens[i + 3 :]:
            if word in ("|", "||", ";", "(", ")", "&&") or word.startswith(")"):
                break
            if word.startswith("--"):
                options.append(word[2:])
        yield tokens[i + 1], tokens[i + 2], options


# Options of the AWS CLI itself, not of an operation.
GLOBAL_OPTIONS = {"region", "profile", "query", "output"}
# The high-level `aws s3` commands (no botocore model) and the options the sheet may give them.
S3_COMMANDS: dict[str, set[str]] = {"ls": {"recursive"}, "cp": set(), "sync": {"source-region"}}
# Commands the AWS CLI adds to a service (no botocore operation), with their options.
CLI_COMMANDS: dict[tuple[str, str], set[str]] = {("ecr", "get-login-password"): set()}


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model({"s3api": "s3"}.get(service, service))


def _check_aws_call(service: str, command: str, options: list[str]) -> None:
    if service == "s3":
        assert command in S3_COMMANDS, command
        assert set(options) <= GLOBAL_OPTIONS | S3_COMMANDS[command], options
        return
    if (service, command) in CLI_COMMANDS:
        assert set(options) <= GLOBAL_OPTIONS | CLI_COMMANDS[service, command], options
        return
    model = _service_model(service)
    if command == "wait":
        return
    operations = {xform_name(op, "-"): op for op in model.operation_names}
    assert command in operations, f"aws {service} {command}: no such operation"
    shape = model.operation_model(operations[command]).input_shape
    members = {xform_name(m, "-") for m in (shape.members if shape is not None else {})}
    for option in options:
        name = option.removeprefix("no-") if option.removeprefix("no-") in members else option
        assert name in members | GLOBAL_OPTIONS, f"aws {service} {command} --{option}: no such option"


@pytest.mark.parametrize("stack", ["dev", "prod", "scale"])
def test_every_aws_command_and_option_exists(stack: str, dev: StackRun, prod: StackRun, scale: StackRun) -> None:
    run = {"dev": dev, "prod": prod, "scale": scale}[stack]
    calls = [call for line in commands(run) for call in _aws_calls(line)]
    text = runbook_markdown(run, config_of(run))
    # The one in the triage table and the undo text too.
    calls += [call for line in re.findall(r"`(aws [^`]+)`", text) for call in _aws_calls(line)]
    assert {(s, c) for s, c, _ in calls} >= {("ec2", "describe-instances"), ("ssm", "start-session"), ("s3", "ls")}
    for service, command, options in calls:
        _check_aws_call(service, command, options)
    waits = re.findall(r"aws rds wait ([a-z-]+)", text)
    waiters = botocore.session.get_session().get_waiter_model("rds").waiter_names
    assert waits and all(w in {xform_name(n, "-") for n in waiters} for w in waits)


def test_the_checker_catches_a_misspelt_option() -> None:
    with pytest.raises(AssertionError, match="--source-db-resource-id: no such option"):
        _check_aws_call("rds", "restore-db-instance-to-point-in-time", ["source-db-resource-id"])
    with pytest.raises(AssertionError, match="no such operation"):
        _check_aws_call("rds", "restore-db-instance-from-final-snapshot", [])


def test_an_instance_deleted_restores_from_retained_backups_or_the_final_snapshot(prod: StackRun) -> None:
    branch = next(b for b in branches_of(prod) if b.heading == "Instance deleted")
    lines = list(_joined(c for s in branch.steps for c in s.commands))
    assert any("describe-db-instance-automated-backups" in c and "DbiResourceId" in c for c in lines)
    pitr = next(c for c in lines if "restore-db-instance-to-point-in-time" in c)
    assert '--source-dbi-resource-id "$DBI"' in pitr and "--source-db-instance-identifier" not in pitr
    assert "--target-db-instance-identifier leanstack-prod " in pitr
    snapshot = next(c for c in lines if "restore-db-instance-from-db-snapshot" in c)
    assert "--db-snapshot-identifier leanstack-prod-final" in snapshot
    # The stack's own settings, from the program: the restored instance is the one Pulumi describes.
    db = prod.one("aws:rds/instance:Instance").inputs
    for restore in (pitr, snapshot):
        assert f"--db-parameter-group-name {db['parameterGroupName']}" in restore
        assert f"--db-subnet-group-name {db['dbSubnetGroupName']}" in restore
        assert "--multi-az" in restore and "--no-publicly-accessible" in restore
        assert "--manage-master-user-password" in restore
    adopt = " ".join(lines)
    assert "pulumi refresh --stack prod" in adopt
    assert "pulumi import aws:rds/instance:Instance database-instance leanstack-prod --stack prod" in adopt
    # URNs as Pulumi writes them (the root stack is not part of a child's type chain).
    assert "--parent 'database=urn:pulumi:prod::leanstack::leanstack:index:Database::database'" in adopt
    assert "pulumi:pulumi:Stack$" not in adopt
    # What the preview must look like, shown as a diff: an update is fine, a replace is not.
    (shown,) = [s for s in branch.steps if s.preview and "pulumi import" in " ".join(s.commands)]
    assert any(line.startswith("~ ") and "update" in line for line in shown.preview)
    assert any(line.startswith("+-") and "STOP" in line for line in shown.preview)


def test_without_a_final_snapshot_the_sheet_does_not_offer_one(dev: StackRun) -> None:
    branch = next(b for b in branches_of(dev) if b.heading == "Instance deleted")
    text = " ".join(c for s in branch.steps for c in s.commands)
    assert "restore-db-instance-from-db-snapshot" not in text and "final" not in text
    assert "restore-db-instance-to-point-in-time" in text


def test_scaled_out_the_shell_opens_on_the_jobs_host(scale: StackRun) -> None:
    shell = next(c for c in commands(scale, LAPTOP) if c.startswith("HOST="))
    assert f"Name=tag:Name,Values=leanstack-{scale.stack}-host Name=tag:Role,Values=jobs" in shell


def test_a_named_bucket_is_named_and_a_prefixed_one_is_looked_up(
    prod: StackRun, run_dev_with: Any, dev: StackRun
) -> None:
    found = [c for c in commands(prod, LAPTOP) if c.startswith("BUCKET=")]
    assert found and "starts_with(Name, 'leanstack-prod-backups-')" in found[0]
    named = run_dev_with({"leanstack:backup": {"bucketName": "acme-db-backups"}})
    config = load_stack_config(
        merged(read_stack_config("dev"), {"leanstack:backup": {"bucketName": "acme-db-backups"}}), "dev"
    )
    lines = [c for b in recovery_branches(named, config) for s in b.steps for c in s.commands]
    assert "BUCKET=acme-db-backups" in lines


def _host_commands(run: StackRun) -> set[str]:
    """The leanstack-* commands and units the program puts on the host."""
    paths = [str(f["path"]) for f in user_data_of(run)["write_files"]]
    paths += [str(o.inputs["key"]) for o in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")]
    names = {Path(p).name for p in paths}
    return names | {n.rsplit(".", 1)[0] for n in names if n.endswith((".service", ".timer"))}


def test_every_host_command_the_sheet_names_exists(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        text = runbook_markdown(run, config_of(run))
        named = set(re.findall(r"\b(leanstack-[a-z-]+[a-z])\b", text))
        # Resource and stack names the sheet shows are not commands.
        named -= {n for n in named if n.startswith(f"leanstack-{run.stack}")}
        assert {"leanstack-restore", "leanstack-restore-drill", "leanstack-backup"} <= named
        assert named <= _host_commands(run), named - _host_commands(run)


def test_the_region_down_branch_walks_the_recovery_stack() -> None:
    overrides = {"leanstack:backup": {"recoveryPublicKey": RECOVERY_PUBLIC_KEY}, "leanstack:storage": {"enabled": True}}
    prod = run_with(overrides, "prod")
    config = config_of(prod, overrides)
    (branch,) = [b for b in recovery_branches(prod, config) if b.heading == "Region down"]
    laptop = list(_joined(c for s in branch.steps if s.where == LAPTOP for c in (*s.commands, *s.check_commands)))
    # The secrets before `pulumi up`: their new ARNs go into the recovery stack file, whose host role is granted them.
    order = [
        "python -m leanstack recover init prod --backup-bucket $BUCKET",
        "pulumi state delete --stack prod 'URN'",
        "python -m leanstack secrets restore prod --from-backup",
        "pulumi up --stack prod-recovery",
        "docker buildx build --platform linux/arm64",
        "python -m leanstack deploy prod-recovery",
    ]
    found = [next(n for n, c in enumerate(laptop) if c.startswith(step)) for step in order]
    assert found == sorted(found), order
    text = runbook_markdown(prod, config).split("### Region down", 1)[1].split("\n## ", 1)[0]
    assert "sudo leanstack-restore --from-stack prod" in text
    assert "sudo leanstack-restore --swap --use-restored RESTORED" in text
    assert text.count("*Estimate:") >= 6 and "estimates, not measurements" in text
    # The recovery stack's own role reads the bucket: no hand-made grant any more.
    assert not [c for c in laptop if c.startswith("aws iam put-role-policy")]
    # The uploads come back from the replica.
    assert [c for c in laptop if c.startswith('aws s3 sync "s3://REPLICA" "s3://$UPLOADS"')]


KNOWN_COMMANDS = set(COMMANDS) | set(DEPLOY_COMMANDS) | set(OPERATE_COMMANDS) | set(RECOVERY_COMMANDS)


def test_every_leanstack_cli_command_the_sheet_names_exists(prod: StackRun) -> None:
    text = runbook_markdown(prod, config_of(prod))
    named = set(re.findall(r"python -m leanstack ([a-z]+)", text))
    assert {"runbook", "rollback", "validate", "db"} <= named
    assert named <= KNOWN_COMMANDS, named - KNOWN_COMMANDS


def test_the_sheet_says_where_the_drill_restores(prod: StackRun) -> None:
    local = runbook_markdown(prod, config_of(prod))
    assert "restores it into a throw-away PostgreSQL on the host, off production" in local
    on_instance = runbook_markdown(prod, config_of(prod, {"leanstack:backup": {"drillTarget": "instance"}}))
    assert "restores it into a marked scratch database on the RDS instance" in on_instance


def test_every_leanstack_restore_and_maintenance_call_is_one_the_tools_accept(prod: StackRun) -> None:
    text = runbook_markdown(prod, config_of(prod))
    calls = re.findall(r"sudo (leanstack-restore|leanstack-maintenance)((?: (?!#)[^\s`]+)*)", text)
    # The sheet's placeholders, as the user fills them in.
    filled = {"STAMP": "20260131T033000Z", "RESTORED": "leanstack_restore_20260131t033000z_abc123"}
    restores = [
        [filled.get(w, w).replace("<time>", "20260131t033000z") for w in args.split()]
        for tool, args in calls
        if tool == "leanstack-restore"
    ]
    assert [] in restores and ["--swap", "--use-restored", filled["RESTORED"]] in restores
    for arguments in restores:
        if any("..." in a for a in arguments):
            continue  # quoted from the tool's own output, abbreviated
        RestoreOptions.parse(arguments)  # raises ConfigError on anything the tool refuses
    maintenance = {args.strip() for tool, args in calls if tool == "leanstack-maintenance"}
    assert maintenance == {"on", "off", "status"}


# --------------------------------------------------------------------------- the 3 a.m. rules, for every branch

STACKS = ["dev", "prod", "scale"]
# The day-2 commands that act on a stack's AWS resources: each takes --region, and the sheet always gives it.
DAY2 = re.compile(r"python -m leanstack (?:config|restart|run|logs|maintenance|rollback|releases|deploy) ")


def _run_of(stack: str, dev: StackRun, prod: StackRun, scale: StackRun) -> StackRun:
    return {"dev": dev, "prod": prod, "scale": scale}[stack]


def _shell_lines(text: str) -> Iterator[str]:
    """Every command the sheet gives: the lines of its sh blocks (continuations joined) and inline commands."""
    block: list[str] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            if inside:
                yield from _joined(block)
            inside, block = line == "```sh", []
            continue
        if inside:
            block.append(line)
    for span in re.findall(r"`([^`\n]+)`", text):
        # `pulumi up` alone names the command in a sentence; with arguments it is one to run.
        if re.match(r"(aws|pulumi|sudo|journalctl|python -m leanstack) [a-z]", span) and not re.fullmatch(
            r"pulumi [a-z]+", span
        ):
            yield span


def _segments(line: str) -> list[str]:
    """A shell line cut into its simple commands (comments dropped)."""
    line = re.sub(r"\s#\s.*$", "", line)
    return [part for part in re.split(r"\|\||&&|\||;|\$\(|\)", line) if part.strip()]


def _violations(text: str, stack: str) -> list[str]:
    """What breaks the pinning, quoting and sudo rules, one line per offence (empty: none)."""
    found = []
    for line in _shell_lines(text):
        for segment in _segments(line):
            words = segment.split()
            if words[0] == "aws" and "--region" not in words:
                found.append(f"aws without --region: {line}")
            if (
                words[0] == "pulumi"
                and words[1:2] not in (["login"], ["whoami"])
                and not re.search(rf"--stack {re.escape(stack)}(-recovery)?(\s|$)", segment)
            ):
                found.append(f"pulumi without --stack {stack}: {line}")
        if DAY2.search(line) and "--region " not in line:
            found.append(f"day-2 command without --region: {line}")
        if re.search(r"pulumi .*(--replace|state delete)", line) and not re.search(
            r"(--replace|state delete --stack \S+) '", line
        ):
            found.append(f"URN not in single quotes: {line}")
    found += [f"journalctl without sudo: {m}" for m in re.findall(r"(?<!sudo )journalctl[^`\n]*", text)]
    urns = len(re.findall(r"urn:pulumi:", text))
    quoted = len(re.findall(r"'[^'\s]*urn:pulumi:[^'\s]*'", text))
    if quoted != urns:
        found.append(f"{urns - quoted} URN(s) not in single quotes")
    return found


def test_the_rule_reader_catches_what_the_issue_found() -> None:
    """The reader below fails on each finding of issue 23's sheet review (so passing means something)."""
    old = "\n".join(
        [
            "```sh",
            "aws ec2 describe-instance-status --include-all-instances --instance-ids "
            "$(pulumi stack output hostInstanceId)",
            "pulumi up --replace <instance URN>",
            "journalctl -u leanstack-backup -n 5 --no-pager",
            "python -m leanstack restart prod",
            "pulumi state delete --stack prod urn:pulumi:prod::leanstack::x$y::z",
            "```",
        ]
    )
    found = _violations(old, "prod")
    assert any(v.startswith("aws without --region") for v in found)
    assert sum(v.startswith("pulumi without --stack") for v in found) == 2
    assert any(v.startswith("journalctl without sudo") for v in found)
    assert any(v.startswith("day-2 command without --region") for v in found)
    assert sum(v.startswith("URN not in single quotes") for v in found) == 2


@pytest.mark.parametrize("stack", STACKS)
def test_every_command_is_pinned_quoted_and_sudo_where_the_journal_needs_it(
    stack: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    run = _run_of(stack, dev, prod, scale)
    text = runbook_markdown(run, config_of(run))
    assert _violations(text, stack) == []
    # The sheet names the app's units and tool where it looks at the app.
    alarms = text.split("\n## Alarms", 1)[1]
    assert "sudo leanstack-app status" in alarms and "sudo journalctl -u 'leanstack-app@*'" in alarms


def _session_problems(branch: Branch) -> list[str]:
    problems = []
    for i, step in enumerate(branch.steps):
        if step.where != HOST:
            continue
        before = i - 1
        while before >= 0 and branch.steps[before].where == HOST:
            before -= 1
        opener = branch.steps[before] if before >= 0 else None
        if opener is None or not opener.opens_session or opener.only not in ("", step.only):
            problems.append(f"{branch.heading} step {i + 1}: on the host without a session opened for it")
    return problems


def _undo_problems(branch: Branch) -> list[str]:
    problems = []
    steps = branch.steps
    created = {n for s in steps for c in s.commands for n in re.findall(r"CREATE TABLE (\w+)", c)}
    for name in created:
        if any(f"`{name}`" in u for u in branch.undo) and name not in branch.keeps:
            problems.append(f"{branch.heading}: the undo needs {name}, not kept")
    for i, step in enumerate(steps):
        text = " ".join(step.commands)
        for name in branch.keeps:
            if re.search(rf"DROP TABLE {name}\b", text) and "sure" not in step.only:
                problems.append(f"{branch.heading} step {i + 1}: drops {name}, which the undo needs")
        for swapped in re.findall(r"--use-restored (\w+)", text):
            for j, later in enumerate(steps[i + 1 :], i + 2):
                if re.search(rf"DROP DATABASE {swapped}\b", " ".join(later.commands)) and (
                    not step.only or not later.only or step.only == later.only
                ):
                    problems.append(
                        f"{branch.heading} step {j}: drops {swapped}, the app's database after step {i + 1}"
                    )
    return problems


def _customer_file_problems(branch: Branch) -> list[str]:
    problems = []
    for i, step in enumerate(branch.steps):
        for n, command in enumerate(step.commands):
            for path in re.findall(r"TO '(/[^']+)'", command):
                rest = [
                    *step.commands[n + 1 :],
                    *(c for s in branch.steps[i + 1 :] if s.only == step.only for c in s.commands),
                ]
                if not any(re.match(rf"(shred -u|rm -f?) {re.escape(path)}\b", c) for c in rest):
                    problems.append(f"{branch.heading} step {i + 1}: {path} holds customer rows and is never removed")
    return problems


def test_the_branch_reader_catches_a_broken_branch() -> None:
    """The old rows-deleted branch: drops the table its undo keeps, drops the swapped-in database, leaves the CSV."""
    broken = Branch(
        "Rows deleted or corrupted",
        "x",
        "y",
        (
            Step("restore", HOST, ("sudo leanstack-restore",)),
            Step(
                "copy",
                HOST,
                ("psql -c \"\\copy (SELECT 1) TO '/tmp/rows.csv' CSV\"", "psql -c 'CREATE TABLE restored_rows'"),
            ),
            Step("swap", HOST, ("sudo leanstack-restore --swap --use-restored RESTORED",)),
            Step("clean", HOST, ('psql -c "DROP TABLE restored_rows"', 'psql -c "DROP DATABASE RESTORED"')),
        ),
        undo=("reverse it with the rows in `restored_rows`",),
    )
    assert len(_session_problems(broken)) == 4
    assert _undo_problems(broken) == [
        "Rows deleted or corrupted: the undo needs restored_rows, not kept",
        "Rows deleted or corrupted step 4: drops RESTORED, the app's database after step 3",
    ]
    assert _customer_file_problems(broken) == [
        "Rows deleted or corrupted step 2: /tmp/rows.csv holds customer rows and is never removed"
    ]
    kept = dataclasses.replace(broken, keeps=("restored_rows",))
    assert "Rows deleted or corrupted step 4: drops restored_rows, which the undo needs" in _undo_problems(kept)


@pytest.mark.parametrize("stack", STACKS)
def test_every_branch_keeps_the_3am_rules(stack: str, dev: StackRun, prod: StackRun, scale: StackRun) -> None:
    run = _run_of(stack, dev, prod, scale)
    for branch in branches_of(run):
        name = branch.heading
        # Every step that runs something says how to see that it worked.
        for n, step in enumerate(branch.steps, 1):
            assert not step.commands or step.check, f"{name} step {n}: no check"
            if any(re.search(r"pulumi (up|preview)", c) for c in step.commands):
                assert any("STOP" in p for p in step.preview) and any("fine" in p for p in step.preview), (name, n)
                assert BEFORE_PULUMI in step.text, f"{name} step {n}: runs pulumi without pointing to what it needs"
        assert _session_problems(branch) == []
        assert _undo_problems(branch) == []
        assert _customer_file_problems(branch) == []
        # It ends with the alarms back to OK and the owner told.
        alarms, tell = branch.steps[-2:]
        assert alarms.commands and all("describe-alarms" in c and "--state-value ALARM" in c for c in alarms.commands)
        assert tell.text.startswith("Tell the owner") and tell.check


def test_alarm_steps_on_a_host_say_how_to_open_the_session(dev: StackRun, prod: StackRun, scale: StackRun) -> None:
    for run in (dev, prod, scale):
        for anchor, steps in alarm_steps(run, config_of(run)).items():
            for step in steps:
                if re.search(r"\bon (the|that|a|each|the jobs) host\b", step, flags=re.I):
                    assert "aws ssm start-session --region" in step, (anchor, step)


def test_the_facts_of_the_stack_are_stated(prod: StackRun, scale: StackRun, run_with_key: StackRun) -> None:
    one = runbook_markdown(prod, config_of(prod))
    assert "**Hosts**: one host (`host-instance`), not scaled out" in one
    assert "**Pulumi state**: must be outside us-east-1" in one
    assert "**Recovery key**: none" in one and "no sealed copy off-site" in one
    region = one.split("### Region down", 1)[1].split("\n## ", 1)[0]
    assert "secrets restore" not in region and "sealed copy (" not in region
    assert "python -m leanstack config prod-recovery set NAME --secret --region us-west-2" in region
    many = runbook_markdown(scale, config_of(scale))
    assert "**Hosts**: scaled out" in many
    host = many.split("### Host gone", 1)[1].split("\n### ", 1)[0]
    assert "describe-scaling-activities" in host and "--replace" not in host
    keyed = runbook_markdown(run_with_key, config_of(run_with_key, WITH_KEY))
    assert "**Recovery key**: set" in keyed
    region = keyed.split("### Region down", 1)[1].split("\n## ", 1)[0]
    assert "secrets restore prod --from-backup" in region and "never written to a file" in region


def test_the_recovery_credentials_and_the_mute_are_on_the_sheet(prod: StackRun) -> None:
    places = {
        "codeHosting": "vault 'GitHub org owner'",
        "pulumiState": "s3://acme-pulumi-state?region=eu-west-1, passphrase in vault 'pulumi prod'",
        "passwordManager": "1Password emergency kit in the office safe",
    }
    overrides = {"leanstack:recovery": {"credentials": places}}
    text = runbook_markdown(prod, config_of(prod, overrides))
    people = text.split("## Who recovers what", 1)[1].split("\n## ", 1)[0]
    for label, value in (
        ("Code hosting (the repository)", places["codeHosting"]),
        ("Pulumi state and its passphrase", places["pulumiState"]),
        ("Password manager (emergency access)", places["passwordManager"]),
    ):
        assert f"- **{label}**: {value}" in people
    # The state's URL, when given, is the login itself; the rest of what pulumi needs, each with a check.
    before = text.split(f"### {BEFORE_PULUMI}", 1)[1].split("\n### ", 1)[0]
    assert "pulumi login s3://acme-pulumi-state?region=eu-west-1   # recovery.credentials.pulumiState" in before
    for needle in (
        "read -rs PULUMI_CONFIG_PASSPHRASE",
        "export AWS_PROFILE=",
        "CLOUDFLARE_API_TOKEN",
        "aws sts get-caller-identity --region us-east-1",
        "pulumi config --stack prod --show-secrets > /dev/null && echo passphrase ok",
        "pulumi config get cloudflare:apiToken --stack prod",
    ):
        assert needle in before, needle
    plain = runbook_markdown(prod, config_of(prod))
    assert "pulumi login BACKEND   # BACKEND: the state URL (recovery.credentials.pulumiState)" in plain
    assert "aws cloudwatch disable-alarm-actions --region us-east-1 --alarm-names NAME" in text
    assert "aws cloudwatch enable-alarm-actions --region us-east-1 --alarm-names NAME" in text


def test_a_state_in_the_stack_region_or_a_credential_is_refused() -> None:
    raw = read_stack_config("prod")
    for value, message in (
        ("s3://acme-state?region=us-east-1", "names us-east-1; expected Pulumi state outside aws:region"),
        ("https://user:hunter2@state.example.com", "no user or password in the URL"),
        ("passphrase: correct-horse-battery-staple-xyz", "never the credential itself"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_stack_config(merged(raw, {"leanstack:recovery": {"credentials": {"pulumiState": value}}}), "prod")


def test_the_instance_deleted_branch_reads_in_order(prod: StackRun) -> None:
    branch = next(b for b in branches_of(prod) if b.heading == "Instance deleted")
    steps = list(branch.steps)
    old = next(n for n, s in enumerate(steps) if any("databaseAddress" in c for c in s.commands))
    wait = next(n for n, s in enumerate(steps) if any("aws rds wait db-instance-available" in c for c in s.commands))
    free = next(n for n, s in enumerate(steps) if any("delete-db-snapshot" in c for c in s.commands))
    adopt = next(n for n, s in enumerate(steps) if any("pulumi import" in c for c in s.commands))
    restart = next(n for n, s in enumerate(steps) if any("leanstack restart prod" in c for c in s.commands))
    assert old < wait < free < adopt < restart
    assert "OLD" in steps[wait].check
    assert "site stays down" in steps[restart].text and "curl" in steps[restart].check_commands[0]
    # The source when the owner cannot be reached.
    decide = next(s for s in steps if s.text.startswith("The owner picks the source"))
    assert "take the final snapshot" in decide.text
    # No host is replaced: the guide never calls a replaced host fine.
    guide = steps[adopt].preview
    assert [line for line in guide if "host-instance" in line] == [
        "+-aws:ec2/instance:Instance     host-instance       replace   STOP: no host is replaced here"
    ]
    assert "no host is replaced" in steps[adopt].check and "If a replace appears, stop" in steps[adopt].check
    # The snapshot restore has no --max-allocated-storage option, and says where the ceiling comes back.
    snapshot = next(s for s in steps if any("restore-db-instance-from-db-snapshot" in c for c in s.commands))
    assert "--max-allocated-storage" not in " ".join(snapshot.commands) and "storage ceiling" in snapshot.text
    assert branch.undo == ("The old instance is gone; nothing to switch back.",)


def test_the_rows_deleted_branch_uses_point_in_time_first(prod: StackRun) -> None:
    branch = next(b for b in branches_of(prod) if b.heading == "Rows deleted or corrupted")
    lines = [c for s in branch.steps for c in s.commands]
    pitr = next(n for n, c in enumerate(lines) if c.startswith('python -m leanstack db restore prod --to "T"'))
    dump = next(n for n, c in enumerate(lines) if c.startswith("sudo leanstack-restore --backup STAMP"))
    assert pitr < dump
    assert 'python -m leanstack db restore prod --to "T" --swap' in lines
    # The dump path is the fallback, marked as such.
    fallback = next(s for s in branch.steps if any(c.startswith("sudo leanstack-restore") for c in s.commands))
    assert fallback.only == "when point-in-time is out"


def test_one_branch_prints_on_its_own(prod: StackRun, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_of(prod)
    for name in BRANCH_NAMES:
        page = runbook_markdown(prod, config, name)
        headings = re.findall(r"^#{2,3} (.+)$", page, flags=re.M)
        assert headings[0] == "What is gone? Start here"  # the triage table first
        branch = next(b for b in recovery_branches(prod, config) if b.anchor == name)
        assert headings[-1] == branch.heading and f"\n### {branch.heading}\n" in page
        assert sum(h in TRIAGE for h in headings) == 1
        # Its link to what pulumi needs resolves on the page itself.
        if "#before-any-pulumi-step" in page:
            assert f"### {BEFORE_PULUMI}" in page
    assert [b.anchor for b in recovery_branches(prod, config)] == list(BRANCH_NAMES)
    # A name it lacks: one line listing the names, exit 2, before reading any stack file.
    assert main(["runbook", "prod", "--branch", "hosts-gone"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected one of rows-deleted-or-corrupted, app-database-dropped" in err


def test_the_host_previews_list_what_names_the_host_from_the_program(prod: StackRun) -> None:
    """The expected preview after a lost host is read from the program: what depends on the instance is updated."""
    host = prod.named("host-instance")
    dependents = {(r.type, r.name) for r in prod.resources if host.urn in r.dependencies}
    assert ("aws:ec2/eip:Eip", "host-ip") in dependents  # the Elastic IP moves to the new host
    branch = next(b for b in branches_of(prod) if b.heading == "Host gone")
    (rebuild,) = [s for s in branch.steps if "pulumi up --stack prod" in s.commands]
    (replace,) = [s for s in branch.steps if any("--replace 'urn:pulumi:prod::" in c for c in s.commands)]
    for step, first in ((rebuild, "+ "), (replace, "+-")):
        assert step.preview[0].startswith(f"{first}aws:ec2/instance:Instance ")
        updated = {tuple(line.split()[1:3]) for line in step.preview if line.startswith("~ ")}
        assert updated == dependents


def test_the_region_down_restore_call_is_one_the_tool_accepts(prod: StackRun) -> None:
    text = runbook_markdown(prod, config_of(prod)).split("### Region down", 1)[1]
    (arguments,) = re.findall(r"sudo leanstack-restore (--from-stack \S+)", text)
    RestoreOptions.parse(arguments.split())
