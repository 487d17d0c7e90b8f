"""Every IAM document of every stack (dev, prod, scale, and dev with the cache on), linted by parliament.

parliament (Duo Labs, PyPI) checks each document against AWS's list of actions, resource ARN
formats and condition keys: unknown actions, resources that cannot match an action, malformed
statements, and (with its community auditors) risky grants. The stacks run offline under mocks,
so the documents are the ones `pulumi up` would send, with mock ARNs in place of real ones.

Accepted findings, each one checked to still occur (so a fixed one is removed from the list):
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import parliament  # a plain import: a missing linter fails the suite, never skips it
import pytest

from leanstack.mocks import StackRun
from tests.conftest import CACHE_NO_CDN, run_with


@dataclass(frozen=True)
class Accepted:
    resource: str  # the recorded resource's name
    key: str  # the input holding the document
    issue: str
    detail: str  # a substring of the finding's detail
    why: str


ACCEPTED = (
    Accepted(
        "host-role",
        "assumeRolePolicy",
        "MALFORMED",
        "neither Resource nor NotResource",
        "a trust policy names no Resource by design (the role itself is the resource); parliament lints every "
        "document as an identity policy",
    ),
    Accepted(
        "app-restarter",
        "assumeRolePolicy",
        "MALFORMED",
        "neither Resource nor NotResource",
        "the same, for the EventBridge role's trust policy",
    ),
    Accepted(
        "storage-app-role",
        "assumeRolePolicy",
        "MALFORMED",
        "neither Resource nor NotResource",
        "the same, for the app's role's trust policy (the host's role only)",
    ),
    Accepted(
        "storage-replication-role",
        "assumeRolePolicy",
        "MALFORMED",
        "neither Resource nor NotResource",
        "the same, for the S3 replication role's trust policy",
    ),
    Accepted(
        "app-restarter",
        "policy",
        "RESOURCE_MISMATCH",
        "ssm:SendCommand",
        "SendCommand needs two statements: one on the document AWS-RunShellScript (an AWS-owned document, whose "
        "ARN has an empty account field that parliament's ARN matcher does not accept), one on the stack's "
        "instances by tag (parliament marks the document as required in every statement, where AWS takes "
        "either); one statement cannot hold both, since the tag condition would then apply to the document",
    ),
    Accepted(
        "host-permissions",
        "policy",
        "RESOURCE_MISMATCH",
        "s3:GetObjectAttributes",
        "parliament marks both accesspoint and object as required for GetObjectAttributes; AWS takes either, "
        "and the backup objects are named by object ARN",
    ),
    Accepted(
        "host-permissions",
        "policy",
        "CREDENTIALS_EXPOSURE",
        "",
        "ecr:GetAuthorizationToken returns a registry credential, as the community auditor warns; the host needs "
        "it to pull the app's image, and the token carries only the role's own rights (pull from this stack's "
        "repository)",
    ),
    Accepted(
        "backups-policy",
        "policy",
        "RESOURCE_MISMATCH",
        "s3:GetObjectAttributes",
        "the same, in the backup bucket's policy that names the host role as writer",
    ),
)


def documents(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every IAM policy document (a JSON string with a Statement) among a resource's inputs."""
    if isinstance(value, str) and value.lstrip().startswith("{") and '"Statement"' in value:
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from documents(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from documents(item, f"{path}[{i}]")


@pytest.fixture(scope="module")
def runs(dev: StackRun, prod: StackRun, scale: StackRun) -> dict[str, StackRun]:
    return {"dev": dev, "prod": prod, "scale": scale, "cache": run_with(CACHE_NO_CDN)}


def test_every_iam_document_passes_parliament_but_the_accepted_findings(runs: dict[str, StackRun]) -> None:
    unexplained: list[str] = []
    used: set[Accepted] = set()
    linted = 0
    for stack, run in runs.items():
        for resource in run.resources:
            for key, text in documents(resource.inputs):
                json.loads(text)  # the linter must see a real document, not a mock placeholder
                linted += 1
                result = parliament.analyze_policy_string(text, include_community_auditors=True)
                for finding in result.findings:
                    detail = json.dumps(finding.detail) if not isinstance(finding.detail, str) else finding.detail
                    match = [
                        a
                        for a in ACCEPTED
                        if (a.resource, a.key, a.issue) == (resource.name, key, finding.issue) and a.detail in detail
                    ]
                    if match:
                        used.update(match)
                    else:
                        unexplained.append(f"{stack} {resource.type} {resource.name} {key}: {finding.issue} {detail}")
    assert linted >= 6 * len(runs), f"only {linted} documents found"
    assert unexplained == []
    assert used == set(ACCEPTED), f"accepted findings that no longer occur: {set(ACCEPTED) - used}"


def test_parliament_finds_what_it_should() -> None:
    """Not vacuous: a wildcard grant and an action that does not exist are reported."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameterz", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"},
        ],
    }
    issues = {f.issue for f in parliament.analyze_policy_string(json.dumps(bad)).findings}
    assert {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"} <= issues
