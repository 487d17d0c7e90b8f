"""Identity: no "*" on "*", and the host's roles reach neither the backups' deletion nor other stacks' secrets."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from typing import Any

from leanstack.host.agent.contract import parameter_root
from leanstack.policy.rules.backups import backup_buckets
from leanstack.policy.rules.host import host_roles
from leanstack.policy.rules.resource_types import (
    POLICY_ATTACHMENT,
    POLICY_DOCUMENTS,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
)
from leanstack.policy.rules.view import Rule, StackView, Subject, as_list, matches, statements

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


def _backup_arns(view: StackView) -> list[str] | None:
    """The backup buckets' ARNs; None when any is unknown (then any S3 resource counts)."""
    arns: list[str] = []
    for bucket in backup_buckets(view):
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
    if not matches(as_list(statement.get("Action")), BACKUP_DESTROYING_ACTIONS):
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
    if not backup_buckets(view):
        return
    backup_arns = _backup_arns(view)
    for role in host_roles(view):
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
    if statement.get("Effect") != "Allow" or not matches(as_list(statement.get("Action")), PARAMETER_READS):
        return []
    if "NotResource" in statement:
        return ["NotResource"]
    own = re.compile(rf"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{{12}}:parameter{re.escape(parameter_root(stack))}/.*")
    return [r for r in as_list(statement.get("Resource")) if isinstance(r, str) and not own.fullmatch(r)]


def _host_reads_own_parameters(view: StackView) -> Iterator[tuple[Subject, str]]:
    for role in host_roles(view):
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


NO_STAR_IAM = Rule(
    "no-star-iam",
    "No IAM policy allows every action on every resource.",
    (ROLE, ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, *POLICY_DOCUMENTS),
    _no_star_iam,
)
HOST_READS_OWN_PARAMETERS = Rule(
    "host-reads-own-parameters",
    "The host's role reads SSM parameters under /leanstack/<stack>/ only, and has no AWS-managed policy "
    "that reads them all.",
    check_stack=_host_reads_own_parameters,
)
HOST_CANNOT_DELETE_BACKUPS = Rule(
    "host-cannot-delete-backups",
    "The host's role cannot delete, overwrite-unlock or expire backup objects.",
    check_stack=_host_cannot_delete_backups,
)
