"""Queries for people, API tokens and web sessions. Only hashes are stored, never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from hotwash.store.base import StoreBase
from hotwash.store.tables import api_tokens, users, web_sessions

# The roles a person or token can hold, least to most trusted (hotwash.web.auth enforces them).
ROLES = ("viewer", "responder", "admin")


class AuthQueries(StoreBase):
    # -- people ------------------------------------------------------------------------------
    def upsert_user(self, *, name: str, role: str, password_hash: str | None, now: datetime) -> None:
        stmt = self._insert(users).values(name=name, role=role, password_hash=password_hash, created_at=now,
                                          disabled=False)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={
            "role": stmt.excluded.role, "password_hash": stmt.excluded.password_hash, "disabled": False})
        with self.transaction() as conn:
            conn.execute(stmt)

    def get_user(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return dict(row) if row else None

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(users).order_by(users.c.name)).mappings()]

    def disable_user(self, name: str) -> bool:
        with self.transaction() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(disabled=True)).rowcount
            conn.execute(delete(web_sessions).where(web_sessions.c.user_name == name))
        return bool(done)

    # -- machine tokens ----------------------------------------------------------------------
    def add_token(self, *, name: str, token_hash: str, role: str, now: datetime) -> int:
        with self.transaction() as conn:
            return int(conn.execute(api_tokens.insert().values(
                name=name, token_hash=token_hash, role=role, created_at=now).returning(api_tokens.c.id)).scalar_one())

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        query = select(api_tokens).where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def touch_token(self, token_id: int, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))

    def list_tokens(self) -> list[dict[str, Any]]:
        query = select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at,
                       api_tokens.c.last_used_at, api_tokens.c.revoked_at).order_by(api_tokens.c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def revoke_token(self, token_id: int, now: datetime) -> bool:
        with self.transaction() as conn:
            return bool(conn.execute(update(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount)

    def auth_configured(self) -> bool:
        """Whether any person or token exists (an unconfigured local install runs open)."""
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(users)).scalar_one()
            n += conn.execute(select(func.count()).select_from(api_tokens)).scalar_one()
        return n > 0

    # -- web sessions ------------------------------------------------------------------------
    def add_session(self, *, id_hash: str, user_name: str, now: datetime, expires_at: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(web_sessions.insert().values(id_hash=id_hash, user_name=user_name, created_at=now,
                                                      expires_at=expires_at))

    def session_user(self, id_hash: str, now: datetime) -> dict[str, Any] | None:
        query = (select(users).join(web_sessions, web_sessions.c.user_name == users.c.name)
                 .where(web_sessions.c.id_hash == id_hash, web_sessions.c.expires_at > now,
                        users.c.disabled.is_(False)))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def drop_session(self, id_hash: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == id_hash))
