"""Per-event checks run at ingest: injection, grounding, scope, refusals, behaviours.

:class:`EventChecker` turns one validated event into an :class:`EventVerdict`: the findings
stored on the event, the counters added to its minute's rollup (so monitors never rescan
events), and the behaviours (tools, output kinds) it showed. Checks are pure functions of the
event and the feature manifest, so a backtest sees exactly what live ingest saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
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

# Findings below this score are not stored unless flagged.
_KEEP_FROM = 0.3

COUNTERS = ("judged", "hallucinated", "ungrounded", "injections", "injections_followed", "offscope", "refusals")


@dataclass(slots=True)
class EventVerdict:
    findings: list[Finding] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    behaviours: list[tuple[str, str]] = field(default_factory=list)

    def findings_json(self) -> list[dict[str, Any]] | None:
        """``[dataclasses.asdict(f) for f in self.findings] or None``, built directly (asdict recurses
        generically and deep-copies; the fields are str, float, bool and a list of str)."""
        if not self.findings:
            return None
        return [{"category": f.category, "check": f.check, "score": f.score, "flagged": f.flagged,
                 "evidence": list(f.evidence)} if type(f.evidence) is list else asdict(f) for f in self.findings]


# An output whose first character is an ASCII word character other than these cannot match _REFUSAL:
# ``^\W*`` then matches nothing and every alternative opens with i, s(orry), u(nfortunately) or a(s an ai).
_NOT_REFUSAL_START = frozenset(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
                               if c.lower() not in "isua")


def is_refusal(output: str | None) -> bool:
    if not output or output[0] in _NOT_REFUSAL_START:
        return False
    return _REFUSAL.match(output[:160]) is not None


_ALL_CHANNELS = frozenset(["input", "context", "tool_calls"])
_WANTED: dict[tuple[str, ...], frozenset[str]] = {}  # untrusted list -> channel kinds it names


def _wanted(event: Event) -> frozenset[str]:
    untrusted = event.untrusted
    if untrusted is None:
        return _ALL_CHANNELS
    key = tuple(untrusted)
    wanted = _WANTED.get(key)
    if wanted is None:
        wanted = frozenset(u.split("[", 1)[0] for u in untrusted)
        if len(_WANTED) < 256:
            _WANTED[key] = wanted
    return wanted


def _tool_text(res: Any) -> str:
    """A tool result as the scanner reads it (as ``injection._iter_channels`` renders it)."""
    if isinstance(res, str):
        return res
    res = msgspec.to_builtins(res)
    try:
        return json.dumps(res, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(res)


def _injection_findings(event: Event) -> list[Finding]:
    """``injection.scan_event(_as_dict(event))`` less the findings the checks drop (below ``_KEEP_FROM``
    and not flagged), read straight from the struct (nothing converted): the same channels in the same
    order as ``injection._iter_channels``, each name built only for a channel that scores."""
    scan = injection._scan_cached
    wanted = _wanted(event)
    hits = []
    top = 0.0
    inp = event.input
    if "input" in wanted and isinstance(inp, str) and inp:
        score, ev = scan(inp, "input")
        if score > 0.0:
            hits.append(("injection.direct", "input", score, ev))
            top = score
    if "context" in wanted and event.context:
        for i, doc in enumerate(event.context):
            text = doc.text
            if isinstance(text, str) and text:
                score, ev = scan(text, "context")
                if score > 0.0:
                    top = max(top, score)
                    ident = doc.id
                    hits.append(("injection.indirect", f"context[{ident if ident not in (None, '') else i}]",
                                 score, ev))
    if event.tool_calls:
        for i, call in enumerate(event.tool_calls):
            if call.result is not None and (res := _tool_text(call.result)):
                score, ev = scan(res, "tool")
                if score > 0.0:
                    top = max(top, score)
                    hits.append(("injection.indirect", f"tool_calls[{i}].result", score, ev))
    if top < _KEEP_FROM and top < injection.DEFAULT_THRESHOLD:
        return []  # every finding would be below _KEEP_FROM and not flagged
    return injection._findings(hits, _KEEP_FROM)


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

    def check_many(self, events: Sequence[Event]) -> list[EventVerdict]:
        """Verdicts for a batch, in order (the parallel checker spreads this over processes)."""
        return [self.check(e) for e in events]

    def check(self, event: Event) -> EventVerdict:
        spec = self.feature(event.feature)
        calls = event.tool_calls
        tools = [c.name for c in calls] if calls else []
        behaviours = [("tool", t) for t in dict.fromkeys(tools)] if tools else []
        tags = event.tags
        output_kind = tags.get("output_kind") if tags else None
        if isinstance(output_kind, str):
            behaviours.append(("output", output_kind))
        verdict = EventVerdict([], {}, behaviours)

        off_manifest = self._scope(spec, tools, output_kind, verdict) if tools or output_kind is not None else []
        self._injection(event, spec, off_manifest, verdict)
        if is_refusal(event.output):
            # A refusal claims nothing about the world: it is counted, never judged for grounding
            # (the checker would call every "I can't help with that" unsupported).
            verdict.counters["refusals"] = 1
        else:
            self._grounding(event, spec, verdict)
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
        found = _injection_findings(event)  # only those kept: flagged or >= _KEEP_FROM
        flagged = [f for f in found if f.flagged] if found else found
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
        if found:
            verdict.findings.extend(found)  # all flagged or >= _KEEP_FROM (min_score above)
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
        # check_grounding's score, flag and quotes (quoted only when kept), without its reason
        result = grounding._verdict(event.output, contexts, event.input, _KEEP_FROM)
        if result is None:  # not judgeable
            return
        score, flagged, unsupported = result
        verdict.counters["judged"] = 1
        if flagged:
            verdict.counters["hallucinated"] = 1
        if flagged or score >= _KEEP_FROM:
            verdict.findings.append(Finding("hallucination", "grounding.unsupported", round(score, 4),
                                            flagged, [s[:200] for s in unsupported[:8]]))
