"""leanstack's guardrails as plain functions: what the policy pack enforces, runnable anywhere.

Nothing here imports Pulumi or pulumi_policy. A rule sees the stack as a `StackView`, a list
of `Subject`s (type, name, inputs, `protect`, region and the resources each property refers
to), and returns `Violation`s whose message names the resource and the fix. Two adapters
build that view: `leanstack.policy_check` from a recorded offline run (`leanstack.mocks`), for the
test suite and the plan, and `policy.crossguard` from what Pulumi CrossGuard hands a policy
pack during `pulumi preview --policy-pack policy`.

Values a preview cannot know yet (an ARN of a bucket not created) arrive as `UNKNOWN`; a
rule never guesses about them: it passes, and CrossGuard checks again during `pulumi up`,
when the inputs are known.

"Production": a stack named prod, production or prod-*, or whose database has Pulumi
`protect` (the same idea as `leanstack.config.is_production`, seen from the resources;
RDS deletion protection is not used to recognise it, since the rule requires it). "Dev",
where one day of RDS backups is allowed: a stack named dev or dev-*.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import leanstack.config.resource_types as resource_types
from leanstack.host.agent.contract import parameter_root


class _Unknown:
    """A value a preview cannot know yet."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

WORLD = ("0.0.0.0/0", "::/0")
PRODUCTION_NAME_RE = r"prod|production|prod-[a-z0-9-]+"

RDS = resource_types.RDS_INSTANCE.token
RDS_CLUSTER = resource_types.RDS_CLUSTER.token
CACHE_GROUP = resource_types.ELASTICACHE_REPLICATION_GROUP.token
CACHE_CLUSTER = resource_types.ELASTICACHE_CLUSTER.token
INSTANCE = resource_types.EC2_INSTANCE.token
LAUNCH_TEMPLATE = resource_types.EC2_LAUNCH_TEMPLATE.token
LOAD_BALANCER = resource_types.LB_LOAD_BALANCER.token
EBS_VOLUME = resource_types.EBS_VOLUME.token
SECURITY_GROUP = resource_types.EC2_SECURITY_GROUP.token
SG_RULE = resource_types.EC2_SECURITY_GROUP_RULE.token
SG_INGRESS = resource_types.VPC_SECURITY_GROUP_INGRESS_RULE.token
BUCKET = resource_types.S3_BUCKET.token
BUCKET_V2 = resource_types.S3_BUCKET_V2.token
PUBLIC_ACCESS_BLOCK = resource_types.S3_BUCKET_PUBLIC_ACCESS_BLOCK.token
BUCKET_POLICY = resource_types.S3_BUCKET_POLICY.token
BUCKET_VERSIONING = (resource_types.S3_BUCKET_VERSIONING.token, resource_types.S3_BUCKET_VERSIONING_V2.token)
BUCKET_ENCRYPTION = (
    resource_types.S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION.token,
    resource_types.S3_BUCKET_SERVER_SIDE_ENCRYPTION_CONFIGURATION_V2.token,
)
OBJECT_LOCK = (
    resource_types.S3_BUCKET_OBJECT_LOCK_CONFIGURATION.token,
    resource_types.S3_BUCKET_OBJECT_LOCK_CONFIGURATION_V2.token,
)
BUCKET_LIFECYCLE = (
    resource_types.S3_BUCKET_LIFECYCLE_CONFIGURATION.token,
    resource_types.S3_BUCKET_LIFECYCLE_CONFIGURATION_V2.token,
)
# An incomplete multipart upload is billed until aborted: a lifecycle must abort it within this.
MAX_INCOMPLETE_UPLOAD_DAYS = 7
ROLE = resource_types.IAM_ROLE.token
ROLE_POLICY = resource_types.IAM_ROLE_POLICY.token
ROLE_POLICY_ATTACHMENT = resource_types.IAM_ROLE_POLICY_ATTACHMENT.token
POLICY_ATTACHMENT = resource_types.IAM_POLICY_ATTACHMENT.token
MANAGED_POLICY = resource_types.IAM_POLICY.token
INSTANCE_PROFILE = resource_types.IAM_INSTANCE_PROFILE.token
DNS_RECORD = resource_types.CLOUDFLARE_DNS_RECORD.token

# IAM documents by resource type and property.
POLICY_DOCUMENTS: dict[str, str] = {
    MANAGED_POLICY: "policy",
    ROLE_POLICY: "policy",
    resource_types.IAM_USER_POLICY.token: "policy",
    resource_types.IAM_GROUP_POLICY.token: "policy",
}
# AWS-managed policies that grant everything, or every S3 action.
ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess")
S3_WIDE_POLICIES = (*ADMIN_POLICIES, "AmazonS3FullAccess")
# What removes or unlocks a backup before its time.
BACKUP_DESTROYING_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
)


