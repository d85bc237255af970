"""Prometheus Alertmanager: ``POST {url}/api/v2/alerts`` with a list of one alert.

Labels identify the alert to Alertmanager (its routing, grouping and silences match on them);
annotations carry the text. No ``endsAt`` is sent: Alertmanager resolves the alert after its
``resolve_timeout`` (5 minutes by default) unless hotwash sends it again — a signal is a
moment, not a condition hotwash keeps reporting.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from hotwash.notify.alert import Alert, iso
from hotwash.notify.base import post


def alertmanager_payload(alert: Alert) -> list[dict[str, Any]]:
    description = alert.summary
    if alert.evidence:
        description += "\nEvidence: " + ", ".join(alert.evidence[:20])
    entry: dict[str, Any] = {
        "labels": {
            "alertname": alert.category,
            "feature": alert.feature,
            "category": alert.category,
            "severity": alert.severity,
            "monitor": alert.monitor,
            "service": "hotwash",
        },
        "annotations": {"summary": alert.title, "description": description},
        "startsAt": iso(alert.start),
    }
    if alert.link:
        entry["generatorURL"] = alert.link
    return [entry]


class AlertmanagerNotifier:
    """Sends alerts to the Alertmanager at ``url`` (e.g. ``http://127.0.0.1:9093``)."""

    def __init__(self, url: str, *, name: str = "alertmanager", client: httpx.Client | None = None) -> None:
        self.name = name
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        body = json.dumps(alertmanager_payload(alert), ensure_ascii=False).encode()
        post(self._url, body, what=f"alertmanager {self.name!r}", timeout=timeout, client=self._client)

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier(name={self.name!r}, url={self._url!r})"
