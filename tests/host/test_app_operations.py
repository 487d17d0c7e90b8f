"""`leanstack-app`'s day-2 operations, run for real: the app's config from moto's SSM, the
release command against Debian's PostgreSQL, one-off commands, scheduled jobs with their
flock, metrics (moto's CloudWatch) and systemd units (systemd-analyze).

The host is test_deploy's: Debian's nginx in front of processes standing in for the
containers, the stand-in `aws` for the secret references. Here `docker` is
tests/host/stand_in_docker.py, which also runs commands (a release command, a job, a
one-off) with only the environment the container would get.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import pytest

from leanstack.host.agent.app_config import ReservedName
from leanstack.host.agent.app_parameters import env_parameter
from leanstack.host.agent.containers import docker_environment
from support.servers import PostgresServer
from support.system import require_program
from tests.host.app_host import DATABASE_SECRET, REGION, AppHost, Load, one_line, verify_units
from tests.host.helpers import APP_PASSWORD, APP_USER


def test_the_app_gets_its_ssm_config_release_and_redis_url_and_no_value_is_in_argv_or_a_file(
    app_host: AppHost,
) -> None:
    app_host.host.set_secret("stripe", "sk_live_from_secrets")
    app_host.host.set_secret("cache-token", "tok/en+1")
    app_host.put_config(
        env={"GREETING_FROM_STACK": "hello", "OVERRIDDEN": "stack value"},
        secrets={"STRIPE_KEY": f"/leanstack/{app_host.stack}/app/stripe"},
        cache={"host": "cache.internal", "port": 6379, "token": f"/leanstack/{app_host.stack}/cache-token"},
    )
    # More parameters than one GetParametersByPath page (10) holds: every page is read.
    for number in range(12):
        app_host.set_env(f"SETTING_{number}", f"value {number}")
    app_host.set_env("OVERRIDDEN", "set by the CLI")
    app_host.set_secret("SESSION_KEY", "session-secret-123")

    app_host.host.deploy("v1")

    environment = app_host.app_environment()
    assert {f"SETTING_{n}" for n in range(12)} <= set(environment)
    assert environment["SETTING_11"] == "value 11"
    assert environment["GREETING_FROM_STACK"] == "hello"
    assert environment["OVERRIDDEN"] == "set by the CLI"
    assert environment["SESSION_KEY"] == "session-secret-123"
    assert environment["STRIPE_KEY"] == "sk_live_from_secrets"
    assert environment["LEANSTACK_RELEASE"] == "v1"
    assert environment["REDIS_URL"] == "rediss://:tok%2Fen%2B1@cache.internal:6379"
    assert environment["DATABASE_PASSWORD"] == "first-password"
    assert environment["PORT"] == "3000"
    # The values reach docker through its environment only: not its argv, not a file.
    (served,) = [run for run in app_host.runs() if "--publish" in run["argv"]]
    secrets = ("sk_live_from_secrets", "session-secret-123", "tok/en+1", "value 11", "set by the CLI")
    assert not any(secret in arg for arg in served["argv"] for secret in secrets)
    written = [p for p in app_host.host.directory.rglob("*") if p.is_file() and p.name != "docker-runs.jsonl"]
    for path in written:
        if "fake" in path.parts and path.parent.name == "secrets":
            continue  # the stand-in aws's own store
        text = path.read_text(errors="replace")
        assert not any(secret in text for secret in secrets[:3]), path


def test_a_config_change_reaches_the_app_blue_green_with_zero_failed_requests(app_host: AppHost) -> None:
    app_host.put_config(env={"FEATURE": "off"})
    app_host.host.deploy("v1")
    unchanged = app_host.host.run("reload-config", "--if-changed")
    assert unchanged.returncode == 0, unchanged.stderr
    assert "the app's config is unchanged" in unchanged.stdout
    assert app_host.app_environment()["FEATURE"] == "off"

    app_host.set_env("FEATURE", "on")
    with Load(app_host.host) as load:
        load.wait_for(20)
        done = app_host.host.run("reload-config", "--if-changed")
        finished = time.monotonic()
        load.wait_for(20)

    assert done.returncode == 0, done.stdout + done.stderr
    assert load.failures == [], load.failures[:5]
    assert set(load.versions(after=finished)) == {"v1"}
    assert app_host.app_environment()["FEATURE"] == "on"
    assert app_host.host.current()["port"] == app_host.host.ports[1]
    again = app_host.host.run("reload-config", "--if-changed")
    assert "unchanged" in again.stdout
    print(f"\nconfig change: {len(load.results)} requests, 0 failed")


def test_a_missing_config_or_a_reserved_name_fails_with_one_line_and_changes_nothing(app_host: AppHost) -> None:
    done = app_host.host.run("deploy", "v1")
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"leanstack-app: {app_host.path}/config: parameter not found (pulumi up writes it); "
        "the app cannot start without it"
    )
    assert not (app_host.host.directory / "state" / "current.json").exists()

    app_host.put_config(env={})
    app_host.set_env("DATABASE_PASSWORD", "nope")
    done = app_host.host.run("deploy", "v1")
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"leanstack-app: {app_host.path}/env/DATABASE_PASSWORD: 'DATABASE_PASSWORD' is refused: DATABASE_* names "
        "are reserved: leanstack sets DATABASE_HOST, _PORT, _NAME, _USER and _PASSWORD; leanstack never passes it "
        "to docker or the app (unset it: python -m leanstack config STACK unset NAME)"
    )

    app_host.ssm().delete_parameter(Name=env_parameter(app_host.path, "DATABASE_PASSWORD"))
    app_host.put_config(secrets={"MISSING": f"/leanstack/{app_host.stack}/nowhere"})
    ran = app_host.host.run("deploy", "v1")
    assert ran.returncode == 1
    assert "cannot read /leanstack/" in one_line(ran.stderr) and "ParameterNotFound" in ran.stderr


def test_reserved_names_planted_in_ssm_are_refused_and_never_reach_docker(app_host: AppHost) -> None:
    """Issue 21: DOCKER_HOST, LD_PRELOAD and an https AWS_CONTAINER_CREDENTIALS_FULL_URI written
    under the app's path (by a forged bundle's restore, or anyone who can write there) reached the
    root docker CLI's own environment. Now the start is refused with one line and a metric, the
    version that serves keeps serving, and no docker call carries them."""
    app_host.put_config(env={"GREETING": "hello"})
    app_host.host.deploy("v1")
    app_host.set_env("DOCKER_HOST", "tcp://203.0.113.9:2375")
    app_host.set_env("LD_PRELOAD", "/nonexistent/evil.so")
    app_host.set_secret("AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://203.0.113.9/credentials")

    for command in (("deploy", "v2"), ("reload-config",), ("run", "--", "true")):
        done = app_host.host.run(*command)
        assert done.returncode == 1, command
        line = one_line(done.stderr)
        assert "is refused:" in line and "leanstack never passes it to docker or the app" in line, line
    # The first name in the path's order is named; each is reserved for its own reason.
    assert "/app/env/DOCKER_HOST: 'DOCKER_HOST' is refused: DOCKER_* names are reserved: the docker CLI" in line
    assert app_host.host.get()["version"] == "v1"
    runs = app_host.runs()
    assert runs and all(run["docker_environment"] == {} for run in runs), runs
    assert not [run for run in runs if {"DOCKER_HOST", "LD_PRELOAD"} & set(run.get("environment", {}))]
    assert _job_metrics(app_host)[("ReservedNameRefused", "")] == 3.0


def test_docker_never_gets_a_reserved_name_leanstack_does_not_set() -> None:
    """The last check before docker: whatever the config parser let through, a reserved name
    reaches the docker CLI's environment only when leanstack sets it."""
    assert docker_environment({"PATH": "/usr/bin"}, {"DATABASE_HOST": "db", "GREETING": "hi"}) == {
        "PATH": "/usr/bin",
        "DATABASE_HOST": "db",
        "GREETING": "hi",
    }
    for name in ("DOCKER_HOST", "LD_PRELOAD", "PATH", "HOME", "AWS_ACCESS_KEY_ID", "LEANSTACK_X", "BASH_ENV"):
        with pytest.raises(ReservedName, match=rf"^the container's environment: '{name}' is refused: "):
            docker_environment({}, {name: "x"})


