"""Slack incoming webhooks: ``text`` (the notification and fallback) plus Block Kit ``blocks``.

Slack reads ``<...>`` in mrkdwn as links and mentions (``<!channel>``, ``<https://x|click>``) and
``&`` as the start of an entity, so every piece of text that comes from telemetry is escaped
(``&amp; &lt; &gt;``, as Slack's docs ask): a prompt-injected summary must not ping a channel
or dress up a phishing link.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from hotwash.notify.alert import Alert
from hotwash.notify.base import post

# Slack's limits: section text 3000 characters, ten fields per section.
_SECTION_LIMIT = 3000


def escape(text: str) -> str:
    """Make ``text`` literal in Slack mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert) -> dict[str, Any]:
    title = escape(alert.title)
    summary = _clip(escape(alert.summary), _SECTION_LIMIT)
    fields = [
        ("Severity", alert.severity),
        ("Category", alert.category),
        ("Feature", alert.feature),
        ("Monitor", alert.monitor),
        ("Started", alert.start.strftime("%Y-%m-%d %H:%M UTC")),
        ("Detected", alert.detected_at.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{escape(v)}"} for k, v in fields]},
    ]
    if alert.evidence:
        shown = ", ".join(alert.evidence[:10]) + (" …" if len(alert.evidence) > 10 else "")
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _clip(f"Evidence: {escape(shown)}", _SECTION_LIMIT)}]})
    if alert.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in hotwash"}, "url": alert.link}]})
    return {"text": _clip(f"{title}: {summary}", _SECTION_LIMIT), "blocks": blocks}


class SlackNotifier:
    """Posts to a Slack incoming webhook URL (a secret: it is never shown in errors)."""

    def __init__(self, webhook_url: str, *, name: str = "slack", client: httpx.Client | None = None) -> None:
        self.name = name
        self._url = webhook_url
        self._client = client

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        body = json.dumps(slack_payload(alert), ensure_ascii=False).encode()
        post(self._url, body, what=f"slack channel {self.name!r}", timeout=timeout, client=self._client)

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r})"
