"""leanstack: Pulumi components for a lean single-region stack, and the tooling around them.

The package holds the library and the tools, one room each:

- `leanstack.components`: the Pulumi components and their Args (the library);
- `leanstack.config`: the config model (Pulumi-free), which the components and the tools both read;
- `leanstack.host`: what runs on the host (nginx, cloud-init, the backup and deploy tools);
- `leanstack.policy`: the CrossGuard policy pack's rules;
- the tooling modules here: plan, diff, cost, runbook, deploy, init and the CLI
  (`python -m leanstack`, which prints its commands).
"""

from pathlib import Path

__version__ = "0.1.0"

# The rooms at the top of a checkout, which enter the package through symlinks in leanstack/ (a
# wheel holds them as plain folders).
ROOMS = ("components", "config", "host", "policy")


def room_link_problem(package: Path) -> str | None:
    """Why the rooms are missing from `package` (one line, with the fix), or None when they are there.

    A checkout made with git's core.symlinks=false (Windows' default) holds each link as a small
    text file naming its target: nothing would import, and a wheel built from it would lack the rooms.
    """
    broken = [room for room in ROOMS if not (package / room).is_dir()]
    if not broken:
        return None
    return (
        f"leanstack: {', '.join(f'leanstack/{room}' for room in broken)} should be symlinks to the folders "
        "at the top of the checkout but are not (a checkout with core.symlinks=false, Windows' default): "
        "run `git config core.symlinks true` and check out again (`git checkout -- leanstack`)"
    )


if (_problem := room_link_problem(Path(__file__).resolve().parent)) is not None:
    raise ImportError(_problem)
