"""The diagnose step: each category's diagnostic questions, pre-filled with evidence from telemetry.

The questions are data (:data:`QUESTIONS`, from the playbook); each has an *answerer* that reads the
store for the incident's feature and window and returns a short sentence plus structured evidence
(numbers, event ids, change ids), or ``None`` when the data cannot answer it. :func:`prefill`
stores those answers with source ``auto``; a person's answer (:func:`answer`, source ``human``) is
never overwritten by a later refresh and lands on the incident's timeline.

The window: the failure started at the incident's ``started_at`` (else its first signal's start,
else its detection) and is followed until its containment, at most :data:`FOLLOW` past detection
(after containment the traffic no longer shows the failure). "Before" comparisons read the
:data:`LOOKBACK` (a week) before the start, which is also how far back changes are looked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from hotwash.detect.engine import INPUT_SHIFT
from hotwash.detect.findings import CATEGORIES
from hotwash.detect.injection import DEFAULT_THRESHOLD as INJECTION_THRESHOLD
from hotwash.errors import InvalidValue, NotFound
from hotwash.incidents.service import incident_ref, parse_ref
from hotwash.manifest import Feature, Manifest
from hotwash.store import PRODUCTION_ENV_NAMES, Store
from hotwash.store.tables import CONFIDENCE_BINS

__all__ = ["FOLLOW", "LOOKBACK", "QUESTIONS", "Question", "answer", "get_answers", "prefill", "questions"]

LOOKBACK = timedelta(days=7)
FOLLOW = timedelta(hours=6)
# How far back an incident opened by hand (no signal, no start time) is looked at.
MIN_SPAN = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
AUTO_BY = "hotwash"
MAX_ANSWER_CHARS = 10_000
# Relative change of a quality signal that the drift answer reports (the drift monitor's default).
QUALITY_CHANGE = 0.10
# Total variation distance of a tag's values, before vs during, that counts as a shift.
TAG_SHIFT = 0.2
# How many flagged calls the injection / hallucination answers read in full.
READ_LIMIT = 1000
# Tag distributions are compared on the latest calls of each span: shares need no more.
TAG_SAMPLE = 5000
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Question:
    key: str
    prompt: str


QUESTIONS: dict[str, tuple[Question, ...]] = {
    "drift": (
        Question("model_change", "Did the model version change (when, which)?"),
        Question("prompt_change", "Did the prompt version change (when, which)?"),
        Question("input_shift", "Did the input distribution shift (length, language, tags)?"),
        Question("eval_set_age", "How old is the eval set compared with the traffic?"),
        Question("quality_trend", "Which quality signals moved, and by how much?"),
    ),
    "runaway_cost": (
        Question("spend", "Where did the money go (feature, sessions)?"),
        Question("loops", "Is a session looping (many calls a minute without a break)?"),
        Question("retries", "Are retries multiplying the calls?"),
        Question("environment", "Is non-production traffic running in production?"),
        Question("budget", "How does the spend compare with the budget?"),
    ),
    "escalation_overload": (
        Question("rate_by_version", "Which prompt version and model escalate more, before vs during?"),
        Question("calibration", "Is the confidence still calibrated?"),
        Question("baseline", "What is the expected escalation rate, and how far above it are we?"),
    ),
    "prompt_injection": (
        Question("channel", "Which channel carried the injected text (user input, retrieved document, tool result)?"),
        Question("capability", "What did the injected text make the AI do (tool calls, leaks, obeyed output)?"),
        Question("reach", "Which calls, sessions and users were hit, and when?"),
    ),
    "hallucination": (
        Question("grounding", "Was grounding (retrieved context) present?"),
        Question("unsupported_claims", "Which claims were unsupported, and in which calls?"),
        Question("changes", "Did the prompt or model change before it started?"),
    ),
    "scope_creep": (
        Question("off_manifest", "Which tools or outputs outside the manifest appeared, and when first?"),
        Question("extent", "How much of the traffic does it affect?"),
        Question("unreviewed_changes", "Did a prompt or config change land without an eval-set update?"),
    ),
}


def questions(category: str) -> list[Question]:
    """The diagnostic questions of ``category``, in the order the playbook asks them."""
    if category not in QUESTIONS:
        raise InvalidValue(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}", field="category")
    return list(QUESTIONS[category])


# =========================================================================== the public steps
def prefill(store: Store, manifest: Manifest, incident_number: int | str, *, now: datetime | None = None
            ) -> list[dict[str, Any]]:
    """Compute every question's answer from telemetry and store it (source ``auto``), leaving answers a
    person wrote untouched. Returns all answers, as :func:`get_answers` does."""
    number = parse_ref(incident_number)
    now = now or datetime.now(UTC)
    inc = _incident(store, number)
    w = _Window.of(store, manifest, inc, now)
    rows, unanswered = [], []
    for q in questions(inc["category"]):
        found = _ANSWERERS[(inc["category"], q.key)](w)
        if found is None:
            unanswered.append(q.key)
            continue
        text, evidence = found
        rows.append({"question": q.key, "answer": text, "evidence": _plain({**evidence, "window": w.bounds})})
    store.save_auto_answers(incident_id=number, rows=rows, unanswered=unanswered, now=now, by=AUTO_BY)
    return get_answers(store, number)


def answer(store: Store, incident_number: int | str, question: str, text: str, *, actor: str,
           now: datetime | None = None) -> dict[str, Any]:
    """Store a person's answer to one question (source ``human``, kept across refreshes) and put it on
    the incident's timeline. Returns the stored answer."""
    number = parse_ref(incident_number)
    inc = _incident(store, number)
    asked = {q.key: q for q in questions(inc["category"])}
    if question not in asked:
        raise InvalidValue(f"{incident_ref(number)} ({inc['category']}) has no question {question!r}: use one of "
                           f"{', '.join(asked)}", field="question")
    text = (text or "").strip()
    if not text:
        raise InvalidValue("the answer is empty: write what you found", field="answer")
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidValue(f"the answer is {len(text):,} characters; keep it under {MAX_ANSWER_CHARS:,} "
                           "(link to longer notes)", field="answer")
    if not actor:
        raise InvalidValue("say who is answering (actor)", field="actor")
    now = now or datetime.now(UTC)
    with store.transaction() as conn:
        previous = store.save_human_answer(incident_id=number, question=question, answer=text, actor=actor, now=now,
                                           conn=conn)
        store.add_timeline(incident_id=number, ts=now, actor=actor, kind="diagnosis",
                           text=f"{asked[question].prompt} {_clip(text, 300)}",
                           data={"question": question, "answer": text,
                                 "previous": previous["answer"] if previous else None,
                                 "previous_source": previous["source"] if previous else None}, conn=conn)
    return next(a for a in get_answers(store, number) if a["question"] == question)


