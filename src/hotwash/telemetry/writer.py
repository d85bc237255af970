"""The batched writer: validated records in, durable rows and exact rollups out.

One call of :meth:`EventWriter.write` is one transaction. Ids already stored are skipped by the
database itself (``ON CONFLICT DO NOTHING ... RETURNING id``), and only the rows it reports as
inserted feed the per-minute rollups, so a re-sent file or a retried HTTP request changes nothing,
even when two writers race on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from hotwash.detect.checks import EventChecker
from hotwash.store import PRODUCTION_ENV_NAMES, ROLLUP_COUNTERS, Store
from hotwash.store.tables import CONFIDENCE_BINS
from hotwash.telemetry.model import ChangeEvent, Event, Record
from hotwash.telemetry.pricing import price

PRODUCTION_ENVS = frozenset({None, *PRODUCTION_ENV_NAMES})


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


def event_row(event: Event, *, now: datetime) -> dict[str, Any]:
    """The ``events`` row of one event, with its cost resolved."""
    row = msgspec.structs.asdict(event)
    if event.cost_usd is None:
        if not event.model or (event.tokens_in is None and event.tokens_out is None):
            row["cost_source"] = "none"  # no usage reported: nothing to price
        else:
            cost = price(event.provider, event.model, event.tokens_in, event.tokens_out, event.ts)
            row["cost_usd"] = cost
            row["cost_source"] = "priced" if cost is not None else "unpriced"
    else:
        row["cost_source"] = "reported"
    if event.context is not None:
        row["context"] = msgspec.to_builtins(event.context)
    if event.tool_calls is not None:
        row["tool_calls"] = msgspec.to_builtins(event.tool_calls)
    row["ingested_at"] = now
    row["findings"] = None
    return row


def change_row(change: ChangeEvent, *, now: datetime) -> dict[str, Any]:
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
        "ingested_at": now,
    }


def minute_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _rollup_contributions(
    rows: Iterable[dict[str, Any]], counters: dict[str, dict[str, int]]
) -> dict[tuple[str, datetime], dict[str, Any]]:
    acc: dict[tuple[str, datetime], dict[str, Any]] = {}
    for r in rows:
        key = (r["feature"], minute_of(r["ts"]))
        a = acc.get(key)
        if a is None:
            a = acc[key] = dict.fromkeys(ROLLUP_COUNTERS, 0)
            a["feature"], a["minute"] = key
        a["events"] += 1
        a["tokens_in"] += r["tokens_in"] or 0
        a["tokens_out"] += r["tokens_out"] or 0
        if r["cost_usd"] is not None:
            a["cost_usd"] += r["cost_usd"]
        elif r["cost_source"] == "unpriced":
            a["unpriced"] += 1
        a["escalations"] += 1 if r["escalated"] else 0
        a["errors"] += 1 if r["error"] else 0
        a["retries"] += 1 if r["retry"] else 0
        a["nonprod"] += 0 if r["env"] in PRODUCTION_ENVS else 1
        if r["score"] is not None:
            a["score_sum"] += r["score"]
            a["score_n"] += 1
        if r["feedback"] is not None:
            a["feedback_sum"] += r["feedback"]
            a["feedback_n"] += 1
        if r["confidence"] is not None:
            a["confidence_sum"] += r["confidence"]
            a["confidence_n"] += 1
        a["latency_sum"] += r["latency_ms"] or 0
        a["output_chars"] += len(r["output"]) if r["output"] else 0
        conf = r["confidence"]
        if conf is not None:
            b = min(int(conf * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)
            a[f"conf_n_{b}"] += 1
            a[f"conf_sum_{b}"] += conf
            fb = r["feedback"]
            a[f"conf_ok_{b}"] += 0 if r["escalated"] or (fb is not None and fb < 0) else 1
        extra = counters.get(r["id"])
        if extra:
            for name, n in extra.items():
                a[name] += n
    return acc


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
        now = datetime.now(UTC)
        result = WriteResult()
        seen: set[str] = set()
        event_rows: list[dict[str, Any]] = []
        change_rows: list[dict[str, Any]] = []
        counters: dict[str, dict[str, int]] = {}
        first_seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        fresh_events: list[Event] = []
        for rec in records:
            key = ("c:" if isinstance(rec, ChangeEvent) else "e:") + rec.id
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            if isinstance(rec, ChangeEvent):
                change_rows.append(change_row(rec, now=now))
            else:
                fresh_events.append(rec)
                event_rows.append(event_row(rec, now=now))
        if self.checker is not None and fresh_events:
            for rec, row, verdict in zip(fresh_events, event_rows, self.checker.check_many(fresh_events), strict=True):
                row["findings"] = verdict.findings_json()
                if verdict.counters:
                    counters[rec.id] = verdict.counters
                for kind, name in verdict.behaviours:
                    key = (rec.feature, kind, name)
                    known = first_seen.get(key)
                    if known is None or rec.ts < known["first_seen"]:
                        first_seen[key] = {"feature": rec.feature, "kind": kind, "name": name,
                                           "first_seen": rec.ts, "first_event": rec.id}
        if not event_rows and not change_rows:
            return result

        with self._lock, self.store.transaction() as conn:
            inserted = self.store.insert_events(conn, event_rows)
            new_rows = [r for r in event_rows if r["id"] in inserted]
            contributions = _rollup_contributions(new_rows, counters)
            if first_seen:
                stored = {r["id"] for r in new_rows}
                fresh = [b for b in first_seen.values() if b["first_event"] in stored]
                for new in self.store.add_behaviours(conn, fresh):
                    key = (new["feature"], minute_of(new["first_seen"]))
                    contributions[key]["new_behaviours"] += 1
            self.store.add_rollups(conn, list(contributions.values()))
            self.store.recount_sessions(conn, list(contributions))
            changes_inserted = self.store.insert_changes(conn, change_rows)

        result.accepted += len(inserted) + len(changes_inserted)
        result.duplicates += (len(event_rows) - len(inserted)) + (len(change_rows) - len(changes_inserted))
        result.unpriced += sum(1 for r in new_rows if r["cost_source"] == "unpriced")
        return result
