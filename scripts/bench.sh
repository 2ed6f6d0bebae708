#!/usr/bin/env bash
# make bench: the load generators and the bench venv, then `python -m bench.run`.
#   ghz  (scripts/build_go_tools.sh ghz, cached in .cache/bin)
#   hey  (github.com/rakyll/hey, the HTTP load generator for the LiteLLM side, cached)
#   .cache/bench-venv: litellm[proxy], matplotlib, py-spy, kept apart from the
#   services' lock; installed only when missing.
# Knobs (BENCH_DURATION, BENCH_CONCURRENCY, BENCH_PROFILE, ...): bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export TOOLS_BIN="${TOOLS_BIN:-$ROOT/.cache/bin}"
export BENCH_VENV="${BENCH_VENV:-$ROOT/.cache/bench-venv}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PYTHON_BOOT="${PYTHON_BOOT:-python3}"
HEY_VERSION=v0.1.4
# LiteLLM pinned so runs compare like with like; override to try another release.
BENCH_PIP_SPECS="${BENCH_PIP_SPECS:-litellm[proxy]==1.108.7 matplotlib py-spy}"

log() { printf 'bench: %s\n' "$*" >&2; }

scripts/build_go_tools.sh ghz

if [[ ! -x $TOOLS_BIN/hey ]]; then
  log "building hey $HEY_VERSION -> $TOOLS_BIN/hey"
  tmp=$(mktemp -d "$TOOLS_BIN/.hey.XXXXXX")
  CGO_ENABLED=0 GOWORK=off GOBIN=$tmp go install -trimpath -ldflags='-s -w' \
    "github.com/rakyll/hey@$HEY_VERSION"
  mv -f "$tmp/hey" "$TOOLS_BIN/hey"; rm -rf "$tmp"
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

exec "$PY" -m bench.run
