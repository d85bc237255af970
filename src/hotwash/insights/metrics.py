"""The compounding, in numbers: what :func:`compute` returns is what ``hotwash insights --json``,
``GET /api/v1/insights`` and the insights page show.

Milestones come from each incident (times in UTC):

- time to detect  = ``detected_at - started_at`` (first evidence to detection),
- time to contain = ``contained_at - detected_at``,
- time to resolve = ``closed_at`` (else ``mitigated_at``) ``- detected_at``.

An incident *recurs* when an earlier incident of the same feature and category was detected
within the 90 days before it. Postmortems are *on time* when published by their due date, *late*
when published after it, *overdue* when still unpublished past it, *pending* otherwise.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hotwash.store import Store

RECURRENCE_WINDOW = timedelta(days=90)
CATEGORIES = ("hallucination", "prompt_injection", "drift", "runaway_cost", "escalation_overload", "scope_creep")
OPEN_STATES = ("detected", "contained", "communicated", "diagnosed", "mitigated", "postmortem", "verified")
PHASES = ("detect", "contain", "resolve")


def week_of(ts: datetime) -> str:
    """The Monday (UTC) starting ``ts``'s ISO week, as ``YYYY-MM-DD``."""
    day = ts.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def month_of(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m")


def _weeks(first: str, last: str) -> list[str]:
    """Every week from ``first`` to ``last`` inclusive, so quiet weeks show as zero."""
    out, day = [], datetime.fromisoformat(first)
    end = datetime.fromisoformat(last)
    while day <= end:
        out.append(day.date().isoformat())
        day += timedelta(days=7)
    return out


def _months(first: str, last: str) -> list[str]:
    out, (y, m) = [], map(int, first.split("-"))
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def durations(incident: dict[str, Any]) -> dict[str, float | None]:
    """Seconds to detect, contain and resolve one incident (None where a milestone is missing)."""
    resolved = incident.get("closed_at") or incident.get("mitigated_at")
    return {
        "detect": _seconds(incident["detected_at"], incident.get("started_at")),
        "contain": _seconds(incident.get("contained_at"), incident["detected_at"]),
        "resolve": _seconds(resolved, incident["detected_at"]),
    }


def _summary(values: Iterable[float | None]) -> dict[str, Any]:
    xs = [v for v in values if v is not None]
    if not xs:
        return {"n": 0, "mean_s": None, "median_s": None}
    return {"n": len(xs), "mean_s": round(statistics.fmean(xs), 3), "median_s": round(statistics.median(xs), 3)}


def recurrences(incidents: list[dict[str, Any]], window: timedelta = RECURRENCE_WINDOW) -> list[dict[str, Any]]:
    """Each incident detected within ``window`` after an earlier one of the same feature and category."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    out = []
    for inc in sorted(incidents, key=lambda i: (i["detected_at"], i["id"])):
        key = (inc["feature"], inc["category"])
        prev = last.get(key)
        if prev is not None and inc["detected_at"] - prev["detected_at"] <= window:
            out.append({"incident": f"INC-{inc['id']}", "previous": f"INC-{prev['id']}", "feature": key[0],
                        "category": key[1], "days_apart": round((inc["detected_at"] - prev["detected_at"])
                                                                .total_seconds() / 86400, 1),
                        "month": month_of(inc["detected_at"])})
        last[key] = inc
    return out


def _cumulative_weekly(times: list[datetime], weeks: list[str]) -> list[dict[str, Any]]:
    per_week = Counter(week_of(t) for t in times)
    total, out = 0, []
    before = sum(n for w, n in per_week.items() if weeks and w < weeks[0])
    total = before
    for w in weeks:
        total += per_week.get(w, 0)
        out.append({"week": w, "added": per_week.get(w, 0), "total": total})
    return out


def postmortem_timeliness(pm: dict[str, Any], now: datetime) -> str:
    if pm["published_at"] is not None:
        return "on_time" if pm["published_at"] <= pm["due_at"] else "late"
    return "overdue" if now > pm["due_at"] else "pending"


def compute(store: Store, *, now: datetime | None = None) -> dict[str, Any]:
    """Every insight number, as plain JSON-able values."""
    now = now or datetime.now(UTC)
    incs = store.insight_incidents()
    pms = store.insight_postmortems()
    acts = store.insight_actions()
    cases = store.insight_created("eval_cases")
    mons = store.insight_created("monitors")

    # The time axis: from the first thing that happened to now (or the last thing, if later).
    stamps = [i["detected_at"] for i in incs] + cases + mons + [p["created_at"] for p in pms]
    weeks = _weeks(week_of(min(stamps)), week_of(max([*stamps, now]))) if stamps else []
    months = _months(month_of(min(stamps)), month_of(max([*stamps, now]))) if stamps else []

    per_week: dict[str, Counter[str]] = defaultdict(Counter)
    for inc in incs:
        per_week[week_of(inc["detected_at"])][inc["category"]] += 1
    by_category = Counter(i["category"] for i in incs)

    per_month: dict[str, dict[str, list[float | None]]] = defaultdict(lambda: {p: [] for p in PHASES})
    overall: dict[str, list[float | None]] = {p: [] for p in PHASES}
    for inc in incs:
        d = durations(inc)
        for phase in PHASES:
            per_month[month_of(inc["detected_at"])][phase].append(d[phase])
            overall[phase].append(d[phase])

    recur = recurrences(incs)
    recur_by_month = Counter(r["month"] for r in recur)

    pm_state = {p["id"]: postmortem_timeliness(p, now) for p in pms}
    pm_month: dict[str, Counter[str]] = defaultdict(Counter)
    for p in pms:
        pm_month[month_of(p["due_at"])][pm_state[p["id"]]] += 1

    open_actions = [a for a in acts if a["status"] == "open"]
    # Overdue as the actions board counts it: open, and its due day (UTC) has passed.
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    overdue = [a for a in open_actions if a["due_at"] < today]

    # The audience, as the library's "not yet read by" counts it: people with a login, incident
    # participants and everyone who has read a postmortem.
    people = set(store.known_people())
    readers = store.insight_readers()
    published = [p for p in pms if p["published_at"] is not None]
    per_pm = []
    for p in published:
        read_by = readers.get(p["id"], set())
        per_pm.append({"id": p["id"], "incident": f"INC-{p['incident_id']}", "title": p["title"],
                       "reads": len(read_by), "audience": len(people | read_by),
                       "not_read_by": sorted(people - read_by)})
    possible = sum(x["audience"] for x in per_pm)
    done = sum(x["reads"] for x in per_pm)

    return {
        "generated_at": now,
        "incidents": {
            "total": len(incs),
            "open": sum(1 for i in incs if i["status"] in OPEN_STATES),
            "by_category": {c: by_category.get(c, 0) for c in CATEGORIES},
            "weekly": [{"week": w, "counts": {c: per_week[w].get(c, 0) for c in CATEGORIES}} for w in weeks],
        },
        "response": {
            "mttd_s": _summary(overall["detect"])["mean_s"],
            "mttc_s": _summary(overall["contain"])["mean_s"],
            "mttr_s": _summary(overall["resolve"])["mean_s"],
            "overall": {p: _summary(overall[p]) for p in PHASES},
            "monthly": [{"month": m, **{p: _summary(per_month[m][p]) for p in PHASES}}
                        for m in months if m in per_month],
        },
        "recurrences": {
            "window_days": RECURRENCE_WINDOW.days,
            "count": len(recur),
            "rate": round(len(recur) / len(incs), 3) if incs else None,
            "monthly": [{"month": m, "count": recur_by_month.get(m, 0)} for m in months],
            "items": recur,
        },
        "growth": {
            "eval_cases": len(cases),
            "monitors": len(mons),
            "weekly": [{"week": e["week"], "eval_cases": e["total"], "monitors": m["total"]}
                       for e, m in zip(_cumulative_weekly(cases, weeks), _cumulative_weekly(mons, weeks),
                                       strict=True)],
        },
        "postmortems": {
            "total": len(pms),
            "published": len(published),
            **{k: sum(1 for s in pm_state.values() if s == k) for k in ("on_time", "late", "overdue", "pending")},
            "monthly": [{"month": m, **{k: pm_month[m].get(k, 0) for k in ("on_time", "late", "overdue", "pending")}}
                        for m in months if m in pm_month],
        },
        "actions": {
            "total": len(acts),
            "open": len(open_actions),
            "overdue": len(overdue),
            "done": sum(1 for a in acts if a["status"] == "done"),
            "deferred": sum(1 for a in acts if a["status"] == "deferred"),
            "overdue_by_owner": dict(sorted(Counter(a["owner"] for a in overdue).items())),
            "overdue_items": [{"id": a["id"], "incident": f"INC-{a['incident_id']}", "title": a["title"],
                               "kind": a["kind"], "owner": a["owner"], "due_at": a["due_at"],
                               "days_overdue": (today - a["due_at"]).days}
                              for a in overdue],
        },
        "reads": {
            "people": len(people),
            "published": len(published),
            "reads": done,
            "coverage": round(done / possible, 3) if possible else None,
            "per_postmortem": per_pm,
        },
    }
