"""Issue 15, finding 2: no image in a stack's release history is ever expired by the ECR lifecycle.

`simulate` applies a lifecycle policy document the way AWS documents ECR's evaluation ("lifecycle
policy evaluation rules"): rules in rulePriority order; a rule selects by tagStatus and by
tagPrefixList / tagPatternList (every listed prefix or pattern must match one of the image's
tags; `*` wildcards); imageCountMoreThan keeps the newest countNumber selected images by push
time and marks the older ones, sinceImagePushed marks those older than countNumber days; an
image matching the tag filter of a higher-priority rule cannot be expired by a lower-priority
one, though it still counts in that rule's selection; an image is expired by at most one rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import boto3
import moto
import pytest

from leanstack.components.app import lifecycle_policy
from leanstack.deploy import app_repository_name, protect_release, release_tag
from leanstack.host.agent.blue_green import serving_tags


@dataclass(frozen=True)
class Image:
    digest: str
    tags: frozenset[str]
    pushed_day: int  # days since some origin; larger is newer


def _pattern_match(pattern: str, tag: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), tag) is not None


def _selects(selection: dict[str, Any], image: Image) -> bool:
    status = selection["tagStatus"]
    if status == "untagged":
        return not image.tags
    if status == "any":
        return True
    assert status == "tagged"
    prefixes: list[str] = selection.get("tagPrefixList") or []
    patterns: list[str] = selection.get("tagPatternList") or []
    assert bool(prefixes) != bool(patterns), "a tagged rule needs exactly one of tagPrefixList or tagPatternList"
    if prefixes:
        return all(any(tag.startswith(p) for tag in image.tags) for p in prefixes)
    assert all(p.count("*") <= 4 for p in patterns), "ECR allows up to four wildcards per pattern"
    return all(any(_pattern_match(p, tag) for tag in image.tags) for p in patterns)


def simulate(policy: dict[str, Any], images: list[Image], today: int) -> set[str]:
    """The digests ECR's lifecycle would expire."""
    rules = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    assert len({r["rulePriority"] for r in rules}) == len(rules), "rule priorities must be unique"
    assert [r for r in rules if r["selection"]["tagStatus"] == "any"] in ([], [rules[-1]]), (
        "a tagStatus any rule must have the highest rulePriority"
    )
    assert sum(r["selection"]["tagStatus"] == "untagged" for r in rules) <= 1
    expired: set[str] = set()
    claimed: set[str] = set()  # matched the tag filter of a higher-priority rule
    for rule in rules:
        s = rule["selection"]
        selected = sorted((i for i in images if _selects(s, i)), key=lambda i: -i.pushed_day)
        if s["countType"] == "imageCountMoreThan":
            marked = selected[s["countNumber"] :]
        else:
            assert s["countType"] == "sinceImagePushed" and s["countUnit"] == "days"
            marked = [i for i in selected if today - i.pushed_day > s["countNumber"]]
        if rule["action"]["type"] == "expire":
            expired |= {i.digest for i in marked if i.digest not in claimed}
        claimed |= {i.digest for i in selected}
    return expired


def _scenario(releases: list[str], builds: int) -> tuple[list[Image], list[dict[str, Any]]]:
    """`builds` main commits pushed one a day; `releases` deployed in this order, each marked by deploy."""
    released = set(releases)
    images = [
        Image(
            f"sha256:{n:04d}",
            frozenset({f"c{n:04d}"} | ({release_tag(f"c{n:04d}")} if f"c{n:04d}" in released else set())),
            n,
        )
        for n in range(builds)
    ]
    images.append(Image("sha256:untagged", frozenset(), 0))
    history = [{"id": str(i), "tag": tag, "result": "succeeded"} for i, tag in enumerate(releases)]
    return images, history


def test_released_images_survive_any_number_of_builds() -> None:
    # Prod took c0003 and c0010 long ago, then 200 commits were built (and dev-deployed elsewhere).
    images, history = _scenario(["c0003", "c0010"], builds=200)
    expired = simulate(lifecycle_policy(30), images, today=200)
    by_digest = {i.digest: i for i in images}
    gone = {tag for d in expired for tag in by_digest[d].tags}
    for tag in serving_tags(history):  # the serving tag and the rollback target
        assert tag not in gone
    # Unreleased builds beyond the newest 30 and the old untagged image do expire (the repository stays small).
    assert "c0000" in gone and "sha256:untagged" in expired
    assert not {f"c{n:04d}" for n in range(170, 200)} & gone


def test_the_previous_keep_the_newest_30_policy_expired_the_serving_image() -> None:
    """What finding 2 reported: the rule set before the fix loses prod's image after 30 merges."""
    old = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                "action": {"type": "expire"},
            }
        ]
    }
    images, history = _scenario(["c0003", "c0010"], builds=200)
    expired = simulate(old, images, today=200)
    assert "sha256:0010" in expired and serving_tags(history)[-1] == "c0010"
    assert not {"sha256:0010", "sha256:0003"} & simulate(lifecycle_policy(30), images, today=200)


def test_a_release_tag_is_not_the_only_thing_keeping_recent_builds() -> None:
    policy = lifecycle_policy(20)
    assert [r["selection"]["tagStatus"] for r in policy["rules"]] == ["tagged", "untagged", "any"]
    assert policy["rules"][0]["selection"]["tagPatternList"] == ["release-*"]


@pytest.fixture()
def ecr() -> Any:
    with moto.mock_aws():
        client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        client.create_repository(repositoryName=app_repository_name("prod"), imageTagMutability="IMMUTABLE")
        yield client


def _push(ecr: Any, tag: str) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "a" * 64},
        "layers": [],
        "annotations": {"tag": tag},
    }
    ecr.put_image(repositoryName=app_repository_name("prod"), imageManifest=json.dumps(manifest), imageTag=tag)


def test_deploy_marks_the_image_released_once_and_again_on_rollback(ecr: Any) -> None:
    _push(ecr, "c0001")
    assert protect_release(ecr, "prod", "c0001") is True
    assert protect_release(ecr, "prod", "c0001") is True  # a rollback to it: already marked, accepted
    images = ecr.describe_images(repositoryName=app_repository_name("prod"))["imageDetails"]
    assert len(images) == 1 and set(images[0]["imageTags"]) == {"c0001", "release-c0001"}


def test_an_image_not_in_the_stacks_repository_is_not_marked(ecr: Any) -> None:
    assert protect_release(ecr, "prod", "elsewhere") is False
    assert protect_release(ecr, "nostack", "c0001") is False
