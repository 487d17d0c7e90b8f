"""The proxy host: its instance metadata service, and the roles it runs as (which the IAM rules judge)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from leanstack.policy.rules.resource_types import INSTANCE, LAUNCH_TEMPLATE, ROLE
from leanstack.policy.rules.view import Rule, StackView, Subject, as_list, known, statements


def _imdsv2(subject: Subject, view: StackView) -> Iterator[str]:
    options = subject.get("metadataOptions")
    tokens = options.get("httpTokens") if isinstance(options, Mapping) else None
    if known(tokens) and tokens != "required":
        yield f'{subject.name} allows IMDSv1 (credential theft via SSRF); set metadata_options.http_tokens="required"'


def host_roles(view: StackView) -> list[Subject]:
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


IMDSV2_REQUIRED = Rule(
    "imdsv2-required", "Instances require IMDSv2 (session tokens).", (INSTANCE, LAUNCH_TEMPLATE), _imdsv2
)
