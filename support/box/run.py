"""Start the box, wait for its boot, deploy the first release, write box.env; and remove it.

Docker in the box: the box runs its own Debian dockerd (vfs storage, its own bridge), so the
app's containers are the box's children as on the real host, `--publish 127.0.0.1:PORT` means
the box's loopback, and the credentials endpoint on 169.254.170.2 is reached over the box's
own docker0. That needs CAP_NET_ADMIN (iptables) besides the CAP_SYS_ADMIN systemd needs;
never --privileged.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leanstack.mocks import REPO, read_stack_config
from support.box.image import app_tarball, box_image
from support.box.render import BoxInput, box_input

BUILD = REPO / "build" / "box"
STAND_IN_ENVIRONMENT = Path(__file__).resolve().parent / "rootfs" / "etc" / "environment"
SITE_PACKAGES_MOUNT = "/opt/leanstack-box/site-packages"
MOTO_PORT = 4566
FIRST_TAG = "v1"
BOOT_TIMEOUT_SECONDS = 300


def container_name(stack: str) -> str:
    return f"leanstack-box-{stack}"


def _say(message: str) -> None:
    print(f"box: {message}", file=sys.stderr, flush=True)


def docker(
    *argv: str, check: bool = True, timeout: float = 600, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and done.returncode != 0:
        raise SystemExit(
            f"box: docker {shlex.join(argv[:3])}... failed: {(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return done


def box_exec(name: str, command: str, *, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`command` run by bash in the box as root, with the login environment (/etc/environment)."""
    return docker("exec", name, "bash", "-lc", command, check=check, timeout=timeout)


def down(name: str, env_file: Path | None = None) -> None:
    docker("rm", "--force", "--volumes", name, check=False)
    (env_file or BUILD / "box.env").unlink(missing_ok=True)


def _wait_for_boot(name: str) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    state = ""
    # Until systemd answers on its bus the state is empty; then it waits for the boot to end.
    while state in ("", "initializing", "starting") and time.monotonic() < deadline:
        done = box_exec(name, "systemctl is-system-running --wait", check=False, timeout=BOOT_TIMEOUT_SECONDS)
        state = done.stdout.strip()
        if state in ("", "initializing", "starting"):
            time.sleep(0.5)
    if state != "running":
        failed = box_exec(name, "systemctl --failed --no-legend --plain; cloud-init status --long", check=False)
        raise SystemExit(f"box: the host booted {state or 'not at all'}:\n{failed.stdout}{failed.stderr}")


def _deploy_first_release(name: str, box: BoxInput, app_tar: Path) -> None:
    repository = box.registry_repository
    docker("cp", str(app_tar), f"{name}:/var/tmp/app.tar")
    script = f"""
set -e
systemctl start docker.service
docker import --change 'CMD ["python3", "/app/server.py"]' --change 'ENV APP_VERSION={FIRST_TAG}' \
  --change 'ENV APP_HEALTH_PATH={box.health_path}' /var/tmp/app.tar {repository}:{FIRST_TAG} >/dev/null
docker push --quiet {repository}:{FIRST_TAG} >/dev/null
/usr/local/sbin/leanstack-app deploy {FIRST_TAG}
"""
    done = box_exec(name, script, check=False)
    if done.returncode != 0:
        raise SystemExit(f"box: the first deploy failed:\n{done.stdout}{done.stderr}")


def _published(name: str, port: int) -> int:
    out = docker("port", name, f"{port}/tcp").stdout.split()[0]
    return int(out.rsplit(":", 1)[1])


