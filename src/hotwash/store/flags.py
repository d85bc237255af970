"""Queries of the kill switches (``flags``), mixed into :class:`hotwash.store.Store` (the only SQL layer).

A flag change and the timeline entries it leaves on open incidents are one unit of work: the
caller opens ``transaction()``, calls :meth:`FlagQueries.lock_flag`, then :meth:`FlagQueries.write_flag`
and ``add_timeline(..., conn=conn)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from hotwash.errors import StaleUpdate
from hotwash.store.base import StoreBase
from hotwash.store.incidents import OPEN_STATES
from hotwash.store.tables import flags, incidents


class FlagQueries(StoreBase):
    """Flag queries. Methods take keyword-only arguments and return plain dicts."""

    def get_flag_row(self, feature: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(flags).where(flags.c.feature == feature)).mappings().first()
        return dict(row) if row else None

    def list_flag_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(flags).order_by(flags.c.feature)).mappings()]

    def lock_flag(self, conn: Connection, feature: str) -> dict[str, Any] | None:
        """The current row of ``feature`` (or None), locked against other writers until ``conn`` ends.

        The first statement is a write that changes nothing: it takes SQLite's write lock (waiting
        up to busy_timeout) before the read, so the read cannot go stale under us, and it locks the
        row on PostgreSQL. A read first would leave SQLite's transaction unable to upgrade later.
        """
        conn.execute(update(flags).where(flags.c.feature == feature).values(version=flags.c.version))
        row = conn.execute(select(flags).where(flags.c.feature == feature)).mappings().first()
        return dict(row) if row else None

    def write_flag(self, conn: Connection, *, feature: str, mode: str, params: Mapping[str, Any] | None,
                   reason: str | None, incident_id: int | None, updated_at: datetime, updated_by: str,
                   version: int) -> dict[str, Any]:
        """Insert or replace the row of ``feature`` as ``version``, which must follow the stored one.

        The ``WHERE`` on the conflict update makes the version check hold even when two writers
        race to create the same feature's first row; the loser gets StaleUpdate.
        """
        values = {"feature": feature, "mode": mode, "params": dict(params) if params is not None else None,
                  "reason": reason, "incident_id": incident_id, "updated_at": updated_at,
                  "updated_by": updated_by, "version": version}
        stmt = self._insert(flags).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["feature"],
            set_={k: stmt.excluded[k] for k in values if k != "feature"},
            where=flags.c.version == version - 1,
        ).returning(*flags.c)
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise StaleUpdate(f"the flag of {feature} changed while it was being set: read it again and retry")
        return dict(row)

    def open_incident_ids_for(self, conn: Connection, feature: str) -> list[int]:
        """Ids of the open incidents that list ``feature`` among their affected features (primary or not)."""
        query = (select(incidents.c.id, incidents.c.feature, incidents.c.features)
                 .where(incidents.c.status.in_(OPEN_STATES)).order_by(incidents.c.id))
        # Open incidents are few; filtering the JSON list here keeps the query portable.
        return [r.id for r in conn.execute(query)
                if r.feature == feature or feature in (r.features or ())]

    def incident_exists(self, conn: Connection, incident_id: int) -> bool:
        return conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id)).first() is not None
