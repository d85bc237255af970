"""`hotwash insights`."""

from __future__ import annotations


def insights() -> None:
    """The compounding: incidents per category, time to detect/contain/resolve, recurrences."""