def up(stack: str, config: Mapping[str, Any], *, name: str = "", env_file: Path | None = None) -> dict[str, str]:
    """Boot a box of `stack` with its `config`; returns (and writes to `env_file`) box.env's values."""
    started = time.monotonic()
    BUILD.mkdir(parents=True, exist_ok=True)
    name = name or container_name(stack)
    # Each box has its own seed and test PKI: the tests' box and a person's may run side by side.
    work = BUILD / name
    work.mkdir(exist_ok=True)
    box = box_input(stack, config, work)
    _say(f"user data rendered by the program in {time.monotonic() - started:.0f} s")
    image = box_image(BUILD)
    app_tar = app_tarball(BUILD)
    down(name, env_file)
    seed_dir = work / "seed"
    seed_dir.mkdir(exist_ok=True)
    (seed_dir / "user-data").write_bytes(box.user_data)
    (seed_dir / "meta-data").write_text(box.meta_data)
    (seed_dir / "seed.json").write_text(json.dumps(box.seed))
    # moto runs on the box's Python 3.11 from this virtualenv's packages (see leanstack-box-aws.service).
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    docker(
        "create",
        "--name", name,
        "--hostname", f"leanstack-{stack}-box",
        "--cap-add", "SYS_ADMIN",
        "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined",
        "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run",
        "--tmpfs", "/run/lock",
        "--volume", f"{site_packages}:{SITE_PACKAGES_MOUNT}:ro",
        # The database endpoint the user data names, at the box's PostgreSQL (RDS's stand-in).
        "--add-host", f"{box.database_host}:127.0.0.1",
        "--publish", "127.0.0.1::443",
        "--publish", f"127.0.0.1::{MOTO_PORT}",
        "--env", "container=docker",
        # `docker exec` shells get what PAM sessions read from /etc/environment: the stand-in for
        # the instance role and moto's endpoint (support/box/rootfs/etc/environment).
        *(f"--env={line}" for line in STAND_IN_ENVIRONMENT.read_text().split()),
        "--label", "leanstack.box=1",
        image,
        "/sbin/init",
    )  # fmt: skip
    docker("cp", str(seed_dir / "user-data"), f"{name}:/var/lib/cloud/seed/nocloud/user-data")
    docker("cp", str(seed_dir / "meta-data"), f"{name}:/var/lib/cloud/seed/nocloud/meta-data")
    docker("cp", str(seed_dir / "seed.json"), f"{name}:/etc/leanstack-box/seed.json")
    docker("start", name)
    _say("booting (systemd, cloud-init with the rendered user data)")
    booting = time.monotonic()
    _wait_for_boot(name)
    _say(f"booted in {time.monotonic() - booting:.0f} s; deploying {FIRST_TAG} through the box's registry")
    deploying = time.monotonic()
    _deploy_first_release(name, box, app_tar)
    _say(f"{FIRST_TAG} serving after {time.monotonic() - deploying:.0f} s")
    https_port = _published(name, 443)
    hostname = box.hostnames[0]
    values = {
        "BOX_CONTAINER": name,
        "BOX_URL": f"https://{hostname}:{https_port}",
        "BOX_RESOLVE": f"{hostname}:{https_port}:127.0.0.1",
        "BOX_CLIENT_CERT": str(box.pki.client_cert),
        "BOX_CLIENT_KEY": str(box.pki.client_key),
        "BOX_CA": str(box.pki.origin_cert),
        "BOX_HEALTH_PATH": box.health_path,
        "BOX_REGISTRY_REPOSITORY": box.registry_repository,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_published(name, MOTO_PORT)}",
        "AWS_REGION": box.region,
        "AWS_ACCESS_KEY_ID": "box",
        "AWS_SECRET_ACCESS_KEY": "box",
        "BOX_BACKUP_BUCKET": box.backup_bucket,
    }
    target = env_file or BUILD / "box.env"
    target.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))
    _say(f"up in {time.monotonic() - started:.0f} s; {target} written; explore with: docker exec -it {name} bash")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("up", "down"):
        print("usage: python -m support.box up|down [--stack STACK]", file=sys.stderr)
        return 2
    stack = os.environ.get("STACK", "dev")
    if "--stack" in arguments:
        stack = arguments[arguments.index("--stack") + 1]
    if arguments[0] == "down":
        down(container_name(stack))
        return 0
    up(stack, read_stack_config(stack))
    return 0
