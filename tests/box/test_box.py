"""The host's promises, proven in the box: the dev stack's host booted from its real user data
(see support/box and README "The box"). One box per session; the tests run in file order and
each leaves the host serving."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yaml

from tests.box.conftest import Box

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


@contextmanager
def request_loop(box: Box) -> Iterator[Counter[str]]:
    """Requests one after another through nginx until the block ends; counts each answer."""
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                response = box.get("/")
                seen[json.loads(response.body)["version"] if response.status == 200 else f"status {response.status}"] += 1
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
        f"--change 'ENV APP_HEALTH_PATH={box.values['BOX_HEALTH_PATH']}' /var/tmp/app.tar {repository}:{tag} >/dev/null "
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
