"""The per-child `transform` hook: it changes the one child it names, and nothing else, and without it
(or with one that changes nothing) a component registers exactly what it registered before. Each runs
a small program of its own under leanstack.mocks, as a user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import leanstack.components as library
from leanstack.components import Database, DatabaseArgs, Network
from leanstack.docs import component_reference
from leanstack.mocks import Resource, StackRun, run_program

TOPIC = "arn:aws:sns:eu-west-1:123456789012:their-topic"
CONFIG = {"aws:region": "eu-west-1"}
PROGRAM = """\
import pulumi
from leanstack.components import (
    AppArgs, BackupBucket, BackupBucketArgs, Cache, CacheArgs, Database, DatabaseArgs, Network, NetworkArgs,
    OriginCertificate, OriginCertificateArgs, ProxyHost, ProxyHostArgs,
)
from leanstack.components.proxy_host import HostDependencies, HostSite

TOPIC = {topic!r}
net = Network("net", NetworkArgs())
cert = OriginCertificate("cert", OriginCertificateArgs(hostnames=("shop.example.org",)))
db = Database("db", DatabaseArgs(read_replicas=1), stack="prod", network=net, alarm_topic_arn=TOPIC{database})
cache = Cache("cache", CacheArgs(enabled=True), stack="prod", network=net, eviction_policy="noeviction"{cache})
backups = BackupBucket("backups", BackupBucketArgs(region="us-west-2"), stack="prod",
                       writer_role_name="leanstack-prod-host"{backup_bucket})
host = ProxyHost(
    "host",
    ProxyHostArgs(),
    stack="prod",
    region="eu-west-1",
    site=HostSite(hostnames=("shop.example.org",), app=AppArgs(port=3000)),
    dependencies=HostDependencies(network=net, certificate=cert, alarm_topic_arn=TOPIC, database=db, backups=backups),
    {proxy_host}
)
children = {{
    "db.instance": db.instance, "db.replicas[0]": db.replicas[0], "cache.replication_group": cache.replication_group,
    "backups.bucket": backups.bucket, "host.instance": host.instance, "host.role": host.role,
    "host.security_group": host.security_group, "net.vpc": net.vpc,
}}
for label, child in children.items():
    pulumi.export(label, child.urn)
"""


def run(tmp_path: Path, **transforms: str) -> StackRun:
    """The program with `transform=...` source per component (database, cache, backup_bucket, proxy_host)."""
    parts = {key: f", transform={value}" for key, value in transforms.items()}
    host = transforms.get("proxy_host")
    body = PROGRAM.format(
        topic=TOPIC,
        database=parts.get("database", ""),
        cache=parts.get("cache", ""),
        backup_bucket=parts.get("backup_bucket", ""),
        proxy_host=f"transform={host}," if host else "",
    )
    path = tmp_path / "__main__.py"
    path.write_text(body)
    return run_program("prod", CONFIG, path)


def registered(run: StackRun) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r.urn: (r.type, r.inputs) for r in run.resources}


def changed(before: StackRun, after: StackRun) -> dict[str, tuple[Resource, Resource]]:
    """The resources (by URN) whose inputs differ; the same URNs must be in both runs."""
    old, new = {r.urn: r for r in before.resources}, {r.urn: r for r in after.resources}
    assert old.keys() == new.keys()
    return {urn: (old[urn], new[urn]) for urn in old if old[urn].inputs != new[urn].inputs}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    return run(tmp_path_factory.mktemp("plain"))


def test_a_transform_that_changes_nothing_leaves_every_resource_as_it_was(plain: StackRun, tmp_path: Path) -> None:
    unchanged = "{child: (lambda args: None) for child in %s}"
    same = run(
        tmp_path,
        database=unchanged % repr(Database.TRANSFORMABLE),
        cache=unchanged % "('replication_group', 'security_group', 'subnet_group', 'parameter_group')",
        backup_bucket=unchanged % "('bucket', 'object_lock')",
        proxy_host=unchanged % "ProxyHost.TRANSFORMABLE",
    )
    assert registered(same) == registered(plain)


def test_the_database_instance_class_and_a_tag_change_on_the_instance_alone(plain: StackRun, tmp_path: Path) -> None:
    larger = run(
        tmp_path,
        database="{'instance': lambda args: {**args, 'instance_class': 'db.m7g.large', "
        "'tags': {**args['tags'], 'Team': 'orders'}}}",
    )
    differences = changed(plain, larger)
    assert [new.name for _old, new in differences.values()] == ["db-instance"]
    (old, new), = differences.values()  # fmt: skip
    assert (old.inputs["instanceClass"], new.inputs["instanceClass"]) == ("db.t4g.micro", "db.m7g.large")
    assert new.inputs["tags"] == {**old.inputs["tags"], "Team": "orders"}
    # The replica has a key of its own: the primary's transform does not reach it.
    assert larger.named("db-replica-1").inputs["instanceClass"] == "db.t4g.micro"


def test_a_transform_may_change_the_arguments_in_place(plain: StackRun, tmp_path: Path) -> None:
    tagged = run(
        tmp_path,
        cache="{'replication_group': lambda args: args['tags'].update(Team='cache')}",
        backup_bucket="{'bucket': lambda args: args['tags'].update(DataClass='backups')}",
        proxy_host="{'instance': lambda args: args.update(instance_type='t4g.medium'), "
        "'role': lambda args: args['tags'].update(Team='web')}",
    )
    differences = changed(plain, tagged)
    assert sorted(new.name for _old, new in differences.values()) == [
        "backups-bucket",
        "cache-group",
        "host-instance",
        "host-role",
    ]
    assert tagged.named("cache-group").inputs["tags"]["Team"] == "cache"
    assert tagged.named("backups-bucket").inputs["tags"]["DataClass"] == "backups"
    assert tagged.named("host-instance").inputs["instanceType"] == "t4g.medium"
    assert tagged.named("host-role").inputs["tags"]["Team"] == "web"


def test_a_transform_naming_no_child_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as caught:
        Database(
            "db",
            DatabaseArgs(),
            stack="prod",
            network=Network.__new__(Network),
            alarm_topic_arn=TOPIC,
            transform={"instanse": lambda args: None},
        )
    assert str(caught.value) == (
        "Database('db'): transform names no child 'instanse' (its children: instance, security_group, "
        "subnet_group, parameter_group, log_group, replica)"
    )


def test_the_generated_reference_names_each_components_transformable_children() -> None:
    reference = component_reference()
    for component in ("Database", "ProxyHost", "Cache", "BackupBucket"):
        section = reference.split(f"\n## `{component}` ←", 1)[1].split("\n## ", 1)[0]
        line = next(x for x in section.splitlines() if x.startswith("Transform: "))
        cls = getattr(library, component)
        assert cls.TRANSFORMABLE and line.endswith(", ".join(f"`{c}`" for c in cls.TRANSFORMABLE) + ".")
        assert "transform: Transforms | None = None" in section


def test_each_components_children_are_its_attributes(plain: StackRun) -> None:
    names = {urn: name for name, urn in ((r.name, r.urn) for r in plain.resources)}
    assert {label: names[urn] for label, urn in plain.outputs.items()} == {
        "db.instance": "db-instance",
        "db.replicas[0]": "db-replica-1",
        "cache.replication_group": "cache-group",
        "backups.bucket": "backups-bucket",
        "host.instance": "host-instance",
        "host.role": "host-role",
        "host.security_group": "host-sg",
        "net.vpc": "net-vpc",
    }
