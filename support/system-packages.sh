#!/bin/sh
# `make system-packages`: apt-get install the Debian package of every program in
# support/system-packages.txt that is missing, in one apt run; nothing when all are there. Not
# root (or no apt-get): says which are missing and leaves it to the tests, which skip them (fail
# under CI=true) naming this target.
set -eu
cd "$(dirname "$0")"
missing=""
while read -r program package where; do
  case "$program" in "#"* | "") continue ;; esac
  command -v "$program" >/dev/null 2>&1 && continue
  # shellcheck disable=SC2086  # $where is a glob on purpose
  [ -n "${where:-}" ] && ls $where/"$program" >/dev/null 2>&1 && continue
  missing="$missing $package"
done < system-packages.txt
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: missing$missing; install them as root: make system-packages" >&2
  exit 0
fi
echo "system-packages: apt-get install$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
