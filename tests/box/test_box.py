"""The host's promises, proven in the box: the dev stack's host booted from its real user data
(see support/box and docs/contributing.md, "The box"). One box per session; the tests run in file order and
each leaves the host serving."""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from leanstack.config import load_stack_config
from leanstack.host.agent import contract
from leanstack.mocks import run_program
from leanstack.runbook import HOST, Step, recovery_branches
from tests.box.conftest import BOX_OVERRIDES, BOX_WORKER, Box
from tests.conftest import merged, read_stack_config

pytestmark = pytest.mark.box


def enabled_units(box: Box) -> list[str]:
    """The units the booted user data enabled (runcmd's `systemctl enable [--now] UNIT`)."""
    document = yaml.safe_load(box.sh("cat /var/lib/cloud/instance/cloud-config.txt").stdout)
    return [command[-1] for command in document["runcmd"] if command[:2] == ["systemctl", "enable"]]


def test_every_unit_is_active_and_none_failed_after_boot(box: Box) -> None:
    assert box.sh("systemctl is-system-running", check=False).stdout.strip() == "running"
    assert box.sh("systemctl list-units --failed --no-legend --plain").stdout.strip() == ""
    assert box.sh("cloud-init status --long").stdout.count("status: done") == 1
    units = enabled_units(box)
    assert {"nginx.service", "leanstack-host-files.service", "leanstack-app-boot.service"} <= set(units)
    for unit in units:
        state = box.sh(f"systemctl is-active {unit}", check=False).stdout.strip()
        assert state == "active", f"{unit} is {state}"
    # The app serves from one of its two ports, under systemd.
    assert "active" in box.sh("systemctl is-active leanstack-app@3000 leanstack-app@3001", check=False).stdout


def test_backup_drill_and_config_timers_are_scheduled(box: Box) -> None:
    listed = box.sh("systemctl list-timers --all --no-legend --plain").stdout
    for timer in ("leanstack-backup.timer", "leanstack-restore-drill.timer", "leanstack-app-config.timer"):
        line = next((row for row in listed.splitlines() if timer in row), "")
        assert line, f"{timer} is not listed:\n{listed}"
        assert not line.startswith("n/a"), f"{timer} has no next run: {line}"


def test_site_answers_through_nginx_only_with_the_origin_pull_certificate(box: Box) -> None:
    health = box.get(box.values["BOX_HEALTH_PATH"])
    assert health.status == 200, health.body
    assert json.loads(box.get("/").body)["version"] == "v1"
    refused = box.get(box.values["BOX_HEALTH_PATH"], client_cert=False)
    assert refused.status == 400
    assert b"ok" not in refused.body


def worker_container(box: Box) -> dict[str, Any]:
    """`docker inspect` of the box worker's first copy, once it runs."""
    container = contract.process_container(BOX_WORKER, 1)
    box.wait(f"docker inspect -f '{{{{.State.Running}}}}' {container} | grep -qx true", timeout=60)
    inspected: dict[str, Any] = json.loads(box.sh(f"docker inspect {container}").stdout)[0]
    return inspected


def app_config_parameter(box: Box) -> dict[str, Any]:
    name = f"{box.app_config()['parameters_path']}/config"
    return dict(json.loads(box.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]))


