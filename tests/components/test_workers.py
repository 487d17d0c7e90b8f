"""Workers (app.processes): the app's config carries them, the cache keeps their queue, a crash loop files a ticket."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from leanstack.config import ConfigError, load_stack_config
from leanstack.mocks import StackRun
from tests.conftest import merged, read_stack_config

WORKER = {"worker": {"command": ["bin/worker", "--queue", "default"], "count": 2, "stopTimeoutSeconds": 60}}


@pytest.fixture(scope="module")
def with_worker() -> StackRun:
    from tests.conftest import run_with

    return run_with({"leanstack:app": {"processes": WORKER}, "leanstack:cache": {"enabled": True}})


def test_the_worker_reaches_the_apps_config_document(with_worker: StackRun) -> None:
    document = json.loads(with_worker.named("app-config").inputs["insecureValue"])
    assert document["processes"] == {
        "worker": {"command": ["bin/worker", "--queue", "default"], "count": 2, "stop_timeout_seconds": 60}
    }


def test_no_processes_key_without_workers(dev: StackRun) -> None:
    assert "processes" not in json.loads(dev.named("app-config").inputs["insecureValue"])


def test_with_a_worker_the_cache_never_evicts(with_worker: StackRun) -> None:
    params = with_worker.named("cache-params").inputs
    assert params["family"] == "valkey8"
    assert params["parameters"] == [{"name": "maxmemory-policy", "value": "noeviction"}]
    assert with_worker.named("cache-group").inputs["parameterGroupName"] == params["name"]


def test_without_workers_the_cache_keeps_the_engines_default_group(run_dev_with: Callable[..., StackRun]) -> None:
    run = run_dev_with({"leanstack:cache": {"enabled": True}})
    assert run.of_type("aws:elasticache/parameterGroup:ParameterGroup") == []
    assert "parameterGroupName" not in run.named("cache-group").inputs
    chosen = run_dev_with({"leanstack:cache": {"enabled": True, "engine": "redis", "evictionPolicy": "allkeys-lru"}})
    params = chosen.named("cache-params").inputs
    assert (params["family"], params["parameters"][0]["value"]) == ("redis7", "allkeys-lru")


def test_a_crash_loop_is_a_ticket(with_worker: StackRun) -> None:
    alarm = with_worker.named("host-worker-crash-loop").inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
        "Leanstack/dev",
        "ProcessRestarts",
        {"Stack": "dev"},
    )
    assert alarm["alarmActions"] == alarm["okActions"] == [with_worker.outputs["ticketTopicArn"]]
    assert (alarm["threshold"], alarm["period"], alarm["evaluationPeriods"]) == (3, 300, 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "leanstack:app": {"processes": WORKER},
                "leanstack:cache": {"enabled": True, "evictionPolicy": "allkeys-lru"},
            },
            'leanstack:cache.evictionPolicy: got "allkeys-lru" with app.processes; a worker\'s queue',
        ),
        ({"leanstack:app": {"processes": {"web": {"command": ["x"]}}}}, "leanstack:app.processes.web: web is the"),
        (
            {"leanstack:app": {"processes": {"worker": {"command": []}}}},
            "leanstack:app.processes.worker.command: missing",
        ),
        ({"leanstack:app": {"processes": {"Worker!": {"command": ["x"]}}}}, "leanstack:app.processes"),
        ({"leanstack:app": {"processes": {"w": {"command": ["x"], "count": 0}}}}, "leanstack:app.processes.w.count"),
        ({"leanstack:cache": {"enabled": True, "evictionPolicy": "lru"}}, "leanstack:cache.evictionPolicy"),
    ],
)
def test_validate_refuses_with_the_reason(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_stack_config(merged(read_stack_config("dev"), overrides), "dev")
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_noeviction_given_explicitly_with_workers_is_fine() -> None:
    overrides = {
        "leanstack:app": {"processes": WORKER},
        "leanstack:cache": {"enabled": True, "evictionPolicy": "noeviction"},
    }
    load_stack_config(merged(read_stack_config("dev"), overrides), "dev")
