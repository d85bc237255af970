"""The batched writer: validated records in, durable rows and exact rollups out.

Writing a batch takes two steps. :func:`prepare` does everything that needs no database: the
duplicate ids within the batch, the ``events`` rows with their cost priced, the per-event checks,
and the per-minute rollup sums. :meth:`EventWriter.commit` is one transaction. Ids already stored
are skipped by the database itself (``ON CONFLICT DO NOTHING ... RETURNING id``), and only the rows
it reports as inserted feed the per-minute rollups, so a re-sent file or a retried HTTP request
changes nothing, even when two writers race on PostgreSQL. Bulk ingest runs :func:`prepare` in
worker processes (:mod:`hotwash.detect.pool`) while this process commits the batch before;
:meth:`EventWriter.write` does both steps in the calling thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import orjson

from hotwash.detect.checks import EventChecker, EventVerdict
from hotwash.detect.findings import Finding
from hotwash.store import (
    PRODUCTION_ENV_NAMES,
    ROLLUP_COUNTERS,
    Store,
    sqlite_bind,
    sqlite_column_index,
    sqlite_event_row,
)
from hotwash.store.tables import CONFIDENCE_BINS
from hotwash.store.tables import events as events_table
from hotwash.telemetry.model import ChangeEvent, Event, Record
from hotwash.telemetry.pricing import price

PRODUCTION_ENVS = frozenset({None, *PRODUCTION_ENV_NAMES})
# The columns of an event row that the store keeps as JSON.
EVENT_JSON_COLUMNS = ("context", "tool_calls", "untrusted", "tags", "findings")


@dataclass(slots=True)
class WriteResult:
    accepted: int = 0
    duplicates: int = 0
    unpriced: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.unpriced += other.unpriced
        return self


@dataclass(slots=True)
class Prepared:
    """A batch ready to commit, computed without the database (so a worker process can do it).

    Rows carry no ``ingested_at`` yet: :meth:`EventWriter.commit` stamps it. ``contributions``
    are the rollup sums of *every* event row, right when all of them turn out to be new (the
    usual case); otherwise commit recomputes them from the inserted rows and ``counters``.
    """

    event_rows: list[dict[str, Any]] = field(default_factory=list)
    change_rows: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # event id -> check counters
    first_seen: list[dict[str, Any]] = field(default_factory=list)  # earliest sighting per (feature, kind, name)
    contributions: list[dict[str, Any]] = field(default_factory=list)  # per (feature, minute)
    duplicates: int = 0  # ids repeated within the batch (the first one is kept)
    unpriced: int = 0  # event rows whose model the price data does not know
    # event_rows hold the values SQLite binds (lists in column order, see store.sqlite_values)
    # rather than mappings: a worker did that conversion, so the committing process does not
    sqlite_bound: bool = False

    def to_wire(self) -> tuple[Any, ...]:
        """Plain values for msgpack (datetimes travel as msgpack timestamps, exactly).

        The events' JSON columns travel as the JSON text the store will write (orjson's, which the
        store uses too): the receiver then neither rebuilds nor re-encodes their nested values.
        Rows bound for SQLite (``prepare(..., sqlite=True)``) travel as they are. The rows are
        changed in place, so the batch is used up.
        """
        if not self.sqlite_bound:
            dumps = orjson.dumps
            for row in self.event_rows:
                for name in EVENT_JSON_COLUMNS:
                    if (value := row[name]) is not None:
                        row[name] = dumps(value)
        return (self.event_rows, self.change_rows, self.counters, self.first_seen, self.contributions,
                self.duplicates, self.unpriced, self.sqlite_bound)

    @classmethod
    def from_wire(cls, wire: Sequence[Any]) -> Prepared:
        """The batch :meth:`to_wire` sent. Its JSON columns hold ``orjson.Fragment`` values: JSON
        text that the store's encoder (orjson) writes as it is."""
        if not wire[7]:
            fragment = orjson.Fragment
            for row in wire[0]:
                for name in EVENT_JSON_COLUMNS:
                    if (value := row[name]) is not None:
                        row[name] = fragment(value)
        return cls(*wire)

    def rollup_fields(self) -> list[tuple[Any, ...]]:
        """``ROLLUP_FIELDS`` of each event row (``ts`` a datetime), whichever form the rows are in."""
        if not self.sqlite_bound:
            return [rollup_fields(row) for row in self.event_rows]
        at = itemgetter(*(sqlite_column_index(events_table, name) for name in ROLLUP_FIELDS))
        ts = ROLLUP_FIELDS.index("ts")
        out = []
        for values in self.event_rows:
            f = list(at(values))
            f[ts] = datetime.fromisoformat(f[ts]).replace(tzinfo=UTC)
            out.append(tuple(f))
        return out

    def latest_ts(self) -> datetime | None:
        """The time of the batch's latest event."""
        if not self.event_rows:
            return None
        if self.sqlite_bound:
            i = sqlite_column_index(events_table, "ts")
            return datetime.fromisoformat(max(v[i] for v in self.event_rows)).replace(tzinfo=UTC)
        return max(row["ts"] for row in self.event_rows)


