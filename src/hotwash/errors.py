"""Every error hotwash raises on purpose, in one tree.

    HotwashError                 base: catch this to catch anything hotwash means to raise
    ├── ConfigError              settings or hotwash.yaml are invalid (names the key and what was expected)
    ├── StoreError               the database is unreachable, or its schema is not migrated
    ├── DeliveryError            an alert could not be delivered to a channel
    ├── InputError               one telemetry record is unusable (names the place and the reason)
    │   └── RecordTooLarge       a record is over the configured size limit
    ├── PayloadError             a whole request body is unusable (garbage, bad encoding)
    │   ├── PayloadTooLarge      a request body is over the configured size limit
    │   └── UnsupportedMediaType a request body of a content type hotwash does not read
    ├── InvalidValue             a value given by a person is wrong (names the field and what is allowed)
    ├── NotFound                 the named incident / postmortem / action / case does not exist
    ├── Conflict                 the request contradicts the current state
    │   ├── IllegalTransition    a playbook step not allowed from the incident's state (names the allowed ones)
    │   └── StaleUpdate          someone else changed the object since it was read (optimistic concurrency)
    └── AuthError                no valid credentials (HTTP 401)
        └── Forbidden            valid credentials whose role does not allow the request (HTTP 403)

Messages are written for the person who reads them: what happened, where, and what to do.
"""

from __future__ import annotations


class HotwashError(Exception):
    """Base of every error hotwash raises on purpose."""


class ConfigError(HotwashError):
    """Settings or the feature manifest are invalid."""


class StoreError(HotwashError):
    """The store cannot be used as asked (unreachable, not migrated)."""


class InputError(HotwashError):
    """One telemetry record is unusable.

    ``where`` names the place (``file:line`` or ``batch[3]``) and ``reason`` says what is wrong.
    """

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class RecordTooLarge(InputError):
    """A record is over the size limit."""


class PayloadError(HotwashError):
    """A request body cannot be decoded at all."""


class PayloadTooLarge(PayloadError):
    """A request body is over the size limit."""


class UnsupportedMediaType(PayloadError):
    """A request body of a content type hotwash does not read."""


class DeliveryError(HotwashError):
    """An alert did not reach a channel. ``reason`` is readable and never contains a secret
    (webhook URLs and keys are left out); ``retryable`` says whether another attempt can help;
    ``retry_after`` is the receiver's own hint, in seconds."""

    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class InvalidValue(HotwashError):
    """A value given by a person (CLI option, API field, form field) is not acceptable.

    ``field`` names the field, so a form can show the message next to it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(HotwashError):
    """The named object does not exist."""


class Conflict(HotwashError):
    """The request contradicts the object's current state."""


class IllegalTransition(Conflict):
    """A playbook step that the incident's state does not allow. ``allowed`` lists the steps that are."""

    def __init__(self, message: str, *, state: str, event: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.state = state
        self.event = event
        self.allowed = allowed


class StaleUpdate(Conflict):
    """The object changed since the caller read it; re-read and try again."""


class AuthError(HotwashError):
    """Missing or wrong credentials."""


class Forbidden(AuthError):
    """The credentials are valid but their role does not allow this."""
