"""Times: hotwash keeps timezone-aware UTC datetimes everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from hotwash.errors import InvalidValue


def utc_now(now: datetime | None = None) -> datetime:
    """``now`` in UTC (the wall clock when None). A naive time is refused: its zone is unknowable."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidValue(f"naive time {now!r}: hotwash keeps timezone-aware UTC times", field="now")
    return now.astimezone(UTC)
