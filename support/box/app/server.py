"""The box's app: a real HTTP server in a real image, built from Debian's python3.

It answers the health path with 200 (in a restore drill, LEANSTACK_DRILL=1, only once it reaches
the scratch database's socket the drill handed it: the join the drill's app start depends on)
and every other path with the release it runs
(APP_VERSION, set when the image is built) and the name of its container, so a test can
tell which version served each request. Slow requests (`?sleep=SECONDS`) let a test hold
a request open across a switch.
"""

from __future__ import annotations

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HEALTH_PATH = os.environ.get("APP_HEALTH_PATH", "/healthz")


def database_problem() -> str:
    """In a drill, why the scratch database's unix socket cannot be reached ("" when it can)."""
    if os.environ.get("LEANSTACK_DRILL") != "1":
        return ""
    host, port = os.environ.get("DATABASE_HOST", ""), os.environ.get("DATABASE_PORT", "5432")
    if not host.startswith("/"):
        return f"DATABASE_HOST {host!r} is not a socket directory"
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(3)
            client.connect(f"{host}/.s.PGSQL.{port}")
    except OSError as error:
        return f"cannot reach the database at {host}: {error}"
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        seconds = float(parse_qs(url.query).get("sleep", ["0"])[0])
        time.sleep(min(seconds, 30.0))
        status = 200
        if url.path == HEALTH_PATH:
            problem = database_problem()
            status, body = (503, f"{problem}\n".encode()) if problem else (200, b"ok\n")
        else:
            answer = {
                "version": os.environ.get("APP_VERSION", ""),
                "container": socket.gethostname(),
                "env": {k: v for k, v in os.environ.items() if k.startswith("BOX_")},
            }
            body = (json.dumps(answer) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if url.path == HEALTH_PATH else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "3000"))), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
