"""PagerDuty Events API v2: a ``trigger`` event per alert.

``dedup_key`` is ``hotwash:{feature}:{monitor}``, so the same monitor firing again on the same
feature adds to the open PagerDuty incident instead of paging anew.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from hotwash.notify.alert import Alert, iso
from hotwash.notify.base import post

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"SEV1": "critical", "SEV2": "error", "SEV3": "warning", "SEV4": "info"}
_SUMMARY_LIMIT = 1024  # PagerDuty truncates payload.summary there


def pagerduty_payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    summary = f"{alert.title}: {alert.summary}".replace("\n", "; ")
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "client": "hotwash",
        "payload": {
            "summary": summary[:_SUMMARY_LIMIT],
            "source": alert.feature,
            "severity": SEVERITY.get(alert.severity, "info"),
            "timestamp": iso(alert.detected_at),
            "component": alert.monitor,
            "group": "hotwash",
            "class": alert.category,
            "custom_details": {
                "category": alert.category,
                "feature": alert.feature,
                "monitor": alert.monitor,
                "hotwash_severity": alert.severity,
                "start": iso(alert.start),
                "detected_at": iso(alert.detected_at),
                "signal_ids": alert.signal_ids,
                "signals": [f"{s.severity} {s.monitor}: {s.summary}" for s in alert.signals],
                "evidence": list(alert.evidence),
            },
        },
    }
    if alert.link:
        event["client_url"] = alert.link
        event["links"] = [{"href": alert.link, "text": "Open in hotwash"}]
    return event


class PagerDutyNotifier:
    """Triggers PagerDuty events with an Events API v2 integration's routing key (a secret)."""

    def __init__(self, routing_key: str, url: str = EVENTS_URL, *, name: str = "pagerduty",
                 client: httpx.Client | None = None) -> None:
        self.name = name
        self._routing_key = routing_key
        self._url = url
        self._client = client

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        body = json.dumps(pagerduty_payload(alert, self._routing_key), ensure_ascii=False).encode()
        post(self._url, body, what=f"pagerduty channel {self.name!r}", timeout=timeout, client=self._client)

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(name={self.name!r})"
