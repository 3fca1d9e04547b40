"""A test fixture MCP server: `echo`, a `hang` that never returns, a `crash` that kills it.

Run as `python mcp_fixture_server.py` for stdio, or `python mcp_fixture_server.py --http PORT`
for streamable HTTP.
"""

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("deskloop-test-fixture")


@server.tool(description="Return the text it was given.")
def echo(text: str) -> str:
    print(f"echo called with {text}", file=sys.stderr, flush=True)
    return f"echo: {text}"


@server.tool(description="Never return (a deliberately hung tool).")
async def hang() -> str:
    await asyncio.Event().wait()
    return "unreachable"


@server.tool(description="Exit the server process at once, as a crash would.")
def crash() -> str:
    print("fixture server crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


def main() -> None:
    print("fixture server starting", file=sys.stderr, flush=True)
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
