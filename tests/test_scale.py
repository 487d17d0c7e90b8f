"""Growing prod (issue 8): the project's own diff from prod to the scale config and back, its
cost, the policy pack in scale mode and the runbook that follows.

The diff compares plans of the *same* stack (prod), once with stacks/Pulumi.prod.yaml and once
with stacks/Pulumi.scale.yaml: that is what `pulumi up` on prod does once someone copies the
scale keys into it. (Plans of two different stacks never share a URN, so they cannot be diffed.)
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re
from typing import Any

import pytest
import yaml

from leanstack.config import load_stack_config
from leanstack.cost import load_pricing
from leanstack.diff import diff_plans, holds_data, render_markdown
from leanstack.mocks import StackRun
from leanstack.plan import build_plan
from leanstack.policy.rules import StackView, evaluate
from leanstack.policy_check import evaluate_policies, view_of
from leanstack.resource_facts import FACTS
from leanstack.runbook import runbook_markdown
from tests.conftest import merged, read_stack_config, run_with

Plan = dict[str, Any]
GROWN = {"leanstack:hosts": {"count": 2}, "leanstack:database": {"readReplicas": 1}}
DATABASE = "aws:rds/instance:Instance"


@pytest.fixture(scope="module")
def prod_plan(prod: StackRun) -> Plan:
    return build_plan(prod)


@pytest.fixture(scope="module")
def grown_plan(prod_grown: StackRun) -> Plan:
    return build_plan(prod_grown)


@pytest.fixture(scope="module")
def growing(prod_plan: Plan, grown_plan: Plan) -> Plan:
    return diff_plans("prod", prod_plan, grown_plan)


@pytest.fixture(scope="module")
def shrinking(prod_plan: Plan, grown_plan: Plan) -> Plan:
    return diff_plans("prod", grown_plan, prod_plan)


def by_name(plan: Plan) -> dict[str, Plan]:
    return {r["name"]: r for r in plan["resources"]}


def test_the_scale_stack_is_prod_with_two_keys_grown() -> None:
    assert read_stack_config("scale") == merged(read_stack_config("prod"), GROWN)


# --------------------------------------------------------------------------- prod -> scale


def test_growing_adds_the_group_the_load_balancer_and_a_replica(growing: Plan) -> None:
    added = {r["name"]: r["type"] for r in growing["added"]}
    assert added["database-replica-1"] == DATABASE
    assert {
        "host-group-lb": "aws:lb/loadBalancer:LoadBalancer",
        "host-group-https": "aws:lb/listener:Listener",
        "host-group-targets": "aws:lb/targetGroup:TargetGroup",
        "host-group-cert": "aws:acm/certificate:Certificate",
        "host-group-web": "aws:autoscaling/group:Group",
        "host-group-jobs": "aws:autoscaling/group:Group",
        "host-group-unhealthy-targets": "aws:cloudwatch/metricAlarm:MetricAlarm",
        "host-group-load-balancer-errors": "aws:cloudwatch/metricAlarm:MetricAlarm",
    }.items() <= added.items()
    # In place: Cloudflare's records follow the load balancer, the host's group admits it alone,
    # the default budget follows the bigger config, and the latency alarm and the dashboard read the
    # load balancer's TargetResponseTime instead of nginx's request time.
    changed = {c["name"] for c in growing["changed"]}
    assert changed == {
        "cdn-example-com",
        "cdn-www-example-com",
        "host-sg",
        "budget-monthly",
        "host-latency",
        "dashboard-dashboard",
    }
    assert not any(c["replaced"] for c in growing["changed"])


def test_growing_replaces_or_deletes_nothing_that_holds_data(growing: Plan, prod_plan: Plan, grown_plan: Plan) -> None:
    removed = {r["name"] for r in growing["removed"]}
    # The single host goes with its Elastic IP and instance-status alarms. The App's password-rotation
    # restart targets the hosts by their Name tag, so it stays and reaches the grown hosts.
    assert removed == {"host-instance", "host-ip", "host-recover", "host-still-broken"}
    assert [r["name"] for r in growing["removed"] if holds_data(r)] == ["host-ip"]
    # The one risk: the Elastic IP, an address users depended on, is released. Expected: Cloudflare now
    # points at the load balancer, and nothing else ever used the address.
    assert [(r["kind"], r["name"]) for r in growing["risks"]] == [("data loss", "host-ip")]
    assert growing["risks"][0]["text"].startswith("Elastic IP `host-ip` is DELETED with its public IP address")
    # Every database and bucket, and everything of the Database and BackupBucket components (security
    # group and its rule from the host, parameter and subnet groups, logs, Object Lock, policies), is
    # untouched: same URN, same inputs, same options.
    before, after = by_name(prod_plan), by_name(grown_plan)
    kept = [
        name
        for name, r in before.items()
        if r["type"] in (DATABASE, "aws:s3/bucket:Bucket") or r["component"] in ("BackupBucket", "Database")
    ]
    assert {"database-instance", "backups-bucket", "host-files", "database-from-host"} <= set(kept)
    for name in kept:
        assert after[name] == before[name], name


def test_the_databases_urn_and_replacement_forcing_inputs_do_not_move(prod_plan: Plan, grown_plan: Plan) -> None:
    before, after = by_name(prod_plan)["database-instance"], by_name(grown_plan)["database-instance"]
    assert after["urn"] == before["urn"]
    assert {p: after["inputs"].get(p) for p in FACTS[DATABASE].replaces} == {
        p: before["inputs"].get(p) for p in FACTS[DATABASE].replaces
    }
    assert after == before  # not even an in-place change
    assert before["options"]["protect"] is True


def test_growing_costs_what_the_diff_says(growing: Plan, prod_plan: Plan, grown_plan: Plan) -> None:
    cost = growing["cost"]
    assert (cost["before"], cost["after"]) == (prod_plan["cost"]["total"], grown_plan["cost"]["total"])
    deltas = {c["name"]: c["delta"] for c in cost["resources"]}
    assert None not in deltas.values()
    assert round(sum(deltas.values()), 2) == cost["delta"]
    # us-east-1 list prices (leanstack/pricing.json): the ALB with 1 LCU and its two IPv4 addresses, a
    # t4g.small host with 20 GB gp3 and a public IPv4 address per group, a db.t4g.small replica.
    assert deltas["host-group-lb"] == 29.57
    assert deltas["host-group-web"] == deltas["host-group-jobs"] == 17.51
    assert deltas["database-replica-1"] == 25.66
    assert (deltas["host-instance"], deltas["host-ip"]) == (-13.86, -3.65)
    assert cost["delta"] == 72.84
    text = render_markdown({"base": "prod", "head": "scale", "stacks": {"prod": growing}, "risks": growing["risks"],
                            "changed": True})  # fmt: skip
    assert "**data loss**: Elastic IP `host-ip` is DELETED" in text
    assert f"(+${cost['delta']:,.2f})" in text


# --------------------------------------------------------------------------- scale -> prod


def test_shrinking_back_loses_nothing(shrinking: Plan) -> None:
    assert shrinking["risks"] == []
    removed = {r["name"] for r in shrinking["removed"]}
    assert "database-replica-1" in removed  # a copy of the primary: not a risk
    assert "host-ip" in {r["name"] for r in shrinking["added"]}  # a new address; Cloudflare follows it
    assert not any(c["replaced"] for c in shrinking["changed"])
    assert shrinking["cost"]["delta"] == -72.84


def test_removing_a_primary_would_still_be_flagged(grown_plan: Plan) -> None:
    """holds_data exempts replicas only: the primary's deletion is still the worst finding."""
    head = json.loads(json.dumps(grown_plan))
    head["resources"] = [r for r in head["resources"] if r["name"] != "database-instance"]
    result = diff_plans("prod", grown_plan, head)
    assert [(r["kind"], r["name"]) for r in result["risks"]][:2] == [
        ("data loss", "database-instance"),
        ("refused by AWS", "database-instance"),  # protected: `pulumi up` stops at the deletion
    ]