# --------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class Subject:
    """One resource as the rules see it."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    region: str = ""  # the provider's region ("" when unknown or not an AWS resource)
    # property name -> URNs of the resources whose outputs flow into it
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)

    @property
    def component(self) -> str:
        """The leanstack component type in the URN (e.g. "BackupBucket"), or ""."""
        kinds = self.urn.split("::")[2].split("$") if self.urn.count("::") >= 3 else []
        found = [k.rsplit(":", 1)[1] for k in kinds if k.startswith("leanstack:")]
        return found[-1] if found else ""


@dataclass(frozen=True)
class StackView:
    """The whole stack: its name, its region and every resource."""

    stack: str
    region: str
    resources: tuple[Subject, ...]

    def of_type(self, *types: str) -> list[Subject]:
        return [r for r in self.resources if r.type in types]

    def by_urn(self, urn: str) -> Subject | None:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        return None

    def linked(self, subject: Subject, prop: str) -> list[Subject]:
        """The resources `subject.<prop>` refers to."""
        return [r for urn in subject.links.get(prop, ()) if (r := self.by_urn(urn)) is not None]

    def referring(self, target: Subject, types: Sequence[str], prop: str) -> list[Subject]:
        """Resources of `types` whose `prop` refers to `target`."""
        return [r for r in self.of_type(*types) if target.urn in r.links.get(prop, ())]

    @property
    def production(self) -> bool:
        return bool(re.fullmatch(PRODUCTION_NAME_RE, self.stack)) or any(r.protect for r in self.of_type(RDS))


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    resource: str  # the resource's name
    message: str


# Outputs by which one resource names another (an id, an ARN, a name, a bucket name).
HANDLE_PROPS = ("id", "arn", "name", "bucket")


def link_by_value(
    subjects: Sequence[Subject], handles: Mapping[str, Iterable[str]] | None = None
) -> tuple[Subject, ...]:
    """Add the links that values show: a property refers to a resource when its value (or an item
    of it) is that resource's id, ARN, name or bucket name. `handles` maps a URN to extra values
    that name it (an id the props do not carry). Links already present are kept."""
    index: dict[str, set[str]] = {}
    for subject in subjects:
        names = {v for k in HANDLE_PROPS if isinstance(v := subject.props.get(k), str) and v}
        names |= set((handles or {}).get(subject.urn, ()))
        for name in names:
            index.setdefault(name, set()).add(subject.urn)
    linked = []
    for subject in subjects:
        links = {k: set(v) for k, v in subject.links.items()}
        for prop, value in subject.props.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str):
                    links.setdefault(prop, set()).update(u for u in index.get(item, ()) if u != subject.urn)
        clean = {k: tuple(sorted(v)) for k, v in links.items() if v}
        linked.append(Subject(subject.urn, subject.type, subject.name, subject.props, subject.protect, subject.region,
                              clean))  # fmt: skip
    return tuple(linked)


ResourceCheck = Callable[[Subject, StackView], Iterable[str]]
StackCheck = Callable[[StackView], Iterable[tuple[Subject, str]]]


@dataclass(frozen=True)
class Rule:
    """A guardrail. `types` + `check_resource`: judged one resource at a time (CrossGuard's
    ResourceValidationPolicy). `check_stack`: needs the whole stack (StackValidationPolicy)."""

    name: str
    description: str
    types: tuple[str, ...] = ()
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None

    def evaluate(self, view: StackView) -> list[Violation]:
        found: list[Violation] = []
        if self.check_resource is not None:
            for subject in view.of_type(*self.types):
                found += [
                    Violation(self.name, subject.urn, subject.name, m) for m in self.check_resource(subject, view)
                ]
        if self.check_stack is not None:
            found += [Violation(self.name, s.urn, s.name, m) for s, m in self.check_stack(view)]
        return found


# --------------------------------------------------------------------------- small readers


def known(value: Any) -> bool:
    return value is not UNKNOWN


def as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def document(value: Any) -> dict[str, Any] | None:
    """An IAM/bucket policy document from a JSON string or dict; None when unknown or unreadable."""
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def statements(value: Any) -> list[dict[str, Any]]:
    doc = document(value)
    if doc is None:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def _matches(patterns: Iterable[Any], candidates: Iterable[str]) -> bool:
    """Whether any IAM pattern (with * and ?) matches any candidate, case-insensitively."""
    return any(isinstance(p, str) and fnmatch.fnmatchcase(c.lower(), p.lower()) for p in patterns for c in candidates)


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


def _attached_groups(subject: Subject) -> tuple[str, ...]:
    urns: list[str] = []
    for prop in ("vpcSecurityGroupIds", "securityGroupIds", "securityGroups"):
        urns += subject.links.get(prop, ())
    return tuple(urns)


# --------------------------------------------------------------------------- the rules


def _database_not_public(view: StackView) -> Iterator[tuple[Subject, str]]:
    for db in view.of_type(RDS, RDS_CLUSTER, CACHE_GROUP, CACHE_CLUSTER):
        if db.get("publiclyAccessible") is True:
            yield db, f"{db.name} is publicly accessible; set publicly_accessible=False and keep it in private subnets"
        groups = set(_attached_groups(db))
        for ingress in ingresses(view):
            if groups & set(ingress.group_urns) and ingress.open_to_world:
                yield (
                    db,
                    f"{db.name} is reachable from the internet through {ingress.owner.name} "
                    f"({ingress.describe()}); admit only the host's security group",
                )


def _rds_encrypted(db: Subject, view: StackView) -> Iterator[str]:
    if db.get("storageEncrypted") is not True and known(db.get("storageEncrypted")):
        yield f"{db.name} stores data unencrypted; set storage_encrypted=True (forces a new database: restore into it)"


def _cache_encrypted(cache: Subject, view: StackView) -> Iterator[str]:
    for prop, what, arg in (
        ("atRestEncryptionEnabled", "at rest", "at_rest_encryption_enabled"),
        ("transitEncryptionEnabled", "in transit", "transit_encryption_enabled"),
    ):
        value = cache.get(prop)
        if known(value) and value is not True:
            yield f"{cache.name} is not encrypted {what}; set {arg}=True"


def _ebs_encrypted(subject: Subject, view: StackView) -> Iterator[str]:
    if subject.type == EBS_VOLUME:
        if known(subject.get("encrypted")) and subject.get("encrypted") is not True:
            yield f"{subject.name} is an unencrypted EBS volume; set encrypted=True"
        return
    if subject.type == LAUNCH_TEMPLATE:
        yield from _launch_template_encrypted(subject)
        return
    root = subject.get("rootBlockDevice")
    if not isinstance(root, Mapping) or (known(root.get("encrypted")) and root.get("encrypted") is not True):
        yield f"{subject.name}'s root volume is not encrypted; set root_block_device.encrypted=True"
    for device in as_list(subject.get("ebsBlockDevices")):
        if isinstance(device, Mapping) and known(device.get("encrypted")) and device.get("encrypted") is not True:
            yield f"{subject.name}'s EBS volume {device.get('deviceName', '?')} is not encrypted; set encrypted=True"


def _launch_template_encrypted(template: Subject) -> Iterator[str]:
    """A launch template states its volumes' encryption per block device, as "true"/"false" strings."""
    mappings = [m for m in as_list(template.get("blockDeviceMappings")) if isinstance(m, Mapping)]
    if not mappings and known(template.get("blockDeviceMappings")):
        yield (
            f"{template.name} launches hosts with the AMI's root volume, encrypted only if the AMI's is; "
            "add block_device_mappings with ebs.encrypted=true"
        )
    for mapping in mappings:
        ebs = mapping.get("ebs")
        encrypted = ebs.get("encrypted") if isinstance(ebs, Mapping) else None
        if known(encrypted) and str(encrypted).lower() != "true":
            yield (
                f"{template.name}'s EBS volume {mapping.get('deviceName', '?')} is not encrypted; "
                "set ebs.encrypted=true"
            )


