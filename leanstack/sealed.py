"""`python -m leanstack secrets restore STACK --from-backup`: the app's config and secrets
back from their sealed off-site copy.

    python -m leanstack secrets restore STACK --from-backup --bucket B --bucket-region R
        [--region R] [--prefix sealed-secrets] [--stamp YYYYMMDDTHHMMSSZ]
        [--key-file F] [--into STACK-recovery] [--dry-run] [--yes]

Fetches the newest bundle (or --stamp's) from s3://B/<prefix>/<STACK>/, opens it with the
recovery private key (--key-file, or pasted on stdin; an encrypted PEM asks for its passphrase,
or takes $LEANSTACK_RECOVERY_KEY_PASSPHRASE), and writes back what the stack owns: SSM
put-parameter with the type it had (SecureString with the account's default SSM key,
Intelligent-Tiering so a large value fits) and Secrets Manager put-secret-value, or
create-secret where the secret does not exist (a recovery in another region). --region
(default $AWS_REGION) is where they are written. --dry-run lists the names only.

A bundle proves confidentiality, not origin: anyone holding the public key can make one, and
the host role may write under sealed-secrets/<STACK>/. So nothing in it is trusted for where
it goes:
- parameters are written only under /leanstack/<STACK>/, and never the ones the stack's
  Pulumi program owns (the app config document, the cache token, the TLS material, the
  release history: `pulumi up` writes those); a bundle naming anything outside the stack's
  path is refused whole; a name the app config refuses (PATH, DOCKER_*, LD_*, ...) is left out;
- secrets are written only when stacks/Pulumi.<STACK>.yaml names them (app.secrets, app.registrySecretArn);
- a bundle stamped in the future is skipped (no host writes one), and the stamp of its key
  must equal the sealed `created`;
- before writing, every name is shown with the version it replaces, and written only once
  confirmed (--yes for scripts).

--into STACK-recovery moves them to the recovery stack in the backup region: parameters from
/leanstack/<STACK>/ to /leanstack/<STACK-recovery>/ with every reference inside rewritten, the
secrets created there with new ARNs, and those ARNs written into stacks/Pulumi.<STACK-recovery>.yaml
(where `recover init` left the secrets' names in the new region): run it before `pulumi up` of the
recovery stack, whose host role is granted exactly those ARNs.

The private key stays on this machine: it is read here, used here, and nothing derived
from it is sent anywhere. A key that is not the bundle's recipient, or a damaged bundle,
stops the restore before anything is written: one line, exit 2 (bad input) or 1.

AWS permissions: s3:ListBucket and s3:GetObject on the bundles; ssm:GetParameter and
ssm:PutParameter under /leanstack/<STACK>/; secretsmanager:PutSecretValue, CreateSecret,
DescribeSecret on the named secrets.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import getpass
import hashlib
import hmac
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from leanstack.config.fields import SECRETS_MANAGER_ARN_RE, env_name_problem
from leanstack.config.naming import PROJECT, pulumi_owned_parameter
from leanstack.host.agent.common import STAMP_FORMAT
from leanstack.host.agent.seal import FORMAT, PBKDF2_ITERATIONS, SEALED_PREFIX, key_id, mac_input
from leanstack.recover import ARN_SUFFIX

STAMP = re.compile(r"^\d{8}T\d{6}Z$")
# The passphrase of an encrypted recovery key, for scripts (a prompt otherwise).
PASSPHRASE_ENV = "LEANSTACK_RECOVERY_KEY_PASSPHRASE"
# A host's clock may run a little ahead of this machine's; a bundle further ahead was not written by a host.
CLOCK_SKEW = datetime.timedelta(minutes=10)
SECRET_ARN = re.compile(SECRETS_MANAGER_ARN_RE)


class SealedError(ValueError):
    """A bundle that cannot be opened, or bad input: one line."""


def load_private_key(pem: bytes, passphrase: Callable[[], str] | None = None) -> rsa.RSAPrivateKey:
    """The recovery key; an encrypted PEM is opened with `passphrase()` (asked only when needed)."""
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in pem
    password = None
    if encrypted:
        if passphrase is None:
            raise SealedError("the key file is an encrypted PEM and no passphrase was given")
        password = passphrase().encode("utf-8")
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError):
        if encrypted:
            raise SealedError("the passphrase does not open the key file (an encrypted PEM private key)") from None
        raise SealedError("the key file is not a PEM private key (recovery-key new prints one)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SealedError("the key file is not an RSA private key (recovery-key new makes one)")
    return key


def ask_passphrase() -> str:
    """$LEANSTACK_RECOVERY_KEY_PASSPHRASE, or a prompt on the terminal (never echoed)."""
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    try:
        return getpass.getpass("Passphrase of the recovery key: ")
    except (EOFError, OSError):
        raise SealedError(f"the key is encrypted: no terminal to ask its passphrase; set {PASSPHRASE_ENV}") from None


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


def stamp_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".json")


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


def choose_bundle(keys: Sequence[str], stack: str, stamp: str | None, now: datetime.datetime | None = None) -> str:
    """The newest bundle not stamped in the future (or --stamp's). A host stamps with its clock when it
    seals, so a later stamp was not written by a host: it would otherwise shadow every real bundle."""
    latest = ((now or datetime.datetime.now(datetime.UTC)) + CLOCK_SKEW).strftime(STAMP_FORMAT)
    future = [key for key in keys if stamp_of(key) > latest]
    if stamp is not None:
        chosen = [key for key in keys if stamp_of(key) == stamp]
        if not chosen:
            newest = stamp_of(keys[-1]) if keys else "none"
            raise SealedError(f"--stamp {stamp}: no sealed bundle of stack {stack} has it (newest: {newest})")
        if chosen[0] in future:
            raise SealedError(f"--stamp {stamp} is in the future: no host wrote it (forged, or a wrong clock)")
        return chosen[0]
    usable = [key for key in keys if key not in future]
    if future:
        print(
            f"skipped {len(future)} bundle(s) of stack {stack} stamped in the future "
            f"({', '.join(map(stamp_of, future))}): no host writes those",
            file=sys.stderr,
        )
    if not usable:
        raise SealedError(f"no sealed bundle of stack {stack} in the bucket (the host writes one daily)")
    return usable[-1]


def check_stamp(key: str, bundle: Mapping[str, Any], document: Mapping[str, Any]) -> None:
    """The key's stamp is the sealed `created` (the MAC covers the header's): a bundle cannot be renamed."""
    created = str(bundle.get("created", ""))
    try:
        sealed_at = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise SealedError(f"the bundle's created {created!r} is not a time: not a bundle a host wrote") from None
    if sealed_at.strftime(STAMP_FORMAT) != stamp_of(key) or document.get("created") != created:
        raise SealedError(f"{key}: stamped {stamp_of(key)} but sealed at {created}: renamed or forged, not restored")


def secret_name(arn: str) -> str:
    """The secret's name in an ARN (full, with Secrets Manager's suffix, or partial, without)."""
    return arn.split(":secret:", 1)[1]


def names_secret(arn: str, name: str) -> bool:
    tail = secret_name(arn)
    return tail == name or (tail.startswith(name) and ARN_SUFFIX.fullmatch(tail[len(name) :]) is not None)


def listed_secret_arns(stack: str, repo: Path | None) -> list[str]:
    """The Secrets Manager ARNs of app.secrets and app.registrySecretArn in stacks/Pulumi.<stack>.yaml:
    the secrets the stack owns."""
    from leanstack.mocks import StackFileError, read_stack_config

    try:
        raw = read_stack_config(stack, repo)
    except StackFileError as error:
        raise SealedError(f"{error} (the restore writes only the secrets the stack file lists)") from None
    app = raw.get(f"{PROJECT}:app") or {}
    secrets = app.get("secrets") if isinstance(app, dict) else None
    values = [*(secrets.values() if isinstance(secrets, dict) else ()), app.get("registrySecretArn") or ""]
    return sorted({str(v) for v in values if SECRET_ARN.fullmatch(str(v))})


@dataclass
class Selection:
    """What a bundle may write for a stack, and what it leaves out (name, why)."""

    parameters: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)


def app_variable(rest: str) -> str:
    """The app variable a parameter under <root>/app/ sets (env/NAME, secret/NAME, or NAME), or ""."""
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] in ("env", "secret"):
        return parts[1]
    return parts[0] if len(parts) == 1 and parts[0] != "config" else ""


def select_owned(document: Mapping[str, Any], stack: str, secret_arns: Sequence[str]) -> Selection:
    """Only what `stack` owns; a parameter outside its path refuses the whole bundle (no host seals one)."""
    own = f"/{PROJECT}/{stack}/"
    foreign = [str(p["name"]) for p in document["parameters"] if not str(p["name"]).startswith(own)]
    if foreign:
        raise SealedError(
            f"the bundle names parameters outside {own} ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}): stack {stack}'s host seals only its own, so it is forged; "
            "nothing written"
        )
    chosen = Selection()
    app_path = f"{own}app/"
    for parameter in document["parameters"]:
        name = str(parameter["name"])
        variable = app_variable(name[len(app_path) :]) if name.startswith(app_path) else ""
        if pulumi_owned_parameter(stack, name):
            chosen.left_out.append((name, "the stack's Pulumi program writes it"))
        elif variable and (problem := env_name_problem(variable)):
            chosen.left_out.append((name, f"not an app variable name: {problem.split(';')[0]}"))
        else:
            chosen.parameters.append(dict(parameter))
    for secret in document["secrets"]:
        if any(names_secret(arn, str(secret["name"])) for arn in secret_arns):
            chosen.secrets.append(dict(secret))
        else:
            chosen.left_out.append(
                (str(secret["name"]), f"not in app.secrets or app.registrySecretArn of stacks/Pulumi.{stack}.yaml")
            )
    return chosen


def moved(selection: Selection, stack: str, into: str) -> Selection:
    """The values as another stack's: parameters under /leanstack/<stack>/ move to /leanstack/<into>/
    (the recovery stack's host reads only its own path), and so does every reference to that path
    inside a value. Secrets keep their names; their ARNs are re-homed once written (rehome_arns)."""
    old, new = f"/{PROJECT}/{stack}/", f"/{PROJECT}/{into}/"
    parameters = [
        {**p, "name": new + str(p["name"])[len(old) :], "value": str(p["value"]).replace(old, new)}
        for p in selection.parameters
    ]
    return Selection(parameters, list(selection.secrets), list(selection.left_out))


def last_release(document: Mapping[str, Any], stack: str) -> str:
    """The tag of the newest succeeded release in the bundle's release history, or "": the image to rebuild
    for a recovery stack, whose registry starts empty."""
    from leanstack.host.agent.contract import releases_parameter

    for parameter in document["parameters"]:
        if parameter["name"] == releases_parameter(stack):
            try:
                history = json.loads(parameter["value"])
            except ValueError:
                return ""
            tags = [str(r.get("tag")) for r in history if isinstance(r, dict) and r.get("result") == "succeeded"]
            tag = tags[-1] if tags else ""
            return tag if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) else ""
    return ""


def rehome_arns(text: str, new_arns: Mapping[str, str]) -> str:
    """Every Secrets Manager ARN in `text` that names a written secret, as that secret's new ARN."""

    def replace(match: re.Match[str]) -> str:
        arn = match.group(0)
        for name, new in new_arns.items():
            if names_secret(arn, name):
                return new
        return arn

    return SECRET_ARN.sub(replace, text)


def previous_versions(selection: Selection, ssm: Any, secretsmanager: Any) -> list[tuple[str, str, str]]:
    """(kind, name, the version a write replaces or "new") for each value to write."""
    rows: list[tuple[str, str, str]] = []
    for parameter in selection.parameters:
        try:
            version = f"version {ssm.get_parameter(Name=parameter['name'])['Parameter']['Version']}"
        except ssm.exceptions.ParameterNotFound:
            version = "new"
        rows.append(("ssm", str(parameter["name"]), version))
    for secret in selection.secrets:
        try:
            described = secretsmanager.describe_secret(SecretId=secret["name"])
        except secretsmanager.exceptions.ResourceNotFoundException:
            version = "new"
        else:
            current = [v for v, stages in described.get("VersionIdsToStages", {}).items() if "AWSCURRENT" in stages]
            version = f"version {current[0]}" if current else "no current version"
        rows.append(("secretsmanager", str(secret["name"]), version))
    return rows


def write_secrets(secrets: Sequence[Mapping[str, Any]], secretsmanager: Any) -> dict[str, str]:
    """Write the secrets; returns each one's ARN where it now lives."""
    arns: dict[str, str] = {}
    for secret in secrets:
        value: dict[str, Any] = (
            {"SecretString": secret["string"]}
            if "string" in secret
            else {"SecretBinary": base64.b64decode(secret["binary"])}
        )
        try:
            arn = secretsmanager.describe_secret(SecretId=secret["name"])["ARN"]
        except secretsmanager.exceptions.ResourceNotFoundException:
            arn = secretsmanager.create_secret(Name=secret["name"], **value)["ARN"]
        else:
            secretsmanager.put_secret_value(SecretId=arn, **value)
        arns[str(secret["name"])] = str(arn)
    return arns


def write_parameters(parameters: Sequence[Mapping[str, Any]], ssm: Any) -> None:
    for parameter in parameters:
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


def rehome_stack_file(into: str, new_arns: Mapping[str, str], repo: Path | None) -> list[str]:
    """Point stacks/Pulumi.<into>.yaml's references to the written secrets at their new ARNs, in place
    (a text edit: comments and order kept). Returns the ARNs replaced."""
    from leanstack.mocks import stack_file

    path = stack_file(into, repo)
    if not path.exists():
        raise SealedError(f"--into {into}: no stacks/{path.name} (write it first: python -m leanstack recover init)")
    text = path.read_text(encoding="utf-8")
    updated = rehome_arns(text, new_arns)
    replaced = sorted({m.group(0) for m in SECRET_ARN.finditer(text)} - set(SECRET_ARN.findall(updated)))
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return replaced


def unresolved_arns(into: str, region: str, new_arns: Mapping[str, str], repo: Path | None) -> list[str]:
    """Secret ARNs in the recovery stack file that name no secret this restore wrote there."""
    from leanstack.mocks import stack_file

    found = SECRET_ARN.findall(stack_file(into, repo).read_text(encoding="utf-8"))
    return sorted({arn for arn in found if arn not in new_arns.values() or f":{region}:" not in arn})


def confirm_on_terminal(question: str, use_stdin: bool) -> bool:
    """y/N from stdin, or from the terminal when stdin carried the key."""
    try:
        if use_stdin:
            print(question, end=" ", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
        else:
            with open("/dev/tty", encoding="utf-8") as tty:
                print(question, end=" ", file=sys.stderr, flush=True)
                answer = tty.readline()
    except OSError:
        raise SealedError("no terminal to confirm the writes on: pass --yes") from None
    return answer.strip().lower() in ("y", "yes")


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
    restore.add_argument(
        "--key-file",
        help=f"the recovery private key (PEM, encrypted or not: the passphrase is asked, or ${PASSPHRASE_ENV}); "
        "default: read from stdin",
    )
    restore.add_argument(
        "--into",
        metavar="STACK",
        help="write them as this stack's (e.g. STACK-recovery from `recover init`): /leanstack/STACK/... "
        "parameters move to /leanstack/<this stack>/..., and stacks/Pulumi.<this stack>.yaml gets the secrets' "
        "new ARNs",
    )
    restore.add_argument("--dry-run", action="store_true", help="list the names only, write nothing")
    restore.add_argument("--yes", action="store_true", help="write without asking (scripts)")
    return parser


def main(argv: Sequence[str], session: Any = None, repo: Path | None = None) -> int:
    """`argv` starts after `secrets`. `session` is a boto3 session, `repo` the checkout (tests pass theirs)."""
    args = _parser().parse_args(list(argv))
    try:
        return restore(args, session, repo)
    except SealedError as error:
        print(f"leanstack: secrets restore: {error}", file=sys.stderr)
        return 2


def restore(args: argparse.Namespace, session: Any, repo: Path | None = None) -> int:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        from leanstack.deploy import NEEDS_BOTO3

        raise SealedError(NEEDS_BOTO3) from None

    if args.into is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.into):
        raise SealedError(f"--into: got {args.into!r}; expected a stack name (letters, digits, '.', '_', '-')")
    if args.into == args.stack:
        raise SealedError(f"--into: {args.into!r} is the stack itself; name the recovery stack, or leave it out")
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
    key = load_private_key(pem, ask_passphrase)
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
        if document.get("stack") != args.stack or bundle.get("stack") != args.stack:
            raise SealedError(f"the bundle is of stack {document.get('stack')!r}, not {args.stack!r}")
        check_stamp(chosen, bundle, document)
        if args.into:
            from leanstack.mocks import stack_file

            if not stack_file(args.into, repo).exists():
                raise SealedError(
                    f"--into {args.into}: no stacks/Pulumi.{args.into}.yaml (write it first: "
                    f"python -m leanstack recover init {args.stack}); nothing written"
                )
        selection = select_owned(document, args.stack, listed_secret_arns(args.stack, repo))
        if args.into:
            selection = moved(selection, args.stack, args.into)
        ssm = session.client("ssm", region_name=region)
        secretsmanager = session.client("secretsmanager", region_name=region)
        rows = previous_versions(selection, ssm, secretsmanager)
        verb = "would write" if args.dry_run else "to write"
        print(f"s3://{args.bucket}/{chosen} (sealed {document['created']}): {verb} in {region}:")
        for kind, name, version in rows:
            print(f"  {kind}  {name}  (replaces: {version})")
        for name, why in selection.left_out:
            print(f"  left out  {name}: {why}")
        if tag := last_release(document, args.stack):
            print(f"{args.stack} last ran release {tag} (its release history is left to the stack's own deploys)")
        if args.dry_run or not rows:
            print("nothing written" if not rows else "dry run: nothing written")
            return 0
        if not args.yes and not confirm_on_terminal(
            f"Write these {len(rows)} values? [y/N]", args.key_file is not None
        ):
            print("nothing written")
            return 1
        new_arns = write_secrets(selection.secrets, secretsmanager)
        parameters = selection.parameters
        if args.into:
            # References to the old secrets inside the values, and in the recovery stack file, follow them.
            parameters = [{**p, "value": rehome_arns(str(p["value"]), new_arns)} for p in parameters]
            for arn in rehome_stack_file(args.into, new_arns, repo):
                print(f"  stacks/Pulumi.{args.into}.yaml: {arn} -> {rehome_arns(arn, new_arns)}")
            for arn in unresolved_arns(args.into, region, new_arns, repo):
                print(
                    f"  stacks/Pulumi.{args.into}.yaml still names {arn}: not in the bundle; create that secret "
                    f"in {region} and put its ARN there before pulumi up",
                    file=sys.stderr,
                )
        write_parameters(parameters, ssm)
        print(f"restored {len(rows)} values")
    except (BotoCoreError, ClientError) as error:
        print(f"leanstack: secrets restore: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0
