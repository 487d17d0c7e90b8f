"""Issue 15, findings 6 and 7: `validate` refuses what the host, AWS, Cloudflare or Pulumi's parser would.

Finding 6: app variable names the host's tools interpret, names leanstack sets, a name in both
env and secrets, and SSM names AWS refuses passed `validate` and failed `plan` with a traceback.
Finding 7: time windows, region names, duplicate keys, YAML 1.1 booleans, cache versions and
hostnames the CDN certificate does not cover passed `validate`.

The last tests run `python -m leanstack validate` and `plan` in-process over every bad value in
the config tests: one line on stderr, exit 2, no traceback, for both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import leanstack.__main__ as cli
from leanstack.config import (
    AWS_REGIONS,
    RESERVED_ENV_NAMES,
    RESERVED_ENV_PREFIXES,
    guess_zone,
    load_stack_config,
    postgres_parameter_family,
)
from leanstack.config.stack_file import StackFileError, parse_stack_yaml
from leanstack.mocks import run_program
from tests.config.helpers import (
    BAD_ALERT_AND_RECOVERY_CONFIG,
    BAD_CONFIG,
    BAD_GROWTH_CONFIG,
    FIXTURES,
    dev_config,
    error_of,
    load,
)
from tests.conftest import merged, read_stack_config

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/stripe-AbCdEf"

# --------------------------------------------------------------------------- finding 6: app variables

BAD_APP_CONFIG: list[tuple[dict[str, Any], str]] = [
    (
        {"leanstack:app": {"secrets": {"DOCKER_HOST": "/leanstack/dev/app/docker"}}},
        "leanstack:app.secrets.DOCKER_HOST: not allowed: DOCKER_* names are not allowed: the docker CLI on the "
        "host reads it as its own setting (DOCKER_HOST redirects it); choose another name",
    ),
    (
        {"leanstack:app": {"env": {"PATH": "/opt/app/bin"}}},
        "leanstack:app.env.PATH: not allowed: the host's docker CLI and the container find their programs with "
        "it; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"HOME": "/app"}}},
        "leanstack:app.env.HOME: not allowed: the docker CLI reads its config from it, and the image sets it for "
        "the app; choose another name",
    ),
    (
        {"leanstack:app": {"secrets": {"LD_PRELOAD": "/leanstack/dev/app/x"}}},
        "leanstack:app.secrets.LD_PRELOAD: not allowed: LD_* names are not allowed: the dynamic loader interprets "
        "it (LD_PRELOAD runs code in every program started); choose another name",
    ),
    (
        {"leanstack:app": {"secrets": {"PORT": "/leanstack/dev/app/port"}}},
        "leanstack:app.secrets.PORT: not allowed: leanstack sets it to app.port; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"DATABASE_URL": "postgres://x"}}},
        "leanstack:app.env.DATABASE_URL: not allowed: DATABASE_* names are not allowed: leanstack sets "
        "DATABASE_HOST, _PORT, _NAME, _USER and _PASSWORD; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"REDIS_URL": "redis://x"}}},
        "leanstack:app.env.REDIS_URL: not allowed: reserved: leanstack will set it when the cache is on; "
        "choose another name",
    ),
    (
        {"leanstack:app": {"env": {"AWS_REGION": "us-east-1"}}},
        "leanstack:app.env.AWS_REGION: not allowed: AWS_* names are not allowed: reserved: leanstack will set the "
        "app's AWS settings; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"LEANSTACK_DOCKER": "/bin/sh"}}},
        "leanstack:app.env.LEANSTACK_DOCKER: not allowed: LEANSTACK_* names are not allowed: reserved for "
        "leanstack's own settings; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"HOSTNAME": "web"}}},
        "leanstack:app.env.HOSTNAME: not allowed: Docker sets it to the container's name; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"IFS": ","}}},
        "leanstack:app.env.IFS: not allowed: shells interpret it; choose another name",
    ),
    (
        {"leanstack:app": {"env": {"api_key": "x"}}},
        "leanstack:app.env.api_key: not allowed: expected upper-case letters, digits and '_', not starting with a "
        "digit, at most 64",
    ),
    (
        {"leanstack:app": {"env": {"STRIPE_KEY": "pk"}, "secrets": {"STRIPE_KEY": "/leanstack/dev/app/stripe"}}},
        "leanstack:app.secrets.STRIPE_KEY: also in app.env; a name may be in app.env or app.secrets, not both: "
        "remove one",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/a//b"}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/a//b"; expected an SSM parameter name such as '
        "/leanstack/prod/app/stripe-key (up to 15 parts of letters, digits, '_', '.' and '-', each after one '/') "
        "or a Secrets Manager ARN",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/leanstack/dev/app/"}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/leanstack/dev/app/"; expected an SSM parameter name such as '
        "/leanstack/prod/app/stripe-key (up to 15 parts of letters, digits, '_', '.' and '-', each after one '/') "
        "or a Secrets Manager ARN",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/leanstack/dev/stripe key"}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/leanstack/dev/stripe key"; expected an SSM parameter name such '
        "as /leanstack/prod/app/stripe-key (up to 15 parts of letters, digits, '_', '.' and '-', each after one "
        "'/') or a Secrets Manager ARN",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/" + "/".join("abcdefghijklmnop")}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"; expected an SSM parameter name '
        "such as /leanstack/prod/app/stripe-key (up to 15 parts of letters, digits, '_', '.' and '-', each after "
        "one '/') or a Secrets Manager ARN",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/AWS/reference/x"}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/AWS/reference/x"; expected an SSM parameter name not starting '
        "with aws or ssm (AWS reserves them)",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/ssm-params/x"}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/ssm-params/x"; expected an SSM parameter name not starting '
        "with aws or ssm (AWS reserves them)",
    ),
    (
        {"leanstack:app": {"secrets": {"STRIPE_KEY": "/" + "a" * 1011}}},
        'leanstack:app.secrets.STRIPE_KEY: got "/' + "a" * 75 + "...; expected an SSM parameter name of at most "
        "1011 characters (AWS's limit)",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_APP_CONFIG)
def test_app_variables_the_host_or_aws_would_misread_are_refused(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected


def test_every_reserved_name_and_prefix_is_refused_in_both_env_and_secrets() -> None:
    names = [*RESERVED_ENV_NAMES, *(prefix + "X" for prefix in RESERVED_ENV_PREFIXES)]
    for name in names:
        for section, value in (("env", "1"), ("secrets", "/leanstack/dev/app/x")):
            message = error_of({"leanstack:app": {section: {name: value}}})
            assert message.startswith(f"leanstack:app.{section}.{name}: not allowed: "), message


def test_names_an_app_runtime_uses_are_allowed() -> None:
    env = {"PYTHONUNBUFFERED": "1", "NODE_ENV": "production", "LANG": "C.UTF-8", "TZ": "UTC", "HTTPS_PROXY": "x"}
    secrets = {
        "STRIPE_KEY": "/leanstack/dev/app/stripe-key",
        "SENTRY_DSN": ARN,
        # 15 levels, AWS's maximum, under the stack's own path (the host reads nothing else).
        "DEEP": "/leanstack/dev/" + "/".join("abcdefghijklm"),
    }
    config = load({"leanstack:app": {"env": env, "secrets": secrets}})
    assert config.app.env == env and config.app.secrets == secrets


# --------------------------------------------------------------------------- finding 7: what AWS, Cloudflare refuse

BAD_AWS_CONFIG: list[tuple[dict[str, Any], str]] = [
    (
        {"leanstack:database": {"backupWindow": "25:00-26:00"}},
        'leanstack:database.backupWindow: got "25:00-26:00"; expected hh:mm-hh:mm in UTC, such as 02:00-03:00',
    ),
    (
        {"leanstack:database": {"backupWindow": "23:30-24:00"}},
        'leanstack:database.backupWindow: got "23:30-24:00"; expected hh:mm-hh:mm in UTC, such as 02:00-03:00',
    ),
    (
        {"leanstack:database": {"backupWindow": "02:00-02:20"}},
        'leanstack:database.backupWindow: got "02:00-02:20"; expected a window of at least 30 minutes',
    ),
    (
        {"leanstack:database": {"maintenanceWindow": "sun:24:00-sun:25:00"}},
        'leanstack:database.maintenanceWindow: got "sun:24:00-sun:25:00"; expected ddd:hh:mm-ddd:hh:mm in UTC, '
        "such as sun:04:00-sun:05:00",
    ),
    (
        {"leanstack:database": {"maintenanceWindow": "sun:04:00-sun:04:15"}},
        'leanstack:database.maintenanceWindow: got "sun:04:00-sun:04:15"; expected a window of at least 30 minutes',
    ),
    (
        # Across midnight: the daily backup window 23:30-00:30 meets Monday's 00:00-01:00.
        {"leanstack:database": {"backupWindow": "23:30-00:30", "maintenanceWindow": "mon:00:00-mon:01:00"}},
        'leanstack:database.backupWindow: got "23:30-00:30"; it overlaps maintenanceWindow "mon:00:00-mon:01:00"',
    ),
    (
        {"aws:region": "eu-central-9"},
        'aws:region: got "eu-central-9"; expected an AWS region the provider knows (pulumi_aws.Region), such as '
        "us-east-1; did you mean eu-central-1 or eu-central-2?",
    ),
    (
        {"leanstack:backup": {"region": "us-wst-2"}},
        'leanstack:backup.region: got "us-wst-2"; expected an AWS region the provider knows (pulumi_aws.Region), '
        "such as us-east-1; did you mean us-west-2?",
    ),
    (
        {"leanstack:cache": {"enabled": True, "engine": "redis", "engineVersion": "8.0"}},
        'leanstack:cache.engineVersion: got "8.0"; expected one of 6.2, 7.0, 7.1 for engine redis (Redis OSS ends '
        "at 7.1; Valkey has 8.x: set cache.engine: valkey)",
    ),
    (
        {"leanstack:cache": {"enabled": True, "engineVersion": "7.1"}},
        'leanstack:cache.engineVersion: got "7.1"; expected one of 7.2, 8.0, 8.1, 8.2, 9.0 for engine valkey',
    ),
    (
        {"leanstack:database": {"engineVersion": "13.4"}},
        'leanstack:database.engineVersion: got "13.4"; expected one of 14, 15, 16, 17 (or a minor version of one, '
        "such as 17.4)",
    ),
    (
        {"leanstack:hostnames": None},
        "leanstack:hostnames: missing, so dev.example.com and www.dev.example.com; www.dev.example.com is 2 levels "
        "under the zone example.com, and Cloudflare's Universal SSL certificate covers example.com and "
        "*.example.com only, so visitors would get a TLS error: set hostnames: [dev.example.com] (no www), or "
        "cdn.zoneName if the zone is dev.example.com, or cdn.advancedCertificate: true if a paid certificate "
        "covers it",
    ),
    (
        {"leanstack:hostnames": ["dev.example.com", "api.dev.example.com"]},
        'leanstack:hostnames[1]: got "api.dev.example.com"; api.dev.example.com is 2 levels under the zone '
        "example.com, and Cloudflare's Universal SSL certificate covers example.com and *.example.com only, so "
        "visitors would get a TLS error: remove it, or set cdn.zoneName if the zone is deeper, or "
        "cdn.advancedCertificate: true if a paid certificate covers it",
    ),
    (
        {"leanstack:cdn": {"zoneName": "other.com"}},
        'leanstack:cdn.zoneName: got "other.com"; expected the zone domain dev.example.com is in: dev.example.com '
        "or a parent of it",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_AWS_CONFIG)
def test_values_aws_or_cloudflare_would_refuse_are_refused(overrides: dict[str, Any], expected: str) -> None:
    assert error_of(overrides) == expected


def test_regions_are_the_providers_own_list() -> None:
    assert {"us-east-1", "eu-north-1", "ap-south-1", "sa-east-1", "ca-central-1"} <= set(AWS_REGIONS)
    assert load({"aws:region": "eu-north-1", "leanstack:backup": {"region": "eu-west-2"}}).region == "eu-north-1"


def test_cache_version_defaults_per_engine() -> None:
    assert load({"leanstack:cache": {"enabled": True, "engine": "redis"}}).cache.engine_version == "7.1"
    assert load({"leanstack:cache": {"enabled": True}}).cache.engine_version == "8.0"
    assert load({"leanstack:cache": {"enabled": True, "engineVersion": "8.2"}}).cache.engine_version == "8.2"


def test_hostnames_a_zone_of_their_own_or_a_paid_certificate_cover() -> None:
    # The zone is dev.example.com itself: www.dev.example.com is one level down, covered.
    own_zone = load({"leanstack:hostnames": None, "leanstack:cdn": {"zoneName": "dev.example.com"}})
    assert own_zone.hostnames == ("dev.example.com", "www.dev.example.com")
    paid = load({"leanstack:hostnames": None, "leanstack:cdn": {"advancedCertificate": True}})
    assert paid.hostnames == ("dev.example.com", "www.dev.example.com")
    apex = load({"leanstack:domain": "example.co.uk", "leanstack:hostnames": None})
    assert apex.hostnames == ("example.co.uk", "www.example.co.uk")


@pytest.mark.parametrize(
    ("domain", "zone"),
    [("example.com", "example.com"), ("dev.example.com", "example.com"), ("a.b.example.co.uk", "example.co.uk")],
)
def test_zone_guess(domain: str, zone: str) -> None:
    assert guess_zone(domain) == zone


# --------------------------------------------------------------------------- finding 7: the YAML Pulumi reads

FIXTURE_TEXT = (FIXTURES / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")

# (replace this, with that) in the fixture stack file, and the one line expected.
BAD_YAML: list[tuple[str, str, str]] = [
    (
        "  leanstack:alertEmail: ops@example.com\n",
        "  leanstack:alertEmail: ops@example.com\n  leanstack:alertEmail: other@example.com\n",
        "stacks/Pulumi.dev.yaml line 9: key 'leanstack:alertEmail' is given twice in one mapping (first on line 8); "
        "Pulumi refuses duplicate keys, so keep one",
    ),
    (
        "    multiAz: false\n",
        "    multiAz: false\n    multiAz: true\n",
        "stacks/Pulumi.dev.yaml line 20: key 'multiAz' is given twice in one mapping (first on line 19); "
        "Pulumi refuses duplicate keys, so keep one",
    ),
    (
        "    multiAz: false\n",
        "    multiAz: on\n",
        'stacks/Pulumi.dev.yaml line 19: unquoted on is a boolean in YAML 1.1 but the string "on" to Pulumi '
        "(YAML 1.2); write true or false, or quote it",
    ),
    (
        "    enabled: false\n",
        "    enabled: No\n",
        'stacks/Pulumi.dev.yaml line 25: unquoted No is a boolean in YAML 1.1 but the string "No" to Pulumi '
        "(YAML 1.2); write true or false, or quote it",
    ),
    (
        "    objectLockMode: GOVERNANCE\n",
        "    objectLockMode: y\n",
        'stacks/Pulumi.dev.yaml line 28: unquoted y is a boolean in YAML 1.1 but the string "y" to Pulumi '
        "(YAML 1.2); write true or false, or quote it",
    ),
    (
        "    backupRetentionDays: 1\n",
        "    backupRetentionDays: 1\n    backupWindow: 3:30-4:30\n    engineVersion: 1:30\n",
        'stacks/Pulumi.dev.yaml line 22: unquoted 1:30 is a base-60 number in YAML 1.1 but the string "1:30" to '
        "Pulumi (YAML 1.2); quote it",
    ),
]


def _stack_text(old: str, new: str) -> str:
    assert old in FIXTURE_TEXT
    return FIXTURE_TEXT.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "expected"), BAD_YAML)
def test_yaml_pulumi_reads_differently_is_refused_with_its_line(old: str, new: str, expected: str) -> None:
    with pytest.raises(StackFileError) as caught:
        parse_stack_yaml(_stack_text(old, new), "stacks/Pulumi.dev.yaml")
    assert str(caught.value) == expected


def test_quoted_and_yaml_1_2_values_read_the_same_in_both_parsers() -> None:
    text = _stack_text("    multiAz: false\n", '    multiAz: false\n    identifier: "on"\n    databaseName: "no"\n')
    assert parse_stack_yaml(text, "x")["leanstack:database"]["identifier"] == "on"
    assert parse_stack_yaml(FIXTURE_TEXT, "x") == read_stack_config("dev", FIXTURES)


# --------------------------------------------------------------------------- validate catches what plan fails on

ALL_BAD_OVERRIDES = [
    *BAD_CONFIG,
    *BAD_ALERT_AND_RECOVERY_CONFIG,
    *BAD_GROWTH_CONFIG,
    *BAD_APP_CONFIG,
    *BAD_AWS_CONFIG,
]


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_refusal(code: int, out: str, err: str, expected: str) -> None:
    assert "Traceback" not in out + err
    assert code == 2 and out == ""
    assert err == f"leanstack: {expected}\n", err


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_refuse_every_bad_value_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = dev_config()
    for overrides, expected in ALL_BAD_OVERRIDES:
        monkeypatch.setattr(cli, "read_stack_config", lambda stack, o=overrides: merged(base, o))
        _assert_one_line_refusal(*_run_cli([command, "dev"], capsys), expected)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_refuse_bad_yaml_in_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stacks").mkdir()
    stack_file = tmp_path / "stacks" / "Pulumi.dev.yaml"
    monkeypatch.setattr(cli, "read_stack_config", lambda stack: read_stack_config(stack, tmp_path))
    for old, new, expected in BAD_YAML:
        stack_file.write_text(_stack_text(old, new), encoding="utf-8")
        _assert_one_line_refusal(*_run_cli([command, "dev"], capsys), expected)


def test_what_validate_accepts_at_its_edges_plans(tmp_path: Path) -> None:
    """One program run with every edge value validate lets through: the plan must not fail on any."""
    shutil.copytree(FIXTURES / "stacks", tmp_path / "stacks")
    edges = {
        "aws:region": "eu-north-1",
        "leanstack:hostnames": None,
        "leanstack:cdn": {"zoneName": "dev.example.com"},
        "leanstack:app": {
            "env": {"PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", "HTTPS_PROXY": "http://proxy:3128"},
            "secrets": {
                "STRIPE_KEY": "/leanstack/dev/app/stripe-key",
                "SENTRY_DSN": ARN,
                # 15 levels, AWS's maximum, under the stack's own path (the host reads nothing else).
                "DEEP": "/leanstack/dev/" + "/".join("abcdefghijklm"),
            },
        },
        "leanstack:database": {"engineVersion": "16.4", "backupWindow": "23:30-00:00"},
        "leanstack:cache": {"enabled": True, "engine": "redis"},
        "leanstack:backup": {"region": "eu-west-2"},
    }
    raw = merged(read_stack_config("dev", tmp_path), edges)
    config = load_stack_config(raw, "dev")
    run = run_program("dev", raw)
    assert run.one("aws:rds/parameterGroup:ParameterGroup").inputs["family"] == "postgres16"
    assert run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs["engineVersion"] == "7.1"
    records = sorted(r.inputs["name"] for r in run.of_type("cloudflare:index/dnsRecord:DnsRecord"))
    assert records == sorted(config.hostnames) == ["dev.example.com", "www.dev.example.com"]


@pytest.mark.parametrize(("version", "family"), [("14", "postgres14"), ("17", "postgres17"), ("16.4", "postgres16")])
def test_the_parameter_family_follows_the_engine_major(version: str, family: str) -> None:
    config = load({"leanstack:database": {"engineVersion": version}})
    assert postgres_parameter_family(config.database.engine_version) == family


def test_a_command_string_is_shell_form_and_a_list_exec_form() -> None:
    """Issue 23 item 6: `bin/report --daily` became the one-element argv ["bin/report --daily"],
    a program that does not exist. As Docker's CMD: a string runs through /bin/sh -c."""
    config = load(
        {
            "leanstack:app": {
                "releaseCommand": "bin/migrate --verbose",
                "jobs": {
                    "report": {"schedule": "*-*-* 03:15:00", "command": "bin/report --daily && bin/cleanup"},
                    "exact": {"schedule": "*-*-* 04:00:00", "command": ["bin/report", "--daily"]},
                },
            }
        }
    )
    assert config.app.release_command == ("/bin/sh", "-c", "bin/migrate --verbose")
    assert config.app.jobs["report"].command == ("/bin/sh", "-c", "bin/report --daily && bin/cleanup")
    assert config.app.jobs["exact"].command == ("bin/report", "--daily")
    listed = load({"leanstack:app": {"releaseCommand": ["bin/migrate", "--verbose"]}})
    assert listed.app.release_command == ("bin/migrate", "--verbose")
