"""The rollout: a release sent to a stack's hosts one at a time, recorded in the release history.

Several hosts switch one at a time while the load balancer keeps the others serving; the release
command runs once, on the jobs host, before any host switches. The first host that fails stops
the rollout, and the hosts before it are put back on the previous good tag, so the fleet is not
left split between two versions. The release is recorded "succeeded" only after every host
switched, and then the hosts are looked up again: one launched meanwhile gets the release too.
"""

from __future__ import annotations

import os
import re
import shlex
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from leanstack.deploy.common import EXIT_FAILED, DeployError, SsmClient, check_tag, last_line
from leanstack.deploy.history import Release, ReleaseHistory, releases_parameter, utc_now
from leanstack.deploy.hosts import hosts_to_deploy
from leanstack.deploy.registry import app_repository_name, protect_release, prune_releases
from leanstack.deploy.run_command import DEFAULT_TIMEOUT_SECONDS, HOST_TOOL, RunCommand
from leanstack.host.agent.app_config import EXIT_BUSY

# leanstack-app stops a release command after 30 minutes; the pull comes first.
RELEASE_COMMAND_TIMEOUT_SECONDS = 2100


def _deployed_by(env: Mapping[str, str]) -> str:
    who = env.get("LEANSTACK_DEPLOYED_BY") or env.get("GITHUB_ACTOR") or env.get("USER") or ""
    return re.sub(r"[^A-Za-z0-9@._ -]", "", who)[:40]


