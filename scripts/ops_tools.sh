#!/usr/bin/env bash
# Debian's ops tools the tests and `make lint` use, installed when missing (like scripts/pg.sh
# installs PostgreSQL): pgbouncer (tests/ops), prometheus + promtool (rules, tests/ops).
#   scripts/ops_tools.sh
set -euo pipefail
missing=()
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ops-tools: installing Debian's ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
