"""Streaming JSONL reader: one record per line, bounded memory, every bad line explained.

The reader never holds more than one line (at most ``max_record_bytes``) in memory; an
over-long line is skipped to its end without being read whole. Bad lines come out as
:class:`Rejected` items in stream order, so the caller can quarantine them and go on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hotwash.errors import InputError
from hotwash.telemetry.model import Record, decode_record

_CHUNK = 1 << 16


@dataclass(slots=True)
class Accepted:
    line: int
    record: Record


@dataclass(slots=True)
class Rejected:
    source: str
    line: int
    reason: str
    raw: bytes

    def to_json(self) -> dict[str, object]:
        """The quarantine record: where it came from, why, and the original bytes."""
        try:
            text: str | None = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        out: dict[str, object] = {"source": self.source, "line": self.line, "reason": self.reason}
        if text is not None:
            out["raw"] = text
        else:
            out["raw_base64"] = base64.b64encode(self.raw).decode()
        return out


def _lines(stream: BinaryIO, limit: int) -> Iterator[tuple[bytes, bool]]:
    """Yield (line without newline, too_long). A too-long line yields its first ``limit`` bytes."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line.rstrip(b"\r\n"), False
            continue
        head = line[:limit]
        while line and not line.endswith(b"\n"):  # drain the rest of the long line
            line = stream.readline(_CHUNK)
        yield head, True


def read_jsonl(stream: BinaryIO, *, source: str, max_record_bytes: int) -> Iterator[Accepted | Rejected]:
    """Parse ``stream`` line by line. Blank lines are skipped; nothing is raised for bad input."""
    for lineno, (raw, too_long) in enumerate(_lines(stream, max_record_bytes), start=1):
        if too_long:
            yield Rejected(source, lineno, f"record is over the size limit of {max_record_bytes} bytes",
                           raw[:1024])
            continue
        if not raw.strip():
            continue
        try:
            yield Accepted(lineno, decode_record(raw))
        except InputError as exc:
            yield Rejected(source, lineno, exc.reason, raw)
