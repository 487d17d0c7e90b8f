"""The recovery sheet followed literally: its "Region down" branch, run as written, against moto in two regions.

The sheet is generated from a stack of this test's own (not stacks/): storage on, a recovery key, an
app secret in SSM and one in Secrets Manager. Its region, ap-south-1, then goes down: every request
signed for it fails as an unreachable endpoint does. Each command of the branch is then run as the
sheet prints it, in order, with the shell variables it sets:
- `python -m leanstack ...` through the CLI itself (leanstack.__main__.main), in a checkout of this
  test's own;
- `aws ...` through botocore against moto (each operation and option translated by botocore's own
  service model; `--query` with jmespath, as the CLI does; `aws s3 ls` and `aws s3 sync`, the CLI's
  own commands, by the S3 calls they make);
- `grep`, `tail`, `wc -l` in pipes, by what they do.
What cannot run here is stood in for, and said so where it happens: `pulumi up` of the recovery stack
(the program is run under the mocks and the resources the later steps use are made in moto as it
would make them: the registry, the uploads bucket, the host, the parameters it owns), `docker
buildx build --push` (the image's manifest is put into the registry), Cloudflare and Pulumi state
(`pulumi state delete`), `git checkout`, `docker login`, the SSM session, and the on-host database
restore (`leanstack-restore --from-stack`), which the host tests cover (tests/host/test_restore.py).
The test ends with the recovery app's config, secrets, image and files all in the recovery region.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import shlex
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import jmespath  # type: ignore[import-untyped]
import pytest
import yaml
from botocore import xform_name
from botocore.endpoint import Endpoint
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer

from leanstack import mocks, recover, sealed
from leanstack.__main__ import main as leanstack_cli
from leanstack.config import load_stack_config
from leanstack.host.agent.seal_job import seal_secrets
from leanstack.mocks import read_stack_config, run_program
from leanstack.recovery_key import new_keypair
from leanstack.runbook import HOST, Step, recovery_branches
from tests.components.helpers import written_file
from tests.conftest import starts_servers
from tests.host.helpers import FAKE_CREDENTIALS
from tests.policy.helpers import host_role_documents
from tests.policy.iam_evaluator import allowed

# Regions no other test of the host suite uses: moto keeps one state per process, whatever the server.
DOWN, BACKUP = "ap-south-1", "ap-northeast-1"
ACCOUNT = "123456789012"
RELEASE = "0123456789ab"


def fixture_stack(public_key: str, mail_arn: str) -> dict[str, Any]:
    return {
        "aws:region": DOWN,
        "leanstack:domain": "acme-shop.org",
        "leanstack:alertEmail": "ops@acme-shop.org",
        "leanstack:owner": "Ada, ada@acme-shop.org",
        "leanstack:recovery": {"rtoMinutes": 240, "rpoHours": 25, "secondPerson": "Grace, grace@example.com"},
        "leanstack:cdn": {"zoneId": "a" * 32},
        "leanstack:backup": {"region": BACKUP, "recoveryPublicKey": public_key},
        "leanstack:storage": {"enabled": True},
        "leanstack:app": {
            "port": 3000,
            "secrets": {"STRIPE_KEY": "/leanstack/prod/app/STRIPE_KEY", "MAIL_PASSWORD": mail_arn},
        },
    }


@pytest.fixture(scope="module")
@starts_servers
def endpoint() -> Iterator[str]:
    """A moto server of this test's own (its state is the process's: the regions above keep it apart)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Region:
    """Botocore clients of one region on moto."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        )
        self.endpoint, self.region = endpoint, region

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region, endpoint_url=self.endpoint)  # type: ignore[call-overload]


def region_down(monkeypatch: pytest.MonkeyPatch, region: str) -> list[str]:
    """Every request signed for `region` fails as an unreachable endpoint; returns what was attempted."""
    attempted: list[str] = []
    send = Endpoint._send  # type: ignore[attr-defined]

    def refuse(self: Endpoint, request: Any) -> Any:
        if f"/{region}/" in str(request.headers.get("Authorization", b"")):
            attempted.append(request.url)
            raise EndpointConnectionError(endpoint_url=request.url)
        return send(self, request)

    monkeypatch.setattr(Endpoint, "_send", refuse)
    return attempted


# --- the AWS CLI, through botocore -------------------------------------------------------------


def _options(words: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {"": []}
    current = ""
    for word in words:
        if word.startswith("--"):
            current = word[2:]
            options[current] = []
        else:
            options[current].append(word)
    return options


def _shorthand(text: str) -> dict[str, Any]:
    """The CLI's shorthand for a structure: Name=a,Values=b,c (a part without '=' extends the last list)."""
    found: dict[str, Any] = {}
    key = ""
    for part in text.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            found[key] = value
        else:
            found[key] = [*([found[key]] if isinstance(found[key], str) else found[key]), part]
    return found


