"""Who may use the UI: loopback Host names (or the --token off loopback), and no cross-site writes.

A page on another origin can make the browser send a form post or load a URL here; it
cannot add a custom header or read the answer. So every state-changing request must
carry the per-process CSRF token in a header (put in each page by the server), must not
come from another origin (`Origin`, `Sec-Fetch-Site`), and the Host header must be a
loopback name so a DNS-rebinding page cannot pass for this origin.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskloop.errors import DeskloopError

CSRF_HEADER = "x-deskloop-csrf"
CSRF_PLACEHOLDER = "__DESKLOOP_CSRF__"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Scripts, styles and images come from this server only; no page may frame the UI, so a
# page on another origin cannot trick a click on its buttons.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class UiRefused(DeskloopError):
    """A way of starting the UI that would expose it; the message says what to do."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str) -> None:
    """Off loopback the UI starts sessions for whoever reaches it, so it needs a token."""
    if not is_loopback(host) and not token:
        raise UiRefused(
            f"refusing to serve the UI on {host} without a token: anyone who can reach this "
            "machine could run the agent on your desktop. Pass --token SECRET (open the page "
            "with ?token=SECRET once), or bind to 127.0.0.1"
        )


@dataclass(frozen=True)
class Access:
    """The rules one UI process enforces: its token (empty on loopback) and its CSRF token."""

    token: str = ""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = 0

    @property
    def token_cookie(self) -> str:
        # Cookies ignore ports: a name per port keeps two UIs on one machine apart.
        return f"deskloop_ui_{self.port}"


def host_name(host_header: str) -> str:
    """`127.0.0.1:8890` -> `127.0.0.1`; `[::1]:8890` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def _refuse(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def refusal(access: Access, request: HTTPConnection) -> Response | None:
    """The response that refuses this request, or None when it may go on."""
    method = request.scope["method"]
    headers, query, url_scheme = request.headers, request.query_params, request.url.scheme
    host = headers.get("host", "")
    if not access.token and host_name(host).lower() not in LOOPBACK_NAMES:
        return _refuse(
            403, f"this UI answers only at a loopback address such as "
            f"http://127.0.0.1:{access.port}, not at {host!r}"
        )
    if access.token:
        given = query.get("token")
        if method == "GET" and given is not None and secrets.compare_digest(given, access.token):
            rest = urlencode([(k, v) for k, v in query.multi_items() if k != "token"])
            target = request.url.path + (f"?{rest}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                access.token_cookie, access.token, httponly=True, samesite="strict"
            )
            return response
        bearer = headers.get("authorization", "")
        held = request.cookies.get(access.token_cookie, "")
        if not (
            secrets.compare_digest(held, access.token)
            or secrets.compare_digest(bearer, f"Bearer {access.token}")
        ):
            return PlainTextResponse(
                "This deskloop UI needs its token: open it once as "
                f"{url_scheme}://{host}/?token=THE_TOKEN (the one given to `deskloop ui --token`).",
                status_code=401,
            )
    if method in SAFE_METHODS:
        return None
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _refuse(403, "refused a request sent from another site")
    origin = headers.get("origin")
    if origin is not None and origin != f"{url_scheme}://{host}":
        return _refuse(403, f"refused a request from another origin ({origin})")
    if not secrets.compare_digest(headers.get(CSRF_HEADER, ""), access.csrf):
        return _refuse(
            403, "this request lacks the page's CSRF token; reload the page and try again"
        )
    return None


class AccessMiddleware:
    """Applies `refusal` to every HTTP request and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(self.access, HTTPConnection(scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        raw.append((name.encode(), value.encode()))
                message["headers"] = raw
            await send(message)

        if refused is not None:
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
