"""Sealed secrets wired (issue 18): backup.recoveryPublicKey installs the seal timer; the host may
create its stack's sealed copies, never read, overwrite or delete them; the bucket keeps them write-once."""

from __future__ import annotations

import json

import pytest

from leanstack.config import ConfigError, load_stack_config
from leanstack.mocks import StackRun
from tests.components.helpers import statements, user_data_of, written_file
from tests.conftest import RECOVERY_PUBLIC_KEY, merged, read_stack_config, run_with
from tests.policy.iam_evaluator import allowed

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/stripe-AbCdEf"
SEALED = {
    "leanstack:backup": {"recoveryPublicKey": RECOVERY_PUBLIC_KEY},
    "leanstack:app": {"secrets": {"STRIPE_KEY": SECRET}},
}


@pytest.fixture(scope="module")
def sealed() -> StackRun:
    return run_with(SEALED, "prod")


def host_documents(run: StackRun) -> list[str]:
    role = run.named("host-role")
    return [
        p.inputs["policy"]
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] in (role.id, role.inputs["name"])
    ]


def test_the_host_installs_the_seal_timer_with_the_key_and_the_apps_secrets(sealed: StackRun, prod: StackRun) -> None:
    env = written_file(sealed, "/etc/leanstack/sealed-secrets.env")
    assert RECOVERY_PUBLIC_KEY in env and f'SECRET_IDS="{SECRET}"' in env
    assert "leanstack-seal-secrets.timer" in json.dumps(user_data_of(sealed)["runcmd"])
    assert "leanstack-seal-secrets" not in json.dumps(user_data_of(prod)), "no key, no sealing"


def test_the_host_creates_its_own_sealed_copies_only(sealed: StackRun, prod: StackRun) -> None:
    documents = host_documents(sealed)
    bucket = f"arn:aws:s3:::{sealed.outputs['backupBucket']}"
    own = f"{bucket}/sealed-secrets/prod/20261201T000000Z.json"
    assert allowed(documents, "s3:PutObject", own)
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert not allowed(documents, action, own), action
    assert not allowed(documents, "s3:PutObject", f"{bucket}/sealed-secrets/dev/x.json")
    assert allowed(documents, "secretsmanager:DescribeSecret", SECRET)
    assert not allowed(
        host_documents(prod), "s3:PutObject", own.replace(sealed.outputs["backupBucket"], prod.outputs["backupBucket"])
    )


def test_the_bucket_keeps_sealed_copies_write_once_and_ages_them_like_the_dumps(sealed: StackRun) -> None:
    policy = {s["Sid"]: s for s in statements(sealed.named("backups-policy"))}
    deny = policy["DenyOverwritingSealedSecrets"]
    assert deny["Resource"].endswith("/sealed-secrets/prod/*") and deny["Effect"] == "Deny"
    rules = {r["id"]: r for r in sealed.named("backups-lifecycle").inputs["rules"]}
    aged = rules["age-out-backups-sealed-secrets"]
    assert aged["filter"]["prefix"] == "sealed-secrets/prod/"
    assert aged["expiration"] == rules["age-out-backups"]["expiration"]
    assert "remove-expired-delete-markers-sealed-secrets" in rules


def test_a_key_that_is_not_rsa_3072_or_more_is_refused() -> None:
    raw = merged(read_stack_config("dev"), {"leanstack:backup": {"recoveryPublicKey": "QUJD"}})
    with pytest.raises(
        ConfigError, match=r"^leanstack:backup\.recoveryPublicKey: got \"QUJD\"; expected the base64 line"
    ):
        load_stack_config(raw, "dev")


def test_the_registry_secret_is_sealed_with_the_apps_secrets() -> None:
    # Issue 21 item 8: app.registrySecretArn (the pull credentials of an image outside ECR)
    # was never sealed, so a region-down recovery could not pull the app.
    registry = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/registry-GhIjKl"
    run = run_with(merged(SEALED, {"leanstack:app": {"registrySecretArn": registry}}), "prod")
    env = written_file(run, "/etc/leanstack/sealed-secrets.env")
    assert f'SECRET_IDS="{SECRET},{registry}"' in env or f'SECRET_IDS="{registry},{SECRET}"' in env
    assert allowed(host_documents(run), "secretsmanager:DescribeSecret", registry)
