"""The agent's commands installed as the host installs them, for tests and benchmarks to run.

`agent_script("leanstack-backup")` is the real entry script (`leanstack.host.shipping`), in a
scratch directory whose `leanstack_agent` is the repository's host/agent: what runs is the
code under review, started the way the host starts it.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from leanstack.host.agent.contract import AGENT_PACKAGE, COMMANDS
from leanstack.host.shipping import AGENT_SOURCE_DIR, entry_script


@functools.cache
def _installed() -> Path:
    root = Path(tempfile.mkdtemp(prefix="leanstack-agent-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "lib").mkdir()
    (root / "lib" / AGENT_PACKAGE).symlink_to(AGENT_SOURCE_DIR, target_is_directory=True)
    (root / "bin").mkdir()
    for command in COMMANDS:
        script = root / "bin" / command.name
        script.write_text(entry_script(command, lib_dir=str(root / "lib")), encoding="utf-8")
        script.chmod(0o755)
    return root


def agent_script(name: str) -> Path:
    """The entry script of the agent's command `name` (leanstack-backup, leanstack-app, ...)."""
    script = _installed() / "bin" / name
    if not script.exists():
        raise ValueError(f"{name} is not a command of the agent: {', '.join(c.name for c in COMMANDS)}")
    return script
