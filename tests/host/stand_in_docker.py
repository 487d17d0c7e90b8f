"""A stand-in for the `docker` CLI as `leanstack-app` calls it, for tests without a container engine.

`run [options] IMAGE [CMD...]` reads the options leanstack-app passes (the values of
`--env NAME` come from this process's environment, as docker takes them; `--env-file`
lines are read), records the call in $FAKE_STATE/docker-runs.jsonl, and then:
- with `--publish 127.0.0.1:HOST:CONTAINER` and no command, becomes the app: an HTTP
  server on HOST whose every answer is JSON with the image's tag and the environment the
  container was given (so a test sees what reached the app);
- with a command, execs it with only the container's environment (plus PATH), as a fresh
  container would, and exits with its code.
Each call records the names and values of docker's own environment that docker, the loader or
the shell read themselves (`docker_environment`: DOCKER_*, LD_*, PATH, HOME, AWS_*), so a test
sees what reached the docker CLI, not only the container.
`rm --force NAME` is recorded and succeeds. Anything else fails, so a new call is noticed.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WITH_VALUE = {"--name", "--pull", "--publish", "--label", "--log-driver", "--log-opt", "--env-file", "--env"}
FLAGS = {"--rm", "--init", "--interactive", "--tty"}


def record(entry: dict[str, object]) -> None:
    entry["docker_environment"] = {
        name: value for name, value in os.environ.items() if name.startswith(("DOCKER_", "LD_", "AWS_CONTAINER_"))
    }
    with open(os.path.join(os.environ["FAKE_STATE"], "docker-runs.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def main(args: list[str]) -> int:
    if args[:2] == ["rm", "--force"]:
        record({"argv": args})
        return 0
    if not args or args[0] != "run":
        print(f"stand-in docker: unexpected call {args}", file=sys.stderr)
        return 125
    options: dict[str, list[str]] = {}
    index = 1
    while index < len(args) and args[index].startswith("--"):
        if args[index] in FLAGS:
            options.setdefault(args[index], [])
            index += 1
        elif args[index] in WITH_VALUE:
            options.setdefault(args[index], []).append(args[index + 1])
            index += 2
        else:
            print(f"stand-in docker: unknown option {args[index]}", file=sys.stderr)
            return 125
    image, command = args[index], args[index + 1 :]
    environment: dict[str, str] = {}
    for path in options.get("--env-file", []):
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        for line in lines:
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                environment[key] = value
    for name in options.get("--env", []):
        if name in os.environ:
            environment[name] = os.environ[name]
    record({"argv": args, "environment": environment, "command": command})
    if command:
        os.execvpe(command[0], command, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environment})
    (publish,) = options["--publish"]
    address, host_port, _ = publish.split(":")
    assert address == "127.0.0.1", publish
    tag = image.rsplit(":", 1)[1]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"version": tag, "port": int(host_port), "environment": environment}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", int(host_port)), Handler)
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