# A stand-in migration: creates a table and records that it ran, then fails or succeeds.
MIGRATION = r"""
import os, subprocess, sys
psql = os.path.join(sys.argv[1], "psql")
release = os.environ["LEANSTACK_RELEASE"]
sql = "CREATE TABLE IF NOT EXISTS migrated (release text); INSERT INTO migrated VALUES ('%s');" % release
subprocess.run(
    [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", os.environ["DATABASE_HOST"], "-p", os.environ["DATABASE_PORT"],
     "-U", os.environ["DATABASE_USER"], "-d", os.environ["DATABASE_NAME"], "-c", sql],
    env={**os.environ, "PGPASSWORD": os.environ["DATABASE_PASSWORD"]}, check=True,
)
print("migrating", os.environ["LEANSTACK_RELEASE"])
if "bad" in os.environ["LEANSTACK_RELEASE"]:
    print("step 2 of 3: adding column", flush=True)
    print("ERROR: column already exists", file=sys.stderr)
    sys.exit(1)
"""


def _migrated(postgres: PostgresServer, database: str) -> list[str]:
    out = postgres.psql("SELECT release FROM migrated ORDER BY release;", database=database)
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_a_failing_release_command_keeps_the_old_version_serving_and_the_database_as_it_left_it(
    app_host: AppHost, postgres: PostgresServer, app_database: str
) -> None:
    machine = app_host.host
    machine.configure(
        database={
            "host": "127.0.0.1",
            "port": postgres.port,
            "name": app_database,
            "user": APP_USER,
            "secret_arn": DATABASE_SECRET,
        }
    )
    machine.set_secret(DATABASE_SECRET.rsplit("/", 1)[-1], json.dumps({"username": APP_USER, "password": APP_PASSWORD}))
    migration = machine.directory / "migrate.py"
    migration.write_text(MIGRATION)
    app_host.put_config(release_command=[sys.executable, str(migration), str(postgres.bin_dir)])
    first = machine.deploy("v1")
    assert "migrating v1" in first.stdout

    with Load(machine) as load:
        load.wait_for(20)
        failed = machine.run("deploy", "v2-bad")
        load.wait_for(20)

    assert failed.returncode == 1
    assert one_line(failed.stderr) == (
        "leanstack-app: the release command of v2-bad exited 1 (migrating v2-bad | step 2 of 3: adding column | "
        "ERROR: column already exists); not deployed, the old version serves, the database is as the command left it"
    )
    assert load.failures == [], load.failures[:5]
    assert set(load.versions()) == {"v1"}
    assert machine.current()["image"].endswith(":v1")
    # No container of v2-bad ever served; the database keeps what the command wrote.
    assert not [run for run in app_host.runs() if "--publish" in run["argv"] and run["argv"][-1].endswith(":v2-bad")]
    assert _migrated(postgres, app_database) == ["v1", "v2-bad"]

    skipped = machine.run("deploy", "v3", "--skip-release-command")
    assert skipped.returncode == 0, skipped.stderr
    assert "migrating" not in skipped.stdout
    assert machine.get()["version"] == "v3"
    only = machine.run("release-command", "v4")
    assert only.returncode == 0, only.stderr
    assert _migrated(postgres, app_database) == ["v1", "v2-bad", "v4"]
    assert machine.get()["version"] == "v3"
    # The migration's container got the database credentials by name, never in argv.
    release_runs = [run for run in app_host.runs() if run.get("command")]
    assert all(APP_PASSWORD not in " ".join(run["argv"]) for run in release_runs)
    assert all(run["argv"][run["argv"].index("--name") + 1].startswith("release-") for run in release_runs)


