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
    UniqueConstraint,
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
    # Per-event check results (flagged or scored findings), written at ingest.
    Column("findings", JSON_),
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

CONFIDENCE_BINS = 5

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
    # Per-category finding counts of the per-event checks (migration 0002).
    Column("judged", Integer, nullable=False, server_default="0"),
    Column("hallucinated", Integer, nullable=False, server_default="0"),
    Column("ungrounded", Integer, nullable=False, server_default="0"),
    Column("injections", Integer, nullable=False, server_default="0"),
    Column("injections_followed", Integer, nullable=False, server_default="0"),
    Column("offscope", Integer, nullable=False, server_default="0"),
    Column("new_behaviours", Integer, nullable=False, server_default="0"),
    Column("refusals", Integer, nullable=False, server_default="0"),
    # Most calls by one session in the minute (a loop shows as a session that never stops);
    # recounted from `events` like `sessions`.
    Column("max_session_calls", Integer, nullable=False, server_default="0"),
    # Confidence calibration (migration 0004): per confidence quintile b, the calls, the sum of
    # their confidence, and how many the AI handled (not escalated, no negative feedback).
    *[Column(f"conf_{part}_{b}", Float if part == "sum" else Integer, nullable=False, server_default="0")
      for b in range(CONFIDENCE_BINS) for part in ("n", "sum", "ok")],
    Index(None, "minute"),
)

# The first time a feature showed each behaviour (a tool name, an output kind): what makes
# "a new behaviour appeared" a fact of the data rather than of the order it arrived in.
behaviours = Table(
    "behaviours",
    metadata,
    Column("feature", String(200), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("first_event", String(255), nullable=False),
)

# What the monitors found. One row per (monitor, feature, start): re-running a backtest, or the
# live engine and a backtest over the same data, never stores a signal twice.
signals = Table(
    "signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(100), nullable=False),
    Column("category", String(32), nullable=False),
    Column("feature", String(200), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("start", UtcDateTime(), nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("evidence", JSON_, nullable=False),
    Column("summary", Text, nullable=False),
    Column("details", JSON_),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("monitor", "feature", "start"),
    Index(None, "feature", "detected_at"),
)

# Where each signal's alert went: one row per (signal, channel) with the final outcome of its
# delivery — sent, failed (after retries; the reason kept) or dropped (the queue was full).
deliveries = Table(
    "deliveries",
    metadata,
    Column("signal_id", Integer, primary_key=True, autoincrement=False),
    Column("channel", String(100), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The UI and health checks count what did not get through.
    Index(None, "status"),
)
