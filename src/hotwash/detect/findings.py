"""The shared shape of one detector finding."""

from __future__ import annotations

from dataclasses import dataclass, field

CATEGORIES = (
    "hallucination",
    "prompt_injection",
    "drift",
    "runaway_cost",
    "escalation_overload",
    "scope_creep",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict of one check on one event.

    ``evidence`` holds short quotes (<= 200 chars each) prefixed with where they were found,
    e.g. ``"context[kb-12]: 'ignore all previous...'"``.
    """

    category: str
    check: str
    score: float
    flagged: bool
    evidence: list[str] = field(default_factory=list)
