"""The domain's exception tree.

Every error a caller can cause is a ``DatabunkerError``; each class knows its HTTP status and
its message is safe to show (no PII, no secrets). The API maps them to the wire format in one
place (``api/errors.py``); library exceptions are translated where they are caught, with
``raise ... from exc``, and never reach a response.

    DatabunkerError
    ├── BadRequest           400  malformed or invalid input
    ├── AccessDenied         403  no, unknown or insufficient credentials
    ├── NotFound             404  the addressed record does not exist
    ├── Conflict             409  a unique value is already taken, or a concurrent change won
    ├── PayloadTooLarge      413  request body over the configured bound
    └── RateLimited          429  too many attempts
"""

from __future__ import annotations


class DatabunkerError(Exception):
    """Base of all errors that are answered to the caller."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DatabunkerError):
    status_code = 400


class AccessDenied(DatabunkerError):
    status_code = 403

    def __init__(self, message: str = "access denied") -> None:
        super().__init__(message)


class NotFound(DatabunkerError):
    status_code = 404

    def __init__(self, message: str = "not found") -> None:
        super().__init__(message)


class Conflict(DatabunkerError):
    status_code = 409


class PayloadTooLarge(DatabunkerError):
    status_code = 413

    def __init__(self, message: str = "request body too large") -> None:
        super().__init__(message)


class RateLimited(DatabunkerError):
    status_code = 429

    def __init__(self, message: str = "too many requests") -> None:
        super().__init__(message)