def get_answers(store: Store, incident_number: int | str) -> list[dict[str, Any]]:
    """Every question of the incident's category in order, with its stored answer (``None`` fields
    while unanswered): ``{question, prompt, answer, evidence, source, updated_at, updated_by}``."""
    number = parse_ref(incident_number)
    inc = _incident(store, number)
    stored = store.diagnosis_answers(number)
    out = []
    for q in questions(inc["category"]):
        row = stored.get(q.key) or {}
        out.append({"question": q.key, "prompt": q.prompt, "answer": row.get("answer"),
                    "evidence": row.get("evidence"), "source": row.get("source"),
                    "updated_at": row.get("updated_at"), "updated_by": row.get("updated_by")})
    return out


def _incident(store: Store, number: int) -> dict[str, Any]:
    inc = store.diagnosis_incident(number)
    if inc is None:
        raise NotFound(f"no incident {incident_ref(number)}: see `hotwash incident list`")
    return inc


# =========================================================================== the window
@dataclass
class _Window:
    store: Store
    manifest: Manifest
    spec: Feature
    feature: str
    since: datetime  # start of the "before" span, and how far back changes are read
    onset: datetime  # the failure started
    detected: datetime
    end: datetime  # end of the "during" span (exclusive)
    _found: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, store: Store, manifest: Manifest, inc: Mapping[str, Any], now: datetime) -> _Window:
        detected = inc["first_signal_detected"] or inc["detected_at"]
        onset = inc["started_at"] or inc["first_signal_start"]
        stop = min(now, inc["contained_at"] or now, detected + FOLLOW)
        end = max(detected, stop)
        # Without evidence of when it started (opened by hand), look at the hour before.
        onset = min(onset or end - MIN_SPAN, end - MINUTE).replace(second=0, microsecond=0)
        feature = inc["feature"]
        spec = manifest.features.get(feature, Feature())
        return cls(store, manifest, spec, feature, onset - LOOKBACK, onset, detected, end)

    @property
    def bounds(self) -> dict[str, datetime]:
        return {"before_start": self.since, "start": self.onset, "end": self.end}

    @cached_property
    def changes(self) -> list[dict[str, Any]]:
        """Changes of the feature from the start of the lookback to the end of the window."""
        return self.store.changes_between(self.feature, self.since, self.end)

    @cached_property
    def mix_before(self) -> dict[str, dict[str, int]]:
        return self.store.version_mix(self.feature, self.since, self.onset)

    @cached_property
    def mix_during(self) -> dict[str, dict[str, int]]:
        return self.store.version_mix(self.feature, self.onset, self.end)

    def when(self, ts: datetime) -> str:
        """Where ``ts`` lies relative to the failure: before its start, or how long before detection."""
        if ts < self.onset:
            return f"{_span(self.onset - ts)} before the failure started"
        if ts <= self.detected:
            return f"inside the incident window, {_span(self.detected - ts)} before detection"
        return f"{_span(ts - self.detected)} after detection"

    @cached_property
    def before(self) -> dict[str, float]:
        return self.store.rollup_totals(feature=self.feature, start=self.since, end=self.onset)

    @cached_property
    def during(self) -> dict[str, float]:
        return self.store.rollup_totals(feature=self.feature, start=self.onset, end=self.end)

    def injected(self) -> dict[str, Any]:
        return self._findings("prompt_injection")

    def _findings(self, category: str) -> dict[str, Any]:
        if category not in self._found:
            self._found[category] = self.store.finding_events(feature=self.feature, start=self.onset, end=self.end,
                                                              category=category, limit=READ_LIMIT)
        return self._found[category]


Found = tuple[str, dict[str, Any]] | None


# =========================================================================== drift
def _version_change(w: _Window, kind: str, column: str, noun: str) -> Found:
    recorded = [c for c in w.changes if c["kind"] == kind]
    before, during = _known(w.mix_before[column]), _known(w.mix_during[column])
    new = sorted(set(during) - set(before), key=lambda v: -during[v])
    first = {}
    for v in new[:3]:
        use = w.store.first_use(feature=w.feature, column=column, value=v, since=w.since)
        if use:
            first[v] = use
    evidence: dict[str, Any] = {
        "changes": [c["id"] for c in recorded], "change_details": [_change(c) for c in recorded],
        "before": before, "during": during, "new_versions": new,
        "first_calls": {v: {"event": u["id"], "ts": u["ts"]} for v, u in first.items()},
        "events": [u["id"] for u in first.values()],
    }
    if recorded:
        c = recorded[-1]
        text = (f"Yes: the {noun} changed from {c['previous'] or 'an unrecorded version'} to {c['version'] or '?'} "
                f"at {_t(c['ts'])} ({c['id']}), {w.when(c['ts'])}.")
        if len(recorded) > 1:
            text += " Earlier in the window: " + "; ".join(
                f"{x['previous'] or '?'} -> {x['version'] or '?'} at {_t(x['ts'])} ({x['id']})" for x in recorded[:-1]
            ) + "."
        if c["version"] and during:
            text += (f" During the incident {_pct(_share(during, c['version']))} of calls ran {c['version']}"
                     f" (before: {_pct(_share(before, c['version']))}).")
        return text, evidence
    if new:
        v = new[0]
        use = first.get(v)
        since = f", first call {_t(use['ts'])} ({use['id']})" if use else ""
        return (f"Yes, but unrecorded: {v} served {_pct(_share(during, v))} of calls during the incident and none "
                f"in the week before{since}; no {kind} change event was sent for it.", evidence)
    if not during and not before:
        return (f"No {noun} change is recorded since {_t(w.since)}, and the calls carry no {column.replace('_', ' ')}.",
                evidence)
    return (f"No: no {noun} change is recorded since {_t(w.since)}; calls ran {_mix(during or before)} "
            "before and during the incident.", evidence)


