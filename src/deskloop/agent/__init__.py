"""The agent: tool registry and dispatch, permission policy, and (next) the loop."""
