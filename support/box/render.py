"""The box's user data: the stack's real one, rendered by the Pulumi program under mocks,
with the few changes a box on this machine needs (SUBSTITUTIONS, each named and narrow),
and the seed that puts in moto what `pulumi up` would have created before the host booted.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from leanstack.host.render import ORIGIN_PULL_CA_PEM
from leanstack.mocks import StackRun, run_program
from support.box.packages import debian_packages
from support.nginx_harness import Pki, make_pki

# The local registry standing in for ECR, on the box's loopback (docker pulls from a loopback
# registry over plain http without configuration).
LOCAL_REGISTRY = "127.0.0.1:5000"

# Everything the box changes in the rendered user data; nothing else differs.
SUBSTITUTIONS = (
    "packages: AL2023's names replaced by Debian's (support/box/packages.py)",
    "the origin-pull CA file: Cloudflare's CA replaced by the box's test CA, which issued BOX_CLIENT_CERT",
    f"the ECR registry host replaced by the box's registry, {LOCAL_REGISTRY}",
)
CLIENT_CA_PATH = "/etc/nginx/tls/cloudflare-origin-pull-ca.pem"


@dataclass(frozen=True)
class BoxInput:
    """What the box boots from and what is seeded before it boots."""

    user_data: bytes  # gzipped cloud-config, as EC2 hands it to cloud-init
    cloud_config: str
    meta_data: str
    seed: dict[str, Any]
    hostnames: tuple[str, ...]
    health_path: str
    region: str
    backup_bucket: str
    database_host: str
    registry_repository: str  # the app's image repository in the box's registry
    pki: Pki


def host_user_data(run: StackRun) -> bytes:
    """The gzipped user data the program gives its single host."""
    encoded = run.one("aws:ec2/instance:Instance").inputs["userDataBase64"]
    return base64.b64decode(encoded)


def _env_file(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name] = shlex.split(value)[0] if value else ""
    return values


def substitute(cloud_config: str, *, client_ca_pem: str) -> str:
    """The rendered cloud-config with SUBSTITUTIONS applied; refuses a document they do not fit."""
    document = yaml.safe_load(cloud_config)
    document["packages"] = debian_packages(document["packages"])
    files = {entry["path"]: entry for entry in document["write_files"]}
    ca = files.get(CLIENT_CA_PATH)
    if ca is None or ca["content"] != ORIGIN_PULL_CA_PEM:
        raise SystemExit(f"box: the user data has no {CLIENT_CA_PATH} with Cloudflare's CA to replace")
    ca["content"] = client_ca_pem
    text = "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
    app = json.loads(files["/etc/leanstack/app.json"]["content"]) if "/etc/leanstack/app.json" in files else None
    if app is not None:
        registry = app["image"].split("/", 1)[0]
        text = text.replace(registry, LOCAL_REGISTRY)
    return text


def _parameter_value(resource_inputs: Mapping[str, Any], pki: Pki) -> str:
    name = resource_inputs["name"]
    if name.endswith("/tls/origin-cert"):
        return pki.origin_cert.read_text()
    if name.endswith("/tls/origin-key"):
        return pki.origin_key.read_text()
    value = resource_inputs.get("insecureValue", resource_inputs.get("value"))
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str):
        raise SystemExit(f"box: no value to seed for the parameter {name}")
    return value


def box_input(stack: str, config: Mapping[str, Any], build: Path) -> BoxInput:
    run = run_program(stack, dict(config))
    user_data = host_user_data(run)
    rendered = gzip.decompress(user_data).decode()
    pki = make_pki(build / "pki", tuple(json.loads(json.dumps(_hostnames(rendered)))))
    cloud_config = substitute(rendered, client_ca_pem=pki.pull_ca.read_text())
    files = {entry["path"]: entry["content"] for entry in yaml.safe_load(cloud_config)["write_files"]}
    backup = _env_file(files.get("/etc/leanstack/backup.env", ""))
    app = json.loads(files.get("/etc/leanstack/app.json", "{}"))
    region = str(config["aws:region"])
    uploads = run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    buckets = [
        {"name": name, "region": region, "object_lock": False, "versioned": True}
        for name in sorted({u.inputs["bucket"] for u in uploads})
    ]
    if backup.get("BACKUP_BUCKET"):
        buckets.append(
            {
                "name": backup["BACKUP_BUCKET"],
                "region": backup["BACKUP_BUCKET_REGION"],
                "object_lock": True,
                "versioned": True,
            }
        )
    database = {
        "user": backup.get("DATABASE_USER") or app.get("database", {}).get("user", "app"),
        "name": backup.get("DATABASE_NAME") or app.get("database", {}).get("name", "app"),
        "password": secrets.token_urlsafe(24),
    }
    parameters = {p.inputs["name"]: _parameter_value(p.inputs, pki) for p in run.of_type("aws:ssm/parameter:Parameter")}
    # Where the database is (endpoint and the RDS-managed secret) is read at run time from SSM.
    database_parameter = backup.get("DATABASE_PARAMETER") or app.get("database", {}).get("parameter", "")
    where = json.loads(parameters[database_parameter]) if database_parameter else {}
    seeded_secrets = []
    if where.get("secret_arn"):
        # The RDS-managed secret's name is the ARN's last part (RDS adds no suffix to it).
        seeded_secrets.append(
            {
                "name": where["secret_arn"].split(":secret:", 1)[1],
                "value": json.dumps({"username": database["user"], "password": database["password"]}),
            }
        )
    seed = {
        "region": region,
        "buckets": buckets,
        "objects": [
            {"bucket": u.inputs["bucket"], "key": u.inputs["key"], "content": u.inputs["content"]} for u in uploads
        ],
        "parameters": [
            {"name": p.inputs["name"], "type": p.inputs["type"], "value": parameters[p.inputs["name"]]}
            for p in run.of_type("aws:ssm/parameter:Parameter")
        ],
        "secrets": seeded_secrets,
        "log_groups": sorted({g.inputs["name"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}),
        "database": database,
    }
    instance_id = "i-0" + secrets.token_hex(8)[:16]
    return BoxInput(
        user_data=gzip.compress(cloud_config.encode(), mtime=0),
        cloud_config=cloud_config,
        meta_data=f"instance-id: {instance_id}\nlocal-hostname: leanstack-{stack}-box\n",
        seed=seed,
        hostnames=_hostnames(rendered),
        health_path=app.get("health_path", "/"),
        region=region,
        backup_bucket=backup.get("BACKUP_BUCKET", ""),
        database_host=str(where.get("host", "")),
        registry_repository=app.get("image", ""),
        pki=pki,
    )


def _hostnames(cloud_config: str) -> tuple[str, ...]:
    nginx = next(
        e["content"] for e in yaml.safe_load(cloud_config)["write_files"] if e["path"] == "/etc/nginx/nginx.conf"
    )
    for line in nginx.splitlines():
        words = line.strip().rstrip(";").split()
        if words[:1] == ["server_name"] and words[1:] and words[1] != "_":
            return tuple(words[1:])
    raise SystemExit("box: the rendered nginx.conf names no server")
