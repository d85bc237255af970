"""The feature manifest, ``hotwash.yaml``: what each AI feature is allowed to do and expects.

Validated with pydantic; an invalid file is rejected with the dotted path of the bad key and
what was expected there, e.g. ``features.support-bot.escalation.baseline_rate: Input should be
less than or equal to 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotwash.errors import ConfigError

Mode = Literal["enabled", "disabled", "human", "rollback", "throttle"]


class _Strict(BaseModel):
    # A typo in a manifest key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class Capabilities(_Strict):
    tools: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=lambda: ["reply"])


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


class Feature(_Strict):
    owner: str | None = None
    description: str | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    grounding: Literal["required", "optional", "none"] = "optional"
    escalation: Escalation = Field(default_factory=Escalation)
    budget: Budget = Field(default_factory=Budget)
    containment: Containment = Field(default_factory=Containment)


class Manifest(_Strict):
    version: Literal[1] = 1
    features: dict[str, Feature] = Field(default_factory=dict)


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
