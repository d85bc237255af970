"""Queries behind the diagnostic questions and their stored answers, mixed into
:class:`hotwash.store.Store` (the only SQL layer).

The telemetry reads are aggregates over one feature and a time range (``start <= ts < end``), so
the (feature, ts) index bounds each of them; the few that must look inside JSON columns (tags,
context) spell it once per dialect here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, case, delete, func, literal, select, true, type_coerce
from sqlalchemy.dialects import postgresql

from hotwash.store.base import StoreBase
from hotwash.store.tables import behaviours, diagnosis, events, incident_signals, incidents, rollups, signals

# Tag values seen fewer times than this in a window are noise for a distribution comparison
# (ids, free text); leaving them out keeps the result small on high-cardinality tags.
_TAG_MIN_COUNT = 3
_TAG_MAX_ROWS = 2000


class DiagnosisQueries(StoreBase):
    """Diagnosis queries. Methods take keyword-only arguments and return plain dicts."""

    # -- the incident as diagnosis sees it -----------------------------------------------------
    def diagnosis_incident(self, incident_id: int) -> dict[str, Any] | None:
        """The incident row plus the first start and first detection of its linked signals."""
        linked = (select(func.min(signals.c.start), func.min(signals.c.detected_at))
                  .select_from(incident_signals.join(signals, signals.c.id == incident_signals.c.signal_id))
                  .where(incident_signals.c.incident_id == incident_id))
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
            if row is None:
                return None
            first_start, first_detected = conn.execute(linked).one()
        return {**dict(row), "first_signal_start": first_start, "first_signal_detected": first_detected}

    # -- stored answers ----------------------------------------------------------------------
    def diagnosis_answers(self, incident_id: int) -> dict[str, dict[str, Any]]:
        """Stored answers of an incident by question key."""
        query = select(diagnosis).where(diagnosis.c.incident_id == incident_id)
        with self.engine.connect() as conn:
            return {r["question"]: dict(r) for r in conn.execute(query).mappings()}

    def save_auto_answers(self, *, incident_id: int, rows: Sequence[Mapping[str, Any]], unanswered: Sequence[str],
                          now: datetime, by: str) -> None:
        """Store computed answers (``question``, ``answer``, ``evidence``), replacing earlier computed
        ones but never an answer a person wrote; drop computed answers to the ``unanswered`` questions."""
        with self.transaction() as conn:
            if rows:
                stmt = self._insert(diagnosis)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["incident_id", "question"],
                    set_={"answer": stmt.excluded.answer, "evidence": stmt.excluded.evidence,
                          "source": stmt.excluded.source, "updated_at": stmt.excluded.updated_at,
                          "updated_by": stmt.excluded.updated_by},
                    where=diagnosis.c.source != "human",
                )
                conn.execute(stmt, [{"incident_id": incident_id, "question": r["question"], "answer": r["answer"],
                                     "evidence": r["evidence"], "source": "auto", "updated_at": now,
                                     "updated_by": by} for r in rows])
            if unanswered:
                conn.execute(delete(diagnosis).where(diagnosis.c.incident_id == incident_id,
                                                     diagnosis.c.question.in_(list(unanswered)),
                                                     diagnosis.c.source == "auto"))

    def save_human_answer(self, *, incident_id: int, question: str, answer: str, actor: str, now: datetime,
                          conn: Connection) -> dict[str, Any] | None:
        """Store a person's answer (the computed evidence, if any, is kept); returns the previous row.
        Runs inside the caller's unit of work, which also writes the timeline entry."""
        key = (diagnosis.c.incident_id == incident_id, diagnosis.c.question == question)
        previous = conn.execute(select(diagnosis).where(*key)).mappings().first()
        stmt = self._insert(diagnosis).values(incident_id=incident_id, question=question, answer=answer,
                                              evidence=None, source="human", updated_at=now, updated_by=actor)
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_id", "question"],
            set_={"answer": stmt.excluded.answer, "source": stmt.excluded.source,
                  "updated_at": stmt.excluded.updated_at, "updated_by": stmt.excluded.updated_by})
        conn.execute(stmt)
        return dict(previous) if previous else None

    # -- telemetry aggregates ------------------------------------------------------------------
    def rollup_totals(self, *, feature: str, start: datetime, end: datetime) -> dict[str, float]:
        """Sum of every rollup counter of ``feature`` over minutes in [start, end)."""
        cols = [c for c in rollups.columns if c.name not in {"feature", "minute", "sessions", "max_session_calls"}]
        query = select(*[func.coalesce(func.sum(c), 0).label(c.name) for c in cols]).where(
            rollups.c.feature == feature, rollups.c.minute >= start, rollups.c.minute < end)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().one()
        return {k: float(v) for k, v in row.items()}

    def spend_by_feature(self, *, start: datetime, end: datetime) -> dict[str, float]:
        """Spend of every feature over minutes in [start, end), most expensive first."""
        total = func.sum(rollups.c.cost_usd)
        query = (select(rollups.c.feature, total).where(rollups.c.minute >= start, rollups.c.minute < end)
                 .group_by(rollups.c.feature).order_by(total.desc(), rollups.c.feature))
        with self.engine.connect() as conn:
            return {f: float(c or 0) for f, c in conn.execute(query)}

    def _window(self, feature: str, start: datetime, end: datetime) -> tuple[Any, ...]:
        return events.c.feature == feature, events.c.ts >= start, events.c.ts < end

    def version_outcomes(self, *, feature: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per (prompt_version, model): calls, escalations, and the first and last call in the window."""
        escalated = func.sum(case((events.c.escalated.is_(True), 1), else_=0))
        query = (select(events.c.prompt_version, events.c.model, func.count().label("events"),
                        escalated.label("escalated"), func.min(events.c.ts).label("first_ts"),
                        func.max(events.c.ts).label("last_ts"))
                 .where(*self._window(feature, start, end))
                 .group_by(events.c.prompt_version, events.c.model)
                 .order_by(events.c.prompt_version, events.c.model))
        with self.engine.connect() as conn:
            return [{**dict(r), "escalated": int(r["escalated"] or 0)} for r in conn.execute(query).mappings()]

    def first_use(self, *, feature: str, column: str, value: str, since: datetime) -> dict[str, Any] | None:
        """The first call of ``feature`` from ``since`` on whose ``column`` (model, prompt_version) is ``value``."""
        col = {"model": events.c.model, "prompt_version": events.c.prompt_version}[column]
        query = (select(events.c.id, events.c.ts).where(events.c.feature == feature, events.c.ts >= since, col == value)
                 .order_by(events.c.ts, events.c.id).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def session_stats(self, *, feature: str, start: datetime, end: datetime, order: str = "calls",
                      limit: int = 10) -> list[dict[str, Any]]:
        """The sessions with the most calls (``order="calls"``) or spend (``"cost"``) in the window."""
        calls, cost = func.count().label("calls"), func.coalesce(func.sum(events.c.cost_usd), 0).label("cost_usd")
        ranking = [cost.desc(), calls.desc()] if order == "cost" else [calls.desc(), cost.desc()]
        query = (select(events.c.session_id, calls, cost, func.min(events.c.ts).label("first_ts"),
                        func.max(events.c.ts).label("last_ts"),
                        func.count(events.c.user_id.distinct()).label("users"),
                        func.sum(case((events.c.retry > 0, 1), else_=0)).label("retries"))
                 .where(*self._window(feature, start, end), events.c.session_id.is_not(None))
                 .group_by(events.c.session_id).order_by(*ranking, events.c.session_id).limit(limit))
        with self.engine.connect() as conn:
            return [{**dict(r), "cost_usd": float(r["cost_usd"]), "retries": int(r["retries"] or 0)}
                    for r in conn.execute(query).mappings()]

    def session_event_ids(self, *, feature: str, session_id: str, start: datetime, end: datetime,
                          limit: int = 5) -> list[str]:
        query = (select(events.c.id).where(*self._window(feature, start, end), events.c.session_id == session_id)
                 .order_by(events.c.ts, events.c.id).limit(limit))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def env_mix(self, *, feature: str, start: datetime, end: datetime) -> dict[str | None, int]:
        """Calls per ``env`` value (None: not reported), most first."""
        n = func.count()
        query = (select(events.c.env, n).where(*self._window(feature, start, end))
                 .group_by(events.c.env).order_by(n.desc(), events.c.env))
        with self.engine.connect() as conn:
            return {env: int(k) for env, k in conn.execute(query)}

    def finding_events(self, *, feature: str, start: datetime, end: datetime, category: str,
                       limit: int = 500) -> dict[str, Any]:
        """The calls in the window with a flagged finding of ``category``: how many, in how many sessions
        and for how many users, from when to when, and the first ``limit`` of them (id, ts, session,
        findings, tool calls)."""
        where = (*self._window(feature, start, end), self._flagged_finding(category))
        summary = select(func.count(), func.count(events.c.session_id.distinct()),
                         func.count(events.c.user_id.distinct()), func.min(events.c.ts), func.max(events.c.ts)
                         ).where(*where)
        rows = (select(events.c.id, events.c.ts, events.c.session_id, events.c.user_id, events.c.findings,
                       events.c.tool_calls).where(*where).order_by(events.c.ts, events.c.id).limit(limit))
        with self.engine.connect() as conn:
            n, sessions, users, first, last = conn.execute(summary).one()
            found = [dict(r) for r in conn.execute(rows).mappings()]
        return {"calls": int(n), "sessions": int(sessions), "users": int(users), "first_ts": first,
                "last_ts": last, "events": found}

    def _flagged_finding(self, category: str) -> Any:
        # JSON containment is dialect-specific (as in Store._has_finding, which also matches the
        # low-score findings kept for context).
        if self.dialect == "postgresql":
            return type_coerce(events.c.findings, postgresql.JSONB).contains([{"category": category, "flagged": True}])
        each = func.json_each(events.c.findings).table_valued("value").alias("f")
        return (select(literal(1)).select_from(each)
                .where(func.json_extract(each.c.value, "$.category") == category,
                       func.json_extract(each.c.value, "$.flagged") == 1).exists())

    def _context_docs(self) -> Any:
        """How many documents an event's context holds (0 when none: SQL NULL, JSON null, [])."""
        if self.dialect == "postgresql":
            ctx = type_coerce(events.c.context, postgresql.JSONB)
            return func.coalesce(func.jsonb_array_length(case((func.jsonb_typeof(ctx) == "array", ctx))), 0)
        return func.coalesce(func.json_array_length(type_coerce(events.c.context, String)), 0)

    def context_presence(self, *, feature: str, start: datetime, end: datetime, examples: int = 5
                         ) -> dict[str, Any]:
        """Calls in the window, how many retrieved no context at all, and the first few of those."""
        missing = self._context_docs() == 0
        query = select(func.count(), func.coalesce(func.sum(case((missing, 1), else_=0)), 0)).where(
            *self._window(feature, start, end))
        ids = (select(events.c.id).where(*self._window(feature, start, end), missing)
               .order_by(events.c.ts, events.c.id).limit(examples))
        with self.engine.connect() as conn:
            n, without = conn.execute(query).one()
            sample = list(conn.execute(ids).scalars()) if without else []
        return {"calls": int(n), "without_context": int(without), "examples": sample}

    def event_count(self, *, feature: str, start: datetime, end: datetime) -> int:
        """Calls of ``feature`` over minutes in [start, end), from the rollups."""
        query = select(func.coalesce(func.sum(rollups.c.events), 0)).where(
            rollups.c.feature == feature, rollups.c.minute >= start, rollups.c.minute < end)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def tag_mix(self, *, feature: str, start: datetime, end: datetime, sample: int = 5000) -> dict[str, Any]:
        """Calls per scalar tag value among the latest ``sample`` calls of the window:
        ``{"calls": n, "values": {key: {value: calls}}}`` (values seen only a couple of times are left out)."""
        recent = (select(events.c.tags).where(*self._window(feature, start, end))
                  .order_by(events.c.ts.desc()).limit(sample).subquery("recent"))
        if self.dialect == "postgresql":
            tags = type_coerce(recent.c.tags, postgresql.JSONB)
            # jsonb_each_text raises on a non-object; guard inside the call, not in WHERE (no order).
            obj = case((func.jsonb_typeof(tags) == "object", tags), else_=func.jsonb_build_object())
            each = func.jsonb_each_text(obj).table_valued("key", "value").lateral("kv")
            scalar, value = true(), each.c.value
        else:
            each = func.json_each(type_coerce(recent.c.tags, String)).table_valued("key", "value", "type").alias("kv")
            scalar = each.c.type.not_in(["object", "array", "null"])
            # json_each gives booleans as 1/0; spell them as PostgreSQL does.
            value = case((each.c.type == "true", "true"), (each.c.type == "false", "false"), else_=each.c.value)
        n = func.count()
        query = (select(each.c.key, value, n).select_from(recent).join(each, true())
                 .where(scalar, each.c.key.is_not(None))
                 .group_by(each.c.key, value).having(n >= _TAG_MIN_COUNT)
                 .order_by(n.desc(), each.c.key).limit(_TAG_MAX_ROWS))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            calls = int(conn.execute(select(func.count()).select_from(recent)).scalar_one())
            for key, val, k in conn.execute(query):
                out.setdefault(str(key), {})[str(val)] = int(k)
        return {"calls": calls, "values": out}

    def feature_behaviours(self, *, feature: str) -> list[dict[str, Any]]:
        """Every tool and output kind ``feature`` has shown, with its first sighting, oldest first."""
        query = (select(behaviours).where(behaviours.c.feature == feature)
                 .order_by(behaviours.c.first_seen, behaviours.c.kind, behaviours.c.name))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

