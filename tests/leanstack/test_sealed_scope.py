"""What a sealed restore may write is decided by the stack, never by the bundle: the Pulumi program's
own parameters are left to it, whatever the program creates (one list, checked against the program)."""

from __future__ import annotations

from pathlib import Path

from leanstack.config.naming import pulumi_owned_parameter
from leanstack.mocks import read_stack_config, run_program

SHIPPED = Path(__file__).resolve().parent.parent / "fixtures" / "shipped" / "stacks"


def test_every_parameter_the_program_creates_is_left_to_it_by_a_sealed_restore() -> None:
    config = read_stack_config("prod", SHIPPED.parent)
    config["leanstack:cache"] = {**(config.get("leanstack:cache") or {}), "enabled": True}
    run = run_program("prod", config)
    names = {str(r.inputs["name"]) for r in run.of_type("aws:ssm/parameter:Parameter")}
    # The app config, the release history, the cache token and the origin certificate and key.
    assert len(names) >= 5, names
    assert {name for name in names if not pulumi_owned_parameter("prod", name)} == set()
    # And an app value set with `config set` (what a bundle carries) is not.
    assert not pulumi_owned_parameter("prod", "/leanstack/prod/app/STRIPE_KEY")
    assert not pulumi_owned_parameter("dev", "/leanstack/prod/app/config")
