"""leanstack-credentials: the app's own AWS identity, served to its container.

An HTTP endpoint in the container-credentials protocol the AWS SDKs support through
`AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN`: it assumes
the app's role (sts:AssumeRole with the host's own credentials), keeps the short-lived
credentials and assumes the role again before they expire, and answers only a GET on its
path that carries the token. The app never holds long-lived keys nor the host's role.

Where it listens, and why. The SDKs fetch a FULL_URI over plain http only from a loopback
address or from the ECS (169.254.170.2) or EKS Pod Identity (169.254.170.23, fd00:ec2::23)
addresses. The app's container runs on docker's bridge, whose own loopback is not the
host's, so the endpoint listens on 169.254.170.2 (allowed by the SDKs since the ECS task
role, so older SDKs too), an address the unit adds to the host's loopback device: the
container reaches it through its default route (the host), and the internet cannot (a
link-local address is never routed to the instance). An app run with `--network host`
would set LISTEN_ADDRESS=127.0.0.1 instead. Any process on the host could reach either
address; the token is what tells the app from them.

Environment (systemd reads /etc/leanstack/credentials.env):
    APP_ROLE_ARN            the role to assume (required)
    AWS_REGION              the STS region (regional endpoint)
    LISTEN_ADDRESS          default 169.254.170.2
    LISTEN_PORT             default 51680
    CREDENTIALS_PATH        default /leanstack/credentials
    TOKEN_FILE              default /var/lib/leanstack-credentials/token: created (0600,
                            32 random bytes, url-safe base64) when absent and kept across
                            restarts, so a running container's token stays valid
    SESSION_NAME            default leanstack-app (shows in CloudTrail)
    DURATION_SECONDS        default 3600, from 900: the instance role assuming another role
                            is role chaining, which STS limits to one hour
    REFRESH_BEFORE_SECONDS  default 1200: assume again this long before expiry. The SDKs
                            refetch credentials that expire within 15 minutes, so this
                            stays above 900 in production; tests lower it.
    SOCKET_TIMEOUT_SECONDS  default 5: a connection that sends nothing for this long is closed
    MAX_CONNECTIONS         default 32: connections served at once (one thread each); more
                            are closed at once, so idle connections cannot pile up threads

Each container gets a token of its own (the deploy tool's part), derived from the token
file's secret and the container's name, which the container never sees:
    AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2:51680/leanstack/credentials
    AWS_CONTAINER_AUTHORIZATION_TOKEN=<container name>.<HMAC-SHA256(secret, name)>
(`container_token`). The endpoint accepts a token only when its MAC matches its name, logs
the name with every refusal and every first use, and never accepts the secret itself: a
container's token names that container, and one container's token cannot be turned into
another's. A container started without a token gets nothing.

Python 3.9, stdlib and boto3 only: it runs on Amazon Linux 2023's system Python.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import contract
from .common import ConfigError, env_int, one_line, utc_now

# boto3 is imported where credentials are fetched: the install code (and so `plan`) reads this
# module's constants and must not need boto3.

DEFAULT_ADDRESS = contract.CREDENTIALS_ADDRESS
DEFAULT_PORT = contract.CREDENTIALS_PORT
DEFAULT_PATH = contract.CREDENTIALS_PATH
DEFAULT_TOKEN_FILE = contract.CREDENTIALS_TOKEN_PATH
# A container's name as docker allows it, which the token carries in the clear.
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Settings:
    role_arn: str
    region: Optional[str]
    address: str
    port: int
    path: str
    token_file: str
    session_name: str
    duration: int
    refresh_before: int
    socket_timeout: int = 5
    max_connections: int = 32

    @staticmethod
    def from_env(env: Mapping[str, str]) -> Settings:
        role_arn = env.get("APP_ROLE_ARN", "").strip()
        if not role_arn.startswith("arn:aws") or ":role/" not in role_arn:
            raise ConfigError(
                f"APP_ROLE_ARN must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), got {role_arn!r}"
            )
        path = env.get("CREDENTIALS_PATH", "").strip() or DEFAULT_PATH
        if not path.startswith("/"):
            raise ConfigError(f"CREDENTIALS_PATH must start with '/', got {path!r}")
        duration = env_int(env, "DURATION_SECONDS", 3600, 900, 3600)
        refresh_before = env_int(env, "REFRESH_BEFORE_SECONDS", 1200, 0, 3600)
        if refresh_before >= duration:
            raise ConfigError(f"REFRESH_BEFORE_SECONDS ({refresh_before}) must be below DURATION_SECONDS ({duration})")
        return Settings(
            role_arn=role_arn,
            region=(env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", "")).strip() or None,
            address=env.get("LISTEN_ADDRESS", "").strip() or DEFAULT_ADDRESS,
            port=env_int(env, "LISTEN_PORT", DEFAULT_PORT, 1, 65535),
            path=path,
            token_file=env.get("TOKEN_FILE", "").strip() or DEFAULT_TOKEN_FILE,
            session_name=env.get("SESSION_NAME", "").strip() or "leanstack-app",
            duration=duration,
            refresh_before=refresh_before,
            socket_timeout=env_int(env, "SOCKET_TIMEOUT_SECONDS", 5, 1, 60),
            max_connections=env_int(env, "MAX_CONNECTIONS", 32, 1, 1024),
        )


def read_or_create_token(path: str) -> str:
    """The token, created once (0600) so that restarts keep running containers working."""
    try:
        with open(path, encoding="ascii") as handle:
            token = handle.read().strip()
        if len(token) >= 32:
            return token
    except FileNotFoundError:
        pass
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = f"{path}.new"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.replace(temporary, path)
    return token


def container_token(secret: str, container: str) -> str:
    """The token of one container: its name and the HMAC of the name under the endpoint's
    secret. The deploy tool gives it to the container; the endpoint checks it (`token_owner`)."""
    if not CONTAINER_NAME.match(container):
        raise ValueError(f"{container!r} is not a container name")
    mac = hmac.new(secret.encode("ascii"), container.encode("ascii"), "sha256").digest()
    return f"{container}.{base64.urlsafe_b64encode(mac).decode('ascii').rstrip('=')}"


def token_owner(secret: str, offered: str) -> Optional[str]:
    """The container a token belongs to, or None when it is not a valid container token."""
    name, _, _ = offered.rpartition(".")
    if not CONTAINER_NAME.match(name):
        return None
    expected = container_token(secret, name).encode("ascii")
    return name if hmac.compare_digest(offered.encode("utf-8", "replace"), expected) else None


Assume = Callable[[], Dict[str, Any]]


def sts_assume(settings: Settings) -> Assume:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)
    client = boto3.session.Session().client("sts", region_name=settings.region, config=config)

    def assume() -> Dict[str, Any]:
        answer = client.assume_role(
            RoleArn=settings.role_arn, RoleSessionName=settings.session_name, DurationSeconds=settings.duration
        )
        credentials: Dict[str, Any] = dict(answer["Credentials"])
        return credentials

    return assume


class CredentialCache:
    """The role's current credentials; assumed again `refresh_before` seconds before expiry.

    A failed refresh keeps serving the credentials it has while they are still valid for a
    minute, so an STS blip never reaches the app; the next request tries again.
    """

    def __init__(self, assume: Assume, refresh_before: int) -> None:
        self._assume = assume
        self._refresh_before = datetime.timedelta(seconds=refresh_before)
        self._lock = threading.Lock()
        self._current: Optional[Dict[str, Any]] = None
        self.refreshes = 0

    def get(self) -> Dict[str, str]:
        with self._lock:
            now = utc_now()
            if self._current is None or self._current["Expiration"] - now <= self._refresh_before:
                try:
                    self._current = self._assume()
                    self.refreshes += 1
                    log(f"assumed the app role; expires {self._current['Expiration'].isoformat()}")
                except Exception as error:
                    if self._current is None or self._current["Expiration"] - now <= datetime.timedelta(minutes=1):
                        raise
                    log(f"refresh failed, serving the current credentials: {one_line(str(error))[:300]}")
            current = self._current
        expiration: datetime.datetime = current["Expiration"]
        return {
            "AccessKeyId": current["AccessKeyId"],
            "SecretAccessKey": current["SecretAccessKey"],
            "Token": current["SessionToken"],
            "Expiration": expiration.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def log(message: str) -> None:
    print(f"leanstack-credentials: {message}", file=sys.stderr, flush=True)


def make_handler(settings: Settings, secret: str, cache: CredentialCache) -> type:
    seen: Dict[str, bool] = {}

    class Handler(BaseHTTPRequestHandler):
        server_version = "leanstack-credentials"
        sys_version = ""
        # The socket's timeout: a connection that sends nothing is closed, its thread freed.
        timeout = settings.socket_timeout

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != settings.path:
                self._answer(404, {"code": "NotFound", "message": "no such path"})
                return
            # The SDKs send the token as the whole Authorization header.
            owner = token_owner(secret, self.headers.get("Authorization", ""))
            if owner is None:
                self._answer(403, {"code": "AccessDenied", "message": "missing or wrong authorization token"})
                return
            try:
                body = cache.get()
            except Exception as error:
                log(f"cannot assume {settings.role_arn}: {one_line(str(error))[:300]}")
                self._answer(503, {"code": "ServiceUnavailable", "message": "cannot assume the app role now"})
                return
            if owner not in seen:
                seen[owner] = True
                log(f"first credentials for container {owner}")
            self._answer(200, body)

        def do_POST(self) -> None:
            self._answer(405, {"code": "MethodNotAllowed", "message": "GET only"})

        do_PUT = do_DELETE = do_POST

        def _answer(self, status: int, body: Mapping[str, str]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # Refusals are worth a journal line; the SDK's routine fetches are not.
            if len(args) >= 2 and str(args[1]) not in ("200",):
                log(f"{self.client_address[0]} {format % args}")

    return Handler


class BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` connections (threads) at once; a
    connection beyond them is closed at once rather than given a thread."""

    daemon_threads = True

    def __init__(self, address: Any, handler: type, max_connections: int) -> None:
        super().__init__(address, handler)
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log(f"{self.refused} connections closed unserved: all {self.max_connections} slots busy")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def serve(settings: Settings, assume: Assume) -> None:
    secret = read_or_create_token(settings.token_file)
    cache = CredentialCache(assume, settings.refresh_before)
    server = BoundedServer(
        (settings.address, settings.port), make_handler(settings, secret, cache), settings.max_connections
    )
    try:
        cache.get()
    except Exception as error:
        # Serve anyway: the app gets 503 until STS answers, and the unit stays up to retry.
        log(f"cannot assume {settings.role_arn} yet: {one_line(str(error))[:300]}")
    log(f"serving {settings.path} on {settings.address}:{settings.port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: List[str]) -> int:
    if len(argv) > 1:
        print(__doc__)
        return 0 if argv[1] in ("-h", "--help") else 2
    try:
        settings = Settings.from_env(os.environ)
        serve(settings, sts_assume(settings))
    except ConfigError as error:
        print(f"leanstack-credentials: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"leanstack-credentials: cannot listen or write the token: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
