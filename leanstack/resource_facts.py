"""What a change does to each resource type, as the diff, the plan and the tests read it.

The facts themselves live in the table of resource types (`leanstack.config.resource_types`),
one entry per type token beside its price rule, key inputs and mock outputs; this module is
the view of it by token. A test enumerates every resource type of every shipped stack (dev,
prod, scale, each also with the cache on) and fails when one has no facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from leanstack.config.resource_types import COMPONENT, COMPONENT_PREFIX, DOWNGRADE, SHRINK, TYPES, Facts

__all__ = ["COMPONENT", "DOWNGRADE", "FACTS", "SHRINK", "Facts", "data_holding_types", "facts_for"]

# Every type the table has facts for (types named only by the cost model or the policy pack have none).
FACTS: Mapping[str, Facts] = MappingProxyType(
    {token: entry.facts for token, entry in TYPES.items() if entry.facts is not None}
)


def facts_for(resource_type: str) -> Facts | None:
    """The entry for a resource type; leanstack's own component types share one."""
    if resource_type.startswith(COMPONENT_PREFIX):
        return COMPONENT
    return FACTS.get(resource_type)


def data_holding_types() -> frozenset[str]:
    """Types that lose something when replaced or deleted."""
    return frozenset(kind for kind, facts in FACTS.items() if facts.holds_data)
