"""Alert delivery: tell people when monitors find something.

    Signal (stored) ──► Dispatcher.submit ──► per-channel worker ──► Alert ──► Notifier.send
                                                                                 ├── SlackNotifier
                                                                                 ├── WebhookNotifier (HMAC-signed)
                                                                                 ├── PagerDutyNotifier
                                                                                 ├── AlertmanagerNotifier
                                                                                 └── MemoryNotifier (the fake)

A :class:`Notifier` is the seam: ``name`` and ``send(alert, *, timeout=None)``, which raises
:class:`DeliveryError` (a :class:`~hotwash.errors.HotwashError`) when the alert did not get
through. The :class:`Dispatcher` owns everything else: queueing, grouping, retries, and the
record of each delivery in the store. Channels come from hotwash.yaml's ``notify:`` section
through :func:`build_notifiers` / :func:`open_dispatcher`.
"""

from hotwash.notify.alert import Alert, AlertSignal
from hotwash.notify.alertmanager import AlertmanagerNotifier
from hotwash.notify.base import DeliveryError, Notifier
from hotwash.notify.config import build_notifiers, open_dispatcher
from hotwash.notify.dispatch import Channel, Dispatcher, with_ids
from hotwash.notify.memory import MemoryNotifier
from hotwash.notify.pagerduty import PagerDutyNotifier
from hotwash.notify.slack import SlackNotifier
from hotwash.notify.webhook import WebhookNotifier, verify_signature

__all__ = [
    "Alert",
    "AlertSignal",
    "AlertmanagerNotifier",
    "Channel",
    "DeliveryError",
    "Dispatcher",
    "MemoryNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "open_dispatcher",
    "verify_signature",
    "with_ids",
]