def _imdsv2(subject: Subject, view: StackView) -> Iterator[str]:
    options = subject.get("metadataOptions")
    tokens = options.get("httpTokens") if isinstance(options, Mapping) else None
    if known(tokens) and tokens != "required":
        yield f'{subject.name} allows IMDSv1 (credential theft via SSRF); set metadata_options.http_tokens="required"'


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
    groups = {urn for instance in view.of_type(INSTANCE) for urn in _attached_groups(instance)}
    return groups | {urn for lb in view.of_type(LOAD_BALANCER) for urn in _attached_groups(lb)}


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


# --------------------------------------------------------------------------- S3


def _buckets(view: StackView) -> list[Subject]:
    return view.of_type(BUCKET, BUCKET_V2)


def _attached(view: StackView, bucket: Subject, types: Sequence[str]) -> list[Subject]:
    return view.referring(bucket, types, "bucket")


def _s3_public_access_blocked(view: StackView) -> Iterator[tuple[Subject, str]]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in _buckets(view):
        blocks = _attached(view, bucket, (PUBLIC_ACCESS_BLOCK,))
        if not any(all(b.get(f) is True or not known(b.get(f)) for f in flags) for b in blocks):
            yield (
                bucket,
                f"{bucket.name} does not block public access; add a BucketPublicAccessBlock with all four flags",
            )


