"""Run the real Pulumi program offline, under Pulumi's mocks, and record every resource.

The plan, the diff, the runbook and the tests all see the stack through this one module:
`run_stack(stack)` runs `__main__.py` with the stack's config exactly as `pulumi up`
would, except that the engine is replaced by a recording monitor and the cloud by
`LeanMocks`, which answers lookups (AZs, the AMI, Cloudflare's IP ranges) and fills in
the outputs a real provider would compute (ids, ARNs, endpoints) deterministically, so
two runs on two machines produce byte-identical plans.

What the mocks cannot tell: whether AWS or Cloudflare would accept the inputs. A real
`pulumi preview` with credentials is still the final word (see the README).
"""

from __future__ import annotations

import json
import os
import runpy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from leanstack.config import PROJECT
from leanstack.config.resource_types import MOCK_ACCOUNT as MOCK_ACCOUNT  # re-exported: tests build ARNs with it
from leanstack.config.resource_types import MockCall, digest, type_of
from leanstack.config.stack_file import StackFileError as StackFileError  # re-exported: callers catch it from here
from leanstack.config.stack_file import parse_stack_yaml

REPO = Path(__file__).resolve().parent.parent
# The cache endpoints the mocks make up (AWS assigns the real ones): the diff labels them as such.
MOCK_CACHE_ENDPOINT = r"[a-z]+\.[a-z0-9-]+\.[0-9a-f]{6}\.use1\.cache\.amazonaws\.com"
SECRET = "[secret]"

# Cloudflare's published origin ranges at the time of writing. Offline only: a real run
# looks them up with the Cloudflare provider's IP-ranges data source on every `pulumi up`.
CLOUDFLARE_IPV4 = (
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
    "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17",
    "162.158.0.0/15", "104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
)  # fmt: skip
CLOUDFLARE_IPV6 = (
    "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32",
    "2405:8100::/32", "2a06:98c0::/29", "2c0f:f248::/32",
)  # fmt: skip


