#!/bin/sh
# Start Debian's Docker daemon when none answers (CI starts no services), installing it first
# when absent. A daemon already running (a developer's) is used as it is.
set -eu
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  # The box tests then skip (or fail under CI=true, where nothing may skip); the rest runs.
  echo "box: no Docker daemon answers and only root can start one here" >&2
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
echo "box: starting dockerd (log: /var/log/leanstack-dockerd.log)" >&2
nohup dockerd >/var/log/leanstack-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "box: dockerd did not answer within 30 s; see /var/log/leanstack-dockerd.log" >&2
exit 1
