"""The release history: every deploy and rollback of a stack, newest last, as a compact JSON list in
one Standard-tier SSM parameter (/leanstack/<STACK>/releases).

Read and written whole, so the history and the previous good tag come from one consistent read.
Standard parameters are free and hold 4 KB: the oldest entries are dropped first, never the two
newest that succeeded. A new host boots the release this history says is serving.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from leanstack.deploy.common import DeployError, SsmClient, describe_error, error_code
from leanstack.host.agent import contract
from leanstack.host.agent.blue_green import serving_tags

# SSM Parameter Store's Standard tier holds values of up to 4 KB.
RELEASES_LIMIT_BYTES = 4096


@dataclass(frozen=True)
class Release:
    """One deploy or rollback as recorded. `result`: deploying, succeeded, failed, refused."""

    id: str
    tag: str
    action: str
    result: str
    started: str
    finished: str = ""
    by: str = ""
    command: str = ""
    # How many hosts it went to, when more than one (a count, not the ids: the 4 KB limit).
    hosts: str = ""
    detail: str = ""

    @staticmethod
    def from_json(raw: Any) -> Release | None:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in ("id", "tag", "result")):
            return None
        known = {name: str(raw[name]) for name in Release.__dataclass_fields__ if isinstance(raw.get(name), str)}
        known.setdefault("action", "deploy")
        known.setdefault("started", "")
        return Release(**known)

    def to_json(self) -> dict[str, str]:
        # Empty fields are left out: the whole history must fit in 4 KB.
        return {key: value for key, value in asdict(self).items() if value}


def releases_parameter(stack: str) -> str:
    return contract.releases_parameter(stack)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fit(history: list[Release]) -> list[Release]:
    """The newest entries that fit in one Standard parameter; the two newest successes stay."""
    kept = list(history)
    while len(_encode(kept).encode()) > RELEASES_LIMIT_BYTES:
        protected = {release.id for release in [r for r in kept if r.result == "succeeded"][-2:]}
        droppable = [index for index, release in enumerate(kept) if release.id not in protected]
        if not droppable:
            break
        del kept[droppable[0]]
    return kept


def _encode(history: Sequence[Release]) -> str:
    return json.dumps([release.to_json() for release in history], separators=(",", ":"))


@dataclass(frozen=True)
class ReleaseHistory:
    """One stack's release history; `ssm` is a boto3 SSM client (a moto one in tests)."""

    stack: str
    ssm: SsmClient

    @property
    def parameter(self) -> str:
        return releases_parameter(self.stack)

    def read(self) -> list[Release]:
        """The recorded releases, oldest first; none when the parameter does not exist yet."""
        try:
            value = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except Exception as error:
            if error_code(error) == "ParameterNotFound":
                return []
            raise DeployError(f"cannot read {self.parameter}: {describe_error(error)}") from None
        try:
            raw = json.loads(value)
        except ValueError:
            raise DeployError(f"{self.parameter} is not JSON; fix or delete it") from None
        if not isinstance(raw, list):
            raise DeployError(f"{self.parameter} is not a JSON list; fix or delete it")
        return [release for release in map(Release.from_json, raw) if release is not None]

    def record(self, release: Release) -> None:
        """Add `release`, or replace the entry of the same id."""
        # Read again right before writing: a concurrent deploy's entry is kept, not overwritten.
        history = self.read()
        position = next((i for i, entry in enumerate(history) if entry.id == release.id), None)
        if position is None:
            history.append(release)
        else:
            history[position] = release
        try:
            self.ssm.put_parameter(
                Name=self.parameter,
                Value=_encode(_fit(history)),
                Type="String",
                Tier="Standard",
                Overwrite=True,
                Description="leanstack release history (python -m leanstack releases)",
            )
        except Exception as error:
            raise DeployError(f"cannot record the release in {self.parameter}: {describe_error(error)}") from None

    def serving(self) -> list[str]:
        """The tags that served in turn; the last serves now (see leanstack-app's serving_tags)."""
        return serving_tags([release.to_json() for release in self.read()])


def format_releases(history: Sequence[Release]) -> str:
    """The history as `releases` prints it: one line per release, then the tag serving now."""
    if not history:
        return "no releases recorded\n"
    serving = serving_tags([release.to_json() for release in history])
    lines = []
    for release in history:
        detail = f"  {release.detail}" if release.detail else ""
        by = f"  by {release.by}" if release.by else ""
        # Recorded only when a release went to more than one host.
        hosts = f"  on {release.hosts} hosts" if release.hosts else ""
        lines.append(
            f"{release.started:20}  {release.action:8}  {release.tag:24}  {release.result:9}{hosts}{by}{detail}"
        )
    lines.append(f"serving now (as recorded): {serving[-1] if serving else 'nothing'}")
    return "\n".join(lines) + "\n"