def event_cost(event: Event) -> tuple[float | None, str]:
    """The event's cost in USD and where it came from: reported by the client, priced from its
    model and tokens, unpriced (a model the price data does not know), or none (nothing to price)."""
    if event.cost_usd is not None:
        return event.cost_usd, "reported"
    if not event.model or (event.tokens_in is None and event.tokens_out is None):
        return None, "none"  # no usage reported: nothing to price
    cost = price(event.provider, event.model, event.tokens_in, event.tokens_out, event.ts)
    return cost, "priced" if cost is not None else "unpriced"


def _event_mapping(event: Event, cost: float | None, source: str, findings: Any) -> dict[str, Any]:
    """The ``events`` row of one event as a mapping, nested values as plain ones (``ingested_at``
    is set at commit)."""
    row = msgspec.structs.asdict(event)
    row["cost_usd"], row["cost_source"] = cost, source
    if event.context is not None:
        row["context"] = msgspec.to_builtins(event.context)
    if event.tool_calls is not None:
        row["tool_calls"] = msgspec.to_builtins(event.tool_calls)
    row["findings"] = findings
    return row


def change_row(change: ChangeEvent) -> dict[str, Any]:
    return {
        "id": change.id,
        "ts": change.ts,
        "feature": change.feature,
        "kind": change.kind,
        "version": change.version,
        "previous": change.previous,
        "description": change.description,
        "link": change.link,
        "actor": change.actor,
        "tags": change.tags,
    }


def minute_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))
_finding_values = attrgetter(*_FINDING_FIELDS)


def findings_json(verdict: EventVerdict) -> list[dict[str, Any]] | None:
    """``verdict.findings_json()`` (``dataclasses.asdict`` of each finding) at a fifth of the cost."""
    if not verdict.findings:
        return None
    out = []
    for f in verdict.findings:
        d = dict(zip(_FINDING_FIELDS, _finding_values(f), strict=True))
        d["evidence"] = list(d["evidence"])  # asdict copies the list; so do we
        out.append(d)
    return out


_CONF_NAMES = tuple((f"conf_n_{b}", f"conf_sum_{b}", f"conf_ok_{b}") for b in range(CONFIDENCE_BINS))
_MINUTE = timedelta(minutes=1)


# What the rollups read of an event row, in the order _rollup_contributions unpacks it.
ROLLUP_FIELDS = ("id", "ts", "feature", "tokens_in", "tokens_out", "cost_usd", "cost_source", "escalated",
                 "error", "retry", "env", "score", "feedback", "confidence", "latency_ms", "output")
rollup_fields = itemgetter(*ROLLUP_FIELDS)  # of a row mapping
_COST_SOURCE = ROLLUP_FIELDS.index("cost_source")


