"""Network: the VPC the stack lives in.

Builds a VPC with two public subnets (for the host) and two private subnets (for the
database and cache; RDS requires subnets in two AZs), an internet gateway, a public route
table with a default route, and a private route table with no route out. There is no NAT
gateway: nothing in the private subnets needs the internet, and a NAT gateway would be
the most expensive line of the bill (billed hourly plus per GB). The VPC's default security
group is emptied so nothing can use it by accident.

Or, with `existing_vpc_id`, creates nothing and passes the given subnets through (and looks
up the VPC's CIDR blocks).

`vpc_cidr_blocks` are the VPC's IPv4 CIDR blocks: scaled out, the hosts' nginx believes the
client address the load balancer forwards only from a peer in them (the load balancer's
addresses come from its subnets, so from these blocks).

Cost: nothing (VPCs, subnets, route tables and internet gateways are free).
Replacement: changing `cidr` replaces the VPC and so everything in it, the database included.

Example:
    net = Network("network", NetworkArgs(cidr="10.20.0.0/16"))
"""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent
from leanstack.config import NetworkArgs

__all__ = ["Network", "NetworkArgs"]


class Network(LeanComponent):
    vpc_id: pulumi.Output[str]
    vpc_cidr_blocks: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        self.args = args or NetworkArgs()
        # The children, by role; none with `existing_vpc_id` (nothing is created then).
        self.vpc: aws.ec2.Vpc | None = None
        self.internet_gateway: aws.ec2.InternetGateway | None = None
        self.subnets: dict[str, aws.ec2.Subnet] = {}
        if self.args.existing_vpc_id:
            self._use_existing()
        else:
            self._create_vpc()
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )

    def _use_existing(self) -> None:
        self.vpc_id = pulumi.Output.from_input(self.args.existing_vpc_id)
        vpc = aws.ec2.get_vpc_output(id=self.args.existing_vpc_id, opts=pulumi.InvokeOutputOptions(parent=self))
        # The primary block and any secondary ones still associated: a load balancer in a subnet
        # of a secondary block has its addresses there. Each association is a dict keyed by the
        # SDK's snake_case names.
        self.vpc_cidr_blocks = pulumi.Output.all(vpc.cidr_block, vpc.cidr_block_associations).apply(
            lambda v: list(dict.fromkeys([v[0], *(a["cidr_block"] for a in v[1] or () if a["state"] == "associated")]))
        )
        self.public_subnet_ids = pulumi.Output.from_input(list(self.args.existing_public_subnet_ids))
        self.private_subnet_ids = pulumi.Output.from_input(list(self.args.existing_private_subnet_ids))

    def _create_vpc(self) -> None:
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self)).names
        # Four equal subnets: public a/b, private a/b.
        blocks = list(ipaddress.ip_network(self.args.cidr).subnets(prefixlen_diff=2))
        self.vpc = vpc = aws.ec2.Vpc(
            self.child_name("vpc"),
            cidr_block=self.args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self.named_tags(self.child_name("vpc")),
            opts=self.child_opts(),
        )
        self.vpc_id = vpc.id
        self.vpc_cidr_blocks = pulumi.Output.from_input([self.args.cidr])
        # The default security group allows all traffic between its members; empty it.
        aws.ec2.DefaultSecurityGroup(
            self.child_name("default-sg"),
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=self.named_tags(self.child_name("default-sg-unused")),
            opts=self.child_opts(),
        )
        self.internet_gateway = gateway = aws.ec2.InternetGateway(
            self.child_name("igw"),
            vpc_id=vpc.id,
            tags=self.named_tags(self.child_name("igw")),
            opts=self.child_opts(),
        )
        public_routes = aws.ec2.RouteTable(
            self.child_name("public"),
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=self.named_tags(self.child_name("public")),
            opts=self.child_opts(),
        )
        # No routes beyond the VPC itself: the private subnets cannot reach or be reached from the internet.
        private_routes = aws.ec2.RouteTable(
            self.child_name("private"),
            vpc_id=vpc.id,
            tags=self.named_tags(self.child_name("private")),
            opts=self.child_opts(),
        )
        public_ids: list[pulumi.Output[str]] = []
        private_ids: list[pulumi.Output[str]] = []
        for index, letter in enumerate("ab"):
            zone = zones[index]
            public = self._subnet(f"public-{letter}", vpc.id, str(blocks[index]), zone, public_routes)
            private = self._subnet(f"private-{letter}", vpc.id, str(blocks[index + 2]), zone, private_routes)
            self.subnets.update({f"public-{letter}": public, f"private-{letter}": private})
            public_ids.append(public.id)
            private_ids.append(private.id)
        self.public_subnet_ids = pulumi.Output.all(*public_ids)
        self.private_subnet_ids = pulumi.Output.all(*private_ids)

    def _subnet(
        self,
        suffix: str,
        vpc_id: pulumi.Input[str],
        cidr: str,
        zone: pulumi.Input[str],
        routes: aws.ec2.RouteTable,
    ) -> aws.ec2.Subnet:
        subnet = aws.ec2.Subnet(
            self.child_name(suffix),
            vpc_id=vpc_id,
            cidr_block=cidr,
            availability_zone=zone,
            # The host gets an Elastic IP; nothing should get a public IP just by landing here.
            map_public_ip_on_launch=False,
            tags=self.named_tags(self.child_name(suffix)),
            opts=self.child_opts(),
        )
        aws.ec2.RouteTableAssociation(
            self.child_name(f"{suffix}-routes"),
            subnet_id=subnet.id,
            route_table_id=routes.id,
            opts=self.child_opts(),
        )
        return subnet
