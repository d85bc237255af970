"""Group commit: one thread commits the prepared batches of every concurrent request together.

A server request used to commit its own batch: one transaction, one fsync, one rollup upsert and
one session recount per (feature, minute) it touched, for a few hundred events (an OTLP export).
With several clients exporting at once, that per-transaction cost was most of the server's time.
Here each request hands its :class:`~hotwash.telemetry.writer.Prepared` batch to a single
committer thread and waits; the committer takes every batch waiting (up to ``max_rows`` rows),
commits them in ONE transaction (:meth:`EventWriter.commit_many`), and only then answers each
request with its own result. So an acknowledgement still means the request's events are durable,
and each request's accepted / duplicate counts are what committing it alone, in arrival order,
would have reported.

Error isolation: if the group's transaction fails, nothing of it is stored and the batches are
committed again one by one, each in its own transaction, so a bad batch fails only its own request.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from hotwash.telemetry.writer import EventWriter, Prepared, WriteResult

log = logging.getLogger("hotwash.ingest")

AfterCommit = Callable[[Sequence[Prepared], Sequence[WriteResult]], None]


class GroupCommitter:
    """Commits submitted batches on one background thread, grouping those that wait together.

    ``after_commit(batches, results)`` runs on that thread after each durable commit and before
    the requests are answered (the server raises the live detector's watermark there).
    """

    def __init__(self, writer: EventWriter, *, max_rows: int = 5000, after_commit: AfterCommit | None = None) -> None:
        self.writer, self.max_rows, self.after_commit = writer, max_rows, after_commit
        self._queue: deque[tuple[Prepared, Future[WriteResult]]] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self.groups = 0  # group transactions committed (tests, tuning)
        self.batches = 0  # batches they held
        self._thread = threading.Thread(target=self._run, name="hotwash-committer", daemon=True)
        self._thread.start()

    def submit(self, batch: Prepared) -> Future[WriteResult]:
        """Commit ``batch``; the future's result is its :class:`WriteResult` once it is durable, or
        it raises what committing it raised (StoreError when the store is unavailable)."""
        fut: Future[WriteResult] = Future()
        with self._cond:
            if self._stop:
                raise RuntimeError("the committer is closed")
            self._queue.append((batch, fut))
            self._cond.notify()
        return fut

    def commit(self, batch: Prepared) -> WriteResult:
        """:meth:`submit` and wait."""
        return self.submit(batch).result()

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
        if self.groups:
            log.info("committed %d batches in %d transactions", self.batches, self.groups)

    def _take(self) -> list[tuple[Prepared, Future[WriteResult]]] | None:
        with self._cond:
            while not self._queue:
                if self._stop:
                    return None
                self._cond.wait()
            group = [self._queue.popleft()]
            rows = len(group[0][0].event_rows)
            while self._queue and rows + len(self._queue[0][0].event_rows) <= self.max_rows:
                item = self._queue.popleft()
                rows += len(item[0].event_rows)
                group.append(item)
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            group = [(b, f) for b, f in group if f.set_running_or_notify_cancel()]
            if group:
                self._commit(group)

    def _commit(self, group: list[tuple[Prepared, Future[WriteResult]]]) -> None:
        batches = [b for b, _ in group]
        try:
            results = self.writer.commit_many(batches)
        except BaseException as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            # (the error's text may quote telemetry values: the one-by-one retries report it to their requests)
            log.warning("a group commit of %d batches failed (%s); committing them one by one", len(group),
                        type(exc).__name__)
            for batch, fut in group:
                try:
                    result = self.writer.commit(batch)
                except BaseException as one:
                    fut.set_exception(one)
                else:
                    self._done([batch], [result])
                    fut.set_result(result)
            return
        self.groups += 1
        self.batches += len(batches)
        self._done(batches, results)
        for (_, fut), result in zip(group, results, strict=True):
            fut.set_result(result)

    def _done(self, batches: Sequence[Prepared], results: Sequence[WriteResult]) -> None:
        if self.after_commit is None:
            return
        try:
            self.after_commit(batches, results)
        except Exception:  # the batches are durable: their requests must still be answered
            log.exception("after-commit hook failed")
