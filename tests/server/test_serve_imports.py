"""`deskloop serve` with a local model leaves out what only upstreams and tool requests need:
each module is memory held for the life of the server (issue 21)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Loaded only when serving through an upstream (an HTTP client and what its CLI brings),
# or by the first request that carries tools (jsonschema).
LAZY = (
    "httpx",
    "rich",
    "pygments",
    "jsonschema",
    "deskloop.engines.openai",
    "deskloop.server.upstream_service",
)

# What `deskloop serve` does up to serving: parse the command, build the service and the app.
SERVE_PATH = """
import json, sys
from deskloop.cli import build_parser
from deskloop.server.app import create_app
from deskloop.server.run import build_service, settings_from_args
args = build_parser().parse_args(["serve", "--engine", "scripted", "--script", sys.argv[1]])
settings = settings_from_args(args)
service, name = build_service(settings, script=args.script)
create_app(service, settings, name)
print(json.dumps(sorted(sys.modules)))
"""


def test_serving_a_local_model_does_not_import_what_only_upstreams_need(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["ok"]))
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PATH, str(script)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "deskloop.server.local_service" in loaded  # the path was really taken
    assert not [name for name in LAZY if name in loaded]
