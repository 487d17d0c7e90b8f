"""Real servers on loopback for the backup tests and the backup benchmark.

`PostgresServer` runs Debian's PostgreSQL on a throw-away data directory, a loopback port
from `support.ports` and a private unix-socket directory. `initdb` refuses to run as root, so
when this process is root the server runs as the `postgres` user (which Debian's package
creates) or, failing that, `nobody`. `LoopbackProxy` sits between a client and a server
and cuts or pauses the connection after a byte budget, to fail an upload mid-stream at a
predictable point. Nothing here imports pytest: the benchmark uses it too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from support.ports import free_port

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "superuser-test-password"


def _unprivileged_account() -> pwd.struct_passwd | None:
    """The account the server runs as, or None to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists")


@dataclass
class PostgresServer:
    """One PostgreSQL cluster; `bin_dir` holds initdb, pg_ctl, postgres, psql, pg_dump, pg_restore."""

    bin_dir: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="leanstack-pg-")))
    settings: tuple[str, ...] = ()
    _account: pwd.struct_passwd | None = field(default=None, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if self._account is None:
            return argv
        return [
            "setpriv",
            f"--reuid={self._account.pw_uid}",
            f"--regid={self._account.pw_gid}",
            "--clear-groups",
            "--",
            *argv,
        ]

    def start(self) -> None:
        self._account = _unprivileged_account()
        self.socket_dir.mkdir(parents=True)
        password_file = self.root / "superuser-password"
        password_file.write_text(SUPERUSER_PASSWORD + "\n")
        if self._account is not None:
            # The mkdtemp directory is root's and 0700: hand the whole tree to the server's user.
            for path in (self.root, self.socket_dir, password_file):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        subprocess.run(
            self._as_server_user(
                [
                    self.program("initdb"),
                    "--no-sync",
                    f"--pgdata={self.data_dir}",
                    f"--username={SUPERUSER}",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ]
            ),
            check=True,
            capture_output=True,
            env=dict(os.environ, LC_ALL="C.UTF-8"),
        )
        password_file.unlink()
        server_options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                # A test server: durability is not what is being measured or tested.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                *(f"-c {setting}" for setting in self.settings),
            ]
        )
        subprocess.run(
            self._as_server_user(
                [
                    self.program("pg_ctl"),
                    f"--pgdata={self.data_dir}",
                    f"--log={self.log_file}",
                    f"--options={server_options}",
                    "--wait",
                    "--timeout=60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        if self.data_dir.exists():
            subprocess.run(
                self._as_server_user([self.program("pg_ctl"), f"--pgdata={self.data_dir}", "--mode=immediate", "stop"]),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, user: str, password: str | None, database: str) -> str:
        credentials = user if password is None else f"{user}:{password}"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", user: str = SUPERUSER) -> str:
        """Run SQL as `user` over the unix socket (trusted); returns unaligned, tuples-only output."""
        done = subprocess.run(
            [
                self.program("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                user,
                "-d",
                database,
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip()


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 that forwards to `target_port` until `budget` client bytes.

    Once the client has sent `budget` bytes, the proxy either cuts every connection and
    stops listening (`pause=False`: the server "goes away" mid-upload), or stops
    forwarding until `resume()` (`pause=True`: the upload stalls at a known point).
    """

    def __init__(self, target_port: int, budget: int, pause: bool = False) -> None:
        self.target_port = target_port
        self.budget = budget
        self.pause = pause
        self.forwarded = 0
        self.exhausted = threading.Event()
        self._resumed = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets.extend([client, upstream])
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _spend(self, size: int) -> bool:
        """Count `size` client bytes; False once the budget is gone (and it is not resumed)."""
        with self._lock:
            if self.forwarded + size <= self.budget or self._resumed.is_set():
                self.forwarded += size
                return True
        self.exhausted.set()
        if not self.pause:
            self.close()
            return False
        self._resumed.wait()
        with self._lock:
            self.forwarded += size
        return not self._closed.is_set()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for source in readable:
                    chunk = source.recv(65536)
                    if not chunk:
                        return
                    if source is client:
                        if not self._spend(len(chunk)):
                            return
                        upstream.sendall(chunk)
                    else:
                        client.sendall(chunk)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                sock.close()

    def resume(self) -> None:
        self._resumed.set()

    def close(self) -> None:
        self._closed.set()
        self._resumed.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in [self._listener, *sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll a zero-argument callable until it returns truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
