#!/usr/bin/env bash
# Refreshes requirements/lock.txt: every dependency of deskloop and its extras, pinned with
# hashes, for Linux (x86-64, arm64) and macOS (arm64) in one universal file. Run it when
# pyproject.toml's dependencies change or to take newer releases, then run
# ./scripts/test.sh (which installs exactly the new lock) before committing the lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
uv="$root/.venv/bin/uv"
[ -x "$uv" ] || { echo "run ./scripts/bootstrap.sh first (it installs uv into .venv)" >&2; exit 1; }
"$uv" pip compile pyproject.toml --all-extras --universal --generate-hashes \
    --python-version 3.11 --no-header --quiet --upgrade \
    -o requirements/lock.txt "$@"
echo "requirements/lock.txt refreshed; now run ./scripts/test.sh, then commit it" >&2
