"""Start `deskloop serve` on the embedded model and ask it one question through the SDK.

This is what `scripts/try.sh` runs after setting up. It shows the seam: a client written
for the cloud API talks to a model on this machine by changing only the base URL.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import anthropic


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "deskloop", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if "serving" not in line:
        server.wait(timeout=10)
        raise SystemExit("deskloop serve did not start; its messages are above")
    return server, line.rsplit(" at ", 1)[1].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("question", nargs="?", default="Name three colours of the rainbow.")
    args = parser.parse_args()
    server, url = start_server()
    try:
        print(f"deskloop serve is up at {url}; asking: {args.question}\n", file=sys.stderr)
        client = anthropic.Anthropic(base_url=url, api_key="not-needed-locally")
        started = time.perf_counter()
        with client.messages.stream(
            model="claude-opus-5-5",  # any claude-* name maps to the served model
            max_tokens=120,
            messages=[{"role": "user", "content": args.question}],
        ) as stream:
            for text in stream.text_stream:
                print(text, end="", flush=True)
            final = stream.get_final_message()
        seconds = time.perf_counter() - started
        usage = final.usage
        print(
            f"\n\n[{final.model} via {url}: stop_reason={final.stop_reason}, "
            f"{usage.input_tokens} prompt + {usage.output_tokens} output tokens, {seconds:.1f} s]",
            file=sys.stderr,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