def deploy_when_free(box: Box, tag: str) -> subprocess.CompletedProcess[str]:
    """`leanstack-app deploy TAG`, once a restart the config timer started (after a config change) is done."""
    deadline = time.monotonic() + 180
    while True:
        done = box.sh(f"leanstack-app deploy {tag}", check=False)
        if done.returncode == 0:
            return done
        if "another deploy is running" not in done.stderr or time.monotonic() > deadline:
            pytest.fail(f"leanstack-app deploy {tag}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        time.sleep(2)


def test_a_worker_from_app_processes_runs_restarts_on_deploy_and_when_killed(box: Box) -> None:
    # Runs before any test here rewrites the app's config: the worker came from the stack config.
    seeded = app_config_parameter(box)
    assert BOX_WORKER in seeded.get("processes", {}), seeded
    unit = contract.process_unit(BOX_WORKER, 1)
    box.wait(f"systemctl is-active {unit}", timeout=60)
    first = worker_container(box)
    # The serving release's image (the box app's version is its tag).
    assert first["Config"]["Image"].rsplit(":", 1)[1] == serving(box), first["Config"]["Image"]
    # No port: nothing published, nothing exposed to the host.
    assert not first["HostConfig"]["PortBindings"] and not first["NetworkSettings"]["Ports"], first["NetworkSettings"]
    assert "python3 -c import itertools" in box.sh(f"docker top {first['Name'].lstrip('/')} -o pid,args").stdout

    # A deploy restarts the worker on the new image, after the release command.
    push(box, "w2")
    since = box.sh("date +%s").stdout.strip()
    set_app_config(box, {**seeded, "release_command": ["python3", "-c", "print('migrated')"]})
    try:
        said = deploy_when_free(box, "w2").stdout.splitlines()
    finally:
        set_app_config(box, seeded)
    released = next(i for i, line in enumerate(said) if "the release command of w2 succeeded" in line)
    restarted = next(i for i, line in enumerate(said) if f"processes: {BOX_WORKER} x1;" in line)
    assert released < restarted and "1 restarted" in said[restarted], said
    second = worker_container(box)
    assert second["Id"] != first["Id"]
    assert second["Config"]["Image"] == first["Config"]["Image"].rsplit(":", 1)[0] + ":w2"
    assert box.sh(f"systemctl is-active {unit}").stdout.strip() == "active"
    # docker stop's SIGTERM reached the loop through docker's init: a clean stop, no restart counted.
    journal = f"journalctl -u {unit} --since @{since} --no-pager"
    assert f"process {BOX_WORKER} 1 ended" not in box.sh(journal).stdout

    # Killed, the container is replaced by systemd (Restart=on-failure, 5 s later).
    box.sh(f"docker kill {second['Name'].lstrip('/')}")
    box.wait(
        f"test \"$(docker inspect -f '{{{{.Id}}}}' {second['Name'].lstrip('/')} 2>/dev/null)\" != {second['Id']} "
        f"&& systemctl is-active {unit}",
        timeout=60,
    )
    third = worker_container(box)
    assert third["Id"] != second["Id"] and third["Config"]["Image"] == second["Config"]["Image"]
    assert int(box.sh(f"systemctl show -p NRestarts --value {unit}").stdout.strip()) >= 1
    # systemd told the unit's ExecStopPost why it ended (SERVICE_RESULT), so the exit was counted.
    assert f"process {BOX_WORKER} 1 ended (exit-code, exit 137); systemd restarts it" in box.sh(journal).stdout


def test_a_deploy_stops_the_old_versions_unit_cleanly_not_failed(box: Box) -> None:
    old_port = box.sh("leanstack-app status").stdout.split(" on port ", 1)[1].split()[0]
    push(box, "w3")
    deploy_when_free(box, "w3")
    state = box.sh(f"systemctl show -p ActiveState -p Result leanstack-app@{old_port}").stdout.split()
    # docker stop's SIGTERM ends `docker run` with 143: the stop the deploy asked for, not a failure.
    assert sorted(state) == ["ActiveState=inactive", "Result=success"], state
    assert box.sh("systemctl list-units --failed --no-legend --plain").stdout.strip() == ""


@contextmanager
def request_loop(box: Box) -> Iterator[Counter[str]]:
    """Requests one after another through nginx until the block ends; counts each answer."""
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                response = box.get("/")
                seen[
                    json.loads(response.body)["version"] if response.status == 200 else f"status {response.status}"
                ] += 1
            except Exception as error:
                seen[f"error {type(error).__name__}"] += 1

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        yield seen
    finally:
        stop.set()
        worker.join(30)


def push(box: Box, tag: str) -> None:
    """A new release of the app image in the box's registry (as CI pushes to ECR)."""
    repository = box.values["BOX_REGISTRY_REPOSITORY"]
    box.sh(
        f"docker import --change 'CMD [\"python3\", \"/app/server.py\"]' --change 'ENV APP_VERSION={tag}' "
        f"--change 'ENV APP_HEALTH_PATH={box.values['BOX_HEALTH_PATH']}' "
        f"/var/tmp/app.tar {repository}:{tag} >/dev/null "
        f"&& docker push --quiet {repository}:{tag} >/dev/null && docker image rm {repository}:{tag} >/dev/null"
    )


def serving(box: Box) -> str:
    return str(json.loads(box.get("/").body)["version"])


def test_blue_green_deploy_under_a_request_loop_fails_no_request(box: Box) -> None:
    push(box, "v2")
    before = serving(box)
    with request_loop(box) as seen:
        time.sleep(1)
        box.sh("leanstack-app deploy v2")
        time.sleep(1)
    assert serving(box) == "v2"
    assert set(seen) <= {before, "v2"}, seen
    assert seen["v2"] > 0 and seen[before] > 0, seen


def set_app_config(box: Box, value: dict[str, object]) -> None:
    """The app's config parameter in SSM, as `pulumi up` or the config CLI writes it."""
    name = f"{box.app_config()['parameters_path']}/config"
    box.client("ssm").put_parameter(Name=name, Type="String", Value=json.dumps(value), Overwrite=True)


def test_a_failing_release_command_leaves_the_old_version_serving(box: Box) -> None:
    before = serving(box)
    push(box, "v3")
    set_app_config(box, {"env": {}, "secrets": {}, "release_command": ["python3", "-c", "raise SystemExit(3)"]})
    try:
        failed = box.sh("leanstack-app deploy v3", check=False)
        assert failed.returncode != 0
        assert "release command" in failed.stderr
        assert serving(box) == before
        assert box.get(box.values["BOX_HEALTH_PATH"]).status == 200
    finally:
        set_app_config(box, {"env": {}, "secrets": {}})


def test_a_one_off_run_runs_in_a_fresh_container_of_the_serving_image(box: Box) -> None:
    done = box.sh('leanstack-app run -- python3 -c \'import os; print("one-off", os.environ["APP_VERSION"])\'')
    assert f"one-off {serving(box)}" in done.stdout


def test_maintenance_on_and_off(box: Box) -> None:
    box.sh("leanstack-maintenance on --message 'Back soon'")
    try:
        page = box.get("/")
        assert page.status == 503
        assert b"Back soon" in page.body
    finally:
        box.sh("leanstack-maintenance off")
    assert box.get("/").status == 200


def test_a_job_fires_from_its_timer_and_runs_once_when_triggered_twice(box: Box) -> None:
    # It prints "tick ran"; its command line (which the tool logs) does not hold that text.
    job = ["python3", "-c", "import time; print('tick', 'ran', flush=True); time.sleep(20)"]
    since = box.sh("date +%s").stdout.strip()
    # Once, a few seconds from now: a later run of the timer cannot blur the count.
    at = box.sh("date -u -d '+10 sec' '+%H:%M:%S'").stdout.strip()
    schedule = f"*-*-* {at} UTC"
    set_app_config(box, {"env": {}, "secrets": {}, "jobs": {"tick": {"schedule": schedule, "command": job}}})
    try:
        box.sh("leanstack-app sync-jobs")
        unit = box.sh("ls /etc/systemd/system | grep '^leanstack-job.*tick.*service$'").stdout.strip()
        assert box.sh(f"systemctl is-active {unit.removesuffix('.service')}.timer").stdout.strip() == "active"
        # The timer starts it (systemd's default accuracy of a minute, plus the unit's random delay).
        box.wait(
            f"journalctl -u {unit} --since @{since} --no-pager | grep -q Starting "
            f"&& systemctl show -p ActiveState --value {unit} | grep -qx activating",
            timeout=150,
        )
        # A second run while that one goes on is skipped, not run beside it.
        second = box.sh("leanstack-app job tick", check=False)
        assert second.returncode == 0
        assert "still running" in second.stdout + second.stderr
        assert "tick ran" not in second.stdout + second.stderr
        box.wait(f"systemctl show -p ActiveState --value {unit} | grep -qvx activating", timeout=120)
        assert box.sh(f"journalctl -u {unit} --since @{since} --no-pager | grep -c 'tick ran'").stdout.strip() == "1"
        assert box.sh(f"systemctl show -p Result --value {unit}").stdout.strip() == "success"
    finally:
        set_app_config(box, {"env": {}, "secrets": {}})
        box.sh("leanstack-app sync-jobs")
    assert box.sh("ls /etc/systemd/system | grep -c '^leanstack-job' || true").stdout.strip() == "0"


def test_a_job_removed_before_its_timer_run_ends_well_and_no_cleanup_complains(box: Box) -> None:
    since = box.sh("date +%s").stdout.strip()
    config = app_config_parameter(box)
    job = ["python3", "-c", "print('tock', 'ran')"]
    set_app_config(box, {**config, "jobs": {"tock": {"schedule": "*-*-* 04:00:00", "command": job}}})
    try:
        box.sh("leanstack-app sync-jobs")
        unit = contract.job_unit("tock")
        box.sh(f"systemctl start {unit}")
        assert box.sh(f"systemctl show -p Result --value {unit}").stdout.strip() == "success"
        # The deploy has taken the job out of the config; its timer fires before sync-jobs runs.
        set_app_config(box, config)
        box.sh(f"systemctl start {unit}")
        assert box.sh(f"systemctl show -p Result --value {unit}").stdout.strip() == "success"
    finally:
        set_app_config(box, config)
        box.sh("leanstack-app sync-jobs")
    said = box.sh(f"journalctl -u {unit} --since @{since} --no-pager").stdout
    assert "tock ran" in said and "job tock was removed from the app's config" in said, said
    assert "No such container" not in said, said
    assert box.sh("systemctl list-units --failed --no-legend --plain").stdout.strip() == ""


def test_a_config_change_is_applied_by_the_reload_timers_unit_without_a_failed_request(box: Box) -> None:
    before = json.loads(box.get("/").body)
    assert before["env"].get("BOX_GREETING") is None
    with request_loop(box) as seen:
        set_app_config(box, {"env": {"BOX_GREETING": "hello"}, "secrets": {}})
        # What leanstack-app-config.timer starts every two minutes (the timer's schedule is checked above).
        box.sh("systemctl start leanstack-app-config.service")
    assert json.loads(box.get("/").body)["env"] == {"BOX_GREETING": "hello"}
    assert set(seen) == {before["version"]}, seen


def test_a_backup_unit_writes_a_dump_to_the_backup_bucket(box: Box) -> None:
    box.sh(
        "runuser -u postgres -- psql -q -d app -c "
        '"CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text); '
        "INSERT INTO notes (body) VALUES ('kept by the backup'); ALTER TABLE notes OWNER TO app;\""
    )
    box.sh("systemctl start leanstack-backup.service", timeout=300)
    assert box.sh("systemctl show -p Result --value leanstack-backup.service").stdout.strip() == "success"
    env = dict(line.split("=", 1) for line in box.sh("grep -v '^#' /etc/leanstack/backup.env").stdout.split())
    s3 = box.client("s3", env["BACKUP_BUCKET_REGION"].strip('"'))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=box.values["BOX_BACKUP_BUCKET"]).get("Contents", [])]
    assert any(key.endswith(".manifest.json") for key in keys), keys
    dumps = [key for key in keys if not key.endswith(".json")]
    assert dumps and s3.head_object(Bucket=box.values["BOX_BACKUP_BUCKET"], Key=dumps[0])["ContentLength"] > 0


