"""The host files of leanstack-seal-secrets, for cloud-init to write beside the backup's.

`seal_host_files(public_key, secret_ids, calendar)` returns the program, its environment
file and its daily service and timer; cloud-init enables `SEAL_UNITS`. The service reads
/etc/leanstack/backup.env first (STACK, AWS_REGION, BACKUP_BUCKET, BACKUP_BUCKET_REGION:
one source for the bucket) and then /etc/leanstack/sealed-secrets.env (the recovery public
key and the secrets' names; no secret values).

What the host role needs: ssm:GetParametersByPath on /leanstack/<stack>/ and below (the
parameters under it, decrypted with the account's aws/ssm key or kms:Decrypt on the
customer key); secretsmanager:DescribeSecret and GetSecretValue on the named secrets;
s3:PutObject on <bucket>/sealed-secrets/<stack>/* (create-only, as the dumps).
"""

from __future__ import annotations

from leanstack.host.agent import contract
from leanstack.host.agent.common import ConfigError
from leanstack.host.agent.seal import public_key_der
from leanstack.host.backup.install import checked_calendar, env_line, service_unit, timer_unit
from leanstack.host.params import HostFile
from leanstack.host.shipping import entry_file

SEAL_TOOL_PATH = contract.SEAL_COMMAND.path
SEAL_ENV_PATH = contract.SEAL_ENV_PATH
SEAL_UNITS: tuple[str, ...] = (contract.SEAL_TIMER,)


def render_seal_env(public_key: str, secret_ids: tuple[str, ...]) -> str:
    try:
        public_key_der(public_key)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    for secret_id in secret_ids:
        if not secret_id or "," in secret_id or secret_id.startswith("rds!"):
            raise ValueError(f"secret_ids: {secret_id!r} is not a secret name leanstack may seal")
    lines = [
        "# leanstack-seal-secrets settings, rendered from the stack. No secret values.",
        env_line("RECOVERY_PUBLIC_KEY", "".join(public_key.split())),
        env_line("SECRET_IDS", ",".join(secret_ids)),
    ]
    return "\n".join(lines) + "\n"


def seal_tool() -> HostFile:
    """leanstack-seal-secrets' entry script (its code, the agent's modules, travels through the host-files bucket)."""
    return entry_file(contract.SEAL_COMMAND)


def seal_host_files(public_key: str, secret_ids: tuple[str, ...], calendar: str) -> tuple[HostFile, ...]:
    return (
        seal_tool(),
        HostFile(path=SEAL_ENV_PATH, content=render_seal_env(public_key, secret_ids), permissions="0640"),
        service_unit(
            "leanstack-seal-secrets",
            "leanstack: seal the app's config and secrets to the recovery key, off-site",
            SEAL_TOOL_PATH,
            "15min",
            f"EnvironmentFile={SEAL_ENV_PATH}\n",
        ),
        timer_unit(
            "leanstack-seal-secrets",
            "leanstack: daily sealed copy of the app's config and secrets",
            checked_calendar(calendar, "calendar"),
            "10min",
        ),
    )
