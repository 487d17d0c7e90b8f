"""Network: VPC, two public and two private subnets in two AZs, no NAT, or an existing VPC."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from leanstack.mocks import StackRun
from tests.components.helpers import children


def test_vpc_has_two_public_and_two_private_subnets_in_two_azs(dev: StackRun) -> None:
    vpc = dev.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.20.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True  # RDS endpoints resolve inside the VPC
    subnets = {s.name: s for s in dev.of_type("aws:ec2/subnet:Subnet")}
    assert sorted(subnets) == [
        "network-private-a",
        "network-private-b",
        "network-public-a",
        "network-public-b",
    ]
    for kind in ("public", "private"):
        zones = {subnets[f"network-{kind}-{x}"].inputs["availabilityZone"] for x in "ab"}
        assert len(zones) == 2, f"{kind} subnets must span two AZs"
    blocks = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in subnets.values()]
    assert all(b.subnet_of(ipaddress.IPv4Network("10.20.0.0/16")) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets.values())


def test_no_nat_gateway_and_private_subnets_have_no_route_out(dev: StackRun) -> None:
    assert dev.of_type("aws:ec2/natGateway:NatGateway") == []
    tables = {t.name: t for t in dev.of_type("aws:ec2/routeTable:RouteTable")}
    assert tables["network-private"].inputs.get("routes", []) == []
    public_routes = tables["network-public"].inputs["routes"]
    assert [r["cidrBlock"] for r in public_routes] == ["0.0.0.0/0"]
    assert public_routes[0]["gatewayId"].startswith("igw-")
    associations = {a.name: a for a in dev.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
    assert len(associations) == 4


def test_default_security_group_is_emptied(dev: StackRun) -> None:
    default = dev.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs.get("ingress", []) == [] and default.inputs.get("egress", []) == []


def test_existing_vpc_creates_no_network_resources(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    run = run_dev_with(
        {
            "leanstack:network": {
                "existingVpcId": "vpc-0123456789abcdef0",
                "existingPublicSubnetIds": ["subnet-00000000000000001"],
                "existingPrivateSubnetIds": ["subnet-00000000000000002", "subnet-00000000000000003"],
            }
        }
    )
    assert children(run, "Network") == []
    subnet_group = run.one("aws:rds/subnetGroup:SubnetGroup")
    assert subnet_group.inputs["subnetIds"] == ["subnet-00000000000000002", "subnet-00000000000000003"]
    assert run.one("aws:ec2/instance:Instance").inputs["subnetId"] == "subnet-00000000000000001"
    assert {sg.inputs["vpcId"] for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup")} == {
        "vpc-0123456789abcdef0"
    }
