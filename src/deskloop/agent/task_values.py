"""The text a person would type for a task: quoted phrases, what follows "type", numbers.

Small models cannot copy a value out of the task: SmolLM2-135M set "set the spin button
to 42" to 123456789 and typed made-up text into fields. For them the text of `type_text`
and `set_value` is a grounded choice among these spans, enforced by the server's grammar
like element ids.
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<![\w])'([^']+)'(?![\w])")
# What follows a typing verb, up to where the place of typing starts.
_AFTER_VERB = re.compile(
    r"\b(?:type|write|enter|input|add|put|paste|fill in|replace [\w\s]+? with|"
    r"(?:set|change) [\w\s]+? to|rename [\w\s]+? to)\s+"
    r"(?:(?:in |as )?the (?:words?|text|phrase|number|phone number|value|name|e-?mail(?: address)?"
    r"|date)\s+)?(.+?)"
    r"(?=\s+(?:into|in|to|at|on|onto|inside|under|after|before|of the|from)\s|[,;.!?]?$|[,;!?]\s)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d\s().-]{4,}\d(?![\w-])")
_DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}\.\d{1,2}\.\d{2,4}\b|"
    r"\b\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{4}\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:[.,]\d+)?(?![\w-])")
_PLACEHOLDER = "\x00quoted\x00"
# Words after a typing verb that are not a value ("type into the entry").
_NOT_A_VALUE = {"it", "them", "this", "that", "something", "text", "the text", "a note"}


def value_spans(task: str) -> list[str]:
    """What the task would have typed, most specific first, each once."""
    spans: list[str] = []

    def keep(value: str, *, exact: bool = False) -> None:
        value = value if exact else value.strip().strip(",;")
        if value and value.lower() not in _NOT_A_VALUE and value not in spans:
            spans.append(value)

    for match in _QUOTED.finditer(task):
        keep(next(group for group in match.groups() if group), exact=True)
    unquoted = _QUOTED.sub(f" {_PLACEHOLDER} ", task)
    for match in _AFTER_VERB.finditer(unquoted):
        if _PLACEHOLDER not in match.group(1):
            keep(match.group(1))
    for pattern in (_EMAIL, _DATE, _PHONE):
        for match in pattern.finditer(task):
            keep(match.group(0))
    for match in _NUMBER.finditer(task):
        if not _inside_any(match.group(0), spans):
            keep(match.group(0))
    return spans


def _inside_any(value: str, spans: list[str]) -> bool:
    return any(value != span and value in span for span in spans)
