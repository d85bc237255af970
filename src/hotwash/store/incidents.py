"""Queries of the incident workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from hotwash.store.base import StoreBase
from hotwash.store.tables import incidents, timeline

# Incident states in which the playbook is still running.
OPEN_STATES = ("detected", "contained", "communicated", "diagnosed", "mitigated", "postmortem", "verified")


class IncidentQueries(StoreBase):
    """Incident queries. Methods take keyword-only arguments and return plain dicts."""

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