# A process that tries the metadata service's address, saying which cgroup it ran in.
METADATA_PROBE = (
    "import socket\n"
    "print(open('/proc/self/cgroup').read().strip())\n"
    "try:\n"
    "    socket.create_connection(('169.254.169.254', 80), 3).close()\n"
    "    print('metadata: connected')\n"
    "except OSError as error:\n"
    "    print('metadata: refused', type(error).__name__, error)\n"
)


PROBE_DROP_IN = "/run/systemd/system/leanstack-restore-drill.service.d/metadata-probe.conf"


def test_the_drill_unit_passes_and_cannot_reach_the_metadata_service(box: Box) -> None:
    drill, credentials = "leanstack-restore-drill.service", "leanstack-restore-drill-credentials.service"
    denied = box.sh(f"systemctl show -p IPAddressDeny --value {drill}").stdout.split()
    assert set(denied) == {"169.254.169.254/32", "fd00:ec2::254/128"}, denied
    # The box has no metadata service: a stand-in listens on its address (the box's loopback),
    # reachable from outside the drill's unit, so a refusal inside it is the unit's doing.
    box.sh("ip addr add 169.254.169.254/32 dev lo")
    try:
        box.sh("systemd-run --unit=box-metadata-stand-in python3 -m http.server --bind 169.254.169.254 80")
        box.wait("python3 -c \"import socket; socket.create_connection(('169.254.169.254', 80), 3)\"", timeout=30)
        outside = box.sh(f"python3 -c {shlex.quote(METADATA_PROBE)}").stdout
        assert "metadata: connected" in outside, outside

        box.sh(f"cat > /run/metadata-probe.py <<'EOF'\n{METADATA_PROBE}EOF")
        # The probe runs as the drill's first step of its own: in the drill's unit (its cgroup,
        # where systemd's BPF filter sits, and its sandbox), as its user.
        box.sh(
            f"mkdir -p {PROBE_DROP_IN.rsplit('/', 1)[0]} && printf '[Service]\\nExecStartPre=/usr/bin/python3 "
            f"/run/metadata-probe.py\\n' > {PROBE_DROP_IN} && systemctl daemon-reload"
        )
        since = box.sh("date +%s").stdout.strip()
        box.sh(f"systemctl start {drill}", check=False, timeout=600)
    finally:
        box.sh(
            f"rm -f {PROBE_DROP_IN}; systemctl daemon-reload; systemctl stop box-metadata-stand-in.service;"
            " ip addr del 169.254.169.254/32 dev lo",
            check=False,
        )
    said = box.sh(f"journalctl -u {drill} --since @{since} --no-pager").stdout
    assert f"/system.slice/{drill}" in said and "metadata: refused" in said, said
    assert box.sh(f"systemctl show -p Result --value {drill}").stdout.strip() == "success"
    assert "restore drill ok" in said, said
    # backup.drillStartsApp: the serving image, started by the drill on its internal network against
    # the scratch database, answered its health path.
    assert "the app answered its health path" in said, said
    # The credentials came from the unit before it, and their file is gone with the drill.
    wrote = box.sh(f"journalctl -u {credentials} --since @{since} --no-pager").stdout
    assert "wrote /run/leanstack/drill-aws-credentials (0600)" in wrote, wrote
    assert box.sh("test -e /run/leanstack/drill-aws-credentials", check=False).returncode == 1


