"""The UI in-process (httpx over ASGI) for API tests, as its own pages' requests come."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from deskloop.ui import Access, create_app
from deskloop.ui.security import CSRF_HEADER
from tests.ui.helpers import BASE, PORT


@pytest.fixture
def access() -> Access:
    return Access(port=PORT)


@pytest.fixture
async def client(access: Access) -> AsyncIterator[httpx.AsyncClient]:
    """A same-origin page's requests: the CSRF header and this origin, as the UI's own JS sends."""
    transport = httpx.ASGITransport(app=create_app(access))
    headers = {CSRF_HEADER: access.csrf, "origin": BASE}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
        yield http
