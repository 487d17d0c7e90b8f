"""What the table says about one resource type: `ResourceType`, its `Facts`, and its mock outputs.

A `ResourceType` names a Pulumi type token once and carries everything leanstack knows per type:

- `families`: the groups it belongs to (its area, such as `DATABASE` or `NETWORK`, and the finer
  sets the diff, the plan and the policy pack test membership of, such as `BUCKET` or `ALARM`);
- `facts`: what changing, replacing or deleting it does (None: no shipped stack creates it, so
  nothing is claimed; the diff says so);
- `price`: the name of the cost model's rule for it (`leanstack.cost` maps the name to the
  function that reads pricing.json); `free`: why it costs nothing by itself. Neither set: "not
  priced", shown as such and never counted as zero;
- `key_inputs`: the inputs worth a line in the text plan;
- `mock`: the outputs a provider would compute (ids, ARNs, endpoints), made up deterministically
  for the offline runner (`leanstack.mocks`);
- `stateful`: how the recovery sheet names it when it holds the stack's state ("" = it does not).

`Facts` fields:

- `replaces`: input properties whose change makes the provider delete and re-create the
  resource (ForceNew in the AWS/Cloudflare provider schema, or a documented replace);
- `replaces_if`: properties that replace only when another input is true
  (an instance's user data with `userDataReplaceOnChange`);
- `in_place`: properties changed in place but with an effect a reviewer must know about
  (a stop/start, a reboot, a failover, a host replaced through its user data), in words;
- `holds_data`: what is lost when the resource is replaced or deleted ("" = nothing:
  it can be re-created from the program alone);
- `retained`: leanstack may create it with `retainOnDelete` (the backup bucket), so Pulumi
  leaves it in place (unmanaged, still billed) when it would delete it; which resource is,
  the plan's `options.retainOnDelete` says, and the diff reads that;
- `safety`: boolean properties whose switch from true to false weakens a safeguard
  (`unsafe_when_on`: the reverse, such as skipping the final snapshot), and `retention`:
  numeric properties whose decrease keeps less history;
- `exposes_when_on` / `exposes_when_off`: boolean properties whose switch opens something
  to the internet (a public database, the CDN proxy or a public access block turned off);
- `refused`: properties whose change AWS refuses (a version downgrade, a storage shrink),
  so the diff can say `pulumi up` will fail before it does;
- `deferred_by`: the property that, when false, holds disruptive changes until the
  resource's maintenance window (RDS and ElastiCache `applyImmediately`);
- `keep_data`: what to do instead when a replacement or deletion would lose `holds_data`;
- `why`: one line from the provider's or AWS's documented behaviour, the source of it all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Areas: every type belongs to one.
COMPUTE, NETWORK, DATABASE, STORAGE, IDENTITY = "compute", "network", "database", "storage", "identity"
MONITORING, BACKUP, EDGE, LOCAL, PROVIDER = "monitoring", "backup", "edge", "local", "provider"
# Finer sets the diff, the plan and the policy pack read (S3's V2 types count with their V1 twins).
BUCKET, OBJECT_LOCK, LIFECYCLE, VERSIONING = "bucket", "object lock", "lifecycle", "versioning"
BUCKET_ENCRYPTION, IAM_DOCUMENT, ALARM = "bucket encryption", "IAM document", "alarm"

# Refusal kinds the diff knows how to check (see leanstack.diff.refusals).
DOWNGRADE = "downgrade"  # a version lower than the current one
SHRINK = "shrink"  # a number lower than the current one

# The account id the offline runner's ARNs carry (AWS's documentation example account).
MOCK_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Facts:
    """What changing, replacing or deleting one resource type does."""

    what: str
    why: str
    replaces: frozenset[str] = frozenset()
    replaces_if: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    in_place: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    holds_data: str = ""
    retained: bool = False
    safety: tuple[str, ...] = ()
    unsafe_when_on: tuple[str, ...] = ()
    exposes_when_on: tuple[str, ...] = ()
    exposes_when_off: tuple[str, ...] = ()
    retention: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    deferred_by: str = ""
    keep_data: str = "revert, or copy what it holds first"


@dataclass(frozen=True)
class MockCall:
    """One registration the offline runner answers: the resource's name, type, region and inputs."""

    token: str
    name: str
    region: str
    inputs: Mapping[str, Any]


# The id the resource gets (None: the runner's default, `<name>-<digest>`) and the outputs set
# over its inputs and default ARN.
MockOutputs = Callable[[MockCall], tuple[str | None, dict[str, Any]]]


@dataclass(frozen=True)
class ResourceType:
    """Everything leanstack knows about one resource type, under its token."""

    token: str
    families: tuple[str, ...]
    facts: Facts | None = None
    price: str = ""
    free: str = ""
    key_inputs: tuple[str, ...] = ()
    mock: MockOutputs | None = None
    stateful: str = ""


def m(**entries: str) -> Mapping[str, str]:
    """A read-only property -> text map for `Facts`."""
    return MappingProxyType(dict(entries))


def names(*extra: str) -> frozenset[str]:
    """`name`/`namePrefix` replace nearly every AWS resource that has them."""
    return frozenset({"name", "namePrefix", *extra})


def digest(*parts: str, length: int = 8) -> str:
    """A short deterministic hex digest: the mocks' ids and names are the same on every machine."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def ec2_id(prefix: str) -> MockOutputs:
    """Mock outputs of an EC2 resource whose id is `<prefix>-0<digest>` (vpc-, subnet-, sg-...)."""

    def outputs(call: MockCall) -> tuple[str | None, dict[str, Any]]:
        return f"{prefix}-0{digest(call.token, call.name, length=16)}", {}

    return outputs