@dataclass
class Deployer:
    """Deploys to one stack's hosts; `ssm` is a boto3 SSM client (a moto one in tests)."""

    stack: str
    ssm: SsmClient
    # The host, or the hosts in the order they switch; none: `find_hosts` looks them up.
    instance_id: str | Sequence[str] = ()
    poll_seconds: float = 3.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Beyond the command's own timeout: SSM's delivery to the host and its reporting back.
    grace_seconds: float = 60.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda message: print(message, flush=True)
    # The stack's hosts as they are now (see `find_hosts`): before a deploy, and again after it.
    find_hosts: Callable[[], list[str]] | None = None
    # The ECR client (a moto one in tests) for the stack's repository: a deploy marks its image
    # released (see `protect_release`) and then unmarks those out of the history (`prune_releases`).
    # None: nothing is marked.
    registry: Any = None
    # Set per deploy: several hosts deploy with --skip-release-command (it ran once on the jobs host).
    skip_release_command: bool = False

    @property
    def parameter(self) -> str:
        return releases_parameter(self.stack)

    @property
    def history(self) -> ReleaseHistory:
        return ReleaseHistory(self.stack, self.ssm)

    @property
    def commands(self) -> RunCommand:
        return RunCommand(
            self.stack, self.ssm, self.poll_seconds, self.timeout_seconds, self.grace_seconds, self.sleep, self.say
        )

    def releases(self) -> list[Release]:
        return self.history.read()

    def _record(self, release: Release) -> None:
        self.history.record(release)

    def serving(self) -> list[str]:
        """The tags that served in turn; the last serves now (see leanstack-app's serving_tags)."""
        return self.history.serving()

    def hosts(self) -> tuple[list[str], bool]:
        """The hosts in the order they switch, and whether they were looked up."""
        return hosts_to_deploy(self.stack, self.instance_id, self.find_hosts)

    def send(
        self, instance_id: str, command: str, *, what: str, comment: str, doing: str, timeout: float | None = None
    ) -> str:
        """Send one shell command to one host through Run Command; its command id."""
        return self.commands.send(instance_id, command, what=what, comment=comment, doing=doing, timeout=timeout)

    def wait(self, command_id: str, instance_id: str, timeout: float | None = None) -> tuple[str, int, str, str]:
        """Poll until the command ends: (status, exit code, stdout, stderr)."""
        return self.commands.wait(command_id, instance_id, timeout)

    # ---------------------------------------------------------------- deploy

    def deploy(self, tag: str, *, action: str = "deploy") -> Release:
        check_tag(tag)
        hosts, looked_up = self.hosts()
        several = len(hosts) > 1
        self.skip_release_command = several
        # Read before anything changes: where the hosts that switch go back if a later one fails.
        served = self.serving() if several else []
        previous = served[-1] if served else None
        release = Release(
            id=uuid.uuid4().hex[:8],
            tag=tag,
            action=action,
            result="deploying",
            started=utc_now(),
            by=_deployed_by(self.env),
            hosts=str(len(hosts)) if several else "",
        )
        self._record(release)
        try:
            return self._deploy(release, hosts, looked_up, previous)
        finally:
            if self.registry is not None:
                self._unmark_old_releases()

    def _deploy(self, release: Release, hosts: list[str], looked_up: bool, previous: str | None) -> Release:
        tag, action, several = release.tag, release.action, len(hosts) > 1
        # Marked after the history names the tag: a concurrent deploy's unmarking keeps it (see prune_releases).
        if self.registry is not None:
            self._mark_released(release)
        if several:
            # Once, before the host-by-host rollout; each host then deploys with --skip-release-command.
            self._release_command(release, hosts[-1])
        # What happened to each host, for the one line per host printed at the end.
        outcomes = dict.fromkeys(hosts, "not touched")
        for index, host in enumerate(hosts):
            where = f" on {host} (host {index + 1} of {len(hosts)})" if several else ""
            switched = hosts[:index]
            try:
                command_id = self._send(host, tag)
            except DeployError as error:
                if not switched:
                    self._record(replace(release, result="failed", finished=utc_now(), detail=str(error)[:200]))
                    self._report(action, tag, outcomes | {host: f"not sent: {error}"})
                    raise
                outcomes[host] = f"not sent: {error}"
                self._abort(release, host, where, "not sent", str(error), False, switched, previous, outcomes)
            release = replace(release, command=command_id)
            self._record(release)
            try:
                status, code, output, errors = self.wait(command_id, host)
            except DeployError as error:
                outcomes[host] = f"unknown: {error}"
                if not switched:
                    # Still running or lost: the record stays "deploying", which no host boots.
                    self._report(action, tag, outcomes)
                    raise
                self._abort(release, host, where, "unknown", str(error), False, switched, previous, outcomes)
            if status == "Success":
                outcomes[host] = f"switched to {tag}"
                continue
            reason = last_line(errors) or last_line(output) or f"the SSM command ended {status}"
            refused = code == EXIT_BUSY
            verb = "refused" if refused else "failed"
            # The host tool's promise: a failed or refused deploy leaves the serving version serving.
            outcomes[host] = f"{verb}: {reason}"
            if switched:
                self._abort(release, host, where, status, reason, refused, switched, previous, outcomes)
            detail = f"{host}: {reason}" if several else reason
            self._record(replace(release, result=verb, finished=utc_now(), detail=detail[:200]))
            self._report(action, tag, outcomes)
            nothing = "; no host changed" if several else ""
            raise DeployError(
                f"{action} of {tag} to {self.stack} {verb}{where} ({status}): {reason}{nothing}",
                EXIT_BUSY if refused else EXIT_FAILED,
            )
        done = replace(release, result="succeeded", finished=utc_now())
        # Recorded before looking again: a host that boots from now on takes `tag` by itself.
        self._record(done)
        late_problem = self._catch_up(action, tag, hosts, outcomes) if looked_up else None
        self._report(action, tag, outcomes)
        if late_problem:
            raise DeployError(late_problem)
        return done

    def _mark_released(self, release: Release) -> None:
        """Mark the image released so that the lifecycle keeps it; a failure is recorded and stops the deploy."""
        tag = release.tag
        try:
            if not protect_release(self.registry, self.stack, tag):
                self.say(f"{tag} is not in {app_repository_name(self.stack)}: nothing marked (an image from elsewhere)")
        except DeployError as error:
            self._record(replace(release, result="failed", finished=utc_now(), detail=str(error)[:200]))
            raise

    def _abort(
        self,
        release: Release,
        host: str,
        where: str,
        status: str,
        reason: str,
        refused: bool,
        switched: list[str],
        previous: str | None,
        outcomes: dict[str, str],
    ) -> NoReturn:
        """Host `host` did not switch after `switched` did: put those back, record, raise."""
        tag, action = release.tag, release.action
        left_on_new: list[str] = []
        for done_host in reversed(switched):
            if previous is None:
                outcomes[done_host] = f"still on {tag}: no earlier release to put it back on"
                left_on_new.append(done_host)
                continue
            self.say(f"{self.stack}: putting {done_host} back on {previous}")
            problem = self._attempt(done_host, previous)
            if problem is None:
                outcomes[done_host] = f"switched to {tag}, put back on {previous}"
            else:
                outcomes[done_host] = f"still on {tag}: putting it back on {previous} failed: {problem}"
                left_on_new.append(done_host)
        self._report(action, tag, outcomes)
        verb = "refused" if refused else "failed"
        after = f"{action} of {tag} to {self.stack} {verb}{where} ({status}): {reason}"
        if left_on_new:
            on_new = " ".join(host for host in switched if host in left_on_new)
            self._record(
                replace(
                    release,
                    result="failed",
                    finished=utc_now(),
                    detail=f"split: {on_new} left on {tag}; {host}: {reason}"[:200],
                )
            )
            others = f"on {previous}" if previous else "on what they served before (no release had succeeded)"
            if status == "unknown":
                others += f", {host} unknown"
            raise DeployError(
                f"{after}; the fleet is SPLIT: {on_new} still on {tag}, the other hosts {others}; "
                f"deploy {previous or 'a good tag'} again",
                EXIT_FAILED,
            )
        back = f"{len(switched)} host{'s' if len(switched) > 1 else ''}"
        self._record(
            replace(
                release,
                result=verb,
                finished=utc_now(),
                detail=f"rolled back: {back} put back on {previous}; {host}: {reason}"[:200],
            )
        )
        untouched = len(outcomes) - len(switched) - 1
        unknown = f"; {host}'s own state is unknown" if status == "unknown" else ""
        raise DeployError(
            f"{after}; rolled back: the {back} before it {'are' if len(switched) > 1 else 'is'} back on {previous}, "
            f"{untouched} after it not touched{unknown}",
            EXIT_BUSY if refused else EXIT_FAILED,
        )

    def _catch_up(self, action: str, tag: str, hosts: list[str], outcomes: dict[str, str]) -> str | None:
        """Deploy `tag` to the hosts that appeared during the deploy; what went wrong, if anything."""
        assert self.find_hosts is not None
        try:
            late = [host for host in self.find_hosts() if host not in hosts]
        except DeployError as error:
            self.say(f"{self.stack}: warning: could not look for hosts launched during the deploy: {error}")
            return None
        missed: list[str] = []
        first_problem = ""
        for host in late:
            self.say(f"{self.stack}: {host} was launched during the {action}; deploying {tag} on it too")
            problem = self._attempt(host, tag)
            if problem is None:
                outcomes[host] = f"launched during the {action}; switched to {tag}"
            else:
                outcomes[host] = f"launched during the {action}; did not take {tag}: {problem}"
                missed.append(host)
                first_problem = first_problem or problem
        if not missed:
            return None
        return (
            f"{action} of {tag} to {self.stack} succeeded on {len(hosts)} host{'s' if len(hosts) > 1 else ''}, "
            f"but {' '.join(missed)}, launched during it, did not take it: {first_problem}; "
            "deploy again, or terminate it so that its group launches a host that boots the new release"
        )

    def _attempt(self, host: str, tag: str) -> str | None:
        """Deploy `tag` on one host outside a recorded release; None when it switched, else why not."""
        try:
            command_id = self._send(host, tag)
            status, _code, output, errors = self.wait(command_id, host)
        except DeployError as error:
            return str(error)
        if status == "Success":
            return None
        return last_line(errors) or last_line(output) or f"the SSM command ended {status}"

    def _report(self, action: str, tag: str, outcomes: Mapping[str, str]) -> None:
        """One line per host, when there are several (one host's story is told by the error or the result)."""
        if len(outcomes) < 2:
            return
        self.say(f"{self.stack}: {action} of {tag}, host by host:")
        for host, outcome in outcomes.items():
            self.say(f"  {host}  {outcome}")

    def _unmark_old_releases(self) -> None:
        """Best effort: an image left marked is only kept longer than needed."""
        try:
            unmarked = prune_releases(self.registry, self.stack, lambda: {r.tag for r in self.releases()})
        except DeployError as error:
            self.say(f"warning: {error}")
            return
        if unmarked:
            self.say(f"no longer in the history, may now expire: {', '.join(unmarked)}")

    def rollback(self) -> Release:
        serving = self.serving()
        if len(serving) < 2:
            now = f"only {serving[-1]} has served" if serving else "no release has succeeded yet"
            raise DeployError(f"no previous good release of {self.stack} to roll back to: {now}")
        self.say(f"rolling {self.stack} back from {serving[-1]} to {serving[-2]}")
        return self.deploy(serving[-2], action="rollback")

    def _send(self, instance_id: str, tag: str) -> str:
        # Scaled out, the release command ran once on the jobs host before the rollout (see _release_command).
        skip = " --skip-release-command" if self.skip_release_command else ""
        return self.send(
            instance_id,
            f"{HOST_TOOL} deploy{skip} {shlex.quote(tag)}",
            what="the deploy",
            comment=f"leanstack deploy {self.stack} {tag}",
            doing=f"deploying {tag}",
        )

    def _release_command(self, release: Release, host: str) -> None:
        """Scaled out: the release command once, on the jobs host, before any host switches."""
        tag, action = release.tag, release.action
        try:
            command_id = self.send(
                host,
                f"{HOST_TOOL} release-command {shlex.quote(tag)}",
                what="the release command",
                comment=f"leanstack release command {self.stack} {tag}",
                doing=f"running the release command of {tag}",
                timeout=RELEASE_COMMAND_TIMEOUT_SECONDS,
            )
            status, code, output, errors = self.wait(command_id, host, RELEASE_COMMAND_TIMEOUT_SECONDS)
        except DeployError as error:
            self._record(
                replace(release, result="failed", finished=utc_now(), detail=f"release command: {error}"[:200])
            )
            raise DeployError(f"{action} of {tag} to {self.stack} stopped: {error}; no host changed") from None
        if status == "Success":
            return
        reason = last_line(errors) or last_line(output) or f"the SSM command ended {status}"
        refused = code == EXIT_BUSY
        self._record(
            replace(
                release,
                result="refused" if refused else "failed",
                finished=utc_now(),
                # The host tool's one line ends with the command's last output lines.
                detail="release command: " + reason[-180:],
            )
        )
        raise DeployError(
            f"{action} of {tag} to {self.stack} stopped: the release command failed on {host} ({status}): {reason}; "
            "no host changed, the previous version serves",
            EXIT_BUSY if refused else EXIT_FAILED,
        )
