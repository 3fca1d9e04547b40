"""The UI's public surface is exactly what its package names, and all of it imports."""

import deskloop.ui


def test_the_public_names_are_the_intended_ones() -> None:
    assert sorted(deskloop.ui.__all__) == [
        "Access",
        "ChatSessions",
        "LiveSession",
        "UiRefused",
        "create_app",
    ]
    for name in deskloop.ui.__all__:
        assert getattr(deskloop.ui, name) is not None
