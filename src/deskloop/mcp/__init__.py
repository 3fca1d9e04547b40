"""MCP: the servers file, client connections to MCP servers, and their tools in the registry."""
