"""Which Messages endpoint a session talks to, the embedded server, and endpoint errors in words.

First that is set: `--endpoint`, the `agent.endpoint` setting, `ANTHROPIC_BASE_URL`, else
the embedded server: the resident one every command shares (agent/resident_server.py).
`EmbeddedServer` is a private child server, for benchmarks and tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO

import anthropic

from deskloop.agent.child_server import die_with_parent, read_ready_line
from deskloop.agent.transport_failure import TransportFailure, classify, describe
from deskloop.errors import DeskloopError
from deskloop.settings import AgentSettings

# Loading the embedded model from disk; a first run may also convert or page it in.
EMBEDDED_START_TIMEOUT_S = 300.0
LOCAL_API_KEY = "deskloop-local"
# How long the check before a session waits for the endpoint's model list (no retries).
ENDPOINT_CHECK_TIMEOUT_S = 5.0


class EndpointError(DeskloopError):
    """The model endpoint cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Endpoint:
    url: str | None  # None: the embedded server, started on demand
    source: str  # which setting chose it, for messages
    api_key: str

    def how_to_fix(self) -> str:
        """What a person changes to point the agent elsewhere, by where the URL came from."""
        if self.source == "--endpoint":
            return "check the URL given to --endpoint, or leave it out to use the embedded model"
        if self.source == "ANTHROPIC_BASE_URL":
            return (
                "fix ANTHROPIC_BASE_URL, or unset it to use the embedded model "
                "(`deskloop config set agent.endpoint URL` also takes precedence over it)"
            )
        return (
            "fix it with `deskloop config set agent.endpoint URL`, or go back to the embedded "
            "model with `deskloop config unset agent.endpoint`"
        )


def resolve_endpoint(agent: AgentSettings, cli_endpoint: str | None = None) -> Endpoint:
    api_key = agent.api_key or os.environ.get("ANTHROPIC_API_KEY", "") or LOCAL_API_KEY
    if cli_endpoint:
        return Endpoint(cli_endpoint.rstrip("/"), "--endpoint", api_key)
    if agent.endpoint:
        return Endpoint(agent.endpoint.rstrip("/"), "the agent.endpoint setting", api_key)
    from_env = os.environ.get("ANTHROPIC_BASE_URL", "")
    if from_env:
        return Endpoint(from_env.rstrip("/"), "ANTHROPIC_BASE_URL", api_key)
    return Endpoint(None, "the embedded server", api_key)


class EmbeddedServer:
    """`deskloop serve --port 0` as a child process of this one, stopped with it."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        """Spawn the server and wait for its ready line; returns its base URL."""
        self.spawn()
        return self.wait_until_ready()

    def spawn(self) -> None:
        """Start the child; call from the thread that lives as long as the session."""
        command = [sys.executable, "-m", "deskloop", "serve", "--port", "0", *self.extra_args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )

    def wait_until_ready(self) -> str:
        assert self.process is not None
        stdout = self.process.stdout
        assert stdout is not None and self.process.stderr is not None
        errors: list[str] = []
        # The server writes its log to stderr; keep the tail for a failure message.
        threading.Thread(target=_keep_tail, args=(self.process.stderr, errors), daemon=True).start()
        line = read_ready_line(stdout, EMBEDDED_START_TIMEOUT_S)
        if " at http" not in line:
            self.stop()
            said = "\n".join(errors[-5:]) or "no output"
            raise EndpointError(
                f"the embedded model server did not start ({said}); "
                "try `deskloop serve` on its own to see why"
            )
        self.url = line.rsplit(" at ", 1)[1].strip()
        return self.url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _keep_tail(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip())
        del lines[:-20]


def explain_api_error(
    exc: BaseException, url: str, model: str, *, answer_started: bool = False
) -> EndpointError:
    """An SDK or transport error as what a user can do about it.

    `answer_started`: whether any of the answer had arrived, which tells a stream cut
    mid-answer from a server that never answered.
    """
    fix_endpoint = (
        "fix it with `deskloop config set agent.endpoint URL`, or go back to the embedded "
        "model with `deskloop config unset agent.endpoint`"
    )
    if not isinstance(exc, anthropic.APIStatusError):
        failure = classify(exc, answer_started=answer_started)
        words = describe(failure, url)
        if failure in _WRONG_ADDRESS:
            words += f", or {fix_endpoint}"
        elif failure is TransportFailure.OTHER:
            words += f" ({exc})"
        return EndpointError(words)
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return EndpointError(
            f"{url} refused the API key: set the right one with "
            "`deskloop config set agent.api_key KEY` (or ANTHROPIC_API_KEY)"
        )
    if isinstance(exc, anthropic.NotFoundError):
        said = str(exc.message)
        if "model" in said.lower():
            return EndpointError(
                f"{url} has no model {model!r} loaded ({said}); load a model in that server, "
                "or pick one with `deskloop config set agent.model NAME`"
            )
        hint = " (drop the trailing /v1: the client adds it)" if url.endswith("/v1") else ""
        return EndpointError(
            f"{url} does not speak the Anthropic Messages format{hint}: it has no "
            "/v1/messages. An OpenAI-style server (vLLM, Ollama, LM Studio) can be put behind "
            f"`deskloop serve --engine openai --upstream URL`; or {fix_endpoint}"
        )
    return EndpointError(f"{url} answered {exc.status_code}: {exc.message}")


# Failures where the address itself may be what is wrong.
_WRONG_ADDRESS = {
    TransportFailure.REFUSED,
    TransportFailure.UNRESOLVED,
    TransportFailure.UNREACHABLE,
    TransportFailure.TLS,
}


async def check_endpoint(
    client: anthropic.AsyncAnthropic, endpoint: Endpoint, url: str, model: str
) -> str | None:
    """Ask the endpoint what answers for `model` before anything else starts.

    An endpoint that is down or refuses the key is an EndpointError now, not after MCP
    servers have started. The answer is the model's own id (`deskloop serve` maps
    `claude-*` names to the model it serves); None when the endpoint cannot say.
    """
    quick = client.with_options(max_retries=0, timeout=ENDPOINT_CHECK_TIMEOUT_S)
    try:
        try:
            return (await quick.models.retrieve(model)).id
        except anthropic.NotFoundError:
            page = await quick.models.list(limit=100)
            return model if model in {info.id for info in page.data} else None
    except anthropic.APIConnectionError as exc:
        failure = classify(exc, answer_started=False)
        if failure not in _WRONG_ADDRESS and failure is not TransportFailure.TIMED_OUT:
            return None  # something answered there, if badly: the first answer will tell
        waited = ENDPOINT_CHECK_TIMEOUT_S if failure is TransportFailure.TIMED_OUT else None
        raise EndpointError(
            f"{describe(failure, url, waited_s=waited, source=endpoint.source)}, "
            f"or {endpoint.how_to_fix()}"
        ) from exc
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
        raise explain_api_error(exc, url, model) from exc
    except anthropic.APIStatusError:
        return None  # no models routes there; the first answer will tell
