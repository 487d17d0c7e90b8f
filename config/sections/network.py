"""`leanstack:network`: the VPC the stack creates, or the existing one it uses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from leanstack.config.fields import SUBNET_ID_RE, Validated, setting


def _check_cidr(value: Any) -> str | None:
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return "a valid IPv4 network such as 10.20.0.0/16"
    if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 24:
        return "a private IPv4 network from /16 to /24 (room for four subnets), such as 10.20.0.0/16"
    return None


@dataclass(frozen=True)
class NetworkArgs(Validated):
    """The VPC: two public subnets (host) and two private subnets (database, cache) in two AZs."""

    cidr: str = setting(
        "10.20.0.0/16",
        doc="VPC CIDR block; split into four equal subnets. Changing it replaces the VPC and everything in it.",
        check=_check_cidr,
    )
    existing_vpc_id: str = setting(
        "",
        doc="Use this existing VPC instead of creating one (then also give the subnet ids).",
        pattern=r"(vpc-[0-9a-f]{8,17})?",
        allowed="a VPC id such as vpc-0123456789abcdef0",
    )
    existing_public_subnet_ids: tuple[str, ...] = setting(
        (),
        doc="With existingVpcId: public subnets (with a route to an internet gateway) for the host.",
        pattern=SUBNET_ID_RE,
        allowed="subnet ids such as subnet-0123456789abcdef0",
    )
    existing_private_subnet_ids: tuple[str, ...] = setting(
        (),
        doc="With existingVpcId: private subnets in two different AZs for the database and cache.",
        pattern=SUBNET_ID_RE,
        allowed="subnet ids such as subnet-0123456789abcdef0",
    )
