"""Monitors born from incidents: ``hotwash monitor add --from INC-3``.

The signals that opened an incident say which monitor fired, on which metric and over which
window. From them come candidate rules in the manifest's rule shape (:class:`~hotwash.manifest.Rule`):
the metric that fired (and its close relatives), over the same and shorter windows, at thresholds
between the worst value of the quiet days before the incident and the worst value the incident
reached. Every candidate is then replayed by the monitor engine itself (``MonitorEngine(only=...)``,
the code that runs live) over the quiet window and the incident window, and the proposal is the
candidate that fires first in the incident with no signal at all on the quiet days.

The same replay is proof 2 of the verify step (:mod:`hotwash.evals.verify`): the stored monitor,
run over the incident's stored telemetry, fires; how much earlier than the real detection; and how
many false alarms it raised on the quiet days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError

from hotwash.detect.engine import MonitorEngine
from hotwash.detect.monitors import RATIO_METRICS, UserRule
from hotwash.detect.series import MINUTE, FeatureSeries, floor_minute
from hotwash.errors import Conflict, HotwashError, InvalidValue, NotFound
from hotwash.manifest import Manifest, Rule
from hotwash.store import Store

__all__ = [
    "DEFAULT_AFTER",
    "DEFAULT_QUIET_DAYS",
    "IncidentWindows",
    "Proposal",
    "RuleReplay",
    "describe",
    "incident_windows",
    "lead_text",
    "list_monitors",
    "propose",
    "public_monitor",
    "remove_monitor",
    "replay",
    "store_proposal",
    "stored_rule",
]

DEFAULT_QUIET_DAYS = 7.0
# How long after the real detection the incident window runs: a replayed monitor that fires
# within it caught the incident (later than the real detection if its lead time is negative).
DEFAULT_AFTER = timedelta(hours=24)

_FAST = (5, 10, 15, 30, 60)
_SLOW = (60, 180, 360, 720, 1440)
# The rule metrics that can tell each built-in monitor's failure (worse when >= or <=), and the
# windows worth trying for it. A signal says which monitor fired; these are its measurable cousins.
_FAMILIES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[int, ...]]] = {
    "hallucination.rate": ((("hallucination_rate", ">="),), _FAST),
    "hallucination.ungrounded": ((("ungrounded", ">="),), _FAST),
    "injection.followed": ((("injections_followed", ">="), ("injections", ">=")), _FAST),
    "injection.attempts": ((("injections", ">="),), _FAST),
    "escalation.rate": ((("escalation_rate", ">="),), _FAST),
    "escalation.calibration": ((("escalation_rate", ">="),), _FAST),
    "cost.spike": ((("cost_usd", ">="), ("tokens", ">=")), _FAST),
    "cost.creep": ((("cost_usd", ">="), ("tokens", ">=")), _SLOW),
    "cost.loop": ((("max_session_calls", ">="),), _FAST),
    "cost.retries": ((("retry_rate", ">="),), _FAST),
    "cost.nonprod": ((("nonprod_share", ">="),), _FAST),
    "cost.budget": ((("cost_usd", ">="), ("events", ">=")), _SLOW),
    "scope.off_manifest": ((("offscope", ">="),), _FAST),
    "scope.new_behaviour": ((("new_behaviours", ">="),), _FAST),
    "drift.quality": ((("score_mean", "<="), ("feedback_mean", "<="), ("refusal_rate", ">="),
                       ("output_chars_mean", ">="), ("escalation_rate", ">=")), _SLOW),
}
# When an incident has no signal (opened by hand), its category names the monitors to learn from.
_BY_CATEGORY = {
    "hallucination": ("hallucination.rate",),
    "prompt_injection": ("injection.followed",),
    "drift": ("drift.quality",),
    "runaway_cost": ("cost.spike",),
    "escalation_overload": ("escalation.rate",),
    "scope_creep": ("scope.off_manifest",),
}
_COUNTS = frozenset({"events", "ungrounded", "injections", "injections_followed", "offscope", "new_behaviours",
                     "max_session_calls"})
# Where between the quiet days' worst value and the incident's a candidate threshold sits. Lower fires
# sooner; higher leaves more room for tomorrow's noise. The earliest clean candidate wins, and among
# equally early ones the one with more room.
_FRACTIONS = (0.2, 0.35, 0.5)


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None


# ---------------------------------------------------------------------------------------- windows
@dataclass(frozen=True)
class IncidentWindows:
    """The data-time windows a replay looks at.

    quiet: ``[quiet_start, start)``, the days before the incident, where any signal is a false alarm;
    incident: ``[start, end)``, where a signal catches the incident; ``detected`` is the real detection.
    """

    quiet_start: datetime
    start: datetime
    end: datetime
    detected: datetime

    def to_json(self) -> dict[str, Any]:
        return {"quiet_window": {"start": _iso(self.quiet_start), "end": _iso(self.start),
                                 "days": round((self.start - self.quiet_start) / timedelta(days=1), 2)},
                "incident_window": {"start": _iso(self.start), "end": _iso(self.end)},
                "detected_at": _iso(self.detected)}


def incident_windows(store: Store, incident: Mapping[str, Any], *, quiet_days: float = DEFAULT_QUIET_DAYS,
                     after: timedelta = DEFAULT_AFTER) -> IncidentWindows:
    """The quiet and incident windows of ``incident`` (a public incident dict), in data time.

    The incident starts at the earlier of its ``started_at`` and its signals' first evidence; it was
    really detected when its first signal fired (data time, the replay's clock), else at ``detected_at``.
    The quiet window is the ``quiet_days`` before the start, cut to the stored data.
    """
    if quiet_days <= 0:
        raise InvalidValue(f"the quiet window must be a positive number of days, got {quiet_days:g}",
                           field="quiet_days")
    signals = list(incident.get("signals") or [])
    fired = [t for t in (_dt(s.get("detected_at")) for s in signals) if t]
    detected = min(fired) if fired else _dt(incident.get("detected_at")) or _dt(incident.get("opened_at"))
    starts = [t for t in (_dt(incident.get("started_at")), *(_dt(s.get("start")) for s in signals)) if t]
    if detected is None:
        raise InvalidValue(f"{incident.get('id')} has no detection time and no signal: nothing to replay")
    start = floor_minute(min([*starts, detected]))
    lo, hi = store.data_range()
    if lo is None or hi is None:
        raise HotwashError("the store holds no telemetry: there is nothing to replay a monitor over")
    quiet_start = max(floor_minute(start - timedelta(days=quiet_days)), lo)
    end = min(floor_minute(detected + after), hi + MINUTE)
    return IncidentWindows(quiet_start=quiet_start, start=start, end=max(end, floor_minute(detected) + MINUTE),
                           detected=detected)


# ---------------------------------------------------------------------------------------- replay
@dataclass
class RuleReplay:
    """What one rule did when replayed: its first signal in the incident and its quiet-day signals."""

    name: str
    fired_at: datetime | None
    false_alarms: int
    false_alarm_at: list[datetime]
    summary: str | None = None
    evidence: list[str] = field(default_factory=list)

    def lead_time_s(self, detected: datetime) -> float | None:
        return (detected - self.fired_at).total_seconds() if self.fired_at else None


def replay(store: Store, manifest: Manifest | None, rules: Sequence[Rule], windows: IncidentWindows
           ) -> dict[str, RuleReplay]:
    """Run ``rules`` (and nothing else) through the monitor engine over the quiet and incident windows."""
    engine = MonitorEngine(store, manifest, only=rules)
    signals = engine.backtest(since=windows.quiet_start, until=windows.end)
    out: dict[str, RuleReplay] = {}
    for rule in rules:
        mine = [s for s in signals if s.monitor == f"rule.{rule.name}"]
        # A signal's detected_at is the end of the minute it fired in.
        quiet = [s for s in mine if s.detected_at - MINUTE < windows.start]
        hits = [s for s in mine if s.detected_at - MINUTE >= windows.start]
        first = hits[0] if hits else None
        out[rule.name] = RuleReplay(rule.name, first.detected_at if first else None, len(quiet),
                                    [s.detected_at for s in quiet], first.summary if first else None,
                                    list(first.evidence) if first else [])
    return out


# ---------------------------------------------------------------------------------------- search
@dataclass
class _Candidate:
    rule: Rule
    fraction: float
    quiet_worst: float
    incident_worst: float


@dataclass
class Proposal:
    """The rule proposed for an incident, with the replay that justifies it."""

    incident: str
    feature: str
    rule: Rule
    windows: IncidentWindows
    fired_at: datetime
    lead_time_s: float
    false_alarms: int
    quiet_worst: float
    incident_worst: float
    learned_from: list[str]
    tried: int
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"incident": self.incident, "feature": self.feature, "name": self.rule.name,
                "rule": self.rule.model_dump(mode="json"), "fired_at": _iso(self.fired_at),
                "detected_at": _iso(self.windows.detected), "lead_time_s": self.lead_time_s,
                "false_alarms": self.false_alarms, "quiet_worst": self.quiet_worst,
                "incident_worst": self.incident_worst, "learned_from": self.learned_from,
                "candidates_tried": self.tried, **self.windows.to_json(), "alternatives": self.alternatives}


def _families(store: Store, manifest: Manifest, incident: Mapping[str, Any]
              ) -> tuple[list[str], list[tuple[str, str, tuple[int, ...]]]]:
    """(monitors learned from, [(metric, comparison, windows)]) for the incident's own feature."""
    feature = incident["feature"]
    names = [s["monitor"] for s in incident.get("signals") or [] if s.get("feature", feature) == feature]
    names = list(dict.fromkeys(names)) or list(_BY_CATEGORY.get(incident.get("category", ""), ()))
    user_rules = {f"rule.{r.name}": r for r in manifest.monitors.rules}
    user_rules.update({f"rule.{m['name']}": stored_rule(m) for m in store.list_stored_monitors()})
    out: dict[tuple[str, str], set[int]] = {}
    for name in names:
        if name in user_rules:
            r = user_rules[name]
            cmp = ">=" if r.comparison in (">", ">=") else "<="
            windows: tuple[int, ...] = (*(w for w in (*_FAST, *_SLOW) if w <= r.window), r.window)
            out.setdefault((r.metric, cmp), set()).update(windows)
        elif name in _FAMILIES:
            metrics, windows = _FAMILIES[name]
            for metric, cmp in metrics:
                out.setdefault((metric, cmp), set()).update(windows)
    return names, [(m, c, tuple(sorted(ws))) for (m, c), ws in out.items()]


def _round_away(x: float, up: bool, integer: bool) -> float:
    """``x`` to 3 significant digits (or a whole number), rounded away from the quiet days' values."""
    if integer:
        return float(math.ceil(x - 1e-9) if up else math.floor(x + 1e-9))
    if x == 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(abs(x))) - 2)
    return (math.ceil(x / scale) if up else math.floor(x / scale)) * scale


