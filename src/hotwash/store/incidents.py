"""Queries of the incident workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer).

Every change to an incident is one unit of work: the service opens ``transaction()`` and passes
the connection to :meth:`IncidentQueries.update_incident` (which bumps ``version`` only if it is
still the one the caller read) and :meth:`IncidentQueries.add_timeline`. Postmortems, actions and
proofs are written by their own parts; this module only reads them (recurrences, the guards of
``verify`` and ``close``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql

from hotwash.store.base import StoreBase
from hotwash.store.tables import (
    actions,
    events,
    incident_participants,
    incident_signals,
    incidents,
    postmortems,
    proofs,
    signals,
    timeline,
)

# Incident states in which the playbook is still running.
OPEN_STATES = ("detected", "contained", "communicated", "diagnosed", "mitigated", "postmortem", "verified")


class IncidentQueries(StoreBase):
    """Incident queries. Methods take keyword-only arguments and return plain dicts."""

    # -- timeline ---------------------------------------------------------------------------
    def add_timeline(self, *, incident_id: int, ts: datetime, actor: str, kind: str, text: str,
                     data: Mapping[str, Any] | None = None, conn: Connection | None = None) -> int:
        """Append one entry to an incident's timeline (inside ``conn``'s unit of work if given)."""
        stmt = timeline.insert().values(incident_id=incident_id, ts=ts, actor=actor, kind=kind, text=text,
                                        data=dict(data) if data is not None else None).returning(timeline.c.id)
        if conn is not None:
            return int(conn.execute(stmt).scalar_one())
        with self.transaction() as own:
            return int(own.execute(stmt).scalar_one())

    def list_timeline(self, incident_id: int) -> list[dict[str, Any]]:
        query = select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.ts, timeline.c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def open_incident_ids(self, feature: str) -> list[int]:
        """Ids of the incidents still open whose primary feature is ``feature``."""
        query = (select(incidents.c.id).where(incidents.c.feature == feature, incidents.c.status.in_(OPEN_STATES))
                 .order_by(incidents.c.id))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # -- incidents --------------------------------------------------------------------------
    def incident_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(incidents)).scalar_one())

    def insert_incident(self, conn: Connection, *, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one incident row (version 1); returns it with its id."""
        row = conn.execute(incidents.insert().values(**values, version=1).returning(*incidents.c)).mappings().one()
        return dict(row)

    def incident_row(self, incident_id: int, *, conn: Connection | None = None) -> dict[str, Any] | None:
        query = select(incidents).where(incidents.c.id == incident_id)
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        return dict(row) if row else None

    def update_incident(self, conn: Connection, *, incident_id: int, version: int,
                        values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write ``values`` and bump the version, only if the row is still at ``version``.

        Returns the new row, or None when the row is gone or at another version (someone else
        changed it since it was read): the caller decides between NotFound and StaleUpdate. As the
        first statement of a unit of work it also takes SQLite's write lock, so the reads that
        follow in the same transaction (the guards) cannot go stale.
        """
        stmt = (update(incidents).where(incidents.c.id == incident_id, incidents.c.version == version)
                .values(**values, version=incidents.c.version + 1).returning(*incidents.c))
        row = conn.execute(stmt).mappings().first()
        return dict(row) if row else None

    def save_blast(self, incident_id: int, blast: Mapping[str, Any]) -> None:
        """Keep a snapshot of the blast radius for listings. Derived data, not a change anyone made:
        the version stays, so nobody's expected_version goes stale."""
        with self.transaction() as conn:
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(blast=dict(blast)))

    def list_incident_rows(self, *, status: Sequence[str] | None = None, category: str | None = None,
                           feature: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        """Incidents, newest first. ``feature`` matches the primary feature or any affected one."""
        query = select(incidents).order_by(incidents.c.id.desc())
        if status is not None:
            query = query.where(incidents.c.status.in_(list(status)))
        if category is not None:
            query = query.where(incidents.c.category == category)
        if severity is not None:
            query = query.where(incidents.c.severity == severity)
        if feature is not None:
            query = query.where(or_(incidents.c.feature == feature, self._lists_feature(feature)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _lists_feature(self, feature: str) -> Any:
        # JSON array membership is dialect-specific; this is the one place that knows both spellings.
        if self.dialect == "postgresql":
            return type_coerce(incidents.c.features, postgresql.JSONB).contains([feature])
        each = func.json_each(incidents.c.features).table_valued("value").alias("f")
        return select(each.c.value).where(each.c.value == feature).exists()

    def find_open_incident(self, *, feature: str, category: str, conn: Connection | None = None
                           ) -> dict[str, Any] | None:
        """The oldest open incident whose primary feature and category are these."""
        query = (select(incidents).where(incidents.c.feature == feature, incidents.c.category == category,
                                         incidents.c.status.in_(OPEN_STATES))
                 .order_by(incidents.c.id).limit(1))
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        return dict(row) if row else None

    # -- participants -----------------------------------------------------------------------
    def set_participant(self, conn: Connection, *, incident_id: int, person: str, role: str, now: datetime) -> None:
        """Add ``person`` with ``role``, or change the role of someone already on the incident."""
        stmt = self._insert(incident_participants).values(incident_id=incident_id, person=person, role=role,
                                                          added_at=now)
        conn.execute(stmt.on_conflict_do_update(index_elements=["incident_id", "person"],
                                                set_={"role": stmt.excluded.role}))

    def remove_participant(self, conn: Connection, *, incident_id: int, person: str) -> bool:
        stmt = incident_participants.delete().where(incident_participants.c.incident_id == incident_id,
                                                    incident_participants.c.person == person)
        return conn.execute(stmt).rowcount > 0

    def list_participants(self, incident_id: int) -> list[dict[str, Any]]:
        query = (select(incident_participants.c.person, incident_participants.c.role,
                        incident_participants.c.added_at)
                 .where(incident_participants.c.incident_id == incident_id)
                 .order_by(incident_participants.c.added_at, incident_participants.c.person))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- signals ----------------------------------------------------------------------------
    def signal_rows(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(signals.c.id.in_(wanted))).mappings()
            return {r["id"]: dict(r) for r in rows}

    def attached_incidents(self, signal_ids: Iterable[int]) -> dict[int, int]:
        """``{signal id: incident id}`` for the signals that already belong to an incident."""
        wanted = sorted(set(signal_ids))
        if not wanted:
            return {}
        query = select(incident_signals.c.signal_id, incident_signals.c.incident_id).where(
            incident_signals.c.signal_id.in_(wanted))
        with self.engine.connect() as conn:
            return {s: i for s, i in conn.execute(query).all()}

    def attach_signals(self, conn: Connection, *, incident_id: int, signal_ids: Sequence[int],
                       now: datetime) -> list[int]:
        """Link signals to an incident; a signal already linked (to any incident) is skipped.
        Returns the ids linked by this call."""
        if not signal_ids:
            return []
        stmt = (self._insert(incident_signals).on_conflict_do_nothing(index_elements=["signal_id"])
                .returning(incident_signals.c.signal_id))
        rows = [{"signal_id": s, "incident_id": incident_id, "attached_at": now} for s in signal_ids]
        return sorted(conn.execute(stmt, rows).scalars())

    def incident_signal_rows(self, incident_id: int) -> list[dict[str, Any]]:
        query = (select(signals).join(incident_signals, incident_signals.c.signal_id == signals.c.id)
                 .where(incident_signals.c.incident_id == incident_id)
                 .order_by(signals.c.detected_at, signals.c.id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- blast radius -----------------------------------------------------------------------
    def blast_radius(self, *, features: Sequence[str], start: datetime, end: datetime | None) -> dict[str, Any]:
        """Calls, distinct sessions, distinct users and spend of ``features`` from ``start`` (inclusive)
        to ``end`` (exclusive; None: up to the newest event)."""
        query = select(func.count(), func.count(events.c.session_id.distinct()),
                       func.count(events.c.user_id.distinct()), func.coalesce(func.sum(events.c.cost_usd), 0.0)
                       ).where(events.c.feature.in_(list(features)), events.c.ts >= start)
        if end is not None:
            query = query.where(events.c.ts < end)
        with self.engine.connect() as conn:
            n, sessions, users, cost = conn.execute(query).one()
        return {"events": int(n), "sessions": int(sessions), "users": int(users), "cost_usd": round(float(cost), 6)}

    # -- read-only views of the other parts -------------------------------------------------
    def recurrence_rows(self, *, feature: str, category: str, before: int | None = None) -> list[dict[str, Any]]:
        """Incidents of the same primary feature and category (opened before incident ``before``, if
        given), newest first, each with its postmortem's status (None: none written) and its count of
        open actions."""
        open_actions = (select(func.count()).where(actions.c.incident_id == incidents.c.id,
                                                   actions.c.status == "open")
                        .correlate(incidents).scalar_subquery())
        query = (select(incidents.c.id, incidents.c.title, incidents.c.severity, incidents.c.status,
                        incidents.c.opened_at, incidents.c.closed_at,
                        postmortems.c.status.label("postmortem_status"), open_actions.label("open_actions"))
                 .select_from(incidents.outerjoin(postmortems, postmortems.c.incident_id == incidents.c.id))
                 .where(incidents.c.feature == feature, incidents.c.category == category)
                 .order_by(incidents.c.id.desc()))
        if before is not None:
            query = query.where(incidents.c.id < before)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def newest_proof_status(self, incident_id: int, *, conn: Connection | None = None) -> dict[str, bool]:
        """``{kind: ok}`` of the newest proof of each kind computed for the incident."""
        query = (select(proofs.c.kind, proofs.c.ok).where(proofs.c.incident_id == incident_id)
                 .order_by(proofs.c.created_at, proofs.c.id))
        out: dict[str, bool] = {}
        if conn is not None:
            rows = conn.execute(query).all()
        else:
            with self.engine.connect() as own:
                rows = own.execute(query).all()
        for kind, ok in rows:  # oldest first: later rows replace earlier ones
            out[kind] = bool(ok)
        return out

    def open_action_rows(self, incident_id: int, *, conn: Connection | None = None) -> list[dict[str, Any]]:
        query = (select(actions.c.id, actions.c.title, actions.c.owner, actions.c.due_at)
                 .where(actions.c.incident_id == incident_id, actions.c.status == "open").order_by(actions.c.id))
        if conn is not None:
            return [dict(r) for r in conn.execute(query).mappings()]
        with self.engine.connect() as own:
            return [dict(r) for r in own.execute(query).mappings()]
