"""The composed program: the real __main__.py run offline for each stack file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from leanstack.mocks import REPO, StackRun, run_program
from leanstack.plan import build_plan, render_json
from tests.components.helpers import is_taggable
from tests.conftest import merged, read_stack_config

STATEFUL = (
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:s3/bucket:Bucket",
)


def test_dev_has_no_cache_and_prod_is_multi_az_and_protected(dev: StackRun, prod: StackRun) -> None:
    assert not any("elasticache" in r.type for r in dev.resources)
    db = prod.one("aws:rds/instance:Instance")
    assert db.inputs["multiAz"] is True and db.protect is True and db.inputs["deletionProtection"] is True


def test_enabling_the_cache_adds_only_cache_resources(
    dev: StackRun, run_dev_with: Callable[[dict[str, Any]], StackRun]
) -> None:
    with_cache = run_dev_with({"leanstack:cache": {"enabled": True}})
    added = {r.urn for r in with_cache.resources} - {r.urn for r in dev.resources}
    removed = {r.urn for r in dev.resources} - {r.urn for r in with_cache.resources}
    assert removed == set()
    assert added and all("leanstack:index:Cache" in urn for urn in added)


@pytest.mark.parametrize("stack", ["dev", "prod", "scale"])
def test_nothing_stateful_is_reachable_from_the_internet(
    stack: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    run = {"dev": dev, "prod": prod, "scale": scale}[stack]
    assert all(db.inputs["publiclyAccessible"] is False for db in run.of_type("aws:rds/instance:Instance"))
    for block in run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        assert block.inputs["blockPublicPolicy"] and block.inputs["restrictPublicBuckets"]
    open_to_world = []
    for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.inputs.get("ingress", []):
            if "0.0.0.0/0" in rule.get("cidrBlocks", []) or "::/0" in rule.get("ipv6CidrBlocks", []):
                open_to_world.append(sg.name)
    assert open_to_world == []
    for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert "cidrIpv4" not in rule.inputs and "referencedSecurityGroupId" in rule.inputs


@pytest.mark.parametrize("stack", ["dev", "prod", "scale"])
def test_every_taggable_aws_resource_is_tagged_with_its_component(
    stack: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    run = {"dev": dev, "prod": prod, "scale": scale}[stack]
    checked = 0
    for resource in run.resources:
        if resource.custom and is_taggable(resource.type):
            tags = resource.inputs.get("tags", {})
            if isinstance(tags, list):  # an Auto Scaling group's tags: a list of {key, value, propagateAtLaunch}
                tags = {tag["key"]: tag["value"] for tag in tags}
            assert tags.get("Component") == resource.component, resource.name
            checked += 1
    assert checked >= 25


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_providers_carry_the_default_tags(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    providers = run.of_type("pulumi:providers:aws")
    assert {p.name for p in providers} == {"aws", "backups-aws"}
    for provider in providers:
        tags = provider.inputs["defaultTags"]
        tags = json.loads(tags) if isinstance(tags, str) else tags
        assert tags == {"tags": {"Project": "leanstack", "Stack": stack, "ManagedBy": "pulumi"}}
    # Every AWS resource uses an explicit provider (and so the default tags), never the default one.
    assert all(r.provider for r in run.resources if r.custom and r.type.startswith("aws:"))


def test_main_declares_no_resource_directly(dev: StackRun) -> None:
    top_level = [r for r in dev.resources if r.component == "Stack"]
    # Only the main region's provider sits at the top; every resource belongs to a component.
    assert [r.type for r in top_level] == ["pulumi:providers:aws"]
    components = {r.type for r in dev.components()}
    assert components == {
        f"leanstack:index:{name}"
        for name in (
            "Alerts",
            "App",
            "Network",
            "OriginCertificate",
            "Database",
            "BackupBucket",
            "ProxyHost",
            "Cdn",
            "UptimeCheck",
            "Budget",
            "Dashboard",
        )
    }


def test_plans_are_byte_identical_across_runs(dev: StackRun) -> None:
    again = run_program("dev", read_stack_config("dev"))
    assert render_json(build_plan(again)) == render_json(build_plan(dev))


def test_a_config_error_stops_the_program_with_one_line() -> None:
    config = merged(read_stack_config("dev"), {"leanstack:backup": {"region": "us-east-1"}})
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", config)
    assert str(caught.value).startswith('leanstack:backup.region: got "us-east-1"')
    assert "\n" not in str(caught.value)


def test_a_component_works_on_its_own_from_another_program() -> None:
    program = Path(__file__).parent / "fixtures" / "standalone_database.py"
    run = run_program("solo", {"aws:region": "eu-west-1"}, program)
    assert {r.type for r in run.components()} == {"leanstack:index:Network", "leanstack:index:Database"}
    db = run.one("aws:rds/instance:Instance")
    assert db.inputs["identifier"] == "solo-db" and db.inputs["instanceClass"] == "db.t4g.small"
    assert run.outputs["address"].startswith("solo-db.")


def test_pulumi_project_file_points_at_the_stacks_folder() -> None:
    text = (REPO / "Pulumi.yaml").read_text()
    assert "name: leanstack" in text and "stackConfigDir: stacks" in text and "virtualenv: .venv" in text
