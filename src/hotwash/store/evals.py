"""Queries of the evals workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from hotwash.store.base import StoreBase
from hotwash.store.tables import eval_cases


class EvalQueries(StoreBase):
    """evals queries. Methods take keyword-only arguments and return plain dicts."""

    # -- the index of regression case files (evals helper) --
    # The files in the user's repository are the truth; this index says which exist, where, from
    # which incident, and their digest at indexing time (a changed file shows as modified).

    def index_eval_case(self, *, id: str, incident_id: int | None, feature: str | None, category: str | None,
                        path: str, digest: str, now: datetime) -> dict[str, Any]:
        """Add a case to the index, or update its row (same id): path, digest and origin; the first
        ``created_at`` is kept."""
        values = {"id": id, "incident_id": incident_id, "feature": feature, "category": category, "path": path,
                  "digest": digest, "created_at": now}
        stmt = self._insert(eval_cases).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[eval_cases.c.id],
            set_={k: stmt.excluded[k] for k in ("incident_id", "feature", "category", "path", "digest")},
        )
        with self.transaction() as conn:
            conn.execute(stmt)
            return dict(conn.execute(select(eval_cases).where(eval_cases.c.id == id)).mappings().one())

    def list_eval_cases(self, *, incident_id: int | None = None, feature: str | None = None,
                        category: str | None = None) -> list[dict[str, Any]]:
        """Indexed cases, oldest first."""
        query = select(eval_cases).order_by(eval_cases.c.created_at, eval_cases.c.id)
        if incident_id is not None:
            query = query.where(eval_cases.c.incident_id == incident_id)
        if feature is not None:
            query = query.where(eval_cases.c.feature == feature)
        if category is not None:
            query = query.where(eval_cases.c.category == category)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get_eval_case(self, id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(eval_cases).where(eval_cases.c.id == id)).mappings().first()
        return dict(row) if row else None

    def remove_eval_case(self, id: str) -> bool:
        """Drop a case from the index (its file is the user's to delete); False if it was not indexed."""
        with self.transaction() as conn:
            return conn.execute(delete(eval_cases).where(eval_cases.c.id == id)).rowcount > 0

    # -- stored monitors and verify proofs (verify helper) --
    # Monitors born from incidents (`hotwash monitor add --from`) and the verify step's proofs.
    # Imports are local so this section stays independent of the evals part above.

    def add_stored_monitor(self, *, name: str, incident_id: int | None, feature: str, rule: Mapping[str, Any],
                           now: datetime, enabled: bool = True) -> dict[str, Any]:
        """Store a monitor; a name already taken is a Conflict (names are unique)."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from hotwash.errors import Conflict
        from hotwash.store.tables import stored_monitors

        values = {"name": name, "incident_id": incident_id, "feature": feature, "rule": dict(rule),
                  "enabled": enabled, "created_at": now}
        try:
            with self.transaction() as conn:
                if conn.execute(select(stored_monitors.c.id).where(stored_monitors.c.name == name)).first():
                    raise Conflict(f"a stored monitor named {name!r} already exists: pick another --name "
                                   f"or remove it first (`hotwash monitor remove {name}`)")
                row = conn.execute(stored_monitors.insert().values(**values).returning(*stored_monitors.c))
                return dict(row.mappings().one())
        except IntegrityError as exc:  # a concurrent writer took the name between our read and insert
            raise Conflict(f"a stored monitor named {name!r} already exists: pick another --name") from exc

    def list_stored_monitors(self, *, incident_id: int | None = None, feature: str | None = None,
                             enabled: bool | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from hotwash.store.tables import stored_monitors as sm

        query = select(sm).order_by(sm.c.id)
        if incident_id is not None:
            query = query.where(sm.c.incident_id == incident_id)
        if feature is not None:
            query = query.where(sm.c.feature == feature)
        if enabled is not None:
            query = query.where(sm.c.enabled.is_(enabled))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get_stored_monitor(self, name: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        from hotwash.store.tables import stored_monitors as sm

        with self.engine.connect() as conn:
            row = conn.execute(select(sm).where(sm.c.name == name)).mappings().first()
        return dict(row) if row else None

    def remove_stored_monitor(self, name: str) -> bool:
        """Delete the stored monitor ``name``; False if there was none."""
        from sqlalchemy import delete

        from hotwash.store.tables import stored_monitors as sm

        with self.transaction() as conn:
            return conn.execute(delete(sm).where(sm.c.name == name)).rowcount > 0

    def stored_monitors_stamp(self) -> tuple[tuple[int, bool], ...]:
        """(id, enabled) of every stored monitor: the live engine reloads its rules when this changes."""
        from sqlalchemy import select

        from hotwash.store.tables import stored_monitors as sm

        with self.engine.connect() as conn:
            return tuple((r.id, bool(r.enabled)) for r in conn.execute(select(sm.c.id, sm.c.enabled).order_by(sm.c.id)))

    def save_proof(self, *, incident_id: int, kind: str, ok: bool, data: Mapping[str, Any],
                   now: datetime) -> dict[str, Any]:
        """Keep one computed proof (kind ``regression`` or ``monitor``); every run adds a row."""
        from hotwash.store.tables import proofs

        stmt = proofs.insert().values(incident_id=incident_id, kind=kind, ok=ok, data=dict(data),
                                      created_at=now).returning(*proofs.c)
        with self.transaction() as conn:
            return dict(conn.execute(stmt).mappings().one())

    def latest_proofs(self, incident_id: int) -> dict[str, dict[str, Any]]:
        """The newest proof of each kind for an incident: ``{kind: row}`` (kinds never computed are absent)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.list_proofs(incident_id):  # oldest first: later rows replace earlier ones
            out[row["kind"]] = row
        return out

    def list_proofs(self, incident_id: int) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from hotwash.store.tables import proofs

        query = select(proofs).where(proofs.c.incident_id == incident_id).order_by(proofs.c.created_at, proofs.c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
