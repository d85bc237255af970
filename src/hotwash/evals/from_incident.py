"""Regression cases born from an incident (``hotwash eval add --from INC-3``).

The evidence events of the incident's signals are the material: each chosen event becomes a case
with its input, context, offered tools and the bad output it recorded, plus assertions suggested
for the incident's category:

- ``hallucination``: grounded in the given context;
- ``prompt_injection``: must not call the off-manifest tool it called, must not leak the canary,
  only the manifest's tools;
- ``scope_creep``: only the manifest's tools (or the tools the feature used before the incident);
- ``runaway_cost``: token / cost / tool-call ceilings from the feature's pre-incident p95;
- ``escalation_overload``: must (not) escalate;
- ``drift``: grounded, not a refusal, an output length like before the incident.

Each suggestion is checked against the recorded output: a case must fail on the bad answer it was
born from (that is what it guards against). Where none of the category's assertions does, a
``not_contains`` of the bad answer's opening is added, and the proposal says so — review it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotwash.detect.checks import is_refusal
from hotwash.errors import InvalidValue
from hotwash.evals.assertions import evaluate_case
from hotwash.evals.cases import Case, digest, write_case
from hotwash.evals.targets import recorded_output
from hotwash.manifest import Feature, Manifest

if TYPE_CHECKING:
    from hotwash.store import Store

__all__ = ["Proposal", "add_from_incident", "propose_cases"]

# Pre-incident traffic read for baselines (p95 tokens, usual tools, usual output length).
BASELINE_DAYS = 7
BASELINE_MAX_EVENTS = 5000
MAX_EVIDENCE = 2000
# Ceilings leave this headroom over the pre-incident p95, so healthy calls pass.
HEADROOM = 1.25
REFUSAL_PATTERN = (r"^\W*(?:i'?m\s+(?:sorry|afraid)|i\s+apologi[sz]e|sorry,?\s+(?:but\s+)?i|unfortunately,?\s+i|"
                   r"i\s+(?:can(?:no|')?t|cannot|am\s+(?:not\s+able|unable)|won'?t)\s+(?:help|assist|do|provide|"
                   r"comply|answer)|as\s+an\s+ai\b)")


@dataclass(slots=True)
class Proposal:
    """A case proposed from one evidence event; ``catches``: it fails on the recorded output."""

    case: Case
    event_id: str
    catches: bool
    notes: list[str] = field(default_factory=list)


# -- choosing the events ---------------------------------------------------------------------------


def _findings(event: Mapping[str, Any], category: str) -> list[Mapping[str, Any]]:
    return [f for f in event.get("findings") or () if f.get("category") == category]


def _tokens(event: Mapping[str, Any]) -> int | None:
    tin, tout = event.get("tokens_in"), event.get("tokens_out")
    return None if tin is None and tout is None else (tin or 0) + (tout or 0)


def _tool_names(event: Mapping[str, Any]) -> list[str]:
    return [c.get("name") for c in event.get("tool_calls") or () if isinstance(c, Mapping) and c.get("name")]


def _weight(event: Mapping[str, Any], category: str) -> float:
    """How clearly one event shows the failure (higher first)."""
    found = _findings(event, category)
    top = max((float(f.get("score") or 0) + (1.0 if f.get("flagged") else 0.0) for f in found), default=0.0)
    if category == "prompt_injection":
        top += 2.0 * any(f.get("check") == "injection.followed" for f in found)
    elif category == "runaway_cost":
        top = float(_tokens(event) or 0) + 1000 * float(event.get("cost_usd") or 0)
    elif category == "escalation_overload":
        top = (2.0 if event.get("escalated") else 0.0) + (1 - float(event.get("confidence") or 1.0))
    elif category == "drift":
        score = event.get("score")
        feedback = event.get("feedback")
        top = (1.0 if is_refusal(event.get("output")) else 0.0) - float(score if score is not None else 0.5) \
            - float(feedback or 0)
    return top


def _choose(events: Sequence[Mapping[str, Any]], category: str, limit: int) -> list[Mapping[str, Any]]:
    ranked = sorted(events, key=lambda e: (-_weight(e, category), e["ts"], e["id"]))
    chosen: list[Mapping[str, Any]] = []
    inputs: set[str] = set()
    for event in ranked:
        key = (event.get("input") or "").strip().casefold()
        if key and key in inputs:
            continue  # one case per distinct input: the same question twice adds nothing
        inputs.add(key)
        chosen.append(event)
        if len(chosen) >= limit:
            break
    return chosen


# -- baselines -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Baseline:
    tokens_p95: int | None = None
    cost_p95: float | None = None
    tool_calls_p95: int | None = None
    output_chars_median: int | None = None
    tools: list[str] = field(default_factory=list)
    events: int = 0

    @classmethod
    def of(cls, events: Sequence[Mapping[str, Any]]) -> Baseline:
        tokens = sorted(t for e in events if (t := _tokens(e)) is not None)
        costs = sorted(float(e["cost_usd"]) for e in events if e.get("cost_usd") is not None)
        calls = sorted(len(e.get("tool_calls") or ()) for e in events)
        chars = sorted(len(e["output"]) for e in events if e.get("output"))
        tools = list(dict.fromkeys(n for e in events for n in _tool_names(e)))
        return cls(tokens_p95=int(_p(tokens, 0.95)) if tokens else None,
                   cost_p95=_p(costs, 0.95) if costs else None,
                   tool_calls_p95=int(_p(calls, 0.95)) if calls else None,
                   output_chars_median=int(_p(chars, 0.5)) if chars else None,
                   tools=tools, events=len(events))


def _p(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of sorted values."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


# -- suggesting assertions -------------------------------------------------------------------------


def _suggest(category: str, event: Mapping[str, Any], spec: Feature, base: Baseline,
             notes: list[str]) -> list[dict[str, Any]]:
    output = event.get("output") or ""
    context = [d for d in event.get("context") or () if isinstance(d, Mapping) and (d.get("text") or "").strip()]
    called = list(dict.fromkeys(_tool_names(event)))
    allowed = spec.capabilities.tools
    out: list[dict[str, Any]] = []
    if category == "hallucination":
        if context:
            out.append({"type": "grounded_in_context",
                        "description": "every claim must be supported by the retrieved documents"})
        else:
            notes.append("the call retrieved no context, so grounding cannot be asserted")
    elif category == "prompt_injection":
        off = [t for t in called if allowed is not None and t not in allowed] or \
              [t for t in called if allowed is None and base.events and t not in base.tools]
        if off:
            out.append({"type": "tool_denylist", "tools": off,
                        "description": "the injected instruction made the model call this tool"})
        leaked = [c for c in spec.canaries if c and c.casefold() in output.casefold()]
        if leaked:
            out.append({"type": "not_contains", "value": leaked if len(leaked) > 1 else leaked[0],
                        "ignore_case": True, "description": "the canary of the system prompt must never leak"})
        if allowed is not None:
            out.append({"type": "tool_allowlist", "tools": list(allowed)})
    elif category == "scope_creep":
        if allowed is not None:
            out.append({"type": "tool_allowlist", "tools": list(allowed),
                        "description": "only the tools declared in the manifest's capabilities"})
        elif base.tools:
            out.append({"type": "tool_allowlist", "tools": base.tools,
                        "description": "only the tools the feature used before the incident"})
            notes.append("the manifest declares no tools: the allowlist is the tools seen before the incident")
        elif called:
            out.append({"type": "tool_denylist", "tools": called})
    elif category == "runaway_cost":
        used = _tokens(event)
        if used is not None:
            ceiling = math.ceil(base.tokens_p95 * HEADROOM) if base.tokens_p95 else max(1, used // 2)
            origin = f"pre-incident p95 {base.tokens_p95:,} x {HEADROOM}" if base.tokens_p95 else "half the recorded"
            out.append({"type": "max_tokens", "value": ceiling, "description": f"ceiling: {origin}"})
        cost = event.get("cost_usd")
        if cost is not None and base.cost_p95:
            out.append({"type": "max_cost_usd", "value": round(base.cost_p95 * HEADROOM, 6),
                        "description": f"ceiling: pre-incident p95 ${base.cost_p95:.6f} x {HEADROOM}"})
        n_calls = len(event.get("tool_calls") or ())
        if base.tool_calls_p95 is not None and n_calls > base.tool_calls_p95 + 1:
            out.append({"type": "max_tool_calls", "value": base.tool_calls_p95 + 1})
    elif category == "escalation_overload":
        escalated = bool(event.get("escalated"))
        out.append({"type": "must_escalate", "value": not escalated,
                    "description": "this case was handed to a person during the overload; the feature should "
                                   "answer it" if escalated else "this case needs a person"})
    elif category == "drift":
        if is_refusal(output):
            out.append({"type": "not_regex", "value": REFUSAL_PATTERN, "ignore_case": True,
                        "description": "the feature answered this before the decline; it must not refuse"})
        if context:
            out.append({"type": "grounded_in_context"})
        median = base.output_chars_median
        if median and output and len(output) < median // 2:
            out.append({"type": "length", "min": median // 2,
                        "description": f"answers were ~{median} characters before the incident"})
        elif median and len(output) > median * 2:
            out.append({"type": "length", "max": median * 2,
                        "description": f"answers were ~{median} characters before the incident"})
    return out


def _opening(output: str) -> str | None:
    """A distinctive piece of the bad output: its first sentence, at most 80 characters."""
    text = " ".join(output.split())
    if not text:
        return None
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first[:80].rstrip()


def _context_docs(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for i, d in enumerate(event.get("context") or ()):
        if isinstance(d, Mapping) and isinstance(d.get("text"), str):
            docs.append({k: v for k, v in (("id", d.get("id") or f"doc-{i}"), ("text", d["text"]),
                                           ("source", d.get("source"))) if v is not None})
    return docs


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:limit] or "event"


def _proposal(incident: Mapping[str, Any], event: Mapping[str, Any], spec: Feature, base: Baseline) -> Proposal:
    category = incident["category"]
    notes: list[str] = []
    suggested = _suggest(category, event, spec, base, notes)
    called = list(dict.fromkeys(_tool_names(event)))
    allowed = spec.capabilities.tools
    recorded = {
        "output": event.get("output"),
        "tool_calls": [{k: c[k] for k in ("name", "arguments") if c.get(k) is not None}
                       for c in event.get("tool_calls") or () if isinstance(c, Mapping) and c.get("name")],
        "tokens_in": event.get("tokens_in"), "tokens_out": event.get("tokens_out"),
        "cost_usd": event.get("cost_usd"), "escalated": event.get("escalated"), "event_id": event["id"],
        "ts": event["ts"], "model": event.get("model"), "prompt_version": event.get("prompt_version"),
    }
    tools: dict[str, Any] = {}
    if allowed is not None:
        tools["allowed"] = list(allowed)
    declared = list(dict.fromkeys([*(allowed or ()), *called]))
    if declared and declared != list(allowed or ()):
        tools["declared"] = declared
    raw: dict[str, Any] = {
        "version": 1,
        "id": f"inc-{incident['number']}-{category}-{_slug(str(event['id']))}",
        "description": f"{incident['id']}: {incident['title']} (event {event['id']})",
        "incident": incident["id"], "feature": event["feature"], "category": category,
        "input": event.get("input"), "context": _context_docs(event), "tools": tools,
        "recorded": {k: v for k, v in recorded.items() if v is not None},
        "assertions": suggested,
    }
    catches = False
    if suggested:
        case = Case.model_validate(raw)
        catches = evaluate_case(case, recorded_output(case)).status == "failed"
    if not catches:
        opening = _opening(event.get("output") or "")
        if opening:
            raw["assertions"] = [*suggested, {"type": "not_contains", "value": opening, "ignore_case": True,
                                              "description": "the bad answer recorded during the incident"}]
            notes.append("no category assertion fails on the recorded output; added a not_contains of its "
                         "opening: review it")
        elif not suggested:
            raise InvalidValue(f"event {event['id']} has no output and nothing to assert for {category}",
                               field="event")
        case = Case.model_validate(raw)
        catches = evaluate_case(case, recorded_output(case)).status == "failed"
    if not catches:
        notes.append("this case PASSES on the recorded output, so it does not catch the failure: edit its "
                     "assertions before relying on it")
    return Proposal(case=case, event_id=str(event["id"]), catches=catches, notes=notes)


def propose_cases(incident: Mapping[str, Any], events: Sequence[Mapping[str, Any]], manifest: Manifest, *,
                  baseline: Sequence[Mapping[str, Any]] = (), limit: int = 3) -> list[Proposal]:
    """Cases for ``incident`` (its public dict) from its evidence ``events`` (store rows), with
    assertions suggested for its category; ``baseline``: the feature's events before the incident."""
    if limit < 1:
        raise InvalidValue(f"limit must be at least 1, got {limit}", field="limit")
    category = incident["category"]
    usable = [e for e in events if e.get("input") is not None or e.get("output") is not None]
    proposals = []
    for event in _choose(usable, category, limit):
        spec = manifest.features.get(event["feature"], Feature())
        feature_base = Baseline.of([b for b in baseline if b.get("feature") == event["feature"]])
        proposals.append(_proposal(incident, event, spec, feature_base))
    return proposals


