"""The store: engine, tables, migrations and every query. The only package that speaks SQL.

Callers get a :class:`Store` from :func:`open_store` and use its methods; no dialect checks or
SQL strings live outside this package.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.resources import files
from operator import itemgetter
from typing import Any

import msgspec
import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    inspect,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from hotwash.errors import StoreError
from hotwash.store.auth import AuthQueries
from hotwash.store.diagnosis import DiagnosisQueries
from hotwash.store.engine import make_engine
from hotwash.store.evals import EvalQueries
from hotwash.store.flags import FlagQueries
from hotwash.store.incidents import IncidentQueries
from hotwash.store.insights import InsightQueries
from hotwash.store.postmortems import PostmortemQueries
from hotwash.store.tables import behaviours, changes, events, metadata, rollups, signals
from hotwash.store.types import UtcDateTime

__all__ = ["RECOUNTED", "ROLLUP_COUNTERS", "Store", "open_store", "sqlite_event_row", "sqlite_values"]

# env values that count as production traffic (anything else in production is "non-prod").
PRODUCTION_ENV_NAMES = frozenset({"", "prod", "production", "prd", "live"})

# Rows per multi-row INSERT on SQLite: 27 columns x 500 rows stays under SQLite's limit of
# 32,766 bound parameters per statement.
_SQLITE_ROWS_PER_INSERT = 500

# SQLite reads of rollups pack two small counters into one integer (see Store._sqlite_packed_arrays).
_PACK_BITS = 26
_PACK = 1 << _PACK_BITS

# Rollup columns recomputed from `events` for each minute a batch touches (not mergeable sums).
RECOUNTED = ("sessions", "max_session_calls")
# Counter columns of `rollups` that ingest adds to (everything but the key and the recounted).
ROLLUP_COUNTERS = tuple(
    c.name for c in rollups.columns if c.name not in {"feature", "minute", *RECOUNTED}
)


# The newest migration. check_ready (every command runs it) compares the stored revision with this
# instead of loading alembic, which takes a fifth of a second to import; tests/test_store.py holds it
# to alembic's own head.
SCHEMA_HEAD = "0006"


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("hotwash.store") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _last_value_memo(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Remember the last conversion: a batch shares one ``ingested_at``, formatted once. The pair
    is replaced in one assignment, so threads sharing the converter never mix two values."""
    memo: list[tuple[Any, Any]] = [(object(), None)]

    def convert(value: Any) -> Any:
        seen, out = memo[0]
        if value is not seen:
            out = proc(value)
            memo[0] = (value, out)
        return out

    return convert


_SQLITE_DIALECT = sqlite.dialect()


@cache
def _sqlite_bind_plan(table: Table) -> tuple[Callable[[Mapping[str, Any]], tuple[Any, ...]],
                                            list[tuple[int, Callable[[Any], Any]]], tuple[str, ...]]:
    """How a row of ``table`` becomes the values SQLite binds: each column's own bind processor
    (UtcDateTime's text, SQLAlchemy's boolean), JSON as orjson's text, looked up once."""
    names = tuple(c.name for c in table.columns)
    converters = []
    for i, column in enumerate(table.columns):
        if isinstance(column.type, JSON) or isinstance(getattr(column.type, "impl", None), JSON):
            converters.append((i, _json_text))  # what SQLAlchemy's JSON type does, minus its wrapper
            continue
        proc = column.type.bind_processor(_SQLITE_DIALECT)
        if proc is not None:
            converters.append((i, _last_value_memo(proc) if isinstance(column.type, UtcDateTime) else proc))
    return itemgetter(*names), converters, names


