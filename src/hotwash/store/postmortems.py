"""Queries of postmortems, their readers, the library's full-text search, and action items, mixed
into :class:`hotwash.store.Store` (the only SQL layer).

Full-text search is the one dialect-specific part (migration 0006 creates the index):

    SQLite      postmortems_fts (FTS5, external content, triggers)   MATCH, ranked by bm25
    PostgreSQL  GIN index on to_tsvector('english', title || ' ' || markdown)
                                                                      websearch_to_tsquery, ranked by ts_rank

Both take the same query language — words (all must occur), ``"a phrase"``, ``OR``, ``-word`` —
PostgreSQL natively, SQLite through :func:`fts5_query`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, Integer, Select, func, select, text, union, update
from sqlalchemy.exc import IntegrityError

from hotwash.errors import Conflict, NotFound, StaleUpdate
from hotwash.store.base import StoreBase
from hotwash.store.tables import actions, incident_participants, incidents, postmortem_reads, postmortems, users

# Dialect-specific search objects created by migration 0006, outside ``tables.metadata`` (the schema
# comparison test leaves them out). FTS5 keeps its index in shadow tables named after the table.
SEARCH_OBJECTS = frozenset({
    "postmortems_fts", "postmortems_fts_data", "postmortems_fts_idx", "postmortems_fts_docsize",
    "postmortems_fts_config", "ix_postmortems_search",
})

# The search document and query of PostgreSQL, spelled exactly as the index expression of
# migration 0006 so the planner uses the GIN index.
_PG_DOCUMENT = "to_tsvector('english', postmortems.title || ' ' || postmortems.markdown)"
_PG_QUERY = "websearch_to_tsquery('english', :q)"
_PG_SEARCH = text(
    f"SELECT postmortems.id AS id, ts_rank({_PG_DOCUMENT}, {_PG_QUERY}) AS rank "  # noqa: S608 - constants only
    f"FROM postmortems WHERE {_PG_DOCUMENT} @@ {_PG_QUERY}"
).columns(id=Integer, rank=Float)
# bm25 is lower-is-better; negated so that on both databases a higher rank is a better match. A
# word in the title weighs four times one in the body.
_SQLITE_SEARCH = text(
    "SELECT rowid AS id, -bm25(postmortems_fts, 4.0, 1.0) AS rank FROM postmortems_fts WHERE postmortems_fts MATCH :q"
).columns(id=Integer, rank=Float)

_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


def fts5_query(q: str) -> str | None:
    """Translate the web-search query language (as PostgreSQL's ``websearch_to_tsquery`` reads it)
    into an FTS5 query; None when nothing searchable is left.

    Every term becomes a quoted FTS5 string, so no user text is ever read as FTS5 syntax.
    """
    positive: list[str] = []  # FTS5 terms and "OR" connectors
    negative: list[str] = []
    for m in _TERM.finditer(q):
        neg, phrase, bare = m.group(1), m.group(2), m.group(3)
        if bare is not None:
            if bare == "OR" or bare.lower() == "or":
                if positive and positive[-1] != "OR":
                    positive.append("OR")
                continue
            neg, body = ("-", bare[1:]) if bare.startswith("-") else ("", bare)
        else:
            body = phrase or ""
        words = _WORD.findall(body)
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        (negative if neg else positive).append(term)
    while positive and positive[-1] == "OR":
        positive.pop()
    if positive and positive[0] == "OR":
        positive.pop(0)
    if not positive:
        return None
    query = " ".join(positive)
    if negative:
        query = f"({query}) " + " ".join(f"NOT {t}" for t in negative)
    return query


class PostmortemQueries(StoreBase):
    """Postmortem, reader and action queries. Methods take keyword-only arguments and return plain dicts.

    Writes that belong together (a postmortem and the actions of its table) take one unit of work.
    """

    # -- postmortems --------------------------------------------------------------------------
    def create_postmortem(self, *, values: Mapping[str, Any], actions_: Sequence[Mapping[str, Any]] = (),
                          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Insert a postmortem and its new action items. Conflict if the incident already has one."""
        try:
            with self.transaction() as conn:
                row = conn.execute(postmortems.insert().values(**values).returning(*postmortems.c)).mappings().one()
                synced = self._sync_actions(conn, values["incident_id"], actions_, values["created_at"])
        except IntegrityError as exc:
            raise Conflict(f"INC-{values['incident_id']} already has a postmortem") from exc
        return dict(row), synced

    def get_postmortem(self, *, incident_id: int | None = None, postmortem_id: int | None = None
                       ) -> dict[str, Any] | None:
        query = select(postmortems)
        if incident_id is not None:
            query = query.where(postmortems.c.incident_id == incident_id)
        if postmortem_id is not None:
            query = query.where(postmortems.c.id == postmortem_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def update_postmortem(self, *, postmortem_id: int, expected_version: int | None, values: Mapping[str, Any],
                          actions_: Sequence[Mapping[str, Any]] | None = None, now: datetime,
                          expected_status: Sequence[str] | None = None,
                          ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """Change a postmortem (bumping its version) and, given ``actions_``, sync its action items.

        ``expected_version`` (optimistic concurrency) and ``expected_status`` guard the update in
        the same statement, so two writers never both succeed: the loser gets StaleUpdate.
        """
        stmt = update(postmortems).where(postmortems.c.id == postmortem_id)
        if expected_version is not None:
            stmt = stmt.where(postmortems.c.version == expected_version)
        if expected_status is not None:
            stmt = stmt.where(postmortems.c.status.in_(list(expected_status)))
        stmt = stmt.values(**values, updated_at=now, version=postmortems.c.version + 1).returning(*postmortems.c)
        with self.transaction() as conn:
            row = conn.execute(stmt).mappings().first()
            if row is None:
                current = conn.execute(select(postmortems.c.version, postmortems.c.status).where(
                    postmortems.c.id == postmortem_id)).first()
                if current is None:
                    raise NotFound(f"no postmortem {postmortem_id}")
                if expected_status is not None and current.status not in expected_status:
                    raise StaleUpdate(f"the postmortem is now {current.status}: re-read it and try again")
                raise StaleUpdate(f"the postmortem changed since version {expected_version} (it is at version "
                                  f"{current.version}): re-read it, merge your change and try again")
            synced = None
            if actions_ is not None:
                synced = self._sync_actions(conn, row["incident_id"], actions_, now)
        return dict(row), synced

    def set_postmortem_accepted(self, *, postmortem_id: int, accepted: list[dict[str, Any]]) -> None:
        """Replace the findings a reviewer accepted (not a content change: the version stays)."""
        with self.transaction() as conn:
            conn.execute(update(postmortems).where(postmortems.c.id == postmortem_id).values(accepted=accepted))

    def list_postmortems(self, *, status: str | Sequence[str] | None = None, q: str | None = None,
                         category: str | None = None, feature: str | None = None, severity: str | None = None,
                         since: datetime | None = None, until: datetime | None = None,
                         incident_ids: Iterable[int] | None = None, limit: int | None = None,
                         ) -> list[dict[str, Any]]:
        """Postmortems matching every filter given. With ``q`` (full-text) each row has a ``rank``
        (higher is better) and rows come best first; else newest first. The date range applies to
        the publication time, or the creation time of an unpublished postmortem."""
        when = func.coalesce(postmortems.c.published_at, postmortems.c.created_at)
        query: Select[Any]
        if q is not None and q.strip():
            hits = self._search_hits(q)
            if hits is None:
                return []
            query = (select(postmortems, hits.c.rank).join(hits, hits.c.id == postmortems.c.id)
                     .order_by(hits.c.rank.desc(), when.desc(), postmortems.c.id.desc()))
        else:
            query = select(postmortems).order_by(when.desc(), postmortems.c.id.desc())
        if isinstance(status, str):
            query = query.where(postmortems.c.status == status)
        elif status is not None:
            query = query.where(postmortems.c.status.in_(list(status)))
        for column, value in ((postmortems.c.category, category), (postmortems.c.feature, feature),
                              (postmortems.c.severity, severity)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(when >= since)
        if until is not None:
            query = query.where(when < until)
        if incident_ids is not None:
            query = query.where(postmortems.c.incident_id.in_(list(incident_ids)))
        if limit is not None:
            query = query.limit(limit)
        params = {"q": self._search_text(q)} if q is not None and q.strip() else {}
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query, params).mappings()]

    def _search_text(self, q: str) -> str | None:
        return q if self.dialect == "postgresql" else fts5_query(q)

    def _search_hits(self, q: str) -> Any:
        """A subquery (id, rank) of the postmortems matching ``q``; None when ``q`` has no word to
        find (only exclusions, or punctuation): that finds nothing, on both databases."""
        if fts5_query(q) is None:
            return None
        return (_PG_SEARCH if self.dialect == "postgresql" else _SQLITE_SEARCH).subquery("hits")

    # -- readers ------------------------------------------------------------------------------
    def record_read(self, *, postmortem_id: int, person: str, now: datetime) -> bool:
        """Record that ``person`` read the postmortem; True the first time (the first read is kept)."""
        stmt = self._insert(postmortem_reads).values(postmortem_id=postmortem_id, person=person, read_at=now)
        stmt = stmt.on_conflict_do_nothing(index_elements=["postmortem_id", "person"]).returning(
            postmortem_reads.c.person)
        with self.transaction() as conn:
            return conn.execute(stmt).first() is not None

    def readers(self, postmortem_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Who read each postmortem and when, in reading order."""
        ids = list(postmortem_ids)
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return out
        query = (select(postmortem_reads).where(postmortem_reads.c.postmortem_id.in_(ids))
                 .order_by(postmortem_reads.c.read_at, postmortem_reads.c.person))
        with self.engine.connect() as conn:
            for r in conn.execute(query).mappings():
                out[r["postmortem_id"]].append({"person": r["person"], "read_at": r["read_at"]})
        return out

    def known_people(self) -> list[str]:
        """Everyone who should read postmortems: people with a login, incident participants, readers."""
        query = union(
            select(users.c.name.label("person")).where(users.c.disabled.is_(False)),
            select(incident_participants.c.person),
            select(postmortem_reads.c.person),
        )
        with self.engine.connect() as conn:
            return sorted(set(conn.execute(query).scalars()))

    def incident_people(self, incident_id: int) -> list[dict[str, Any]]:
        query = (select(incident_participants.c.person, incident_participants.c.role)
                 .where(incident_participants.c.incident_id == incident_id)
                 .order_by(incident_participants.c.added_at, incident_participants.c.person))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- actions ------------------------------------------------------------------------------
    def add_action(self, *, values: Mapping[str, Any]) -> dict[str, Any]:
        with self.transaction() as conn:
            return dict(conn.execute(actions.insert().values(**values).returning(*actions.c)).mappings().one())

    def get_action(self, action_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(actions).where(actions.c.id == action_id)).mappings().first()
        return dict(row) if row else None

    def list_actions(self, *, incident_id: int | None = None, owner: str | None = None,
                     status: str | Sequence[str] | None = None, due_before: datetime | None = None,
                     ) -> list[dict[str, Any]]:
        """Action items by due date. ``due_before`` keeps those due before that time (overdue lists)."""
        query = select(actions).order_by(actions.c.due_at, actions.c.id)
        if incident_id is not None:
            query = query.where(actions.c.incident_id == incident_id)
        if owner is not None:
            query = query.where(actions.c.owner == owner)
        if isinstance(status, str):
            query = query.where(actions.c.status == status)
        elif status is not None:
            query = query.where(actions.c.status.in_(list(status)))
        if due_before is not None:
            query = query.where(actions.c.due_at < due_before)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def update_action(self, *, action_id: int, values: Mapping[str, Any],
                      expected_status: Sequence[str] | None = None) -> dict[str, Any]:
        """Change an action item; with ``expected_status``, only from one of those statuses
        (checked in the same statement: Conflict if it moved meanwhile)."""
        stmt = update(actions).where(actions.c.id == action_id)
        if expected_status is not None:
            stmt = stmt.where(actions.c.status.in_(list(expected_status)))
        with self.transaction() as conn:
            row = conn.execute(stmt.values(**values).returning(*actions.c)).mappings().first()
            if row is None:
                current = conn.execute(select(actions.c.status).where(actions.c.id == action_id)).scalar()
                if current is None:
                    raise NotFound(f"no action {action_id}: see `hotwash action list`")
                raise Conflict(f"action {action_id} is {current}")
        return dict(row)

    def open_action_count(self, incident_number: int) -> int:
        """Action items of the incident still open (an incident cannot close while any is)."""
        query = select(func.count()).select_from(actions).where(
            actions.c.incident_id == incident_number, actions.c.status == "open")
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def actions_to_remind(self, *, overdue_before: datetime, reminded_before: datetime) -> list[dict[str, Any]]:
        """Open action items due before ``overdue_before`` and not reminded since ``reminded_before``."""
        query = (select(actions)
                 .where(actions.c.status == "open", actions.c.due_at < overdue_before,
                        (actions.c.last_reminded_at.is_(None)) | (actions.c.last_reminded_at <= reminded_before))
                 .order_by(actions.c.owner, actions.c.due_at, actions.c.id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def mark_reminded(self, action_ids: Iterable[int], *, now: datetime) -> None:
        ids = list(action_ids)
        if not ids:
            return
        with self.transaction() as conn:
            conn.execute(update(actions).where(actions.c.id.in_(ids)).values(last_reminded_at=now))

    def incident_refs(self, incident_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Title, status, feature and category of each incident (for listings of actions)."""
        ids = sorted(set(incident_ids))
        if not ids:
            return {}
        query = select(incidents.c.id, incidents.c.title, incidents.c.status, incidents.c.feature,
                       incidents.c.category, incidents.c.severity).where(incidents.c.id.in_(ids))
        with self.engine.connect() as conn:
            return {r["id"]: dict(r) for r in conn.execute(query).mappings()}

    def _sync_actions(self, conn: Connection, incident_id: int, items: Sequence[Mapping[str, Any]],
                      now: datetime) -> list[dict[str, Any]]:
        """Bring the incident's action items in line with ``items`` (from the postmortem's table).

        An item with an ``id`` of this incident updates that action; one without is inserted. An
        action missing from ``items`` is kept: actions are closed by marking them done or deferred
        (with a reason), never by deleting a table row. Returns the synced actions in ``items`` order.
        """
        existing = {r["id"]: dict(r) for r in conn.execute(
            select(actions).where(actions.c.incident_id == incident_id)).mappings()}
        out: list[dict[str, Any]] = []
        fields = ("title", "kind", "owner", "due_at", "status", "reason", "link")
        for item in items:
            action_id = item.get("id")
            values = {k: item[k] for k in fields if k in item}
            if action_id is not None and action_id in existing:
                old = existing[action_id]
                changed = {k: v for k, v in values.items() if old.get(k) != v}
                if not changed:
                    out.append(old)
                    continue
                if "status" in changed:
                    changed["closed_at"] = None if changed["status"] == "open" else now
                row = conn.execute(update(actions).where(actions.c.id == action_id)
                                   .values(**changed, updated_at=now).returning(*actions.c)).mappings().one()
            else:
                status = values.get("status") or "open"
                row = conn.execute(actions.insert().values(
                    **{**values, "status": status}, incident_id=incident_id, created_at=now, updated_at=now,
                    closed_at=None if status == "open" else now).returning(*actions.c)).mappings().one()
            out.append(dict(row))
        return out
