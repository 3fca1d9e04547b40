"""History: recent sessions, full-text search, and a stored session as the chat page's events."""

import httpx

from deskloop.store import Store


def seed() -> tuple[int, int]:
    with Store.open() as store:
        first = store.create_session(title="invoice for March", endpoint="http://e", model="m")
        store.add_message(first.id, "user", "Find the invoice for March")
        store.add_message(
            first.id, "assistant",
            [{"type": "text", "text": "Looking."},
             {"type": "tool_use", "id": "t1", "name": "find_file", "input": {"q": "invoice"}}],
        )
        store.add_message(
            first.id, "user",
            [{"type": "tool_result", "tool_use_id": "t1",
              "content": [{"type": "text", "text": "march-invoice.pdf"}]}],
        )
        second = store.create_session(title="weather", endpoint="http://e", model="m")
        store.add_message(second.id, "user", "What is the weather?")
    return first.id, second.id


async def test_recent_sessions_and_search(client: httpx.AsyncClient) -> None:
    first, second = seed()
    recent = (await client.get("/api/history")).json()["sessions"]
    assert [s["id"] for s in recent] == [second, first]
    hits = (await client.get("/api/history", params={"q": "invoice march"})).json()["hits"]
    assert {hit["session_id"] for hit in hits} == {first}
    assert any("[invoice]" in hit["snippet"].lower() for hit in hits)
    assert hits[0]["title"] == "invoice for March"
    # one row per session: the best message's words, who said them, how many messages match
    assert len(hits) == 1 and hits[0]["hits"] == 2
    assert hits[0]["who"] == "find_file result"
    assert hits[0]["snippet"] == "[march]-[invoice].pdf"
    assert recent[1]["state_words"] == "running"  # held by this (test) process
    assert (await client.get("/api/history", params={"q": "nothing-like-this"})).json()["hits"] == []
    bad = await client.get("/api/history", params={"limit": "lots"})
    assert bad.status_code == 400


async def test_a_session_reads_as_the_chat_events(client: httpx.AsyncClient) -> None:
    first, _ = seed()
    data = (await client.get(f"/api/sessions/{first}")).json()
    assert data["session"]["title"] == "invoice for March"
    assert data["session"]["state"] == "running"
    assert [e["event"] for e in data["transcript"]] == [
        "user_message", "text_delta", "tool_start", "turn_break", "tool_end",
    ]
    result = data["transcript"][-1]
    assert result["name"] == "find_file" and result["content"][0]["text"] == "march-invoice.pdf"
    missing = await client.get("/api/sessions/999")
    assert missing.status_code == 404 and "no session 999" in missing.json()["error"]


async def test_an_untitled_session_is_titled_by_its_first_words_as_in_the_cli(
    client: httpx.AsyncClient,
) -> None:
    with Store.open() as store:
        chat = store.create_session(endpoint="http://e", model="m")
        store.add_message(chat.id, "user", "Tidy my downloads")
        store.end_session(chat.id, "timed_out", "stopped after 60 s, the run's timeout")
    data = (await client.get(f"/api/sessions/{chat.id}")).json()["session"]
    assert data["title"] == "Tidy my downloads"
    assert data["state_words"] == "timed out: stopped after 60 s, the run's timeout"
