"""The argument parser's words for people: no internal names, suggestions for typos.

argparse's own messages name destinations ("required: mcp_action") and Python types
("invalid int value"); `CommandParser` rewrites them, and the value types here check
ranges when the arguments are read, so a bad value is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

_INVALID_CHOICE = re.compile(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)$", re.S)
_REQUIRED = re.compile(r"the following arguments are required: (.*)$")
_BAD_NUMBER = re.compile(r"argument (\S+): invalid (int|float) value: (.*)$")
_CHECKED_VALUE = re.compile(r"argument (\S+): (.*)$", re.S)
_KINDS = {"int": "a whole number", "float": "a number"}


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors say what to type; subcommand parsers inherit it.

    `command_after_separator`: the name of a list argument that takes everything after
    `--` (as `mcp add NAME [OPTIONS] -- COMMAND ARGS`), so options may follow NAME.
    """

    command_after_separator: str | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        wanted = self.command_after_separator
        given = list(sys.argv[1:] if args is None else args)
        if wanted is None or "--" not in given:
            return super().parse_known_args(given, namespace)
        cut = given.index("--")
        parsed, extras = super().parse_known_args(given[:cut], namespace)
        setattr(parsed, wanted, [*(getattr(parsed, wanted, None) or []), *given[cut + 1 :]])
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {self._for_people(message)}\n")

    def _subcommands(self) -> argparse._SubParsersAction[Any] | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        return None

    def _for_people(self, message: str) -> str:
        subcommands = self._subcommands()
        choice = _INVALID_CHOICE.match(message)
        if choice is not None and subcommands is not None:
            given = choice.group(2)
            names = list(subcommands.choices)
            close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            return f"no command {given!r}; {hint}choose one of: {', '.join(names)}"
        required = _REQUIRED.match(message)
        if required is not None:
            missing = required.group(1).split(", ")
            if subcommands is not None and _name_of(subcommands) in missing:
                choices = ", ".join(subcommands.choices)
                return f"say what to do: {choices} (`{self.prog} --help` explains each)"
            return f"missing {' and '.join(missing)} (`{self.prog} --help` shows the usage)"
        number = _BAD_NUMBER.match(message)
        if number is not None:
            flag, kind, value = number.groups()
            return f"{flag} must be {_KINDS[kind]}, not {value}"
        checked = _CHECKED_VALUE.match(message)
        if checked is not None:  # from the value types below
            flag, said = checked.groups()
            return f"{flag} {said}" if said.startswith("must") else said
        return message


def _name_of(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    return str(action.dest)


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port number from 0 to 65535 (0 picks a free one), not {port}"
        )
    return port


def positive_number(text: str) -> int:
    """A whole number of 1 or more."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {number}")
    return number


def thread_count(text: str) -> int:
    """A number of threads: 1 or more, or 0 for the adaptive default."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of 1 or more (0: follow the free cores), not {number}"
        )
    return number


def task_text(text: str) -> str:
    """What the agent should do: any words, but some."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            'the task is empty: say what the agent should do, e.g. deskloop run "open Mousepad"'
        )
    return text


def print_table(rows: Sequence[Sequence[str]], *, numbers: Sequence[int] = ()) -> None:
    """Rows (the first is the header) in columns as wide as their widest cell.

    Columns listed in `numbers` are right-aligned; the last column is never padded.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            cell.rjust(width) if column in numbers else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        print("  ".join([*cells, row[-1]]).rstrip())


def base_url(text: str) -> str:
    """An http(s) URL of a server, as `--endpoint` and `--upstream` take it."""
    from deskloop.settings import is_url

    if not is_url(text):
        raise argparse.ArgumentTypeError(
            f"must be a URL like http://127.0.0.1:8888, not {text!r}"
        )
    return text
