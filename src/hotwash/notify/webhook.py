"""A generic JSON webhook, signed so the receiver can tell hotwash from anyone else.

The scheme (the same shape as Stripe's and Slack's request signing):

* ``X-Hotwash-Timestamp: <t>`` — Unix time in whole seconds when the request was signed;
* ``X-Hotwash-Signature: sha256=<hex>`` — HMAC-SHA256, keyed with the shared secret, of the
  bytes ``<t>.`` followed by the exact request body bytes.

A receiver recomputes the HMAC over the body bytes as received (before any JSON parsing),
compares in constant time, and refuses a timestamp further than a few minutes from its own
clock: a captured request cannot be replayed later, and the timestamp cannot be changed
without breaking the signature. :func:`verify_signature` does all of that. Every attempt is
signed afresh, so a retry carries a new timestamp and the same body.

The body is ``{"type": "hotwash.alert", "version": 1, "alert": {...}}`` with the alert's
fields (:meth:`Alert.to_json`); ``alert.signals[*].id`` identify the stored signals, so a
receiver that sees a delivery twice (a retry after a lost answer) can tell.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from hotwash.notify.alert import Alert
from hotwash.notify.base import post

SIGNATURE_HEADER = "X-Hotwash-Signature"
TIMESTAMP_HEADER = "X-Hotwash-Timestamp"


def webhook_payload(alert: Alert) -> dict[str, Any]:
    return {"type": "hotwash.alert", "version": 1, "alert": alert.to_json()}


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Hotwash-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str, tolerance_s: float = 300, *,
                     now: float | None = None) -> bool:
    """True when ``body`` was signed with ``secret`` no more than ``tolerance_s`` seconds from now.

    ``headers`` may be any mapping (names are matched case-insensitively); ``body`` must be the
    raw bytes received.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    if not signature or not stamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature, sign(body, secret, int(stamp)))


class WebhookNotifier:
    """POSTs the alert as JSON to ``url``, signed with ``secret`` (see the module docstring)."""

    def __init__(self, url: str, secret: str, *, name: str = "webhook", client: httpx.Client | None = None) -> None:
        if not secret:
            raise ValueError("a webhook needs a signing secret")
        self.name = name
        self._url = url
        self._secret = secret
        self._client = client

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        body = json.dumps(webhook_payload(alert), ensure_ascii=False).encode()
        stamp = int(time.time())
        headers = {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(body, self._secret, stamp)}
        post(self._url, body, what=f"webhook {self.name!r}", headers=headers, timeout=timeout, client=self._client)

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, url={httpx.URL(self._url).host!r})"