@dataclass
class Resource:
    """One registered resource as the engine would see it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    provider: str = ""  # URN of the explicit provider, "" for the default one
    region: str = ""
    dependencies: tuple[str, ...] = ()
    # `aliases` as registered (name/type/parent of an earlier URN); the engine, not the SDK,
    # applies a parent's aliases to its children, so leanstack.plan resolves them to URNs.
    alias_specs: tuple[dict[str, Any], ...] = ()

    @property
    def component(self) -> str:
        """The leanstack component this resource belongs to (its nearest `leanstack:` ancestor)."""
        for part in reversed(self.urn.split("::")[2].split("$")):
            if part.startswith(f"{PROJECT}:"):
                return part.rsplit(":", 1)[1]
        return "Stack"


@dataclass
class StackRun:
    """Everything one offline run of the program registered."""

    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Resource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def components(self) -> list[Resource]:
        return [r for r in self.resources if r.type.startswith(f"{PROJECT}:")]


# --------------------------------------------------------------------------- secrets


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def redact(value: Any) -> Any:
    """Replace every secret value with "[secret]" (the plan never prints one), and give
    whole numbers back their int type (the engine's wire format turns them into floats)."""
    if _is_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unwrap(value: Any) -> Any:
    if _is_secret(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


# --------------------------------------------------------------------------- the mocks


class LeanMocks(pulumi_mocks.Mocks):
    """Deterministic stand-ins for AWS, Cloudflare, TLS and random outputs."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.provider_regions: dict[str, str] = {}
        # The name a resource had before an alias renamed it, set per registration (threads).
        self.identity = threading.local()

    def region_of(self, provider_ref: str) -> str:
        urn = provider_ref.split("::")
        return (
            self.provider_regions.get("::".join(urn[:-1]), self.default_region)
            if provider_ref
            else (self.default_region)
        )

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        region = self.region_of(args.provider)
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{z}" for z in "abc"]
            return {"id": region, "names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 4)]}
        if token == "aws:ec2/getAmi:getAmi":
            ami = "ami-0" + digest(region, "al2023-arm64", length=16)
            return {"id": ami, "imageId": ami, "name": "al2023-ami-2023.9.20251110.0-kernel-6.1-arm64",
                    "architecture": "arm64"}  # fmt: skip
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_ACCOUNT, "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/mock",
                    "userId": "AIDAMOCK", "id": MOCK_ACCOUNT}  # fmt: skip
        if token == "aws:index/getRegion:getRegion":
            return {"id": region, "name": region, "region": region}
        if token == "aws:ec2/getVpc:getVpc":
            # An existing VPC (network.existingVpcId): AWS's default-VPC block, a secondary block
            # still associated and one being removed, so callers can tell which count.
            vpc_id = str(args.args.get("id") or "vpc-0" + digest(region, "vpc", length=16))
            blocks = [
                ("172.31.0.0/16", "associated"),
                ("100.64.0.0/20", "associated"),
                ("192.168.0.0/24", "disassociating"),
            ]
            associations = [
                {"associationId": f"vpc-cidr-assoc-{index}", "cidrBlock": cidr, "state": state}
                for index, (cidr, state) in enumerate(blocks)
            ]
            return {"id": vpc_id, "cidrBlock": blocks[0][0], "state": "available", "default": False,
                    "arn": f"arn:aws:ec2:{region}:{MOCK_ACCOUNT}:vpc/{vpc_id}",
                    "cidrBlockAssociations": associations}  # fmt: skip
        if token == "cloudflare:index/getIpRanges:getIpRanges":
            return {"ipv4Cidrs": list(CLOUDFLARE_IPV4), "ipv6Cidrs": list(CLOUDFLARE_IPV6), "etag": "mock"}
        raise NotImplementedError(f"leanstack mocks have no answer for the lookup {token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        # An aliased resource keeps its physical identity: ids and generated names come from the
        # name it had before the rename, as the engine keeps the real resource.
        name, typ = getattr(self.identity, "name", None) or args.name, args.typ
        if typ.startswith("pulumi:providers:"):
            return f"{name}-provider-id", inputs
        region = inputs.get("region") or self.region_of(args.provider or "")
        service = typ.split(":")[1].split("/")[0]
        rid = f"{name}-{digest(typ, name)}"
        arn = f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}:{name}"
        state: dict[str, Any] = {**inputs, "arn": arn}

        entry = type_of(typ)
        if entry is not None and entry.mock is not None:
            own_id, outputs = entry.mock(MockCall(typ, name, str(region), inputs))
            state.update(outputs)
            rid = rid if own_id is None else own_id
        return rid, state


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock engine that keeps what the real engine would know: options, parents, providers."""

    def __init__(self, mocks: LeanMocks) -> None:
        super().__init__(mocks)
        self.lean = mocks
        self.recorded: dict[str, Resource] = {}
        self.identities: dict[str, str] = {}
        self.stack_outputs: dict[str, Any] = {}

    def _identity_name(self, request: Any) -> str:
        """The name this resource had before any alias renamed it (its own, or its parent's)."""
        for alias in request.aliases:
            if not alias.HasField("urn") and alias.spec.name:
                return str(alias.spec.name)
        parent = self.recorded.get(request.parent)
        before = self.identities.get(request.parent, "")
        if parent is not None and before and before != parent.name and request.name.startswith(parent.name):
            return before + str(request.name)[len(parent.name) :]
        return str(request.name)

    def RegisterResource(self, request: Any) -> Any:
        identity = self._identity_name(request)
        self.lean.identity.name = identity
        try:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            self.lean.identity.name = None
        self.identities[response.urn] = identity
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        provider = request.provider.rsplit("::", 1)[0] if request.provider else ""
        if request.type.startswith("pulumi:providers:") and "region" in inputs:
            self.lean.provider_regions[response.urn] = str(_unwrap(inputs["region"]))
        registration = self.resources.get(response.urn)
        region = ""
        if request.type.startswith("aws:"):
            region = str(_unwrap(inputs.get("region", "")) or self.lean.region_of(request.provider))
        self.recorded[response.urn] = Resource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            id=registration.id if registration else "",
            inputs={k: v for k, v in inputs.items() if not k.startswith("__")},
            outputs=dict(registration.state) if registration else {},
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            provider=provider,
            region=region,
            dependencies=tuple(sorted(request.dependencies)),
            alias_specs=tuple(_alias_spec(a) for a in request.aliases),
        )
        return response


def _alias_spec(alias: Any) -> dict[str, Any]:
    """One registered alias as a plain dict: an earlier URN, or the parts that changed."""
    if alias.HasField("urn"):
        return {"urn": alias.urn}
    spec = alias.spec
    out: dict[str, Any] = {k: getattr(spec, k) for k in ("name", "type", "stack", "project") if getattr(spec, k)}
    if spec.HasField("noParent") and spec.noParent:
        out["noParent"] = True
    elif spec.HasField("parentUrn"):
        out["parentUrn"] = spec.parentUrn
    return out


# --------------------------------------------------------------------------- running a stack


# The folder of stack files the commands read when it is not the project's stacks/ (the tests'
# copies under tests/fixtures/shipped/stacks).
STACKS_ENV = "LEANSTACK_STACKS"
# The project the commands read (its stacks/ and Pulumi program): `leanstack --repo DIR` sets it.
PROJECT_ENV = "LEANSTACK_REPO"


def project_dir() -> Path:
    """The project the commands read: the one --repo named, else the checkout this package runs from
    (an editable install reads its own stacks/ from any directory), else the current directory (an
    installed package, whose folder in site-packages holds no stacks/)."""
    named = os.environ.get(PROJECT_ENV, "")
    if named:
        return Path(named)
    if (REPO / "Pulumi.yaml").is_file():
        return REPO
    return Path.cwd()


def stacks_dir(repo: Path | None = None) -> Path:
    """Where the stack files are: `repo`'s stacks/, else the folder LEANSTACK_STACKS names, else the project's."""
    if repo is not None:
        return repo / "stacks"
    named = os.environ.get(STACKS_ENV, "")
    return Path(named) if named else project_dir() / "stacks"


def stack_file(stack: str, repo: Path | None = None) -> Path:
    return stacks_dir(repo) / f"Pulumi.{stack}.yaml"


def available_stacks(repo: Path | None = None) -> list[str]:
    found = stacks_dir(repo).glob("Pulumi.*.yaml")
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in found)


