"""Doctor: the same checks as `deskloop doctor`, each failure with its fix."""

import sys

import httpx
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux checks")
async def test_the_checks_come_with_their_fixes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    report = (await client.get("/api/doctor")).json()
    display = next(c for c in report["checks"] if c["name"] == "display")
    assert display["status"] == "fail"
    assert "DISPLAY" in display["fix"]
    assert report["can_act"] is False
    # The browser's attach route too, as `deskloop doctor` prints it.
    browser = next(c for c in report["checks"] if c["name"] == "browser")
    assert browser["status"] in ("ok", "warn") and "remote debugging" in browser["detail"] + browser["fix"]