def _drift_model(w: _Window) -> Found:
    return _version_change(w, "model", "model", "model")


def _drift_prompt(w: _Window) -> Found:
    return _version_change(w, "prompt", "prompt_version", "prompt")


def _drift_inputs(w: _Window) -> Found:
    p0 = w.store.input_profile(w.feature, w.since, w.onset)
    p1 = w.store.input_profile(w.feature, w.onset, w.end)
    if not p0["calls"] or not p1["calls"]:
        return None
    parts, shifted = [], {}
    for key, label, unit in (("mean_input_chars", "mean input length", "chars"),
                             ("mean_tokens_in", "mean input tokens", "tokens")):
        a, b = p0[key], p1[key]
        if a > 0 and b > 0:
            change = b / a - 1
            shifted[key] = {"before": round(a, 1), "during": round(b, 1), "change": round(change, 4)}
            if abs(change) >= INPUT_SHIFT:
                parts.append(f"{label} {a:,.0f} -> {b:,.0f} {unit} ({_signed(change)})")
    before_tags = w.store.tag_mix(feature=w.feature, start=w.since, end=w.onset, sample=TAG_SAMPLE)
    during_tags = w.store.tag_mix(feature=w.feature, start=w.onset, end=w.end, sample=TAG_SAMPLE)
    tags = {}
    for key in sorted(set(before_tags["values"]) | set(during_tags["values"])):
        if key == "output_kind":  # what the AI produced, not what came in
            continue
        dist, value, was, now_ = _tag_shift(before_tags["values"].get(key, {}), before_tags["calls"],
                                            during_tags["values"].get(key, {}), during_tags["calls"])
        if dist >= TAG_SHIFT:
            tags[key] = {"distance": round(dist, 3), "value": value, "before": round(was, 4), "during": round(now_, 4)}
            parts.append(f"tag {key}={value!s} {_pct(was)} -> {_pct(now_)} of calls")
    evidence = {"before": p0, "during": p1, "input": shifted, "tags": tags}
    if parts:
        return "Yes: " + "; ".join(parts) + " (the week before vs the incident).", evidence
    size = shifted.get("mean_input_chars") or shifted.get("mean_tokens_in")
    detail = f" (mean input {_signed(size['change'])})" if size else ""
    return (f"No: input size and tag mix stayed within {_pct(INPUT_SHIFT)} of the week before{detail}.", evidence)


def _tag_shift(before: dict[str, int], n0: int, during: dict[str, int], n1: int) -> tuple[float, str, float, float]:
    """Total variation distance between two tag-value distributions (untagged and rare values lumped
    together) and the value whose share moved most."""
    values = set(before) | set(during)
    p = {v: before.get(v, 0) / n0 for v in values}
    q = {v: during.get(v, 0) / n1 for v in values}
    rest = abs((1 - sum(p.values())) - (1 - sum(q.values())))
    dist = 0.5 * (sum(abs(p[v] - q[v]) for v in values) + rest)
    # the value that moved most; on a tie the one that grew (where the traffic went)
    top = max(sorted(values), key=lambda v: (round(abs(p[v] - q[v]), 9), q[v] > p[v])) if values else ""
    return dist, top, p.get(top, 0.0), q.get(top, 0.0)


def _drift_evals(w: _Window) -> Found:
    last = w.store.last_change(w.feature, "eval_set", w.end)
    if last is None:
        versions = [c for c in w.changes if c["kind"] in ("prompt", "model")]
        return (f"{w.feature} has no recorded eval-set change: nothing shows that the evals cover the current "
                "prompt and model (send `eval_set` change events when the eval set is refreshed).",
                {"eval_set": None, "changes": [c["id"] for c in versions]})
    age = w.end - last["ts"]
    since = [c for c in w.store.list_changes(feature=w.feature)
             if c["kind"] in ("prompt", "model") and last["ts"] < c["ts"] < w.end]
    calls = w.store.event_count(feature=w.feature, start=last["ts"], end=w.end)
    evidence = {"eval_set": _change(last), "age_days": round(age.total_seconds() / 86400, 1), "calls_since": calls,
                "changes": [last["id"], *(c["id"] for c in since)],
                "uncovered_changes": [_change(c) for c in since]}
    head = (f"The eval set is {_span(age)} old ({last['version'] or last['id']}, updated {_t(last['ts'])}, "
            f"{last['id']}); {calls:,} calls since.")
    if since:
        listed = "; ".join(f"{c['kind']} {c['version'] or '?'} at {_t(c['ts'])} ({c['id']})" for c in since[:4])
        return f"{head} {len(since)} prompt/model change(s) landed after it without an eval update: {listed}.", evidence
    return f"{head} No prompt or model change landed after it, so it was built for the current versions.", evidence


_QUALITY = (
    # (label, numerator, denominator, kind)
    ("eval score", "score_sum", "score_n", "mean"),
    ("user feedback", "feedback_sum", "feedback_n", "mean"),
    ("refusal rate", "refusals", "events", "rate"),
    ("output length", "output_chars", "events", "chars"),
    ("escalation rate", "escalations", "events", "rate"),
    ("unsupported-answer rate", "hallucinated", "judged", "rate"),
    ("error rate", "errors", "events", "rate"),
)


