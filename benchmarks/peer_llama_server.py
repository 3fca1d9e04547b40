"""llama.cpp's own `llama-server`, the natural peer of `deskloop serve`: found, or built once.

It is built from the llama.cpp sources inside the sdist of the llama-cpp-python version
deskloop uses, so both run the same llama.cpp. The build (the llama-server target only,
no curl) takes about 10 minutes on 2 cores and is kept in ~/.cache/deskloop/llama-server.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deskloop" / "llama-server"
# The same as scripts/bootstrap.sh gives llama-cpp-python: no AMX (some VMs list it but trap it).
BUILT_MARKER = "deskloop-build-finished"
BUILD_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" if platform.machine() == "x86_64" else ""


def built_binary() -> Path | None:
    """The cached llama-server if a build of this llama-cpp-python version finished."""
    build = CACHE / f"build-{metadata.version('llama-cpp-python')}"
    binary = build / "bin" / "llama-server"
    # The marker is written after the link, so a build still running is not taken for done.
    return binary if (build / BUILT_MARKER).is_file() and binary.is_file() else None


def find_or_build(say: object = print, *, niceness: int = 10) -> Path:
    """`$LLAMA_SERVER`, then the cached build, then a fresh build; says which.

    Callers at the same time (scripts/test.sh starts a build in the background while the
    tests that need it may already ask) share one build: the second waits for the first.
    The compile runs at `niceness` (10: behind whatever else the machine is doing).
    """
    report = say if callable(say) else print
    given = os.environ.get("LLAMA_SERVER")
    if given:
        report(f"llama-server: {given} (from $LLAMA_SERVER)")
        return Path(given)
    version = metadata.version("llama-cpp-python")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"build-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        binary = built_binary()
        if binary is not None:
            report(
                f"llama-server: {binary} (built earlier from llama-cpp-python {version}'s sources)"
            )
            return binary
        binary = CACHE / f"build-{version}" / "bin" / "llama-server"
        report(
            f"llama-server: building it from the llama.cpp sources in the llama-cpp-python {version} "
            f"sdist into {binary.parent.parent} (about 8 minutes on 2 cores, once)"
        )
        return _build(version, binary, niceness)


def _build(version: str, binary: Path, niceness: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={version}", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
    source = CACHE / f"llama_cpp_python-{version}"
    if not source.is_dir():
        with tarfile.open(sdist) as archive:
            archive.extractall(CACHE, filter="data")
    llama_cpp_source = source / "vendor" / "llama.cpp"
    build = binary.parent.parent
    env = dict(os.environ, CFLAGS=BUILD_FLAGS, CXXFLAGS=BUILD_FLAGS)
    subprocess.run(
        ["cmake", "-S", str(llama_cpp_source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DBUILD_SHARED_LIBS=OFF",
         # Loopback only: no HTTPS. The web UI is not used, and fetching its prebuilt
         # assets waits on a network a CI machine may not reach.
         "-DLLAMA_OPENSSL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    jobs = str(os.cpu_count() or 2)
    subprocess.run(
        ["nice", "-n", str(niceness), "cmake", "--build", str(build), "--target", "llama-server",
         "-j", jobs],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (build / BUILT_MARKER).write_text(f"llama-cpp-python {version}\n")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


last_log: Path | None = None  # the output of the llama-server started last


def last_words(lines: int = 12) -> str:
    """The end of the last llama-server's output, to say why it failed."""
    if last_log is None or not last_log.exists():
        return "(no llama-server output)"
    tail = last_log.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {last_log}:\n" + "\n".join(f"    {line}" for line in tail)


@contextmanager
def llama_server(
    binary: Path, gguf: Path, *, context: int, threads: int
) -> Iterator[tuple[str, int]]:
    """llama-server on loopback as the issue measured it (`-t N -np 1`, tools through --jinja)."""
    port = free_port()
    command = [
        str(binary), "-m", str(gguf), "-c", str(context), "-t", str(threads), "-np", "1",
        "--host", "127.0.0.1", "--port", str(port), "--jinja", "--no-webui",
    ]  # fmt: skip
    global last_log
    last_log = Path(tempfile.gettempdir()) / f"llama-server-{port}.log"
    with last_log.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"llama-server exited ({process.returncode}): {' '.join(command)}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("llama-server did not become ready in 120 s")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resident_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def cpu_hog() -> Iterator[None]:
    """Another process keeping one core busy, as a user's browser or build would."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        yield
    finally:
        hog.kill()
        hog.wait()


def have_cmake() -> bool:
    return shutil.which("cmake") is not None


if __name__ == "__main__":
    # scripts/test.sh builds it here, in the background, while the tests that do not need it run.
    parser = argparse.ArgumentParser(description="find or build llama.cpp's llama-server")
    parser.add_argument("--niceness", type=int, default=10, help="the compile's nice level")
    options = parser.parse_args()
    print(find_or_build(lambda line: print(line, file=sys.stderr), niceness=options.niceness))
