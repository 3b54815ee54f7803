#!/usr/bin/env bash
# Create (or reuse) .venv and install AMShortcut Studio into it, editable.
# Usage: bash scripts/install.sh [--test]   (--test adds pytest, playwright, ... and Debian's chromium)
# Sourced or run from anywhere; works on a fresh clone, as root (CI) or as a user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

if [[ ! -x .venv/bin/python ]]; then
    python=""
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            python="$candidate"
            break
        fi
    done
    [[ -n "$python" ]] || { echo "install.sh: need Python >= 3.11 (python3.11 or python3)" >&2; exit 1; }
    echo "== creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi

pip=(.venv/bin/python -m pip install --quiet --progress-bar off)
# torch first, pinned: this machine has the 2.13.0 CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
echo "== pip install torch==2.13.0 (CPU)"
"${pip[@]}" torch==2.13.0
if (( with_tests )); then
    echo "== pip install -e '.[test]'"
    "${pip[@]}" -e '.[test]'
else
    echo "== pip install -e ."
    "${pip[@]}" -e .
fi

if (( with_tests )) && [[ ! -x /usr/bin/chromium ]]; then
    # The studio's browser tests drive Debian's chromium through playwright (NOTES.md).
    echo "== apt-get install chromium (for the studio browser tests)"
    sudo=()
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
fi