def test_run_streams_a_one_off_command_in_the_serving_release_and_returns_its_code(app_host: AppHost) -> None:
    nothing = app_host.host.run("run", "--", "true")
    assert nothing.returncode == 1
    assert "nothing is deployed yet" in one_line(nothing.stderr)
    app_host.put_config(env={"GREETING": "hi"})
    app_host.set_secret("TOKEN", "one-off-secret")
    app_host.host.deploy("v1")
    script = (
        "import os, sys; print(os.environ['LEANSTACK_RELEASE'], os.environ['GREETING'], "
        "os.environ['TOKEN'], os.environ['DATABASE_USER'], 'PORT' in os.environ); sys.exit(3)"
    )

    done = app_host.host.run("run", "--", sys.executable, "-c", script)

    assert done.returncode == 3, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "v1 hi one-off-secret app False"
    (one_off,) = [run for run in app_host.runs() if run.get("command")]
    assert "--publish" not in one_off["argv"]
    assert not any("one-off-secret" in arg for arg in one_off["argv"])
    interactive = app_host.host.run("run", "--interactive", "--", "bash", "-l")
    assert interactive.returncode == 0
    assert interactive.stdout == "sudo /usr/local/sbin/leanstack-app run --tty -- bash -l\n"
    usage = app_host.host.run("run")
    assert usage.returncode == 2
    assert "run: no command given" in one_line(usage.stderr)


