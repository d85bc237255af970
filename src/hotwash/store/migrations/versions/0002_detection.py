"""Detection: per-event findings, finding counts in rollups, behaviours, signals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from hotwash.store.types import JSON_, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COUNTERS = ("judged", "hallucinated", "ungrounded", "injections", "injections_followed", "offscope",
             "new_behaviours", "refusals", "max_session_calls")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("findings", JSON_))
    with op.batch_alter_table("rollups") as batch:
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "behaviours",
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("first_seen", UtcDateTime(), nullable=False),
        sa.Column("first_event", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("feature", "kind", "name", name="pk_behaviours"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(100), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("start", UtcDateTime(), nullable=False),
        sa.Column("detected_at", UtcDateTime(), nullable=False),
        sa.Column("evidence", JSON_, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", JSON_),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
        sa.UniqueConstraint("monitor", "feature", "start", name="uq_signals_monitor_feature_start"),
    )
    op.create_index("ix_signals_feature_detected_at", "signals", ["feature", "detected_at"])


def downgrade() -> None:
    op.drop_index("ix_signals_feature_detected_at", table_name="signals")
    op.drop_table("signals")
    op.drop_table("behaviours")
    with op.batch_alter_table("rollups") as batch:
        for name in reversed(_COUNTERS):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("findings")
