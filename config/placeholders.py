"""The six values a fork fills in every stack file, and how a leftover placeholder is recognised.

The repository's stack files ship with placeholders (a reserved example domain, a made-up zone
id, example addresses). `python -m leanstack init` replaces them; `validate` and `plan` warn
about any left; the program refuses them when it would create real resources. The regions are
real values (any region is valid), so they are never flagged, only asked for by `init`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leanstack.config.naming import PROJECT

# The zone id every shipped stack file carries (32 hex characters, so it passes validation).
PLACEHOLDER_ZONE_ID = "0123456789abcdef0123456789abcdef"
# Domains reserved for documentation (RFC 2606): no one can own them, so a stack serving one is unfilled.
_RESERVED_DOMAIN = re.compile(r"(?:.+\.)?example\.(?:com|net|org)", re.IGNORECASE)


@dataclass(frozen=True)
class Fill:
    """What `init` writes: the six values of a fork."""

    domain: str
    zone_id: str
    alert_email: str
    owner: str
    region: str
    backup_region: str


def _is_reserved(domain: str) -> bool:
    return bool(_RESERVED_DOMAIN.fullmatch(domain.strip()))


def leftover_placeholders(raw: Mapping[str, Any]) -> list[str]:
    """The keys of a stack's raw config still holding a shipped placeholder, one line each."""
    found: list[str] = []
    domain = raw.get(f"{PROJECT}:domain")
    if isinstance(domain, str) and _is_reserved(domain):
        found.append(f"{PROJECT}:domain is still the placeholder {domain}")
    cdn = raw.get(f"{PROJECT}:cdn")
    if isinstance(cdn, Mapping) and cdn.get("zoneId") == PLACEHOLDER_ZONE_ID:
        found.append(f"{PROJECT}:cdn.zoneId is still the placeholder {PLACEHOLDER_ZONE_ID}")
    email = raw.get(f"{PROJECT}:alertEmail")
    if isinstance(email, str) and _is_reserved(email.rpartition("@")[2]):
        found.append(f"{PROJECT}:alertEmail is still the placeholder {email}")
    owner = raw.get(f"{PROJECT}:owner")
    if isinstance(owner, str) and any(_is_reserved(word.rpartition("@")[2]) for word in owner.split() if "@" in word):
        found.append(f"{PROJECT}:owner is still the placeholder {owner!r}")
    return found


def refusal(raw: Mapping[str, Any]) -> str | None:
    """The one line the program stops with when it would create real resources from placeholders."""
    left = leftover_placeholders(raw)
    if not left:
        return None
    more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
    return (
        f"{left[0]}{more}: placeholders cannot create real resources; "
        "fill them with `python -m leanstack init` (see the README's fork steps)"
    )