def _value(shape: Any, values: list[str]) -> Any:
    if shape.type_name == "boolean":
        return True
    if shape.type_name == "list":
        member = shape.member
        items: list[Any] = [_shorthand(v) if member.type_name == "structure" else v for v in values]
        if member.type_name == "structure":
            for item in items:
                for key, value in item.items():
                    if member.members[key].type_name == "list" and isinstance(value, str):
                        item[key] = [value]
        return items
    if shape.type_name == "integer":
        return int(values[0])
    return values[0]


def _text(result: Any) -> str:
    """--output text: rows of tab-separated values."""
    if result is None:
        return "None"
    if isinstance(result, list):
        if result and all(isinstance(r, list) for r in result):
            return "\n".join("\t".join(map(str, row)) for row in result)
        return "\t".join(map(str, result))
    return str(result)


class AwsCli:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.model = botocore.session.get_session()

    def __call__(self, words: list[str]) -> str:
        service, command, options = words[1], words[2], _options(words[3:])
        region = options.pop("region")[0]
        clients = Region(self.endpoint, region)
        if service == "s3":
            return self.s3(command, options, clients)
        assert options.pop("") == [], words
        query = options.pop("query", [None])[0]
        assert options.pop("output", ["text"]) == ["text"]
        model = self.model.get_service_model({"s3api": "s3"}.get(service, service))
        operation = {xform_name(o, "-"): o for o in model.operation_names}[command]
        shape = model.operation_model(operation).input_shape
        assert shape is not None
        members = {xform_name(m, "-"): m for m in shape.members}
        params = {members[o]: _value(shape.members[members[o]], v) for o, v in options.items()}
        result = getattr(clients.client({"s3api": "s3"}.get(service, service)), xform_name(operation))(**params)
        result.pop("ResponseMetadata", None)
        return _text(jmespath.search(query, result) if query else result)

    def s3(self, command: str, options: dict[str, list[str]], clients: Region) -> str:
        s3 = clients.client("s3")
        if command == "ls":
            (url,) = options.pop("", [])
            recursive = "recursive" in options
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            lines = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    name = item["Key"] if recursive else item["Key"][len(prefix) :]
                    if not recursive and "/" in name:
                        continue
                    lines.append(f"{item['LastModified']:%Y-%m-%d %H:%M:%S} {item['Size']:>10} {name}")
            return "\n".join(lines)
        assert command == "sync", command
        source, target = (u.removeprefix("s3://").rstrip("/") for u in options.pop("", []))
        source_s3 = Region(self.endpoint, options.pop("source-region")[0]).client("s3")
        there = {
            item["Key"]: item["ETag"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target)
            for item in page.get("Contents", [])
        }
        copied = []
        for page in source_s3.get_paginator("list_objects_v2").paginate(Bucket=source):
            for item in page.get("Contents", []):
                if there.get(item["Key"]) != item["ETag"]:
                    s3.copy_object(Bucket=target, Key=item["Key"], CopySource={"Bucket": source, "Key": item["Key"]})
                    copied.append(f"copy: s3://{source}/{item['Key']} to s3://{target}/{item['Key']}")
        return "\n".join(copied)


# --- the shell -----------------------------------------------------------------------------


