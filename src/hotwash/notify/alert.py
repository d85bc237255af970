"""What a person is told: an :class:`Alert` made of one signal, or of several signals of one
feature and category that fired close together (grouped by the dispatcher)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotwash.detect.engine import Signal


SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")  # most severe first
# An alert lists at most this many evidence event ids (the signal pages hold them all).
MAX_EVIDENCE = 50
# ... and the summaries of at most this many grouped signals.
MAX_LISTED = 10


def severity_rank(severity: str) -> int:
    """0 for SEV1 (most severe) .. 3 for SEV4; anything unknown ranks as SEV4."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True)
class AlertSignal:
    """One stored signal listed in an alert."""

    id: int
    monitor: str
    severity: str
    summary: str
    start: datetime
    detected_at: datetime


@dataclass(frozen=True)
class Alert:
    """Everything a channel needs to tell someone about one or more signals.

    Text fields other than ``title`` come from telemetry and monitors' descriptions of it, so
    they can hold whatever an attacker put in a prompt: each notifier escapes them for its format.
    """

    title: str
    summary: str
    severity: str
    category: str
    feature: str
    monitor: str
    start: datetime
    detected_at: datetime
    evidence: tuple[str, ...]
    signals: tuple[AlertSignal, ...]
    link: str | None
    dedup_key: str

    @classmethod
    def from_signal(cls, signal_id: int, signal: Signal, *, base_url: str | None = None) -> Alert:
        return cls.from_signals([(signal_id, signal)], base_url=base_url)

    @classmethod
    def from_signals(cls, items: Sequence[tuple[int, Signal]], *, base_url: str | None = None) -> Alert:
        """One alert for stored signals of one feature and category, given as (id, signal)."""
        if not items:
            raise ValueError("an alert needs at least one signal")
        items = sorted(items, key=lambda it: (it[1].detected_at, it[0]))
        first = items[0][1]
        if any((s.feature, s.category) != (first.feature, first.category) for _, s in items):
            raise ValueError("an alert groups signals of one feature and category only")
        severity = min((s.severity for _, s in items), key=severity_rank)
        listed = tuple(AlertSignal(i, s.monitor, s.severity, s.summary, s.start, s.detected_at) for i, s in items)
        evidence = tuple(dict.fromkeys(e for _, s in items for e in s.evidence))[:MAX_EVIDENCE]
        what = first.category.replace("_", " ")
        if len(items) == 1:
            title = f"{severity} {what} on {first.feature}"
            summary = first.summary
            path = f"/signals/{items[0][0]}"
        else:
            title = f"{severity} {what} on {first.feature} ({len(items)} signals)"
            lines = [s.summary for _, s in items[:MAX_LISTED]]
            if len(items) > MAX_LISTED:
                lines.append(f"... and {len(items) - MAX_LISTED} more")
            summary = "\n".join(lines)
            path = "/incidents"
        return cls(
            title=title,
            summary=summary,
            severity=severity,
            category=first.category,
            feature=first.feature,
            monitor=first.monitor,
            start=min(s.start for _, s in items),
            detected_at=first.detected_at,
            evidence=evidence,
            signals=listed,
            link=base_url.rstrip("/") + path if base_url else None,
            # The same monitor on the same feature updates one incident in PagerDuty/Alertmanager.
            dedup_key=f"hotwash:{first.feature}:{first.monitor}",
        )

    @property
    def signal_ids(self) -> list[int]:
        return [s.id for s in self.signals]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "summary": self.summary,
            "severity": self.severity,
            "category": self.category,
            "feature": self.feature,
            "monitor": self.monitor,
            "start": iso(self.start),
            "detected_at": iso(self.detected_at),
            "evidence": list(self.evidence),
            "signals": [
                {"id": s.id, "monitor": s.monitor, "severity": s.severity, "summary": s.summary,
                 "start": iso(s.start), "detected_at": iso(s.detected_at)}
                for s in self.signals
            ],
            "link": self.link,
            "dedup_key": self.dedup_key,
        }


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