def _rollup_contributions(
    rows: Iterable[tuple[Any, ...]], counters: Mapping[str, Mapping[str, int]]
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """Each (feature, minute)'s sums over ``rows`` (``ROLLUP_FIELDS`` of each event row, ``ts`` a
    datetime), plus the check counters of each row's event."""
    acc: dict[tuple[str, datetime], dict[str, Any]] = {}
    bins = CONFIDENCE_BINS
    prod = PRODUCTION_ENVS
    lo = hi = minute = None  # the minute of the previous row: rows mostly come in time order
    for (id_, ts, feature, tokens_in, tokens_out, cost, cost_source, escalated, error, retry, env, score, fb,
         conf, latency, output) in rows:
        if lo is None or not lo <= ts < hi:  # two comparisons cost a tenth of datetime.replace
            lo = minute = minute_of(ts)
            hi = lo + _MINUTE
        key = (feature, minute)
        a = acc.get(key)
        if a is None:
            a = acc[key] = dict.fromkeys(ROLLUP_COUNTERS, 0)
            a["feature"], a["minute"] = key
        a["events"] += 1
        if tokens_in:
            a["tokens_in"] += tokens_in
        if tokens_out:
            a["tokens_out"] += tokens_out
        if cost is not None:
            a["cost_usd"] += cost
        elif cost_source == "unpriced":
            a["unpriced"] += 1
        if escalated:
            a["escalations"] += 1
        if error:
            a["errors"] += 1
        if retry:
            a["retries"] += 1
        if env not in prod:
            a["nonprod"] += 1
        if score is not None:
            a["score_sum"] += score
            a["score_n"] += 1
        if fb is not None:
            a["feedback_sum"] += fb
            a["feedback_n"] += 1
        if conf is not None:
            a["confidence_sum"] += conf
            a["confidence_n"] += 1
            n_name, sum_name, ok_name = _CONF_NAMES[min(int(conf * bins), bins - 1)]
            a[n_name] += 1
            a[sum_name] += conf
            if not (escalated or (fb is not None and fb < 0)):
                a[ok_name] += 1
        if latency:
            a["latency_sum"] += latency
        if output:
            a["output_chars"] += len(output)
        extra = counters.get(id_)
        if extra:
            for name, n in extra.items():
                a[name] += n
    return acc


def prepare(records: Iterable[Record], checker: EventChecker | None = None, *, sqlite: bool = False) -> Prepared:
    """Everything about a batch that needs no database: pure, so any process can do it.

    ``sqlite``: the event rows come out as the values SQLite binds (``Prepared.sqlite_bound``),
    made straight from the events, for :meth:`EventWriter.commit` into a SQLite store.
    """
    p = Prepared(sqlite_bound=sqlite)
    event_ids: set[str] = set()
    change_ids: set[str] = set()
    events: list[Event] = []
    costs: list[tuple[float | None, str]] = []
    for rec in records:
        if isinstance(rec, ChangeEvent):
            if rec.id in change_ids:
                p.duplicates += 1
                continue
            change_ids.add(rec.id)
            p.change_rows.append(change_row(rec))
        else:
            if rec.id in event_ids:
                p.duplicates += 1
                continue
            event_ids.add(rec.id)
            events.append(rec)
            costs.append(event_cost(rec))
    findings: list[list[dict[str, Any]] | None] = [None] * len(events)
    if checker is not None and events:
        first_seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        counters = p.counters
        for i, (rec, verdict) in enumerate(zip(events, checker.check_many(events), strict=True)):
            if verdict.findings:
                findings[i] = findings_json(verdict)
            if verdict.counters:
                counters[rec.id] = verdict.counters
            for kind, name in verdict.behaviours:
                key = (rec.feature, kind, name)
                known = first_seen.get(key)
                if known is None or rec.ts < known["first_seen"]:
                    first_seen[key] = {"feature": rec.feature, "kind": kind, "name": name,
                                       "first_seen": rec.ts, "first_event": rec.id}
        p.first_seen = list(first_seen.values())
    if sqlite:
        p.event_rows = [sqlite_event_row(e, cost, source, f)
                        for e, (cost, source), f in zip(events, costs, findings, strict=True)]
    else:
        p.event_rows = [_event_mapping(e, cost, source, f)
                        for e, (cost, source), f in zip(events, costs, findings, strict=True)]
    fields = ((e.id, e.ts, e.feature, e.tokens_in, e.tokens_out, cost, source, e.escalated, e.error, e.retry, e.env,
               e.score, e.feedback, e.confidence, e.latency_ms, e.output)
              for e, (cost, source) in zip(events, costs, strict=True))
    p.contributions = list(_rollup_contributions(fields, p.counters).values())
    p.unpriced = sum(1 for _, source in costs if source == "unpriced")
    return p


class EventWriter:
    """Writes batches of validated records to the store, one transaction per batch.

    A lock serialises this process's writers: SQLite takes one writer at a time anyway, and
    queueing here is cheaper than retrying on a busy database.
    """

    def __init__(self, store: Store, checker: EventChecker | None = None) -> None:
        self.store = store
        self.checker = checker
        self._lock = threading.Lock()

    def write(self, records: Sequence[Record]) -> WriteResult:
        return self.commit(prepare(records, self.checker))

    def commit(self, p: Prepared) -> WriteResult:
        """Store a prepared batch in one transaction; returns what was new and what was not."""
        return self.commit_many([p])[0]

    def commit_many(self, batches: Sequence[Prepared]) -> list[WriteResult]:
        """Store several prepared batches in ONE transaction (a group commit: one fsync, and one
        rollup upsert and session recount per (feature, minute) for all of them together).

        Returns each batch's result as if the batches had been committed one after the other, in
        order: an id that an earlier batch of the group holds is a duplicate in the later one. If
        the transaction fails, nothing of any batch is stored; the caller may then commit the
        batches one by one to find the bad one (see :class:`hotwash.telemetry.group.GroupCommitter`).
        The batches' rows are stamped in place, so a batch may be committed again after a failure.
        """
        results = [WriteResult(duplicates=p.duplicates) for p in batches]
        todo = [i for i, p in enumerate(batches) if p.event_rows or p.change_rows]
        if not todo:
            return results
        now = datetime.now(UTC)
        stamp: Any = None
        at = 0
        # Rows of each form, with duplicates across the group left to the first batch that holds them.
        bound_rows: list[Any] = []
        mapping_rows: list[Any] = []
        change_rows: list[dict[str, Any]] = []
        kept: dict[int, list[str] | None] = {}  # batch -> ids of its event rows in the insert (None: all)
        kept_changes: dict[int, list[str]] = {}
        seen: set[str] = set()
        seen_changes: set[str] = set()
        for i in todo:
            p = batches[i]
            if p.sqlite_bound:
                if stamp is None:
                    at = sqlite_column_index(events_table, "ingested_at")
                    stamp = sqlite_bind(events_table, "ingested_at", now)
                for values in p.event_rows:
                    values[at] = stamp
                ids = [v[0] for v in p.event_rows]  # id is the first column
            else:
                for row in p.event_rows:
                    row["ingested_at"] = now
                ids = [row["id"] for row in p.event_rows]
            for row in p.change_rows:
                row["ingested_at"] = now
            out = bound_rows if p.sqlite_bound else mapping_rows
            if len(todo) == 1 or seen.isdisjoint(ids):
                out.extend(p.event_rows)
                kept[i] = None
            else:  # the same id in two requests of the group: the first one stores it
                keep = [eid not in seen for eid in ids]
                out.extend(row for row, k in zip(p.event_rows, keep, strict=True) if k)
                kept[i] = [eid for eid, k in zip(ids, keep, strict=True) if k]
            if len(todo) > 1:
                seen.update(ids)
            cids = [row["id"] for row in p.change_rows]
            kept_changes[i] = [c for c in cids if c not in seen_changes]
            change_rows.extend(row for row in p.change_rows if row["id"] not in seen_changes)
            seen_changes.update(cids)

        with self._lock, self.store.transaction() as conn:
            inserted: set[str] = set()
            if bound_rows:
                inserted |= self.store.insert_sqlite_values(conn, bound_rows)
            if mapping_rows:
                inserted |= self.store.insert_events(conn, mapping_rows)
            contributions: dict[tuple[str, datetime], dict[str, Any]] = {}
            fresh: dict[tuple[str, str, str], dict[str, Any]] = {}
            all_new = len(inserted) == len(bound_rows) + len(mapping_rows)
            for i in todo:
                p, r = batches[i], results[i]
                ids_kept = kept[i]
                mine: Any
                if len(todo) == 1:  # the only batch: what went in is its own
                    mine, n_new = inserted, len(inserted)
                elif ids_kept is None and all_new:  # all its rows went in (only its own ids are looked up in `mine`)
                    mine, n_new = inserted, len(p.event_rows)
                else:
                    mine = inserted.intersection(ids_kept if ids_kept is not None else
                                                 (v[0] for v in p.event_rows) if p.sqlite_bound else
                                                 (row["id"] for row in p.event_rows))
                    n_new = len(mine)
                if n_new == len(p.event_rows):  # all new: the prepared sums hold
                    part: Iterable[dict[str, Any]] = p.contributions
                    r.unpriced += p.unpriced
                else:
                    new_rows = [f for f in p.rollup_fields() if f[0] in mine]  # f[0]: the id
                    part = _rollup_contributions(new_rows, p.counters).values()
                    r.unpriced += sum(1 for f in new_rows if f[_COST_SOURCE] == "unpriced")
                _add_contributions(contributions, part)
                r.accepted += n_new
                r.duplicates += len(p.event_rows) - n_new
                if p.first_seen and n_new:
                    for b in p.first_seen:
                        if b["first_event"] in mine:
                            key = (b["feature"], b["kind"], b["name"])
                            known = fresh.get(key)
                            if known is None or b["first_seen"] < known["first_seen"]:
                                fresh[key] = b
            if fresh:
                for new in self.store.add_behaviours(conn, list(fresh.values())):
                    key = (new["feature"], minute_of(new["first_seen"]))
                    contributions[key]["new_behaviours"] += 1
            self.store.add_rollups(conn, list(contributions.values()))
            self.store.recount_sessions(conn, list(contributions))
            changes_inserted = self.store.insert_changes(conn, change_rows)

        for i in todo:
            p, r = batches[i], results[i]
            new_changes = sum(1 for c in kept_changes[i] if c in changes_inserted)
            r.accepted += new_changes
            r.duplicates += len(p.change_rows) - new_changes
        return results


def _add_contributions(acc: dict[tuple[str, datetime], dict[str, Any]], rows: Iterable[Mapping[str, Any]]) -> None:
    """Sum rollup contributions into ``acc`` by (feature, minute) (``acc`` gets copies, never ``rows``' dicts)."""
    for c in rows:
        key = (c["feature"], c["minute"])
        a = acc.get(key)
        if a is None:
            acc[key] = dict(c)
        else:
            for name in ROLLUP_COUNTERS:
                a[name] += c[name]
