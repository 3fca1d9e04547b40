#!/usr/bin/env bash
# The main job, from nothing: set up, start `deskloop serve` on the embedded model, and
# send it one request through the official Anthropic SDK, streaming the answer.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/python" "$root/scripts/try_server.py" "$@"
