#!/usr/bin/env bash
# make bench: the load generators and the bench venv, then `python -m bench.run`.
#   ghz, hey  (scripts/build_go_tools.sh ghz hey, cached in TOOLS_BIN)
#   .cache/bench-venv: litellm[proxy], matplotlib, py-spy, kept apart from the
#   services' lock; installed only when missing.
#   .cache/portkey: npm @portkey-ai/gateway (the second HTTP peer), installed only when missing.
# Knobs (BENCH_DURATION, BENCH_CONCURRENCY, BENCH_PROFILE, ...): bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export TOOLS_BIN="${TOOLS_BIN:-$ROOT/.cache/bin}"
export BENCH_VENV="${BENCH_VENV:-$ROOT/.cache/bench-venv}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PYTHON_BOOT="${PYTHON_BOOT:-python3}"
PORTKEY_VERSION="${PORTKEY_VERSION:-1.15.2}"
PORTKEY_DIR="$ROOT/.cache/portkey"
# LiteLLM pinned so runs compare like with like; override to try another release.
BENCH_PIP_SPECS="${BENCH_PIP_SPECS:-litellm[proxy]==1.108.7 matplotlib py-spy}"

log() { printf 'bench: %s\n' "$*" >&2; }

scripts/build_go_tools.sh ghz hey

portkey_entry=$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js
if [[ ! -f $portkey_entry ]] || ! grep -q "\"version\": \"$PORTKEY_VERSION\"" \
    "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null; then
  log "installing @portkey-ai/gateway@$PORTKEY_VERSION into $PORTKEY_DIR"
  mkdir -p "$PORTKEY_DIR"
  # Not fatal: the Portkey scenario is then reported as blocked.
  npm install --no-audit --no-fund --prefix "$PORTKEY_DIR" "@portkey-ai/gateway@$PORTKEY_VERSION" \
    >"$PORTKEY_DIR.install.log" 2>&1 || log "npm install failed (log: $PORTKEY_DIR.install.log)"
fi

venv_ready() {
  [[ -x $BENCH_VENV/bin/litellm && -x $BENCH_VENV/bin/py-spy ]] &&
    "$BENCH_VENV/bin/python" -c 'import importlib.metadata as m; m.version("matplotlib"); m.version("litellm")' 2>/dev/null
}
if ! venv_ready; then
  log "installing $BENCH_PIP_SPECS into $BENCH_VENV (log: $BENCH_VENV.install.log)"
  [[ -x $BENCH_VENV/bin/python ]] || "$PYTHON_BOOT" -m venv "$BENCH_VENV"
  # shellcheck disable=SC2086
  if ! "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check $BENCH_PIP_SPECS \
      >"$BENCH_VENV.install.log" 2>&1; then
    # Not fatal here: the LiteLLM scenario is then reported as blocked and the run fails.
    log "pip install failed; last lines of $BENCH_VENV.install.log:"; tail -15 "$BENCH_VENV.install.log" >&2
  fi
fi

export GHZ="$TOOLS_BIN/ghz" HEY="$TOOLS_BIN/hey" BENCH_PORTKEY="$portkey_entry"
exec "$PY" -m bench.run
