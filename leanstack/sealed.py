"""`python -m leanstack secrets restore STACK --from-backup`: the app's config and secrets
back from their sealed off-site copy.

    python -m leanstack secrets restore STACK --from-backup --bucket B --bucket-region R
        [--region R] [--prefix sealed-secrets] [--stamp YYYYMMDDTHHMMSSZ]
        [--key-file F] [--dry-run]

Fetches the newest bundle (or --stamp's) from s3://B/<prefix>/<STACK>/, opens it with the
recovery private key (--key-file, or pasted on stdin), and writes every value back: SSM
put-parameter with the type it had (SecureString with the account's default SSM key,
Intelligent-Tiering so a large value fits) and Secrets Manager put-secret-value, or
create-secret where the secret does not exist (a recovery in another region). --region
(default $AWS_REGION) is where they are written. --dry-run lists the names only.

The private key stays on this machine: it is read here, used here, and nothing derived
from it is sent anywhere. A key that is not the bundle's recipient, or a damaged bundle,
stops the restore before anything is written: one line, exit 2 (bad input) or 1.

AWS permissions: s3:ListBucket and s3:GetObject on the bundles; ssm:PutParameter under
/leanstack/<STACK>/; secretsmanager:PutSecretValue, CreateSecret, DescribeSecret on the
named secrets.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from leanstack.host.agent import contract
from leanstack.host.agent.seal import FORMAT, PBKDF2_ITERATIONS, SEALED_PREFIX, key_id, mac_input

STAMP = re.compile(r"^\d{8}T\d{6}Z$")


class SealedError(ValueError):
    """A bundle that cannot be opened, or bad input: one line."""


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SealedError("the key file is not an unencrypted PEM private key (recovery-key new prints one)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SealedError("the key file is not an RSA private key (recovery-key new makes one)")
    return key


def private_key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_id(der)


def open_bundle(bundle: Mapping[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The sealed document, after checking recipient, MAC and padding; nothing is trusted before."""
    if bundle.get("format") != FORMAT:
        raise SealedError(f"not a sealed bundle of format {FORMAT} (format: {bundle.get('format')!r})")
    mine = private_key_id(key)
    if bundle.get("key_id") != mine:
        raise SealedError(
            f"this bundle is sealed to recovery key {bundle.get('key_id')}, the key given is {mine}: "
            "use the private half printed with that key"
        )
    try:
        wrapped = base64.b64decode(bundle["wrapped_key"], validate=True)
        ciphertext = base64.b64decode(bundle["ciphertext"], validate=True)
        tag = base64.b64decode(bundle["mac"], validate=True)
        secret = key.decrypt(wrapped, OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    except (KeyError, ValueError, TypeError):
        raise SealedError("the bundle is damaged: its wrapped key does not open with this key") from None
    expected = hmac.new(secret[32:], mac_input(bundle, bundle["ciphertext"]), hashlib.sha256).digest()
    if len(secret) != 64 or not hmac.compare_digest(tag, expected):
        raise SealedError("the bundle is damaged: its MAC does not match (altered or truncated)")
    # `openssl enc -pbkdf2 -md sha256 -salt`: "Salted__", 8 bytes of salt, then AES-256-CBC.
    if ciphertext[:8] != b"Salted__" or len(ciphertext) < 32:
        raise SealedError("the bundle is damaged: no openssl salt header")
    derived = hashlib.pbkdf2_hmac("sha256", secret[:32].hex().encode("ascii"), ciphertext[8:16], PBKDF2_ITERATIONS, 48)
    decryptor = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:])).decryptor()
    padded = decryptor.update(ciphertext[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        document: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
    except ValueError:
        raise SealedError("the bundle is damaged: it decrypts to no document") from None
    return document


def bundle_keys(s3: Any, bucket: str, prefix: str, stack: str) -> list[str]:
    folder = f"{prefix.strip('/')}/{stack}/"
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        keys.extend(
            item["Key"]
            for item in page.get("Contents", [])
            if STAMP.match(item["Key"][len(folder) :].removesuffix(".json"))
        )
    return sorted(keys)


def choose_bundle(keys: Sequence[str], stack: str, stamp: str | None) -> str:
    if stamp is not None:
        chosen = [key for key in keys if key.endswith(f"/{stamp}.json")]
        if not chosen:
            newest = keys[-1].rsplit("/", 1)[-1].removesuffix(".json") if keys else "none"
            raise SealedError(f"--stamp {stamp}: no sealed bundle of stack {stack} has it (newest: {newest})")
        return chosen[0]
    if not keys:
        raise SealedError(f"no sealed bundle of stack {stack} in the bucket (the host writes one daily)")
    return keys[-1]


def write_back(document: Mapping[str, Any], ssm: Any, secretsmanager: Any) -> None:
    for parameter in document["parameters"]:
        # DataType only when it is not the default: aws:ec2:image and the like are String only.
        data_type = parameter.get("data_type", "text")
        ssm.put_parameter(
            Name=parameter["name"],
            Value=parameter["value"],
            Type=parameter["type"],
            Tier="Intelligent-Tiering",
            Overwrite=True,
            **({} if data_type == "text" else {"DataType": data_type}),
        )
    for secret in document["secrets"]:
        value: dict[str, Any] = (
            {"SecretString": secret["string"]}
            if "string" in secret
            else {"SecretBinary": base64.b64decode(secret["binary"])}
        )
        try:
            secretsmanager.describe_secret(SecretId=secret["name"])
        except secretsmanager.exceptions.ResourceNotFoundException:
            secretsmanager.create_secret(Name=secret["name"], **value)
        else:
            secretsmanager.put_secret_value(SecretId=secret["name"], **value)


def moved(document: Mapping[str, Any], stack: str, into: str) -> dict[str, Any]:
    """The bundle's values as another stack's: parameters under /leanstack/<stack>/ move to
    /leanstack/<into>/ (the recovery stack's host reads only its own path). Secrets Manager
    secrets keep their names: the app's config names them, in whatever region they are written."""
    old, new = contract.parameter_root(stack) + "/", contract.parameter_root(into) + "/"
    parameters = [
        {**p, "name": new + p["name"][len(old) :]} if str(p["name"]).startswith(old) else dict(p)
        for p in document["parameters"]
    ]
    return {**document, "parameters": parameters}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"leanstack: secrets: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m leanstack secrets", description="the app's sealed config and secrets")
    commands = parser.add_subparsers(dest="action", required=True, parser_class=_Parser)
    restore = commands.add_parser("restore", help="write the app's config and secrets back from a sealed bundle")
    restore.add_argument("stack")
    restore.add_argument("--from-backup", action="store_true", required=True, help="from the off-site bucket")
    restore.add_argument("--bucket", required=True, help="the off-site backup bucket")
    restore.add_argument("--bucket-region", required=True, help="the backup bucket's region")
    restore.add_argument("--region", help="where to write the values (default: $AWS_REGION)")
    restore.add_argument("--prefix", default=SEALED_PREFIX, help=f"the bundles' prefix (default {SEALED_PREFIX})")
    restore.add_argument("--stamp", help="this bundle (YYYYMMDDTHHMMSSZ) instead of the newest")
    restore.add_argument("--key-file", help="the recovery private key (PEM); default: read from stdin")
    restore.add_argument(
        "--into",
        metavar="STACK",
        help="write them as this stack's (e.g. STACK-recovery from `recover init`): /leanstack/STACK/... "
        "parameters move to /leanstack/<this stack>/...",
    )
    restore.add_argument("--dry-run", action="store_true", help="list the names only, write nothing")
    return parser


def main(argv: Sequence[str], session: Any = None) -> int:
    """`argv` starts after `secrets`. `session` is a boto3 session (tests pass theirs)."""
    args = _parser().parse_args(list(argv))
    try:
        return restore(args, session)
    except SealedError as error:
        print(f"leanstack: secrets restore: {error}", file=sys.stderr)
        return 2


def restore(args: argparse.Namespace, session: Any) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if args.into is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.into):
        raise SealedError(f"--into: got {args.into!r}; expected a stack name (letters, digits, '.', '_', '-')")
    if args.stamp is not None and not STAMP.match(args.stamp):
        raise SealedError(f"--stamp must look like 20260101T031500Z, not {args.stamp!r}")
    if args.key_file is None:
        print("Paste the recovery private key (PEM), then Ctrl-D:", file=sys.stderr)
        pem = sys.stdin.buffer.read()
    else:
        try:
            pem = Path(args.key_file).read_bytes()
        except OSError as error:
            raise SealedError(f"--key-file {args.key_file}: {error.strerror}") from None
    key = load_private_key(pem)
    session = session or boto3.session.Session()
    region = args.region or session.region_name
    if not region:
        raise SealedError("--region is not given and AWS_REGION is not set: where should the values go?")
    try:
        s3 = session.client("s3", region_name=args.bucket_region)
        chosen = choose_bundle(bundle_keys(s3, args.bucket, args.prefix, args.stack), args.stack, args.stamp)
        body = s3.get_object(Bucket=args.bucket, Key=chosen)["Body"].read()
        try:
            bundle = json.loads(body)
        except ValueError:
            raise SealedError(f"s3://{args.bucket}/{chosen} is not JSON: not a sealed bundle") from None
        document = open_bundle(bundle, key)
        if document.get("stack") != args.stack:
            raise SealedError(f"the bundle is of stack {document.get('stack')!r}, not {args.stack!r}")
        if args.into:
            document = moved(document, args.stack, args.into)
        names = [p["name"] for p in document["parameters"]] + [s["name"] for s in document["secrets"]]
        verb = "would write" if args.dry_run else "writing"
        print(f"s3://{args.bucket}/{chosen} (sealed {document['created']}): {verb} in {region}:")
        for parameter in document["parameters"]:
            print(f"  ssm  {parameter['name']} ({parameter['type']})")
        for secret in document["secrets"]:
            print(f"  secretsmanager  {secret['name']}")
        if not args.dry_run:
            write_back(
                document,
                session.client("ssm", region_name=region),
                session.client("secretsmanager", region_name=region),
            )
            print(f"restored {len(names)} values")
    except (BotoCoreError, ClientError) as error:
        print(f"leanstack: secrets restore: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0
