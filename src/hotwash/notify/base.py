"""The notifier seam: a :class:`Notifier` sends one alert somewhere or raises :class:`DeliveryError`.

Retrying, backoff, grouping and recording outcomes are the dispatcher's job, so a notifier is
just a payload format and one HTTP POST. :func:`post` is that POST for the httpx-based ones:
it turns every transport failure and non-2xx answer into a DeliveryError that says what
happened, and whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import httpx

from hotwash.errors import DeliveryError
from hotwash.httputil import retry_after
from hotwash.notify.alert import Alert

# Per-attempt timeout when the caller gives none (the dispatcher always does).
DEFAULT_TIMEOUT = 5.0
# Statuses after which the same request may succeed later: timeouts, rate limits, server trouble.
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class Notifier(Protocol):
    """A channel alerts are delivered to. ``name`` identifies it in the deliveries table."""

    name: str

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        """Deliver ``alert`` within ``timeout`` seconds, or raise :class:`DeliveryError`."""
        ...


def post(url: str, body: bytes, *, what: str, headers: Mapping[str, str] | None = None,
         timeout: float | None = None, client: httpx.Client | None = None) -> httpx.Response:
    """POST ``body`` as JSON; any answer but 2xx, or no answer, is a :class:`DeliveryError`."""
    # The host only: a Slack webhook URL's path is its secret, and errors end up in the store.
    where = httpx.URL(url).host or "the receiver"
    all_headers = {"content-type": "application/json", "user-agent": "hotwash", **(headers or {})}
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        if client is not None:
            response = client.post(url, content=body, headers=all_headers, timeout=timeout)
        else:
            with httpx.Client() as own:
                response = own.post(url, content=body, headers=all_headers, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: no answer from {where} within {timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise DeliveryError(f"{what}: cannot connect to {where}: {exc}") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: request to {where} failed: {type(exc).__name__}: {exc}") from None
    if response.is_success:
        return response
    status = response.status_code
    text = " ".join(response.text.split())[:200]
    raise DeliveryError(
        f"{what}: {where} answered HTTP {status}" + (f": {text}" if text else ""),
        retryable=status in _RETRYABLE_STATUS or status >= 500,
        retry_after=retry_after(response.headers.get("retry-after")),
        status=status,
    )

