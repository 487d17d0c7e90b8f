#!/usr/bin/python3
"""leanstack box: create in moto what `pulumi up` would have created before the host boots,
and in PostgreSQL the app's role and database as RDS would. Reads the JSON that
`python -m support.box up` wrote from the Pulumi program's resources and the rendered user data.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

import boto3


def wait_for_moto(port: int = 4566, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def seed_aws(seed: dict[str, Any]) -> None:
    region = seed["region"]
    for bucket in seed["buckets"]:
        s3 = boto3.client("s3", region_name=bucket["region"])
        extra: dict[str, Any] = {}
        if bucket["region"] != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": bucket["region"]}
        s3.create_bucket(Bucket=bucket["name"], ObjectLockEnabledForBucket=bucket["object_lock"], **extra)
        if bucket["versioned"] and not bucket["object_lock"]:
            s3.put_bucket_versioning(Bucket=bucket["name"], VersioningConfiguration={"Status": "Enabled"})
    for item in seed["objects"]:
        boto3.client("s3", region_name=region).put_object(
            Bucket=item["bucket"], Key=item["key"], Body=item["content"].encode()
        )
    ssm = boto3.client("ssm", region_name=region)
    for parameter in seed["parameters"]:
        ssm.put_parameter(Name=parameter["name"], Type=parameter["type"], Value=parameter["value"], Overwrite=True)
    secrets = boto3.client("secretsmanager", region_name=region)
    for secret in seed["secrets"]:
        secrets.create_secret(Name=secret["name"], SecretString=secret["value"])
    logs = boto3.client("logs", region_name=region)
    for group in seed["log_groups"]:
        logs.create_log_group(logGroupName=group)


def seed_database(database: dict[str, str]) -> None:
    sql = (
        f"CREATE ROLE \"{database['user']}\" LOGIN CREATEDB PASSWORD '{database['password']}';"
        f'CREATE DATABASE "{database["name"]}" OWNER "{database["user"]}";'
    )
    for statement in sql.rstrip(";").split(";"):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", statement], check=True
        )


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        seed = json.load(handle)
    wait_for_moto()
    seed_aws(seed)
    seed_database(seed["database"])
    print("leanstack box: moto and PostgreSQL seeded")


if __name__ == "__main__":
    main()
