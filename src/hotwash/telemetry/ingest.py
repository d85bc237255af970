"""Ingest JSONL files (or stdin) into the store: streamed, batched, bad lines quarantined."""

from __future__ import annotations

import gc
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO

import orjson

from hotwash.detect.pool import ParallelChecker, decode_result
from hotwash.errors import InputError
from hotwash.telemetry.jsonl import Accepted, Rejected, read_jsonl
from hotwash.telemetry.model import Event, Record, decode_record
from hotwash.telemetry.writer import EventWriter, Prepared, WriteResult, prepare


class RecordReader(Protocol):
    """Turns one input stream into accepted records and rejections, in stream order."""

    def __call__(self, stream: BinaryIO, *, source: str,
                 max_record_bytes: int) -> Iterator[Accepted | Rejected]: ...


class Quarantine:
    """An append-only JSONL file of rejected records, created on the first rejection."""

    def __init__(self, directory: Path, label: str = "ingest") -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = directory / f"{label}-{stamp}-{os.getpid()}.jsonl"
        self._fh: TextIO | None = None

    def add(self, rejected: Rejected) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(orjson.dumps(rejected.to_json()).decode() + "\n")
        self._fh.flush()

    @property
    def used(self) -> bool:
        return self._fh is not None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    unpriced: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0
    quarantine: Path | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected_count,
            "unpriced": self.unpriced,
            "quarantine": str(self.quarantine) if self.quarantine else None,
        }


# Keep this many rejections in memory to show the user; all of them go to the quarantine file.
_SHOWN_REJECTIONS = 200


