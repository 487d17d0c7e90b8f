"""The box's app: a real HTTP server in a real image, built from Debian's python3.

It answers the health path with 200 and every other path with the release it runs
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        seconds = float(parse_qs(url.query).get("sleep", ["0"])[0])
        time.sleep(min(seconds, 30.0))
        if url.path == HEALTH_PATH:
            body = b"ok\n"
        else:
            answer = {
                "version": os.environ.get("APP_VERSION", ""),
                "container": socket.gethostname(),
                "env": {k: v for k, v in os.environ.items() if k.startswith("BOX_")},
            }
            body = (json.dumps(answer) + "\n").encode()
        self.send_response(200)
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
