"""deskloop: a local desktop agent, and an Anthropic Messages server for local models."""

__version__ = "0.1.0"
