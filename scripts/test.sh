#!/usr/bin/env bash
# Install (or reuse) the environment and run the whole test suite; extra arguments go to pytest.
# Usage: bash scripts/test.sh [pytest args, e.g. -k metrics -x]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh --test
echo "== pytest"
# --timeout: one hung test (a browser, a subprocess) fails alone instead of stalling CI.
# -n auto --dist loadfile: one worker per core, each test file on one worker (its module
# fixtures, e.g. the served studio, are made once).
exec .venv/bin/python -m pytest --timeout=900 -n auto --dist loadfile "$@"
