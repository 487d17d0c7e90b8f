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
    """What `init` writes: the values every fork must change."""

    domain: str
    zone_id: str
    alert_email: str
    owner: str
    region: str
    backup_region: str
    second_person: str


# A reserved example domain anywhere in a value: a hostname, the domain of an address, a URL's host.
_RESERVED_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9-])(?:[A-Za-z0-9-]+\.)*example\.(?:com|net|org)(?![A-Za-z0-9-]|\.[A-Za-z0-9])", re.IGNORECASE
)


def _is_reserved(domain: str) -> bool:
    return bool(_RESERVED_DOMAIN.fullmatch(domain.strip()))


def _string_values(value: Any, key: str) -> list[tuple[str, str]]:
    """Every string in a raw config value with its key path (leanstack:recovery.secondPerson, hostnames[0])."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, Mapping):
        return [pair for k, v in value.items() for pair in _string_values(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _string_values(v, f"{key}[{i}]")]
    return []


def leftover_placeholders(raw: Mapping[str, Any]) -> list[str]:
    """Every key of a stack's raw config still holding an example value, one line each.

    An example value is the shipped zone id or any reserved example domain (example.com, .net,
    .org) in a string, wherever it sits: the domain, an address, an owner or second person, a URL.
    """
    found: list[str] = []
    for key in raw:
        for path, text in _string_values(raw[key], key):
            if _RESERVED_IN_TEXT.search(text):
                shown = repr(text) if " " in text else text
                found.append(f"{path} is still the placeholder {shown}")
    cdn = raw.get(f"{PROJECT}:cdn")
    if isinstance(cdn, Mapping) and cdn.get("zoneId") == PLACEHOLDER_ZONE_ID:
        found.append(f"{PROJECT}:cdn.zoneId is still the placeholder {PLACEHOLDER_ZONE_ID}")
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
