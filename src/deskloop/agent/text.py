"""Short one-line renderings of values for terminal output."""

from __future__ import annotations

import json
from typing import Any


def short(value: Any, limit: int = 100) -> str:
    """`value` on one line, cut to `limit` characters with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # Lines stay apart (" | "), so a result's first line does not run into its diff.
    lines = (" ".join(line.split()) for line in text.splitlines())
    text = " | ".join(line for line in lines if line)
    return text if len(text) <= limit else text[: limit - 1] + "…"
