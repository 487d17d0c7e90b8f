"""Set-up time: a fresh clone to its first `make plan`, and the install step with pip against uv.

Prints, on this machine:

- the wall time from `git clone` of this repository's HEAD to the end of `make plan` (target: 60 s
  or less; uv's cache as it is, or empty with --cold, which then downloads every wheel);
- the install step alone, into fresh virtualenvs, of the same locked runtime (uv.lock's versions
  and hashes): `uv sync --compile-bytecode` as `make` runs it, and pip with the lock exported
  (`pip install --require-hashes`, which byte-compiles too), pip's cache as it is.

    .venv/bin/python bench/setup.py [--cold] [--no-pip]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UV = REPO / ".venv" / "uv" / "bin" / "uv"
# The runtime `make plan` installs (the Makefile's $(VENV)/.runtime rule).
RUNTIME = ["--no-default-groups", "--group", "build", "--extra", "aws"]
PYTHON = os.environ.get("PYTHON", "python3")


def _env(**extra: str) -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "LEANSTACK_STACKS", "LEANSTACK_REPO", "UV_PROJECT_ENVIRONMENT")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def clone_to_plan(work: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(["git", "clone", "-q", str(REPO), str(work / "clone")], check=True, env=env)
    _timed(["make", "plan", f"PYTHON={PYTHON}"], work / "clone", env)
    return time.monotonic() - start


def install_with_uv(work: Path, env: dict[str, str]) -> float:
    venv = work / "uv-venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    sync = [str(UV), "sync", "--frozen", "--quiet", "--compile-bytecode", "--inexact", "--no-install-project"]
    sync += ["--python", str(venv / "bin" / "python"), *RUNTIME]
    return _timed(sync, REPO, {**env, "UV_PROJECT_ENVIRONMENT": str(venv)})


def install_with_pip(work: Path, env: dict[str, str]) -> float:
    exported = work / "runtime.txt"
    export = [str(UV), "export", "--frozen", "--quiet", "--no-emit-project", "--format", "requirements-txt"]
    subprocess.run([*export, *RUNTIME, "-o", str(exported)], cwd=REPO, env=env, check=True, capture_output=True)
    venv = work / "pip-venv"
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # --isolated: only the public index, as uv (pip.conf may add local ones).
    return _timed([*pip, "--isolated", "--no-deps", "--require-hashes", "-r", str(exported)], work, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cold", action="store_true", help="an empty uv cache for the fresh clone")
    parser.add_argument("--no-pip", action="store_true", help="skip the pip install (the slow one)")
    args = parser.parse_args()
    if not UV.exists():
        sys.exit("bench: run `make` first (it installs uv into .venv/uv)")
    with tempfile.TemporaryDirectory(prefix="leanstack-setup-") as tmp:
        work = Path(tmp)
        env = _env(**({"UV_CACHE_DIR": str(work / "uv-cache")} if args.cold else {}))
        cache = "empty" if args.cold else "as it is"
        print(f"fresh clone -> make plan (uv cache {cache}): {clone_to_plan(work, env):6.1f} s   target <= 60 s")
        print(f"install step, uv sync --compile-bytecode:          {install_with_uv(work, _env()):6.1f} s")
        if not args.no_pip:
            print(f"install step, pip install --require-hashes:        {install_with_pip(work, _env()):6.1f} s")
        load = os.getloadavg()[0]
        print(f"(load average at the end: {load:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
