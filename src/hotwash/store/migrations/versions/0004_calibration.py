"""Calibration: per-minute confidence-bin counts for expected calibration error (ECE).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BINS = 5
COLUMNS = [(f"conf_{part}_{b}", sa.Float if part == "sum" else sa.Integer)
           for b in range(BINS) for part in ("n", "sum", "ok")]


def upgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