def _drift_quality(w: _Window) -> Found:
    b, d = w.before, w.during
    if not d["events"] or not b["events"]:
        return None
    metrics, moved = {}, []
    for label, num, den, kind in _QUALITY:
        if not b[den] or not d[den]:
            continue
        x0, x1 = b[num] / b[den], d[num] / d[den]
        change = (x1 - x0) / abs(x0) if x0 else (float("inf") if x1 else 0.0)
        metrics[label] = {"before": round(x0, 4), "during": round(x1, 4),
                          "change": round(change, 4) if change != float("inf") else None}
        if abs(change) >= QUALITY_CHANGE and (kind != "rate" or abs(x1 - x0) >= 0.01):
            moved.append((abs(change), f"{label} {_fmt(x0, kind)} -> {_fmt(x1, kind)}"
                                       f"{f' ({_signed(change)})' if change != float('inf') else ''}"))
    if not metrics:
        return None
    evidence = {"metrics": metrics, "events": w.store.evidence_ids(w.feature, w.onset, w.end, kind="low_quality",
                                                                    limit=EXAMPLES)}
    if moved:
        moved.sort(key=lambda m: -m[0])
        return "Moved vs the week before: " + "; ".join(m[1] for m in moved) + ".", evidence
    return (f"No quality signal moved by {_pct(QUALITY_CHANGE)} or more vs the week before "
            f"({', '.join(metrics)} checked).", evidence)


# =========================================================================== runaway cost
def _cost_spend(w: _Window) -> Found:
    span = w.end - w.onset
    during = w.store.spend_by_feature(start=w.onset, end=w.end)
    before = w.store.spend_by_feature(start=w.onset - span, end=w.onset)
    mine, was = during.get(w.feature, 0.0), before.get(w.feature, 0.0)
    if not w.during["events"]:
        return None
    top = w.store.session_stats(feature=w.feature, start=w.onset, end=w.end, order="cost", limit=EXAMPLES)
    top = [s for s in top if s["cost_usd"] > 0]
    compared = f"{mine / was:.1f}x the same span before ({_usd(was)})" if was else "with no spend the same span before"
    text = f"{w.feature} spent {_usd(mine)} from {_t(w.onset)} to {_t(w.end)}, {compared}."
    if top:
        text += " Top sessions: " + ", ".join(f"{s['session_id']} {_usd(s['cost_usd'])} ({s['calls']} calls)"
                                              for s in top[:3]) + "."
    others = [(f, c) for f, c in during.items() if f != w.feature and c > 0]
    if others:
        text += " Other features in the window: " + ", ".join(f"{f} {_usd(c)}" for f, c in others[:3]) + "."
    if w.during["unpriced"]:
        text += f" {int(w.during['unpriced']):,} calls used models hotwash cannot price: the real spend is higher."
    evidence = {"cost_usd": mine, "cost_usd_before": was, "by_feature": during, "by_feature_before": before,
                "sessions": [{k: s[k] for k in ("session_id", "calls", "cost_usd", "first_ts", "last_ts")}
                             for s in top],
                "unpriced": int(w.during["unpriced"]),
                "events": w.store.evidence_ids(w.feature, w.onset, w.end, kind="top_cost", limit=EXAMPLES)}
    return text, evidence


def _cost_loops(w: _Window) -> Found:
    cfg = w.manifest.monitors
    busiest = w.store.session_stats(feature=w.feature, start=w.onset, end=w.end, order="calls", limit=20)
    if not busiest:
        return None
    loops = []
    for s in busiest:
        minutes = max((s["last_ts"] - s["first_ts"]).total_seconds() / 60, 1.0)
        s["per_minute"] = round(s["calls"] / minutes, 2)
        s["minutes"] = round(minutes, 1)
        if s["calls"] >= cfg.loop_calls_per_minute * cfg.loop_minutes and s["per_minute"] >= cfg.loop_calls_per_minute:
            loops.append(s)
    keys = ("session_id", "calls", "per_minute", "minutes", "cost_usd", "retries", "first_ts", "last_ts")
    if not loops:
        s = busiest[0]
        return (f"No: the busiest session, {s['session_id']}, made {s['calls']} calls ({s['per_minute']:g} a minute); "
                f"a loop is {cfg.loop_calls_per_minute}+ a minute for {cfg.loop_minutes}+ minutes.",
                {"loops": [], "busiest": {k: s[k] for k in keys}})
    first = loops[0]
    events = w.store.session_event_ids(feature=w.feature, session_id=first["session_id"], start=w.onset, end=w.end,
                                       limit=EXAMPLES)
    text = (f"Yes: session {first['session_id']} made {first['calls']} calls in {first['minutes']:g} min "
            f"({first['per_minute']:g} a minute, {_usd(first['cost_usd'])}) from {_t(first['first_ts'])} to "
            f"{_t(first['last_ts'])}.")
    if len(loops) > 1:
        text += f" {len(loops) - 1} more looping session(s): " + ", ".join(
            f"{s['session_id']} ({s['calls']} calls, {_usd(s['cost_usd'])})" for s in loops[1:4]) + "."
    return text, {"loops": [{k: s[k] for k in keys} for s in loops], "events": events}


def _cost_retries(w: _Window) -> Found:
    b, d = w.before, w.during
    if not d["events"]:
        return None
    rate, base = d["retries"] / d["events"], (b["retries"] / b["events"] if b["events"] else None)
    evidence = {"retries": int(d["retries"]), "events_total": int(d["events"]), "rate": rate, "rate_before": base,
                "events": w.store.evidence_ids(w.feature, w.onset, w.end, kind="retry", limit=EXAMPLES)}
    limit = max(w.manifest.monitors.retry_rate, 4 * (base or 0))
    was = f"{_pct(base)} the week before" if base is not None else "no traffic the week before"
    verdict = "Yes" if rate >= limit else "No"
    return (f"{verdict}: {_pct(rate)} of calls were retries ({int(d['retries']):,} of {int(d['events']):,}), "
            f"vs {was}.", evidence)