def test_restore_swap_with_the_app_serving(box: Box) -> None:
    box.sh("runuser -u postgres -- psql -q -d app -c \"INSERT INTO notes (body) VALUES ('after the backup');\"")
    with request_loop(box) as seen:
        done = box.sh("leanstack-restore --swap", timeout=600)
    assert "to undo the switch" in done.stdout + done.stderr
    rows = box.sh("runuser -u postgres -- psql -qtA -d app -c 'SELECT body FROM notes ORDER BY id'").stdout.split("\n")
    assert "kept by the backup" in rows and "after the backup" not in rows
    # Users saw the app or the maintenance page while it switched, never an error.
    assert set(seen) <= {serving(box), "status 503"}, seen
    assert box.get(box.values["BOX_HEALTH_PATH"]).status == 200


def test_the_seal_job_writes_its_bundle(box: Box) -> None:
    box.sh("systemctl start leanstack-seal-secrets.service", timeout=300)
    assert box.sh("systemctl show -p Result --value leanstack-seal-secrets.service").stdout.strip() == "success"
    env = dict(line.split("=", 1) for line in box.sh("grep -v '^#' /etc/leanstack/backup.env").stdout.split())
    s3 = box.client("s3", env["BACKUP_BUCKET_REGION"].strip('"'))
    listed = s3.list_objects_v2(Bucket=box.values["BOX_BACKUP_BUCKET"], Prefix="sealed-secrets/dev/")
    (bundle,) = [o["Key"] for o in listed.get("Contents", [])]
    sealed = json.loads(s3.get_object(Bucket=box.values["BOX_BACKUP_BUCKET"], Key=bundle)["Body"].read())
    # Sealed: the app's config parameter is in it only as ciphertext.
    assert '"env"' not in json.dumps(sealed)


