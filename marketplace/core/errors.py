"""One hierarchy of domain errors; the API turns each into the envelope of ``shared/API.md`` and
the pages show the same message."""

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    code = "bad_request"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.fields = fields
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_error"
    default_message = "Some fields are not valid."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_message = "You are not allowed to do this."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_message = "This status change is not allowed."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = "This idempotency key was already used with a different request."


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_message = "Not enough stock for this order."


class Gone(ApplicationError):
    status_code = 410
    code = "gone"
    default_message = "This is no longer available."


class Unprocessable(ApplicationError):
    status_code = 422
    code = "unprocessable"
    default_message = "The request was understood but refused."


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The upload is too large."


class DependencyUnavailable(ApplicationError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A service we depend on is not answering. Please try again shortly."


class RateLimited(ApplicationError):
    """429 ``rate_limited``; ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests. Wait a while, then try again."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after