def _candidates(series: FeatureSeries, windows: IncidentWindows, incident: Mapping[str, Any],
                families: list[tuple[str, str, tuple[int, ...]]]) -> list[_Candidate]:
    minute = np.arange(len(series))
    quiet = (minute >= series.index(windows.quiet_start)) & (minute < series.index(windows.start))
    inside = (minute >= series.index(windows.start)) & (minute < series.index(windows.end))
    out: list[_Candidate] = []
    category, severity, feature = incident["category"], incident.get("severity") or "SEV3", incident["feature"]
    for metric, cmp, ws in families:
        up = cmp == ">="
        for w in ws:
            probe = UserRule(Rule(name="probe", category=category, metric=metric, window=w, comparison=cmp,
                                  threshold=0, features=[feature]))
            value, volume = probe.values(series)
            min_volume = 0
            if metric in RATIO_METRICS:
                # A rate over a handful of calls is noise: ask for half the window's usual traffic.
                busy = volume[quiet & (volume > 0)]
                min_volume = max(10, int(0.5 * float(np.median(busy)))) if busy.size else 10
            gate = volume >= min_volume
            q, x = value[quiet & gate], value[inside & gate]
            if not q.size or not x.size:
                continue
            q_worst = float(q.max() if up else q.min())
            x_worst = float(x.max() if up else x.min())
            if (x_worst <= q_worst) if up else (x_worst >= q_worst):
                continue  # this metric did not move past the quiet days: it cannot tell the incident
            seen: set[float] = set()
            for frac in _FRACTIONS:
                raw = q_worst + frac * (x_worst - q_worst)
                thr = _round_away(raw, up, metric in _COUNTS)
                if metric in _COUNTS and up:
                    thr = max(thr, math.floor(q_worst) + 1.0)
                elif metric in _COUNTS:
                    thr = min(thr, math.ceil(q_worst) - 1.0)
                # Strictly past every quiet value, and reached by the incident.
                if ((thr <= q_worst or thr > x_worst) if up else (thr >= q_worst or thr < x_worst)) or thr in seen:
                    continue
                seen.add(thr)
                rule = Rule(name=f"cand-{len(out)}", category=category, metric=metric, window=w, comparison=cmp,
                            threshold=thr, min_volume=min_volume, severity=severity, features=[feature])
                out.append(_Candidate(rule, frac, q_worst, x_worst))
    return out


