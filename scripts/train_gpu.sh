#!/usr/bin/env bash
# Continue a shipped model on one GPU for a fixed wall time, then run the structure benchmark.
#   scripts/train_gpu.sh SYSTEM FRAMEWORK MINUTES OUTDIR [--resume] [--batch-size N] [--set KEY=VALUE] [...]
# e.g. scripts/train_gpu.sh a-Si shortcut 8 /tmp/a-Si-gpu
# Needs only this repository and a python with torch (PYTHON, default python3). Packages it
# lacks (ase, vesin, torch-geometric, tqdm, psutil) are installed offline from a wheel directory (WHEELS, default
# ./wheels):  pip install --no-index --find-links "$WHEELS". Without a GPU it runs on CPU.
# The logic is in core/train_gpu.py.
set -euo pipefail
if [ "$#" -lt 4 ]; then
  echo "usage: $0 SYSTEM FRAMEWORK MINUTES OUTDIR [--resume] [--batch-size N] [--set SECTION.KEY=VALUE]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-$ROOT/wheels}"
missing=()
for pair in numpy:numpy ase:ase vesin:vesin tqdm:tqdm psutil:psutil torch_geometric:torch-geometric; do
  module="${pair%%:*}"; package="${pair##*:}"
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ ! -d "$WHEELS" ]; then
    echo "error: missing python packages (${missing[*]}) and no wheel directory $WHEELS (set WHEELS)" >&2
    exit 2
  fi
  "$PYTHON" -m pip install --no-index --find-links "$WHEELS" "${missing[@]}"
fi
cd "$ROOT"
exec env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m core.train_gpu "$@"
