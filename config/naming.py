"""The project's name and the naming scheme of everything it creates: the one place both live.

A fork renames the project here (and in Pulumi.yaml); every physical name, type token, tag and
config namespace reads it from here.
"""

from __future__ import annotations

PROJECT = "leanstack"

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


def releases_parameter(stack: str) -> str:
    """The deploy history parameter (components.app creates it, `deploy` writes it)."""
    return f"/{PROJECT}/{stack}/releases"


def app_config_parameter(stack: str) -> str:
    """The app's config document (components.app): Pulumi writes it from the stack file."""
    return f"/{PROJECT}/{stack}/app/config"


def cache_token_parameter(stack: str) -> str:
    """The cache's auth token (components.cache): Pulumi writes it."""
    return f"/{PROJECT}/{stack}/cache/auth-token"


def tls_parameter_prefix(stack: str) -> str:
    """The origin certificate and key (components.proxy_host): Pulumi writes them."""
    return f"/{PROJECT}/{stack}/tls/"


def pulumi_owned_parameter(stack: str, name: str) -> bool:
    """Whether the stack's Pulumi program writes this SSM parameter: a sealed restore never does."""
    owned = (releases_parameter(stack), app_config_parameter(stack), cache_token_parameter(stack))
    return name in owned or name.startswith(tls_parameter_prefix(stack))