class Operator:
    """Runs the sheet's laptop commands as written, keeping the shell variables they set."""

    def __init__(self, endpoint: str, repo: Path, fill: dict[str, str]) -> None:
        self.aws = AwsCli(endpoint)
        self.repo, self.fill = repo, fill
        self.variables: dict[str, str] = {}
        self.printed: list[str] = []
        self.not_run: list[str] = []
        self.stand_ins: dict[str, Any] = {}

    def expand(self, line: str) -> str:
        line = re.sub(r"\$\{(\w+)%%/\*\}", lambda m: self.variables[m.group(1)].split("/", 1)[0], line)
        return re.sub(r"\$(\w+)", lambda m: self.variables[m.group(1)], line)

    def run(self, line: str) -> str:
        assignment = re.fullmatch(r"(\w+)=\$\((.*)\)", line)
        if assignment:
            self.variables[assignment.group(1)] = self.run(assignment.group(2)).strip()
            return ""
        if re.fullmatch(r"\w+=\S+", line):
            name, value = line.split("=", 1)
            self.variables[name] = self.expand(value)
            return ""
        lexer = shlex.shlex(self.expand(line), posix=True, punctuation_chars="|")
        lexer.whitespace_split = True
        stages: list[list[str]] = [[]]
        for token in lexer:
            if token == "|":
                stages.append([])
            else:
                stages[-1].append(token)
        # The placeholders the sheet asks to fill in (REPLICA: output uploadsReplicaBucket).
        words = [re.sub(r"\b[A-Z]+\b", lambda m: self.fill.get(m.group(0), m.group(0)), w) for w in stages[0]]
        output = self.command(words)
        for stage in stages[1:]:
            lines = output.splitlines()
            if stage[0] == "grep":
                output = "\n".join(x for x in lines if stage[1] in x)
            elif stage[:2] == ["tail", "-1"]:
                output = lines[-1] if lines else ""
            elif stage[:2] == ["wc", "-l"]:
                output = str(len(lines))
            elif stage[:2] == ["docker", "login"]:
                self.not_run.append(" ".join(stage))  # no registry to log in to: the push is stood in for
            else:
                raise AssertionError(f"the sheet pipes into {stage}, which this test cannot follow")
        self.printed += output.splitlines()
        return output

    def command(self, words: list[str]) -> str:
        if words[0] == "aws":
            if words[1:3] == ["ecr", "get-login-password"]:
                return "password"
            return self.aws(words)
        if words[:3] == ["python", "-m", "leanstack"]:
            out = io.StringIO()
            with redirect_stdout(out):
                code = leanstack_cli(words[3:])
            assert code == 0, f"{' '.join(words)} exited {code}"
            return out.getvalue()
        if words[0] == "grep" and words[1] == "-o":
            return "\n".join(re.findall(words[2], (self.repo / words[3]).read_text()))
        if words[0] == "pulumi" and words[1:3] == ["up", "--stack"]:
            return str(self.stand_ins["pulumi up"](words[3]))
        if words[0] == "pulumi" and words[1:3] == ["stack", "output"]:
            return str(self.stand_ins["outputs"][words[5]])
        if words[:3] == ["docker", "buildx", "build"]:
            return str(self.stand_ins["docker push"](words[words.index("--tag") + 1]))
        # Cloudflare and Pulumi's state (the DNS records), `pulumi stack init` and `git checkout`.
        assert words[0] in ("pulumi", "git"), words
        self.not_run.append(" ".join(words))
        return ""


def seed_the_old_region(down: Region, backup: Region, public_key: str) -> dict[str, Any]:
    """What the stack had before its region went: its values, its backups and the replica of its files."""
    secrets, ssm = down.client("secretsmanager"), down.client("ssm")
    mail_arn = secrets.create_secret(Name="prod/mail", SecretString="mail-password")["ARN"]
    ssm.put_parameter(Name="/leanstack/prod/app/STRIPE_KEY", Value="sk_live_1", Type="SecureString")
    ssm.put_parameter(Name="/leanstack/prod/app/config", Value="{}", Type="String")
    ssm.put_parameter(
        Name="/leanstack/prod/releases", Type="String", Value=json.dumps([{"tag": RELEASE, "result": "succeeded"}])
    )
    s3 = backup.client("s3")
    where = {"LocationConstraint": BACKUP}
    backups = f"leanstack-prod-backups-{uuid.uuid4().hex[:8]}"
    replica = f"leanstack-prod-uploads-replica-{uuid.uuid4().hex[:8]}"
    for bucket in (backups, replica):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=where)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=backups, Key="backups/app/2026-12-05T03-30-00Z.manifest.json", Body=b"{}")
    files = {"avatars/1.png": b"\x89PNG one", "avatars/2.png": b"\x89PNG two", "invoices/2026/7.pdf": b"%PDF seven"}
    s3.put_object(Bucket=replica, Key="avatars/1.png", Body=b"an older version")
    for key, body in files.items():
        s3.put_object(Bucket=replica, Key=key, Body=body)
    return {"mail_arn": mail_arn, "backups": backups, "replica": replica, "files": files}