# --------------------------------------------------------------------------- price, policy, runbook


def test_scale_plan_prices_every_resource_and_states_the_lcu_assumption(scale: StackRun) -> None:
    plan = build_plan(scale)
    assert plan["cost"]["notPriced"] == []
    lb = next(p for urn, p in plan["cost"]["resources"].items() if urn.endswith("::host-group-lb"))
    assert lb["basis"] == "ALB 730 h x $0.0225/h + 1 LCU x 730 h x $0.008/h + 2 public IPv4 x 730 h x $0.005/h"
    assert lb["assumptions"] == [load_pricing()["assumptionText"]["albLcus"]]
    assert load_pricing()["assumptionText"]["albLcus"] in plan["cost"]["assumptions"]
    web = next(p for urn, p in plan["cost"]["resources"].items() if urn.endswith("::host-group-web"))
    assert web["basis"] == "1 x (t4g.small 730 h x $0.0168/h + 20 GB gp3 x $0.08/GB + public IPv4 730 h x $0.005/h)"


def test_autoscaled_groups_are_priced_at_their_minimum_and_say_the_maximum() -> None:
    run = run_with({"leanstack:hosts": {"autoscale": {"min": 2, "max": 5}}}, "prod")
    web = next(p for urn, p in build_plan(run)["cost"]["resources"].items() if urn.endswith("::host-group-web"))
    assert web["monthly"] == 17.51
    assert web["basis"].endswith("; up to 4 hosts when scaled out: $70.06")  # 4 x $17.5144


