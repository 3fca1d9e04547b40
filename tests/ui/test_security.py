"""Loopback only by default, a token off loopback, and no state change from another site."""

import argparse
import socket

import httpx
import pytest

from deskloop.cli import main
from deskloop.settings import load_settings
from deskloop.ui import Access, UiRefused, create_app
from deskloop.ui.security import CSRF_HEADER, check_binding
from tests.ui.helpers import BASE, PORT


def plain_client(access: Access, base: str = BASE) -> httpx.AsyncClient:
    """A browser with no page of ours loaded: no CSRF token, whatever origin it is given."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(access)), base_url=base)


async def test_a_cross_origin_form_post_cannot_change_the_endpoint(access: Access) -> None:
    async with plain_client(access) as browser:
        refused = await browser.post(
            "/api/settings",
            data={"model_source": "custom", "custom_url": "http://evil.example:8888"},
            headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
        )
    assert refused.status_code == 403
    assert "another site" in refused.json()["error"]
    assert load_settings().agent.endpoint == ""


async def test_a_cross_origin_post_cannot_start_a_session(access: Access) -> None:
    # An older browser sends no Sec-Fetch-Site; the Origin alone refuses it.
    async with plain_client(access) as browser:
        refused = await browser.post(
            "/api/chat", json={"text": "delete my files"}, headers={"origin": "http://evil.example"}
        )
    assert refused.status_code == 403
    assert "another origin" in refused.json()["error"]


async def test_a_write_without_the_pages_csrf_token_is_refused(access: Access) -> None:
    async with plain_client(access) as browser:
        missing = await browser.post("/api/mcp/x/remove", headers={"origin": BASE})
        wrong = await browser.post(
            "/api/mcp/x/remove", headers={"origin": BASE, CSRF_HEADER: "guessed"}
        )
        right = await browser.post(
            "/api/mcp", json={"name": "t", "command": "true"},
            headers={"origin": BASE, CSRF_HEADER: access.csrf},
        )
    assert missing.status_code == wrong.status_code == 403
    assert "reload the page" in missing.json()["error"]
    assert right.status_code == 200


async def test_a_dns_rebinding_host_is_refused_even_for_reads(access: Access) -> None:
    async with plain_client(access, base="http://attacker.example:8890") as browser:
        refused = await browser.get("/api/settings")
    assert refused.status_code == 403
    assert f"http://127.0.0.1:{PORT}" in refused.json()["error"]
    async with plain_client(access, base=f"http://localhost:{PORT}") as browser:
        assert (await browser.get("/api/settings")).status_code == 200


async def test_pages_cannot_be_framed_by_another_site(access: Access) -> None:
    async with plain_client(access) as browser:
        page = await browser.get("/settings")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_off_loopback_every_request_needs_the_token() -> None:
    access = Access(token="s3cret", port=PORT)
    async with plain_client(access, base=f"http://192.0.2.10:{PORT}") as browser:
        assert (await browser.get("/settings")).status_code == 401
        assert (await browser.get("/api/settings?token=wrong")).status_code == 401
        signed_in = await browser.get("/settings?token=s3cret")
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/settings"
        # The cookie it set now opens every page; writes still need the CSRF token.
        assert (await browser.get("/api/settings")).status_code == 200
        write = await browser.post(
            "/api/settings", json={"model_source": "embedded"},
            headers={CSRF_HEADER: access.csrf, "origin": f"http://192.0.2.10:{PORT}"},
        )
        assert write.status_code == 200
    async with plain_client(access, base=f"http://192.0.2.10:{PORT}") as other:
        bearer = await other.get("/api/settings", headers={"authorization": "Bearer s3cret"})
        assert bearer.status_code == 200


def test_binding_off_loopback_without_a_token_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(UiRefused, match="--token"):
        check_binding("0.0.0.0", "")
    check_binding("0.0.0.0", "s3cret")
    check_binding("::1", "")
    assert main(["ui", "--host", "0.0.0.0", "--port", "0", "--no-open"]) == 1
    assert "without a token" in capsys.readouterr().err


def test_a_port_in_use_is_said_with_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port), "--no-open"]) == 1
    said = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in said and "another --port" in said


def test_the_ui_command_takes_its_flags() -> None:
    from deskloop.cli import build_parser

    args = build_parser().parse_args(
        ["ui", "--host", "127.0.0.1", "--port", "9000", "--token", "t", "--no-open"]
    )
    assert isinstance(args, argparse.Namespace)
    assert (args.host, args.port, args.token, args.no_open) == ("127.0.0.1", 9000, "t", True)
