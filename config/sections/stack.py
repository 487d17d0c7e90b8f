"""The whole stack file: its top-level keys, the section of each, and the validated `StackConfig`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from leanstack.config.fields import EMAIL_ALLOWED, EMAIL_RE, HOSTNAME_ALLOWED, HOSTNAME_RE
from leanstack.config.naming import PROJECT
from leanstack.config.sections.alerts import AlertThresholds
from leanstack.config.sections.app import AppArgs
from leanstack.config.sections.backup import BackupBucketArgs
from leanstack.config.sections.budget import BudgetArgs
from leanstack.config.sections.cache import CacheArgs
from leanstack.config.sections.cdn import CdnArgs
from leanstack.config.sections.database import DatabaseArgs
from leanstack.config.sections.host import HostsArgs, ProxyHostArgs
from leanstack.config.sections.network import NetworkArgs
from leanstack.config.sections.recovery import PERSON_ALLOWED, PERSON_NAME_RE, RecoveryTargets
from leanstack.config.sections.storage import StorageArgs


@dataclass(frozen=True)
class StackConfig:
    """The whole validated stack config."""

    stack: str
    region: str
    domain: str
    hostnames: tuple[str, ...]
    alert_email: str
    cdn: CdnArgs
    backup: BackupBucketArgs
    network: NetworkArgs = field(default_factory=NetworkArgs)
    app: AppArgs = field(default_factory=AppArgs)
    host: ProxyHostArgs = field(default_factory=ProxyHostArgs)
    hosts: HostsArgs = field(default_factory=HostsArgs)
    database: DatabaseArgs = field(default_factory=DatabaseArgs)
    cache: CacheArgs = field(default_factory=CacheArgs)
    storage: StorageArgs = field(default_factory=StorageArgs)
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    recovery: RecoveryTargets = field(default_factory=RecoveryTargets)
    budget: BudgetArgs = field(default_factory=BudgetArgs)
    owner: str = ""

    @property
    def is_production(self) -> bool:
        """Production: named prod/production/prod-*, or its database is protected (see `is_production`)."""
        return is_production(self.stack, self.database)

    @property
    def name_prefix(self) -> str:
        """Prefix of physical names: leanstack-<stack>."""
        return f"{PROJECT}-{self.stack}"


# Top-level keys of the `leanstack:` namespace and the section dataclass of each object key.
SECTIONS: dict[str, type[Any]] = {
    "network": NetworkArgs,
    "app": AppArgs,
    "host": ProxyHostArgs,
    "hosts": HostsArgs,
    "database": DatabaseArgs,
    "cache": CacheArgs,
    "storage": StorageArgs,
    "cdn": CdnArgs,
    "backup": BackupBucketArgs,
    "alerts": AlertThresholds,
    "recovery": RecoveryTargets,
    "budget": BudgetArgs,
}
# The scalar top-level keys, each with the metadata a `setting` carries, and whether it is required.
SCALARS: dict[str, dict[str, Any]] = {
    "domain": {
        "doc": "The site's apex domain, in the Cloudflare zone.",
        "pattern": HOSTNAME_RE,
        "allowed": HOSTNAME_ALLOWED,
        "required": True,
    },
    "hostnames": {
        "doc": "Hostnames served; empty means the domain and www.<domain>. Each must be one the zone's "
        "certificate covers: with Universal SSL, the zone's apex or a name one level under it.",
        "pattern": HOSTNAME_RE,
        "allowed": HOSTNAME_ALLOWED,
        "required": False,
    },
    "alertEmail": {
        "doc": "Address that receives pages, and tickets too unless alerts.ticketEmail is set (confirm the "
        "subscription emails AWS sends).",
        "pattern": EMAIL_RE,
        "allowed": EMAIL_ALLOWED,
        "required": True,
    },
    "owner": {
        "doc": "Who owns this stack (a name, team or email); shown in the runbook. Required for production.",
        "pattern": PERSON_NAME_RE,
        "allowed": PERSON_ALLOWED,
        "required": False,
    },
}
# The sections a stack file must give (their Args have fields without a default).
REQUIRED_SECTIONS = ("cdn", "backup")

# Stack names that are production whatever their database says (see is_production).

PRODUCTION_NAME_RE = r"prod|production|prod-[a-z0-9-]+"


def is_production(stack: str, database: DatabaseArgs) -> bool:
    """Whether a stack holds data people care about, and so must name an owner and recovery targets.

    A stack is production when its name is `prod`, `production` or starts with `prod-`, or when its
    database is protected (`database.protect` or `database.deletionProtection`, both on by default).
    The name alone is not enough (forks call it live, main, eu...), and a protected database is the
    stack saying its data matters; a disposable stack turns both protections off, as dev does.
    """
    return bool(re.fullmatch(PRODUCTION_NAME_RE, stack)) or database.protect or database.deletion_protection
