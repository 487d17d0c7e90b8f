#!/usr/bin/python3
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
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

# boto3 and botocore are imported where the seal runs, not here: the format's constants and key
# helpers are also read by the laptop's tooling and by `plan`, which must not need boto3.

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FORMAT = "leanstack-sealed/1"
PBKDF2_ITERATIONS = 10000
SEALED_PREFIX = "sealed-secrets"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
OAEP_OPTIONS = ("rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha256")
# Minimum RSA modulus: a recovery key is 4096 bits; nothing below 3072 is accepted.
MIN_KEY_BITS = 3072


class Failure(Exception):
    """A failed run: one line on stderr, exit 1."""


class ConfigError(Failure):
    """Bad configuration: one line on stderr, exit 2."""


# ---------------------------------------------------------------------------------------
# The sealed format (leanstack/sealed.py opens what this writes)


def public_key_der(text: str) -> bytes:
    """The DER SubjectPublicKeyInfo from its one-line base64 form or from PEM."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body.replace(" ", ""), validate=True)
    except ValueError:
        raise ConfigError("RECOVERY_PUBLIC_KEY is not base64 (python -m leanstack recovery-key new)") from None
    if len(der) < 64 or der[0] != 0x30:
        raise ConfigError("RECOVERY_PUBLIC_KEY is not a public key (python -m leanstack recovery-key new)")
    return der


def key_id(der: bytes) -> str:
    """Names the recovery key without revealing anything: the SPKI's SHA-256, shortened."""
    return hashlib.sha256(der).hexdigest()[:16]


def public_key_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[index : index + 64] for index in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def mac_input(header: Mapping[str, str], ciphertext: str) -> bytes:
    """What the MAC covers: every header field the opener trusts, then the ciphertext."""
    fields = [FORMAT, header["key_id"], header["stack"], header["created"], header["wrapped_key"], ciphertext]
    return "\n".join(fields).encode("utf-8")


def _openssl(openssl: str, arguments: List[str], data: bytes, password: Optional[bytes] = None) -> bytes:
    read_end = write_end = -1
    if password is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, password + b"\n")
        os.close(write_end)
        arguments = [*arguments, "-pass", f"fd:{read_end}"]
    try:
        done = subprocess.run(
            [openssl, *arguments],
            input=data,
            capture_output=True,
            check=False,
            timeout=60,
            pass_fds=(read_end,) if password is not None else (),
        )
    finally:
        if password is not None:
            os.close(read_end)
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise Failure(f"openssl {arguments[0]} failed: {last}")
    return done.stdout


def seal(plaintext: bytes, public_key: str, stack: str, created: str, openssl: str = "openssl") -> Dict[str, str]:
    der = public_key_der(public_key)
    secret = os.urandom(64)
    with tempfile.TemporaryDirectory(prefix="leanstack-seal-") as work:
        key_file = os.path.join(work, "recovery.pub.pem")
        with open(key_file, "w", encoding="ascii") as handle:
            handle.write(public_key_pem(der))
        # An RSA key's text starts "Public-Key: (4096 bit)" and has a "Modulus:".
        text = _openssl(openssl, ["pkey", "-pubin", "-in", key_file, "-noout", "-text"], b"").decode("ascii", "replace")
        size = re.search(r"Public-Key: \((\d+) bit\)", text)
        if "Modulus:" not in text or size is None or int(size.group(1)) < MIN_KEY_BITS:
            raise ConfigError(f"RECOVERY_PUBLIC_KEY must be an RSA key of at least {MIN_KEY_BITS} bits")
        options = [argument for option in OAEP_OPTIONS for argument in ("-pkeyopt", option)]
        wrapped = _openssl(openssl, ["pkeyutl", "-encrypt", "-pubin", "-inkey", key_file, *options], secret)
    ciphertext = _openssl(
        openssl,
        ["enc", "-aes-256-cbc", "-pbkdf2", "-iter", str(PBKDF2_ITERATIONS), "-md", "sha256", "-salt"],
        plaintext,
        password=secret[:32].hex().encode("ascii"),
    )
    header = {
        "format": FORMAT,
        "key_id": key_id(der),
        "stack": stack,
        "created": created,
        "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
    }
    encoded = base64.b64encode(ciphertext).decode("ascii")
    tag = hmac.new(secret[32:], mac_input(header, encoded), hashlib.sha256).digest()
    return {**header, "ciphertext": encoded, "mac": base64.b64encode(tag).decode("ascii")}


def bundle_key(prefix: str, stack: str, stamp: str) -> str:
    return "/".join(part for part in (prefix.strip("/"), stack, f"{stamp}.json") if part)


# ---------------------------------------------------------------------------------------
# What is sealed


def read_parameters(ssm: Any, path: str) -> List[Dict[str, str]]:
    found: List[Dict[str, str]] = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True, WithDecryption=True):
        for parameter in page["Parameters"]:
            found.append(
                {
                    "name": parameter["Name"],
                    "type": parameter["Type"],
                    "data_type": parameter.get("DataType", "text"),
                    "value": parameter["Value"],
                }
            )
    return sorted(found, key=lambda item: item["name"])


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


def create_only_if_absent(client: S3Client) -> None:
    """`If-None-Match: *` on every create, as a header: the same rule, and the same reason
    (hosts whose boto3 predates the parameter), as leanstack_backup.create_only_if_absent."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["If-None-Match"] = "*"

    client.meta.events.register("before-sign.s3.PutObject", add_header)


def env_value(env: Mapping[str, str], name: str, default: Optional[str] = None) -> str:
    value = env.get(name, "").strip() or default
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def seal_secrets(env: Mapping[str, str], now: datetime.datetime, openssl: str = "openssl") -> str:
    """Seal and upload; returns the bundle's key."""
    stack = env_value(env, "STACK")
    public_key = env_value(env, "RECOVERY_PUBLIC_KEY")
    public_key_der(public_key)
    region = env_value(env, "AWS_REGION", env.get("AWS_DEFAULT_REGION"))
    bucket = env_value(env, "BACKUP_BUCKET")
    bucket_region = env_value(env, "BACKUP_BUCKET_REGION", region)
    path = env.get("PARAMETER_PATH", "").strip() or f"/leanstack/{stack}/"
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
        "parameters": read_parameters(session.client("ssm", region_name=region, config=config), path),
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
