"""The box's image and the app's image, built from Debian's archive with mmdebstrap.

Each is cached twice, keyed by a digest of everything it is built from (package lists, the
files copied in, the build steps): as a tarball under build/box/ and as a Docker image tagged
with the digest. A warm `make box` finds the tag and builds nothing; a changed input gives a
new digest and so a new build.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from support.box.packages import DEBIAN_HAS, PIP_PACKAGES, image_packages

HERE = Path(__file__).resolve().parent
ROOTFS_FILES = HERE / "rootfs"
APP_SERVER = HERE / "app" / "server.py"
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# Documentation and translations are of no use in a box and a third of its size.
SLIM = (
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--aptopt=Acquire::Languages none",
)
BOX_REPOSITORY = "leanstack-box"
APP_PACKAGES = ("python3-minimal", "python3-boto3")
# The app image is copied whole for every container on the box's vfs storage: it keeps only what
# the app runs (no perl, no gconv) and botocore's models of the services it calls (STS, S3).
APP_SLIMMING = (
    'cd "$1" && rm -rf usr/share/perl usr/lib/x86_64-linux-gnu/perl usr/lib/x86_64-linux-gnu/libperl* '
    "usr/lib/x86_64-linux-gnu/gconv usr/share/zoneinfo/right usr/share/info var/cache/debconf/*-old "
    "&& find usr/lib/python3/dist-packages/botocore/data -mindepth 1 -maxdepth 1 -type d ! -name sts ! -name s3 "
    "-exec rm -rf {} +"
)
# Bumped by hand when a build step below changes in a way the inputs do not show.
BUILD_STEPS_VERSION = "1"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:16]


def _tree_bytes(root: Path) -> list[bytes]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        mode = oct(path.stat().st_mode & 0o777)
        out += [str(path.relative_to(root)).encode(), mode.encode(), path.read_bytes()]
    return out


def box_key() -> str:
    packages = " ".join(image_packages()).encode()
    return _digest(BUILD_STEPS_VERSION.encode(), packages, " ".join(PIP_PACKAGES).encode(), *_tree_bytes(ROOTFS_FILES))


def app_key() -> str:
    return _digest(
        BUILD_STEPS_VERSION.encode(), " ".join(APP_PACKAGES).encode(), APP_SLIMMING.encode(), APP_SERVER.read_bytes()
    )


def _say(message: str) -> None:
    print(f"box: {message}", file=sys.stderr, flush=True)


def _run(argv: Sequence[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"box: {argv[0]} failed (exit {done.returncode}); the end of {log}:\n" + "\n".join(tail))


def _mmdebstrap() -> str:
    found = shutil.which("mmdebstrap")
    if found is None:
        raise SystemExit("box: mmdebstrap is not installed: run `make system-packages` as root")
    return found


def _build_tar(target: Path, argv: Sequence[str], log: Path) -> None:
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _run([*argv, str(partial), *MIRRORS], log)
    partial.rename(target)


def _has_image(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def box_image(build: Path) -> str:
    """The box's image tag, built when no image or tarball of the current inputs exists."""
    key = box_key()
    tag = f"{BOX_REPOSITORY}:{key}"
    if _has_image(tag):
        return tag
    tarball = build / f"box-{key}.tar"
    log = build / "build.log"
    if not tarball.exists():
        _say(f"building the box image {key} from Debian {SUITE} (a few minutes; log: {log})")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        target = '"$1/usr/local/lib/python3.11/dist-packages"'
        pip_hook = " ".join([*pip, "--target", target, *(f"'{p}'" for p in PIP_PACKAGES)])
        # Their dependencies that Debian has stay Debian's: cloud-init imports requests, which
        # refuses pip's newer urllib3.
        shadowing = " ".join(f"{target}/{name}*" for name in DEBIAN_HAS)
        pip_hook += f" && rm -rf {shadowing}"
        _build_tar(
            tarball,
            [
                _mmdebstrap(),
                "--variant=apt",
                "--format=tar",
                *SLIM,
                "--include=" + ",".join(image_packages()),
                f"--customize-hook=sync-in {ROOTFS_FILES} /",
                f"--customize-hook={pip_hook}",
                '--customize-hook=chroot "$1" /opt/leanstack-box/setup-image.sh',
                SUITE,
            ],
            log,
        )
        # Older tarballs of the box are of no further use.
        for old in build.glob("box-*.tar"):
            if old != tarball:
                old.unlink()
    _say(f"importing {tarball.name}")
    _run(["docker", "import", str(tarball), tag], log)
    return tag


def app_tarball(build: Path) -> Path:
    """The app's root filesystem (Debian's python3 and boto3, and the box's server), as a tarball."""
    key = app_key()
    tarball = build / f"app-{key}.tar"
    if not tarball.exists():
        log = build / "build.log"
        _say(f"building the app image {key} (log: {log})")
        _build_tar(
            tarball,
            [
                _mmdebstrap(),
                "--variant=essential",
                "--format=tar",
                *SLIM,
                "--include=" + ",".join(APP_PACKAGES),
                f'--customize-hook=mkdir -p "$1/app" && cp {APP_SERVER} "$1/app/server.py"',
                f"--customize-hook={APP_SLIMMING}",
                SUITE,
            ],
            log,
        )
        for old in build.glob("app-*.tar"):
            if old != tarball:
                old.unlink()
    return tarball
