#!/usr/bin/env bash
# Tiny process supervisor for the local stack: pid files in .local/run, logs in .local/log.
#   scripts/proc.sh start NAME HEALTHCMD -- CMD...   (idempotent: a live NAME is left alone)
#   scripts/proc.sh stop NAME                        (SIGTERM, wait, then SIGKILL)
#   scripts/proc.sh stop-all
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$ROOT/.local}"
RUN="$LOCAL_DIR/run"; LOG="$LOCAL_DIR/log"
mkdir -p "$RUN" "$LOG"

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  local name="$1" check="$2"; shift 3
  if alive "$name"; then echo "$name: already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  nohup setsid "$@" >>"$LOG/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  local i
  for i in $(seq 1 "${START_TIMEOUT:-120}"); do
    if bash -c "$check" >/dev/null 2>&1; then echo "$name: up (pid $(cat "$RUN/$name.pid"))"; return 0; fi
    if ! alive "$name"; then echo "$name: exited; last log lines:" >&2; tail -20 "$LOG/$name.log" >&2; return 1; fi
    sleep 0.5
  done
  echo "$name: not ready in time; see $LOG/$name.log" >&2; return 1
}

stop() {
  local name="$1" pid i
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid="$(cat "$RUN/$name.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"; echo "$name: stopped"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  stop-all) for f in "$RUN"/*.pid; do [ -e "$f" ] && stop "$(basename "$f" .pid)"; done; true ;;
  *) echo "usage: $0 start NAME CHECK -- CMD... | stop NAME | stop-all" >&2; exit 2 ;;
esac
