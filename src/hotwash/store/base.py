"""What the store's query mixins share: the engine, the dialect, units of work, dialect inserts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from hotwash.errors import StoreError


class StoreBase:
    engine: Engine
    dialect: str

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work: committed (durably) when the block exits, rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"the store failed during a write: {exc.orig}") from exc
