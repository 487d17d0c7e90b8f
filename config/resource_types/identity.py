"""Identity and secrets: IAM roles, policies and instance profiles; SSM parameters and secrets."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    IAM_DOCUMENT,
    IDENTITY,
    MOCK_ACCOUNT,
    Facts,
    MockCall,
    ResourceType,
    names,
)


def _iam_role(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    role = call.inputs.get("name", call.name)
    return role, {"arn": f"arn:aws:iam::{MOCK_ACCOUNT}:role/{role}", "name": role}


def _instance_profile(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    profile = call.inputs.get("name", call.name)
    return profile, {"arn": f"arn:aws:iam::{MOCK_ACCOUNT}:instance-profile/{profile}", "name": profile}


def _ssm_parameter(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    path = call.inputs.get("name", "/" + call.name)
    return None, {"arn": f"arn:aws:ssm:{call.region}:{MOCK_ACCOUNT}:parameter{path}"}


IAM_ROLE = ResourceType(
    "aws:iam/role:Role",
    (IDENTITY, IAM_DOCUMENT),
    facts=Facts(
        "IAM role", "IAM: name and path are ForceNew; the trust policy changes in place.", replaces=names("path")
    ),
    free="no charge",
    key_inputs=("name",),
    mock=_iam_role,
)

IAM_ROLE_POLICY = ResourceType(
    "aws:iam/rolePolicy:RolePolicy",
    (IDENTITY, IAM_DOCUMENT),
    facts=Facts(
        "IAM inline policy",
        "IAM: name and role are ForceNew; the document is replaced in place.",
        replaces=names("role"),
    ),
    free="no charge",
)

IAM_ROLE_POLICY_ATTACHMENT = ResourceType(
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    (IDENTITY,),
    facts=Facts(
        "IAM policy attachment",
        "IAM: role and policy ARN are ForceNew (detached, then attached).",
        replaces=frozenset({"role", "policyArn"}),
    ),
    free="no charge",
)

IAM_INSTANCE_PROFILE = ResourceType(
    "aws:iam/instanceProfile:InstanceProfile",
    (IDENTITY,),
    facts=Facts(
        "instance profile", "IAM: name and path are ForceNew; the role changes in place.", replaces=names("path")
    ),
    free="no charge",
    mock=_instance_profile,
)

SSM_PARAMETER = ResourceType(
    "aws:ssm/parameter:Parameter",
    (IDENTITY,),
    facts=Facts(
        "SSM parameter",
        "SSM: name is ForceNew; the value is a new parameter version.",
        replaces=frozenset({"name"}),
    ),
    price="ssm_parameter",
    key_inputs=("name", "type", "value"),
    mock=_ssm_parameter,
)

IAM_GROUP_POLICY = ResourceType(
    "aws:iam/groupPolicy:GroupPolicy",
    (IDENTITY,),
)

IAM_POLICY = ResourceType(
    "aws:iam/policy:Policy",
    (IDENTITY, IAM_DOCUMENT),
    free="no charge",
)

IAM_POLICY_ATTACHMENT = ResourceType(
    "aws:iam/policyAttachment:PolicyAttachment",
    (IDENTITY,),
)

IAM_USER_POLICY = ResourceType(
    "aws:iam/userPolicy:UserPolicy",
    (IDENTITY,),
)

SECRETSMANAGER_SECRET = ResourceType(
    "aws:secretsmanager/secret:Secret",
    (IDENTITY,),
    price="secret",
)

ENTRIES = (
    IAM_ROLE,
    IAM_ROLE_POLICY,
    IAM_ROLE_POLICY_ATTACHMENT,
    IAM_INSTANCE_PROFILE,
    SSM_PARAMETER,
    IAM_GROUP_POLICY,
    IAM_POLICY,
    IAM_POLICY_ATTACHMENT,
    IAM_USER_POLICY,
    SECRETSMANAGER_SECRET,
)
