"""The store: migrations up and down on both databases, schema == tables, UTC round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from hotwash.errors import StoreError
from hotwash.store import SCHEMA_HEAD, open_store
from hotwash.store.postmortems import SEARCH_OBJECTS
from hotwash.store.tables import events, metadata


def test_migrations_up_down_up(db_url: str) -> None:
    store = open_store(db_url)
    with pytest.raises(StoreError, match="hotwash init"):
        store.check_ready()
    store.migrate()
    store.check_ready()
    assert {"events", "changes", "rollups"} <= set(inspect(store.engine).get_table_names())
    store.downgrade("base")
    assert not {"events", "changes", "rollups"} & set(inspect(store.engine).get_table_names())
    assert store.current_revision() is None
    store.migrate("0005")
    with pytest.raises(StoreError, match=f"at schema revision 0005, hotwash needs {SCHEMA_HEAD}"):
        store.check_ready()
    store.migrate()
    assert store.current_revision() == store.head_revision() == SCHEMA_HEAD
    with store.engine.connect() as conn:  # alembic's own reading agrees with the quick one
        assert MigrationContext.configure(conn).get_current_revision() == SCHEMA_HEAD
    store.dispose()


def test_migrated_schema_matches_tables(store) -> None:
    with store.engine.connect() as conn:
        # Full-text search objects are dialect-specific DDL of migration 0006, outside the metadata.
        opts = {"compare_type": True, "include_name": lambda name, _type, _parents: name not in SEARCH_OBJECTS}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    assert diff == []


def test_times_round_trip_as_utc(store) -> None:
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2026, 11, 27, 6, 25, 28, 123456, tzinfo=plus2)
    row = {"id": "e1", "ts": when, "feature": "f", "cost_source": "reported",
           "ingested_at": datetime.now(UTC)}
    with store.transaction() as conn:
        assert store.insert_events(conn, [row]) == {"e1"}
    got = store.get_events(["e1"])["e1"]["ts"]
    assert got == when and got.utcoffset() == timedelta(0)
    assert got.hour == 4  # converted, not relabelled


def test_range_query_orders_by_time_not_text(store) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"id": f"e{i}", "ts": base + timedelta(seconds=s), "feature": "f", "cost_source": "reported",
             "ingested_at": base} for i, s in enumerate([5, 0.5, 3600 * 24 * 40, 59.999999])]
    with store.transaction() as conn:
        store.insert_events(conn, rows)
    got = [e["id"] for e in store.iter_events(since=base + timedelta(seconds=0.4),
                                                 until=base + timedelta(seconds=60))]
    assert got == ["e1", "e0", "e3"]


def test_naive_datetime_is_refused(store) -> None:
    with pytest.raises(Exception, match="naive datetime"), store.transaction() as conn:
        conn.execute(select(events.c.id).where(events.c.ts > datetime(2026, 1, 1)))


def test_unreachable_store_is_a_clear_error(tmp_path) -> None:
    store = open_store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot reach the store"):
        store.check_ready()
