"""The Routines API: the scheduler's own checks and words, through the page's requests."""

import httpx

from deskloop.routines import get_routine
from deskloop.store import Store


async def test_create_edit_and_remove(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/routines",
        json={"name": "morning", "prompt": "Summarise my mail", "schedule": "cron:0 9 * * 1-5",
              "tools": "", "timezone": "Europe/Paris", "timeout_s": "600", "enabled": True},
    )
    assert created.status_code == 201
    (listed,) = created.json()["routines"]
    assert listed["name"] == "morning" and listed["schedule"] == "cron:0 9 * * 1-5"
    assert listed["tools"] is None and listed["timezone"] == "Europe/Paris"
    assert listed["next_fire_at"] is not None

    edited = await client.post(
        "/api/routines/morning",
        json={"name": "mail", "prompt": "Summarise my unread mail", "schedule": "every:3600",
              "tools": "search_files, execute_sql", "timezone": "", "enabled": False},
    )
    assert edited.status_code == 200
    (listed,) = edited.json()["routines"]
    assert (listed["name"], listed["schedule"], listed["enabled"]) == ("mail", "every:3600", False)
    assert listed["tools"] == ["search_files", "execute_sql"]
    with Store.open() as store:
        assert get_routine(store, "mail").prompt == "Summarise my unread mail"
    assert (await client.get("/api/routines/mail/runs")).json() == {"runs": []}

    removed = await client.post("/api/routines/mail/remove")
    assert removed.json()["routines"] == []


async def test_mistakes_come_back_in_the_schedulers_words(client: httpx.AsyncClient) -> None:
    bad = await client.post(
        "/api/routines", json={"name": "x", "prompt": "p", "schedule": "sometimes"}
    )
    assert bad.status_code == 400 and "cron:" in bad.json()["error"]
    unknown = await client.post("/api/routines/nope/run")
    assert unknown.status_code == 400 and "no routine named 'nope'" in unknown.json()["error"]
    timeout = await client.post(
        "/api/routines", json={"name": "x", "prompt": "p", "schedule": "every:60",
                               "timeout_s": "soon"},
    )
    assert "number of seconds" in timeout.json()["error"]
