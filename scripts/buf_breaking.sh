#!/usr/bin/env bash
# `buf breaking` of protos/ against the previous contract, so a change to a .proto is
# checked compatible (the FILE rules of protos/buf.yaml).
#
# The previous contract is, in order:
#   - BUF_AGAINST, any git revision (a tag such as contract-v1, origin/main, a sha);
#   - on a branch: the merge base with main (local `main`, else `origin/main`; main's tip
#     when a shallow checkout has no merge base);
#   - on main itself (or when the merge base is HEAD): the commit before HEAD.
# Its protos/ is exported with `git archive`, so this works alike in a clone, a worktree
# and CI. A shallow CI checkout must fetch that revision (e.g. fetch-depth: 0, or
# `git fetch --depth=1 origin main`); a revision that cannot be found is an error, never a
# silent pass.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUF="${BUF:-$ROOT/.venv/bin/buf}"
cd "$ROOT"

resolve() { git rev-parse --verify --quiet "$1^{commit}" 2>/dev/null; }

against="${BUF_AGAINST:-}"
if [[ -n "$against" ]]; then
  base="$(resolve "$against")" || { echo "buf breaking: BUF_AGAINST=$against is not a revision here" >&2; exit 1; }
else
  head="$(git rev-parse HEAD)"
  base=""
  for branch in main origin/main; do
    if tip="$(resolve "$branch")"; then
      # A shallow checkout has no merge base: main's tip is then the previous contract.
      base="$(git merge-base "$head" "$tip" 2>/dev/null || echo "$tip")"
      break
    fi
  done
  if [[ -z "$base" || "$base" == "$head" ]]; then
    base="$(resolve HEAD~1)" || {
      echo "buf breaking: no previous commit to compare with (shallow clone? fetch more history or set BUF_AGAINST)" >&2
      exit 1
    }
  fi
fi

if ! git cat-file -e "$base:protos" 2>/dev/null; then
  echo "buf breaking: $base has no protos/: nothing to compare with"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git archive "$base" protos | tar -x -C "$tmp"
cd protos
"$BUF" breaking --against "$tmp/protos"
echo "buf breaking: protos/ compatible with $(git rev-parse --short "$base")"
