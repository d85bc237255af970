"""From the ``notify:`` section of hotwash.yaml to working channels.

Secrets are read here, from the environment variables the manifest names, and only here; a
variable that is not set is a :class:`ConfigError` naming the channel and the variable, raised
when the server starts rather than at the first incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from hotwash.errors import ConfigError
from hotwash.manifest import (
    AlertmanagerChannel,
    NotifySettings,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from hotwash.notify.alertmanager import AlertmanagerNotifier
from hotwash.notify.dispatch import Channel, Dispatcher
from hotwash.notify.pagerduty import PagerDutyNotifier
from hotwash.notify.slack import SlackNotifier
from hotwash.notify.webhook import WebhookNotifier
from hotwash.store import Store


def build_notifiers(settings: NotifySettings, env: Mapping[str, str]) -> list[Channel]:
    """One :class:`Channel` per configured channel, its secrets taken from ``env``."""
    channels = []
    for spec in settings.channels:
        name = spec.name or spec.type

        def secret(var: str, what: str, *, name: str = name, kind: str = spec.type) -> str:
            value = env.get(var, "").strip()
            if not value:
                raise ConfigError(f"notify channel {name!r} ({kind}): environment variable {var} is not set; "
                                  f"it must hold the {what}")
            return value

        def url(value: str, *, name: str = name, kind: str = spec.type) -> str:
            try:
                parsed = httpx.URL(value)
            except httpx.InvalidURL:
                parsed = None
            if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
                # The value may be a secret URL: say what is wrong without echoing it.
                raise ConfigError(f"notify channel {name!r} ({kind}): the URL is not an http(s) URL")
            return value

        notifier: SlackNotifier | WebhookNotifier | PagerDutyNotifier | AlertmanagerNotifier
        if isinstance(spec, SlackChannel):
            notifier = SlackNotifier(url(secret(spec.url_env, "Slack incoming webhook URL")), name=name)
        elif isinstance(spec, WebhookChannel):
            target = spec.url or secret(spec.url_env or "", "webhook URL")
            notifier = WebhookNotifier(url(target), secret(spec.secret_env, "webhook signing secret"), name=name)
        elif isinstance(spec, PagerDutyChannel):
            key = secret(spec.routing_key_env, "PagerDuty Events API v2 routing key")
            notifier = PagerDutyNotifier(key, url(spec.url), name=name)
        elif isinstance(spec, AlertmanagerChannel):
            notifier = AlertmanagerNotifier(url(spec.url or secret(spec.url_env or "", "Alertmanager URL")),
                                            name=name)
        else:  # pragma: no cover - the manifest admits no other type
            raise ConfigError(f"notify channel {name!r}: unknown type {spec.type!r}")
        channels.append(Channel(notifier, spec.min_severity))
    return channels


def open_dispatcher(store: Store, settings: NotifySettings, env: Mapping[str, str], **options: Any
                    ) -> Dispatcher | None:
    """A running :class:`Dispatcher` for the configured channels, or None when there are none.

    ``options`` are passed on (``retries``, ``backoff``, ``timeout``, ``group_wait`` ...).
    """
    channels = build_notifiers(settings, env)
    if not channels:
        return None
    return Dispatcher(store, channels, group_window=settings.group_window * 60.0, base_url=settings.base_url,
                      **options)