JOB = r"""
import os, sys, time
log = os.path.join(sys.argv[1], "job.log")
with open(log, "a") as handle:
    handle.write("start %s\n" % os.environ["LEANSTACK_RELEASE"])
time.sleep(float(sys.argv[2]))
with open(log, "a") as handle:
    handle.write("end\n")
sys.exit(int(sys.argv[3]))
"""


def _job_metrics(app_host: AppHost) -> dict[tuple[str, str], float]:
    cloudwatch = app_host.moto.session().client("cloudwatch", region_name=REGION, endpoint_url=app_host.moto.endpoint)
    found: dict[tuple[str, str], float] = {}
    namespace = f"Leanstack/{app_host.stack}"
    now = datetime.datetime.now(datetime.UTC)
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        dimensions = metric.get("Dimensions", [])
        job = next((d["Value"] for d in dimensions if d["Name"] == "Job"), "")
        statistics = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric["MetricName"],
            Dimensions=dimensions,
            StartTime=now - datetime.timedelta(hours=1),
            EndTime=now + datetime.timedelta(minutes=1),
            Period=3600,
            Statistics=["Sum"],
        )
        found[(metric["MetricName"], job)] = sum(point["Sum"] for point in statistics["Datapoints"])
    return found


def test_a_command_string_is_shell_form_and_a_list_exec_form_as_docker_takes_them(app_host: AppHost) -> None:
    """Issue 23 item 6: a string command (written by any tool into the app's config) runs
    through /bin/sh -c, as Docker's CMD; a list is the argv itself. What docker receives is
    checked, and the stand-in runs it as the container would."""
    out = app_host.host.state / "shell-form.out"
    app_host.put_config(
        release_command=f'echo "release $LEANSTACK_RELEASE" > {out}',
        jobs={
            "words": {"schedule": "hourly", "command": f"echo one  two >> {out} && echo three >> {out}"},
            "argv": {"schedule": "hourly", "command": ["/bin/echo", "one  two"]},
        },
    )
    app_host.host.deploy("v1")
    assert out.read_text() == "release v1\n"
    assert app_host.host.run("job", "words").returncode == 0
    assert out.read_text() == "release v1\none two\nthree\n"
    argv_job = app_host.host.run("job", "argv")
    assert argv_job.returncode == 0 and "one  two" in argv_job.stdout
    commands = [run["command"] for run in app_host.runs() if run.get("command")]
    assert commands == [
        ["/bin/sh", "-c", f'echo "release $LEANSTACK_RELEASE" > {out}'],
        ["/bin/sh", "-c", f"echo one  two >> {out} && echo three >> {out}"],
        ["/bin/echo", "one  two"],
    ]