def test_every_policy_rule_passes_in_scale_mode(scale: StackRun) -> None:
    assert [r for r in evaluate_policies(scale) if not r.passed] == []


def _changed(view: StackView, name: str, **props: Any) -> StackView:
    resources = tuple(
        dataclasses.replace(r, props={**r.props, **props}) if r.name == name else r for r in view.resources
    )
    return dataclasses.replace(view, resources=resources)


def _flagged(view: StackView, rule: str) -> set[str]:
    return {v.resource for v in evaluate(view)[rule]}


def test_launch_templates_get_the_instances_guards(scale: StackRun) -> None:
    view = view_of(scale)
    template = next(r for r in view.resources if r.name == "host-group-web-template")
    plain = [
        {"deviceName": "/dev/xvda", "ebs": {**template.props["blockDeviceMappings"][0]["ebs"], "encrypted": "false"}}
    ]
    assert _flagged(_changed(view, template.name, blockDeviceMappings=plain), "ebs-encrypted") == {template.name}
    assert _flagged(_changed(view, template.name, blockDeviceMappings=[]), "ebs-encrypted") == {template.name}
    imdsv1 = {**template.props["metadataOptions"], "httpTokens": "optional"}
    assert _flagged(_changed(view, template.name, metadataOptions=imdsv1), "imdsv2-required") == {template.name}


def test_the_load_balancer_is_the_only_door_and_only_for_cloudflare(scale: StackRun) -> None:
    view = view_of(scale)
    world = [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]
    assert _flagged(_changed(view, "host-group-lb-sg", ingress=world), "no-world-ingress") == {"host-group-lb-sg"}
    # CDN off (a debugging setting): the load balancer takes the single host's documented exception.
    no_cdn = run_with({**GROWN, "leanstack:cdn": {"proxied": False}}, "prod")
    assert no_cdn.named("host-group-lb-sg").inputs["ingress"][0]["cidrBlocks"] == ["0.0.0.0/0"]
    assert [r for r in evaluate_policies(no_cdn) if not r.passed] == []


def test_replicas_are_exempt_from_final_snapshots_the_primary_is_not(scale: StackRun) -> None:
    view = view_of(scale)
    assert _flagged(view, "rds-production-protection") == set()
    unprotected = _changed(view, "database-instance", deletionProtection=False)
    assert _flagged(unprotected, "rds-production-protection") == {"database-instance"}
    not_a_replica = _changed(view, "database-replica-1", replicateSourceDb=None)
    assert _flagged(not_a_replica, "rds-production-protection") == {"database-replica-1"}