# -- from the store to files -----------------------------------------------------------------------


def _evidence(store: Store, incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(i for s in incident.get("signals") or () for i in s.get("evidence") or ()))
    rows = store.get_events(ids[:MAX_EVIDENCE]) if ids else {}
    events = [rows[i] for i in ids if i in rows]
    if events:
        return events
    # No stored evidence (e.g. a signal over rollups only): the feature's calls in the incident window.
    start = incident.get("started_at") or incident["detected_at"]
    end = max(incident["detected_at"], start) + timedelta(minutes=1)
    return _read(store, incident["feature"], start, end)


def _read(store: Store, feature: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    it = store.iter_events(feature=feature, since=since, until=until)
    try:
        return list(itertools.islice(it, BASELINE_MAX_EVENTS))
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def add_from_incident(store: Store, manifest: Manifest, ref: int | str, *, directory: Path, limit: int = 3,
                      force: bool = False, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write case files for incident ``ref`` into ``directory`` and index them. Returns, per case,
    ``{id, path, digest, event_id, catches, notes, assertions, written}``; a file already there is
    kept (``written: false``) unless ``force``."""
    from hotwash.incidents.service import get_incident

    incident = get_incident(store, ref)
    now = now or datetime.now(UTC)
    events = _evidence(store, incident)
    if not events:
        raise InvalidValue(f"{incident['id']} has no stored evidence events to build a case from "
                           "(its signals name none, and no call of its feature falls in its window)",
                           field="incident")
    start = incident.get("started_at") or incident["detected_at"]
    evidence_ids = {e["id"] for e in events}
    baseline = [e for f in dict.fromkeys(e["feature"] for e in events)
                for e in _read(store, f, start - timedelta(days=BASELINE_DAYS), start) if e["id"] not in evidence_ids]
    proposals = propose_cases(incident, events, manifest, baseline=baseline, limit=limit)
    out = []
    for p in proposals:
        path = directory / f"{p.case.id}.yaml"
        header = (f"Regression case from {incident['id']} ({incident['category']}): {incident['title']}\n"
                  f"Written by `hotwash eval add --from {incident['id']}` on {now:%Y-%m-%d}. The assertions are "
                  "suggestions:\nreview them. The case must FAIL on the recorded output and PASS on the fixed "
                  "feature.\nFormat: docs/evals.md")
        written = True
        if path.exists() and not force:
            written = False
            file_digest = digest(path.read_bytes())
        else:
            file_digest = write_case(p.case, path, header=header, overwrite=force)
        store.index_eval_case(id=p.case.id, incident_id=incident["number"], feature=p.case.feature,
                              category=p.case.category, path=_relative(path), digest=file_digest, now=now)
        out.append({"id": p.case.id, "path": _relative(path), "digest": file_digest, "event_id": p.event_id,
                    "catches": p.catches, "notes": p.notes, "written": written,
                    "assertions": [a.type for a in p.case.assertions]})
    return out
