"""The per-event checks on every core: a pool of worker processes for bulk ingest.

The checks are pure CPU work in Python (the GIL allows one thread at a time), so a batch of a few
thousand events is split across worker processes while the main process parses and writes.
Events travel as msgpack (msgspec encodes a batch of 5,000 in a few milliseconds) and verdicts
come back the same way. Small batches (the HTTP API's) are checked inline: shipping them would
cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec

from hotwash.detect.checks import EventChecker, EventVerdict
from hotwash.detect.findings import Finding
from hotwash.manifest import Manifest
from hotwash.telemetry.model import Event

# Below this many events a batch is checked in this process.
MIN_PARALLEL = 400

_worker_checker: EventChecker | None = None
_encoder = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[Event])


def _init_worker(manifest_json: bytes) -> None:
    global _worker_checker
    _worker_checker = EventChecker(Manifest.model_validate_json(manifest_json))


def _check_chunk(payload: bytes) -> bytes:
    assert _worker_checker is not None
    out = []
    for event in _events_decoder.decode(payload):
        v = _worker_checker.check(event)
        out.append(([(f.category, f.check, f.score, f.flagged, f.evidence) for f in v.findings],
                    v.counters, v.behaviours))
    return _encoder.encode(out)


class ParallelChecker(EventChecker):
    """An :class:`EventChecker` whose :meth:`check_many` uses ``workers`` processes.

    Use as a context manager (or call :meth:`close`) so the workers exit with the ingest.
    """

    def __init__(self, manifest: Manifest | None = None, *, workers: int | None = None) -> None:
        super().__init__(manifest)
        self.workers = workers or (os.cpu_count() or 1)  # None or 0: one per CPU
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # fork: the workers need nothing but the checker (no database, no locks), and fork does
            # not re-run the caller's __main__ the way spawn/forkserver do.
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(self.manifest.model_dump_json().encode(),))
        return self._pool

    def check_many(self, events: Sequence[Event]) -> list[EventVerdict]:
        if self.workers < 2 or len(events) < MIN_PARALLEL:
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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelChecker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
