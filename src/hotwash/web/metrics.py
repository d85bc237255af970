"""hotwash's own health at ``GET /metrics``, in the Prometheus text format.

Each app has its own :class:`prometheus_client.CollectorRegistry` (never the process-global one):
two apps in one process — tests, or an embedding — count separately.

Counted by this process (counters, reset when it restarts, as Prometheus expects):

- ``hotwash_events_accepted_total`` / ``_duplicates_total`` / ``_rejected_total``: ingest; ``rate()`` of
  the first is the ingest rate;
- ``hotwash_signals_detected_total{category}``: signals the live detector found and stored.

Read when scraped (gauges):

- ``hotwash_notify_queue_depth{channel}``: signals waiting for each alert channel;
- ``hotwash_notify_dropped_total``: alerts dropped because a channel's queue was full;
- ``hotwash_detector_lag_seconds``: how long the oldest ingested data has waited for the monitors;
- ``hotwash_detector_errors_total``: live detection passes that failed;
- ``hotwash_notify_failed_deliveries{channel}``: deliveries that failed after retries, or were dropped
  (from the store, so it survives restarts and covers every server on the same database);
- ``hotwash_incidents_open{severity}``, ``hotwash_signals_stored{category}``: from the store;
- ``hotwash_store_up``: 0 when the store could not be read during this scrape.

The endpoint needs no credentials (Prometheus scrapes it); it reveals counts only, never telemetry text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("hotwash.web")

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")


class _LiveState(Collector):
    """Gauges read at scrape time from the app's dispatcher, live detector and store."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        state = self.app.state
        dispatcher = getattr(state, "dispatcher", None)
        live = getattr(state, "live", None)
        store = getattr(state, "store", None)

        depth = GaugeMetricFamily("hotwash_notify_queue_depth", "Signals waiting to be sent, per alert channel.",
                                  labels=["channel"])
        for channel, n in (dispatcher.queue_depths() if dispatcher is not None else {}).items():
            depth.add_metric([channel], n)
        yield depth
        dropped = CounterMetricFamily("hotwash_notify_dropped", "Alerts dropped because a channel's queue was full.")
        dropped.add_metric([], dispatcher.dropped if dispatcher is not None else 0)
        yield dropped

        lag = GaugeMetricFamily("hotwash_detector_lag_seconds",
                                "How long the oldest ingested data has waited for the live monitors.")
        lag.add_metric([], live.lag_seconds() if live is not None else 0.0)
        yield lag
        errors = CounterMetricFamily("hotwash_detector_errors", "Live detection passes that failed.")
        errors.add_metric([], live.errors if live is not None else 0)
        yield errors

        if store is None:
            return
        up = GaugeMetricFamily("hotwash_store_up", "1 if the store answered during this scrape.")
        try:
            channels = dispatcher.channels if dispatcher is not None else []
            failed = {c: store.count_failed_deliveries(channel=c) for c in channels}
            failed_total = store.count_failed_deliveries()
            open_incidents = store.count_open_incidents()
            stored = store.count_signals()
        except Exception:  # a scrape must answer even when the database does not
            log.warning("metrics: the store could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        fails = GaugeMetricFamily("hotwash_notify_failed_deliveries",
                                  "Alert deliveries that failed after retries or were dropped (from the store).",
                                  labels=["channel"])
        for channel, n in failed.items():
            fails.add_metric([channel], n)
        # Deliveries of channels no longer configured still count in the total.
        fails.add_metric(["all"], failed_total)
        yield fails
        incidents = GaugeMetricFamily("hotwash_incidents_open", "Incidents whose playbook is still running.",
                                      labels=["severity"])
        for sev in sorted({*SEVERITIES, *open_incidents}):
            incidents.add_metric([sev], open_incidents.get(sev, 0))
        yield incidents
        sig = GaugeMetricFamily("hotwash_signals_stored", "Signals in the store, per category.", labels=["category"])
        for category, n in sorted(stored.items()):
            sig.add_metric([category], n)
        yield sig


class AppMetrics:
    """The app's own registry and the counters the request path increments."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.accepted = Counter("hotwash_events_accepted", "Telemetry and change events stored (new ids).",
                                registry=self.registry)
        self.duplicates = Counter("hotwash_events_duplicates", "Events received again (ids already stored).",
                                  registry=self.registry)
        self.rejected = Counter("hotwash_events_rejected", "Events refused as invalid.", registry=self.registry)
        self.signals = Counter("hotwash_signals_detected", "Signals found and stored by the live detector.",
                               ["category"], registry=self.registry)
        self.registry.register(_LiveState(app))

    def observe_write(self, accepted: int, duplicates: int) -> None:
        if accepted:
            self.accepted.inc(accepted)
        if duplicates:
            self.duplicates.inc(duplicates)

    def observe_rejected(self, n: int) -> None:
        if n:
            self.rejected.inc(n)

    def observe_signals(self, signals: Iterable[Any]) -> None:
        for s in signals:
            self.signals.labels(category=s.category).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def mount_metrics(app: FastAPI) -> AppMetrics:
    """Create the app's metrics and serve them at ``/metrics``."""
    metrics = AppMetrics(app)
    app.state.metrics = metrics

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics
