"""`deskloop serve`: load the engine once, bind, and serve until interrupted."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from dataclasses import replace

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine
from deskloop.engines.models import default_engine_name
from deskloop.errors import DeskloopError
from deskloop.listening import listening_socket
from deskloop.server.app import ModelService, create_app
from deskloop.server.local_service import LocalModelService
from deskloop.settings import ServerSettings, load_settings

log = logging.getLogger("deskloop.server")

UPSTREAM_ENGINES = ("openai", "anthropic")


class ServeRefused(DeskloopError):
    """A serve configuration that is unsafe or incomplete."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    settings = load_settings().server
    overrides = {
        "engine": args.engine,
        "model": args.model,
        "host": args.host,
        "port": args.port,
        "api_key": args.api_key,
        "upstream": args.upstream,
        "context_window": args.context_window,
        "threads": args.threads,
        "tool_format": args.tool_format,
        "tool_diet": args.tool_diet,
        "prompt_drafts": args.prompt_drafts,
        "aliases": args.aliases,
    }
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def check_binding(settings: ServerSettings) -> None:
    if not is_loopback(settings.host) and not settings.api_key:
        raise ServeRefused(
            f"refusing to serve on {settings.host} without an API key: anyone who can reach "
            "this machine could use the model. Pass --api-key KEY (clients send it as "
            "x-api-key), or bind to 127.0.0.1"
        )


def engine_name_for(settings: ServerSettings) -> str:
    if settings.engine:
        return settings.engine
    return "openai" if settings.upstream else default_engine_name()


def build_service(
    settings: ServerSettings, *, script: str | None = None, probe: bool = False
) -> tuple[ModelService, str]:
    name = engine_name_for(settings)
    if name in UPSTREAM_ENGINES:
        if not settings.upstream:
            raise ServeRefused(f"the {name} engine needs --upstream URL (the server to forward to)")
        # Only an upstream needs an HTTP client (httpx, with rich and pygments for its CLI).
        from deskloop.engines.openai import OpenAIEngine
        from deskloop.server.upstream_service import UpstreamModelService

        upstream_engine = create_engine(
            name,
            settings.model,
            upstream=settings.upstream,
            upstream_api_key=settings.upstream_api_key,
        )
        assert not isinstance(upstream_engine, LocalEngine)
        if isinstance(upstream_engine, OpenAIEngine) and probe:
            upstream_engine.probe_now()  # what it enforces, in the log before serving
        upstream = UpstreamModelService(
            upstream_engine,
            queue_size=settings.queue_size,
            text_tool_calls=settings.text_tool_calls != "off",
        )
        return upstream, name
    engine = create_engine(
        name,
        settings.model,
        context_window=settings.context_window,
        threads=settings.threads,
        script=script,
    )
    assert isinstance(engine, LocalEngine)
    engine.fast_forward = settings.fast_forward
    engine.prompt_drafts = settings.prompt_drafts
    service = LocalModelService(
        engine,
        context_window=settings.context_window,
        queue_size=settings.queue_size,
        tool_format=settings.tool_format,
        tool_diet=settings.tool_diet,
    )
    return service, name


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise ServeRefused(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another server running "
            "there? Pick another --port, or --port 0 for a free one"
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_from_args(args)
    check_binding(settings)
    sock = bind_socket(settings.host, settings.port)
    if engine_name_for(settings) in UPSTREAM_ENGINES:
        # The openai engine asks the upstream what it can enforce before serving (a few
        # short generations: a minute on a small CPU upstream).
        said = f"asking {settings.upstream or 'the upstream'} what it serves and enforces"
    else:
        said = f"loading {settings.model or 'the embedded model'}"
    print(f"deskloop: {said} ...", file=sys.stderr)
    service, engine_name = build_service(settings, script=args.script, probe=True)
    app = create_app(service, settings, engine_name)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    # One line on stdout when ready; `deskloop run` reads it to learn a port picked with 0.
    print(
        f"deskloop: serving {service.model_id} ({engine_name}) at http://{shown_host}:{port}",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
