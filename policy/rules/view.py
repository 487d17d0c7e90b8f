"""The stack as the rules see it (`Subject`s in a `StackView`), a `Rule`, and the readers every rule uses."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leanstack.policy.rules.resource_types import RDS


class _Unknown:
    """A value a preview cannot know yet."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# A stack named so is production whatever its database says (as leanstack.config.is_production).
PRODUCTION_NAME_RE = r"prod|production|prod-[a-z0-9-]+"


# --------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class Subject:
    """One resource as the rules see it."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    region: str = ""  # the provider's region ("" when unknown or not an AWS resource)
    # property name -> URNs of the resources whose outputs flow into it
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)

    @property
    def component(self) -> str:
        """The leanstack component type in the URN (e.g. "BackupBucket"), or ""."""
        kinds = self.urn.split("::")[2].split("$") if self.urn.count("::") >= 3 else []
        found = [k.rsplit(":", 1)[1] for k in kinds if k.startswith("leanstack:")]
        return found[-1] if found else ""


@dataclass(frozen=True)
class StackView:
    """The whole stack: its name, its region and every resource."""

    stack: str
    region: str
    resources: tuple[Subject, ...]

    def of_type(self, *types: str) -> list[Subject]:
        return [r for r in self.resources if r.type in types]

    def by_urn(self, urn: str) -> Subject | None:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        return None

    def linked(self, subject: Subject, prop: str) -> list[Subject]:
        """The resources `subject.<prop>` refers to."""
        return [r for urn in subject.links.get(prop, ()) if (r := self.by_urn(urn)) is not None]

    def referring(self, target: Subject, types: Sequence[str], prop: str) -> list[Subject]:
        """Resources of `types` whose `prop` refers to `target`."""
        return [r for r in self.of_type(*types) if target.urn in r.links.get(prop, ())]

    @property
    def production(self) -> bool:
        return bool(re.fullmatch(PRODUCTION_NAME_RE, self.stack)) or any(r.protect for r in self.of_type(RDS))


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    resource: str  # the resource's name
    message: str


# Outputs by which one resource names another (an id, an ARN, a name, a bucket name).
HANDLE_PROPS = ("id", "arn", "name", "bucket")


def link_by_value(
    subjects: Sequence[Subject], handles: Mapping[str, Iterable[str]] | None = None
) -> tuple[Subject, ...]:
    """Add the links that values show: a property refers to a resource when its value (or an item
    of it) is that resource's id, ARN, name or bucket name. `handles` maps a URN to extra values
    that name it (an id the props do not carry). Links already present are kept."""
    index: dict[str, set[str]] = {}
    for subject in subjects:
        names = {v for k in HANDLE_PROPS if isinstance(v := subject.props.get(k), str) and v}
        names |= set((handles or {}).get(subject.urn, ()))
        for name in names:
            index.setdefault(name, set()).add(subject.urn)
    linked = []
    for subject in subjects:
        links = {k: set(v) for k, v in subject.links.items()}
        for prop, value in subject.props.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str):
                    links.setdefault(prop, set()).update(u for u in index.get(item, ()) if u != subject.urn)
        clean = {k: tuple(sorted(v)) for k, v in links.items() if v}
        linked.append(Subject(subject.urn, subject.type, subject.name, subject.props, subject.protect, subject.region,
                              clean))  # fmt: skip
    return tuple(linked)


ResourceCheck = Callable[[Subject, StackView], Iterable[str]]
StackCheck = Callable[[StackView], Iterable[tuple[Subject, str]]]


@dataclass(frozen=True)
class Rule:
    """A guardrail. `types` + `check_resource`: judged one resource at a time (CrossGuard's
    ResourceValidationPolicy). `check_stack`: needs the whole stack (StackValidationPolicy)."""

    name: str
    description: str
    types: tuple[str, ...] = ()
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None

    def evaluate(self, view: StackView) -> list[Violation]:
        found: list[Violation] = []
        if self.check_resource is not None:
            for subject in view.of_type(*self.types):
                found += [
                    Violation(self.name, subject.urn, subject.name, m) for m in self.check_resource(subject, view)
                ]
        if self.check_stack is not None:
            found += [Violation(self.name, s.urn, s.name, m) for s, m in self.check_stack(view)]
        return found


# --------------------------------------------------------------------------- small readers


def known(value: Any) -> bool:
    return value is not UNKNOWN


def as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def document(value: Any) -> dict[str, Any] | None:
    """An IAM/bucket policy document from a JSON string or dict; None when unknown or unreadable."""
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def statements(value: Any) -> list[dict[str, Any]]:
    doc = document(value)
    if doc is None:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def matches(patterns: Iterable[Any], candidates: Iterable[str]) -> bool:
    """Whether any IAM pattern (with * and ?) matches any candidate, case-insensitively."""
    return any(isinstance(p, str) and fnmatch.fnmatchcase(c.lower(), p.lower()) for p in patterns for c in candidates)
