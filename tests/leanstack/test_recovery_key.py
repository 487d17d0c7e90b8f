"""`python -m leanstack recovery-key new`: the printed halves belong together, and what
is sealed to the public half opens with the private one."""

from __future__ import annotations

import re

import pytest

from leanstack import sealed
from leanstack.__main__ import main
from leanstack.host.agent.seal import seal


def test_new_prints_a_matching_pair_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recovery-key", "new"]) == 0
    out = capsys.readouterr().out
    identifier = re.search(r"^Recovery key ([0-9a-f]{16}) \(RSA 4096\)\.$", out, re.MULTILINE)
    assert identifier is not None
    private_pem = re.search(r"-----BEGIN PRIVATE KEY-----\n.*?-----END PRIVATE KEY-----\n", out, re.DOTALL)
    assert private_pem is not None and out.count("BEGIN PRIVATE KEY") == 1
    public_line = out.rstrip("\n").rsplit("\n", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", public_line)
    key = sealed.load_private_key(private_pem.group(0).encode())
    assert sealed.private_key_id(key) == identifier.group(1)
    bundle = seal(b'{"stack": "prod"}', public_line, "prod", "2026-12-01T00:00:00Z")
    assert bundle["key_id"] == identifier.group(1)
    assert sealed.open_bundle(bundle, key) == {"stack": "prod"}


def test_a_key_file_that_is_no_private_key_is_one_line() -> None:
    with pytest.raises(sealed.SealedError, match="the key file is not a PEM private key"):
        sealed.load_private_key(b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")


def test_unknown_actions_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["recovery-key", "rotate"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert (
        main(
            [
                "secrets",
                "restore",
                "prod",
                "--from-backup",
                "--bucket",
                "b",
                "--bucket-region",
                "eu-central-1",
                "--stamp",
                "yesterday",
                "--key-file",
                "/nonexistent",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == (
        "leanstack: secrets restore: --stamp must look like 20260101T031500Z, not 'yesterday'\n"
    )
