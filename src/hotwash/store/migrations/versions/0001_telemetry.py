"""Telemetry: events, change events, per-minute rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from hotwash.store.types import JSON_, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("env", sa.String(64)),
        sa.Column("session_id", sa.String(255)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("provider", sa.String(100)),
        sa.Column("model", sa.String(200)),
        sa.Column("prompt_version", sa.String(100)),
        sa.Column("input", sa.Text),
        sa.Column("context", JSON_),
        sa.Column("output", sa.Text),
        sa.Column("tool_calls", JSON_),
        sa.Column("tokens_in", sa.BigInteger),
        sa.Column("tokens_out", sa.BigInteger),
        sa.Column("cost_usd", sa.Float),
        sa.Column("cost_source", sa.String(16), nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("escalated", sa.Boolean),
        sa.Column("confidence", sa.Float),
        sa.Column("retry", sa.Integer),
        sa.Column("feedback", sa.Float),
        sa.Column("score", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("untrusted", JSON_),
        sa.Column("tags", JSON_),
        sa.Column("ingested_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_feature_ts", "events", ["feature", "ts"])
    op.create_index("ix_events_session_id_ts", "events", ["session_id", "ts"])

    op.create_table(
        "changes",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.String(200)),
        sa.Column("previous", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("actor", sa.String(200)),
        sa.Column("tags", JSON_),
        sa.Column("ingested_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
    )
    op.create_index("ix_changes_feature_ts", "changes", ["feature", "ts"])

    counters = [
        ("events", sa.Integer),
        ("tokens_in", sa.BigInteger),
        ("tokens_out", sa.BigInteger),
        ("cost_usd", sa.Float),
        ("unpriced", sa.Integer),
        ("escalations", sa.Integer),
        ("errors", sa.Integer),
        ("retries", sa.Integer),
        ("sessions", sa.Integer),
        ("nonprod", sa.Integer),
        ("score_sum", sa.Float),
        ("score_n", sa.Integer),
        ("feedback_sum", sa.Float),
        ("feedback_n", sa.Integer),
        ("confidence_sum", sa.Float),
        ("confidence_n", sa.Integer),
        ("latency_sum", sa.Float),
        ("output_chars", sa.BigInteger),
    ]
    op.create_table(
        "rollups",
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("minute", UtcDateTime(), nullable=False),
        *[sa.Column(name, type_, nullable=False, server_default="0") for name, type_ in counters],
        sa.PrimaryKeyConstraint("feature", "minute", name="pk_rollups"),
    )
    op.create_index("ix_rollups_minute", "rollups", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_rollups_minute", table_name="rollups")
    op.drop_table("rollups")
    op.drop_index("ix_changes_feature_ts", table_name="changes")
    op.drop_table("changes")
    op.drop_index("ix_events_session_id_ts", table_name="events")
    op.drop_index("ix_events_feature_ts", table_name="events")
    op.drop_table("events")
