"""Domain errors carry their HTTP status so every entry point (API, CLI, web) reports them alike."""

from __future__ import annotations

from typing import Any


class ClearlineError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.details is not None:
            body["errors"] = self.details
        return body


class NotFoundError(ClearlineError):
    status_code = 404
    code = "not_found"


class ForbiddenError(ClearlineError):
    status_code = 403
    code = "forbidden"


class UnauthenticatedError(ClearlineError):
    status_code = 401
    code = "unauthenticated"


class ConflictError(ClearlineError):
    status_code = 409
    code = "conflict"


class ValidationFailedError(ClearlineError):
    """Bad input; ``details`` is a list of ``{"loc": ..., "msg": ...}`` naming each field or line."""

    status_code = 422
    code = "validation_failed"
