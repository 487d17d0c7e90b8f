"""The project's name and the naming scheme of everything it creates: the one place both live.

A fork renames the project in `leanstack.host.agent.contract.PROJECT` (and in Pulumi.yaml), the
one module the host and the laptop share; every physical name, type token, tag and config
namespace reads it through here.
"""

from __future__ import annotations

# The project's name lives with the host's names (the SSM paths and log groups start with it).
from leanstack.host.agent.contract import (
    PROJECT,
    app_parameters_path,
    cache_token_parameter,
    database_parameter,
    releases_parameter,
    tls_parameter_prefix,
)

__all__ = [
    "PROJECT",
    "RELEASE_TAG_PREFIX",
    "app_config_parameter",
    "final_snapshot_name",
    "physical_name",
    "pulumi_owned_parameter",
    "stack_prefix",
]

# ECR tags of images a deploy released (never expired by the repository's lifecycle policy).
RELEASE_TAG_PREFIX = "release-"


def stack_prefix(stack: str) -> str:
    """Prefix of the stack's physical names: leanstack-<stack>."""
    return f"{PROJECT}-{stack}"


def physical_name(stack: str, *parts: str) -> str:
    """A physical name in the stack's scheme: leanstack-<stack>-<part>-<part>..."""
    return "-".join((stack_prefix(stack), *parts))


def final_snapshot_name(stack: str) -> str:
    """The RDS final snapshot of the stack's database (components.database, the recovery sheet)."""
    return physical_name(stack, "final")


def app_config_parameter(stack: str) -> str:
    """The app's config document (components.app): Pulumi writes it from the stack file."""
    return f"{app_parameters_path(stack)}/config"


def pulumi_owned_parameter(stack: str, name: str) -> bool:
    """Whether the stack's Pulumi program writes this SSM parameter (the app config document, the release
    history, the cache token, the database's location, the TLS material): a sealed restore never does (a
    forged bundle must not point the host at another database)."""
    owned = (
        releases_parameter(stack),
        app_config_parameter(stack),
        cache_token_parameter(stack),
        database_parameter(stack),
    )
    return name in owned or name.startswith(tls_parameter_prefix(stack) + "/")
