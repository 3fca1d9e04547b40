"""The root of deskloop's own exceptions.

Anything derived from `DeskloopError` carries a message written for the user; the CLI
prints it without a traceback. Bugs (every other exception) are not caught there.
"""


class DeskloopError(Exception):
    """A failure the user can act on; the message says what to do."""