def _cost_env(w: _Window) -> Found:
    mix = w.store.env_mix(feature=w.feature, start=w.onset, end=w.end)
    total = sum(mix.values())
    if not total:
        return None
    nonprod = {e: n for e, n in mix.items() if e is not None and e not in PRODUCTION_ENV_NAMES}
    k = sum(nonprod.values())
    b = w.before
    base = b["nonprod"] / b["events"] if b["events"] else None
    evidence = {"env": {str(e): n for e, n in mix.items()}, "nonprod": k, "share": k / total, "share_before": base,
                "events": w.store.evidence_ids(w.feature, w.onset, w.end, kind="nonprod", limit=EXAMPLES)}
    was = f"{_pct(base)} the week before" if base is not None else "no traffic the week before"
    if k:
        listed = ", ".join(f"{e} {n:,}" for e, n in nonprod.items())
        return (f"Yes: {k:,} of {total:,} calls ({_pct(k / total)}) came from non-production environments "
                f"({listed}), vs {was}.", evidence)
    envs = ", ".join(str(e) if e is not None else "unset" for e in mix)
    return f"No: all {total:,} calls in the window were production traffic (env: {envs}).", evidence


def _cost_budget(w: _Window) -> Found:
    daily = w.spec.budget.daily_usd
    day0 = w.onset.replace(hour=0, minute=0, second=0, microsecond=0)
    offsets, values = w.store.rollup_matrix(w.feature, day0, w.end, ["cost_usd"])
    days: dict[str, float] = {}
    for off, (cost,) in zip(offsets, values, strict=True):
        day = (day0 + timedelta(minutes=off)).date().isoformat()
        days[day] = days.get(day, 0.0) + float(cost)
    week = w.store.rollup_totals(feature=w.feature, start=w.end - timedelta(days=7), end=w.end)["cost_usd"]
    prior = w.store.rollup_totals(feature=w.feature, start=w.end - timedelta(days=14),
                                  end=w.end - timedelta(days=7))["cost_usd"]
    if not days and not week:
        return None
    growth = week / prior - 1 if prior else None
    limit = w.spec.budget.weekly_growth_max
    evidence = {"daily_budget_usd": daily, "by_day": days, "last_7d_usd": week, "previous_7d_usd": prior,
                "weekly_growth": growth, "weekly_growth_max": limit}
    trend = (f" Last 7 days {_usd(week)} vs {_usd(prior)} the 7 before ({_signed(growth)}, limit {_pct(limit)})."
             if growth is not None else f" Last 7 days {_usd(week)}.")
    worst_day, worst = max(days.items(), key=lambda kv: kv[1]) if days else ("", 0.0)
    if daily is None:
        return (f"No daily budget is declared for {w.feature} in hotwash.yaml (budget.daily_usd); its busiest day "
                f"in the window was {worst_day} at {_usd(worst)}.{trend}", evidence)
    if worst > daily:
        return (f"Over budget: {w.feature} spent {_usd(worst)} on {worst_day}, {worst / daily:.1f}x its daily "
                f"budget of {_usd(daily)}.{trend}", evidence)
    return (f"Within budget: the busiest day in the window, {worst_day}, cost {_usd(worst)} of the "
            f"{_usd(daily)} daily budget.{trend}", evidence)


# =========================================================================== escalation overload
def _esc_versions(w: _Window) -> Found:
    during = w.store.version_outcomes(feature=w.feature, start=w.onset, end=w.end)
    before = w.store.version_outcomes(feature=w.feature, start=w.since, end=w.onset)
    if not during:
        return None

    def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            acc = out.setdefault(str(r[key]) if r[key] is not None else "unset", {"events": 0, "escalated": 0})
            acc["events"] += r["events"]
            acc["escalated"] += r["escalated"]
        for acc in out.values():
            acc["rate"] = round(acc["escalated"] / acc["events"], 4) if acc["events"] else None
        return out

    evidence = {"prompt_version": {"during": by(during, "prompt_version"), "before": by(before, "prompt_version")},
                "model": {"during": by(during, "model"), "before": by(before, "model")},
                "events": w.store.evidence_ids(w.feature, w.onset, w.end, kind="escalated", limit=EXAMPLES)}
    parts = []
    for key, label in (("prompt_version", "prompt"), ("model", "model")):
        d, b = evidence[key]["during"], evidence[key]["before"]
        ranked = sorted(d.items(), key=lambda kv: (-(kv[1]["rate"] or 0), kv[0]))
        listed = []
        for v, x in ranked[:3]:
            was = f"{_pct(b[v]['rate'])} before" if v in b else "new in the window"
            listed.append(f"{v} {_pct(x['rate'])} ({x['escalated']:,}/{x['events']:,}; {was})")
        parts.append(f"by {label}: " + ", ".join(listed))
    prompts, models = evidence["prompt_version"], evidence["model"]
    if len(prompts["during"]) == len(models["during"]) == 1 and set(prompts["during"]) <= set(prompts["before"]) \
            and set(models["during"]) <= set(models["before"]):
        (p, x), (m, _) = next(iter(prompts["during"].items())), next(iter(models["during"].items()))
        return (f"Not a version change: prompt {p} and model {m} served both before and during; their escalation "
                f"rate went from {_pct(prompts['before'][p]['rate'])} to {_pct(x['rate'])} "
                f"({x['escalated']:,} of {x['events']:,} calls).", evidence)
    worst, x = max(prompts["during"].items(), key=lambda kv: (kv[1]["rate"] or 0, kv[1]["events"]))
    text = f"Highest: prompt {worst} escalated {_pct(x['rate'])} during the incident. " + "; ".join(parts) + "."
    return text, evidence


def _ece(t: Mapping[str, float]) -> tuple[float | None, list[dict[str, Any]]]:
    bins, n, gap = [], 0.0, 0.0
    for b in range(CONFIDENCE_BINS):
        nb, sb, ok = t[f"conf_n_{b}"], t[f"conf_sum_{b}"], t[f"conf_ok_{b}"]
        n += nb
        gap += abs(ok - sb)
        lo, hi = b / CONFIDENCE_BINS, (b + 1) / CONFIDENCE_BINS
        bins.append({"bin": f"{lo:.1f}-{hi:.1f}", "calls": int(nb),
                     "mean_confidence": round(sb / nb, 4) if nb else None,
                     "handled": round(ok / nb, 4) if nb else None})
    return (gap / n if n else None), bins