CREDENTIALS = (
    "import boto3; c = boto3.Session().get_credentials(); "
    "print('key', c.get_frozen_credentials().access_key if c else 'none')"
)


def test_boto3_in_an_app_container_gets_the_app_roles_credentials_and_a_container_without_the_token_none(
    box: Box,
) -> None:
    assert box.sh("systemctl is-active leanstack-credentials.service").stdout.strip() == "active"
    done = box.sh(f'leanstack-app run -- python3 -c "{CREDENTIALS}"')
    key = done.stdout.split("key ", 1)[1].split()[0]
    # moto's STS hands out assumed-role keys (ASIA...); the host's own stand-in key is "box".
    assert key.startswith("ASIA"), done.stdout
    image = json.loads(box.sh("cat /var/lib/leanstack/app/current.json 2>/dev/null || echo '{}'").stdout).get("image")
    image = image or box.sh("docker ps --filter name=app- --format '{{.Image}}' | head -1").stdout.strip()
    uri = box.sh(". /etc/leanstack/credentials.env; echo http://$LISTEN_ADDRESS:$LISTEN_PORT/leanstack/credentials")
    tokenless = box.sh(
        f"docker run --rm -e AWS_CONTAINER_CREDENTIALS_FULL_URI={uri.stdout.strip()} "
        f'{image} python3 -c "{CREDENTIALS}"',
        check=False,
    )
    assert "key ASIA" not in tokenless.stdout, tokenless.stdout


