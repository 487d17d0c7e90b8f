"""The JSON Schema of stacks/Pulumi.<stack>.yaml, generated from the Args dataclasses."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal

from leanstack.config.fields import AWS_REGIONS, fields_by_key
from leanstack.config.naming import PROJECT
from leanstack.config.sections.stack import REQUIRED_SECTIONS, SCALARS, SECTIONS


def _schema_for(hint: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if meta.get("doc"):
        out["description"] = meta["doc"]
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = _schema_for(typing.get_args(hint)[0], {k: v for k, v in meta.items() if k != "doc"})
        out.update(type="array", items=item, uniqueItems=meta.get("unique", True))
        if meta.get("command"):
            # A command: a list (exec form) or a string (shell form, /bin/sh -c), as Docker's CMD.
            array = {key: out.pop(key) for key in ("type", "items", "uniqueItems")}
            out["oneOf"] = [array, {"type": "string", "minLength": 1}]
    elif origin is dict:
        item_hint = typing.get_args(hint)[1]
        value_schema = (
            _section_schema(typing.cast(type[Any], item_hint))
            if dataclasses.is_dataclass(item_hint)
            else _schema_for(str, {k: v for k, v in meta.items() if k != "doc"})
        )
        out.update(
            type="object",
            propertyNames={"pattern": f"^(?:{meta['key_pattern']})$"},
            additionalProperties=value_schema,
        )
    elif origin is Literal:
        out["enum"] = list(typing.get_args(hint))
    elif hint is bool:
        out["type"] = "boolean"
    elif hint is int:
        out["type"] = "integer"
        if meta.get("min") is not None:
            out["minimum"] = meta["min"]
        if meta.get("max") is not None:
            out["maximum"] = meta["max"]
    elif hint is str:
        out["type"] = "string"
        if meta.get("choices"):
            out["enum"] = list(meta["choices"])
        elif meta.get("pattern"):
            out["pattern"] = f"^(?:{meta['pattern']})$"
    elif dataclasses.is_dataclass(hint):
        out.update(_section_schema(typing.cast(type[Any], hint)))
    return out


def _json_default(value: Any) -> Any:
    """A field's default as JSON: tuples as lists, a nested section as its camelCase object."""
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _json_default(getattr(value, f.name)) for name, f in fields_by_key(type(value)).items()}
    return value


def _section_schema(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, f in fields_by_key(cls).items():
        prop = _schema_for(hints[f.name], f.metadata)
        if f.default is not dataclasses.MISSING:
            default = f.default
            prop["default"] = _json_default(default)
        elif f.default_factory is not dataclasses.MISSING:
            prop["default"] = f.default_factory()
        else:
            required.append(name)
        props[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        schema["required"] = required
    return schema


def json_schema() -> dict[str, Any]:
    """JSON Schema for stacks/Pulumi.<stack>.yaml, generated from the dataclasses above."""
    config_props: dict[str, Any] = {
        "aws:region": {
            "type": "string",
            "description": "The stack's AWS region.",
            "enum": list(AWS_REGIONS),
        }
    }
    for name, spec in SCALARS.items():
        hint: Any = tuple[str, ...] if name == "hostnames" else str
        config_props[f"{PROJECT}:{name}"] = _schema_for(hint, spec)
    for name, cls in SECTIONS.items():
        config_props[f"{PROJECT}:{name}"] = _section_schema(cls)
    required = ["aws:region"] + [f"{PROJECT}:{n}" for n, s in SCALARS.items() if s["required"]]
    required += [f"{PROJECT}:{n}" for n in REQUIRED_SECTIONS]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "leanstack stack config (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": config_props,
                "required": required,
                # Other namespaces (aws:, cloudflare:) belong to the providers; unknown leanstack: keys are errors.
                "propertyNames": {"anyOf": [{"enum": sorted(config_props)}, {"not": {"pattern": f"^{PROJECT}:"}}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
    }
