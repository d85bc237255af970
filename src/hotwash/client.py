"""The telemetry client that applications embed: ``record()`` now, delivered in the background.

    client = HotwashClient("https://hotwash.internal", token="...")
    client.record(feature="support-bot", model="gpt-4o-mini", input=q, output=a, latency_ms=900)
    client.record_change("support-bot", "prompt", version="v12", previous="v11")

``record`` never blocks and never raises: each event is JSON-encoded on the caller's thread (so a
bad value is caught there and counted as ``dropped``) and put on a bounded in-memory queue; when
the queue is full the event is dropped and counted rather than slowing the application. A daemon
thread POSTs batches to ``/api/v1/events`` (``batch_size`` events or every ``flush_interval``
seconds, gzipped when large), retrying 429/5xx, timeouts and connection errors with exponential
backoff and jitter (honouring ``Retry-After``). Event ids are the server's idempotency key, so a
retry after a lost response stores nothing twice. Nothing is persisted on the client: events
still queued when the process dies are lost (``close()`` runs at exit to deliver them).

Thread-safe. Not fork-safe: the sender thread does not survive ``os.fork()``, so create the
client in the child process (e.g. in a pre-fork server's post-fork hook), not before forking.
"""

from __future__ import annotations

import atexit
import gzip
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from hotwash.httputil import retry_after

__all__ = ["ClientStats", "HotwashClient"]

log = logging.getLogger("hotwash.client")

GZIP_MIN_BYTES = 16 * 1024  # bodies at least this big are sent gzipped
MAX_DELAY = 60.0  # the longest wait between two attempts, whatever the backoff or Retry-After
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class ClientStats:
    """Event counts. ``queued`` is waiting or in flight; every recorded event ends up in exactly
    one of ``accepted``, ``duplicates``, ``rejected`` (by the server) or ``failed`` (gave up), and
    every event ``record()`` refused in ``dropped``. ``sent`` counts events the server answered
    with a 200; ``retries`` counts repeated requests."""

    queued: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    failed: int = 0
    retries: int = 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _retry_after(resp: httpx.Response) -> float | None:
    return retry_after(resp.headers.get("retry-after"))


