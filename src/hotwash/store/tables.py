"""The tables. Alembic migrations in ``migrations/versions`` create exactly these
(a test compares the migrated schema with this metadata)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from hotwash.store.types import JSON_, UtcDateTime

# Deterministic constraint names, so migrations can drop what they created on every dialect.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One AI call (PRODUCT.md §7). `id` is the client's idempotency key.
events = Table(
    "events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("feature", String(200), nullable=False),
    Column("env", String(64)),
    Column("session_id", String(255)),
    Column("user_id", String(255)),
    Column("provider", String(100)),
    Column("model", String(200)),
    Column("prompt_version", String(100)),
    Column("input", Text),
    Column("context", JSON_),
    Column("output", Text),
    Column("tool_calls", JSON_),
    Column("tokens_in", BigInteger),
    Column("tokens_out", BigInteger),
    Column("cost_usd", Float),
    # reported (sent by the client), priced (by genai-prices), unpriced (model unknown to the
    # price data: counted, never priced at zero) or none (no model or token counts to price).
    Column("cost_source", String(16), nullable=False),
    Column("latency_ms", Float),
    Column("escalated", Boolean),
    Column("confidence", Float),
    Column("retry", Integer),
    Column("feedback", Float),
    Column("score", Float),
    Column("error", Text),
    Column("untrusted", JSON_),
    Column("tags", JSON_),
    Column("ingested_at", UtcDateTime(), nullable=False),
    # Detectors read one feature over a time range, and whole sessions (loops).
    Index(None, "feature", "ts"),
    Index(None, "session_id", "ts"),
)

# Deploys, prompt/model/config/eval-set/guardrail changes: what diagnosis correlates with.
changes = Table(
    "changes",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("feature", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("version", String(200)),
    Column("previous", String(200)),
    Column("description", Text),
    Column("link", Text),
    Column("actor", String(200)),
    Column("tags", JSON_),
    Column("ingested_at", UtcDateTime(), nullable=False),
    Index(None, "feature", "ts"),
)

# Per feature, per minute aggregates maintained at ingest, so monitors never rescan raw events.
rollups = Table(
    "rollups",
    metadata,
    Column("feature", String(200), primary_key=True),
    Column("minute", UtcDateTime(), primary_key=True),
    Column("events", Integer, nullable=False, server_default="0"),
    Column("tokens_in", BigInteger, nullable=False, server_default="0"),
    Column("tokens_out", BigInteger, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    Column("unpriced", Integer, nullable=False, server_default="0"),
    Column("escalations", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("retries", Integer, nullable=False, server_default="0"),
    # Distinct sessions in the minute: recounted from `events` for each minute a batch touches
    # (a count cannot be merged across batches, the index on (feature, ts) makes it cheap).
    Column("sessions", Integer, nullable=False, server_default="0"),
    Column("nonprod", Integer, nullable=False, server_default="0"),
    Column("score_sum", Float, nullable=False, server_default="0"),
    Column("score_n", Integer, nullable=False, server_default="0"),
    Column("feedback_sum", Float, nullable=False, server_default="0"),
    Column("feedback_n", Integer, nullable=False, server_default="0"),
    Column("confidence_sum", Float, nullable=False, server_default="0"),
    Column("confidence_n", Integer, nullable=False, server_default="0"),
    Column("latency_sum", Float, nullable=False, server_default="0"),
    Column("output_chars", BigInteger, nullable=False, server_default="0"),
    Index(None, "minute"),
)