def test_the_runbook_follows_the_hosts(scale: StackRun) -> None:
    text = runbook_markdown(scale, load_stack_config(read_stack_config("scale"), "scale"))
    for needle in (
        "### Unhealthy targets",
        "### Load balancer errors",
        "`leanstack-scale-unhealthy-targets`",
        "`leanstack-scale-load-balancer-errors`",
        "| HostGroup |",
        "$(pulumi stack output hostJobsGroup --stack scale)",
        "a 503 from the load balancer: no healthy host",
    ):
        assert needle in text, needle
    assert "hostInstanceId" not in text and "still-broken" not in text
    used = set(re.findall(r"pulumi stack output (\w+)", text))
    assert used <= set(scale.outputs)


# --------------------------------------------------------------------------- serving through the load balancer


def test_cloudflare_points_a_cname_at_the_load_balancer(scale: StackRun, prod: StackRun) -> None:
    record = scale.named("cdn-example-com").inputs
    assert (record["type"], record["content"], record["proxied"]) == (
        "CNAME",
        scale.outputs["loadBalancerDnsName"],
        True,
    )
    single = prod.named("cdn-example-com").inputs
    assert (single["type"], single["content"]) == ("A", prod.outputs["hostPublicIp"])


def _written_files(user_data: str) -> dict[str, str]:
    document = yaml.safe_load(gzip.decompress(base64.b64decode(user_data)).decode())
    return {f["path"]: str(f["content"]) for f in document["write_files"]}


NGINX_CONF = "/etc/nginx/nginx.conf"
PULL_CA = "/etc/nginx/tls/cloudflare-origin-pull-ca.pem"


@pytest.mark.parametrize("role", ["web", "jobs"])
def test_nginx_behind_the_load_balancer_accepts_it(scale: StackRun, role: str) -> None:
    files = _written_files(scale.named(f"host-group-{role}-template").inputs["userData"])
    conf = files[NGINX_CONF]
    # The load balancer verifies Cloudflare's client certificate and presents none; it sends no SNI,
    # and its health check's Host is the host's IP: no certificate asked, no handshake refused, and
    # the one server is the default server.
    assert "ssl_verify_client" not in conf and PULL_CA not in files
    assert "ssl_reject_handshake" not in conf and "return 444" not in conf
    assert conf.count("server {") == 1 and "listen 443 ssl default_server;" in conf
    assert '"0:/healthz" 0;' in conf
    # Every peer is the load balancer, in the VPC (the scale stack's default 10.20.0.0/16): its
    # CF-Connecting-IP is believed, Cloudflare's ranges are not trusted directly.
    trusted = re.findall(r"set_real_ip_from (\S+);", conf)
    assert trusted == [scale.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"]] == ["10.20.0.0/16"]
    assert "real_ip_header CF-Connecting-IP;" in conf


def test_the_single_host_still_asks_for_cloudflares_certificate(prod: StackRun) -> None:
    files = _written_files(prod.one("aws:ec2/instance:Instance").inputs["userDataBase64"])
    conf = files[NGINX_CONF]
    assert "ssl_verify_client on;" in conf and "ssl_reject_handshake on;" in conf and PULL_CA in files
    assert re.findall(r"set_real_ip_from (\S+);", conf)[:2] == ["173.245.48.0/20", "103.21.244.0/22"]


def test_password_rotation_restart_reaches_the_scaled_hosts(scale: StackRun) -> None:
    assert scale.named("app-password-rotated")
    target = scale.named("app-restart-app").inputs
    name = f"leanstack-{scale.stack}-host"
    assert target["runCommandTargets"] == [{"key": "tag:Name", "values": [name]}]
    # Every host the groups launch carries that tag.
    for template in scale.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        tagged = [spec["tags"] for spec in template.inputs["tagSpecifications"] if spec["resourceType"] == "instance"]
        assert tagged and tagged[0]["Name"] == name, template.name
