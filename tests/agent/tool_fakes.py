"""Small in-test tools (fakes named as such) for registry, policy and dispatch tests."""

from pathlib import Path
from typing import Any

from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import RiskClass, TimeoutTier, Tool, ToolContext, ToolOutput

OBJECT_WITH_TEXT = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


def fake_tool(
    name: str,
    run: Any = None,
    *,
    risk: RiskClass = "read",
    tier: TimeoutTier = TimeoutTier.INTERNAL,
    schema: dict[str, Any] | None = None,
    source: str = "native",
    untrusted: bool = False,
) -> Tool:
    async def echo(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        return f"{name}: {tool_input.get('text', '')}"

    return Tool(
        name=name,
        description=f"fake tool {name}",
        input_schema=schema if schema is not None else OBJECT_WITH_TEXT,
        risk=risk,
        timeout_tier=tier,
        run=run if run is not None else echo,
        source=source,
        untrusted=untrusted,
    )


def memory_context(**fields: Any) -> ToolContext:
    """A tool context over a real SQLite store held in memory, for tests that need no files."""
    store = Store.open(Path(":memory:"))
    return ToolContext(settings=load_settings(), paths=paths(), store=store, **fields)
