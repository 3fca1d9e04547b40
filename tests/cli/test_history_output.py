"""`deskloop history` as a person reads it: titles, headers, one line per hit, readable transcripts."""

from __future__ import annotations

import pytest

from deskloop.cli import main
from deskloop.store import Store


def history(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["history", *argv]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


@pytest.fixture
def two_sessions() -> tuple[int, int]:
    with Store.open() as store:
        task = store.create_session(title="Type hello in Mousepad", model="m", endpoint="http://e")
        store.add_message(task.id, "user", "Type hello in Mousepad")
        store.add_message(
            task.id,
            "assistant",
            [
                {"type": "text", "text": "Typing it."},
                {"type": "tool_use", "id": "t1", "name": "type_text", "input": {"text": "hello"}},
            ],
        )
        store.add_message(
            task.id,
            "user",
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "typed 5 characters\nchanged: e3"}],
                },
            ],
        )
        store.add_message(task.id, "assistant", "Done: the window says hello.")
        store.end_session(task.id, "end_turn")
        chat = store.create_session(model="m", endpoint="http://e")  # chats start untitled
        store.add_message(
            chat.id,
            "user",
            [
                {"type": "text", "text": "what is on my screen,\nplease?"},
                {"type": "text", "text": "\n".join(f"line {n}" for n in range(40))},
            ],
        )
    return task.id, chat.id


def test_the_list_has_headers_and_titles_chats_by_their_first_message(
    capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]
) -> None:
    lines = history(capsys)
    assert lines[0].split() == ["ID", "STARTED", "STATE", "TITLE"]
    chat, task = lines[1], lines[2]
    assert chat.split()[0] == str(two_sessions[1]) and chat.endswith("what is on my screen, | please?")
    assert " running " in chat  # this process holds it open
    assert task.endswith("Type hello in Mousepad") and " finished " in task
    assert len({line.index(line.split()[-1]) for line in (chat, task)}) <= 2
    assert lines[0].index("TITLE") == chat.index("what")


def test_search_finds_prefixes_and_marks_the_match_on_one_line(
    capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]
) -> None:
    for query in ("hel", "hel*", "HELLO"):
        lines = history(capsys, "--search", query)
        assert lines[0].split() == ["ID", "HITS", "WHO", "BEST", "MATCH"]
        assert len(lines) == 2  # one row per session, with the number of its messages that match
        assert "[hello]" in lines[1] or "[Hello]" in lines[1]
        assert lines[1].split()[:2] == [str(two_sessions[0]), "3"]
        assert all(len(line) <= 100 for line in lines)
    screen = history(capsys, "--search", "line")
    assert len(screen) == 2  # one hit, on one line, though the message has 40 lines


def test_no_hits_says_so(capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]) -> None:
    assert history(capsys, "--search", "zebra") == ["no sessions match 'zebra'"]
    assert history(capsys, "--search", '"(*') == ["no sessions match '\"(*'"]


def test_no_sessions_yet_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert history(capsys) == [
        "no sessions yet: `deskloop run TASK` or `deskloop chat` starts one"
    ]


def test_a_transcript_reads_as_a_conversation_not_json(
    capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]
) -> None:
    lines = history(capsys, str(two_sessions[0]))
    assert lines[0] == f"session {two_sessions[0]}: Type hello in Mousepad"
    assert lines[1].endswith("; finished")
    assert lines[2:] == [
        "you> Type hello in Mousepad",
        "agent> Typing it.",
        '  → type_text {"text": "hello"}',
        "    ✓ type_text: typed 5 characters | changed: e3",
        "agent> Done: the window says hello.",
    ]
    assert not any('"type"' in line for line in lines)
    chat = history(capsys, str(two_sessions[1]))
    assert chat[0] == f"session {two_sessions[1]}: what is on my screen, | please?"
    assert "      … (32 more lines)" in chat


def test_search_names_who_said_it_a_tool_result_by_its_tool(
    capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]
) -> None:
    lines = history(capsys, "--search", "typed")
    assert lines[1].split()[:5] == [str(two_sessions[0]), "1", "type_text", "result", "[typed]"]
    assert history(capsys, "--search", "window")[1].split()[2] == "agent"
    assert history(capsys, "--search", "Mousepad")[1].split()[2] == "you"


def test_a_session_that_stopped_at_a_limit_says_which(
    capsys: pytest.CaptureFixture[str], two_sessions: tuple[int, int]
) -> None:
    with Store.open() as store:
        store.end_session(two_sessions[1], "max_turns", "stopped: reached 30 turns (agent.max_turns)")
        store.release_session(two_sessions[1])
    lines = history(capsys)
    assert " stopped at a limit: reached 30 turns (agent.max_turns) " in lines[1]
