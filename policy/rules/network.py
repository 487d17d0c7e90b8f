"""Network exposure: no database open to the internet, no SSH, no world ingress but the web ports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from leanstack.policy.rules.resource_types import (
    CACHE_CLUSTER,
    CACHE_GROUP,
    DNS_RECORD,
    INSTANCE,
    LOAD_BALANCER,
    RDS,
    RDS_CLUSTER,
    SECURITY_GROUP,
    SG_INGRESS,
    SG_RULE,
)
from leanstack.policy.rules.view import Rule, StackView, Subject, as_list

WORLD = ("0.0.0.0/0", "::/0")


def _ports(rule: Mapping[str, Any]) -> tuple[int, int] | None:
    """The port range of a security group rule; None when unknown. Protocol -1 means every port."""
    protocol = str(rule.get("protocol", rule.get("ipProtocol", "")))
    if protocol in ("-1", "all"):
        return (0, 65535)
    low, high = rule.get("fromPort"), rule.get("toPort")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    return (int(low), int(high))


@dataclass(frozen=True)
class Ingress:
    """One ingress permission, wherever it was declared."""

    owner: Subject  # the resource that declares it
    group_urns: tuple[str, ...]  # the security group(s) it opens
    ports: tuple[int, int] | None
    sources: tuple[str, ...]  # CIDR blocks ("" entries never appear); a group reference is not a CIDR

    def covers(self, port: int) -> bool:
        return self.ports is not None and self.ports[0] <= port <= self.ports[1]

    @property
    def open_to_world(self) -> bool:
        return any(s in WORLD for s in self.sources)

    def describe(self) -> str:
        ports = (
            "all ports" if self.ports == (0, 65535) else f"ports {self.ports[0]}-{self.ports[1]}" if self.ports else "?"
        )
        return f"{ports} from {', '.join(self.sources) or 'a security group'}"


def ingresses(view: StackView) -> Iterator[Ingress]:
    for group in view.of_type(SECURITY_GROUP):
        for rule in as_list(group.get("ingress")):
            if isinstance(rule, Mapping):
                sources = tuple(str(c) for c in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")))
                yield Ingress(group, (group.urn,), _ports(rule), sources)
    for rule in view.of_type(SG_RULE):
        if rule.get("type") == "ingress":
            sources = tuple(str(c) for c in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")))
            yield Ingress(rule, rule.links.get("securityGroupId", ()), _ports(rule.props), sources)
    for rule in view.of_type(SG_INGRESS):
        sources = tuple(str(c) for c in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if isinstance(c, str))
        yield Ingress(rule, rule.links.get("securityGroupId", ()), _ports(rule.props), sources)


def attached_groups(subject: Subject) -> tuple[str, ...]:
    urns: list[str] = []
    for prop in ("vpcSecurityGroupIds", "securityGroupIds", "securityGroups"):
        urns += subject.links.get(prop, ())
    return tuple(urns)


def _database_not_public(view: StackView) -> Iterator[tuple[Subject, str]]:
    for db in view.of_type(RDS, RDS_CLUSTER, CACHE_GROUP, CACHE_CLUSTER):
        if db.get("publiclyAccessible") is True:
            yield db, f"{db.name} is publicly accessible; set publicly_accessible=False and keep it in private subnets"
        groups = set(attached_groups(db))
        for ingress in ingresses(view):
            if groups & set(ingress.group_urns) and ingress.open_to_world:
                yield (
                    db,
                    f"{db.name} is reachable from the internet through {ingress.owner.name} "
                    f"({ingress.describe()}); admit only the host's security group",
                )


def _no_ssh(view: StackView) -> Iterator[tuple[Subject, str]]:
    for ingress in ingresses(view):
        if ingress.covers(22):
            yield (
                ingress.owner,
                f"{ingress.owner.name} opens port 22 ({ingress.describe()}); remove it: shell access is "
                "`aws ssm start-session`",
            )


def _cdn_proxied(view: StackView) -> bool:
    return any(r.get("proxied") is True for r in view.of_type(DNS_RECORD))


def _proxy_host_groups(view: StackView) -> set[str]:
    """Security groups users' traffic enters by: the host's, or, scaled out, the load balancer's."""
    groups = {urn for instance in view.of_type(INSTANCE) for urn in attached_groups(instance)}
    return groups | {urn for lb in view.of_type(LOAD_BALANCER) for urn in attached_groups(lb)}


def _no_world_ingress(view: StackView) -> Iterator[tuple[Subject, str]]:
    host_groups = _proxy_host_groups(view)
    proxied = _cdn_proxied(view)
    for ingress in ingresses(view):
        if not ingress.open_to_world:
            continue
        web_only = ingress.ports is not None and ingress.ports[0] in (80, 443) and ingress.ports[1] == ingress.ports[0]
        on_host = bool(set(ingress.group_urns) & host_groups)
        if web_only and on_host and not proxied:
            continue  # the documented exception: the CDN is off, users reach the host directly
        if web_only and on_host:
            why = "the CDN proxies this stack, so only Cloudflare's ranges may reach the origin"
        else:
            why = "only 80/443 on the proxy host may be open to the internet, and only when no CDN proxies it"
        yield ingress.owner, f"{ingress.owner.name} admits {ingress.describe()}: {why}; narrow the source"


DATABASE_NOT_PUBLIC = Rule(
    "database-not-public",
    "Databases and caches are not publicly accessible and no security group opens them to the internet.",
    check_stack=_database_not_public,
)
NO_SSH = Rule("no-ssh", "No security group rule admits port 22, from anywhere.", check_stack=_no_ssh)
NO_WORLD_INGRESS = Rule(
    "no-world-ingress",
    "No ingress from 0.0.0.0/0 or ::/0, except 80/443 on the proxy host when no CDN proxies it.",
    check_stack=_no_world_ingress,
)
