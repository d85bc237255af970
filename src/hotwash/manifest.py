"""The feature manifest, ``hotwash.yaml``: what each AI feature is allowed to do and expects.

Validated with pydantic; an invalid file is rejected with the dotted path of the bad key and
what was expected there, e.g. ``features.support-bot.escalation.baseline_rate: Input should be
less than or equal to 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hotwash.errors import ConfigError

Mode = Literal["enabled", "disabled", "human", "rollback", "throttle"]
Category = Literal["hallucination", "prompt_injection", "drift", "runaway_cost", "escalation_overload", "scope_creep"]
Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]


class _Strict(BaseModel):
    # A typo in a manifest key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class Capabilities(_Strict):
    """What the feature may do. ``None`` means undeclared: hotwash learns what is normal and
    reports behaviours that appear later; a list (even empty) is an allowlist."""

    tools: list[str] | None = None
    outputs: list[str] | None = None


class Escalation(_Strict):
    baseline_rate: float | None = Field(default=None, ge=0, le=1)


class Budget(_Strict):
    daily_usd: float | None = Field(default=None, gt=0)
    weekly_growth_max: float = Field(default=0.10, gt=0)


class RollbackTarget(_Strict):
    prompt_version: str | None = None
    model: str | None = None


class Containment(_Strict):
    fallback: Mode = "human"
    default: Mode = "enabled"
    rollback_to: RollbackTarget | None = None
    throttle_rps: float | None = Field(default=None, gt=0)
    # Auto-containment: on a signal of this category, set this mode without waiting for a person
    # (recorded on the timeline like a human action, actor "hotwash (auto)").
    auto: dict[Category, Mode] = Field(default_factory=dict)


class Feature(_Strict):
    owner: str | None = None
    # Secret strings planted in the system prompt: an output containing one is a leak.
    canaries: list[str] = Field(default_factory=list)
    description: str | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    grounding: Literal["required", "optional", "none"] = "optional"
    escalation: Escalation = Field(default_factory=Escalation)
    budget: Budget = Field(default_factory=Budget)
    containment: Containment = Field(default_factory=Containment)


def _minutes(value: object) -> object:
    """'30m', '2h', '7d' or a number of minutes -> minutes."""
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"m": 1, "h": 60, "d": 1440, "w": 10080}
        if text[-1:] in units and text[:-1].strip().isdigit():
            return int(text[:-1]) * units[text[-1]]
        if text.isdigit():
            return int(text)
        raise ValueError(f"expected a duration like '30m', '2h' or '7d', got {value!r}")
    return value


Minutes = Annotated[int, BeforeValidator(_minutes), Field(gt=0)]
Metric = Literal[
    "events", "cost_usd", "tokens", "escalation_rate", "error_rate", "retry_rate", "refusal_rate",
    "hallucination_rate", "ungrounded", "injections", "injections_followed", "offscope", "new_behaviours",
    "score_mean", "feedback_mean", "confidence_mean", "output_chars_mean", "latency_ms_mean", "nonprod_share",
    "max_session_calls",
]


class Rule(_Strict):
    """A user's own monitor: fires when ``metric`` over ``window`` compares true to ``threshold``."""

    name: str = Field(pattern=r"^[a-z0-9_.-]+$")
    category: Category
    metric: Metric
    window: Minutes = 30
    comparison: Literal[">", ">=", "<", "<="] = ">="
    threshold: float
    min_volume: int = Field(default=0, ge=0)
    severity: Severity = "SEV3"
    features: list[str] | None = None


class MonitorSettings(_Strict):
    """Defaults that work without tuning; every number can be overridden here."""

    cooldown: Minutes = 60
    hallucination_window: Minutes = 30
    hallucination_min_judged: int = Field(default=20, ge=1)
    hallucination_min_rate: float = Field(default=0.05, gt=0, le=1)
    ungrounded_min: int = Field(default=5, ge=1)
    injection_attempts_min: int = Field(default=10, ge=1)
    escalation_windows: list[Minutes] = Field(default_factory=lambda: [15, 60])
    escalation_min_events: int = Field(default=30, ge=1)
    escalation_min_lift: float = Field(default=0.10, gt=0)
    p_value: float = Field(default=1e-6, gt=0, lt=1)
    cost_spike_window: Minutes = 30
    cost_spike_ratio: float = Field(default=3.0, gt=1)
    cost_spike_min_usd: float = Field(default=0.5, ge=0)
    loop_calls_per_minute: int = Field(default=8, ge=2)
    loop_minutes: int = Field(default=3, ge=1)
    retry_rate: float = Field(default=0.2, gt=0, le=1)
    nonprod_min: int = Field(default=10, ge=1)
    drift_recent: Minutes = 1440
    drift_baseline: Minutes = 14 * 1440
    drift_min_change: float = Field(default=0.10, gt=0)
    new_behaviour_learning: Minutes = 1440
    rules: list[Rule] = Field(default_factory=list)


