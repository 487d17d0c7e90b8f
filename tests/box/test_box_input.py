"""What the box boots, checked without booting it: the stack's real user data, changed only by
the substitutions support/box/render.py names, and every package the hosts ask for mapped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from leanstack.host.render import ORIGIN_PULL_CA_PEM
from leanstack.mocks import StackRun
from support.box.packages import DEBIAN_PACKAGES, UnmappedPackage, debian_packages
from support.box.render import CLIENT_CA_PATH, LOCAL_REGISTRY, host_user_data, substitute
from tests.components.helpers import cloud_config

TEST_CA = "-----BEGIN CERTIFICATE-----\nTEST CA\n-----END CERTIFICATE-----\n"


def test_the_box_boots_the_rendered_user_data_changed_only_by_the_named_substitutions(dev: StackRun) -> None:
    rendered = gzip.decompress(host_user_data(dev)).decode()
    original = yaml.safe_load(rendered)
    boxed = yaml.safe_load(substitute(rendered, client_ca_pem=TEST_CA))
    assert boxed["packages"] == debian_packages(original["packages"])
    registry = json.loads(next(f for f in original["write_files"] if f["path"] == "/etc/leanstack/app.json")["content"])
    ecr = registry["image"].split("/", 1)[0]
    assert ecr.endswith(".amazonaws.com")
    changed = []
    for before, after in zip(original["write_files"], boxed["write_files"], strict=True):
        assert {k: v for k, v in before.items() if k != "content"} == {k: v for k, v in after.items() if k != "content"}
        if before["content"] != after["content"]:
            changed.append(before["path"])
            if before["path"] == CLIENT_CA_PATH:
                assert (before["content"], after["content"]) == (ORIGIN_PULL_CA_PEM, TEST_CA)
            else:
                assert after["content"] == before["content"].replace(ecr, LOCAL_REGISTRY)
    assert sorted(changed) == sorted([CLIENT_CA_PATH, "/etc/leanstack/app.json", "/root/.docker/config.json"])
    assert json.dumps(boxed["runcmd"]) == json.dumps(original["runcmd"])
    assert set(boxed) == set(original)


def test_a_document_without_cloudflares_ca_is_refused(dev: StackRun) -> None:
    rendered = gzip.decompress(host_user_data(dev)).decode().replace("BEGIN CERTIFICATE", "BEGIN CERTIFICATE ")
    with pytest.raises(SystemExit, match=r"cloudflare-origin-pull-ca\.pem"):
        substitute(rendered, client_ca_pem=TEST_CA)


@pytest.mark.parametrize("host", ["dev", "prod", "scale-web", "scale-jobs"])
def test_every_package_a_host_installs_has_a_debian_counterpart(
    host: str, dev: StackRun, prod: StackRun, scale: StackRun
) -> None:
    run = {"dev": dev, "prod": prod}.get(host, scale)
    packages = yaml.safe_load(cloud_config(run, host))["packages"]
    assert set(packages) <= set(DEBIAN_PACKAGES)
    assert debian_packages(packages)


def test_an_unmapped_package_is_named() -> None:
    with pytest.raises(UnmappedPackage, match=r"'postgresql18'.*support/box/packages\.py"):
        debian_packages(["nginx", "postgresql18"])


def test_the_stand_ins_are_not_in_the_host_files() -> None:
    """The box's own files stay under support/box: nothing of the host's is replaced on disk."""
    rootfs = Path(__file__).resolve().parents[2] / "support" / "box" / "rootfs"
    host_paths = {"/etc/nginx/nginx.conf", "/usr/local/sbin/leanstack-app", "/usr/local/bin/leanstack-backup"}
    assert not any((rootfs / path.lstrip("/")).exists() for path in host_paths)


def test_every_test_of_the_one_box_is_in_one_file_which_one_worker_runs() -> None:
    """The box is one container of one name: pytest-xdist hands a test file to one worker
    (`--dist loadfile`), so every test using the `box` fixture must sit in test_box.py."""
    import ast
    import tomllib

    tests = Path(__file__).resolve().parent.parent
    users = sorted(
        str(path.relative_to(tests))
        for path in tests.rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and any(a.arg == "box" for a in node.args.args)
    )
    assert users and set(users) == {"box/test_box.py"}
    pyproject = tomllib.loads((tests.parent / "pyproject.toml").read_text(encoding="utf-8"))
    addopts = pyproject["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert addopts[addopts.index("--dist") + 1] == "loadfile"