@contextmanager
def bulk_gc() -> Iterator[None]:
    """Tune the garbage collector for a bulk load, and restore it afterwards.

    Ingest allocates millions of short-lived objects that reference counting frees (no cycles),
    yet each 700 allocations trigger a collection that walks every young object, and the
    periodic full collections walk everything the process imported. Freezing the objects alive
    at the start and collecting less often was measured at +15 % events/s.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _tell(stream: BinaryIO) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError):
        return 0


def ingest_streams(
    streams: Iterable[tuple[str, BinaryIO]],
    *,
    writer: EventWriter,
    quarantine: Quarantine,
    batch_size: int,
    max_record_bytes: int,
    on_batch: Callable[[str, int, int, WriteResult], None] | None = None,
    reader: RecordReader | None = None,
) -> IngestReport:
    """Ingest each (name, binary stream). ``on_batch(name, last_line, bytes_read, result)`` is
    called after every committed batch: the events up to ``last_line`` are durable then.

    With a :class:`~hotwash.detect.pool.ParallelChecker` on the writer, batches are pipelined: the
    workers decode, validate and check the next batches while this process commits the current
    one (see :func:`_ingest_pipelined`). Otherwise everything runs here, one batch after another:
    a reader *thread* decoding ahead was measured 25 % slower, because SQLite releases the GIL
    around every row step and each re-acquire then waits on the reader.
    """
    report = IngestReport()
    with bulk_gc():
        checker = writer.checker
        if isinstance(checker, ParallelChecker) and checker.parallel:
            _ingest_pipelined(streams, writer, checker, quarantine, batch_size, max_record_bytes, on_batch,
                              reader, report)
        else:
            _ingest(streams, writer, quarantine, batch_size, max_record_bytes, on_batch,
                    reader or read_jsonl, report)
    report.quarantine = quarantine.path if quarantine.used else None
    return report


def _ingest(
    streams: Iterable[tuple[str, BinaryIO]],
    writer: EventWriter,
    quarantine: Quarantine,
    batch_size: int,
    max_record_bytes: int,
    on_batch: Callable[[str, int, int, WriteResult], None] | None,
    reader: RecordReader,
    report: IngestReport,
) -> None:
    def flush(name: str, stream: BinaryIO, records: list[Record], last_line: int) -> None:
        _count(report, writer.write(records), name, last_line, _tell(stream), on_batch)

    try:
        for name, stream in streams:
            records: list[Record] = []
            items = 0  # a batch ends after batch_size items, good or bad (the pipeline cuts the same)
            last_line = 0
            for item in reader(stream, source=name, max_record_bytes=max_record_bytes):
                items += 1
                if isinstance(item, Accepted):
                    records.append(item.record)
                    last_line = item.line
                else:
                    _reject(report, quarantine, item)
                if items >= batch_size:
                    flush(name, stream, records, last_line)
                    records, items = [], 0
            flush(name, stream, records, last_line)
    finally:
        quarantine.close()


def _reject(report: IngestReport, quarantine: Quarantine, item: Rejected) -> None:
    quarantine.add(item)
    report.rejected_count += 1
    if len(report.rejected) < _SHOWN_REJECTIONS:
        report.rejected.append(item)


def _count(report: IngestReport, result: WriteResult, name: str, last_line: int, position: int,
           on_batch: Callable[[str, int, int, WriteResult], None] | None) -> None:
    report.accepted += result.accepted
    report.duplicates += result.duplicates
    report.unpriced += result.unpriced
    if on_batch is not None:
        on_batch(name, last_line, position, result)


# -- the pipeline --------------------------------------------------------------------------------

# Bytes read from a stream at a time when the workers decode the lines.
_BLOCK = 1 << 20
# A line that is empty or starts with whitespace (maybe blank, so not a record) after the first.
# Written with a literal first character, so the search skips ahead like a string search.
_MAYBE_BLANK = re.compile(rb"\n[\t-\r ]")
_WHITESPACE = b"\t\n\x0b\x0c\r "


def decode_lines(first_line: int, lines: Sequence[bytes], limit: int
                 ) -> tuple[list[Record], list[tuple[int, str, bytes]], int]:
    """What :func:`~hotwash.telemetry.jsonl.read_jsonl` makes of ``lines`` (numbered from
    ``first_line``, without their ``\\n``): (records, rejections as (line, reason, raw), the last
    accepted line or 0). A line longer than ``limit`` may arrive cut to ``limit + 1`` bytes."""
    records: list[Record] = []
    rejected: list[tuple[int, str, bytes]] = []
    last = 0
    for lineno, line in enumerate(lines, start=first_line):
        if len(line) > limit:
            rejected.append((lineno, f"record is over the size limit of {limit} bytes", line[:limit][:1024]))
            continue
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            records.append(decode_record(raw))
        except InputError as exc:
            rejected.append((lineno, exc.reason, raw))
        else:
            last = lineno
    return records, rejected, last


def line_batches(stream: BinaryIO, batch_records: int, limit: int, block: int = _BLOCK
                 ) -> Iterator[tuple[int, list[bytes], int]]:
    """Cut ``stream`` into batches of ``batch_records`` records: (first line number, lines without
    their ``\\n``, bytes of the stream up to the batch's end). A record is a line that is not blank
    (what :func:`~hotwash.telemetry.jsonl.read_jsonl` yields an item for, good or bad), so the
    batches hold the same records as the sequential path's. The last batch may be short or empty.

    Memory stays bounded like ``read_jsonl``'s: a line longer than ``limit`` is kept cut to
    ``limit + 1`` bytes (enough to reject it) while the rest of it is skipped unread. See
    :func:`chunk_batches`, which this splits.
    """
    for first, chunk, n_lines, consumed in chunk_batches(stream, batch_records, limit, block):
        yield first, chunk.split(b"\n") if n_lines else [], consumed


def chunk_batches(stream: BinaryIO, batch_records: int, limit: int, block: int = _BLOCK
                  ) -> Iterator[tuple[int, bytes, int, int]]:
    """:func:`line_batches` with each batch's lines joined by ``\\n`` into one bytes object:
    (first line number, lines, how many lines, bytes of the stream up to the batch's end).

    Reads ``block`` bytes at a time. Where a block holds no blank line (the usual case) its lines
    are counted and cut in C and kept as one piece: no object per line is made here, and a batch
    crosses to a worker as a few large bytes objects rather than thousands of small ones.
    """
    read = getattr(stream, "read1", None) or stream.read
    first = 1
    pieces: list[bytes] = []  # the batch so far: single lines and runs of whole lines, to join by \n
    n_lines = 0  # lines in `pieces`
    records = 0  # records in `pieces`
    consumed = 0  # bytes up to the end of `pieces`
    pending = b""  # the unterminated end of the last block
    draining = False  # skipping the rest of a too-long line (its head is in `pieces`)

    def cut() -> tuple[int, bytes, int, int]:
        nonlocal first, pieces, n_lines, records
        out = (first, pieces[0] if len(pieces) == 1 else b"\n".join(pieces), n_lines, consumed)
        first, pieces, n_lines, records = first + n_lines, [], 0, 0
        return out

    while True:
        data = read(block)
        if not data:
            break
        if draining:
            end = data.find(b"\n")
            if end < 0:
                consumed += len(data)
                continue
            consumed += end + 1
            data = data[end + 1:]
            draining = False
        if pending:
            data = pending + data
        last = data.rfind(b"\n")  # the block's whole lines end here
        if last < 0:
            pending = data
        elif data[:1] not in _WHITESPACE and _MAYBE_BLANK.search(data, 0, last + 1) is None:
            # every whole line is a record: count them, and find a batch's end only where one ends
            at = 0  # the start of the lines not yet in `pieces`
            left = data.count(b"\n", 0, last + 1)
            while left:
                need = batch_records - records
                if left < need:
                    pieces.append(data[at:last])
                    n_lines += left
                    records += left
                    consumed += last + 1 - at
                    break
                end = at - 1
                for _ in range(need):
                    end = data.index(b"\n", end + 1)
                pieces.append(data[at:end])
                n_lines += need
                records += need
                consumed += end + 1 - at
                left -= need
                at = end + 1
                yield cut()
            pending = data[last + 1:]
        else:
            parts = data[:last].split(b"\n")
            pending = data[last + 1:]
            for line in parts:
                pieces.append(line)
                n_lines += 1
                consumed += len(line) + 1
                if len(line) > limit or line.strip():
                    records += 1
                    if records >= batch_records:
                        yield cut()
        if len(pending) > limit:  # a line already too long: keep what rejects it, skip the rest
            pieces.append(pending[:limit + 1])
            n_lines += 1
            records += 1
            consumed += len(pending)
            pending = b""
            draining = True
            if records >= batch_records:
                yield cut()
    if pending:  # the last line, without a newline
        pieces.append(pending)
        n_lines += 1
        consumed += len(pending)
    yield cut()


@dataclass(slots=True)
class _Batch:
    name: str
    stream: int  # which stream of the call (names may repeat)
    position: int  # bytes of the stream up to the batch's end
    future: Future[bytes] | None = None  # the workers' prepared batch
    lines: bool = True  # the future holds (prepared, rejections, last line); else a prepared batch
    rejected: list[Rejected] = field(default_factory=list)  # found by this process
    changes: list[Record] = field(default_factory=list)  # change events, prepared here
    last_line: int = 0


def _ingest_pipelined(
    streams: Iterable[tuple[str, BinaryIO]],
    writer: EventWriter,
    checker: ParallelChecker,
    quarantine: Quarantine,
    batch_size: int,
    max_record_bytes: int,
    on_batch: Callable[[str, int, int, WriteResult], None] | None,
    reader: RecordReader | None,
    report: IngestReport,
) -> None:
    """Batch k is committed here while the workers prepare batches k+1 to k+workers+1 (and this
    process reads the next). Batches commit in stream order and ``on_batch`` reports only committed
    ones, as the sequential path does; at most ``workers + 2`` batches are in memory at once.

    JSONL (``reader`` None): this process only cuts the stream into lines; the workers decode,
    validate, price and check (:func:`decode_lines`, then :func:`~hotwash.telemetry.writer.prepare`).
    Another reader runs here and the workers prepare its events.
    """
    pending: deque[_Batch] = deque()
    sqlite = writer.store.dialect == "sqlite"  # the workers also bind the rows' values
    # Batches in the workers while one commits: one more than there are workers, so a worker that
    # finishes during a commit finds its next batch already queued instead of idling until the
    # commit ends (at one per worker, 1 M events used 1.75 of 2 cores).
    ahead = checker.workers + 1
    last_line = {"stream": -1, "line": 0}  # the last accepted line reported, per stream

    def finish(b: _Batch) -> None:
        if b.future is None:
            prepared = prepare(b.changes)
            rejected: list[tuple[int, str, bytes]] = []
            line = b.last_line
        elif b.lines:
            wire, rejected, line = decode_result(b.future.result())
            prepared = Prepared.from_wire(wire)
        else:
            prepared = Prepared.from_wire(decode_result(b.future.result()))
            rejected, line = [], b.last_line
            if b.changes:
                more = prepare(b.changes)
                prepared.change_rows, prepared.duplicates = more.change_rows, prepared.duplicates + more.duplicates
        for item in b.rejected:
            _reject(report, quarantine, item)
        for lineno, reason, raw in rejected:
            _reject(report, quarantine, Rejected(b.name, lineno, reason, raw))
        result = writer.commit(prepared)
        if last_line["stream"] != b.stream:
            last_line.update(stream=b.stream, line=0)
        last_line["line"] = line = line or last_line["line"]
        _count(report, result, b.name, line, b.position, on_batch)

    def add(b: _Batch) -> None:
        pending.append(b)
        if len(pending) > ahead:
            finish(pending.popleft())

    try:
        for index, (name, stream) in enumerate(streams):
            if reader is None:
                start = _tell(stream)
                for first, chunk, n_lines, consumed in chunk_batches(stream, batch_size, max_record_bytes):
                    future = (checker.submit_lines(first, chunk, max_record_bytes, sqlite=sqlite) if n_lines
                              else None)
                    add(_Batch(name, index, start + consumed, future))
                continue
            b = _Batch(name, index, 0, lines=False)
            events: list[Event] = []
            items = 0
            for item in reader(stream, source=name, max_record_bytes=max_record_bytes):
                items += 1
                if isinstance(item, Rejected):
                    b.rejected.append(item)
                else:
                    if isinstance(item.record, Event):
                        events.append(item.record)
                    else:
                        b.changes.append(item.record)
                    b.last_line = item.line
                if items >= batch_size:
                    b.future = checker.submit_events(events, sqlite=sqlite) if events else None
                    b.position = _tell(stream)
                    add(b)
                    b, events, items = _Batch(name, index, 0, lines=False), [], 0
            b.future = checker.submit_events(events, sqlite=sqlite) if events else None
            b.position = _tell(stream)
            add(b)
        while pending:
            finish(pending.popleft())
    finally:
        for b in pending:
            if b.future is not None:
                b.future.cancel()
        quarantine.close()


def open_inputs(paths: Iterable[str]) -> Iterable[tuple[str, BinaryIO]]:
    """Yield (name, stream) for each path, ``-`` meaning standard input; files opened lazily."""
    for p in paths:
        if p == "-":
            yield "<stdin>", sys.stdin.buffer
        else:
            with open(p, "rb") as fh:
                yield p, fh
