"""`deskloop ui`: bind (loopback unless a token is given), say where, open the browser, serve."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import webbrowser

from deskloop.listening import listening_socket
from deskloop.ui.security import UiRefused, check_binding

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8890


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise UiRefused(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another `deskloop ui` "
            "running there? Open that one, or pick another --port (0 picks a free one)"
        ) from exc


def can_open_browser() -> bool:
    """False where `webbrowser` would fall back to a text browser in this terminal."""
    platform: str = sys.platform
    if platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def ui_command(args: argparse.Namespace) -> int:
    import uvicorn

    from deskloop.agent.session import release_embedded_server
    from deskloop.ui.app import create_app
    from deskloop.ui.security import Access

    host: str = args.host or DEFAULT_HOST
    token: str = args.token or ""
    check_binding(host, token)
    sock = bind_socket(host, DEFAULT_PORT if args.port is None else args.port)
    port = sock.getsockname()[1]
    app = create_app(Access(token=token, port=port))
    shown = DEFAULT_HOST if host in ("0.0.0.0", "::", "[::]") else host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    # The socket listens already, so the page can connect as soon as this line is out.
    print(f"deskloop ui at {url}", flush=True)
    if not args.no_open:
        if can_open_browser():
            webbrowser.open(f"{url}/?token={token}" if token else url)
        else:
            print("deskloop: no display to open a browser on; open the address above",
                  file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        release_embedded_server()
    return 0
