#!/usr/bin/env bash
# The main job, from nothing: set up, then run one real agent session on the embedded
# model (`deskloop demo`): on Linux a private virtual desktop with Mousepad, the agent
# observing it through the accessibility tree and acting on it. Arguments go to the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/deskloop" demo "$@"