def _named(rule: Rule, name: str) -> Rule:
    try:
        return Rule.model_validate({**rule.model_dump(), "name": name})
    except ValidationError:
        raise InvalidValue(f"not a valid monitor name: {name!r} (lower-case letters, digits, '_', '.' and '-')",
                           field="name") from None


def _free_name(store: Store, manifest: Manifest, base: str) -> str:
    taken = {r.name for r in manifest.monitors.rules} | {m["name"] for m in store.list_stored_monitors()}
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def propose(store: Store, manifest: Manifest, incident: Mapping[str, Any], *,
            quiet_days: float = DEFAULT_QUIET_DAYS, after: timedelta = DEFAULT_AFTER,
            name: str | None = None) -> Proposal:
    """The rule that would have caught ``incident`` soonest with no false alarm on the quiet days."""
    ref = str(incident.get("id"))
    feature = incident.get("feature")
    if not feature:
        raise InvalidValue(f"{ref} names no feature: a monitor watches one feature's telemetry")
    windows = incident_windows(store, incident, quiet_days=quiet_days, after=after)
    if windows.quiet_start >= windows.start:
        raise HotwashError(f"no telemetry is stored before {ref} started ({_iso(windows.start)}): without quiet "
                           "days a new rule cannot be checked for false alarms")
    learned_from, families = _families(store, manifest, incident)
    if not families:
        raise HotwashError(f"{ref} has no signal of a monitor hotwash can derive a rule from "
                           f"(signals: {', '.join(learned_from) or 'none'})")
    longest = max(w for _, _, ws in families for w in ws)
    series = FeatureSeries.load(store, feature, windows.quiet_start - (longest + 1) * MINUTE, windows.end)
    candidates = _candidates(series, windows, incident, families)
    if not candidates:
        raise HotwashError(f"no metric of {feature} moved past its quiet-day values during {ref} "
                           f"(tried {', '.join(sorted({m for m, _, _ in families}))}): there is no rule to propose")
    results = replay(store, manifest, [c.rule for c in candidates], windows)
    clean = [(c, results[c.rule.name]) for c in candidates
             if results[c.rule.name].fired_at is not None and results[c.rule.name].false_alarms == 0]
    if not clean:
        noisy = min(candidates, key=lambda c: results[c.rule.name].false_alarms)
        raise HotwashError(f"every candidate rule for {ref} either missed the incident or fired on the quiet days "
                           f"(the quietest, {noisy.rule.metric} over {noisy.rule.window} min, had "
                           f"{results[noisy.rule.name].false_alarms} false alarms): there is no rule to propose")
    clean.sort(key=lambda cr: (cr[1].fired_at, -cr[0].fraction, cr[0].rule.window, cr[0].rule.name))
    best, res = clean[0]
    metric = best.rule.metric.replace("_", "-")
    number = str(incident.get("number") or ref.rsplit("-", 1)[-1])
    final = _named(best.rule, name or _free_name(store, manifest, f"inc-{number}-{metric}-{best.rule.window}m"))
    assert res.fired_at is not None
    alternatives = [{"metric": c.rule.metric, "window": c.rule.window, "comparison": c.rule.comparison,
                     "threshold": c.rule.threshold, "min_volume": c.rule.min_volume, "fired_at": _iso(r.fired_at),
                     "lead_time_s": r.lead_time_s(windows.detected), "false_alarms": r.false_alarms}
                    for c, r in clean[1:6]]
    return Proposal(incident=ref, feature=feature, rule=final, windows=windows, fired_at=res.fired_at,
                    lead_time_s=(windows.detected - res.fired_at).total_seconds(), false_alarms=res.false_alarms,
                    quiet_worst=best.quiet_worst, incident_worst=best.incident_worst, learned_from=learned_from,
                    tried=len(candidates), alternatives=alternatives)


