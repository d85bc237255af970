"""The tables. Alembic migrations in ``migrations/versions`` create exactly these
(a test compares the migrated schema with this metadata)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
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


# -- the incident workflow (migration 0005) -------------------------------------------------
# Incidents are numbered INC-<id>. `version` is bumped by every change: an update carrying an
# older version is refused (optimistic concurrency), so two responders never silently overwrite.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("feature", String(200), nullable=False),  # the primary affected feature
    Column("features", JSON_, nullable=False),  # every affected feature, primary first
    Column("lead", String(200)),
    Column("opened_by", String(200), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    # Milestones: data time of the first evidence, then wall-clock times of each playbook step.
    Column("started_at", UtcDateTime()),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("contained_at", UtcDateTime()),
    Column("communicated_at", UtcDateTime()),
    Column("diagnosed_at", UtcDateTime()),
    Column("mitigated_at", UtcDateTime()),
    Column("postmortem_at", UtcDateTime()),
    Column("verified_at", UtcDateTime()),
    Column("closed_at", UtcDateTime()),
    Column("blast", JSON_),  # events / sessions / users / spend in the window
    Column("containment", JSON_),  # the mode used and its parameters
    Column("mitigation", JSON_),  # description and link to the change
    Column("version", Integer, nullable=False, server_default="1"),
    Index(None, "feature", "category", "status"),
    Index(None, "status"),
)

incident_participants = Table(
    "incident_participants",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("person", String(200), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
)

# A signal belongs to at most one incident.
incident_signals = Table(
    "incident_signals",
    metadata,
    Column("signal_id", Integer, ForeignKey("signals.id", ondelete="CASCADE"), primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("attached_at", UtcDateTime(), nullable=False),
    Index(None, "incident_id"),
)

# Everything that happens to an incident: transitions, flag changes, status updates, signals,
# notes, diagnosis answers, mitigations, proofs. `kind` says which; `data` keeps the details.
timeline = Table(
    "timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("ts", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON_),
    Index(None, "incident_id", "ts"),
)

# The kill switch of each feature. No row = the manifest's default (enabled).
flags = Table(
    "flags",
    metadata,
    Column("feature", String(200), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("params", JSON_),  # throttle rate/budget, rollback versions
    Column("reason", Text),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
)

# Answers to the category's diagnostic questions: pre-filled from telemetry ("auto"), editable.
diagnosis = Table(
    "diagnosis",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("question", String(64), primary_key=True),
    Column("answer", Text, nullable=False),
    Column("evidence", JSON_),
    Column("source", String(16), nullable=False),  # auto | human
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

# People (UI login) and machine tokens. Only hashes are stored.
users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("password_hash", Text),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(128), primary_key=True),
    Column("user_name", String(200), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# One postmortem per incident; the Markdown text is canonical. Category / feature / severity are
# copied from the incident so the library filters without joins.
postmortems = Table(
    "postmortems",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # draft | in_review | published
    Column("title", Text, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("author", String(200)),
    Column("lead", String(200)),
    Column("category", String(32), nullable=False),
    Column("feature", String(200), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime()),
    Column("accepted", JSON_),  # lint findings a reviewer accepted: [{rule, quote, by, at}]
    Column("version", Integer, nullable=False, server_default="1"),
    Index(None, "status"),
)

postmortem_reads = Table(
    "postmortem_reads",
    metadata,
    Column("postmortem_id", Integer, ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True),
    Column("person", String(200), primary_key=True),
    Column("read_at", UtcDateTime(), nullable=False),
)

# Action items, tracked like bugs until done or deferred with a reason.
actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("title", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # open | done | deferred
    Column("reason", Text),
    Column("link", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime()),
    Column("last_reminded_at", UtcDateTime()),
    Index(None, "status", "due_at"),
    Index(None, "incident_id"),
)

# Regression cases live as YAML files in the user's repo; this is their index.
eval_cases = Table(
    "eval_cases",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("feature", String(200)),
    Column("category", String(32)),
    Column("path", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "incident_id"),
)

# Monitors born from incidents (`hotwash monitor add --from`): rules in the same shape as the
# manifest's `monitors.rules`, run by the same engine.
stored_monitors = Table(
    "stored_monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("feature", String(200), nullable=False),
    Column("rule", JSON_, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", UtcDateTime(), nullable=False),
)

# The verify step's two proofs, kept each time they are computed; the newest of each kind counts.
proofs = Table(
    "proofs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # regression | monitor
    Column("ok", Boolean, nullable=False),
    Column("data", JSON_, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "incident_id", "kind"),
)
