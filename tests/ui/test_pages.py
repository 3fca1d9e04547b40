"""Every page is served from the package, with this process's CSRF token and nothing remote."""

import re
from importlib import resources

import httpx
import pytest

from deskloop.ui import Access
from deskloop.ui.pages import PAGES
from deskloop.ui.security import CSRF_PLACEHOLDER

STATIC = resources.files("deskloop.ui") / "static"


@pytest.mark.parametrize("path", [p.replace("{session_id:int}", "7") for p in PAGES])
async def test_each_page_carries_the_csrf_token(
    client: httpx.AsyncClient, access: Access, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<meta name="deskloop-csrf" content="{access.csrf}">' in page.text
    assert CSRF_PLACEHOLDER not in page.text


async def test_the_root_goes_to_chat_and_assets_are_local(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).headers["location"] == "/chat"
    for asset in ("common.css", "common.js", "chat.js", "settings.js"):
        served = await client.get(f"/static/{asset}")
        assert served.status_code == 200, asset
    for file in STATIC.iterdir():
        text = file.read_text(encoding="utf-8")
        # No CDN: nothing is loaded from another host, and no inline script or style.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), file.name
        assert "<script>" not in text and " style=" not in text, file.name


async def test_a_bug_answers_one_line_not_a_traceback(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("the probe fell over")

    monkeypatch.setattr("deskloop.ui.doctor_page.run_doctor", broken)
    answer = await client.get("/api/doctor")
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal error (RuntimeError: the probe fell over); see the terminal "
        "running `deskloop ui`"
    }
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "GET /api/doctor (RuntimeError: the probe fell over)" in logged.getMessage()
    assert logged.exc_info is None
