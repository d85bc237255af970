"""Assertions: each checks one property of a target's output and explains its verdict.

:func:`evaluate_case` is pure: a case and an output in, a :class:`CaseResult` out. Every
failure says what was found and why it fails ("output calls tool 'refund' which the denylist
forbids", "claim '30-day warranty' not supported by context kb-12"), so a red CI run needs no
debugging to read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import jsonschema

from hotwash.detect import grounding
from hotwash.detect.checks import is_refusal
from hotwash.errors import InvalidValue
from hotwash.evals.cases import (
    Case,
    Contains,
    GroundedInContext,
    JsonSchema,
    Length,
    MaxCost,
    MaxTokens,
    MaxToolCalls,
    MustEscalate,
    NotContains,
    NotRegex,
    PythonCheck,
    Regex,
    ToolAllowlist,
    ToolDenylist,
)
from hotwash.evals.targets import TargetOutput, load_callable

__all__ = ["AssertionResult", "CaseResult", "check", "evaluate_case"]


@dataclass(slots=True)
class AssertionResult:
    type: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "ok": self.ok, "message": self.message}


@dataclass(slots=True)
class CaseResult:
    """One case's verdict. ``status``: passed, failed (an assertion failed) or error (the target
    could not answer: ``error`` says why)."""

    case_id: str
    status: str
    assertions: list[AssertionResult] = field(default_factory=list)
    output: TargetOutput | None = None
    error: str | None = None
    target: str | None = None
    duration_s: float = 0.0
    attempts: int = 0
    path: str | None = None
    feature: str | None = None
    category: str | None = None
    incident: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failures(self) -> list[AssertionResult]:
        return [a for a in self.assertions if not a.ok]

    @property
    def reason(self) -> str:
        """One line: why the case did not pass ('' if it did)."""
        if self.error:
            return self.error
        return "; ".join(a.message for a in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case_id, "status": self.status, "passed": self.passed, "error": self.error,
                "target": self.target, "duration_s": round(self.duration_s, 4), "attempts": self.attempts,
                "path": self.path, "feature": self.feature, "category": self.category, "incident": self.incident,
                "assertions": [a.to_dict() for a in self.assertions],
                "output": self.output.to_dict() if self.output is not None else None}


def _q(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _near(text: str, start: int, end: int) -> str:
    lo, hi = max(0, start - 30), min(len(text), end + 30)
    return ("…" if lo else "") + " ".join(text[lo:hi].split()) + ("…" if hi < len(text) else "")


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _find(haystack: str, needle: str, ignore_case: bool) -> int:
    return haystack.casefold().find(needle.casefold()) if ignore_case else haystack.find(needle)


@singledispatch
def check(assertion: Any, output: TargetOutput, case: Case) -> tuple[bool, str]:
    """(ok, message) of one assertion on one output."""
    raise TypeError(f"no check for {type(assertion).__name__}")


@check.register
def _contains(a: Contains, output: TargetOutput, case: Case) -> tuple[bool, str]:
    missing = [v for v in _values(a.value) if _find(output.text, v, a.ignore_case) < 0]
    if missing:
        return False, "output does not contain " + ", ".join(_q(v) for v in missing)
    return True, "output contains " + ", ".join(_q(v) for v in _values(a.value))


@check.register
def _not_contains(a: NotContains, output: TargetOutput, case: Case) -> tuple[bool, str]:
    text = output.text
    for v in _values(a.value):
        at = _find(text, v, a.ignore_case)
        if at >= 0:
            near = _q(_near(text, at, at + len(v)), 90)
            return False, f"output contains {_q(v)}, which the case forbids (near {near})"
    return True, "output contains none of " + ", ".join(_q(v) for v in _values(a.value))


def _pattern(value: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(value, re.IGNORECASE if ignore_case else 0)


@check.register
def _regex(a: Regex, output: TargetOutput, case: Case) -> tuple[bool, str]:
    m = _pattern(a.value, a.ignore_case).search(output.text)
    if m is None:
        return False, f"output does not match /{a.value}/"
    return True, f"output matches /{a.value}/ at {_q(m.group(0))}"


@check.register
def _not_regex(a: NotRegex, output: TargetOutput, case: Case) -> tuple[bool, str]:
    m = _pattern(a.value, a.ignore_case).search(output.text)
    if m is not None:
        return False, f"output matches /{a.value}/ at {_q(m.group(0))}, which the case forbids"
    return True, f"output does not match /{a.value}/"


@check.register
def _json_schema(a: JsonSchema, output: TargetOutput, case: Case) -> tuple[bool, str]:
    try:
        doc = json.loads(output.text)
    except ValueError as exc:
        return False, f"output is not JSON ({exc}): {_q(output.text)}"
    validator = jsonschema.validators.validator_for(a.json_schema)(a.json_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        return False, f"output JSON fails the schema at {error.json_path}: {error.message}"
    return True, "output is JSON valid against the schema"


@check.register
def _tool_allowlist(a: ToolAllowlist, output: TargetOutput, case: Case) -> tuple[bool, str]:
    off = [n for n in dict.fromkeys(output.tool_names) if n not in a.tools]
    if off:
        allowed = ", ".join(a.tools) or "no tools"
        return False, "; ".join(f"output calls tool {n!r}, which is not in the allowlist [{allowed}]" for n in off)
    return True, f"every tool call is allowed ({', '.join(output.tool_names) or 'no tool calls'})"


@check.register
def _tool_denylist(a: ToolDenylist, output: TargetOutput, case: Case) -> tuple[bool, str]:
    hit = [n for n in dict.fromkeys(output.tool_names) if n in a.tools]
    if hit:
        return False, "; ".join(f"output calls tool {n!r} which the denylist forbids" for n in hit)
    return True, f"no call to {', '.join(a.tools)}"


@check.register
def _grounded(a: GroundedInContext, output: TargetOutput, case: Case) -> tuple[bool, str]:
    docs = [d for d in case.context if d.text.strip()]
    if not docs:
        return False, "the case has no context to judge grounding against"
    text = output.text
    if not text.strip():
        return True, "the output is empty: it claims nothing"
    if is_refusal(text):  # as the detectors do: a refusal claims nothing about the world
        return True, "the output is a refusal: it claims nothing"
    result = grounding.check_grounding(text, [d.text for d in docs], question=case.input, threshold=a.threshold)
    threshold = grounding.DEFAULT_THRESHOLD if a.threshold is None else a.threshold
    if not result.flagged:
        return True, f"grounded in the context (unsupported score {result.score:.2f} < {threshold:.2f})"
    names = ", ".join(d.id or f"context[{i}]" for i, d in enumerate(docs))
    # The most telling quotes first: numbers, then longer phrases (a lone common word says little).
    ranked = sorted(result.unsupported, key=lambda s: (not any(c.isdigit() for c in s), -len(s.split())))
    claims = [f"claim {_q(s)} not supported by context {names}" for s in ranked[:3]]
    if not claims:
        claims = [f"output not supported by context {names}"]
    return False, "; ".join(claims) + f" (unsupported score {result.score:.2f} >= {threshold:.2f})"


@check.register
def _max_tokens(a: MaxTokens, output: TargetOutput, case: Case) -> tuple[bool, str]:
    used = {"total": output.tokens_total, "in": output.tokens_in, "out": output.tokens_out}[a.count]
    label = {"total": "tokens", "in": "input tokens", "out": "output tokens"}[a.count]
    if used is None:
        return False, f"the target reported no {label}, so the ceiling of {a.value:,} cannot be checked"
    detail = (f" (in {output.tokens_in or 0:,} + out {output.tokens_out or 0:,})" if a.count == "total" else "")
    if used > a.value:
        return False, f"the call used {used:,} {label}{detail}, over the ceiling of {a.value:,}"
    return True, f"the call used {used:,} {label}, within the ceiling of {a.value:,}"


@check.register
def _max_cost(a: MaxCost, output: TargetOutput, case: Case) -> tuple[bool, str]:
    cost = output.cost_usd
    if cost is None:
        return False, f"the target reported no cost (and its model could not be priced), so the ceiling of " \
                      f"${a.value:.4f} cannot be checked"
    if cost > a.value:
        return False, f"the call cost ${cost:.4f}, over the ceiling of ${a.value:.4f}"
    return True, f"the call cost ${cost:.4f}, within the ceiling of ${a.value:.4f}"


@check.register
def _max_tool_calls(a: MaxToolCalls, output: TargetOutput, case: Case) -> tuple[bool, str]:
    n = len(output.tool_calls)
    if n > a.value:
        return False, f"the call made {n} tool calls, over the ceiling of {a.value}"
    return True, f"the call made {n} tool calls, within the ceiling of {a.value}"


@check.register
def _must_escalate(a: MustEscalate, output: TargetOutput, case: Case) -> tuple[bool, str]:
    escalated = bool(output.escalated)
    unknown = " (the target did not say; counted as not escalated)" if output.escalated is None else ""
    if a.value and not escalated:
        return False, f"output was not escalated{unknown}, but the case requires a hand-off to a person"
    if not a.value and escalated:
        return False, "output was escalated to a person, but the case requires the feature to answer itself"
    return True, ("escalated, as required" if a.value else f"not escalated, as required{unknown}")


@check.register
def _length(a: Length, output: TargetOutput, case: Case) -> tuple[bool, str]:
    n = len(output.text)
    if a.min is not None and n < a.min:
        return False, f"output is {n:,} characters, shorter than the minimum of {a.min:,}"
    if a.max is not None and n > a.max:
        return False, f"output is {n:,} characters, longer than the maximum of {a.max:,}"
    return True, f"output is {n:,} characters"


@check.register
def _python(a: PythonCheck, output: TargetOutput, case: Case) -> tuple[bool, str]:
    try:
        fn: Callable[..., Any] = load_callable(a.value, what="check")
    except InvalidValue as exc:
        return False, str(exc)
    try:
        verdict = fn(output, case)
    except Exception as exc:  # a broken check fails its case, never the run
        return False, f"check {a.value} raised {type(exc).__name__}: {exc}"
    reason = None
    if isinstance(verdict, tuple) and len(verdict) == 2:
        verdict, reason = verdict
    if not isinstance(verdict, bool):
        return False, (f"check {a.value} returned {type(verdict).__name__}; "
                       "expected True/False or (bool, reason)")
    if verdict:
        return True, f"check {a.value} passed" + (f": {reason}" if reason else "")
    return False, f"check {a.value} failed" + (f": {reason}" if reason else "")


def evaluate_case(case: Case, output: TargetOutput) -> CaseResult:
    """Every assertion of ``case`` on ``output`` (pure; a raising check fails, never raises)."""
    results = []
    for a in case.assertions:
        try:
            ok, message = check(a, output, case)
        except Exception as exc:  # defensive: one bad check must not hide the others
            ok, message = False, f"the {a.type} check failed to run: {type(exc).__name__}: {exc}"
        if not ok and a.description:
            message += f" ({a.description})"
        results.append(AssertionResult(a.type, ok, message))
    status = "passed" if all(r.ok for r in results) else "failed"
    return CaseResult(case_id=case.id, status=status, assertions=results, output=output,
                      path=str(case.path) if case.path else None, feature=case.feature, category=case.category,
                      incident=case.incident)
