"""A stand-in for the app's container, for the drill's and the restore's tests.

Serves HTTP on 127.0.0.1:$PORT. Every request asks the database named by the DATABASE_*
variables (as leanstack gives them to the container) for `SELECT count(*) FROM $TABLE`
over a fresh connection: `/healthz` answers 200 when that works and 503 when it does not,
`/` answers the count. It also answers 503 on `/healthz` unless LEANSTACK_DRILL is as
$EXPECT_DRILL says, so a test sees that the drill told the app it is a drill.
"""

from __future__ import annotations

import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def count_rows() -> str | None:
    host = os.environ["DATABASE_HOST"]
    done = subprocess.run(
        [
            os.path.join(os.environ["PG_BIN_DIR"], "psql"),
            "-X",
            "-A",
            "-t",
            "-h",
            host,
            "-p",
            os.environ["DATABASE_PORT"],
            "-U",
            os.environ["DATABASE_USER"],
            "-d",
            os.environ["DATABASE_NAME"],
            "-c",
            f"SELECT count(*) FROM {os.environ.get('TABLE', 'customers')}",
        ],
        env={**os.environ, "PGPASSWORD": os.environ["DATABASE_PASSWORD"]},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        rows = count_rows()
        drill_ok = os.environ.get("LEANSTACK_DRILL", "") == os.environ.get("EXPECT_DRILL", "")
        if self.path == "/healthz":
            status, body = (200, "ok") if rows is not None and drill_ok else (503, "no database")
        else:
            status, body = (200, f"rows={rows}") if rows is not None else (500, "no database")
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print("listening", flush=True, file=sys.stderr)
    server.serve_forever()
