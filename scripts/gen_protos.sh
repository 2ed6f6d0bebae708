#!/usr/bin/env bash
# Generates the Python code of every contract under protos/ into one place,
# OUT (default gen/), importable as `llmgw.<service>.v1`. Never edit gen/ by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${1:-$ROOT/gen}"
rm -rf "$OUT/llmgw"
mkdir -p "$OUT"
cd "$ROOT/protos"
mapfile -t FILES < <(find llmgw -name '*.proto' | sort)
PATH="$(dirname "$PY"):$PATH" "$PY" -m grpc_tools.protoc -I . \
  --python_out="$OUT" --mypy_out="$OUT" \
  --grpc_python_out="$OUT" --mypy_grpc_out="$OUT" \
  "${FILES[@]}"
# Namespace packages are fine for imports, but mypy and tools like explicit ones.
find "$OUT/llmgw" -type d -exec touch {}/__init__.py \;
echo "generated ${#FILES[@]} contracts into $OUT"