def read_stack_config(stack: str, repo: Path | None = None) -> dict[str, Any]:
    """The `config:` map of stacks/Pulumi.<stack>.yaml, or StackFileError in one line."""
    path = stack_file(stack, repo)
    if not path.exists():
        known = ", ".join(available_stacks(repo)) or f"none in {stacks_dir(repo)}; pass --repo DIR"
        raise StackFileError(f"unknown stack {stack!r}: no stacks/{path.name} (stacks: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(f"stacks/{path.name}: not readable: {exc}") from None
    return parse_stack_yaml(text, f"stacks/{path.name}")


def _engine_value(value: Any) -> str:
    """Config values as the Pulumi engine hands them to a program: strings, objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def run_program(stack: str, config: Mapping[str, Any], program: Path | None = None) -> StackRun:
    """Run the Pulumi program for `stack` with `config` under the mocks; return what it registered."""
    program = program or project_dir() / "__main__.py"
    region = str(config.get("aws:region", "us-east-1"))
    mocks = LeanMocks(default_region=region)
    monitor = RecordingMonitor(mocks)
    settings.reset_options(project=PROJECT, stack=stack)
    pulumi.runtime.set_all_config({k: _engine_value(v) for k, v in config.items()}, [])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    def program_body() -> None:
        runpy.run_path(str(program), run_name="__main__")

    _sync_await(run_pulumi_func(program_body))
    root = settings.get_root_resource()
    exported: dict[str, Any] = {}
    if isinstance(root, pulumi.runtime.stack.Stack):
        for key, value in root.outputs.items():
            output = pulumi.Output.from_input(value)
            exported[key] = _sync_await(output.future())
            if _sync_await(output.is_secret()):
                exported[key] = SECRET
    ordered = sorted(monitor.recorded.values(), key=lambda r: r.urn)
    return StackRun(stack=stack, resources=ordered, outputs=exported)


def run_stack(stack: str, repo: Path | None = None) -> StackRun:
    """Run the program for stacks/Pulumi.<stack>.yaml offline."""
    return run_program(stack, read_stack_config(stack, repo), (repo or project_dir()) / "__main__.py")