def as_session_user(box: Box, command: str) -> subprocess.CompletedProcess[str]:
    """`command` as the SSM session's user (ssm-user: sudo, none of the journal's groups)."""
    return box.sh(f"su - ssm-user -c {shlex.quote(command)}", check=False, timeout=600)


def dropped_database_steps() -> list[Step]:
    config = merged(read_stack_config("dev"), BOX_OVERRIDES)
    branches = recovery_branches(run_program("dev", config), load_stack_config(config, "dev"))
    branch = next(b for b in branches if b.heading == "App database dropped")
    return [step for step in branch.steps if step.where == HOST]


def test_the_sheets_host_commands_run_as_the_session_user(box: Box) -> None:
    """The sheet's "App database dropped" branch, its host commands as written (RESTORED filled in)."""
    restore, swap, backup = dropped_database_steps()
    (command,) = restore.commands
    restored = as_session_user(box, command)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    name = restored.stdout.split("--use-restored ", 1)[1].split()[0]
    (command,) = swap.commands
    switched = as_session_user(box, command.replace("RESTORED", name))
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert box.get(box.values["BOX_HEALTH_PATH"]).status == 200
    (command,) = backup.commands
    assert as_session_user(box, command).returncode == 0
    assert box.sh("systemctl show -p Result --value leanstack-backup.service").stdout.strip() == "success"


def test_the_sheets_backup_check_shows_the_backup_to_the_session_user(box: Box) -> None:
    *_, backup = dropped_database_steps()
    (check,) = backup.check_commands
    shown = as_session_user(box, check)
    assert "No entries" not in shown.stdout + shown.stderr
    assert "leanstack-backup" in shown.stdout
