#!/usr/bin/env bash
# The local stack: PostgreSQL, FerretDB, the fake provider and the four services.
#   scripts/stack.sh deps-up | services-up | seed | up | down | status
# Ports (env, defaults): PG_PORT 55432, FERRETDB_PORT 27027, FAKE_PROVIDER_PORT 18080,
# IDENTITY_PORT 50051, QUOTA_PORT 50052, HISTORY_PORT 50053, LLM_PORT 50054; URLs (env,
# defaults from those ports): IDENTITY_DATABASE_URL, QUOTA_DATABASE_URL, MONGO_URL,
# FAKE_PROVIDER_URL. Every step (services, seed, the printed commands) reads the same ones.
# LLM_HTTP_PORT 8080 (llm's OpenAI-compatible HTTP door; LLM_HTTP_ENABLED=false turns it off).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCAL_DIR="${LOCAL_DIR:-$ROOT/.local}"
TOOLS_BIN="${TOOLS_BIN:-$ROOT/.cache/bin}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export PG_PORT="${PG_PORT:-55432}"
FERRETDB_PORT="${FERRETDB_PORT:-27027}"
FAKE_PROVIDER_PORT="${FAKE_PROVIDER_PORT:-18080}"
export IDENTITY_PORT="${IDENTITY_PORT:-50051}" QUOTA_PORT="${QUOTA_PORT:-50052}"
export HISTORY_PORT="${HISTORY_PORT:-50053}" LLM_PORT="${LLM_PORT:-50054}"
export LLM_HTTP_PORT="${LLM_HTTP_PORT:-8080}"
PROC="$ROOT/scripts/proc.sh"

port_open() { "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', int(sys.argv[1]))))" "$1"; }
grpc_ready() { "$PY" -m gateway_common.healthcheck "127.0.0.1:$1"; }

deps_up() {
  "$ROOT/scripts/pg.sh" start
  # FerretDB on the PostgreSQL backend: it pushes equality filters down to SQL, where the
  # SQLite backend scans and decodes whole collections in Go (see tools/ferretdb/README.md).
  "$PROC" start ferretdb "$(declare -f port_open); PY=$PY port_open $FERRETDB_PORT" -- \
    "$TOOLS_BIN/ferretdb" --listen-addr="127.0.0.1:$FERRETDB_PORT" --handler=postgresql \
    --postgresql-url="postgres://gateway:gateway@127.0.0.1:$PG_PORT/ferretdb" --log-level=error
  "$PROC" start fake-provider "$(declare -f port_open); PY=$PY port_open $FAKE_PROVIDER_PORT" -- \
    "$PY" -m devtools.fake_provider --port "$FAKE_PROVIDER_PORT"
}

# The one place the services' and the seed's addresses come from.
stack_env() {
  export LOCAL_DIR  # gatewayctl keeps the demo's secrets in $LOCAL_DIR/demo.json
  export IDENTITY_DATABASE_URL="${IDENTITY_DATABASE_URL:-$("$ROOT/scripts/pg.sh" url identity)}"
  export QUOTA_DATABASE_URL="${QUOTA_DATABASE_URL:-$("$ROOT/scripts/pg.sh" url quota)}"
  export MONGO_URL="${MONGO_URL:-mongodb://127.0.0.1:$FERRETDB_PORT/}"
  export QUOTA_IDENTITY_TARGET="127.0.0.1:$IDENTITY_PORT" HISTORY_IDENTITY_TARGET="127.0.0.1:$IDENTITY_PORT"
  export LLM_IDENTITY_TARGET="127.0.0.1:$IDENTITY_PORT" LLM_QUOTA_TARGET="127.0.0.1:$QUOTA_PORT"
  export LLM_HISTORY_TARGET="127.0.0.1:$HISTORY_PORT" QUOTA_HISTORY_TARGET="127.0.0.1:$HISTORY_PORT"
  export IDENTITY_HISTORY_TARGET="127.0.0.1:$HISTORY_PORT"  # the audit outbox's relay
  # The fake provider is on loopback: the local stack allows it (gateway_common/egress.py).
  export GATEWAY_EGRESS_ALLOW="${GATEWAY_EGRESS_ALLOW:-127.0.0.0/8,::1/128}"
  export FAKE_PROVIDER_URL="${FAKE_PROVIDER_URL:-http://127.0.0.1:$FAKE_PROVIDER_PORT/v1}"
  local svc port_var target_var
  for svc in IDENTITY QUOTA HISTORY LLM; do  # gatewayctl's targets
    port_var="${svc}_PORT"; target_var="GATEWAY_${svc}_TARGET"
    export "$target_var=${!target_var:-127.0.0.1:${!port_var}}"
  done
  export IDENTITY_METRICS_PORT="${IDENTITY_METRICS_PORT:-9101}" QUOTA_METRICS_PORT="${QUOTA_METRICS_PORT:-9102}"
  export HISTORY_METRICS_PORT="${HISTORY_METRICS_PORT:-9103}" LLM_METRICS_PORT="${LLM_METRICS_PORT:-9104}"
}

services_up() {
  stack_env
  local svc port
  for svc in identity quota history llm; do
    port_var="$(echo "$svc" | tr a-z A-Z)_PORT"; port="${!port_var}"
    "$PROC" start "$svc" "$(declare -f grpc_ready); PY=$PY grpc_ready $port" -- "$PY" -m "${svc}_svc"
  done
  if [ "$MONGO_URL" = "mongodb://127.0.0.1:$FERRETDB_PORT/" ]; then
    # FerretDB on PostgreSQL: a GIN index for history's tenant/user filters (see the module).
    "$PY" -m devtools.ferretdb_tune \
      "postgresql://gateway:gateway@127.0.0.1:$PG_PORT/ferretdb" "${HISTORY_DATABASE:-llmgw_history}"
  fi
}

# The demo data, in this stack's databases (create_admin_key reads IDENTITY_DATABASE_URL).
seed() {
  stack_env
  "$PY" -m gatewayctl demo-seed
}

status() {
  local svc port_var
  for svc in identity quota history llm; do
    port_var="$(echo "$svc" | tr a-z A-Z)_PORT"
    printf '%-9s 127.0.0.1:%-6s %s\n' "$svc" "${!port_var}" \
      "$("$PY" -m gateway_common.healthcheck "127.0.0.1:${!port_var}" --print 2>&1 || true)"
  done
  if [ "${LLM_HTTP_ENABLED:-true}" != "false" ]; then
    printf '%-9s http://127.0.0.1:%-6s %s\n' "llm-http" "$LLM_HTTP_PORT" \
      "$("$PY" -c 'import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2); print("READY (OpenAI-compatible: /v1)")
except Exception as exc: print("NOT READY", type(exc).__name__)' "http://127.0.0.1:$LLM_HTTP_PORT/readyz" 2>&1 || true)"
  fi
}

case "${1:-}" in
  deps-up) deps_up ;;
  services-up) services_up ;;
  seed) seed ;;
  up) deps_up; services_up ;;
  down) "$PROC" stop-all; "$ROOT/scripts/pg.sh" stop ;;
  status) status ;;
  *) echo "usage: $0 deps-up|services-up|up|down|status" >&2; exit 2 ;;
esac
