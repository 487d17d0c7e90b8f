"""Running the rendered nginx.conf for real, on loopback, for the tests and the benchmark.

- `TestUpstream`: a small threaded HTTP/1.1 app that records each request's headers and
  counts the TCP connections it accepted (to prove nginx reuses them). A test picks the
  app's answer with two request headers: `X-Test-Status` (a status code) and
  `X-Test-Cache-Control` (the app's Cache-Control; empty sends none; default `no-cache`).
- `make_pki`: a stand-in for Cloudflare's origin-pull CA with a client certificate it
  issued, a second CA nobody trusts with its own client certificate, and a throw-away
  self-signed origin certificate for the test hostnames.
- `RunningNginx`: writes the rendered config and its files under a temporary directory,
  checks it with `nginx -t`, runs nginx in the foreground and stops it again.
- `request`: one HTTP(S) request on a fresh connection, with SNI (or, as the load balancer
  connects, without), an optional client certificate and an optional source address.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leanstack.host.params import HostParams
from leanstack.host.render import NginxPaths, render_error_pages, render_nginx_conf, render_upstream

BIG_HTML = ("<p>" + "leanstack compressible text " * 200 + "</p>\n").encode()
PNG_BYTES = bytes(range(256)) * 16


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: more simultaneous connects (wrk opens 32 at once)
    # would have their SYNs dropped and retried a second later.
    request_queue_size = 128


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body_length: int


class TestUpstream:
    """The app behind nginx: answers every path, records what it was sent."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, record: bool = True) -> None:
        """`record=False` (the benchmark) keeps no per-request records, so memory stays flat."""
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY, as app servers set it: the headers and the body go out in two
            # writes, and with Nagle's algorithm the body would wait for the client's
            # delayed ACK (40 ms on Linux) on every keep-alive request.
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with upstream._lock:
                    upstream.connections += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if record:
                    with upstream._lock:
                        upstream.requests.append(
                            RecordedRequest(self.command, self.path, dict(self.headers.items()), length)
                        )
                path = self.path.split("?", 1)[0]
                status = self.headers.get("X-Test-Status")
                if status is not None:
                    # A 304 has no body.
                    self._send(int(status), b"" if status == "304" else b"as the test asked", "text/plain")
                    return
                if path == "/big.html" or path.endswith(".css"):
                    body, content_type = BIG_HTML, "text/css" if path.endswith(".css") else "text/html"
                elif path.endswith(".png"):
                    body, content_type = PNG_BYTES, "image/png"
                elif path == "/notfound.3f9a1c2b.js":
                    self._send(404, b"missing", "text/plain")
                    return
                else:
                    body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
                    content_type = "application/json"
                self._send(200, body, content_type)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                cache_control = self.headers.get("X-Test-Cache-Control", "no-cache")
                if cache_control:
                    self.send_header("Cache-Control", cache_control)
                # nginx hides it everywhere.
                self.send_header("X-Powered-By", "TestApp/1.0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer
            do_HEAD = _answer

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TestUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def find(self, request_id: str) -> RecordedRequest | None:
        with self._lock:
            for recorded in self.requests:
                if recorded.headers.get("X-Request-ID") == request_id:
                    return recorded
        return None

    def count(self) -> int:
        with self._lock:
            return len(self.requests)


@dataclass(frozen=True)
class Pki:
    origin_cert: Path
    origin_key: Path
    pull_ca: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None,
    dns_names: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, hostnames: tuple[str, ...]) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)

    def pem(cert: x509.Certificate, name: str) -> Path:
        path = directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def key_file(key: ec.EllipticCurvePrivateKey, name: str) -> Path:
        path = directory / name
        _write_key(path, key)
        return path

    origin_key = ec.generate_private_key(ec.SECP256R1())
    origin = _issue(
        hostnames[0],
        origin_key,
        hostnames[0],
        origin_key,
        ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=hostnames,
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test origin-pull CA", ca_key, "test origin-pull CA", ca_key, ca=True, usage=None)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue(
        "test cloudflare edge",
        client_key,
        "test origin-pull CA",
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _issue(
        "not cloudflare", rogue_key, "rogue CA", rogue_ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return Pki(
        origin_cert=pem(origin, "origin.crt"),
        origin_key=key_file(origin_key, "origin.key"),
        pull_ca=pem(ca, "pull-ca.pem"),
        client_cert=pem(client, "client.crt"),
        client_key=key_file(client_key, "client.key"),
        rogue_client_cert=pem(rogue, "rogue.crt"),
        rogue_client_key=key_file(rogue_key, "rogue.key"),
    )


def loopback_paths(directory: Path, port: int, *, tls: bool = True, workers: str = "1") -> NginxPaths:
    """NginxPaths for an instance under `directory`, as root, on 127.0.0.1:`port`."""
    return NginxPaths(
        listen_address="127.0.0.1",
        listen_port=port,
        tls=tls,
        cert_path=str(directory / "tls" / "origin.crt"),
        key_path=str(directory / "tls" / "origin.key"),
        client_ca_path=str(directory / "tls" / "pull-ca.pem"),
        pid_path=str(directory / "nginx.pid"),
        error_log_path=str(directory / "error.log"),
        access_log_path=str(directory / "access.json.log"),
        temp_dir=str(directory / "tmp"),
        error_root=str(directory / "errors"),
        upstream_path=str(directory / "upstream.conf"),
        maintenance_page=str(directory / "maintenance" / "maintenance.html"),
        # Tests run as root; nginx's workers then need no other account to exist.
        user="root" if os.geteuid() == 0 else None,
        worker_processes=workers,
    )


def nginx_check(nginx: str, conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on `conf`; the caller asserts on the result."""
    return subprocess.run(
        [
            nginx,
            "-t",
            "-q",
            "-p",
            str(conf.parent),
            "-e",
            str(conf.parent / "startup-error.log"),
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass
class RunningNginx:
    """The rendered nginx.conf running in the foreground; use as a context manager."""

    nginx: str
    params: HostParams
    paths: NginxPaths
    directory: Path
    client_ca: Path | None = None
    origin_cert: Path | None = None
    origin_key: Path | None = None
    # Put before the nginx command line, e.g. ("taskset", "-c", "1") to pin it to a CPU.
    command_prefix: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    def write(self) -> str:
        """Write the config and the files it names; returns the config text."""
        text = render_nginx_conf(self.params, paths=self.paths)
        self.directory.mkdir(parents=True, exist_ok=True)
        Path(self.paths.temp_dir).mkdir(parents=True, exist_ok=True)
        errors = Path(self.paths.error_root)
        errors.mkdir(parents=True, exist_ok=True)
        for name, content in render_error_pages().items():
            (errors / name).write_text(content, encoding="utf-8")
        Path(self.paths.cert_path).parent.mkdir(parents=True, exist_ok=True)
        for source, target in (
            (self.origin_cert, self.paths.cert_path),
            (self.origin_key, self.paths.key_path),
            (self.client_ca, self.paths.client_ca_path),
        ):
            if source is not None:
                Path(target).write_bytes(source.read_bytes())
        Path(self.paths.upstream_path).write_text(render_upstream(self.params.app_port), encoding="utf-8")
        self.conf.write_text(text, encoding="utf-8")
        return text

    def __enter__(self) -> RunningNginx:
        self.write()
        checked = nginx_check(self.nginx, self.conf)
        if checked.returncode != 0:
            raise AssertionError(f"nginx -t failed:\n{checked.stderr}")
        self.process = subprocess.Popen(
            [
                *self.command_prefix,
                self.nginx,
                "-p",
                str(self.directory),
                "-e",
                str(self.directory / "startup-error.log"),
                "-c",
                str(self.conf),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise AssertionError(f"nginx exited at start: {err.decode(errors='replace')}")
            try:
                with socket.create_connection((self.paths.listen_address, self.paths.listen_port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise AssertionError("nginx did not start listening within 10 s")

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGQUIT: graceful stop, which also flushes the buffered access log.
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        finally:
            if process.stderr is not None:
                process.stderr.close()

    def log_entries(self, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The access-log lines for `request_id`, waiting out nginx's 1 s log buffer."""
        path = Path(self.paths.access_log_path)
        deadline = time.monotonic() + timeout
        while True:
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            found = [entry for entry in map(json.loads, lines) if entry.get("request_id") == request_id]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def client_context(pki: Pki, *, client_cert: Path | None = None, client_key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.origin_cert))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return context


def load_balancer_context(pki: Pki) -> ssl.SSLContext:
    """How the load balancer connects to a host: no client certificate and no SNI.

    The load balancer does not check a target's certificate; this context still verifies
    the chain against the origin certificate (but not the name, as no name is sent), so a
    test also proves which certificate nginx chose for a handshake without SNI.
    """
    context = client_context(pki)
    context.check_hostname = False
    return context


def request(
    port: int,
    path: str = "/",
    *,
    host: str,
    context: ssl.SSLContext | None,
    sni: str | None = None,
    send_sni: bool = True,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a new connection to 127.0.0.1:`port`; TLS when `context` is given.

    `sni` defaults to `host`; `send_sni=False` sends none (the context must then not check
    the hostname); `source` binds the client side to another loopback address.
    """
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=(sni or host) if send_sni else None)
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = sock
        all_headers = {"Host": host, **(headers or {})}
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        return Response(response.status, response.headers, data)
    finally:
        sock.close()


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        yield json.loads(line)
