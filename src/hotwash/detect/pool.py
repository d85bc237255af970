"""The per-event checks on every core: a pool of worker processes for bulk ingest.

The checks are pure CPU work in Python (the GIL allows one thread at a time), so the work that
needs no database is done in worker processes while the main process writes:

* :meth:`ParallelChecker.submit_lines` — raw JSONL lines in, a :class:`~hotwash.telemetry.writer.Prepared`
  batch out (decoding and validation, pricing, the checks, the rollup sums) plus the rejected lines.
  The main process only cuts the stream into lines and commits (``hotwash ingest``).
* :meth:`ParallelChecker.submit_events` — validated events in (msgpack), a prepared batch out (other
  readers, such as OTLP/JSON files).
* :meth:`ParallelChecker.submit_otlp` — an OTLP/HTTP body in, its mapping and a prepared batch out
  (the server's ``/v1/traces``).
* :meth:`ParallelChecker.check_many` — verdicts of a batch, split across the workers.

Results come back as msgpack (msgspec encodes a batch of 5,000 rows in a few milliseconds;
datetimes travel as msgpack timestamps, exactly). Small batches are checked inline: shipping
them would cost more than it saves.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import msgspec

from hotwash.detect.checks import EventChecker, EventVerdict
from hotwash.detect.findings import Finding
from hotwash.manifest import Manifest
from hotwash.telemetry.model import Event
from hotwash.telemetry.writer import prepare

# Below this many events a batch is checked in this process.
MIN_PARALLEL = 400

_worker_checker: EventChecker | None = None
_encoder = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[Event])


def _watch_parent(parent: int) -> None:
    # A worker blocks reading its next task; if the parent is SIGKILLed that read never ends (the
    # worker holds the pipe's other end too), so it checks for its parent instead.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _init_worker(manifest_json: bytes, parent: int) -> None:
    global _worker_checker
    _worker_checker = EventChecker(Manifest.model_validate_json(manifest_json))
    # Like the main process's bulk_gc: the objects made here live as long as the worker, and a
    # batch allocates many short-lived containers that reference counting frees.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    threading.Thread(target=_watch_parent, args=(parent,), name="hotwash-parent-watch", daemon=True).start()


def _check_chunk(payload: bytes) -> bytes:
    assert _worker_checker is not None
    out = []
    for event in _events_decoder.decode(payload):
        v = _worker_checker.check(event)
        out.append(([(f.category, f.check, f.score, f.flagged, f.evidence) for f in v.findings],
                    v.counters, v.behaviours))
    return _encoder.encode(out)


def _prepare_lines(first_line: int, lines: list[bytes] | bytes, limit: int, sqlite: bool) -> bytes:
    from hotwash.telemetry.ingest import decode_lines

    if isinstance(lines, bytes):  # the lines joined by \n (ingest.chunk_batches)
        lines = lines.split(b"\n")
    records, rejected, last = decode_lines(first_line, lines, limit)
    return _encoder.encode((prepare(records, _worker_checker, sqlite=sqlite).to_wire(), rejected, last))


def _prepare_events(payload: bytes, sqlite: bool) -> bytes:
    return _encoder.encode(prepare(_events_decoder.decode(payload), _worker_checker, sqlite=sqlite).to_wire())


def _prepare_otlp(body: bytes, content_type: str, sqlite: bool) -> bytes:
    from hotwash.telemetry.otlp import decode_and_map

    batch = decode_and_map(body, content_type)
    prepared = prepare(batch.records, _worker_checker, sqlite=sqlite)
    return _encoder.encode((prepared.to_wire(), batch.rejected, batch.ignored))


class ParallelChecker(EventChecker):
    """An :class:`EventChecker` whose work can go to ``workers`` processes.

    Use as a context manager (or call :meth:`close`) so the workers exit with the ingest.
    """

    def __init__(self, manifest: Manifest | None = None, *, workers: int | None = None) -> None:
        super().__init__(manifest)
        self.workers = workers or (os.cpu_count() or 1)  # None or 0: one per CPU
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def parallel(self) -> bool:
        """Whether work goes to worker processes at all (not with one CPU or ``workers=1``)."""
        return self.workers >= 2

    def start(self) -> ParallelChecker:
        """Start the workers now (fork them before the caller starts threads of its own)."""
        if self.parallel:
            self._ensure_pool().submit(os.getpid).result()
        return self

    def _ensure_pool(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                # fork: the workers need nothing but the checker (no database, no locks), and fork does
                # not re-run the caller's __main__ the way spawn/forkserver do. Every worker starts at
                # the first submit (ProcessPoolExecutor forks them all at once).
                ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                                  else "spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                                 initargs=(self.manifest.model_dump_json().encode(), os.getpid()))
            return self._pool

    def check_many(self, events: Sequence[Event]) -> list[EventVerdict]:
        if not self.parallel or len(events) < MIN_PARALLEL:
            return [self.check(e) for e in events]
        pool = self._ensure_pool()
        size = -(-len(events) // (self.workers * 2))  # two chunks per worker evens out slow chunks
        chunks = [events[i:i + size] for i in range(0, len(events), size)]
        futures = [pool.submit(_check_chunk, _encoder.encode(list(chunk))) for chunk in chunks]
        verdicts: list[EventVerdict] = []
        for fut in futures:
            for findings, counters, behaviours in msgspec.msgpack.decode(fut.result()):
                verdicts.append(EventVerdict([Finding(*f) for f in findings], counters,
                                             [tuple(b) for b in behaviours]))
        return verdicts

    # -- whole batches prepared in a worker (decode with decode_prepared / decode_prepared_lines) --
    def submit_lines(self, first_line: int, lines: list[bytes] | bytes, limit: int, *, sqlite: bool = False
                     ) -> Future[bytes]:
        """JSONL lines numbered from ``first_line`` (without their ``\\n``; a longer line than
        ``limit`` may be cut to ``limit + 1`` bytes) to decode, validate, check and prepare; or
        those lines joined by ``\\n`` into one bytes object, which crosses to a worker cheaper.
        ``sqlite``: the worker also converts the rows to SQLite's bound values (``Prepared.to_wire``)."""
        return self._ensure_pool().submit(_prepare_lines, first_line, lines, limit, sqlite)

    def submit_events(self, events: Sequence[Event], *, sqlite: bool = False) -> Future[bytes]:
        return self._ensure_pool().submit(_prepare_events, _encoder.encode(list(events)), sqlite)

    def submit_otlp(self, body: bytes, content_type: str, *, sqlite: bool = False) -> Future[bytes]:
        """An OTLP/HTTP body to decode, map and prepare; the future raises what
        :func:`hotwash.telemetry.otlp.decode_and_map` raises (PayloadError). ``sqlite``: as for
        :meth:`submit_lines`, the worker also converts the rows to SQLite's bound values."""
        return self._ensure_pool().submit(_prepare_otlp, body, content_type, sqlite)

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParallelChecker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def decode_result(payload: bytes) -> Any:
    """A worker's msgpack result as plain values."""
    return msgspec.msgpack.decode(payload)
