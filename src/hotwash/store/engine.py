"""Engines: SQLite by default, PostgreSQL for teams. The only module that tunes a dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def _json_dumps(value: Any) -> str:
    # orjson is ~10x faster than json.dumps on the ingest path and rejects NaN/Infinity
    # instead of writing invalid JSON.
    return orjson.dumps(value).decode()


def _json_loads(value: str | bytes) -> Any:
    return orjson.loads(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (the server, `hotwash status`) never block the writer, nor it them.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is fsynced to the WAL, so an acknowledged event survives a power loss.
    # NORMAL would be faster but may lose the last commits; OFF may corrupt the file.
    cursor.execute("PRAGMA synchronous=FULL")
    # The CLI and the server may write the same file: wait for the lock instead of failing.
    cursor.execute("PRAGMA busy_timeout=30000")
    # Enforce declared foreign keys (SQLite ignores them unless asked).
    cursor.execute("PRAGMA foreign_keys=ON")
    # Let WAL grow to ~64 MB between checkpoints: fewer checkpoint stalls during bulk ingest.
    cursor.execute("PRAGMA wal_autocheckpoint=16000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings hotwash relies on."""
    parsed = make_url(url)
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Pooled (SQLAlchemy's default QueuePool): closing the last connection to a WAL database
        # checkpoints and truncates the WAL, which would cost a full write per batch.
        engine = create_engine(parsed, **options, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options["pool_pre_ping"] = True
    return create_engine(parsed, **options, **kwargs)


def dialect_name(engine: Engine) -> str:
    return engine.dialect.name
