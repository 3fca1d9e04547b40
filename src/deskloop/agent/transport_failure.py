"""What went wrong on the wire to the model server, told from the exception's causes.

The Anthropic SDK wraps transport errors differently across versions (1.x on httpx, 2.x
on httpx2; 2.17 turned a stream cut mid-answer into `APIConnectionError`), so the kind
is decided on the operating system's own errors in the cause chain and on whether any
byte of the answer had arrived, with the transport's class names only as a fallback.
"""

from __future__ import annotations

import errno
import importlib
import socket
import ssl
from collections.abc import Iterator
from enum import Enum


class TransportFailure(Enum):
    REFUSED = "refused"  # nothing listens there
    UNRESOLVED = "unresolved"  # the host name does not resolve
    UNREACHABLE = "unreachable"  # no route to the host
    TIMED_OUT = "timed_out"  # connected (or tried to), then no answer in time
    TLS = "tls"  # the TLS handshake failed: certificate, or not TLS at all
    BROKE_OFF = "broke_off"  # the answer had started, then the connection ended
    DROPPED = "dropped"  # the connection closed before any answer
    OTHER = "other"


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
_DROPPED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
# httpx / httpx2 / httpcore names, used only when no OS error is in the chain.
_TIMEOUT_NAMES = ("Timeout", "TimeoutError", "TimeoutException")
_CONNECT_NAMES = {"ConnectError"}
_DROPPED_NAMES = {"RemoteProtocolError", "ReadError", "WriteError", "IncompleteRead"}


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def classify(exc: BaseException, *, answer_started: bool) -> TransportFailure:
    chain = list(causes(exc))
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        return TransportFailure.TLS
    timed_out = any(
        isinstance(e, TimeoutError) or type(e).__name__.endswith(_TIMEOUT_NAMES) for e in chain
    )
    if answer_started:
        return TransportFailure.TIMED_OUT if timed_out else TransportFailure.BROKE_OFF
    if any(isinstance(e, socket.gaierror) for e in chain):
        return TransportFailure.UNRESOLVED
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return TransportFailure.REFUSED
    if any(isinstance(e, OSError) and e.errno in _UNREACHABLE_ERRNOS for e in chain):
        return TransportFailure.UNREACHABLE
    if timed_out:
        return TransportFailure.TIMED_OUT
    if any(
        isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError)
        or (isinstance(e, OSError) and e.errno in _DROPPED_ERRNOS)
        or type(e).__name__ in _DROPPED_NAMES
        for e in chain
    ):
        return TransportFailure.DROPPED
    if any(type(e).__name__ in _CONNECT_NAMES for e in chain):
        # anyio says "All connection attempts failed" without the OS error on some paths
        return TransportFailure.REFUSED
    return TransportFailure.OTHER


def describe(
    failure: TransportFailure, url: str, *, waited_s: float | None = None, source: str = ""
) -> str:
    """The failure in words, with what to do first; the caller adds how to change endpoint.

    `source`: the setting that chose this URL, named after it ("--endpoint").
    """
    if source:
        url = f"{url} ({source})"
    match failure:
        case TransportFailure.REFUSED:
            return f"nothing is answering at {url}: start the model server there"
        case TransportFailure.UNRESOLVED:
            return f"the host name in {url} does not resolve: check the address for typos"
        case TransportFailure.UNREACHABLE:
            return f"{url} cannot be reached from this machine: check the network or a VPN"
        case TransportFailure.TIMED_OUT:
            within = f" within {waited_s:g} s" if waited_s is not None else ""
            return (
                f"the model server at {url} did not answer{within}: it may be busy or stuck; "
                "check its log, or raise the timeout"
            )
        case TransportFailure.TLS:
            return (
                f"the secure connection to {url} failed (TLS: the certificate is not trusted, "
                "or the server does not speak https there): check http:// versus https://, "
                "or install the server's certificate authority"
            )
        case TransportFailure.BROKE_OFF:
            return (
                f"the model server at {url} broke off its answer: check that server's log, "
                "then try again"
            )
        case TransportFailure.DROPPED:
            return (
                f"the model server at {url} closed the connection without answering: check "
                "that server's log (it may have crashed), then try again"
            )
        case TransportFailure.OTHER:
            return f"talking to the model server at {url} failed"


def _transport_error_types() -> tuple[type[BaseException], ...]:
    """The transport errors the SDK may let through: httpx's and httpx2's, whichever exist."""
    kinds: list[type[BaseException]] = [OSError]
    for module in ("httpx", "httpx2"):
        try:
            transport = importlib.import_module(module)
        except ImportError:
            continue
        kinds.append(transport.TransportError)
    return tuple(kinds)


TRANSPORT_ERRORS = _transport_error_types()
