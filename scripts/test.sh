#!/usr/bin/env bash
# Every check, from nothing: set up, then lint (ruff), types (mypy, strict on src/),
# and the whole test suite, including the slow tests with real models and desktops.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
bin="$root/.venv/bin"
echo "== ruff"
"$bin/ruff" check src tests benchmarks scripts
echo "== mypy"
"$bin/mypy"
echo "== pytest"
"$bin/pytest" "$@"
