#!/usr/bin/env bash
# Build the Go helper binaries used by the Makefile into a cache directory.
#
#   scripts/build_go_tools.sh [-f|--force] [ferretdb|ghz|hey|all ...]
#
# No tool argument = all. Binaries go to ${TOOLS_BIN:-<repo>/.cache/bin}:
#   ferretdb  our wrapper around the embeddable FerretDB package (tools/ferretdb),
#             stamped by ferretdb.version = "<FerretDB version> <sha256 of tools/ferretdb sources>"
#   ghz       github.com/bojand/ghz/cmd/ghz, checked with `ghz --version`
#   hey       github.com/rakyll/hey (the bench's HTTP load generator), stamped by hey.version
# A tool is skipped when its binary exists and reports the expected version;
# -f/--force (or FORCE=1) rebuilds anyway. Needs Go >= 1.24 and the Go module
# proxy (or a warm module cache). Binaries are pure Go (CGO_ENABLED=0).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_BIN=${TOOLS_BIN:-$REPO/.cache/bin}
FERRETDB_SRC=$REPO/tools/ferretdb
GHZ_VERSION=v0.121.0
HEY_VERSION=v0.1.4

log() { printf 'build_go_tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

force=${FORCE:-0}
[[ $force == 1 ]] || force=0
targets=()
for arg in "$@"; do
  case $arg in
    -f|--force) force=1 ;;
    -h|--help) usage 0 ;;
    ferretdb|ghz|hey) targets+=("$arg") ;;
    all) targets+=(ferretdb ghz hey) ;;
    *) log "unknown argument: $arg"; usage ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(ferretdb ghz hey)

command -v go >/dev/null 2>&1 || die "go not found on PATH"
mkdir -p "$TOOLS_BIN"
TOOLS_BIN=$(cd "$TOOLS_BIN" && pwd)

# Shared build settings: static, path-independent binaries; ignore any go.work.
export CGO_ENABLED=0 GOWORK=off

# Builds go to a private temp dir inside TOOLS_BIN and are then renamed into
# place, so an interrupted or concurrent build never leaves a half-written binary.
WORKDIR=$(mktemp -d "$TOOLS_BIN/.build.XXXXXX")
trap 'rm -rf "$WORKDIR"' EXIT

sha256_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

build_ferretdb() {
  local bin=$TOOLS_BIN/ferretdb stamp_file=$TOOLS_BIN/ferretdb.version
  [[ -f $FERRETDB_SRC/go.mod ]] || die "missing $FERRETDB_SRC/go.mod"

  local version
  version=$(awk '$1 == "github.com/FerretDB/FerretDB" { print $2; exit }
                 $1 == "require" && $2 == "github.com/FerretDB/FerretDB" { print $3; exit }' \
            "$FERRETDB_SRC/go.mod")
  [[ -n $version ]] || die "cannot find FerretDB version in $FERRETDB_SRC/go.mod"

  local stamp
  stamp="$version $(cd "$FERRETDB_SRC" && sha256_of go.mod go.sum ./*.go)"

  if [[ $force == 0 && -x $bin && -f $stamp_file ]] \
     && [[ $(<"$stamp_file") == "$stamp" ]] \
     && [[ $("$bin" --version 2>/dev/null || true) == *" $version "* ]]; then
    log "ferretdb $version up to date ($bin)"
    return 0
  fi

  log "building ferretdb $version -> $bin"
  local start=$SECONDS tmp=$WORKDIR/ferretdb
  mkdir -p "$tmp"
  (cd "$FERRETDB_SRC" && go build -trimpath -ldflags='-s -w' -o "$tmp/ferretdb" .)
  [[ $("$tmp/ferretdb" --version) == *" $version "* ]] \
    || die "built ferretdb does not report $version"
  mv -f "$tmp/ferretdb" "$bin"
  printf '%s\n' "$stamp" >"$stamp_file"
  log "built ferretdb $version in $((SECONDS - start))s"
}

build_ghz() {
  local bin=$TOOLS_BIN/ghz want=${GHZ_VERSION#v}
  # ghz prints main.version, "dev" unless set via -ldflags; we set it like upstream
  # release builds do (version without the leading "v").
  if [[ $force == 0 && -x $bin ]] && [[ $("$bin" --version 2>&1 || true) == "$want" ]]; then
    log "ghz $GHZ_VERSION up to date ($bin)"
    return 0
  fi

  log "building ghz $GHZ_VERSION -> $bin"
  local start=$SECONDS tmp=$WORKDIR/ghz
  mkdir -p "$tmp"
  GOBIN=$tmp go install -trimpath -ldflags="-s -w -X main.version=$want" \
    "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  [[ $("$tmp/ghz" --version 2>&1) == "$want" ]] || die "built ghz does not report $want"
  mv -f "$tmp/ghz" "$bin"
  log "built ghz $GHZ_VERSION in $((SECONDS - start))s"
}

build_hey() {
  # hey has no --version: a stamp file next to the binary records what was built.
  local bin=$TOOLS_BIN/hey stamp_file=$TOOLS_BIN/hey.version
  if [[ $force == 0 && -x $bin && -f $stamp_file ]] && [[ $(<"$stamp_file") == "$HEY_VERSION" ]]; then
    log "hey $HEY_VERSION up to date ($bin)"
    return 0
  fi
  log "building hey $HEY_VERSION -> $bin"
  local start=$SECONDS tmp=$WORKDIR/hey
  mkdir -p "$tmp"
  GOBIN=$tmp go install -trimpath -ldflags='-s -w' "github.com/rakyll/hey@$HEY_VERSION"
  { "$tmp/hey" -h 2>&1 || true; } | grep -q -- '-z' || die "built hey does not run"
  mv -f "$tmp/hey" "$bin"
  printf '%s\n' "$HEY_VERSION" >"$stamp_file"
  log "built hey $HEY_VERSION in $((SECONDS - start))s"
}

for t in "${targets[@]}"; do
  "build_$t"
done