def stored_rule(row: Mapping[str, Any]) -> Rule:
    """The :class:`Rule` of a ``stored_monitors`` row (scoped to the row's feature)."""
    return Rule.model_validate({"features": [row["feature"]], **row["rule"], "name": row["name"]})


# ---------------------------------------------------------------------------------------- stored monitors
def _rule_text(rule: Rule) -> str:
    vol = f", at least {rule.min_volume} calls" if rule.min_volume else ""
    return f"{rule.metric} over {rule.window} min {rule.comparison} {rule.threshold:g}{vol}"


def lead_text(seconds: float) -> str:
    minutes = abs(seconds) / 60
    amount = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    if seconds > 0:
        return f"{amount} before the real detection"
    return "at the same minute as the real detection" if seconds == 0 else f"{amount} after the real detection"


def describe(proposal: Proposal) -> str:
    """One sentence for people: what the rule is and what its replay showed."""
    days = (proposal.windows.start - proposal.windows.quiet_start) / timedelta(days=1)
    return (f"{_rule_text(proposal.rule)} on {proposal.feature}: replayed over the stored telemetry it fires at "
            f"{_iso(proposal.fired_at)}, {lead_text(proposal.lead_time_s)}, with {proposal.false_alarms} false "
            f"alarms on the {days:.3g} quiet days before {proposal.incident}")


