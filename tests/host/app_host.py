"""The app tests' host: Debian's nginx with the rendered config on loopback in front of
`leanstack-app`'s own processes, with stand-ins for `docker` and `aws` (see tests/host/test_deploy.py).
The fixtures that start it (`host`, `app_host`) are in conftest.py."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanstack.host.agent.app_parameters import config_parameter, env_parameter, secret_parameter
from support.agent import agent_script
from support.nginx_harness import Pki, RunningNginx, client_context, request
from support.system import require_program
from tests.host.helpers import HOST, Moto

SCRIPT = agent_script("leanstack-app")
REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/leanstack-test-app"
DATABASE_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"
API_KEY_PARAMETER = "/leanstack/test/app/api-key"
CONTAINER_PORT = 3000

# The stand-in for `docker`: parses what `leanstack-app serve` gives it, records it, and
# becomes the app. Runs with the test's Python, as `python FAKE_DOCKER run ...`.
FAKE_DOCKER = r"""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
assert args[0] == "run", args
host_port = None
names = []
env_file_values = {}
i = 1
while i < len(args) - 1:
    if args[i] == "--publish":
        address, host_port, container_port = args[i + 1].split(":")
        assert address == "127.0.0.1", args[i + 1]
        i += 2
    elif args[i] == "--env":
        names.append(args[i + 1])
        i += 2
    elif args[i] == "--env-file":
        for line in open(args[i + 1], encoding="utf-8").read().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env_file_values[key] = value
        i += 2
    elif args[i] in ("--rm", "--init"):
        i += 1
    else:
        i += 2
image = args[-1]
tag = image.rsplit(":", 1)[1]
state = os.environ["FAKE_STATE"]
environment = {name: os.environ.get(name) for name in names}
with open(os.path.join(state, f"docker-{host_port}.json"), "w", encoding="utf-8") as handle:
    json.dump({"argv": args, "environment": environment, "env_file": env_file_values}, handle)
if "slow" in tag:
    time.sleep(0.7)
log = open(os.path.join(state, f"requests-{tag}.log"), "a", encoding="utf-8", buffering=1)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        log.write(self.path + "\n")
        failing = "broken" in tag and self.path == "/healthz"
        body = json.dumps({
            "version": tag,
            "port": int(host_port),
            "password": environment.get("DATABASE_PASSWORD"),
            "api_key": environment.get("API_KEY"),
            "greeting": env_file_values.get("GREETING"),
        }).encode()
        self.send_response(500 if failing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", int(host_port)), Handler)
server.daemon_threads = True
server.serve_forever()
"""


# The stand-in for `aws`: secrets from files named after the last part of the id.
FAKE_AWS = r"""#!/bin/sh
echo "$*" >>"$FAKE_STATE/aws.log"
while [ $# -gt 0 ]; do
    case "$1" in --secret-id|--name) id=$2 ;; esac
    shift
done
file="$FAKE_STATE/secrets/$(basename "$id")"
case "$*" in *secretsmanager*) error=ResourceNotFoundException ;; *) error=ParameterNotFound ;; esac
[ -f "$file" ] || { echo "An error occurred ($error) when reading $id" >&2; exit 254; }
cat "$file"
echo
"""


# "stop app on port P": end the process started for P and wait until it is gone.
FAKE_STOP = r"""
import os, signal, sys, time
pid_file = os.path.join(os.environ["FAKE_STATE"], f"app-{sys.argv[1]}.pid")
try:
    pid = int(open(pid_file).read())
except (OSError, ValueError):
    sys.exit(0)
