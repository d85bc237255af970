"""Delivering alerts without ever holding up ingestion.

    submit(signals) ──► per channel: bounded queue ──► worker thread ──► group ──► send, retry ──► deliveries
                        (full: drop, count, record)    (one per channel)  (window)  (backoff+jitter)

:meth:`Dispatcher.submit` only appends to in-memory queues, so the ingest path never waits on
a receiver. Each channel has its own queue and thread: a Slack that hangs or a PagerDuty that
is down delays only its own alerts. A worker groups its signals by (feature, category): the
first signal of a group is sent after ``group_wait`` seconds together with whatever joined it
by then, and later signals of the group are collected and sent as one alert per
``group_window`` — a burst of twenty signals is one alert, not twenty pages.

Each send is tried up to ``1 + retries`` times, waiting ``backoff * 2**n`` seconds between tries
(capped, with jitter so many hotwash servers do not retry in lockstep, and at least as long as
a receiver's Retry-After); an answer that cannot improve (HTTP 400, 401, 404 ...) is not retried.
The final outcome per (signal, channel) lands in the store's ``deliveries`` table: ``sent``,
``failed`` (with the last error) or ``dropped`` (the channel's queue was full).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from hotwash.detect.engine import Signal
from hotwash.notify.alert import Alert, severity_rank
from hotwash.notify.base import DeliveryError, Notifier
from hotwash.store import Store

log = logging.getLogger("hotwash.notify")

Status = Literal["sent", "failed", "dropped"]
# Longest wait between two attempts, whatever backoff or Retry-After say.
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class Channel:
    """A notifier, and the least severe signal it is told about (SEV1 is the most severe)."""

    notifier: Notifier
    min_severity: str = "SEV4"

    @property
    def name(self) -> str:
        return self.notifier.name

    def accepts(self, severity: str) -> bool:
        return severity_rank(severity) <= severity_rank(self.min_severity)


def with_ids(store: Store, signals: Sequence[Signal]) -> list[tuple[int, Signal]]:
    """Pair stored signals with their ids, as :meth:`Dispatcher.submit` takes them."""
    ids = store.signal_ids((s.monitor, s.feature, s.start) for s in signals)
    return [(ids[key], s) for s in signals if (key := (s.monitor, s.feature, s.start)) in ids]


class Dispatcher:
    """Delivers stored signals to channels in the background. Use as a context manager, or call
    :meth:`close` to deliver what is pending and stop."""

    def __init__(
        self,
        store: Store,
        notifiers: Iterable[Notifier | Channel],
        *,
        max_queue: int = 1000,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 5.0,
        group_window: float = 300.0,
        group_wait: float = 1.0,
        base_url: str | None = None,
    ) -> None:
        channels = [n if isinstance(n, Channel) else Channel(n) for n in notifiers]
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        if max_queue < 1 or retries < 0 or backoff < 0 or timeout <= 0 or group_window < 0 or group_wait < 0:
            raise ValueError("max_queue >= 1, timeout > 0 and retries, backoff, group_window, group_wait >= 0")
        self.store = store
        self.max_queue = max_queue
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.group_window = group_window
        self.group_wait = group_wait
        self.base_url = base_url
        self._closing = threading.Event()
        self._deadline: float | None = None  # monotonic time by which close() wants workers done
        self._lock = threading.Lock()
        self._dropped = 0
        self._workers = [_Worker(self, c) for c in channels]
        for w in self._workers:
            w.thread.start()

    @property
    def channels(self) -> list[str]:
        return [w.channel.name for w in self._workers]

    @property
    def dropped(self) -> int:
        """(signal, channel) pairs dropped because a channel's queue was full or it was closed."""
        with self._lock:
            return self._dropped

    def queue_depths(self) -> dict[str, int]:
        """Signals waiting in each channel: queued, or held for grouping before their send (``/metrics``)."""
        return {w.channel.name: w.depth() for w in self._workers}

    def submit(self, signals: Iterable[tuple[int, Signal]]) -> None:
        """Queue stored signals, given as (id, signal), for every channel that wants them.

        Never waits on a receiver: it appends to in-memory queues and returns.
        """
        items = list(signals)
        for worker in self._workers:
            wanted = [it for it in items if worker.channel.accepts(it[1].severity)]
            if wanted:
                worker.offer(wanted)

    def announce(self, alert: Alert) -> None:
        """Queue a notice that is not about signals (a postmortem published, action items overdue)
        for every channel that accepts its severity. Sent on its own, never grouped, retried like
        alerts; not recorded in ``deliveries`` (which is kept per signal). Never waits on a receiver."""
        for worker in self._workers:
            if worker.channel.accepts(alert.severity):
                worker.offer_notice(alert)

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver every pending signal now (group windows cut short) and stop the workers.

        Retries that would run past ``timeout`` seconds are given up and recorded as failed.
        Returns False if a worker was still busy (a send stuck in its own timeout) at the end.
        """
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        for w in self._workers:
            w.wake()
        for w in self._workers:
            w.thread.join(max(0.0, self._deadline - time.monotonic()))
        return not any(w.thread.is_alive() for w in self._workers)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- used by the workers ------------------------------------------------------------------
    def _count_drops(self, n: int) -> None:
        with self._lock:
            self._dropped += n

    def _record(self, ids: Sequence[int], channel: str, status: Status, attempts: int, error: str | None) -> None:
        now = datetime.now(UTC)
        rows = [{"signal_id": i, "channel": channel, "status": status, "attempts": attempts,
                 "last_error": error, "updated_at": now} for i in ids]
        try:
            self.store.record_deliveries(rows)
        except Exception:  # a store hiccup must not kill the worker; the log keeps the outcome
            log.exception("could not record %s delivery of signals %s to %s", status, list(ids), channel)

    def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if close()'s deadline would pass first."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            if self._deadline is not None:
                if end > self._deadline:
                    return False
                time.sleep(left)
            else:
                self._closing.wait(left)  # close() wakes us to check its deadline
        return True


@dataclass
class _Group:
    due: float  # monotonic time at which pending signals go out
    pending: list[tuple[int, Signal]] = field(default_factory=list)


class _Worker:
    """One channel's queue, grouping state and thread."""

    def __init__(self, dispatcher: Dispatcher, channel: Channel) -> None:
        self.d = dispatcher
        self.channel = channel
        self._queue: deque[tuple[int, Signal]] = deque()
        self._drops: list[int] = []
        self._notices: deque[Alert] = deque()  # announce(): sent as they are, not grouped
        self._cond = threading.Condition()
        self._groups: dict[tuple[str, str], _Group] = {}
        self.thread = threading.Thread(target=self._run, name=f"hotwash-notify-{channel.name}", daemon=True)

    def offer(self, items: list[tuple[int, Signal]]) -> None:
        with self._cond:
            closed = self.d._closing.is_set()
            room = 0 if closed else self.d.max_queue - len(self._queue)
            self._queue.extend(items[:room])
            dropped = [i for i, _ in items[room:]]
            if dropped and not closed:
                self._drops.extend(dropped)  # recorded by the worker, off the caller's thread
            self._cond.notify()
        if dropped:
            self.d._count_drops(len(dropped))
            log.warning("%s: dropped %d signal(s): %s", self.channel.name, len(dropped),
                        "dispatcher closed" if closed else f"queue full ({self.d.max_queue})")
            if closed:  # no worker left to record them
                self.d._record(dropped, self.channel.name, "dropped", 0, "dispatcher closed")

    def offer_notice(self, alert: Alert) -> None:
        with self._cond:
            closed = self.d._closing.is_set()
            if not closed and len(self._notices) < self.d.max_queue:
                self._notices.append(alert)
                self._cond.notify()
                return
        self.d._count_drops(1)
        log.warning("%s: dropped notice %r: %s", self.channel.name, alert.title,
                    "dispatcher closed" if closed else f"queue full ({self.d.max_queue})")

    def depth(self) -> int:
        with self._cond:
            queued = len(self._queue)
        # The worker thread owns the groups; list() snapshots the values in one step under the GIL.
        return queued + sum(len(g.pending) for g in list(self._groups.values()))

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _next_due(self) -> float | None:
        return min((g.due for g in self._groups.values()), default=None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._queue or self._drops or self._notices or self.d._closing.is_set()):
                    due = self._next_due()
                    if due is not None and due <= time.monotonic():
                        break
                    self._cond.wait(None if due is None else due - time.monotonic())
                batch = list(self._queue)
                self._queue.clear()
                drops, self._drops = self._drops, []
                notices = list(self._notices)
                self._notices.clear()
                closing = self.d._closing.is_set()
            if drops:
                self.d._record(drops, self.channel.name, "dropped", 0,
                               f"queue full: more than {self.d.max_queue} signals waiting for this channel")
            for notice in notices:
                self._send(notice, [])
            now = time.monotonic()
            for item in batch:
                key = (item[1].feature, item[1].category)
                group = self._groups.get(key)
                if group is None:
                    group = self._groups[key] = _Group(due=now + self.d.group_wait)
                group.pending.append(item)
            for key, group in list(self._groups.items()):
                if not (closing or group.due <= time.monotonic()):
                    continue
                if not group.pending:
                    del self._groups[key]  # a whole window without news: the group is over
                    continue
                pending, group.pending = group.pending, []
                self._deliver(pending)
                group.due = time.monotonic() + self.d.group_window
            if closing:
                with self._cond:
                    if not (self._queue or self._drops or self._notices):
                        return

    def _deliver(self, items: list[tuple[int, Signal]]) -> None:
        alert = Alert.from_signals(items, base_url=self.d.base_url)
        self._send(alert, alert.signal_ids)

    def _send(self, alert: Alert, ids: list[int]) -> None:
        notifier = self.channel.notifier
        attempts = 0
        while True:
            attempts += 1
            try:
                notifier.send(alert, timeout=self.d.timeout)
            except DeliveryError as exc:
                error, retryable, hint = exc.reason, exc.retryable, exc.retry_after
            except Exception as exc:  # a notifier's bug must not kill the channel
                error, retryable, hint = f"{type(exc).__name__}: {exc}", True, None
            else:
                self.d._record(ids, self.channel.name, "sent", attempts, None)
                return
            if not retryable or attempts > self.d.retries:
                break
            delay = min(MAX_BACKOFF, self.d.backoff * 2 ** (attempts - 1))
            delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret
            if hint is not None:
                delay = max(delay, min(hint, MAX_BACKOFF))
            if not self.d._sleep(delay):
                error += " (gave up: hotwash was shutting down)"
                break
        log.warning("%s: alert %r not delivered after %d attempt(s): %s", self.channel.name, alert.title,
                    attempts, error)
        self.d._record(ids, self.channel.name, "failed", attempts, error)