def seal(endpoint: str, public_key: str, backups: str, mail_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's nightly sealed copy, made by the host's own program before the region went."""
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "STACK": "prod",
        "RECOVERY_PUBLIC_KEY": public_key,
        "AWS_REGION": DOWN,
        "BACKUP_BUCKET": backups,
        "BACKUP_BUCKET_REGION": BACKUP,
        "SECRET_IDS": mail_arn,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seal_secrets(env, datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=3))


def test_the_region_down_branch_brings_the_app_up_in_the_backup_region(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    down, backup = Region(endpoint, DOWN), Region(endpoint, BACKUP)
    private_pem, public_key = new_keypair()
    before = seed_the_old_region(down, backup, public_key)
    stack = fixture_stack(public_key, before["mail_arn"])
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": stack}))

    # The CLI's stack files are this checkout's (the program stays the repository's).
    def stack_file(name: str, repo: Path | None = None) -> Path:
        return (repo or tmp_path) / "stacks" / f"Pulumi.{name}.yaml"

    monkeypatch.setattr(mocks, "stack_file", stack_file)
    monkeypatch.setattr(recover, "stack_file", stack_file)
    seal(endpoint, public_key, before["backups"], before["mail_arn"], monkeypatch)
    monkeypatch.setenv("AWS_REGION", BACKUP)

    run = run_program("prod", stack)
    (branch,) = [b for b in recovery_branches(run, load_stack_config(stack, "prod")) if b.heading == "Region down"]
    # The disaster.
    attempted = region_down(monkeypatch, DOWN)
    with pytest.raises(EndpointConnectionError):
        down.client("ssm").get_parameter(Name="/leanstack/prod/app/STRIPE_KEY")
    probed = list(attempted)

    operator = Operator(endpoint, tmp_path, {"REPLICA": before["replica"]})
    recovery: dict[str, Any] = {}

    def pulumi_up(name: str) -> str:
        """`pulumi up --stack prod-recovery`, stood in for: the program under the mocks, and in moto what of
        it the later steps use, named as the program names it."""
        assert name == "prod-recovery"
        config = read_stack_config(name, tmp_path)
        recovery["run"] = run = run_program(name, config)
        ecr, s3, ssm = backup.client("ecr"), backup.client("s3"), backup.client("ssm")
        (repository,) = run.of_type("aws:ecr/repository:Repository")
        ecr.create_repository(repositoryName=repository.inputs["name"], imageTagMutability="IMMUTABLE")
        uploads = next(r for r in run.of_type("aws:s3/bucket:Bucket") if r.name == "storage-uploads")
        bucket = f"{uploads.inputs['bucketPrefix']}{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": BACKUP})
        for parameter in run.of_type("aws:ssm/parameter:Parameter"):
            value = parameter.inputs.get("insecureValue") or parameter.inputs.get("value") or "x"
            ssm.put_parameter(Name=parameter.inputs["name"], Value=str(value), Type=parameter.inputs["type"])
        image = backup.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        tags = [{"Key": "Name", "Value": "leanstack-prod-recovery-host"}]
        backup.client("ec2").run_instances(
            ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
        )
        operator.stand_ins["outputs"] = {**run.outputs, "uploadsBucket": bucket}
        return ""

    def docker_push(reference: str) -> str:
        """`docker buildx build --push --tag REPOSITORY:TAG`, stood in for: the image's manifest in the registry."""
        repository, tag = reference.rsplit(":", 1)
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}
        backup.client("ecr").put_image(
            repositoryName=repository.split("/", 1)[1], imageTag=tag, imageManifest=json.dumps(manifest)
        )
        return ""

    operator.stand_ins.update({"pulumi up": pulumi_up, "docker push": docker_push})
    # The recovery key's private half, pasted when the restore asks; the operator answers y.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(private_pem.encode())))
    asked: list[str] = []

    def answer_yes(question: str, use_stdin: bool) -> bool:
        asked.append(question)
        return True

    monkeypatch.setattr(sealed, "confirm_on_terminal", answer_yes)

    steps: list[Step] = list(branch.steps)
    host_steps = [s for s in steps if s.where == HOST]
    for step in steps:
        if step.where == HOST:
            continue
        if "TAG" not in operator.variables and any("$TAG" in c for c in step.commands):
            # "TAG: the 12-character tag the restore printed"
            (line,) = [p for p in operator.printed if " last ran release " in p]
            operator.variables["TAG"] = line.split(" last ran release ", 1)[1].split()[0]
        for command in (*step.commands, *step.check_commands):
            if command.startswith("curl "):
                operator.not_run.append(command)  # through Cloudflare: the host tests check nginx
            elif "ssm start-session" in command:
                operator.not_run.append(command)  # interactive; the host step it opens is not run here
            else:
                operator.run(command)

    # The on-host step: the database restore from the old stack's dumps, covered by the host tests.
    (restore,) = host_steps
    assert restore.commands[0] == "sudo leanstack-restore --from-stack prod"
    assert asked == ["Write these 2 values? [y/N]"]
    assert operator.variables["TAG"] == RELEASE

    # The recovery app's config: its own values under its own path in the recovery region, and the
    # app config document Pulumi wrote naming only those and secrets in that region.
    ssm, secrets = backup.client("ssm"), backup.client("secretsmanager")
    got = ssm.get_parameter(Name="/leanstack/prod-recovery/app/STRIPE_KEY", WithDecryption=True)["Parameter"]
    assert got["Value"] == "sk_live_1"
    document = json.loads(ssm.get_parameter(Name="/leanstack/prod-recovery/app/config")["Parameter"]["Value"])
    new_mail = secrets.describe_secret(SecretId="prod/mail")["ARN"]
    assert document["secrets"] == {
        "STRIPE_KEY": "/leanstack/prod-recovery/app/STRIPE_KEY",
        "MAIL_PASSWORD": new_mail,
    }
    assert new_mail.startswith(f"arn:aws:secretsmanager:{BACKUP}:") and new_mail != before["mail_arn"]
    # The secrets: in the recovery region, and the recovery host's role may read exactly them.
    assert secrets.get_secret_value(SecretId=new_mail)["SecretString"] == "mail-password"
    documents = host_role_documents(recovery["run"])
    assert allowed(documents, "secretsmanager:GetSecretValue", new_mail)
    assert not allowed(documents, "secretsmanager:GetSecretValue", before["mail_arn"])
    parameter_arn = f"arn:aws:ssm:{BACKUP}:{ACCOUNT}:parameter/leanstack/prod-recovery/app/STRIPE_KEY"
    assert allowed(documents, "ssm:GetParameter", parameter_arn)
    # The image: the host runs the recovery region's registry, which has the release prod ran, deployed.
    image = json.loads(written_file(recovery["run"], "/etc/leanstack/app.json"))["image"]
    assert image.startswith(f"{ACCOUNT}.dkr.ecr.{BACKUP}.amazonaws.com/leanstack-prod-recovery-app"), image
    listed = backup.client("ecr").describe_images(repositoryName="leanstack-prod-recovery-app")["imageDetails"]
    assert RELEASE in {tag for detail in listed for tag in detail.get("imageTags", [])}
    # The files: every current file of the replica, byte for byte, in the new uploads bucket.
    s3 = backup.client("s3")
    uploads = operator.stand_ins["outputs"]["uploadsBucket"]
    for key, body in before["files"].items():
        assert s3.get_object(Bucket=uploads, Key=key)["Body"].read() == body
    # No command of the sheet needed the dead region: nothing was sent there after the probe.
    assert attempted == probed
    # What this test could not run, as listed in its docstring.
    kinds = {line.split()[0] + " " + line.split()[1] for line in operator.not_run}
    assert kinds == {"pulumi state", "pulumi stack", "git checkout", "aws ssm", "docker login"}, kinds