try:
    os.kill(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
            break
    except OSError:
        break
    time.sleep(0.02)
else:
    sys.exit("process %d did not stop" % pid)
os.unlink(pid_file)
"""


def deploy_python() -> str:
    """The interpreter for the script; DEPLOY_TOOL_PYTHON picks another (e.g. a 3.9)."""
    return os.environ.get("DEPLOY_TOOL_PYTHON") or sys.executable


@dataclass
class Host:
    """A test host: nginx, the script's config and state, the stand-ins; all under one directory."""

    directory: Path
    nginx: RunningNginx
    pki: Pki
    ports: tuple[int, int]
    env: dict[str, str]
    edge: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.edge = client_context(self.pki, client_cert=self.pki.client_cert, client_key=self.pki.client_key)

    @property
    def state(self) -> Path:
        return self.directory / "fake"

    def run(self, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [deploy_python(), str(SCRIPT), *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *arguments: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [deploy_python(), str(SCRIPT), *arguments],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def deploy(self, tag: str) -> subprocess.CompletedProcess[str]:
        done = self.run("deploy", tag)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def get(self, path: str = "/") -> dict[str, Any]:
        response = request(self.nginx.paths.listen_port, path, host=HOST, context=self.edge, timeout=5)
        assert response.status == 200, (response.status, response.body[:200])
        answer: dict[str, Any] = json.loads(response.body)
        return answer

    def current(self) -> dict[str, Any]:
        current: dict[str, Any] = json.loads((self.directory / "state" / "current.json").read_text())
        return current

    def upstream(self) -> str:
        return Path(self.nginx.paths.upstream_path).read_text()

    def requests_seen(self, tag: str) -> list[str]:
        log = self.state / f"requests-{tag}.log"
        return log.read_text().splitlines() if log.exists() else []

    def configure(self, **changes: object) -> None:
        path = Path(self.env["LEANSTACK_APP_CONFIG"])
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    def set_secret(self, name: str, value: str) -> None:
        (self.state / "secrets" / name).write_text(value)


@dataclass
class Load:
    """Requests through nginx from a few threads, bounded in count and time."""

    host: Host
    threads: int = 2
    max_requests: int = 4000
    max_seconds: float = 30.0
    results: list[tuple[float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(deadline,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _loop(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self.results) + len(self.failures) >= self.max_requests:
                    return
            try:
                version = str(self.host.get("/page")["version"])
            except (AssertionError, OSError, ValueError, KeyError) as error:
                with self._lock:
                    self.failures.append(f"{type(error).__name__}: {error}")
                continue
            with self._lock:
                self.results.append((time.monotonic(), version))

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Wait until `count` more requests have completed."""
        with self._lock:
            target = len(self.results) + len(self.failures) + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.results) + len(self.failures) >= target:
                    return
            time.sleep(0.01)
        raise AssertionError(f"the request loop did not complete {count} requests in {timeout} s")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def versions(self, after: float = 0.0) -> Counter[str]:
        return Counter(version for at, version in self.results if at > after)


STAND_IN_DOCKER = Path(__file__).resolve().parent / "stand_in_docker.py"
REGION = "eu-west-1"


@dataclass
class AppHost:
    """The deploy tests' host with its app config in moto's SSM under its own stack name."""

    host: Host
    moto: Moto
    stack: str

    @property
    def path(self) -> str:
        return f"/leanstack/{self.stack}/app"

    def ssm(self) -> Any:
        return self.moto.session().client("ssm", region_name=REGION, endpoint_url=self.moto.endpoint)

    def put_config(self, **config: Any) -> None:
        self.ssm().put_parameter(
            Name=config_parameter(self.path), Value=json.dumps(config), Type="String", Overwrite=True
        )

    def set_env(self, name: str, value: str) -> None:
        self.ssm().put_parameter(Name=env_parameter(self.path, name), Value=value, Type="String", Overwrite=True)

    def set_secret(self, name: str, value: str) -> None:
        self.ssm().put_parameter(
            Name=secret_parameter(self.path, name), Value=value, Type="SecureString", Overwrite=True
        )

    def runs(self) -> list[dict[str, Any]]:
        log = self.host.state / "docker-runs.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def app_environment(self) -> dict[str, str]:
        environment: dict[str, str] = self.host.get()["environment"]
        return environment


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("leanstack-app: "), lines[0]
    return lines[0]


def verify_units(units: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    analyze = require_program("systemd-analyze", "systemd")
    check = units.parent / "verify"
    check.mkdir(exist_ok=True)
    for name in names:
        text = (units / name).read_text()
        # systemd checks that each program exists; neither is installed here.
        for program in ("/usr/local/sbin/leanstack-app", "/usr/bin/docker"):
            text = text.replace(program, "/bin/true")
        (check / name).write_text(text)
    (check / "docker.service").write_text("[Service]\nExecStart=/bin/true\n")
    return subprocess.run(
        [analyze, "verify", *(str(check / name) for name in names)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{check}:"},
        timeout=60,
        check=False,
    )
