"""The explicit AWS providers: one per region, carrying the default tags.

Every taggable AWS resource gets `Project`, `Stack` and `ManagedBy=pulumi` through the
provider's `default_tags`, so a resource found in the console can be traced to its stack.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from leanstack.config.naming import PROJECT, stack_prefix


def default_tags(stack: str) -> dict[str, str]:
    return {"Project": PROJECT, "Stack": stack, "ManagedBy": "pulumi"}


def aws_provider(
    name: str,
    *,
    region: str,
    stack: str,
    profile: str = "",
    role_arn: str = "",
    opts: pulumi.ResourceOptions | None = None,
) -> aws.Provider:
    """An AWS provider for `region`; `profile`/`role_arn` reach a second account."""
    return aws.Provider(
        name,
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(stack)),
        profile=profile or None,
        assume_roles=[aws.ProviderAssumeRoleArgs(role_arn=role_arn, session_name=stack_prefix(stack))]
        if role_arn
        else None,
        opts=opts,
    )


def creating_real_resources() -> bool:
    """`pulumi up` against a real engine: neither a preview nor a run under Pulumi's mocks (tests, plan)."""
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockEngine

    return not pulumi.runtime.is_dry_run() and not isinstance(settings.SETTINGS.engine, MockEngine)
