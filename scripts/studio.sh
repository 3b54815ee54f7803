#!/usr/bin/env bash
# Install (or reuse) the environment and serve the studio on http://127.0.0.1:${PORT:-5006}/studio
# Extra arguments go to `panel serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh
port="${PORT:-5006}"
if [[ -f studio/main.py ]]; then
    echo "== serving the studio at http://127.0.0.1:${port}/studio (Ctrl-C stops it)"
    exec .venv/bin/panel serve studio --address 127.0.0.1 --port "$port" \
        --allow-websocket-origin "127.0.0.1:${port}" --allow-websocket-origin "localhost:${port}" "$@"
else
    echo "== the studio app (studio/main.py) is not there yet; here is the command line instead:"
    exec .venv/bin/amshortcut --help
fi
