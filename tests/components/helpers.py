"""Small readers for recorded resources, shared by the component tests."""

from __future__ import annotations

import base64
import gzip
import importlib
import inspect
import json
from typing import Any

import yaml

from leanstack.mocks import SECRET, Resource, StackRun, redact


def user_data_of(run: StackRun) -> dict[str, Any]:
    """The host's cloud-config, decoded from the instance's base64+gzip user data."""
    instance = run.one("aws:ec2/instance:Instance")
    raw = gzip.decompress(base64.b64decode(instance.inputs["userDataBase64"])).decode()
    assert raw.startswith("#cloud-config\n")
    document = yaml.safe_load(raw)
    assert isinstance(document, dict)
    return document


def written_file(run: StackRun, path: str) -> str:
    for entry in user_data_of(run).get("write_files", []):
        if entry["path"] == path:
            if entry.get("encoding") in ("b64", "base64"):
                return base64.b64decode(entry["content"]).decode()
            if entry.get("encoding") in ("gz+b64", "gzip+base64"):
                return gzip.decompress(base64.b64decode(entry["content"])).decode()
            return str(entry["content"])
    raise KeyError(path)


def policy(resource: Resource, key: str = "policy") -> dict[str, Any]:
    document = json.loads(resource.inputs[key])
    assert isinstance(document, dict)
    return document


def statements(resource: Resource, key: str = "policy") -> list[dict[str, Any]]:
    found = policy(resource, key)["Statement"]
    assert isinstance(found, list)
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def is_secret_input(resource: Resource, key: str) -> bool:
    return bool(redact(resource.inputs)[key] == SECRET)


def children(run: StackRun, component_type: str) -> list[Resource]:
    """Custom resources whose nearest leanstack component is `component_type` (e.g. "Database")."""
    return [r for r in run.resources if r.custom and r.component == component_type]


def is_taggable(type_token: str) -> bool:
    """Whether the provider's resource class for `type_token` accepts `tags`."""
    package, module_path, class_name = type_token.split(":")
    if package != "aws" or module_path.startswith("index"):
        return False
    module = importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}")
    cls = getattr(module, class_name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def gzipped_user_data(run: StackRun, host: str) -> bytes:
    """The gzipped user data of the single host, or of a scale-mode launch template ("scale-web")."""
    if host.startswith("scale-"):
        encoded = run.named(f"host-group-{host.removeprefix('scale-')}-template").inputs["userData"]
    else:
        encoded = run.one("aws:ec2/instance:Instance").inputs["userDataBase64"]
    return base64.b64decode(encoded)


def cloud_config(run: StackRun, host: str) -> str:
    return gzip.decompress(gzipped_user_data(run, host)).decode()
