"""The bulk-ingest fast paths: SQLite's executemany insert (with its savepoint fallback when some ids
are stored), the one-pass session recount, rows bound straight from events, and batches that cross
to the workers as joined lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from hotwash.store import Store, sqlite_event_row, sqlite_values
from hotwash.store.tables import events, rollups
from hotwash.telemetry.ingest import chunk_batches
from hotwash.telemetry.model import Event, parse_record
from hotwash.telemetry.writer import EventWriter, _event_mapping, prepare


def _records(n: int, *, start: int = 0, minutes: int = 3) -> list[Any]:
    t0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    return [parse_record({"id": f"e-{i}", "ts": (t0 + timedelta(seconds=i * 60 * minutes / max(n, 1))).isoformat(),
                          "feature": "f" if i % 3 else "g", "session_id": None if i % 7 == 0 else f"s-{i % 5}",
                          "tokens_in": i, "escalated": bool(i % 2), "tags": {"n": i}})
            for i in range(start, start + n)]


def _bound(store: Store, records: list[Any]) -> list[list[Any]]:
    rows = prepare(records, sqlite=True).event_rows
    for r in rows:
        r[events.columns.keys().index("ingested_at")] = "2026-12-07 10:00:00.000000"
    return rows


def test_sqlite_insert_reports_exactly_the_new_ids(store: Store) -> None:
    if store.dialect != "sqlite":
        pytest.skip("rows bound for SQLite")
    records = _records(40)
    with store.transaction() as conn:  # all new: the executemany path
        assert store.insert_sqlite_values(conn, _bound(store, records[:25])) == {f"e-{i}" for i in range(25)}
    with store.transaction() as conn:  # 15 of 40 new: rolled back to the savepoint, then INSERT ... RETURNING
        assert store.insert_sqlite_values(conn, _bound(store, records)) == {f"e-{i}" for i in range(25, 40)}
    with store.transaction() as conn:  # none new
        assert store.insert_sqlite_values(conn, _bound(store, records)) == set()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 40


@pytest.mark.parametrize("stored_first", [False, True])
def test_sqlite_insert_stays_inside_the_callers_transaction(store: Store, stored_first: bool) -> None:
    """The savepoint must not commit on its own: a failure later in the transaction undoes the insert."""
    if store.dialect != "sqlite":
        pytest.skip("rows bound for SQLite")
    records = _records(10)
    if stored_first:
        with store.transaction() as conn:
            store.insert_sqlite_values(conn, _bound(store, records[:3]))
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.insert_sqlite_values(conn, _bound(store, records))
        raise RuntimeError("later in the same transaction")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == (3 if stored_first else 0)


def test_sqlite_event_row_is_the_store_conversion_of_the_row_mapping() -> None:
    """Bound values read straight from an event equal sqlite_values of its row mapping, for times in
    any zone and naive ones (read as UTC), booleans and nested values."""
    objs = [
        {"id": "a", "ts": "2026-11-27T04:25:28.123456Z", "feature": "f", "escalated": True,
         "context": [{"text": "x", "score": 0.5}], "tool_calls": [{"name": "t", "arguments": {"q": 1}}],
         "untrusted": ["input"], "tags": {"k": [1, 2]}},
        {"id": "b", "ts": "2026-11-27T06:25:28+02:00", "feature": "f", "escalated": False},
        {"id": "c", "ts": "2026-11-27T04:25:28", "feature": "f"},
        {"id": "d", "ts": "0099-01-02T03:04:05Z", "feature": "f"},
    ]
    for obj in objs:
        ev = parse_record(obj)
        assert isinstance(ev, Event)
        findings = [{"category": "x", "score": 1.0}]
        mapping = _event_mapping(ev, 0.5, "priced", findings)
        mapping["ingested_at"] = None
        assert sqlite_event_row(ev, 0.5, "priced", findings) == sqlite_values(events, [mapping])[0]
    # a struct-like event whose time is not in datetime.UTC takes the column's own conversion
    ev = parse_record(objs[0])
    ev.ts = ev.ts.astimezone(timezone(timedelta(hours=1)))
    assert sqlite_event_row(ev, None, "none", None)[1] == "2026-11-27 04:25:28.123456"


def test_session_recount_matches_a_direct_count(store: Store) -> None:
    writer = EventWriter(store)
    records = _records(300, minutes=4)
    writer.write(records[:120])
    writer.write(records[120:])  # minutes shared with the first batch are recounted from the table
    with store.engine.connect() as conn:
        got = {(r.feature, r.minute): (r.sessions, r.max_session_calls)
               for r in conn.execute(select(rollups.c.feature, rollups.c.minute, rollups.c.sessions,
                                            rollups.c.max_session_calls))}
    want: dict[tuple[str, datetime], dict[str, int]] = {}
    for e in records:
        calls = want.setdefault((e.feature, e.ts.replace(second=0, microsecond=0)), {})
        if e.session_id is not None:
            calls[e.session_id] = calls.get(e.session_id, 0) + 1
    assert got == {k: (len(v), max(v.values(), default=0)) for k, v in want.items()}


_KINDS = [b'{"id":"a","ts":"2026-11-27T04:25:28Z","feature":"f"}', b"not json", b"", b"  ", b"\t{}", b"x" * 90,
          b'{"id":"b"}\r']


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, len(_KINDS) - 1), max_size=40), final_newline=st.booleans(),
       batch=st.integers(1, 9), block=st.sampled_from([1, 2, 5, 16, 64, 1 << 20]))
def test_chunk_batches_cut_the_stream_at_line_ends(picks: list[int], final_newline: bool, batch: int,
                                                   block: int) -> None:
    """Without over-long lines, the chunks are the stream itself cut at line ends, ``batch`` records
    each (a record: a line that is not blank), numbered and positioned consecutively."""
    lines = [_KINDS[i] for i in picks]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    chunks = list(chunk_batches(io.BytesIO(data), batch, 1000, block))
    assert chunks[-1][3] == len(data)
    line, pos, joined = 1, 0, []
    for n, (first, chunk, n_lines, end) in enumerate(chunks):
        assert first == line and end >= pos
        got = chunk.split(b"\n") if n_lines else []
        assert len(got) == n_lines
        records = sum(1 for x in got if x.strip())
        assert records == batch or (n == len(chunks) - 1 and records < batch)
        joined += got
        line, pos = line + n_lines, end
    assert joined == (data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n") if data else [])
