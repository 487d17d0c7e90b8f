"""Workers (app.processes) on the host, run for real: `leanstack-app` writes one systemd unit per copy
(systemd-analyze verifies them), a deploy restarts them after the release command, each copy is a
container of the serving release with the app's environment and no port (the stand-in docker runs
it), and a failed exit publishes ProcessRestarts to moto's CloudWatch.

The box with a real systemd and docker (another branch) is not used here: systemd is exercised
through `systemd-analyze verify` and the systemctl calls the agent makes, recorded.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.host.app_host import REGION, AppHost, one_line, verify_units

WORKER = """\
import os, sys
state = sys.argv[1]
with open(os.path.join(state, "worker.log"), "a") as log:
    log.write(f"worker {os.environ.get('LEANSTACK_RELEASE')} {sorted(os.environ)}\\n")
sys.exit(int(sys.argv[2]))
"""
RELEASE = """\
import sys
with open(sys.argv[1], "a") as log:
    log.write("release command\\n")
"""


def _record_systemctl(app_host: AppHost) -> Path:
    machine = app_host.host
    calls = machine.state / "systemctl.log"
    hooks = {
        "LEANSTACK_SYSTEMD_RELOAD": "daemon-reload",
        "LEANSTACK_PROCESS_ENABLE": "enable {unit}",
        "LEANSTACK_PROCESS_RESTART": "restart {unit}",
        "LEANSTACK_PROCESS_DISABLE": "disable --now {unit}",
        "LEANSTACK_JOB_ENABLE": "enable {unit}",
        "LEANSTACK_JOB_DISABLE": "disable {unit}",
    }
    for key, template in hooks.items():
        machine.env[key] = f"sh -c 'echo \"$*\" >>{calls}' log {template}"
    return calls


def test_a_deploy_writes_verified_units_and_restarts_the_workers_after_the_release_command(app_host: AppHost) -> None:
    machine = app_host.host
    calls = _record_systemctl(app_host)
    release = machine.directory / "release.py"
    release.write_text(RELEASE)
    app_host.put_config(
        release_command=[sys.executable, str(release), str(calls)],
        processes={"mailer": {"command": ["bin/mailer", "--queue", "mail"], "count": 2, "stop_timeout_seconds": 45}},
    )
    units = Path(json.loads(Path(machine.env["LEANSTACK_APP_CONFIG"]).read_text())["unit_dir"])

    done = machine.deploy("v1")

    assert "processes: mailer x2; 2 unit(s) written, 0 removed, 2 restarted" in done.stdout
    names = sorted(os.listdir(units))
    assert names == ["leanstack-process-mailer-1.service", "leanstack-process-mailer-2.service"]
    unit = (units / names[0]).read_text()
    for line in (
        "ExecStart=/usr/local/sbin/leanstack-app process mailer 1",
        "ExecStop=/usr/bin/docker stop --time 45 worker-mailer-1",  # SIGTERM, then the grace
        "ExecStopPost=-/usr/local/sbin/leanstack-app process-exited mailer 1",
        "Restart=on-failure",
        "TimeoutStopSec=75",
        "StartLimitIntervalSec=0",
    ):
        assert f"\n{line}\n" in unit, line
    verified = verify_units(units, names)
    assert verified.returncode == 0, verified.stderr
    assert "leanstack" not in verified.stderr, verified.stderr
    # The check can fail: a unit systemd refuses is reported.
    broken = units.parent / "broken-units"
    broken.mkdir()
    (broken / names[0]).write_text(unit.replace("Restart=on-failure", "Restart=sometimes"))
    assert verify_units(broken, [names[0]]).stderr != ""
    # The release command first, then the new units, then every copy restarted on the new image.
    assert calls.read_text().splitlines() == [
        "release command",
        "daemon-reload",
        "enable leanstack-process-mailer-1.service",
        "enable leanstack-process-mailer-2.service",
        "restart leanstack-process-mailer-1.service",
        "restart leanstack-process-mailer-2.service",
    ]

    calls.unlink()
    machine.deploy("v2")
    # Units unchanged: nothing written, both copies restarted (stopped with their grace by ExecStop).
    assert calls.read_text().splitlines() == [
        "release command",
        "restart leanstack-process-mailer-1.service",
        "restart leanstack-process-mailer-2.service",
    ]

    calls.unlink()
    app_host.put_config(processes={})
    synced = machine.run("sync-processes")
    assert synced.returncode == 0, synced.stderr
    assert os.listdir(units) == []
    assert calls.read_text().splitlines() == [
        "disable --now leanstack-process-mailer-1.service",
        "disable --now leanstack-process-mailer-2.service",
        "daemon-reload",
    ]


def test_a_copy_runs_the_serving_image_with_the_apps_environment_and_no_port(app_host: AppHost) -> None:
    machine = app_host.host
    _record_systemctl(app_host)
    script = machine.directory / "worker.py"
    script.write_text(WORKER)
    command = [sys.executable, str(script), str(machine.state), "0"]
    app_host.put_config(
        env={"QUEUE": "mail"}, processes={"mailer": {"command": command, "count": 1, "stop_timeout_seconds": 30}}
    )
    machine.deploy("v1")

    ran = machine.run("process", "mailer", "1")

    assert ran.returncode == 0, ran.stderr
    run = [r for r in app_host.runs() if r.get("command") == command][-1]
    argv = run["argv"]
    assert argv[argv.index("--name") + 1] == "worker-mailer-1"
    assert "--publish" not in argv  # no port
    assert "awslogs-stream=worker-mailer-1-v1" in argv  # its own log stream
    assert argv[argv.index("--label", argv.index("--label") + 1) + 1] == "leanstack.role=worker"
    assert argv[len(argv) - len(command) - 1].endswith(":v1")  # the serving release's image
    assert run["environment"]["QUEUE"] == "mail" and run["environment"]["LEANSTACK_RELEASE"] == "v1"
    # Secrets by name only (docker reads the values from its own environment), never in argv.
    password = run["environment"]["DATABASE_PASSWORD"]
    assert password and password not in " ".join(argv)
    failing = [sys.executable, str(script), str(machine.state), "3"]
    app_host.put_config(processes={"mailer": {"command": failing, "count": 1, "stop_timeout_seconds": 30}})
    assert machine.run("process", "mailer", "1").returncode == 3  # systemd sees the failure and restarts it


def test_a_failed_exit_counts_a_restart_and_a_clean_stop_does_not(app_host: AppHost) -> None:
    machine = app_host.host
    app_host.put_config(processes={"mailer": {"command": ["bin/mailer"], "count": 1, "stop_timeout_seconds": 30}})
    machine.env["SERVICE_RESULT"] = "success"
    assert machine.run("process-exited", "mailer", "1").returncode == 0
    machine.env.update(SERVICE_RESULT="exit-code", EXIT_STATUS="3")
    crashed = machine.run("process-exited", "mailer", "1")
    assert crashed.returncode == 0, crashed.stderr
    assert "process mailer 1 ended (exit-code, exit 3); systemd restarts it" in crashed.stdout
    session: Any = app_host.moto.session()
    cloudwatch = session.client("cloudwatch", region_name=REGION, endpoint_url=app_host.moto.endpoint)
    now = datetime.datetime.now(datetime.UTC)
    sums = {}
    stack = [{"Name": "Stack", "Value": app_host.stack}]
    for dimensions in (stack, [*stack, {"Name": "Process", "Value": "mailer"}]):
        points = cloudwatch.get_metric_statistics(
            Namespace=f"Leanstack/{app_host.stack}", MetricName="ProcessRestarts", Dimensions=dimensions,
            StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(minutes=1), Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]  # fmt: skip
        sums[len(dimensions)] = sum(p["Sum"] for p in points)
    # One failed exit (the clean stop published nothing); moto sums the Stack series with the other.
    assert sums[2] == 1 and sums[1] >= 1
    removed = [r["argv"] for r in app_host.runs() if r["argv"][:2] == ["rm", "--force"]]
    assert removed.count(["rm", "--force", "worker-mailer-1"]) == 2  # after each exit


def test_bad_process_input_is_one_line(app_host: AppHost) -> None:
    machine = app_host.host
    app_host.put_config(processes={"web": {"command": ["x"], "count": 1, "stop_timeout_seconds": 30}})
    refused = machine.run("sync-processes")
    assert refused.returncode == 1
    assert "processes.web: the name is not allowed" in one_line(refused.stderr)
    app_host.put_config(processes={"mailer": {"command": ["x"], "count": 0, "stop_timeout_seconds": 30}})
    assert "processes.mailer.count: 0 is not allowed: a whole number from 1 to 10" in one_line(
        machine.run("sync-processes").stderr
    )
    app_host.put_config(processes={"mailer": {"command": ["x"], "count": 1, "stop_timeout_seconds": 30}})
    assert one_line(machine.run("process", "mailer", "2").stderr) == (
        "leanstack-app: process mailer: copy 2 is not configured (count 1)"
    )
    assert one_line(machine.run("process", "nope", "1").stderr) == (
        "leanstack-app: process 'nope' is not configured; configured: mailer"
    )