def _esc_calibration(w: _Window) -> Found:
    ece, bins = _ece(w.during)
    if ece is None:
        return None
    base, bins0 = _ece(w.before)
    evidence = {"ece": round(ece, 4), "ece_before": round(base, 4) if base is not None else None, "bins": bins,
                "bins_before": bins0}
    worst = max((b for b in bins if b["calls"] >= 10), default=None,
                key=lambda b: abs(b["handled"] - b["mean_confidence"]))
    was = f"{base:.2f} the week before" if base is not None else "no confidence data the week before"
    detail = (f"; calls with confidence {worst['bin']} were handled by the AI {_pct(worst['handled'])} of the time "
              f"(mean confidence {worst['mean_confidence']:.2f}, {worst['calls']:,} calls)") if worst else ""
    # The calibration monitor's rule for "No"; a smaller rise is still worth saying.
    verdict = ("No" if ece >= max(0.15, 2 * (base or 0)) else
               "Less than before" if base is not None and ece >= base + 0.05 else "Yes")
    return f"{verdict}: expected calibration error {ece:.2f} during the incident vs {was}{detail}.", evidence


def _esc_baseline(w: _Window) -> Found:
    d, b = w.during, w.before
    if not d["events"]:
        return None
    rate = d["escalations"] / d["events"]
    learned = b["escalations"] / b["events"] if b["events"] else None
    declared = w.spec.escalation.baseline_rate
    evidence = {"declared": declared, "learned": learned, "rate": rate, "escalated": int(d["escalations"]),
                "events_total": int(d["events"])}
    now_ = f"during the incident {_pct(rate)} ({int(d['escalations']):,} of {int(d['events']):,} calls)"
    was = f"the week before ran at {_pct(learned)}" if learned is not None else "there was no traffic the week before"
    if declared is not None:
        times = f", {rate / declared:.1f}x the baseline" if declared else ""
        return f"Declared baseline {_pct(declared)} (hotwash.yaml); {now_}{times}; {was}.", evidence
    return (f"No baseline is declared in hotwash.yaml (escalation.baseline_rate); {was} (the learned baseline); "
            f"{now_}.", evidence)


# =========================================================================== prompt injection
_INJECTED_TEXT = ("injection.direct", "injection.indirect")


