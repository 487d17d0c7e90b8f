"""A copy of this repository as git sees it (tracked and untracked-but-not-ignored files), symlinks kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_repository(target: Path, *, commit: bool = False) -> Path:
    """Copy the working tree's files into `target`; with `commit`, make it a git repository of one commit."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, dest = REPO / name, target / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            dest.symlink_to(os.readlink(source))
        else:
            dest.write_bytes(source.read_bytes())
    if commit:
        git = ["git", "-C", str(target), "-c", "user.name=copy", "-c", "user.email=copy@example.org"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
    return target