class HotwashClient:
    """Sends telemetry and change events to a hotwash server from a background thread."""

    def __init__(self, url: str, *, token: str | None = None, batch_size: int = 500,
                 flush_interval: float = 1.0, max_queue: int = 10_000, timeout: float = 5.0,
                 max_retries: int = 5, backoff: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        if batch_size < 1 or max_queue < 1 or max_retries < 0 or flush_interval <= 0:
            raise ValueError("batch_size and max_queue must be >= 1, max_retries >= 0, "
                             "flush_interval > 0")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/api/v1/events") else base + "/api/v1/events"
        self.batch_size, self.flush_interval, self.max_queue = batch_size, flush_interval, max_queue
        self.max_retries, self.backoff = max_retries, backoff
        headers = {"Content-Type": "application/json", "User-Agent": "hotwash-client/0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)  # the sender waits on this
        self._drained = threading.Condition(self._lock)  # flush() waits on this
        self._buf: deque[bytes] = deque()
        self._in_flight = 0
        self._flushers = 0
        self._closed = self._closing = False
        self._abandon = threading.Event()  # close() timed out: stop retrying, fail the rest
        self._stats = ClientStats()
        self._warned: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="hotwash-client", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- the application's side -----------------------------------------------------------
    def record(self, event: Mapping[str, Any] | None = None, /, **fields: Any) -> bool:
        """Queue one event; ``fields`` override ``event``'s keys. ``id`` and ``ts`` are filled
        in when missing. Returns False (and counts it as dropped) if the event was not queued."""
        try:
            if event is not None and not isinstance(event, Mapping):
                return self._drop("type", "record() takes a dict, got %s", type(event).__name__)
            obj = {**(event or {}), **fields}
            prefix = "chg" if obj.get("type") == "change" else "evt"
            obj.setdefault("id", f"{prefix}-{uuid.uuid4().hex}")
            obj.setdefault("ts", _now_iso())
            try:
                data = orjson.dumps(obj, option=_JSON_OPTS)
            except (TypeError, ValueError) as exc:
                return self._drop("json", "event %r is not JSON-serialisable: %s", obj["id"], exc)
            with self._lock:
                if self._closed:
                    reason: tuple[Any, ...] = ("closed", "record() after close(): event dropped")
                elif len(self._buf) >= self.max_queue:
                    reason = ("full", "queue full (%d events): dropping events", self.max_queue)
                else:
                    self._buf.append(data)
                    if len(self._buf) in (1, self.batch_size):
                        self._has_work.notify()
                    return True
            return self._drop(*reason)
        except Exception as exc:  # never raise into the application
            return self._drop("error", "record() failed: %r", exc)

    def record_change(self, feature: str, kind: str, *, version: str | None = None,
                      previous: str | None = None, description: str | None = None,
                      link: str | None = None, **extra: Any) -> bool:
        """Queue a change event (``kind``: deploy, prompt, model, config, eval_set, guardrail)."""
        optional = {"version": version, "previous": previous, "description": description,
                    "link": link}
        return self.record({"type": "change", "feature": feature, "kind": kind,
                            **{k: v for k, v in optional.items() if v is not None}, **extra})

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; wait until it is delivered or given up (or ``timeout``).
        Returns True when nothing is left queued or in flight."""
        with self._lock:
            self._flushers += 1
            self._has_work.notify()
            try:
                return self._drained.wait_for(
                    lambda: not (self._buf or self._in_flight) or not self._thread.is_alive(),
                    timeout) and not (self._buf or self._in_flight)
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop the sender. Idempotent; runs at exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        deadline = None if timeout is None else time.monotonic() + timeout
        drained = self.flush(timeout)
        with self._lock:
            self._closing = True
            if not drained:
                self._abandon.set()
                log.warning("hotwash client closing with %d events undelivered",
                            len(self._buf) + self._in_flight)
            self._has_work.notify()
        self._thread.join(None if deadline is None else max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> HotwashClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            return replace(self._stats, queued=len(self._buf) + self._in_flight)

    def _drop(self, kind: str, msg: str, *args: Any) -> bool:
        with self._lock:
            self._stats.dropped += 1
        self._log_once(kind, msg, *args)
        return False

    def _log_once(self, kind: str, msg: str, *args: Any) -> None:
        first = kind not in self._warned
        self._warned.add(kind)
        log.log(logging.WARNING if first else logging.DEBUG, msg, *args)

    # -- the sender thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._send(batch)
                except Exception:
                    log.exception("hotwash client: sending a batch failed")
                    self._count(failed=len(batch))
                with self._lock:
                    self._in_flight = 0
                    self._drained.notify_all()
        finally:
            self._http.close()
            with self._lock:
                self._drained.notify_all()

    def _next_batch(self) -> list[bytes] | None:
        with self._lock:
            deadline = None
            while True:
                n = len(self._buf)
                if self._abandon.is_set():
                    self._stats.failed += n
                    self._buf.clear()
                    return None
                if n and (n >= self.batch_size or self._flushers or self._closing
                          or (deadline is not None and time.monotonic() >= deadline)):
                    k = min(n, self.batch_size)
                    self._in_flight = k
                    return [self._buf.popleft() for _ in range(k)]
                if not n and self._closing:
                    return None
                if n and deadline is None:
                    deadline = time.monotonic() + self.flush_interval
                self._has_work.wait(None if deadline is None else deadline - time.monotonic())

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    def _send(self, batch: list[bytes]) -> None:
        body = b'{"events":[' + b",".join(batch) + b"]}"
        headers = {}
        if len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                resp = self._http.post(self.endpoint, content=body, headers=headers)
            except httpx.TransportError as exc:  # connection errors and timeouts
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    self._accepted(batch, resp)
                    return
                if resp.status_code == 413 and len(batch) > 1:  # too big: send it in halves
                    self._send(batch[: len(batch) // 2])
                    self._send(batch[len(batch) // 2 :])
                    return
                problem = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code < 500 and resp.status_code != 429:
                    self._log_once(f"http{resp.status_code}", "hotwash rejected a batch of %d "
                                   "events (not retried): %s", len(batch), problem)
                    self._count(rejected=len(batch))
                    return
                wait = _retry_after(resp)
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = self.backoff * 2**attempt * random.uniform(0.5, 1.5)  # noqa: S311
            log.debug("hotwash send failed (%s); retry %d in %.2fs", problem, attempt + 1, wait)
            self._count(retries=1)
            if self._abandon.wait(min(wait, MAX_DELAY)):
                break
        self._log_once("failed", "hotwash: giving up on %d events: %s", len(batch), problem)
        self._count(failed=len(batch))

    def _accepted(self, batch: list[bytes], resp: httpx.Response) -> None:
        try:
            result = resp.json()
            rejected = list(result.get("rejected") or [])
            accepted, duplicates = int(result["accepted"]), int(result.get("duplicates", 0))
        except (ValueError, TypeError, KeyError, AttributeError):
            rejected, accepted, duplicates = [], len(batch), 0  # a 200 means durable
        for item in rejected[:1]:
            self._log_once("rejected", "hotwash rejected event %s: %s",
                           item.get("id"), item.get("reason"))
        self._count(sent=len(batch), accepted=accepted, duplicates=duplicates,
                    rejected=len(rejected))
