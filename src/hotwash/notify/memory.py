"""The fake notifier: keeps alerts in memory; can be told to fail or to be slow."""

from __future__ import annotations

import threading
import time

from hotwash.notify.alert import Alert
from hotwash.notify.base import DeliveryError


class MemoryNotifier:
    """Records every alert it is sent in ``alerts``.

    ``fail_times`` makes the next N attempts raise :class:`DeliveryError` (retryable unless
    ``retryable=False``); ``delay`` makes every attempt take that long, and an attempt whose
    ``timeout`` is shorter fails as a real receiver's would, after ``timeout`` seconds.
    """

    def __init__(self, name: str = "memory", *, fail_times: int = 0, delay: float = 0.0,
                 retryable: bool = True) -> None:
        self.name = name
        self.alerts: list[Alert] = []
        self.attempts = 0
        self.delay = delay
        self.retryable = retryable
        self._fail_times = fail_times
        self._cond = threading.Condition()

    def fail(self, times: int) -> None:
        with self._cond:
            self._fail_times = times

    def send(self, alert: Alert, *, timeout: float | None = None) -> None:
        with self._cond:
            self.attempts += 1
            failing = self._fail_times > 0
            if failing:
                self._fail_times -= 1
        if self.delay:
            time.sleep(self.delay if timeout is None else min(self.delay, timeout))
            if timeout is not None and self.delay > timeout:
                raise DeliveryError(f"{self.name}: no answer within {timeout:g}s")
        if failing:
            raise DeliveryError(f"{self.name}: told to fail", retryable=self.retryable)
        with self._cond:
            self.alerts.append(alert)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` alerts arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.alerts) >= count, timeout)
