"""The library's contract, learned from one-line errors rather than tracebacks: Args arrive as their
type, two components of one kind never share an AWS name, and the us-east-1 alert topic exists only
when something uses it. Each runs a small program of its own under leanstack.mocks, as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest

from leanstack.components import Alerts, Database, Network
from leanstack.mocks import run_program

TOPIC = "arn:aws:sns:eu-west-1:123456789012:their-topic"


def _program(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "__main__.py"
    path.write_text(
        "import pulumi\n"
        "from leanstack.components import Alerts, AlertsArgs, Database, DatabaseArgs, Network, NetworkArgs\n"
        "from leanstack.components import UptimeCheck, UptimeCheckArgs\n" + body
    )
    return path


def test_a_dict_instead_of_its_args_is_refused_in_one_line_naming_the_type() -> None:
    with pytest.raises(TypeError) as caught:
        Database("db", {"instance_class": "db.t4g.small"}, stack="prod", network=None, alarm_topic_arn=TOPIC)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "Database('db'): args must be of type DatabaseArgs, got a dict (for instance DatabaseArgs(...))"
    )
    with pytest.raises(TypeError, match=r"^Network\('net'\): args must be of type NetworkArgs, got a str"):
        Network("net", "10.0.0.0/16")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Alerts\('alerts'\): args must be of type AlertsArgs, got a dict"):
        Alerts("alerts", {"email": "a@b.c"}, stack="dev")  # type: ignore[arg-type]


def test_two_databases_in_one_program_never_share_a_name(tmp_path: Path) -> None:
    same = _program(
        tmp_path,
        "net = Network('net', NetworkArgs())\n"
        f"Database('orders', DatabaseArgs(), stack='prod', network=net, alarm_topic_arn={TOPIC!r})\n"
        f"Database('events', DatabaseArgs(), stack='prod', network=net, alarm_topic_arn={TOPIC!r})\n",
    )
    with pytest.raises(
        Exception, match="RDS identifier 'leanstack-prod' is already Database\\('orders'\\)'s"
    ) as caught:
        run_program("prod", {"aws:region": "eu-west-1"}, same)
    assert "give one of them its own DatabaseArgs(identifier=...)" in str(caught.value)
    distinct = _program(
        tmp_path,
        "net = Network('net', NetworkArgs())\n"
        f"Database('orders', DatabaseArgs(), stack='prod', network=net, alarm_topic_arn={TOPIC!r})\n"
        "Database('events', DatabaseArgs(identifier='events-prod'), stack='prod', network=net, "
        f"alarm_topic_arn={TOPIC!r})\n",
    )
    run = run_program("prod", {"aws:region": "eu-west-1"}, distinct)
    names = sorted(r.inputs["name"] for r in run.of_type("aws:rds/subnetGroup:SubnetGroup"))
    assert names == ["events-prod", "leanstack-prod"]
    # Runs are separate programs: the same program again claims its names afresh.
    assert len(run_program("prod", {"aws:region": "eu-west-1"}, distinct).of_type("aws:rds/instance:Instance")) == 2


def test_the_us_east_1_topic_exists_only_when_something_uses_it(tmp_path: Path) -> None:
    alone = _program(tmp_path, "Alerts('alerts', AlertsArgs(email='ops@acme.dev'), stack='dev', region='eu-west-1')\n")
    run = run_program("dev", {"aws:region": "eu-west-1"}, alone)
    assert [r.inputs["name"] for r in run.of_type("aws:sns/topic:Topic")] == ["leanstack-dev-alerts"]
    assert not run.of_type("pulumi:providers:aws")
    used = _program(
        tmp_path,
        "alerts = Alerts('alerts', AlertsArgs(email='ops@acme.dev'), stack='dev', region='eu-west-1')\n"
        "pulumi.export('globalTopic', alerts.global_topic_arn)\n",
    )
    run = run_program("dev", {"aws:region": "eu-west-1"}, used)
    assert sorted(r.inputs["name"] for r in run.of_type("aws:sns/topic:Topic")) == [
        "leanstack-dev-alerts",
        "leanstack-dev-alerts-us-east-1",
    ]
    assert run.outputs["globalTopic"].endswith(":leanstack-dev-alerts-us-east-1")