def _channels(event: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """[(channel, what)] of the flagged injected text of one event: input, context (document id) or
    tool_result (tool name)."""
    out = []
    tools = event.get("tool_calls") or []
    for f in event.get("findings") or []:
        if f.get("category") != "prompt_injection" or f.get("check") not in _INJECTED_TEXT or not f.get("flagged"):
            continue
        for ev in f.get("evidence") or []:
            where, _, what = str(ev).partition(": ")
            if _below_threshold(what):
                continue  # a channel that scored a little, beside the one that carried the text
            if where == "input":
                out.append(("input", None))
            elif where.startswith("context[") and where.endswith("]"):
                out.append(("context", where[len("context["):-1]))
            elif where.startswith("tool_calls[") and "]" in where:
                idx = where[len("tool_calls["):where.index("]")]
                name = tools[int(idx)].get("name") if idx.isdigit() and int(idx) < len(tools) else None
                out.append(("tool_result", name))
    return list(dict.fromkeys(out))


def _below_threshold(evidence: str) -> bool:
    """Channels without a quoted hit are listed as ``score 0.04``; those under the scanner's threshold
    did not carry the injection."""
    if not evidence.startswith("score "):
        return False
    try:
        return float(evidence[len("score "):]) < INJECTION_THRESHOLD
    except ValueError:
        return False


_CHANNEL_WORDS = {"input": "the user's input", "context": "a retrieved document", "tool_result": "a tool result"}


def _inj_channel(w: _Window) -> Found:
    found = w.injected()
    per_channel: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    carried = 0
    for e in found["events"]:
        chans = _channels(e)
        if chans:
            carried += 1
        for ch in dict.fromkeys(c for c, _ in chans):
            per_channel[ch] += 1
            examples.setdefault(ch, [])
            if len(examples[ch]) < EXAMPLES:
                examples[ch].append(e["id"])
        for ch, what in chans:
            if what and ch == "context":
                docs[what] += 1
            elif what and ch == "tool_result":
                tools[what] += 1
    main = per_channel.most_common(1)[0][0] if per_channel else None
    evidence = {"channel": main, "channels": dict(per_channel), "documents": dict(docs.most_common(10)),
                "tools": dict(tools.most_common(10)), "calls": carried, "read": len(found["events"]),
                "events": examples.get(main, []) if main else [], "examples": examples}
    if main is None:
        if found["calls"]:
            return ("No injected text was found in the untrusted inputs of the flagged calls: the evidence is a leak "
                    "or an obeyed instruction only, so the text came through a channel hotwash does not see.", evidence)
        return ("No call in the window carried injected text in its input, retrieved documents or tool results.",
                evidence)
    text = f"{_CHANNEL_WORDS[main][0].upper()}{_CHANNEL_WORDS[main][1:]}: {per_channel[main]:,} of {carried:,} calls"
    text += " with injected text carried it there"
    if main == "context" and docs:
        text += " (documents " + ", ".join(f"{d} in {n:,}" for d, n in docs.most_common(3)) + ")"
    if main == "tool_result" and tools:
        text += " (tools " + ", ".join(f"{t} in {n:,}" for t, n in tools.most_common(3)) + ")"
    others = [f"{_CHANNEL_WORDS[c]} ({n:,})" for c, n in per_channel.most_common() if c != main]
    text += ("; also " + ", ".join(others)) if others else "; no other channel"
    return text + ".", evidence


def _inj_capability(w: _Window) -> Found:
    found = w.injected()
    if not found["calls"]:
        return None
    off_tools: Counter[str] = Counter()
    leaks = obeyed = 0
    followed: list[str] = []
    for e in found["events"]:
        hit = False
        for f in e.get("findings") or []:
            if f.get("category") != "prompt_injection":
                continue
            if f.get("check") == "injection.followed":
                for ev in f.get("evidence") or []:
                    ev = str(ev)
                    if ev.startswith("off-manifest tool call '"):
                        off_tools[ev.split("'")[1]] += 1
                        hit = True
                    elif ev.startswith("the output does what"):
                        obeyed += 1
                        hit = True
            elif f.get("check") == "injection.canary_leak" and f.get("flagged"):
                leaks += 1
                hit = True
        if hit:
            followed.append(e["id"])
    evidence = {"followed": len(followed), "calls": found["calls"], "off_manifest_tools": dict(off_tools),
                "canary_leaks": leaks, "obeyed_output": obeyed, "events": followed[:10]}
    if not followed:
        return (f"Not followed: {found['calls']:,} calls carried injected text, and none made an off-manifest tool "
                "call, leaked a canary or the system prompt, or obeyed it in the output.", evidence)
    what = [f"off-manifest tool call {t!r} ({_calls(n)})" for t, n in off_tools.most_common(3)]
    if leaks:
        what.append(f"canary / system-prompt leak ({_calls(leaks)})")
    if obeyed:
        what.append(f"output doing what the injected text asked ({_calls(obeyed)})")
    return (f"Followed in {len(followed):,} of {found['calls']:,} calls: " + "; ".join(what)
            + f". First: {followed[0]}.", evidence)


def _inj_reach(w: _Window) -> Found:
    found = w.injected()
    if not found["calls"]:
        return None
    ids = [e["id"] for e in found["events"]]
    evidence = {k: found[k] for k in ("calls", "sessions", "users", "first_ts", "last_ts")}
    evidence["events"] = ids[:10]
    return (f"{_n(found['calls'], 'call')} in {_n(found['sessions'], 'session')} from "
            f"{_n(found['users'], 'user')}, from "
            f"{_t(found['first_ts'])} ({ids[0]}) to {_t(found['last_ts'])}; examples {', '.join(ids[:3])}.", evidence)


# =========================================================================== hallucination
def _hal_grounding(w: _Window) -> Found:
    now_ = w.store.context_presence(feature=w.feature, start=w.onset, end=w.end, examples=EXAMPLES)
    if not now_["calls"]:
        return None
    was = w.store.context_presence(feature=w.feature, start=w.since, end=w.onset, examples=0)
    d = w.during
    required = w.spec.grounding == "required"
    missing, n = now_["without_context"], now_["calls"]
    evidence = {"calls": n, "without_context": missing, "before": {k: was[k] for k in ("calls", "without_context")},
                "grounding": w.spec.grounding, "checked": int(d["judged"]), "unsupported": int(d["hallucinated"]),
                "events": now_["examples"]}
    checked = (f"; of the answers checked against their context, {int(d['hallucinated']):,} of {int(d['judged']):,} "
               f"({_pct(d['hallucinated'] / d['judged'])}) were unsupported") if d["judged"] else ""
    before = (f" (the week before: {was['without_context']:,} of {was['calls']:,})" if was["calls"]
              else "")
    if missing:
        rule = f" although {w.feature} is marked grounding: required" if required else ""
        verdict = "No" if missing == n else "Partly"
        return (f"{verdict}: {missing:,} of {n:,} calls ({_pct(missing / n)}) retrieved no context{rule}{before}"
                f"{checked}.", evidence)
    return f"Yes: every one of the {n:,} calls retrieved context{checked}.", evidence


def _hal_claims(w: _Window) -> Found:
    found = w.store.finding_events(feature=w.feature, start=w.onset, end=w.end, category="hallucination",
                                   limit=READ_LIMIT)
    d = w.during
    claims, ids = [], []
    for e in found["events"]:
        for f in e.get("findings") or []:
            if f.get("check") == "grounding.unsupported" and f.get("flagged"):
                ids.append(e["id"])
                quotes = [str(q) for q in f.get("evidence") or []]
                if quotes and len(claims) < EXAMPLES:
                    claims.append({"event": e["id"], "claims": [_clip(q, 160) for q in quotes[:3]]})
    evidence = {"unsupported": len(ids), "checked": int(d["judged"]), "claims": claims, "events": ids[:10]}
    if not ids:
        if not d["judged"]:
            return None
        return f"None: all {int(d['judged']):,} answers checked against their context were supported.", evidence
    shown = "; ".join(f"{c['event']}: \"{c['claims'][0]}\"" for c in claims[:3])
    return f"{len(ids):,} answers asserted what their context does not support, e.g. {shown}.", evidence


def _hal_changes(w: _Window) -> Found:
    kinds = ("prompt", "model", "config", "deploy", "guardrail")
    recorded = [c for c in w.changes if c["kind"] in kinds]
    mix0, mix1 = w.mix_before, w.mix_during
    unrecorded = []
    for key, kind in (("prompt_version", "prompt"), ("model", "model")):
        new = sorted(set(_known(mix1[key])) - set(_known(mix0[key])))
        if new and not any(c["kind"] == kind for c in recorded):
            unrecorded += [f"{kind} {v}" for v in new]
    evidence = {"changes": [c["id"] for c in recorded], "change_details": [_change(c) for c in recorded],
                "unrecorded": unrecorded}
    parts = [f"{c['kind']} {c['previous'] or '?'} -> {c['version'] or '?'} at {_t(c['ts'])} ({c['id']}, "
             f"{w.when(c['ts'])})" if c["version"] else
             f"{c['kind']} at {_t(c['ts'])} ({c['id']}, {w.when(c['ts'])})" for c in recorded]
    parts += [f"{u} appeared in the traffic with no change event" for u in unrecorded]
    if parts:
        return "Yes: " + "; ".join(parts) + ".", evidence
    return f"No prompt, model, config, guardrail or deploy change since {_t(w.since)}.", evidence


# =========================================================================== scope creep
def _declared(spec: Feature, kind: str) -> list[str] | None:
    return spec.capabilities.tools if kind == "tool" else spec.capabilities.outputs


def _scope_off(w: _Window) -> Found:
    seen = w.store.feature_behaviours(feature=w.feature)
    if not seen:
        return None
    off, fresh = [], []
    for b in seen:
        allowed = _declared(w.spec, b["kind"])
        item = {"kind": b["kind"], "name": b["name"], "first_seen": b["first_seen"], "first_event": b["first_event"],
                "declared": None if allowed is None else b["name"] in allowed}
        if allowed is not None and b["name"] not in allowed:
            off.append(item)
        elif allowed is None and b["first_seen"] >= w.since:
            fresh.append(item)
    evidence = {"off_manifest": off, "new_undeclared": fresh,
                "events": [b["first_event"] for b in off + fresh][:10],
                "manifest": {"tools": w.spec.capabilities.tools, "outputs": w.spec.capabilities.outputs}}

    def say(b: dict[str, Any]) -> str:
        return (f"{b['kind']} {b['name']!r} first seen {_t(b['first_seen'])} in {b['first_event']} "
                f"({w.when(b['first_seen'])})")

    if off:
        text = "Outside the manifest: " + "; ".join(say(b) for b in off[:5]) + "."
        if fresh:
            text += " Also new (the manifest declares no list): " + "; ".join(say(b) for b in fresh[:3]) + "."
        return text, evidence
    if fresh:
        return ("Nothing contradicts the manifest, which declares no list for these; new behaviours: "
                + "; ".join(say(b) for b in fresh[:5]) + ".", evidence)
    return "None: every tool and output kind seen is declared in the manifest, and none is new.", evidence


def _scope_extent(w: _Window) -> Found:
    found = w.store.finding_events(feature=w.feature, start=w.onset, end=w.end, category="scope_creep",
                                   limit=EXAMPLES)
    n = int(w.during["events"])
    if not n:
        return None
    k = found["calls"]
    evidence = {k2: found[k2] for k2 in ("calls", "sessions", "users", "first_ts", "last_ts")}
    evidence.update(events_total=n, share=k / n, events=[e["id"] for e in found["events"]])
    if not k:
        return f"No call in the window ({n:,} calls) used a tool or output the manifest does not declare.", evidence
    return (f"{k:,} of {n:,} calls ({_pct(k / n)}) in {_n(found['sessions'], 'session')} used an undeclared tool or "
            "output, "
            f"from {_t(found['first_ts'])} to {_t(found['last_ts'])}; examples "
            f"{', '.join(e['id'] for e in found['events'][:3])}.", evidence)


def _scope_unreviewed(w: _Window) -> Found:
    kinds = ("prompt", "config", "model", "deploy", "guardrail")
    made = [c for c in w.changes if c["kind"] in kinds]
    evals = [c for c in w.store.list_changes(feature=w.feature) if c["kind"] == "eval_set" and c["ts"] < w.end]
    uncovered = [c for c in made if not any(e["ts"] >= c["ts"] for e in evals)]
    last_eval = evals[-1] if evals else None
    evidence = {"changes": [c["id"] for c in made], "uncovered": [c["id"] for c in uncovered],
                "change_details": [_change(c) for c in made],
                "last_eval_set": _change(last_eval) if last_eval else None}
    if not made:
        return f"No prompt, model, config, guardrail or deploy change is recorded since {_t(w.since)}.", evidence
    last = (f"the last eval-set update was {last_eval['id']} at {_t(last_eval['ts'])}" if last_eval
            else "no eval-set update is recorded at all")
    if uncovered:
        listed = "; ".join(f"{c['kind']} {c['version'] or ''} at {_t(c['ts'])} ({c['id']})".replace("  ", " ")
                           for c in uncovered[:4])
        return f"Yes: {listed} landed with no eval-set update after it; {last}.", evidence
    return f"No: each of the {len(made)} change(s) since {_t(w.since)} was followed by an eval-set update; {last}.", \
        evidence


_ANSWERERS: dict[tuple[str, str], Callable[[_Window], Found]] = {
    ("drift", "model_change"): _drift_model,
    ("drift", "prompt_change"): _drift_prompt,
    ("drift", "input_shift"): _drift_inputs,
    ("drift", "eval_set_age"): _drift_evals,
    ("drift", "quality_trend"): _drift_quality,
    ("runaway_cost", "spend"): _cost_spend,
    ("runaway_cost", "loops"): _cost_loops,
    ("runaway_cost", "retries"): _cost_retries,
    ("runaway_cost", "environment"): _cost_env,
    ("runaway_cost", "budget"): _cost_budget,
    ("escalation_overload", "rate_by_version"): _esc_versions,
    ("escalation_overload", "calibration"): _esc_calibration,
    ("escalation_overload", "baseline"): _esc_baseline,
    ("prompt_injection", "channel"): _inj_channel,
    ("prompt_injection", "capability"): _inj_capability,
    ("prompt_injection", "reach"): _inj_reach,
    ("hallucination", "grounding"): _hal_grounding,
    ("hallucination", "unsupported_claims"): _hal_claims,
    ("hallucination", "changes"): _hal_changes,
    ("scope_creep", "off_manifest"): _scope_off,
    ("scope_creep", "extent"): _scope_extent,
    ("scope_creep", "unreviewed_changes"): _scope_unreviewed,
}


# =========================================================================== wording
def _t(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "?"


def _span(delta: timedelta) -> str:
    s = abs(delta.total_seconds())
    if s >= 2 * 86400:
        return f"{s / 86400:.1f} days"
    if s >= 2 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.0f} min"


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if 0 < abs(x) < 0.1 else f"{100 * x:.0f}%"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else ("+" if x > 0 else "") + _pct(x)


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _calls(n: int) -> str:
    return _n(n, "call")


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def _fmt(x: float, kind: str) -> str:
    return _pct(x) if kind == "rate" else f"{x:,.0f} chars" if kind == "chars" else f"{x:.2f}"


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _known(mix: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in mix.items() if k != "None"}


def _share(mix: Mapping[str, int], key: str) -> float:
    total = sum(mix.values())
    return mix.get(key, 0) / total if total else 0.0


def _mix(mix: Mapping[str, int]) -> str:
    total = sum(mix.values())
    return ", ".join(f"{k} ({_pct(v / total)})" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])[:3])


def _change(c: Mapping[str, Any]) -> dict[str, Any]:
    return {k: c.get(k) for k in ("id", "ts", "kind", "version", "previous", "description", "link")}


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready values: ISO times, rounded floats, string keys."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return round(value, 6) if value == value and abs(value) != float("inf") else None
    return value

