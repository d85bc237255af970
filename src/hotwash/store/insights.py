"""Read-only queries behind the insights page and ``/metrics``, mixed into :class:`hotwash.store.Store`.

They return plain rows; the arithmetic (weeks, months, medians, recurrences) is done in Python by
:mod:`hotwash.insights.metrics`, so it is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hotwash.store.base import StoreBase
from hotwash.store.tables import (
    actions,
    eval_cases,
    incidents,
    postmortem_reads,
    postmortems,
    signals,
    stored_monitors,
)

# The playbook is still running in these states (same as store.incidents.OPEN_STATES).
_OPEN = ("detected", "contained", "communicated", "diagnosed", "mitigated", "postmortem", "verified")


class InsightQueries(StoreBase):
    """Insight queries. Methods take keyword-only arguments and return plain dicts."""

    def insight_incidents(self) -> list[dict[str, Any]]:
        """Every incident's identity and milestones, oldest detection first."""
        c = incidents.c
        query = select(c.id, c.title, c.category, c.severity, c.status, c.feature, c.opened_at, c.started_at,
                       c.detected_at, c.contained_at, c.mitigated_at, c.closed_at).order_by(c.detected_at, c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def insight_postmortems(self) -> list[dict[str, Any]]:
        """Every postmortem with its due date, publication time and number of recorded reads."""
        c = postmortems.c
        reads = (select(postmortem_reads.c.postmortem_id, func.count().label("reads"))
                 .group_by(postmortem_reads.c.postmortem_id).subquery())
        query = (select(c.id, c.incident_id, c.title, c.status, c.category, c.feature, c.due_at, c.created_at,
                        c.published_at, func.coalesce(reads.c.reads, 0).label("reads"))
                 .outerjoin(reads, reads.c.postmortem_id == c.id).order_by(c.id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def insight_readers(self) -> dict[int, set[str]]:
        """Who has read which postmortem: ``{postmortem id: {person, ...}}``."""
        query = select(postmortem_reads.c.postmortem_id, postmortem_reads.c.person)
        out: dict[int, set[str]] = {}
        with self.engine.connect() as conn:
            for pid, person in conn.execute(query):
                out.setdefault(pid, set()).add(person)
        return out

    def insight_actions(self) -> list[dict[str, Any]]:
        c = actions.c
        query = select(c.id, c.incident_id, c.title, c.kind, c.owner, c.status, c.due_at, c.created_at,
                       c.closed_at).order_by(c.due_at, c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def insight_created(self, what: str) -> list[Any]:
        """Creation times of the regression cases (``eval_cases``) or stored monitors (``monitors``)."""
        table = {"eval_cases": eval_cases, "monitors": stored_monitors}.get(what)
        if table is None:
            raise ValueError(f"insight_created: unknown {what!r}")
        with self.engine.connect() as conn:
            return list(conn.execute(select(table.c.created_at).order_by(table.c.created_at)).scalars())

    # -- gauges for /metrics -----------------------------------------------------------------
    def count_open_incidents(self) -> dict[str, int]:
        """Open incidents per severity."""
        query = (select(incidents.c.severity, func.count()).where(incidents.c.status.in_(_OPEN))
                 .group_by(incidents.c.severity))
        with self.engine.connect() as conn:
            return {sev: int(n) for sev, n in conn.execute(query)}

    def count_signals(self) -> dict[str, int]:
        """Stored signals per category."""
        query = select(signals.c.category, func.count()).group_by(signals.c.category)
        with self.engine.connect() as conn:
            return {cat: int(n) for cat, n in conn.execute(query)}

    # -- the signals page ----------------------------------------------------------------------
    def recent_signals(self, *, feature: str | None = None, category: str | None = None,
                       limit: int = 200) -> list[dict[str, Any]]:
        """The newest signals first, optionally of one feature / category."""
        query = select(signals).order_by(signals.c.detected_at.desc(), signals.c.id.desc()).limit(limit)
        if feature:
            query = query.where(signals.c.feature == feature)
        if category:
            query = query.where(signals.c.category == category)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def signal_counts_by_monitor(self) -> dict[tuple[str, str], int]:
        """How often each monitor fired: ``{(feature, monitor): signals}``."""
        query = select(signals.c.feature, signals.c.monitor, func.count()).group_by(signals.c.feature,
                                                                                     signals.c.monitor)
        with self.engine.connect() as conn:
            return {(f, m): int(n) for f, m, n in conn.execute(query)}