# -- notify: where alerts go ---------------------------------------------------------------------
# Secrets (a Slack webhook URL carries its token, a signing secret, a PagerDuty routing key) are
# never written in hotwash.yaml, which lives in a repository: a channel names the environment
# variable that holds each one, and `hotwash.notify.build_notifiers` reads it.

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+")]

# Keys someone might write a secret under, and the key that names its environment variable instead.
_INLINE_SECRETS = {"secret": "secret_env", "routing_key": "routing_key_env", "webhook_url": "url_env",
                   "token": "secret_env"}


def _check_channel(value: object) -> object:
    """Refuse secrets written inline, with a message that says where they go instead."""
    if not isinstance(value, dict):
        return value
    for key, env_key in _INLINE_SECRETS.items():
        if key in value:
            raise ValueError(f"{key!r} must not be written in hotwash.yaml: put it in an environment variable "
                             f"and give that variable's name as {env_key!r}")
    kind = value.get("type")
    if kind == "slack" and "url" in value:
        raise ValueError("a Slack webhook URL is a secret: put it in an environment variable and give that "
                         "variable's name as 'url_env'")
    if kind in {"webhook", "alertmanager"} and ("url" in value) == ("url_env" in value):
        raise ValueError(f"this {kind} channel needs exactly one of 'url' and 'url_env'")
    return value


class _Channel(_Strict):
    # Unique among the channels; defaults to the type. Deliveries are recorded under this name.
    name: str | None = Field(default=None, pattern=r"^[a-z0-9_.-]+$")
    # The least severe signal this channel is told about (SEV1 is the most severe).
    min_severity: Severity = "SEV4"


class SlackChannel(_Channel):
    type: Literal["slack"]
    url_env: EnvName


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: HttpUrl | None = None
    url_env: EnvName | None = None
    # Unsigned webhooks are not offered: a receiver must be able to tell hotwash from anyone else.
    secret_env: EnvName


class PagerDutyChannel(_Channel):
    type: Literal["pagerduty"]
    routing_key_env: EnvName
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class AlertmanagerChannel(_Channel):
    type: Literal["alertmanager"]
    url: HttpUrl | None = None
    url_env: EnvName | None = None


NotifyChannel = Annotated[
    SlackChannel | WebhookChannel | PagerDutyChannel | AlertmanagerChannel,
    Field(discriminator="type"),
    BeforeValidator(_check_channel),
]


def _unique_channel_names(value: object) -> object:
    if isinstance(value, list):
        names = [c.get("name") or c.get("type") for c in value if isinstance(c, dict)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"channel names must be unique, {twice[0]!r} is used twice: give each a 'name'")
    return value


class NotifySettings(_Strict):
    """Where alerts go (``notify:`` in hotwash.yaml). No channels: nobody is alerted."""

    channels: Annotated[list[NotifyChannel], BeforeValidator(_unique_channel_names)] = Field(default_factory=list)
    # Signals of one feature and category within this window become one alert (no storms).
    group_window: Minutes = 5
    # Where people open hotwash: alerts link to it. None: alerts carry no link.
    base_url: HttpUrl | None = None


class IncidentSettings(_Strict):
    """When signals become incidents, and the postmortem clock."""

    # A signal opens an incident when its severity is at least this (SEV1 highest) for its category;
    # categories not listed use `open_min_severity`. Lower-severity signals are only stored.
    open_min_severity: Severity = "SEV3"
    open_on: dict[Category, Severity] = Field(default_factory=dict)
    # Days from detection to the postmortem's due date (the playbook says 5-7).
    postmortem_due_days: int = Field(default=7, ge=5, le=7)


class Manifest(_Strict):
    version: Literal[1] = 1
    features: dict[str, Feature] = Field(default_factory=dict)
    monitors: MonitorSettings = Field(default_factory=MonitorSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)


STARTER_MANIFEST = """\
# hotwash feature manifest: one entry per AI feature whose telemetry reaches hotwash.
# Reference: docs/manifest.md. Keys are checked; a typo is an error, not a silent default.
version: 1
features:
  support-bot:
    owner: support-ai
    description: RAG answers to customer questions from the help-centre knowledge base
    capabilities: {tools: [search_kb, lookup_order], outputs: [reply]}
    grounding: required
    escalation: {baseline_rate: 0.15}
    budget: {daily_usd: 200, weekly_growth_max: 0.10}
    containment: {fallback: human, rollback_to: {prompt_version: v11, model: gpt-4o-mini}}
"""


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict | list) and got is not None else ""
        lines.append(f"{source}: {loc}: {err['msg']}{shown}")
    return "\n".join(lines)


def parse_manifest(text: str, *, source: str = "hotwash.yaml") -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'features' key, got {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from exc


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``path``; a missing file is an empty manifest (every feature on defaults)."""
    if not path.exists():
        return Manifest()
    return parse_manifest(path.read_text(encoding="utf-8"), source=str(path))


def write_starter_manifest(path: Path) -> bool:
    """Write the starter manifest unless a file is already there. Returns whether it wrote."""
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(STARTER_MANIFEST)
    except FileExistsError:
        return False
    return True
