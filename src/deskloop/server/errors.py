"""API errors, each with its HTTP status and Anthropic error type, and the envelope."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class APIError(Exception):
    """An error answered in the Anthropic envelope; subclasses fix status and type."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def envelope(self, request_id: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


class InvalidRequest(APIError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(APIError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(APIError):
    status = 403
    error_type = "permission_error"


class NotFound(APIError):
    status = 404
    error_type = "not_found_error"


class MethodNotAllowed(APIError):
    # The Messages API has no type of its own for 405; other client mistakes are this one.
    status = 405
    error_type = "invalid_request_error"


class RequestTooLarge(APIError):
    status = 413
    error_type = "request_too_large"


class RateLimited(APIError):
    status = 429
    error_type = "rate_limit_error"


class InternalError(APIError):
    status = 500
    error_type = "api_error"


class Overloaded(APIError):
    status = 529
    error_type = "overloaded_error"


class UpstreamFailed(APIError):
    """An upstream's own error, passed on with its status and type."""

    def __init__(self, message: str, status: int, error_type: str):
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.error_type = error_type  # type: ignore[misc]


def prompt_too_long(prompt_tokens: int, maximum: int) -> InvalidRequest:
    # Claude Code compacts its history only on exactly this wording.
    return InvalidRequest(f"prompt is too long: {prompt_tokens} tokens > {maximum} maximum")
