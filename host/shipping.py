"""How the agent (host/agent) reaches the host: its modules as text, fetched from the host-files
bucket and checked against their sha256 (`leanstack.host.boot`), installed as the package
`leanstack_agent` in `AGENT_LIB_DIR`; and one short entry script per command, written by
cloud-init, that puts that directory first on sys.path and calls the command's `main`.

Text, not an archive: the diff of a change to the host shows the lines that changed.
"""

from __future__ import annotations

import functools
from pathlib import Path

from leanstack.host.agent.contract import AGENT_LIB_DIR, AGENT_PACKAGE, Command
from leanstack.host.params import HostFile

AGENT_SOURCE_DIR = Path(__file__).resolve().parent / "agent"


@functools.cache
def agent_modules() -> tuple[HostFile, ...]:
    """Every module of the agent as the host installs it (read once: the bucket gets this same text)."""
    return tuple(
        HostFile(f"{AGENT_LIB_DIR}/{AGENT_PACKAGE}/{source.name}", source.read_text(encoding="utf-8"))
        for source in sorted(AGENT_SOURCE_DIR.glob("*.py"))
    )


def entry_script(command: Command, lib_dir: str = AGENT_LIB_DIR) -> str:
    """The command's entry script; `lib_dir` is where `leanstack_agent` is (tests install it elsewhere)."""
    return (
        "#!/usr/bin/python3\n"
        f'"""{command.name}: the agent\'s command; its code and --help are in {AGENT_PACKAGE}/{command.module}.py."""\n'
        "import sys\n"
        "\n"
        f"sys.path.insert(0, {lib_dir!r})\n"
        f"from {AGENT_PACKAGE}.{command.module} import main  # noqa: E402\n"
        "\n"
        "sys.exit(main(sys.argv))\n"
    )


def entry_file(command: Command) -> HostFile:
    return HostFile(command.path, entry_script(command), permissions="0755")
