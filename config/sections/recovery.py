"""`leanstack:recovery`: who brings each system back, how fast and how fresh, and where the keys are."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leanstack.config.fields import Validated, setting

# Who: a name, team or email (leanstack:owner, and each recovery person, who may be left empty).
PERSON_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9 .,'@_+()-]{0,79}"
PERSON_RE = f"({PERSON_NAME_RE})?"
PERSON_ALLOWED = 'a name, team or email of 1-80 characters such as "Ada Lovelace, ada@example.com"'


def _check_no_secret(value: Any) -> str | None:
    """Where a credential lives, never the credential: refuse what looks like a key, token or password."""
    text = str(value)
    if "-----BEGIN" in text or re.search(r"[A-Za-z0-9+/=_-]{24,}", text) or re.search(r"(?i)password\s*[:=]", text):
        return "where the credential lives (a place and who holds it), never the credential itself"
    return None


# Where a credential lives: one line of text, checked to hold no credential itself.
PLACE_RE = r"[^\x00-\x1f]{0,160}"
PLACE_ALLOWED = "one line of at most 160 characters"

# A state backend URL as `pulumi login` takes it: s3://, gs://, azblob://, file://, https:// (no user:password@).
STATE_URL_RE = re.compile(r"\b(?:s3|gs|azblob|file|https)://[^\s@,;]+")


def _check_state_place(value: Any) -> str | None:
    """Where the state and its passphrase are: a backend URL may be long, but never carries a credential."""
    text = str(value)
    if re.search(r"://[^\s/]*@", text):
        return "where the state and its passphrase are, with no user or password in the URL"
    return _check_no_secret(STATE_URL_RE.sub("URL", text))


@dataclass(frozen=True)
class SystemRecovery(Validated):
    """Who brings one system back, and how fast and how fresh; empty fields fall back to the stack's."""

    owner: str = setting("", doc="Who owns this system's recovery; empty: leanstack:owner.", pattern=PERSON_RE,
                         allowed=PERSON_ALLOWED)  # fmt: skip
    second: str = setting(
        "",
        doc="Who can approve and run it when the owner cannot; empty: recovery.secondPerson.",
        pattern=PERSON_RE,
        allowed=PERSON_ALLOWED,
    )
    rto_minutes: int = setting(0, doc="Minutes to bring it back; 0: recovery.rtoMinutes.", min=0, max=10080)
    rpo_hours: int = setting(0, doc="Hours of its data you accept to lose; 0: recovery.rpoHours.", min=0, max=720)


@dataclass(frozen=True)
class RecoveryCredentials(Validated):
    """Where each recovery credential lives (a vault, a safe, who holds it): never the credential itself."""

    aws_root_mfa: str = setting(
        "", doc="Where the AWS account root's password and MFA device are.", pattern=PLACE_RE,
        allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip
    registrar: str = setting(
        "", doc="Where the domain registrar's login is.", pattern=PLACE_RE,
        allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip
    cloudflare: str = setting(
        "", doc="Where the Cloudflare account's login and 2FA are.", pattern=PLACE_RE,
        allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip
    recovery_key: str = setting(
        "", doc="Where the recovery key's private half is (backup.recoveryPublicKey).", pattern=PLACE_RE,
        allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip
    code_hosting: str = setting(
        "", doc="Where the code host's login and 2FA recovery codes are (the repository the stack is deployed from).",
        pattern=PLACE_RE, allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip
    pulumi_state: str = setting(
        "", doc="Where the Pulumi state is (the pulumi login URL; it must not be in the stack's region) and where its "
        "credentials and the stack's secrets passphrase are.",
        pattern=PLACE_RE, allowed=PLACE_ALLOWED, check=_check_state_place,
    )  # fmt: skip
    password_manager: str = setting(
        "", doc="Where the team password manager's emergency access is (its recovery kit, who holds it).",
        pattern=PLACE_RE, allowed=PLACE_ALLOWED, check=_check_no_secret,
    )  # fmt: skip


@dataclass(frozen=True)
class RecoveryTargets(Validated):
    """The recovery targets the runbook states and the config is checked against. Required for production."""

    rto_minutes: int = setting(
        0,
        doc="Recovery time objective: minutes from disaster to the site serving again. 0 = not set (dev only).",
        min=0,
        max=10080,
    )
    rpo_hours: int = setting(
        0,
        doc="Recovery point objective: hours of data you accept to lose; at least the off-site backup interval "
        "plus 1 hour. 0 = not set (dev only).",
        min=0,
        max=720,
    )
    second_person: str = setting(
        "",
        doc="Who can approve and run recovery steps when the owner cannot (a name, team or email); required for "
        "production, so a recovery never waits on one person or one inbox.",
        pattern=PERSON_RE,
        allowed=PERSON_ALLOWED,
    )
    database: SystemRecovery = setting(SystemRecovery(), doc="The database: owner, second person, RTO and RPO.")
    files: SystemRecovery = setting(SystemRecovery(), doc="Uploaded files (storage): owner, second, RTO and RPO.")
    secrets: SystemRecovery = setting(SystemRecovery(), doc="The app's config and secrets: owner, second, RTO, RPO.")
    host: SystemRecovery = setting(SystemRecovery(), doc="The host(s): owner, second person, RTO and RPO.")
    dns: SystemRecovery = setting(SystemRecovery(), doc="DNS and the CDN (Cloudflare): owner, second, RTO and RPO.")
    deploy: SystemRecovery = setting(SystemRecovery(), doc="The deploy path (CI, images): owner, second, RTO, RPO.")
    credentials: RecoveryCredentials = setting(
        RecoveryCredentials(), doc="Where the recovery credentials live, without any secret."
    )

    def system(self, name: str, owner: str) -> SystemRecovery:
        """One system's recovery with the stack-wide values filled in where it leaves them empty."""
        own: SystemRecovery = getattr(self, name)
        return SystemRecovery(
            owner=own.owner or owner,
            second=own.second or self.second_person,
            rto_minutes=own.rto_minutes or self.rto_minutes,
            rpo_hours=own.rpo_hours or self.rpo_hours,
        )
