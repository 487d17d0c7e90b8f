"""`leanstack:host` and `leanstack:hosts`: the proxy host, and how many of them."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import Validated, setting


@dataclass(frozen=True)
class ProxyHostArgs(Validated):
    """The one EC2 host running nginx in front of the app."""

    instance_type: str = setting(
        "t4g.small",
        doc="EC2 instance type; Graviton (t4g, m7g, c7g...) to match the arm64 AMI.",
        pattern=r"[a-z][a-z0-9]*g[a-z0-9-]*\.[a-z0-9]+",
        allowed="a Graviton (arm64) instance type such as t4g.small",
    )
    ami_id: str = setting(
        "",
        doc="Pin an AMI; empty looks up the current Amazon Linux 2023 arm64 AMI.",
        pattern=r"(ami-[0-9a-f]{8,17})?",
        allowed="an AMI id such as ami-0123456789abcdef0, or empty",
    )
    root_volume_gb: int = setting(20, doc="Root gp3 volume size in GiB (encrypted).", min=8, max=1024)
    max_body_mb: int = setting(10, doc="Largest request body nginx accepts, in MiB.", min=1, max=1024)
    hsts_max_age_seconds: int = setting(
        31536000, doc="Strict-Transport-Security max-age; 0 turns HSTS off.", min=0, max=63072000
    )


@dataclass(frozen=True)
class AutoscaleArgs(Validated):
    """Let AWS add and remove hosts with load, between min and max (max 0: off)."""

    min: int = setting(0, doc="Fewest hosts, at least 2 (one of them runs the backup jobs).", min=0, max=20)
    max: int = setting(0, doc="Most hosts; 0 turns autoscaling off.", min=0, max=20)


@dataclass(frozen=True)
class HostsArgs(Validated):
    """How many proxy hosts: one by default; more puts them behind a load balancer."""

    count: int = setting(
        1,
        doc="Proxy hosts. 1: the one host with an Elastic IP. More: an Auto Scaling group behind an "
        "Application Load Balancer, billed on top of the hosts (the plan prices both).",
        min=1,
        max=20,
    )
    autoscale: AutoscaleArgs = setting(
        AutoscaleArgs(),
        doc="Instead of a fixed count: scale on CPU between autoscale.min and autoscale.max hosts.",
    )

    @property
    def scaled(self) -> bool:
        """More than one host, so a load balancer in front of an Auto Scaling group."""
        return self.count > 1 or self.autoscale.max > 0
