"""Per-event checks run at ingest: injection, grounding, scope, refusals, behaviours.

:class:`EventChecker` turns one validated event into an :class:`EventVerdict`: the findings
stored on the event, the counters added to its minute's rollup (so monitors never rescan
events), and the behaviours (tools, output kinds) it showed. Checks are pure functions of the
event and the feature manifest, so a backtest sees exactly what live ingest saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from hotwash.detect import grounding, injection
from hotwash.detect.findings import Finding
from hotwash.manifest import Feature, Manifest
from hotwash.telemetry.model import Event

# Opening phrases of a refusal; matched on the first 160 characters of the output only.
_REFUSAL = re.compile(
    r"^\W*(?:i'?m\s+(?:sorry|afraid)|i\s+apologi[sz]e|sorry,?\s+(?:but\s+)?i|unfortunately,?\s+i|"
    r"i\s+(?:can(?:no|')?t|cannot|am\s+(?:not\s+able|unable)|won'?t)\s+(?:help|assist|do|provide|comply|answer)"
    r"|as\s+an\s+ai\b)",
    re.IGNORECASE,
)

COUNTERS = ("judged", "hallucinated", "ungrounded", "injections", "injections_followed", "offscope", "refusals")


@dataclass(slots=True)
class EventVerdict:
    findings: list[Finding] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    behaviours: list[tuple[str, str]] = field(default_factory=list)

    def findings_json(self) -> list[dict[str, Any]] | None:
        return [asdict(f) for f in self.findings] or None


def is_refusal(output: str | None) -> bool:
    return bool(output) and _REFUSAL.match(output[:160]) is not None


def _as_dict(event: Event) -> dict[str, Any]:
    """The fields the detectors read, as plain values (they take PRODUCT.md-shaped dicts)."""
    return {
        "input": event.input,
        "output": event.output,
        "untrusted": event.untrusted,
        "context": msgspec.to_builtins(event.context) if event.context else None,
        "tool_calls": msgspec.to_builtins(event.tool_calls) if event.tool_calls else None,
    }


class EventChecker:
    """Runs every per-event check with the feature's manifest entry (defaults if undeclared)."""

    def __init__(self, manifest: Manifest | None = None) -> None:
        self.manifest = manifest or Manifest()
        self._default = Feature()

    def feature(self, name: str) -> Feature:
        return self.manifest.features.get(name, self._default)

    def check(self, event: Event) -> EventVerdict:
        spec = self.feature(event.feature)
        verdict = EventVerdict()
        tools = [c.name for c in event.tool_calls or ()]
        verdict.behaviours = [("tool", t) for t in dict.fromkeys(tools)]
        output_kind = (event.tags or {}).get("output_kind")
        if isinstance(output_kind, str):
            verdict.behaviours.append(("output", output_kind))

        off_manifest = self._scope(spec, tools, output_kind, verdict)
        self._injection(event, spec, off_manifest, verdict)
        self._grounding(event, spec, verdict)
        if is_refusal(event.output):
            verdict.counters["refusals"] = 1
        return verdict

    # -- the checks ---------------------------------------------------------------------------
    def _scope(self, spec: Feature, tools: Iterable[str], output_kind: str | None,
               verdict: EventVerdict) -> list[str]:
        allowed_tools = spec.capabilities.tools
        allowed_outputs = spec.capabilities.outputs
        off = [t for t in tools if allowed_tools is not None and t not in allowed_tools]
        evidence = [f"tool call '{t}' is not in the manifest's tools {allowed_tools}" for t in off]
        if output_kind is not None and allowed_outputs is not None and output_kind not in allowed_outputs:
            evidence.append(f"output kind '{output_kind}' is not in the manifest's outputs {allowed_outputs}")
        if evidence:
            verdict.findings.append(Finding("scope_creep", "scope.off_manifest", 1.0, True, evidence))
            verdict.counters["offscope"] = 1
        return off

    def _injection(self, event: Event, spec: Feature, off_manifest: list[str], verdict: EventVerdict) -> None:
        found = injection.scan_event(_as_dict(event))
        flagged = [f for f in found if f.flagged]
        followed: list[str] = []
        if spec.canaries and event.output:
            score, leaks = injection.output_leaks(event.output, spec.canaries)
            if score >= injection.LEAK_THRESHOLD:
                verdict.findings.append(Finding("prompt_injection", "injection.canary_leak", score, True, leaks))
                followed.extend(f"output leaks a canary: {e}" for e in leaks[:3])
        if flagged:
            followed.extend(f"off-manifest tool call '{t}' after injected text" for t in off_manifest)
            if event.output and any(self._obeyed(event, f) for f in flagged):
                followed.append("the output does what the injected text asked")
        verdict.findings.extend(f for f in found if f.flagged or f.score >= 0.3)
        if flagged or followed:
            verdict.counters["injections"] = 1
        if followed:
            verdict.findings.append(Finding("prompt_injection", "injection.followed", 1.0, True, followed))
            verdict.counters["injections_followed"] = 1

    @staticmethod
    def _obeyed(event: Event, finding: Finding) -> bool:
        texts = [event.input or ""] + [d.text for d in event.context or ()]
        return any(injection.obeyed(event.output, t) for t in texts if t)

    def _grounding(self, event: Event, spec: Feature, verdict: EventVerdict) -> None:
        if spec.grounding == "none" or not event.output:
            return
        contexts = [d.text for d in event.context or ()]
        if not contexts:
            if spec.grounding == "required":
                verdict.counters["ungrounded"] = 1
                verdict.findings.append(Finding(
                    "hallucination", "grounding.missing", 1.0, True,
                    ["feature is marked grounding: required, but the call retrieved no context"]))
            return
        result = grounding.check_grounding(event.output, contexts, question=event.input)
        if not result.judgeable or result.score is None:
            return
        verdict.counters["judged"] = 1
        if result.flagged:
            verdict.counters["hallucinated"] = 1
        if result.flagged or result.score >= 0.3:
            verdict.findings.append(Finding("hallucination", "grounding.unsupported", round(result.score, 4),
                                            result.flagged, [s[:200] for s in result.unsupported[:8]]))