def sqlite_values(table: Table, rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """Each row (a mapping of column names; absent ones are NULL) as the list of values SQLite
    binds for ``table``, in column order. Needs no engine, so a worker process can do this part
    of an insert (see :meth:`Store.insert_sqlite_values`). SQLAlchemy's generic executemany spends
    ~8 µs a row building parameter dicts; this is the same conversion without them."""
    getter, converters, names = _sqlite_bind_plan(table)
    out = []
    for row in rows:
        try:
            values = list(getter(row))
        except KeyError:  # a partial row
            values = [row.get(name) for name in names]
        for i, proc in converters:
            if values[i] is not None:
                values[i] = proc(values[i])
        out.append(values)
    return out


# The events columns in table order, as sqlite_event_row writes them (checked below).
_EVENT_COLUMNS = ("id", "ts", "feature", "env", "session_id", "user_id", "provider", "model", "prompt_version",
                  "input", "context", "output", "tool_calls", "tokens_in", "tokens_out", "cost_usd", "cost_source",
                  "latency_ms", "escalated", "confidence", "retry", "feedback", "score", "error", "untrusted",
                  "tags", "ingested_at", "findings")
if tuple(c.name for c in events.columns) != _EVENT_COLUMNS:  # pragma: no cover - a schema change
    raise RuntimeError("the events table changed: update store._EVENT_COLUMNS and sqlite_event_row")


@cache
def _event_converters() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    conv = dict(_sqlite_bind_plan(events)[1])
    return conv[_EVENT_COLUMNS.index("ts")], conv[_EVENT_COLUMNS.index("escalated")]


def sqlite_event_row(event: Any, cost_usd: float | None, cost_source: str, findings: Any) -> list[Any]:
    """The values SQLite binds for one ``events`` row, read straight from a validated event (the
    telemetry model's struct, or anything with its attributes) and its resolved cost and findings:
    ``sqlite_values`` of its row mapping, without building the mapping. Nested values are encoded
    by msgspec (the same JSON as orjson's encoding of their plain form). ``ingested_at`` is left
    None for the commit to stamp."""
    e = event
    ts = e.ts
    # The model's events are always in UTC: then UtcDateTime's text, without its two calls.
    ts = ts.isoformat(" ", "microseconds")[:26] if ts.tzinfo is UTC else _event_converters()[0](ts)
    escalated = e.escalated
    if escalated is not None:  # SQLAlchemy's Boolean for SQLite: 1 or 0 (and a TypeError if not a bool)
        escalated = 1 if escalated is True else 0 if escalated is False else _event_converters()[1](escalated)
    encode = _json_encode
    return [e.id, ts, e.feature, e.env, e.session_id, e.user_id, e.provider, e.model, e.prompt_version,
            e.input, None if e.context is None else encode(e.context).decode(), e.output,
            None if e.tool_calls is None else encode(e.tool_calls).decode(), e.tokens_in, e.tokens_out,
            cost_usd, cost_source, e.latency_ms, escalated, e.confidence, e.retry, e.feedback, e.score, e.error,
            None if e.untrusted is None else encode(e.untrusted).decode(),
            None if e.tags is None else encode(e.tags).decode(), None,
            None if findings is None else orjson.dumps(findings).decode()]


_json_encode = msgspec.json.encode


def sqlite_column_index(table: Table, name: str) -> int:
    return _sqlite_bind_plan(table)[2].index(name)


def sqlite_bind(table: Table, name: str, value: Any) -> Any:
    """One value of column ``name`` as SQLite binds it."""
    index = sqlite_column_index(table, name)
    for i, proc in _sqlite_bind_plan(table)[1]:
        if i == index and value is not None:
            return proc(value)
    return value


class Store(IncidentQueries, DiagnosisQueries, FlagQueries, PostmortemQueries, EvalQueries, AuthQueries,
            InsightQueries):
    """A hotwash database. Thread-safe; each unit of work takes its own connection.

    Telemetry and detection queries are here; the workflow's live in the mixins
    (``store/incidents.py``, ``diagnosis.py``, ``flags.py``, ``postmortems.py``, ``evals.py``, ``auth.py``).
    """

    # -- schema -----------------------------------------------------------------------------
    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (default: the newest)."""
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)

    def downgrade(self, revision: str) -> None:
        from alembic import command

        with self.engine.begin() as conn:
            command.downgrade(_alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """The schema revision stored in ``alembic_version`` (what alembic reads), None before any."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
        if len(versions) > 1:  # hotwash's migrations never branch
            raise StoreError(f"the store has several schema revisions {versions}: it was not migrated by hotwash")
        return versions[0] if versions else None

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            return ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()

    def check_ready(self) -> None:
        """Raise a StoreError that says what to do unless the schema is at head."""
        url = self.engine.url.render_as_string(hide_password=True)
        try:
            current, head = self.current_revision(), SCHEMA_HEAD
        except OperationalError as exc:
            raise StoreError(f"cannot reach the store at {url}: {exc.orig}") from exc
        if current != head:
            raise StoreError(
                f"the store at {url} is at schema revision {current or 'none'}, hotwash needs {head}: "
                "run `hotwash init` (it migrates and never overwrites your data)"
            )

    def dispose(self) -> None:
        self.engine.dispose()

    # -- units of work (transaction() is StoreBase's) ------------------------------------
    def insert_events(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert ``rows``, skipping ids already stored. Returns the ids actually inserted."""
        return self._insert_new(conn, events, rows)

    def insert_changes(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        return self._insert_new(conn, changes, rows)

    def _insert_new(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        # ON CONFLICT DO NOTHING ... RETURNING reports exactly the rows this statement inserted,
        # even when another writer races us with the same ids (PostgreSQL, several servers).
        if not rows:
            return set()
        if self.dialect == "sqlite":
            return self._sqlite_insert_new(conn, table, rows)
        # PostgreSQL: one INSERT ... SELECT FROM unnest(<one array per column>) for the whole batch.
        # SQLAlchemy's insertmanyvalues sends pages of ~28,000 named placeholders that psycopg parses
        # anew each time (half of the ingest time); here the statement is fixed, so psycopg and the
        # server prepare it once per connection, and each column travels as one array parameter.
        # The values are exactly what SQLAlchemy would send: each column's own bind processor
        # (UtcDateTime; JSON serialised by the engine's orjson encoder, None as JSON null).
        sql, plan = self._pg_unnest_plan(table)
        params = []
        for name, proc, coerce in plan:
            values = [row.get(name) for row in rows]
            if proc is not None:
                values = [proc(v) for v in values]
            elif coerce is not None:
                # psycopg sends a list as one typed array: mixed int/float values must agree first
                values = [None if v is None else coerce(v) for v in values]
            params.append(values)
        return {r[0] for r in conn.exec_driver_sql(sql, tuple(params))}

    @cache  # noqa: B019 - per table, for the engine's life
    def _pg_unnest_plan(self, table: Table) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None,
                                                                         Callable[[Any], Any] | None]]]:
        dialect = self.engine.dialect
        quote = dialect.identifier_preparer.quote
        plan: list[tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None]] = []
        arrays = []
        for column in table.columns:
            impl = column.type.dialect_impl(dialect)  # the PostgreSQL variant (JSONB), as SQLAlchemy uses it
            sql_type = column.type.compile(dialect=dialect)
            proc = impl.bind_processor(dialect)
            python_type = getattr(column.type, "python_type", None) if proc is None else None
            coerce = python_type if python_type in (int, float) else None
            plan.append((column.name, proc, coerce))
            arrays.append(f"%b::{sql_type}[]")  # binary: psycopg's text arrays escape each value with a regex
        cols = ", ".join(quote(c.name) for c in table.columns)
        # Only our own table and column names, types and placeholders: no value is formatted in.
        sql = (f"INSERT INTO {quote(table.name)} ({cols}) SELECT * FROM unnest({', '.join(arrays)}) "  # noqa: S608
               f"ON CONFLICT ({quote('id')}) DO NOTHING RETURNING {quote('id')}")
        return sql, plan

    def _sqlite_insert_new(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        # The ingest hot path: rows become flat tuples for multi-row INSERTs (see sqlite_values).
        return self._insert_sqlite_values(conn, table, sqlite_values(table, rows))

    def insert_sqlite_values(self, conn: Connection, values: Sequence[Sequence[Any]]) -> set[str]:
        """``insert_events`` for rows already converted by :func:`sqlite_values` (SQLite only:
        bulk ingest converts them in its worker processes). Returns the ids actually inserted."""
        if self.dialect != "sqlite":
            raise StoreError(f"rows bound for SQLite cannot be inserted into {self.dialect}")
        return self._insert_sqlite_values(conn, events, values) if values else set()

    def _insert_sqlite_values(self, conn: Connection, table: Table, values: Sequence[Sequence[Any]]) -> set[str]:
        # Usually every row is new. Then one executemany of a one-row INSERT ... ON CONFLICT DO
        # NOTHING is the cheapest insert (what the raw limit runs; 500-row INSERTs with RETURNING
        # cost ~30 % more CPU per row), and its row count proves that all of them went in: no
        # other writer can insert between our statements, as SQLite has one writer at a time.
        # Otherwise the savepoint undoes it and the multi-row INSERT ... RETURNING says which ids
        # were new.
        if not values:
            return set()
        if not conn.connection.driver_connection.in_transaction:
            # SAVEPOINT outside a transaction would start one that RELEASE commits: begin first,
            # as the driver does before its first INSERT (a deferred BEGIN, the same transaction).
            conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SAVEPOINT hotwash_insert")  # an error rolls the whole transaction back
        count = conn.exec_driver_sql(self._one_row_insert_sql(table), list(map(tuple, values))).rowcount
        if count == len(values):
            conn.exec_driver_sql("RELEASE hotwash_insert")
            at = sqlite_column_index(table, "id")
            return {v[at] for v in values}
        conn.exec_driver_sql("ROLLBACK TO hotwash_insert")
        conn.exec_driver_sql("RELEASE hotwash_insert")
        return self._insert_sqlite_returning(conn, table, values)

    @cache  # noqa: B019
    def _one_row_insert_sql(self, table: Table) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        cols = ", ".join(quote(c.name) for c in table.columns)
        # Only our own table and column names and placeholders: no value is ever formatted in.
        return (f"INSERT INTO {quote(table.name)} ({cols}) VALUES ({', '.join('?' * len(table.columns))}) "  # noqa: S608
                f"ON CONFLICT ({quote('id')}) DO NOTHING")

    def _insert_sqlite_returning(self, conn: Connection, table: Table, values: Sequence[Sequence[Any]]) -> set[str]:
        """Insert ``values`` with multi-row INSERTs ... RETURNING: the ids actually inserted."""
        inserted: set[str] = set()
        chain = itertools.chain.from_iterable
        for start in range(0, len(values), _SQLITE_ROWS_PER_INSERT):
            chunk = values[start : start + _SQLITE_ROWS_PER_INSERT]
            sql = self._multi_insert_sql(table, len(chunk))
            inserted.update(r[0] for r in conn.exec_driver_sql(sql, tuple(chain(chunk))))
        return inserted

    @cache  # noqa: B019
    def _multi_insert_sql(self, table: Table, n_rows: int) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        cols = ", ".join(quote(c.name) for c in table.columns)
        one = "(" + ", ".join("?" * len(table.columns)) + ")"
        # Only our own table and column names and placeholders: no value is ever formatted in.
        return (
            f"INSERT INTO {quote(table.name)} ({cols}) VALUES {', '.join([one] * n_rows)} "  # noqa: S608
            f"ON CONFLICT ({quote('id')}) DO NOTHING RETURNING {quote('id')}"
        )

    def add_rollups(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add each row's counters to the (feature, minute) rollup, creating it if needed."""
        if rows:
            conn.execute(self._rollup_upsert(), list(rows))

    # The ingest statements are built once: building the expression (not compiling it, which
    # SQLAlchemy caches) was most of a small commit's cost on the OTLP path.
    @cache  # noqa: B019 - one per Store, for the engine's life
    def _rollup_upsert(self) -> Any:
        stmt = self._insert(rollups)
        return stmt.on_conflict_do_update(
            index_elements=["feature", "minute"],
            set_={name: getattr(rollups.c, name) + getattr(stmt.excluded, name) for name in ROLLUP_COUNTERS},
        )

    def recount_sessions(self, conn: Connection, keys: Sequence[tuple[str, datetime]]) -> None:
        """Recompute ``sessions`` and ``max_session_calls`` of each (feature, minute) from ``events``."""
        if not keys:
            return
        conn.execute(
            self._recount_statement(),
            [{"k_feature": f, "k_minute": m, "k_next": m + timedelta(minutes=1)} for f, m in keys],
        )

    @cache  # noqa: B019
    def _recount_statement(self) -> Any:
        # One pass over the minute's events (the two correlated subqueries this replaced read them
        # twice): their calls per session. The number of those groups is the count of distinct
        # non-NULL sessions, the largest the busiest session's calls. UPDATE ... FROM reads the same
        # on SQLite (3.33+) and PostgreSQL; written out because SQLAlchemy's FROM linter would
        # warn about the uncorrelated subquery.
        return text(
            "UPDATE rollups SET sessions = s.sessions, max_session_calls = s.busiest "
            "FROM (SELECT count(*) AS sessions, coalesce(max(calls), 0) AS busiest "
            "FROM (SELECT count(*) AS calls FROM events WHERE feature = :k_feature AND ts >= :k_minute "
            "AND ts < :k_next AND session_id IS NOT NULL GROUP BY session_id) AS per_session) AS s "
            "WHERE rollups.feature = :k_feature AND rollups.minute = :k_minute"
        ).bindparams(
            bindparam("k_feature", type_=String()),
            bindparam("k_minute", type_=UtcDateTime()),
            bindparam("k_next", type_=UtcDateTime()),
        )

    def add_behaviours(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Record first sightings of (feature, kind, name); returns the rows that were new."""
        if not rows:
            return []
        stmt = (
            self._insert(behaviours)
            .on_conflict_do_nothing()
            .returning(behaviours.c.feature, behaviours.c.first_seen)
        )
        return [dict(r) for r in conn.execute(stmt, list(rows)).mappings()]

    # -- reads ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            per_feature = dict(
                conn.execute(
                    select(events.c.feature, func.count()).group_by(events.c.feature).order_by(events.c.feature)
                ).all()
            )
            n_changes = conn.execute(select(func.count()).select_from(changes)).scalar_one()
            n_signals = conn.execute(select(func.count()).select_from(signals)).scalar_one()
        return {
            "events": sum(per_feature.values()),
            "changes": n_changes,
            "features": per_feature,
            "signals": n_signals,
        }

    def get_events(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(ids)
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).where(events.c.id.in_(ids))).mappings()
            return {r["id"]: dict(r) for r in rows}

    def iter_events(
        self, *, feature: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        query = select(events).order_by(events.c.ts, events.c.id)
        if feature is not None:
            query = query.where(events.c.feature == feature)
        if since is not None:
            query = query.where(events.c.ts >= since)
        if until is not None:
            query = query.where(events.c.ts < until)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query).mappings():
                yield dict(row)

    def list_changes(self, *, feature: str | None = None) -> list[dict[str, Any]]:
        query = select(changes).order_by(changes.c.ts, changes.c.id)
        if feature is not None:
            query = query.where(changes.c.feature == feature)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def features(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(rollups.c.feature).distinct().order_by(rollups.c.feature)).scalars())

    def data_range(self) -> tuple[datetime | None, datetime | None]:
        """First and last minute that has rollups."""
        with self.engine.connect() as conn:
            lo, hi = conn.execute(select(func.min(rollups.c.minute), func.max(rollups.c.minute))).one()
        return lo, hi

    def rollups_between(self, start: datetime, end: datetime, *, feature: str | None = None
                        ) -> list[dict[str, Any]]:
        """Rollup rows with ``start <= minute < end``, by feature then minute."""
        query = (select(rollups).where(rollups.c.minute >= start, rollups.c.minute < end)
                 .order_by(rollups.c.feature, rollups.c.minute))
        if feature is not None:
            query = query.where(rollups.c.feature == feature)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _minute_offset(self, start: datetime) -> Any:
        """Minutes from ``start`` to each rollup's minute, computed by the database (no timestamp is
        parsed in Python)."""
        t0 = bindparam("t0", start, type_=UtcDateTime())
        if self.dialect == "sqlite":
            return func.cast(func.round((func.julianday(type_coerce(rollups.c.minute, String))
                                         - func.julianday(t0)) * 1440), Integer)
        return func.cast(func.round(func.extract("epoch", rollups.c.minute - t0) / 60), Integer)

    def _rollup_offsets_query(self, feature: str, start: datetime, end: datetime, columns: Sequence[Any]) -> Any:
        """``SELECT`` the minute offsets from ``start`` and ``columns`` (names or expressions) of
        ``feature``'s rollups over [start, end), by minute."""
        cols = [getattr(rollups.c, c) if isinstance(c, str) else c for c in columns]
        return (select(self._minute_offset(start), *cols)
                .where(rollups.c.feature == feature, rollups.c.minute >= start, rollups.c.minute < end)
                .order_by(rollups.c.minute))

    def rollup_matrix(self, feature: str, start: datetime, end: datetime, columns: Sequence[str]
                      ) -> tuple[list[int], list[tuple[float, ...]]]:
        """Minutes since ``start`` and the named rollup columns as plain tuples."""
        with self.engine.connect() as conn:
            rows = conn.execute(self._rollup_offsets_query(feature, start, end, columns)).cursor.fetchall()
        return [r[0] for r in rows], [r[1:] for r in rows]

    def rollup_arrays(self, feature: str, start: datetime, end: datetime, columns: Sequence[str]) -> tuple[Any, Any]:
        """The fast read for monitor series: minutes since ``start`` (int64) and a C-contiguous float
        matrix with one row per named column and one column per stored minute. The DB-API cursor's
        rows stream straight into numpy (no SQLAlchemy rows, no list of tuples); values are exact."""
        import numpy as np

        unknown = [c for c in columns if c not in rollups.c]
        if unknown:
            raise KeyError(f"not rollup columns: {unknown}")
        if self.dialect == "sqlite":
            packed = self._sqlite_packed_arrays(feature, start, end, columns)
            if packed is not None:
                return packed
        m = self._flat_rows(self._rollup_offsets_query(feature, start, end, columns), 1 + len(columns))
        return m[:, 0].astype(np.int64), np.ascontiguousarray(m[:, 1:].T)

    def _flat_rows(self, query: Any, width: int) -> Any:
        import numpy as np

        with self.engine.connect() as conn:
            cursor = conn.execute(query).cursor
            flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=float)
        return flat.reshape(-1, width)

    def _sqlite_packed_arrays(self, feature: str, start: datetime, end: datetime, columns: Sequence[str]
                              ) -> tuple[Any, Any] | None:
        """``rollup_arrays`` on SQLite with the minute offset and the event counters read two to a
        value, ``a * 2**26 + b`` (exact in a double): CPython 3.11's sqlite3 module releases and takes
        back the GIL for every value it reads, which is most of the cost of a read. None (read them
        plainly) if a value does not fit, which a count of one minute's events never comes near."""
        import numpy as np

        small = [c for c in columns if type(rollups.c[c].type) is Integer]  # not BigInteger, not Float
        ints = [self._minute_offset(start), *(rollups.c[c] for c in small)]
        pairs = [(ints[i], ints[i + 1]) for i in range(0, len(ints) - 1, 2)]
        single = ints[len(pairs) * 2:]
        rest = [c for c in columns if c not in small]
        limit = _PACK - 1
        packed = [a * _PACK + b for a, b in pairs]
        if packed:  # one check per row that every packed value fits (the first pair becomes -1 if not)
            # the bitwise or of them all lies in [0, 2**26) exactly when each of them does
            bits = ints[0]
            for e in ints[1:]:
                bits = bits.op("|")(e)
            fits = bits.between(0, limit)
            packed[0] = case((fits, packed[0]), else_=-1)
        query = (select(*packed, *single, *(rollups.c[c] for c in rest))
                 .where(rollups.c.feature == feature, rollups.c.minute >= start, rollups.c.minute < end)
                 .order_by(rollups.c.minute))
        m = self._flat_rows(query, len(packed) + len(single) + len(rest))
        p = m[:, :len(packed)]
        if (p < 0).any():
            return None
        whole = p.astype(np.int64)
        values = np.empty((len(ints), len(m)))
        values[0:2 * len(pairs):2] = (whole >> _PACK_BITS).T
        values[1:2 * len(pairs):2] = (whole & limit).T
        if single:
            values[-1] = m[:, len(packed)]
        row = {name: values[1 + i] for i, name in enumerate(small)}
        row.update({name: m[:, len(packed) + len(single) + i] for i, name in enumerate(rest)})
        out = np.empty((len(columns), len(m)))
        for i, name in enumerate(columns):
            out[i] = row[name]
        return values[0].astype(np.int64), out

    @property
    def parallel_reads(self) -> bool:
        """Whether reads on several threads see the same database (not so for in-memory SQLite,
        which has one database per thread's connection)."""
        return not isinstance(self.engine.pool, SingletonThreadPool | StaticPool)

    def _has_finding(self, category: str) -> Any:
        # JSON containment is dialect-specific; this is the one place that knows both spellings.
        if self.dialect == "postgresql":
            return type_coerce(events.c.findings, postgresql.JSONB).contains([{"category": category}])
        each = func.json_each(events.c.findings).table_valued("value").alias("f")
        return (select(literal(1)).select_from(each)
                .where(func.json_extract(each.c.value, "$.category") == category).exists())

    def evidence_ids(self, feature: str, start: datetime, end: datetime, *, kind: str,
                     category: str | None = None, limit: int = 20) -> list[str]:
        """Ids of the events that show a signal, deterministically ordered."""
        window = (events.c.feature == feature, events.c.ts >= start, events.c.ts < end)
        query = select(events.c.id).where(*window)
        order: list[Any] = [events.c.ts, events.c.id]
        if kind == "finding" and category:
            query = query.where(self._has_finding(category))
        elif kind == "escalated":
            query = query.where(events.c.escalated.is_(True))
        elif kind == "retry":
            query = query.where(events.c.retry > 0)
        elif kind == "nonprod":
            query = query.where(events.c.env.is_not(None), events.c.env.not_in(sorted(PRODUCTION_ENV_NAMES)))
        elif kind == "top_cost":
            order = [events.c.cost_usd.desc().nulls_last(), events.c.ts, events.c.id]
        elif kind == "busiest_session":
            busiest = (select(events.c.session_id).where(*window, events.c.session_id.is_not(None))
                       .group_by(events.c.session_id).order_by(func.count().desc(), events.c.session_id)
                       .limit(1).scalar_subquery())
            query = query.where(events.c.session_id == busiest)
        elif kind == "low_quality":
            order = [events.c.score.asc().nulls_last(), events.c.ts, events.c.id]
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(*order).limit(limit)).scalars())

    def version_mix(self, feature: str, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
        """How many calls each model and prompt version served in the window."""
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for col in (events.c.model, events.c.prompt_version):
                rows = conn.execute(select(col, func.count()).where(
                    events.c.feature == feature, events.c.ts >= start, events.c.ts < end).group_by(col))
                out[col.name] = {str(k): n for k, n in rows}
        return out

    def input_profile(self, feature: str, start: datetime, end: datetime) -> dict[str, float]:
        """Calls, mean input tokens and mean input length in the window: the input distribution."""
        query = select(func.count(), func.avg(events.c.tokens_in), func.avg(func.length(events.c.input))).where(
            events.c.feature == feature, events.c.ts >= start, events.c.ts < end)
        with self.engine.connect() as conn:
            n, tokens, chars = conn.execute(query).one()
        return {"calls": int(n), "mean_tokens_in": float(tokens or 0), "mean_input_chars": float(chars or 0)}

    def changes_between(self, feature: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        query = (select(changes).where(changes.c.feature == feature, changes.c.ts >= start, changes.c.ts < end)
                 .order_by(changes.c.ts, changes.c.id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def last_change(self, feature: str, kind: str, before: datetime) -> dict[str, Any] | None:
        query = (select(changes).where(changes.c.feature == feature, changes.c.kind == kind, changes.c.ts < before)
                 .order_by(changes.c.ts.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def save_signals(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Store signals; one per (monitor, feature, start). Returns the ids of the new ones."""
        if not rows:
            return []
        stmt = self._insert(signals).on_conflict_do_nothing(
            index_elements=["monitor", "feature", "start"]).returning(signals.c.id)
        with self.transaction() as conn:
            return list(conn.execute(stmt, list(rows)).scalars())

    def list_signals(self, *, feature: str | None = None) -> list[dict[str, Any]]:
        query = select(signals).order_by(signals.c.detected_at, signals.c.id)
        if feature is not None:
            query = query.where(signals.c.feature == feature)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def rollup_rows(self, *, feature: str | None = None) -> list[dict[str, Any]]:
        query = select(rollups).order_by(rollups.c.feature, rollups.c.minute)
        if feature is not None:
            query = query.where(rollups.c.feature == feature)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- notification deliveries ------------------------------------------------------------
    def signal_ids(self, keys: Iterable[tuple[str, str, datetime]]) -> dict[tuple[str, str, datetime], int]:
        """The stored id of each signal named by its (monitor, feature, start) key."""
        # Aware datetimes hash and compare by instant, whatever their offset.
        wanted = set(keys)
        if not wanted:
            return {}
        query = select(signals.c.id, signals.c.monitor, signals.c.feature, signals.c.start).where(
            signals.c.feature.in_(sorted({k[1] for k in wanted})),
            signals.c.start.in_(sorted({k[2] for k in wanted})))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {(m, f, s): i for i, m, f, s in rows if (m, f, s) in wanted}

    def record_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store the outcome of delivering signals to a channel; one row per (signal_id, channel),
        a later outcome replacing an earlier one."""
        from hotwash.store.tables import deliveries

        if not rows:
            return
        stmt = self._insert(deliveries)
        stmt = stmt.on_conflict_do_update(
            index_elements=["signal_id", "channel"],
            set_={name: getattr(stmt.excluded, name) for name in ("status", "attempts", "last_error", "updated_at")},
        )
        with self.transaction() as conn:
            conn.execute(stmt, list(rows))

    def list_deliveries(self, *, signal_id: int | None = None, channel: str | None = None,
                        status: str | None = None) -> list[dict[str, Any]]:
        from hotwash.store.tables import deliveries

        query = select(deliveries).order_by(deliveries.c.signal_id, deliveries.c.channel)
        for column, value in ((deliveries.c.signal_id, signal_id), (deliveries.c.channel, channel),
                              (deliveries.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count_failed_deliveries(self, *, channel: str | None = None) -> int:
        """Deliveries that did not get through: failed after retries, or dropped."""
        from hotwash.store.tables import deliveries

        query = select(func.count()).select_from(deliveries).where(deliveries.c.status.in_(["failed", "dropped"]))
        if channel is not None:
            query = query.where(deliveries.c.channel == channel)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def open_store(url: str, *, migrate: bool = False) -> Store:
    """Open the store at ``url``; with ``migrate`` bring its schema up to date first."""
    try:
        store = Store(make_engine(url))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store at {url!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"the driver for {url!r} is not installed ({exc.name})") from exc
    if migrate:
        try:
            store.migrate()
        except OperationalError as exc:
            raise StoreError(f"cannot migrate the store: {exc.orig}") from exc
    return store


_ = metadata  # re-exported for migrations' autogenerate comparisons in tests
