"""leanstack-seal-secrets: the app's config and secret values off-site, sealed.

Daily (leanstack-seal-secrets.timer), reads the app's SSM parameters under
/leanstack/<STACK>/ (String, StringList and SecureString, decrypted) and the named Secrets
Manager secrets, seals them to the stack's recovery public key, and writes one bundle to
the off-site backup bucket, create-only (If-None-Match: *): no bundle is ever replaced.

    sealed-secrets/<STACK>/<YYYYMMDDTHHMMSSZ>.json      (SEALED_PREFIX/STACK/STAMP.json)

Only the owner's recovery private key, which never touches AWS, opens a bundle:
`python -m leanstack secrets restore STACK --from-backup` on the owner's machine.

The seal: RSA-OAEP (SHA-256) wraps 64 random bytes; the first 32 (hex) are the password
of `openssl enc -aes-256-cbc -pbkdf2 -iter 10000 -md sha256 -salt`, the last 32 key an
HMAC-SHA256 over the bundle's header and ciphertext (encrypt-then-MAC). The host has only
Python's stdlib, boto3 and the openssl program, and `openssl enc` does no authenticated
mode; every piece here is one openssl or hashlib call, and the password travels on a pipe
(`-pass fd:N`), never on a command line.

Environment (systemd reads /etc/leanstack/sealed-secrets.env):
    STACK                   the stack's name (required)
    RECOVERY_PUBLIC_KEY     the recovery public key: base64 DER (SubjectPublicKeyInfo), one
                            line, as `python -m leanstack recovery-key new` prints it
    AWS_REGION              where the parameters and secrets live
    BACKUP_BUCKET, BACKUP_BUCKET_REGION   the off-site bucket
    SEALED_PREFIX           default sealed-secrets (beside the database dumps' prefix)
    PARAMETER_PATH          default /leanstack/<STACK>/
    SECRET_IDS              names of Secrets Manager secrets, comma-separated (may be
                            empty); an RDS-managed secret is refused: RDS recreates it

Python 3.9, stdlib and boto3 only, plus the openssl program.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

if TYPE_CHECKING:
    pass

from . import contract
from .common import STAMP_FORMAT, ConfigError, Failure, create_only_if_absent, env_value, read_parameters
from .seal import SEALED_PREFIX, bundle_key, public_key_der, seal


def read_secrets(secretsmanager: Any, secret_ids: List[str]) -> List[Dict[str, str]]:
    found: List[Dict[str, str]] = []
    for secret_id in secret_ids:
        described = secretsmanager.describe_secret(SecretId=secret_id)
        if described["Name"].startswith("rds!") or described.get("OwningService") == "rds":
            raise ConfigError(f"SECRET_IDS: {secret_id} is managed by RDS, which recreates it: leave it out")
        value = secretsmanager.get_secret_value(SecretId=secret_id)
        item = {"name": value["Name"]}
        if "SecretString" in value:
            item["string"] = value["SecretString"]
        else:
            item["binary"] = base64.b64encode(value["SecretBinary"]).decode("ascii")
        found.append(item)
    return found


def seal_secrets(env: Mapping[str, str], now: datetime.datetime, openssl: str = "openssl") -> str:
    """Seal and upload; returns the bundle's key."""
    stack = env_value(env, "STACK")
    public_key = env_value(env, "RECOVERY_PUBLIC_KEY")
    public_key_der(public_key)
    region = env_value(env, "AWS_REGION", env.get("AWS_DEFAULT_REGION") or None)
    bucket = env_value(env, "BACKUP_BUCKET")
    bucket_region = env_value(env, "BACKUP_BUCKET_REGION", region)
    path = env.get("PARAMETER_PATH", "").strip() or contract.parameter_root(stack) + "/"
    secret_ids = [item.strip() for item in env.get("SECRET_IDS", "").split(",") if item.strip()]
    if shutil.which(openssl) is None:
        raise Failure(f"{openssl} is not installed")
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)
    session = boto3.session.Session()
    created = now.astimezone(datetime.timezone.utc)
    document = {
        "stack": stack,
        "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "parameter_path": path,
        "parameters": [
            {key: value for key, value in parameter.items() if key != "version"}
            for parameter in read_parameters(session.client("ssm", region_name=region, config=config), path)
        ],
        "secrets": read_secrets(session.client("secretsmanager", region_name=region, config=config), secret_ids),
    }
    plaintext = json.dumps(document, sort_keys=True).encode("utf-8")
    bundle = seal(plaintext, public_key, stack, str(document["created"]), openssl)
    key = bundle_key(env.get("SEALED_PREFIX", "").strip() or SEALED_PREFIX, stack, created.strftime(STAMP_FORMAT))
    s3 = session.client("s3", region_name=bucket_region, config=config)
    create_only_if_absent(s3)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(bundle, indent=2, sort_keys=True).encode("utf-8") + b"\n",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    print(
        f"leanstack-seal-secrets: sealed {len(document['parameters'])} parameters and "
        f"{len(document['secrets'])} secrets to key {bundle['key_id']}: s3://{bucket}/{key}"
    )
    return key


def main(argv: List[str]) -> int:
    if len(argv) > 1:
        print(__doc__)
        return 0 if argv[1] in ("-h", "--help") else 2
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        seal_secrets(os.environ, datetime.datetime.now(datetime.timezone.utc))
    except ConfigError as error:
        print(f"leanstack-seal-secrets: {error}", file=sys.stderr)
        return 2
    except Failure as error:
        print(f"leanstack-seal-secrets: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"leanstack-seal-secrets: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0
