"""How long `make box` takes: from a warm cache (target: 60 s or less) and from nothing
(target: 10 minutes or less on 2 cores).

"From nothing" removes the cached tarballs under build/box/ and the box's Docker images first,
so mmdebstrap downloads and installs every Debian package again; "warm" runs right after it.
Each run ends with the host booted and serving its first release through nginx. Prints both
wall times and leaves the box running (`make box-down` removes it).

    .venv/bin/python bench/box.py [--stack dev] [--warm-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "box"
WARM_TARGET_SECONDS = 60
COLD_TARGET_SECONDS = 600


def make_box(stack: str) -> float:
    started = time.monotonic()
    subprocess.run(["make", "-C", str(REPO), "box", f"STACK={stack}"], check=True)
    return time.monotonic() - started


def forget_cache() -> None:
    for tarball in [*BUILD.glob("box-*.tar"), *BUILD.glob("app-*.tar")]:
        tarball.unlink()
    images = subprocess.run(
        ["docker", "images", "--quiet", "leanstack-box"], capture_output=True, text=True, check=True
    ).stdout.split()
    subprocess.run(["docker", "rm", "--force", *_boxes()], capture_output=True, check=False)
    if images:
        subprocess.run(["docker", "rmi", "--force", *images], capture_output=True, check=False)


def _boxes() -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", "label=leanstack.box=1"], capture_output=True, text=True
    )
    return listed.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--warm-only", action="store_true", help="skip the run from nothing")
    args = parser.parse_args()
    figures = []
    if not args.warm_only:
        forget_cache()
        cold = make_box(args.stack)
        figures.append(f"make box from nothing: {cold:.0f} s (target <= {COLD_TARGET_SECONDS} s)")
    warm = make_box(args.stack)
    figures.append(f"make box, warm cache:  {warm:.0f} s (target <= {WARM_TARGET_SECONDS} s)")
    print("\n".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
