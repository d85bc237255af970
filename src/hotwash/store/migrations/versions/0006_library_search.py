"""Library search: full-text index over postmortems' title and Markdown.

SQLite: an FTS5 table with external content (``postmortems`` keeps the text; the index holds only
tokens), kept in step by triggers, so every write path — the service, an import, a cascade delete
from ``incidents`` — updates it. The porter stemmer lets "deploys" find "deploy", as PostgreSQL's
``english`` configuration does.

PostgreSQL: a GIN expression index on the same document; queries must spell the expression exactly
as here (``store/postmortems.py``) for the planner to use it.

These objects are dialect-specific and not part of ``tables.metadata``; ``store.postmortems.SEARCH_OBJECTS``
names them so the schema comparison test can leave them out. A later migration that rebuilds
``postmortems`` on SQLite (batch_alter_table) must re-create the triggers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SQLITE_UP = [
    "CREATE VIRTUAL TABLE postmortems_fts USING fts5("
    "title, markdown, content='postmortems', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER postmortems_fts_ai AFTER INSERT ON postmortems BEGIN "
    "INSERT INTO postmortems_fts(rowid, title, markdown) VALUES (new.id, new.title, new.markdown); END",
    "CREATE TRIGGER postmortems_fts_ad AFTER DELETE ON postmortems BEGIN "
    "INSERT INTO postmortems_fts(postmortems_fts, rowid, title, markdown) "
    "VALUES ('delete', old.id, old.title, old.markdown); END",
    "CREATE TRIGGER postmortems_fts_au AFTER UPDATE OF title, markdown ON postmortems BEGIN "
    "INSERT INTO postmortems_fts(postmortems_fts, rowid, title, markdown) "
    "VALUES ('delete', old.id, old.title, old.markdown); "
    "INSERT INTO postmortems_fts(rowid, title, markdown) VALUES (new.id, new.title, new.markdown); END",
    # Index the postmortems written before this revision.
    "INSERT INTO postmortems_fts(postmortems_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS postmortems_fts_au",
    "DROP TRIGGER IF EXISTS postmortems_fts_ad",
    "DROP TRIGGER IF EXISTS postmortems_fts_ai",
    "DROP TABLE IF EXISTS postmortems_fts",
]
_PG_UP = [
    "CREATE INDEX ix_postmortems_search ON postmortems "
    "USING gin (to_tsvector('english', title || ' ' || markdown))",
]
_PG_DOWN = ["DROP INDEX IF EXISTS ix_postmortems_search"]


def _run(statements: dict[str, list[str]]) -> None:
    for sql in statements.get(op.get_bind().dialect.name, []):
        op.execute(sql)


def upgrade() -> None:
    _run({"sqlite": _SQLITE_UP, "postgresql": _PG_UP})


def downgrade() -> None:
    _run({"sqlite": _SQLITE_DOWN, "postgresql": _PG_DOWN})
