"""What the diff knows of a resource and the risks it files: the risk kinds, the type families the
checks single out, what a resource is and holds (from `leanstack.resource_facts`), and `Findings`,
the risks and notes collected for one stack."""

from __future__ import annotations

from typing import Any

import leanstack.config.resource_types as resource_types
from leanstack.resource_facts import Facts, facts_for

# Risk kinds, most severe first.
POLICY = "mandatory policy fails"
DATA_LOSS = "data loss"
REFUSED = "refused by AWS"
DOWNTIME = "downtime"
EXPOSURE = "exposure"
WEAKER = "weaker safety"
ORPHANED = "orphaned"
RISK_ORDER = (POLICY, DATA_LOSS, REFUSED, DOWNTIME, EXPOSURE, WEAKER, ORPHANED)

# The types and type families the risk checks single out; what a change does to each type is in
# leanstack/resource_facts.py.
HOST = resource_types.EC2_INSTANCE.token
BUCKET_TYPES = resource_types.tokens_in(resource_types.BUCKET)
OBJECT_LOCK_TYPES = resource_types.tokens_in(resource_types.OBJECT_LOCK)
LIFECYCLE_TYPES = resource_types.tokens_in(resource_types.LIFECYCLE)
ENCRYPTION_CONFIG_TYPES = resource_types.tokens_in(resource_types.BUCKET_ENCRYPTION)
IAM_DOCUMENT_TYPES = resource_types.tokens_in(resource_types.IAM_DOCUMENT)

RDS_INSTANCE = resource_types.RDS_INSTANCE.token


def facts_of(r: dict[str, Any]) -> Facts:
    """The facts of `r`'s type; a type without an entry is named, and its effects said unknown."""
    found = facts_for(r["type"])
    if found is None:
        return Facts(r["type"].rsplit(":", 1)[-1], "not in leanstack/resource_facts.py: effects unknown")
    return found


def holds_data(r: dict[str, Any]) -> bool:
    """Whether replacing or deleting `r` loses something. A read replica holds only a copy of
    its source (removing one loses nothing; the source is still there)."""
    return bool(facts_of(r).holds_data) and not r["inputs"].get("replicateSourceDb")


def named(r: dict[str, Any]) -> str:
    """`r` as a risk line names it: what it is and its name."""
    if r["inputs"].get("replicateSourceDb"):
        return f"read replica `{r['name']}`"
    return f"{facts_of(r).what} `{r['name']}`"


def hosts_in(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The plan's EC2 hosts: with only one, its downtime is the site's."""
    return [r for r in (plan or {}).get("resources", []) if r["type"] == HOST]


def deleted_with(r: dict[str, Any]) -> str:
    """What goes when `r` is deleted, as its own settings say (an RDS instance's final snapshot and backups)."""
    facts = facts_of(r)
    if r["type"] != RDS_INSTANCE:
        return facts.holds_data
    inputs = r["inputs"]
    snapshot = inputs.get("finalSnapshotIdentifier")
    if inputs.get("skipFinalSnapshot") is False and snapshot:
        kept = f"RDS first takes the final snapshot `{snapshot}`"
    else:
        kept = "RDS takes no final snapshot (skipFinalSnapshot is true)"
    if inputs.get("deleteAutomatedBackups") is False:
        days = inputs.get("backupRetentionPeriod")
        until = f"their {days}-day retention" if days else "their retention"
        backups = f"its automated backups are kept (deleteAutomatedBackups is false) until {until} ends"
    else:
        backups = "its automated backups are deleted with it (deleteAutomatedBackups is true)"
    return f"its data ({kept}; {backups})"


class Findings:
    """Risks and notes collected for one stack."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.risks: list[dict[str, str]] = []
        self.notes: dict[str, list[str]] = {}

    def risk(self, kind: str, r: dict[str, Any], text: str) -> None:
        item = {"stack": self.stack, "kind": kind, "type": r["type"], "name": r["name"], "urn": r["urn"], "text": text}
        if item not in self.risks:
            self.risks.append(item)

    def note(self, r: dict[str, Any], text: str) -> None:
        self.notes.setdefault(r["urn"], [])
        if text not in self.notes[r["urn"]]:
            self.notes[r["urn"]].append(text)

    def sorted(self) -> list[dict[str, str]]:
        order = list(RISK_ORDER)
        return sorted(self.risks, key=lambda f: (order.index(f["kind"]), f["name"], f["text"]))
