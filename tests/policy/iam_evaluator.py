"""A small, strict evaluator of IAM identity policies, for offline tests of what a role may do.

Implements the parts of AWS's policy evaluation logic leanstack's documents use: an explicit
Deny wins, then any Allow, else the request is implicitly denied; Action and NotAction (service
prefix and action name case-insensitive, `*` and `?` wildcards), Resource and NotResource (ARNs,
case-sensitive, `*` and `?` match across `:` and `/`), and the condition operators StringEquals,
StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike, Bool and Null (keys case-insensitive;
several values of one key are ORed, several keys and operators are ANDed; a key missing from the
request fails every operator but the Not ones, as in AWS). Any other operator raises: a test must
never pass because the evaluator skipped a condition it does not understand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    request = {k.lower(): v for k, v in context.items()}
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            values = [str(v) for v in _as_list(wanted)]
            actual = request.get(key.lower())
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual is not None and actual in values
            elif operator == "StringNotEquals":
                ok = actual is None or actual not in values
            elif operator in ("StringLike", "ArnLike"):
                ok = actual is not None and any(_glob(v, actual, ignore_case=False) for v in values)
            elif operator == "StringNotLike":
                ok = actual is None or not any(_glob(v, actual, ignore_case=False) for v in values)
            elif operator == "Null":
                # "true": the key is absent from the request; "false": it is present.
                ok = any((actual is None) == (v.lower() == "true") for v in values)
            elif operator == "Bool":
                ok = actual is not None and actual.lower() in [v.lower() for v in values]
            else:
                raise NotImplementedError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    if "Action" in statement:
        if not any(_glob(p, action, ignore_case=True) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(p, action, ignore_case=True) for p in _as_list(statement["NotAction"])):
            return False
    else:
        raise ValueError(f"statement without Action or NotAction: {statement}")
    if "Resource" in statement:
        if not any(_glob(p, resource, ignore_case=False) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_glob(p, resource, ignore_case=False) for p in _as_list(statement["NotResource"])):
            return False
    else:
        raise ValueError(f"statement without Resource or NotResource: {statement}")
    return _condition_holds(statement.get("Condition") or {}, context)


def statements_of(documents: Iterable[str | Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for document in documents:
        parsed = json.loads(document) if isinstance(document, str) else document
        found += _as_list(parsed["Statement"])
    return found


def decide(
    documents: Sequence[str | Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str] | None = None
) -> str:
    """ "Allow", "ExplicitDeny" or "ImplicitDeny" for one request against identity policies."""
    applying = [s for s in statements_of(documents) if _statement_applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in applying):
        return "ExplicitDeny"
    if any(s["Effect"] == "Allow" for s in applying):
        return "Allow"
    return "ImplicitDeny"


def allowed(
    documents: Sequence[str | Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str] | None = None
) -> bool:
    return decide(documents, action, resource, context) == "Allow"


__all__ = ["allowed", "decide", "statements_of"]
