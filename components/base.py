"""What every leanstack component shares: its type token, child naming and tags."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pulumi.runtime import settings

from leanstack.config.naming import PROJECT  # config/naming.py: the one place the name and the scheme live

# A per-child hook (SST's `transform`): it gets the keyword arguments the component is about to create
# one child with (`opts` included) and may change them in place or return new ones.
Transform = Callable[[dict[str, Any]], dict[str, Any] | None]
Transforms = Mapping[str, Transform]

# The physical names each running program has claimed, per kind (a program's root resource is
# its key: the mocks run many programs in one process, and names are unique per program).
_claimed: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], str]] = weakref.WeakKeyDictionary()


def _expected_classes(hint: Any) -> tuple[type, ...]:
    """The classes an argument annotated `hint` must be: an Args dataclass or a component (or None)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else (hint,)
    wanted = tuple(
        o for o in options if isinstance(o, type) and (dataclasses.is_dataclass(o) or issubclass(o, LeanComponent))
    )
    return (*wanted, type(None)) if wanted and type(None) in options else wanted


def _checked_init(cls: type, init: Callable[..., None]) -> Callable[..., None]:
    """`init` that first refuses, in one line, an argument of the wrong kind (a dict for an Args)."""
    signature = inspect.signature(init)
    expected: dict[str, tuple[type, ...]] | None = None

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal expected
        if expected is None:  # resolved once, at the first construction (the annotations are strings)
            expected = {}
            for parameter, annotation in init.__annotations__.items():
                try:
                    hint = eval(annotation, init.__globals__) if isinstance(annotation, str) else annotation
                except Exception:  # pulumi.Input[...] refers to names pulumi never exports; not an Args or component
                    continue
                if found := _expected_classes(hint):
                    expected[parameter] = found
        bound = signature.bind(self, *args, **kwargs)
        for parameter, value in bound.arguments.items():
            wanted = expected.get(parameter)
            if wanted and not isinstance(value, wanted):
                names = " or ".join(w.__name__ for w in wanted if w is not type(None))
                raise TypeError(
                    f"{cls.__name__}({bound.arguments.get('name', '')!r}): {parameter} must be of type {names}, "
                    f"got a {type(value).__name__} (for instance {names.split(' or ')[0]}(...))"
                )
        init(self, *args, **kwargs)

    return checked


class LeanComponent(pulumi.ComponentResource):
    """A ComponentResource typed `leanstack:index:<ClassName>` whose children it parents.

    Child resources are named `<component name>-<suffix>` (`self.child_name`) so that two
    instances of a component never collide, and every taggable AWS child carries a
    `Component` tag next to the provider's default `Project`/`Stack`/`ManagedBy` tags.
    Every constructor refuses an argument of the wrong kind in one line (a dict where an
    Args dataclass belongs), and `claim_physical_name` refuses a second component of a kind
    that would take the same AWS name in one program.

    `transform` maps a child's key (one of the class's `TRANSFORMABLE`) to a function that may
    change that child's arguments before it is created, for what no Args field covers (a tag, an
    instance class, a resource option); an unknown key is refused in one line.
    """

    # The children a `transform` may change, by key (each is also the attribute the child is reachable at).
    TRANSFORMABLE: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(
        self, name: str, opts: pulumi.ResourceOptions | None = None, transform: Transforms | None = None
    ) -> None:
        unknown = sorted(set(transform or {}) - set(self.TRANSFORMABLE))
        if unknown:  # refused before anything is registered
            kind = type(self).__name__
            known = ", ".join(self.TRANSFORMABLE) or "none"
            raise ValueError(f"{kind}({name!r}): transform names no child {unknown[0]!r} (its children: {known})")
        super().__init__(f"{PROJECT}:index:{type(self).__name__}", name, None, opts)
        self.component_name = name
        self._transforms: dict[str, Transform] = dict(transform or {})

    def transformed(self, child: str, args: dict[str, Any]) -> dict[str, Any]:
        """`args` of the child `child` as the user's transform leaves them (as given without one)."""
        change = self._transforms.get(child)
        if change is None:
            return args
        changed = change(args)
        return args if changed is None else changed

    def claim_physical_name(self, what: str, physical: str, setting: str) -> str:
        """`physical` for this component, or ValueError in one line when another component of the program has it."""
        root = settings.get_root_resource()
        if root is None:  # not inside a running program: there is nothing to collide with
            return physical
        holder = _claimed.setdefault(root, {}).setdefault((what, physical), self.component_name)
        if holder != self.component_name:
            kind = type(self).__name__
            raise ValueError(
                f"{kind}({self.component_name!r}): the {what} {physical!r} is already {kind}({holder!r})'s in this "
                f"program; give one of them its own {setting}"
            )
        return physical

    def child_name(self, suffix: str) -> str:
        return f"{self.component_name}-{suffix}"

    def child_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    @property
    def tags(self) -> dict[str, str]:
        return {"Component": type(self).__name__}

    def named_tags(self, name: str) -> dict[str, str]:
        return {**self.tags, "Name": name}

    def _admit(
        self,
        security_group_id: pulumi.Input[str],
        client: str,
        client_sg: pulumi.Input[str],
        port: int,
        what: str,
    ) -> None:
        """One ingress rule: `port` from one client security group, nothing else."""
        aws.vpc.SecurityGroupIngressRule(
            self.child_name(f"from-{client}"),
            security_group_id=security_group_id,
            referenced_security_group_id=client_sg,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=f"{what} from the {client}",
            tags=self.tags,
            opts=self.child_opts(),
        )


def policy_json(*statements: dict[str, Any]) -> str:
    """An IAM policy document as stable JSON (sorted keys, so diffs show real changes only)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def policy_output(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """Like `policy_json`, for statements that contain Outputs (ARNs not known yet)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})