def _denies_non_tls(policy: Subject) -> bool | None:
    """True/False, or None when the policy cannot be read yet."""
    if not known(policy.get("policy")):
        return None
    for s in statements(policy.get("policy")):
        condition = s.get("Condition", {})
        secure = condition.get("Bool", {}).get("aws:SecureTransport") if isinstance(condition, dict) else None
        if s.get("Effect") == "Deny" and s.get("Principal") in ("*", {"AWS": "*"}) and str(secure).lower() == "false":
            return True
    return False


def _s3_tls_only(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _buckets(view):
        verdicts = [_denies_non_tls(p) for p in _attached(view, bucket, (BUCKET_POLICY,))]
        if None in verdicts or True in verdicts:
            continue
        yield (
            bucket,
            f"{bucket.name} accepts plain-HTTP requests; add a bucket policy denying aws:SecureTransport=false",
        )


def _s3_versioned(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _buckets(view):
        inline = bucket.get("versioning")
        if isinstance(inline, Mapping) and inline.get("enabled") is True:
            continue
        configs = _attached(view, bucket, BUCKET_VERSIONING)
        statuses = [c.get("versioningConfiguration", {}).get("status") for c in configs]
        if any(s == "Enabled" or not known(s) for s in statuses):
            continue
        yield bucket, f"{bucket.name} is not versioned; add a BucketVersioning with status Enabled"


def _s3_encrypted(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _buckets(view):
        if bucket.get("serverSideEncryptionConfiguration") or _attached(view, bucket, BUCKET_ENCRYPTION):
            continue
        yield (
            bucket,
            (
                f"{bucket.name} has no default encryption configured; add a BucketServerSideEncryptionConfiguration "
                "(AES256 or aws:kms)"
            ),
        )


def _backup_buckets(view: StackView) -> list[Subject]:
    found = []
    for bucket in _buckets(view):
        names = " ".join(str(bucket.get(k) or "") for k in ("bucket", "bucketPrefix")) + " " + bucket.name
        if bucket.component == "BackupBucket" or "backup" in names.lower():
            found.append(bucket)
    return found


def _data_regions(view: StackView) -> set[str]:
    """The stack's region and the regions its databases live in: where backups must not be."""
    return {view.region} | {r.region for r in view.of_type(RDS, RDS_CLUSTER) if r.region}


def _backup_off_site(view: StackView) -> Iterator[tuple[Subject, str]]:
    regions = {r for r in _data_regions(view) if r}
    for bucket in _backup_buckets(view):
        if bucket.region and bucket.region in regions:
            yield (
                bucket,
                (
                    f"{bucket.name} keeps backups in {bucket.region}, the stack's own region; a regional outage takes "
                    "both: give the bucket its own provider in another region (leanstack:backup.region)"
                ),
            )


def _backup_locked(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _backup_buckets(view):
        enabled = bucket.get("objectLockEnabled")
        inline = bucket.get("objectLockConfiguration")
        if isinstance(inline, Mapping) and inline.get("objectLockEnabled") == "Enabled":
            enabled = True
        if known(enabled) and enabled is not True:
            yield (
                bucket,
                (
                    f"{bucket.name} has no Object Lock, so one leaked key can delete every backup; create it with "
                    "object_lock_enabled=True (only possible at creation: a new bucket)"
                ),
            )
            continue
        locks = _attached(view, bucket, OBJECT_LOCK)
        retention = [
            lock.get("rule", {}).get("defaultRetention") for lock in locks if isinstance(lock.get("rule"), Mapping)
        ]
        if not any(r for r in retention):
            yield bucket, f"{bucket.name} has Object Lock but no default retention; add a BucketObjectLockConfiguration"


def _lifecycle_rules(view: StackView, bucket: Subject) -> list[Mapping[str, Any]] | None:
    """The bucket's enabled lifecycle rules, in one shape; None when a lifecycle is not known yet."""
    found: list[Mapping[str, Any]] = []
    for lifecycle in _attached(view, bucket, BUCKET_LIFECYCLE):
        rules = lifecycle.get("rules")
        if not known(rules):
            return None
        found += [r for r in as_list(rules) if isinstance(r, Mapping) and r.get("status", "Enabled") == "Enabled"]
    for rule in as_list(bucket.get("lifecycleRules")):  # the inline form of aws.s3.Bucket
        if isinstance(rule, Mapping) and rule.get("enabled", True) is True:
            found.append(
                {
                    "filter": {"prefix": rule.get("prefix", "")},
                    "abortIncompleteMultipartUpload": {
                        "daysAfterInitiation": rule.get("abortIncompleteMultipartUploadDays")
                    },
                    "expiration": rule.get("expiration") or {},
                    "noncurrentVersionExpiration": {
                        "noncurrentDays": (rule.get("noncurrentVersionExpiration") or {}).get("days")
                    },
                }
            )
    return found


def _nested(rule: Mapping[str, Any], block: str, key: str) -> Any:
    """rule[block][key]: None when absent, UNKNOWN when either is not known yet."""
    inner = rule.get(block)
    if not known(inner):
        return UNKNOWN
    return inner.get(key) if isinstance(inner, Mapping) else None


def _rule_prefix(rule: Mapping[str, Any]) -> Any:
    """The prefix a lifecycle rule applies to ("" for the whole bucket); UNKNOWN or None when unclear."""
    flt = rule.get("filter")
    if flt is None:
        return rule.get("prefix", "")
    if not isinstance(flt, Mapping):
        return flt if not known(flt) else None
    if flt.get("tag") or flt.get("and") or flt.get("objectSizeGreaterThan") or flt.get("objectSizeLessThan"):
        return None  # narrower than a prefix: does not cover every upload
    return flt.get("prefix", "") or ""


def _s3_aborts_incomplete_uploads(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _buckets(view):
        rules = _lifecycle_rules(view, bucket)
        if rules is None:
            continue
        days = [
            _nested(r, "abortIncompleteMultipartUpload", "daysAfterInitiation")
            for r in rules
            if _rule_prefix(r) == "" or not known(_rule_prefix(r))
        ]
        if any(not known(d) or (isinstance(d, int | float) and 0 < d <= MAX_INCOMPLETE_UPLOAD_DAYS) for d in days):
            continue
        what = "has no lifecycle" if not rules else "has a lifecycle that never aborts incomplete uploads bucket-wide"
        yield (
            bucket,
            f"{bucket.name} {what}: an unfinished multipart upload is billed forever; add a lifecycle rule with an "
            f"empty prefix and abort_incomplete_multipart_upload within {MAX_INCOMPLETE_UPLOAD_DAYS} days",
        )


def _backup_policy_denies_overwrites(policy_value: Any) -> bool | None:
    """Whether a bucket policy denies everyone a PutObject without If-None-Match (None: not known yet)."""
    if not known(policy_value):
        return None
    for s in statements(policy_value):
        condition = s.get("Condition")
        if (
            s.get("Effect") != "Deny"
            or s.get("Principal") not in ("*", {"AWS": "*"})
            or not isinstance(condition, Mapping)
        ):
            continue
        if not _matches(as_list(s.get("Action")), ["s3:PutObject"]):
            continue
        null = condition.get("Null") or {}
        creation = condition.get("Bool") or {}
        if set(condition) - {"Null", "Bool"} or not isinstance(null, Mapping) or not isinstance(creation, Mapping):
            continue
        if str(null.get("s3:if-none-match")).lower() != "true" or set(null) != {"s3:if-none-match"}:
            continue
        # The documented exemption of the multipart steps, and nothing narrower.
        if (
            set(creation) - {"s3:ObjectCreationOperation"}
            or str(creation.get("s3:ObjectCreationOperation", "true")).lower() != "true"
        ):
            continue
        return True
    return False


def _backup_conditional_writes(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _backup_buckets(view):
        policies = _attached(view, bucket, (BUCKET_POLICY,))
        verdicts = [_backup_policy_denies_overwrites(p.get("policy")) for p in policies]
        if None in verdicts or True in verdicts:
            continue
        yield (
            bucket,
            f"{bucket.name} lets anyone with s3:PutObject write a new version over a backup; add a bucket policy "
            'statement denying "*" s3:PutObject when s3:if-none-match is null and s3:ObjectCreationOperation is true',
        )


def _backup_keeps_noncurrent_versions(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in _backup_buckets(view):
        rules = _lifecycle_rules(view, bucket)
        if rules is None:
            continue
        current = [_nested(r, "expiration", "days") for r in rules]
        noncurrent = [_nested(r, "noncurrentVersionExpiration", "noncurrentDays") for r in rules]
        if not all(known(d) for d in current + noncurrent):
            continue
        longest = max((d for d in current if isinstance(d, int | float)), default=0)
        short = [d for d in noncurrent if isinstance(d, int | float) and d < longest]
        if short:
            yield (
                bucket,
                f"{bucket.name} deletes a noncurrent backup version after {min(short):g} day(s) but keeps current "
                f"ones {longest:g}: an overwrite or a stray delete becomes a real delete; set noncurrent_days >= "
                f"{longest:g}",
            )


# --------------------------------------------------------------------------- RDS


def _rds_retention(db: Subject, view: StackView) -> Iterator[str]:
    days = db.get("backupRetentionPeriod")
    if view.stack == "dev" or view.stack.startswith("dev-") or not known(days):
        return
    if not isinstance(days, int | float) or days < 7:
        shown = f"{days:g}" if isinstance(days, int | float) else "0"
        yield f"{db.name} keeps {shown} day(s) of backups in stack {view.stack}; set backup_retention_period >= 7"


def _rds_production_protection(db: Subject, view: StackView) -> Iterator[str]:
    # A read replica holds a copy of its source's data, nothing of its own: deleting it loses
    # nothing, and RDS refuses a final snapshot of one. The source carries the protection.
    if not view.production or db.get("replicateSourceDb"):
        return
    if known(db.get("deletionProtection")) and db.get("deletionProtection") is not True:
        yield f"{db.name} is a production database without deletion protection; set deletion_protection=True"
    skip = db.get("skipFinalSnapshot")
    if known(skip) and (skip is True or not db.get("finalSnapshotIdentifier")):
        yield (
            f"{db.name} is a production database deleted without a final snapshot; set skip_final_snapshot=False "
            "and a final_snapshot_identifier"
        )


def _rds_production_keeps_automated_backups(db: Subject, view: StackView) -> Iterator[str]:
    if not view.production or db.get("replicateSourceDb"):
        return
    keep = db.get("deleteAutomatedBackups")
    # Unset means AWS's default: deleted with the instance.
    if known(keep) and keep is not False:
        yield (
            f"{db.name} is a production database whose automated backups are deleted with it, so point-in-time "
            "recovery dies with the instance; set delete_automated_backups=False"
        )


# --------------------------------------------------------------------------- IAM


def _star_statements(doc_value: Any) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(doc_value)
        if s.get("Effect") == "Allow"
        and any(a in ("*", "*:*") for a in as_list(s.get("Action")))
        and "*" in as_list(s.get("Resource"))
    ]


def _no_star_iam(subject: Subject, view: StackView) -> Iterator[str]:
    if subject.type == ROLE:
        docs = [p.get("policy") for p in as_list(subject.get("inlinePolicies")) if isinstance(p, Mapping)]
    elif subject.type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
        arn = subject.get("policyArn")
        if isinstance(arn, str) and arn.rsplit("/", 1)[-1] == "AdministratorAccess":
            yield f"{subject.name} attaches AdministratorAccess (every action on every resource); grant what is needed"
        return
    else:
        docs = [subject.get(POLICY_DOCUMENTS[subject.type])]
    if any(_star_statements(d) for d in docs):
        yield f'{subject.name} allows every action on every resource ("*" on "*"); list the actions it needs'


def _host_roles(view: StackView) -> list[Subject]:
    """Roles the proxy host runs as: behind an instance profile an instance uses, or trusted by EC2."""
    roles: dict[str, Subject] = {}
    for instance in view.of_type(INSTANCE):
        for profile in view.linked(instance, "iamInstanceProfile"):
            for role in view.linked(profile, "role"):
                roles[role.urn] = role
    for role in view.of_type(ROLE):
        for s in statements(role.get("assumeRolePolicy")):
            principal = s.get("Principal", {})
            service = principal.get("Service") if isinstance(principal, dict) else None
            if "ec2.amazonaws.com" in as_list(service):
                roles[role.urn] = role
    return list(roles.values())


def _backup_arns(view: StackView) -> list[str] | None:
    """The backup buckets' ARNs; None when any is unknown (then any S3 resource counts)."""
    arns: list[str] = []
    for bucket in _backup_buckets(view):
        name = bucket.get("bucket")
        if not isinstance(name, str) or not name:
            return None
        arns.append(f"arn:aws:s3:::{name}")
    return arns


def _covers_bucket(pattern: str, bucket_arn: str) -> bool:
    """Whether an IAM resource pattern can match the bucket or any object in it."""
    if fnmatch.fnmatchcase(bucket_arn, pattern):
        return True
    fixed = re.split(r"[*?]", pattern, maxsplit=1)[0]  # the part before the first wildcard
    objects = bucket_arn + "/"
    return objects.startswith(fixed) or fixed.startswith(objects)


def _could_destroy_backups(statement: Mapping[str, Any], backup_arns: list[str] | None) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not _matches(as_list(statement.get("Action")), BACKUP_DESTROYING_ACTIONS):
        return False
    resources = as_list(statement.get("Resource"))
    if any(not isinstance(r, str) for r in resources):  # an ARN not known yet: assume the worst
        return True
    if backup_arns is None:
        return any(r == "*" or r.startswith("arn:aws:s3:::") for r in resources)
    return any(_covers_bucket(r, arn) for r in resources for arn in backup_arns)


def _attachments(view: StackView, role: Subject) -> list[tuple[Subject, str]]:
    """The role's policy attachments, each with the attached policy's name (its ARN's last part)."""
    found = view.referring(role, (ROLE_POLICY_ATTACHMENT,), "role") + view.referring(
        role, (POLICY_ATTACHMENT,), "roles"
    )
    return [(a, a.get("policyArn").rsplit("/", 1)[-1] if isinstance(a.get("policyArn"), str) else "") for a in found]


def _role_documents(view: StackView, role: Subject) -> list[tuple[Subject, Any]]:
    """Every policy document the role carries, with its owner: inline policies, role policies and
    the customer-managed policies attached to it (AWS-managed ones are judged by name)."""
    documents: list[tuple[Subject, Any]] = [
        (role, p.get("policy")) for p in as_list(role.get("inlinePolicies")) if isinstance(p, Mapping)
    ]
    documents += [(p, p.get("policy")) for p in view.referring(role, (ROLE_POLICY,), "role")]
    for attachment, _ in _attachments(view, role):
        documents += [(p, p.get("policy")) for p in view.linked(attachment, "policyArn")]
    return documents


def _host_cannot_delete_backups(view: StackView) -> Iterator[tuple[Subject, str]]:
    if not _backup_buckets(view):
        return
    backup_arns = _backup_arns(view)
    for role in _host_roles(view):
        for attachment, name in _attachments(view, role):
            if name in S3_WIDE_POLICIES:
                yield (
                    attachment,
                    (
                        f"{attachment.name} gives the host role {role.name} {name}, which can delete "
                        "backups; grant put/get/list on the backup prefix only"
                    ),
                )
        for owner, doc in _role_documents(view, role):
            if any(_could_destroy_backups(s, backup_arns) for s in statements(doc)):
                yield (
                    owner,
                    (
                        f"{owner.name} lets the host role {role.name} delete or unlock backups; a compromised host "
                        "must not be able to destroy them: allow only s3:PutObject/GetObject/ListBucket"
                    ),
                )


# AWS-managed policies that let a role read every SSM parameter of the account.
PARAMETER_WIDE_POLICIES = (
    *ADMIN_POLICIES,
    "AmazonSSMManagedInstanceCore",
    "AmazonSSMReadOnlyAccess",
    "AmazonSSMFullAccess",
    "ReadOnlyAccess",
    "AmazonEC2RoleforSSM",
)
PARAMETER_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory")


def _outside_own_parameters(statement: Mapping[str, Any], stack: str) -> list[str]:
    """The resources an Allow of a parameter read names outside arn:...:parameter/leanstack/<stack>/."""
    if statement.get("Effect") != "Allow" or not _matches(as_list(statement.get("Action")), PARAMETER_READS):
        return []
    if "NotResource" in statement:
        return ["NotResource"]
    own = re.compile(rf"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{{12}}:parameter{re.escape(parameter_root(stack))}/.*")
    return [r for r in as_list(statement.get("Resource")) if isinstance(r, str) and not own.fullmatch(r)]


def _host_reads_own_parameters(view: StackView) -> Iterator[tuple[Subject, str]]:
    for role in _host_roles(view):
        for attachment, name in _attachments(view, role):
            if name in PARAMETER_WIDE_POLICIES:
                yield (
                    attachment,
                    f"{attachment.name} gives the host role {role.name} {name}, which reads "
                    "every SSM parameter of the account (other stacks' secrets); grant reads on "
                    f"{parameter_root(view.stack)}/* only",
                )
        for owner, doc in _role_documents(view, role):
            for statement in statements(doc):
                outside = _outside_own_parameters(statement, view.stack)
                if outside:
                    yield (
                        owner,
                        f"{owner.name} lets the host role {role.name} read SSM parameters outside "
                        f"{parameter_root(view.stack)}/ ({outside[0]}); "
                        f"allow only parameter{parameter_root(view.stack)}/*, "
                        "so another stack's secrets stay out of reach",
                    )


# --------------------------------------------------------------------------- the pack

RULES: tuple[Rule, ...] = (
    Rule(
        "database-not-public",
        "Databases and caches are not publicly accessible and no security group opens them to the internet.",
        check_stack=_database_not_public,
    ),
    Rule("rds-storage-encrypted", "RDS storage is encrypted at rest.", (RDS, RDS_CLUSTER), _rds_encrypted),
    Rule(
        "cache-encrypted",
        "ElastiCache is encrypted at rest and in transit.",
        (CACHE_GROUP,),
        _cache_encrypted,
    ),
    Rule(
        "ebs-encrypted",
        "EC2 root and EBS volumes, and those launch templates create, are encrypted.",
        (INSTANCE, EBS_VOLUME, LAUNCH_TEMPLATE),
        _ebs_encrypted,
    ),
    Rule("imdsv2-required", "Instances require IMDSv2 (session tokens).", (INSTANCE, LAUNCH_TEMPLATE), _imdsv2),
    Rule("no-ssh", "No security group rule admits port 22, from anywhere.", check_stack=_no_ssh),
    Rule(
        "no-world-ingress",
        "No ingress from 0.0.0.0/0 or ::/0, except 80/443 on the proxy host when no CDN proxies it.",
        check_stack=_no_world_ingress,
    ),
    Rule(
        "s3-public-access-blocked", "Every S3 bucket blocks all public access.", check_stack=_s3_public_access_blocked
    ),
    Rule("s3-tls-only", "Every S3 bucket's policy denies requests not made over TLS.", check_stack=_s3_tls_only),
    Rule("s3-versioned", "Every S3 bucket is versioned.", check_stack=_s3_versioned),
    Rule("s3-encrypted", "Every S3 bucket has default server-side encryption.", check_stack=_s3_encrypted),
    Rule(
        "s3-aborts-incomplete-uploads",
        f"Every S3 bucket has a lifecycle that aborts incomplete multipart uploads within "
        f"{MAX_INCOMPLETE_UPLOAD_DAYS} days, bucket-wide.",
        check_stack=_s3_aborts_incomplete_uploads,
    ),
    Rule(
        "backup-bucket-off-site",
        "The backup bucket lives in a region other than the stack's (and its database's).",
        check_stack=_backup_off_site,
    ),
    Rule(
        "backup-bucket-object-lock",
        "The backup bucket has Object Lock with a default retention.",
        check_stack=_backup_locked,
    ),
    Rule(
        "backup-bucket-conditional-writes",
        "Nobody can write over a backup: the bucket policy denies s3:PutObject without If-None-Match.",
        check_stack=_backup_conditional_writes,
    ),
    Rule(
        "backup-bucket-keeps-noncurrent-versions",
        "The backup bucket keeps a noncurrent version at least as long as a current one.",
        check_stack=_backup_keeps_noncurrent_versions,
    ),
    Rule(
        "rds-backup-retention",
        "RDS keeps at least 7 days of automated backups outside dev.",
        (RDS, RDS_CLUSTER),
        _rds_retention,
    ),
    Rule(
        "rds-production-protection",
        "A production database (not a read replica: its data is the source's) has deletion protection and a "
        "final snapshot.",
        (RDS, RDS_CLUSTER),
        _rds_production_protection,
    ),
    Rule(
        "rds-production-keeps-automated-backups",
        "A production database (not a read replica) keeps its automated backups when it is deleted.",
        (RDS,),
        _rds_production_keeps_automated_backups,
    ),
    Rule(
        "no-star-iam",
        "No IAM policy allows every action on every resource.",
        (ROLE, ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, *POLICY_DOCUMENTS),
        _no_star_iam,
    ),
    Rule(
        "host-reads-own-parameters",
        "The host's role reads SSM parameters under /leanstack/<stack>/ only, and has no AWS-managed policy "
        "that reads them all.",
        check_stack=_host_reads_own_parameters,
    ),
    Rule(
        "host-cannot-delete-backups",
        "The host's role cannot delete, overwrite-unlock or expire backup objects.",
        check_stack=_host_cannot_delete_backups,
    ),
)


def evaluate(view: StackView, rules: Sequence[Rule] = RULES) -> dict[str, list[Violation]]:
    """Every rule's violations (an empty list: the rule passed), in rule order."""
    return {rule.name: rule.evaluate(view) for rule in rules}