def public_monitor(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored monitor as the API and ``monitor list --json`` show it."""
    rule = stored_rule(row)
    return {"name": row["name"], "source": "stored",
            "incident": f"INC-{row['incident_id']}" if row.get("incident_id") is not None else None,
            "feature": row["feature"], "enabled": bool(row["enabled"]), "created_at": row["created_at"],
            "rule": rule.model_dump(mode="json"), "description": _rule_text(rule)}


def list_monitors(store: Store, manifest: Manifest) -> list[dict[str, Any]]:
    """The manifest's rules, then the stored monitors (oldest first)."""
    out: list[dict[str, Any]] = [
        {"name": r.name, "source": "manifest", "incident": None,
         "feature": r.features[0] if r.features and len(r.features) == 1 else None, "enabled": True,
         "created_at": None, "rule": r.model_dump(mode="json"), "description": _rule_text(r)}
        for r in manifest.monitors.rules]
    out.extend(public_monitor(row) for row in store.list_stored_monitors())
    return out


def store_proposal(store: Store, manifest: Manifest, proposal: Proposal, *, incident_id: int | None, actor: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """Store the proposed rule as a monitor (run live and in backtest from now on) and note it on the incident."""
    now = now or datetime.now(UTC)
    name = proposal.rule.name
    if name in {r.name for r in manifest.monitors.rules}:
        raise Conflict(f"hotwash.yaml already has a rule named {name!r}: pick another --name")
    row = store.add_stored_monitor(name=name, incident_id=incident_id, feature=proposal.feature,
                                   rule=proposal.rule.model_dump(mode="json"), now=now)
    if incident_id is not None:
        store.add_timeline(incident_id=incident_id, ts=now, actor=actor, kind="monitor",
                           text=f"new monitor {name}: {describe(proposal)}", data=proposal.to_json())
    return public_monitor(row)


def remove_monitor(store: Store, manifest: Manifest, name: str, *, actor: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """Delete a stored monitor (a manifest rule is removed by editing hotwash.yaml)."""
    row = store.get_stored_monitor(name)
    if row is None:
        if name in {r.name for r in manifest.monitors.rules}:
            raise InvalidValue(f"{name!r} is a rule of hotwash.yaml: remove it there", field="name")
        raise NotFound(f"no stored monitor named {name!r} (see `hotwash monitor list`)")
    store.remove_stored_monitor(name)
    if row.get("incident_id") is not None:
        store.add_timeline(incident_id=row["incident_id"], ts=now or datetime.now(UTC), actor=actor,
                           kind="monitor", text=f"monitor {name} removed", data={"name": name})
    return public_monitor(row)