def test_a_job_runs_once_under_two_triggers_and_publishes_its_result(app_host: AppHost) -> None:
    script = app_host.host.directory / "job.py"
    script.write_text(JOB)
    state = str(app_host.host.state)
    app_host.put_config(
        jobs={
            "report": {"schedule": "*-*-* 03:00:00", "command": [sys.executable, str(script), state, "1.5", "0"]},
            "broken": {"schedule": "hourly", "command": [sys.executable, str(script), state, "0", "4"]},
        }
    )
    app_host.host.deploy("v1")

    first = app_host.host.start("job", "report")
    second = app_host.host.start("job", "report")
    outputs = [process.communicate(timeout=60) for process in (first, second)]

    assert (first.returncode, second.returncode) == (0, 0), outputs
    log = (app_host.host.state / "job.log").read_text().splitlines()
    assert log == ["start v1", "end"]
    skipped = [out for out, _ in outputs if "job report is still running (" in out]
    assert len(skipped) == 1 and "skipped this run" in skipped[0], outputs

    failed = app_host.host.run("job", "broken")
    assert failed.returncode == 4
    assert "job broken failed (exit 4)" in failed.stdout
    unknown = app_host.host.run("job", "nightly")
    assert unknown.returncode == 1
    assert one_line(unknown.stderr) == "leanstack-app: job 'nightly' is not configured; configured: broken, report"
    metrics = _job_metrics(app_host)
    assert metrics[("JobSuccess", "report")] == 1 and metrics[("JobFailure", "report")] == 0
    assert metrics[("JobFailure", "broken")] == 1
    assert metrics[("JobFailure", "nightly")] == 1  # an unknown job counts: its timer fired for nothing
    # The Stack-only series (one alarm for every job) exists; moto sums it with the Stack+Job
    # ones (CloudWatch matches dimensions exactly), so its value is not checked here.
    assert ("JobFailure", "") in metrics and ("JobSuccess", "") in metrics


def test_sync_jobs_writes_units_systemd_accepts_and_removes_those_of_removed_jobs(app_host: AppHost) -> None:
    require_program("systemd-analyze", "systemd")
    machine = app_host.host
    calls = machine.state / "systemctl.log"
    for name, template in (("RELOAD", "daemon-reload"), ("ENABLE", "enable {unit}"), ("DISABLE", "disable {unit}")):
        key = "LEANSTACK_SYSTEMD_RELOAD" if name == "RELOAD" else f"LEANSTACK_JOB_{name}"
        machine.env[key] = f"sh -c 'echo \"$*\" >>{calls}' log {template}"
    units = Path(json.loads(Path(machine.env["LEANSTACK_APP_CONFIG"]).read_text())["unit_dir"])
    app_host.put_config(
        jobs={
            "report": {"schedule": "Mon..Fri *-*-* 03:00:00", "command": ["bin/report"]},
            "cleanup": {"schedule": "hourly", "command": ["bin/cleanup", "--old"]},
        }
    )

    done = machine.run("sync-jobs")

    assert done.returncode == 0, done.stderr
    assert "jobs: cleanup, report; 4 unit(s) written, 0 removed" in done.stdout
    names = sorted(os.listdir(units))
    assert names == [
        "leanstack-job-cleanup.service",
        "leanstack-job-cleanup.timer",
        "leanstack-job-report.service",
        "leanstack-job-report.timer",
    ]
    timer = (units / "leanstack-job-report.timer").read_text()
    for setting in ("OnCalendar=Mon..Fri *-*-* 03:00:00", "Persistent=true", "RandomizedDelaySec=30s"):
        assert f"\n{setting}\n" in timer, setting
    service = (units / "leanstack-job-report.service").read_text()
    assert "ExecStart=/usr/local/sbin/leanstack-app job report --from-timer\n" in service
    verified = verify_units(units, names)
    assert verified.returncode == 0, verified.stderr
    assert "leanstack" not in verified.stderr, verified.stderr
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable leanstack-job-cleanup.timer",
        "enable leanstack-job-report.timer",
    ]
    # The check can fail: a unit systemd refuses is reported.
    broken = units.parent / "broken"
    broken.mkdir()
    (broken / "leanstack-job-x.timer").write_text(timer.replace("OnCalendar=", "OnCalender="))
    assert verify_units(broken, ["leanstack-job-x.timer"]).stderr != ""

    unchanged = machine.run("sync-jobs")
    assert "0 unit(s) written, 0 removed" in unchanged.stdout
    app_host.put_config(jobs={"report": {"schedule": "not a time", "command": ["bin/report"]}})
    refused = machine.run("sync-jobs")
    assert refused.returncode == 1
    assert one_line(refused.stderr) == (
        "leanstack-app: jobs.report.schedule: 'not a time' is not a systemd OnCalendar expression"
    )
    assert sorted(os.listdir(units)) == names

    app_host.put_config(jobs={"report": {"schedule": "daily", "command": ["bin/report"]}})
    calls.unlink()
    changed = machine.run("sync-jobs")
    assert changed.returncode == 0, changed.stderr
    assert sorted(os.listdir(units)) == ["leanstack-job-report.service", "leanstack-job-report.timer"]
    assert calls.read_text().splitlines() == [
        "disable leanstack-job-cleanup.timer",
        "daemon-reload",
        "enable leanstack-job-report.timer",
    ]

    machine.configure(runs_jobs=False)
    elsewhere = machine.run("sync-jobs")
    assert "(this host runs no jobs)" in elsewhere.stdout
    assert os.listdir(units) == []


def _unit_command(service: str, setting: str) -> list[str]:
    """The arguments `leanstack-app` gets from the unit's `setting` (ExecStart, ExecStopPost)."""
    (line,) = [line for line in service.splitlines() if line.startswith(f"{setting}=")]
    program, *arguments = line.split("=", 1)[1].lstrip("-").split()
    assert program == "/usr/local/sbin/leanstack-app", line
    return arguments


def test_a_job_removed_while_its_timer_fires_exits_0_and_its_cleanup_is_quiet(app_host: AppHost) -> None:
    machine = app_host.host
    for key in ("LEANSTACK_SYSTEMD_RELOAD", "LEANSTACK_JOB_ENABLE", "LEANSTACK_JOB_DISABLE"):
        machine.env[key] = "true"
    units = Path(json.loads(Path(machine.env["LEANSTACK_APP_CONFIG"]).read_text())["unit_dir"])
    app_host.put_config(jobs={"tick": {"schedule": "minutely", "command": ["/bin/true"]}})
    machine.deploy("v1")
    assert machine.run("sync-jobs").returncode == 0
    service = (units / "leanstack-job-tick.service").read_text()
    start, stop_post = _unit_command(service, "ExecStart"), _unit_command(service, "ExecStopPost")

    # The deploy has written the config without tick; sync-jobs has not removed its timer yet,
    # and the timer fires: the run says what happened and ends well (no failed unit).
    app_host.put_config(jobs={})
    fired = machine.run(*start)
    assert fired.returncode == 0, fired.stderr
    assert "job tick was removed from the app's config; nothing to run" in fired.stdout
    assert not any(job == "tick" for _, job in _job_metrics(app_host)), "a removed job publishes nothing"
    # By hand, a job that is not configured is still an error.
    assert machine.run("job", "tick").returncode == 1

    # After every run the container is gone already (docker run --rm): the cleanup says nothing,
    # whichever way the docker CLI reports it (docker 20.10 exits 1, docker 28 exits 0).
    for code in (1, 0):
        machine.env["LEANSTACK_PROCESS_CLEAR"] = (
            f"sh -c 'echo \"Error response from daemon: No such container: $1\" >&2; exit {code}' docker {{container}}"
        )
        cleaned = machine.run(*stop_post)
        assert (cleaned.returncode, cleaned.stdout, cleaned.stderr) == (0, "", ""), cleaned
    # A run stopped by its timeout left the container: its removal is said; another failure warns.
    machine.env["LEANSTACK_PROCESS_CLEAR"] = "echo {container}"
    assert "removed its container job-tick, left by a stopped run" in machine.run(*stop_post).stdout
    machine.env["LEANSTACK_PROCESS_CLEAR"] = "sh -c 'echo Cannot connect to the Docker daemon >&2; exit 1'"
    refused = machine.run(*stop_post)
    assert refused.returncode == 0
    assert "warning: cannot remove the container job-tick: Cannot connect to the Docker daemon" in refused.stdout


def test_reload_config_on_a_host_whose_config_travels_in_its_files(app_host: AppHost) -> None:
    app_host.host.configure(parameters_path="")
    app_host.host.deploy("v1")
    timer_run = app_host.host.run("reload-config", "--if-changed")
    assert timer_run.returncode == 0, timer_run.stderr
    assert "the app's config is not in SSM; nothing to reload" in timer_run.stdout
    assert app_host.host.current()["port"] == app_host.host.ports[0]
    by_hand = app_host.host.run("reload-config")
    assert by_hand.returncode == 0, by_hand.stderr
    assert app_host.host.current()["port"] == app_host.host.ports[1]
    assert app_host.app_environment()["LEANSTACK_RELEASE"] == "v1"
