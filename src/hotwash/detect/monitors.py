"""The monitors: one small class per question, all reading a :class:`FeatureSeries`.

A monitor answers, for every minute of a series at once, "is the failure condition true at the end
of this minute?" (:meth:`Monitor.condition`), using only data up to that minute. The engine turns
the first true minute after a quiet spell into a signal and asks the monitor to describe it.
Because a condition is a pure function of the past, the live engine (a few new minutes at a time)
and a backtest (weeks at once) produce the same signals.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from hotwash.detect.series import FeatureSeries, block_sums, lagged_sum, safe_div, window_sum
from hotwash.manifest import Feature, MonitorSettings, Rule
from hotwash.store.tables import CONFIDENCE_BINS

WEEK = 7 * 1440
DAY = 1440
# A learned baseline counts only once it rests on this many events (or checked answers);
# before that, monitors that compare with it stay silent rather than guess.
MIN_BASELINE = 300


def _special() -> Any:
    """scipy.special, imported on first use: the CLI must not pay for SciPy unless a monitor runs."""
    import scipy.special

    return scipy.special


@dataclass(frozen=True)
class Evidence:
    """Which events of the signal window the store should return as evidence."""

    kind: str  # all | finding | escalated | retry | nonprod | top_cost | busiest_session | low_quality
    category: str | None = None


@dataclass
class Description:
    start: int  # first minute of the evidence window
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None


class Monitor(Protocol):
    name: str
    category: str
    severity: str
    lookback: int
    evidence: Evidence

    def condition(self, s: FeatureSeries) -> np.ndarray: ...

    def describe(self, s: FeatureSeries, i: int) -> Description: ...


def _binom_sf(k: np.ndarray, n: np.ndarray, p: np.ndarray | float, where: np.ndarray | None = None) -> np.ndarray:
    """P(X >= k) for X ~ Binomial(n, p), vectorised; 1 where n == 0 and, given ``where``, wherever it
    is false (only the minutes that pass a monitor's cheap tests pay for the special function)."""
    ok = n > 0 if where is None else where & (n > 0)
    out = np.ones(len(n))
    idx = np.flatnonzero(ok)
    if len(idx):
        pp = p[idx] if isinstance(p, np.ndarray) else p
        with np.errstate(invalid="ignore"):
            out[idx] = _special().bdtrc(k[idx] - 1, n[idx].astype(np.int64), pp)  # binomial survival P(X >= k)
    return out


def _first_data(s: FeatureSeries) -> int:
    """Index of the series' first minute with traffic (its length if none)."""
    seen = s["events"] > 0
    return int(np.argmax(seen)) if seen.any() else len(s)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


class _Windowed:
    """Shared helpers for rate monitors over one window."""

    window: int

    def rate(self, s: FeatureSeries, num: str, den: str, w: int | None = None) -> tuple[np.ndarray, ...]:
        w = w or self.window
        k, n = window_sum(s[num], w), window_sum(s[den], w)
        return k, n, safe_div(k, n)

    def baseline_rate(self, s: FeatureSeries, num: str, den: str, floor: float, w: int | None = None) -> np.ndarray:
        """Rate over the week before the current window, never below ``floor``; NaN while that
        week holds fewer than MIN_BASELINE of ``den`` (comparisons with NaN are false)."""
        w = w or self.window
        k, n = lagged_sum(s[num], WEEK, w), lagged_sum(s[den], WEEK, w)
        return np.where(n >= MIN_BASELINE, np.maximum(safe_div(k, n), floor), np.nan)


# --------------------------------------------------------------------------- hallucination
class HallucinationRate(_Windowed):
    name = "hallucination.rate"
    category = "hallucination"
    severity = "SEV2"
    evidence = Evidence("finding", "hallucination")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.window = cfg.hallucination_window
        self.lookback = WEEK + self.window

    def condition(self, s: FeatureSeries) -> np.ndarray:
        k, n, rate = self.rate(s, "hallucinated", "judged")
        p0 = self.baseline_rate(s, "hallucinated", "judged", 0.01)
        pre = (n >= self.cfg.hallucination_min_judged) & (rate >= np.maximum(self.cfg.hallucination_min_rate, 3 * p0))
        return pre & (_binom_sf(k, n, p0, pre) < self.cfg.p_value)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k, n, rate = (a[i] for a in self.rate(s, "hallucinated", "judged"))
        p0 = self.baseline_rate(s, "hallucinated", "judged", 0.01)[i]
        return Description(max(0, i - self.window + 1),
                           f"unsupported answers of {s.feature} at {_pct(rate)} over the last {self.window} min "
                           f"({int(k)} of {int(n)} checked), baseline {_pct(p0)}",
                           {"rate": rate, "baseline": p0, "unsupported": int(k), "checked": int(n)})


class Ungrounded(_Windowed):
    name = "hallucination.ungrounded"
    category = "hallucination"
    severity = "SEV3"
    evidence = Evidence("finding", "hallucination")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.window = cfg.hallucination_window
        self.lookback = self.window

    def condition(self, s: FeatureSeries) -> np.ndarray:
        return window_sum(s["ungrounded"], self.window) >= self.cfg.ungrounded_min

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k = int(window_sum(s["ungrounded"], self.window)[i])
        return Description(max(0, i - self.window + 1),
                           f"{k} answers of {s.feature} in {self.window} min had no retrieved context, "
                           "but the feature is marked grounding: required", {"ungrounded": k})


# --------------------------------------------------------------------------- injection
class InjectionFollowed:
    name = "injection.followed"
    category = "prompt_injection"
    severity = "SEV1"
    lookback = 1
    evidence = Evidence("finding", "prompt_injection")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg

    def condition(self, s: FeatureSeries) -> np.ndarray:
        return s["injections_followed"] >= 1

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k = int(s["injections_followed"][i])
        return Description(i, f"{s.feature} followed injected instructions in {k} call(s): an off-manifest "
                              "tool call, a leaked secret, or output doing what the injected text asked",
                           {"followed": k})


class InjectionAttempts(_Windowed):
    name = "injection.attempts"
    category = "prompt_injection"
    severity = "SEV4"
    evidence = Evidence("finding", "prompt_injection")
    window = 60

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.lookback = WEEK + self.window

    def condition(self, s: FeatureSeries) -> np.ndarray:
        k, n, _ = self.rate(s, "injections", "events")
        p0 = self.baseline_rate(s, "injections", "events", 0.001)
        pre = (k >= self.cfg.injection_attempts_min) & (k >= 5 * p0 * n)
        return pre & (_binom_sf(k, n, p0, pre) < self.cfg.p_value)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k = int(window_sum(s["injections"], self.window)[i])
        return Description(max(0, i - self.window + 1),
                           f"{k} injection attempts against {s.feature} in the last hour (none followed yet)",
                           {"attempts": k})


# --------------------------------------------------------------------------- escalation
class EscalationRate(_Windowed):
    """Escalation rate over short and long windows, tested against the declared (else learned)
    baseline with an exact binomial test; the shortest window that fires describes it."""

    name = "escalation.rate"
    category = "escalation_overload"
    severity = "SEV2"
    evidence = Evidence("escalated")

    def __init__(self, cfg: MonitorSettings, spec: Feature) -> None:
        self.cfg = cfg
        self.declared = spec.escalation.baseline_rate
        self.windows = sorted(cfg.escalation_windows)
        self.window = self.windows[0]
        self.lookback = WEEK + max(self.windows)

    def _p0(self, s: FeatureSeries, w: int) -> np.ndarray | float:
        if self.declared is not None:
            return max(self.declared, 0.01)
        return self.baseline_rate(s, "escalations", "events", 0.02, w)

    def _fires(self, s: FeatureSeries, w: int) -> np.ndarray:
        k, n, rate = self.rate(s, "escalations", "events", w)
        p0 = self._p0(s, w)
        lift = np.maximum(self.cfg.escalation_min_lift, p0)
        pre = (n >= self.cfg.escalation_min_events) & (rate >= p0 + lift)
        return pre & (_binom_sf(k, n, p0, pre) < self.cfg.p_value)

    def condition(self, s: FeatureSeries) -> np.ndarray:
        out = np.zeros(len(s), dtype=bool)
        for w in self.windows:
            out |= self._fires(s, w)
        return out

    def describe(self, s: FeatureSeries, i: int) -> Description:
        w = next((w for w in self.windows if self._fires(s, w)[i]), self.windows[-1])
        k, n, rate = (a[i] for a in self.rate(s, "escalations", "events", w))
        p0 = self._p0(s, w)
        p0 = float(p0[i]) if isinstance(p0, np.ndarray) else p0
        source = "declared" if self.declared is not None else "learned"
        return Description(max(0, i - w + 1),
                           f"escalation rate of {s.feature} {_pct(rate)} over the last {w} min, "
                           f"baseline {_pct(p0)} ({source})",
                           {"rate": rate, "baseline": p0, "escalated": int(k), "events": int(n), "window_min": w})


class Calibration:
    """Expected calibration error of ``confidence`` against the outcome "handled by the AI"
    (not escalated, no negative feedback), over an hour, against the week before. A model that
    stays confident while handing more cases to people shows here before the rate moves."""

    name = "escalation.calibration"
    category = "escalation_overload"
    severity = "SEV3"
    evidence = Evidence("escalated")
    window = 60

    def __init__(self, cfg: MonitorSettings) -> None:
        self.lookback = WEEK + self.window

    @staticmethod
    def _ece(s: FeatureSeries, w: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
        n = np.zeros(len(s))
        gap = np.zeros(len(s))
        for b in range(CONFIDENCE_BINS):
            nb = lagged_sum(s[f"conf_n_{b}"], w, lag)
            gap += np.abs(lagged_sum(s[f"conf_ok_{b}"], w, lag) - lagged_sum(s[f"conf_sum_{b}"], w, lag))
            n += nb
        return safe_div(gap, n), n

    def condition(self, s: FeatureSeries) -> np.ndarray:
        ece, n = self._ece(s, self.window, 0)
        base, n0 = self._ece(s, WEEK, self.window)
        return (n >= 100) & (n0 >= MIN_BASELINE) & (ece >= np.maximum(0.15, 2 * base))

    def describe(self, s: FeatureSeries, i: int) -> Description:
        ece, n = (a[i] for a in self._ece(s, self.window, 0))
        base = self._ece(s, WEEK, self.window)[0][i]
        return Description(max(0, i - self.window + 1),
                           f"confidence of {s.feature} is miscalibrated: ECE {ece:.2f} over the last hour "
                           f"({int(n)} calls), {base:.2f} the week before", {"ece": ece, "baseline_ece": base})


# --------------------------------------------------------------------------- cost
class CostSpike(_Windowed):
    """Spend over the window vs both the week's average window and the busiest window of the
    previous day (so the daily peak is not a spike)."""

    name = "cost.spike"
    category = "runaway_cost"
    severity = "SEV2"
    evidence = Evidence("top_cost")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.window = cfg.cost_spike_window
        self.lookback = WEEK + self.window

    def _parts(self, s: FeatureSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from scipy.ndimage import maximum_filter1d

        cost = window_sum(s["cost_usd"], self.window)
        learned = lagged_sum(s["events"], WEEK, self.window) >= MIN_BASELINE
        avg = np.where(learned, lagged_sum(s["cost_usd"], WEEK, self.window) * self.window / WEEK, np.nan)
        prev = np.zeros_like(cost)
        if len(cost) > self.window:
            # busiest window ending within the day before the current window
            peak = maximum_filter1d(cost, size=DAY, origin=(DAY - 1) // 2)
            prev[self.window:] = peak[: len(cost) - self.window]
        return cost, avg, prev

    def condition(self, s: FeatureSeries) -> np.ndarray:
        cost, avg, prev = self._parts(s)
        with np.errstate(invalid="ignore"):
            return ((cost >= self.cfg.cost_spike_min_usd) & (cost >= self.cfg.cost_spike_ratio * avg)
                    & (cost >= 1.5 * prev))

    def describe(self, s: FeatureSeries, i: int) -> Description:
        cost, avg, prev = (float(a[i]) for a in self._parts(s))
        return Description(max(0, i - self.window + 1),
                           f"spend of {s.feature} ${cost:,.2f} in {self.window} min, "
                           f"{cost / avg if avg else float('inf'):.1f}x the week's average (${avg:,.2f})",
                           {"cost_usd": cost, "week_average_usd": avg, "previous_day_peak_usd": prev})


class CostCreep:
    """Week-over-week growth: the last 7 days cost more than the 7 before by at least half the
    manifest's ``weekly_growth_max`` (default 10 %), two weeks running; checked at each UTC midnight.
    Half, because weekly spend varies by a few percent and a 10 % creep compounds smoothly."""

    name = "cost.creep"
    category = "runaway_cost"
    severity = "SEV3"
    evidence = Evidence("top_cost")
    lookback = 3 * WEEK

    def __init__(self, cfg: MonitorSettings, spec: Feature) -> None:
        self.cfg = cfg
        self.growth = spec.budget.weekly_growth_max

    def _ratios(self, s: FeatureSeries) -> tuple[np.ndarray, np.ndarray]:
        c = s["cost_usd"]
        w0, w1, w2 = window_sum(c, WEEK), lagged_sum(c, WEEK, WEEK), lagged_sum(c, WEEK, 2 * WEEK)
        return safe_div(w0, w1), safe_div(w1, w2)

    def condition(self, s: FeatureSeries) -> np.ndarray:
        r0, r1 = self._ratios(s)
        minute_of_day = (np.arange(len(s)) + int(s.t0.hour * 60 + s.t0.minute)) % DAY
        midnight = minute_of_day == DAY - 1
        # All three weeks must lie inside the feature's data: a week that starts before the first
        # event would read as growth.
        full = (np.arange(len(s)) >= _first_data(s) + 3 * WEEK - 1) & (
            lagged_sum(s["events"], WEEK, 2 * WEEK) >= MIN_BASELINE)
        thr = 1 + 0.5 * self.growth  # weekly spend is noisy (+-3 %): two weeks running carry it
        return midnight & full & (r0 >= thr) & (r1 >= thr)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        r0, r1 = (float(a[i]) for a in self._ratios(s))
        return Description(max(0, i - 2 * WEEK + 1),
                           f"spend of {s.feature} grew {_pct(r0 - 1)} week over week, after {_pct(r1 - 1)} "
                           f"the week before (limit {_pct(self.growth)})",
                           {"growth_last_week": r0 - 1, "growth_week_before": r1 - 1,
                            "last_7d_usd": float(window_sum(s["cost_usd"], WEEK)[i])})


class SessionLoop:
    name = "cost.loop"
    category = "runaway_cost"
    severity = "SEV2"
    evidence = Evidence("busiest_session")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.lookback = cfg.loop_minutes

    def condition(self, s: FeatureSeries) -> np.ndarray:
        hot = (s["max_session_calls"] >= self.cfg.loop_calls_per_minute).astype(float)
        return window_sum(hot, self.cfg.loop_minutes) >= self.cfg.loop_minutes

    def describe(self, s: FeatureSeries, i: int) -> Description:
        m = self.cfg.loop_minutes
        calls = int(s["max_session_calls"][i])
        return Description(max(0, i - m + 1),
                           f"a session of {s.feature} has called the model {calls}+ times a minute for {m} minutes "
                           "without a break (a loop)", {"calls_per_minute": calls})


class RetryStorm(_Windowed):
    name = "cost.retries"
    category = "runaway_cost"
    severity = "SEV3"
    evidence = Evidence("retry")
    window = 30

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.lookback = WEEK + self.window

    def condition(self, s: FeatureSeries) -> np.ndarray:
        k, n, rate = self.rate(s, "retries", "events")
        p0 = self.baseline_rate(s, "retries", "events", 0.01)
        pre = (n >= 50) & (rate >= np.maximum(self.cfg.retry_rate, 4 * p0))
        return pre & (_binom_sf(k, n, p0, pre) < self.cfg.p_value)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k, n, rate = (a[i] for a in self.rate(s, "retries", "events"))
        return Description(max(0, i - self.window + 1),
                           f"{_pct(rate)} of {s.feature}'s calls in {self.window} min were retries "
                           f"({int(k)} of {int(n)})",
                           {"retry_rate": rate})


class NonProdTraffic(_Windowed):
    name = "cost.nonprod"
    category = "runaway_cost"
    severity = "SEV3"
    evidence = Evidence("nonprod")
    window = 30

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.lookback = self.window

    def condition(self, s: FeatureSeries) -> np.ndarray:
        return window_sum(s["nonprod"], self.window) >= self.cfg.nonprod_min

    def describe(self, s: FeatureSeries, i: int) -> Description:
        k, _, share = (a[i] for a in self.rate(s, "nonprod", "events"))
        return Description(max(0, i - self.window + 1),
                           f"{int(k)} non-production calls ({_pct(share)}) reached production {s.feature} "
                           f"in {self.window} min", {"nonprod": int(k), "share": share})


_BUDGET_EVIDENCE_MINUTES = 60


class BudgetBreach:
    name = "cost.budget"
    category = "runaway_cost"
    severity = "SEV2"
    evidence = Evidence("top_cost")
    lookback = DAY

    def __init__(self, cfg: MonitorSettings, spec: Feature) -> None:
        self.budget = spec.budget.daily_usd

    def _day_to_date(self, s: FeatureSeries) -> np.ndarray:
        offset = s.t0.hour * 60 + s.t0.minute
        day = (np.arange(len(s)) + offset) // DAY
        cs = np.cumsum(s["cost_usd"])
        starts = np.searchsorted(day, day, side="left")
        before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0.0)
        return cs - before

    def condition(self, s: FeatureSeries) -> np.ndarray:
        if self.budget is None:
            return np.zeros(len(s), dtype=bool)
        return self._day_to_date(s) > self.budget

    def describe(self, s: FeatureSeries, i: int) -> Description:
        spent = float(self._day_to_date(s)[i])
        minute_of_day = (s.t0.hour * 60 + s.t0.minute + i) % DAY
        # The evidence is the hour that pushed the day over (at most back to midnight). The whole
        # day is not: a signal's start is read as the failure's onset (the incident's start, its
        # time to detect, its blast radius), and a budget says nothing about when spend went wrong.
        return Description(max(0, i - min(minute_of_day, _BUDGET_EVIDENCE_MINUTES)),
                           f"{s.feature} spent ${spent:,.2f} today, over its daily budget of ${self.budget:,.2f}",
                           {"spent_today_usd": spent, "daily_budget_usd": self.budget}, "SEV2")


# --------------------------------------------------------------------------- scope creep
class OffManifest:
    name = "scope.off_manifest"
    category = "scope_creep"
    severity = "SEV2"
    lookback = 1
    evidence = Evidence("finding", "scope_creep")

    def __init__(self, cfg: MonitorSettings) -> None:
        pass

    def condition(self, s: FeatureSeries) -> np.ndarray:
        return s["offscope"] >= 1

    def describe(self, s: FeatureSeries, i: int) -> Description:
        return Description(i, f"{s.feature} did something its manifest does not allow "
                              f"({int(s['offscope'][i])} call(s) with an undeclared tool or output)")


class NewBehaviour:
    name = "scope.new_behaviour"
    category = "scope_creep"
    severity = "SEV3"
    lookback = 1
    evidence = Evidence("all")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.learning = cfg.new_behaviour_learning

    def condition(self, s: FeatureSeries) -> np.ndarray:
        learned = np.arange(len(s)) >= _first_data(s) + self.learning
        return learned & (s["new_behaviours"] >= 1)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        return Description(i, f"{s.feature} showed a behaviour (tool or output kind) never seen before")


# --------------------------------------------------------------------------- drift
_QUALITY = (
    # (name, numerator, denominator, worse when)
    ("score", "score_sum", "score_n", "down"),
    ("feedback", "feedback_sum", "feedback_n", "down"),
    ("refusal_rate", "refusals", "events", "up"),
    ("output_length", "output_chars", "events", "either"),
    ("escalation_rate", "escalations", "events", "up"),
)


def _hourly_stats(val: np.ndarray, has: np.ndarray, w: int, lag: int) -> tuple[np.ndarray, ...]:
    """Count, mean and sample variance of the hourly values over a window (hours with data only)."""
    n = lagged_sum(has, w, lag)
    m = safe_div(lagged_sum(val * has, w, lag), n)
    m2 = safe_div(lagged_sum(val * val * has, w, lag), n)
    var = np.maximum(m2 - m * m, 0) * safe_div(n, np.maximum(n - 1, 1))
    return n, m, var


class QualityDrift:
    """Hourly quality values of the last ``drift_recent`` minutes against the ``drift_baseline``
    before them: Welch's t-test on hourly means plus a minimum relative change, checked at each
    hour's end. Attribution (model / prompt / input changes) is added by the engine."""

    name = "drift.quality"
    category = "drift"
    severity = "SEV3"
    evidence = Evidence("low_quality")

    def __init__(self, cfg: MonitorSettings) -> None:
        self.cfg = cfg
        self.recent = max(cfg.drift_recent // 60, 2)
        self.base = max(cfg.drift_baseline // 60, 2)
        self.lookback = (self.recent + self.base) * 60 + 60

    def _hourly(self, s: FeatureSeries) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        offset = (60 - s.t0.minute) % 60
        return offset, {name: (block_sums(s[num], 60, offset), block_sums(s[den], 60, offset))
                        for name, num, den, _ in _QUALITY}

    def _tests(self, s: FeatureSeries) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        offset, hourly = self._hourly(s)
        out = {}
        r, b = self.recent, self.base
        for name, _, _, _ in _QUALITY:
            num, den = hourly[name]
            val = safe_div(num, den)
            has = (den > 0).astype(float)
            n1, m1, v1 = _hourly_stats(val, has, r, 0)
            n0, m0, v0 = _hourly_stats(val, has, b, r)
            se = np.sqrt(safe_div(v1, n1) + safe_div(v0, n0))
            t = safe_div(m1 - m0, se)
            rel = safe_div(m1 - m0, np.abs(m0))
            ok = (n1 >= r * 0.5) & (n0 >= b * 0.25) & (se > 0)
            out[name] = (np.where(ok, t, 0.0), np.where(ok, rel, 0.0), m0)
        return offset, out

    def _hour_flags(self, s: FeatureSeries) -> tuple[int, np.ndarray, dict]:
        offset, tests = self._tests(s)
        z = -_special().ndtri(self.cfg.p_value)  # the normal quantile with p_value above it
        flags = None
        for name, _, _, worse in _QUALITY:
            t, rel, _ = tests[name]
            bad = {"down": (t <= -z) & (rel <= -self.cfg.drift_min_change),
                   "up": (t >= z) & (rel >= self.cfg.drift_min_change),
                   "either": (np.abs(t) >= z) & (np.abs(rel) >= 2 * self.cfg.drift_min_change)}[worse]
            flags = bad if flags is None else flags | bad
        return offset, flags if flags is not None else np.zeros(0, bool), tests

    def condition(self, s: FeatureSeries) -> np.ndarray:
        offset, flags, _ = self._hour_flags(s)
        out = np.zeros(len(s), dtype=bool)
        ends = offset + np.arange(len(flags)) * 60 + 59
        out[ends[flags]] = True
        return out

    def describe(self, s: FeatureSeries, i: int) -> Description:
        offset, _, tests = self._hour_flags(s)
        h = (i - offset - 59) // 60
        moved = {}
        for name, _, _, _ in _QUALITY:
            t, rel, m0 = tests[name]
            if 0 <= h < len(t) and abs(t[h]) >= -_special().ndtri(self.cfg.p_value):
                moved[name] = {"change": float(rel[h]), "baseline": float(m0[h]), "t": float(t[h])}
        words = ", ".join(f"{k} {'+' if v['change'] > 0 else ''}{_pct(v['change'])}" for k, v in moved.items())
        window_start = max(0, i - self.recent * 60 + 1)
        onset = self._onset(s, offset, h, moved)
        start = window_start if onset is None else min(max(onset, window_start), max(i - 59, window_start))
        return Description(start,
                           f"quality of {s.feature} drifted over the last {self.recent} h vs the "
                           f"{self.base // 24} days before: {words}",
                           {"metrics": moved, "onset_hours_before": round((i + 1 - start) / 60, 1)})

    def _onset(self, s: FeatureSeries, offset: int, h: int, moved: dict[str, dict[str, float]]) -> int | None:
        """The first minute of the hour the drift most likely began, within the recent window: for
        the metric that moved most (largest |t|), the hour from which its hourly values deviate
        from the baseline mean the most in total, in the direction it moved (a CUSUM change-point
        estimate). A signal's start is read as the failure's onset (the incident's start, its time
        to detect, its blast radius), and the window's start would make every drift look a day old."""
        if not moved:
            return None
        name = max(moved, key=lambda k: abs(moved[k]["t"]))
        num, den = self._hourly(s)[1][name]
        first = max(h - self.recent + 1, 0)
        if h >= len(den) or first > h:
            return None
        val, has = safe_div(num[first:h + 1], den[first:h + 1]), den[first:h + 1] > 0
        change, baseline = moved[name]["change"], moved[name]["baseline"]
        direction = 1.0 if change > 0 else -1.0
        # CUSUM's reference value: half the window's mean shift is subtracted from each hour, so
        # hours before the change (noise around the baseline) pull the estimate back towards it
        allowance = abs(change * baseline) / 2
        dev = np.where(has, (val - baseline) * direction - allowance, 0.0)
        tails = np.cumsum(dev[::-1])[::-1]  # tails[k] = deviation summed from hour first + k to h
        return offset + (first + int(np.argmax(tails))) * 60


# --------------------------------------------------------------------------- user rules
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_RATIOS = {
    "escalation_rate": ("escalations", "events"), "error_rate": ("errors", "events"),
    "retry_rate": ("retries", "events"), "refusal_rate": ("refusals", "events"),
    "hallucination_rate": ("hallucinated", "judged"), "score_mean": ("score_sum", "score_n"),
    "feedback_mean": ("feedback_sum", "feedback_n"), "confidence_mean": ("confidence_sum", "confidence_n"),
    "output_chars_mean": ("output_chars", "events"), "latency_ms_mean": ("latency_sum", "events"),
    "nonprod_share": ("nonprod", "events"),
}
# Rule metrics that are a ratio of two counts (their value is noisy when few events back it).
RATIO_METRICS = frozenset(_RATIOS)


class UserRule:
    """A rule from ``monitors.rules`` in hotwash.yaml, run by the same engine."""

    evidence = Evidence("all")
    kinds: ClassVar[dict[str, str]] = {}

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = f"rule.{rule.name}"
        self.category = rule.category
        self.severity = rule.severity
        self.lookback = rule.window

    def values(self, s: FeatureSeries) -> tuple[np.ndarray, np.ndarray]:
        """The rule's metric at every minute of ``s``, and the events over its window (the volume)."""
        w, m = self.rule.window, self.rule.metric
        volume = window_sum(s["events"], w)
        if m in _RATIOS:
            num, den = _RATIOS[m]
            return safe_div(window_sum(s[num], w), window_sum(s[den], w)), volume
        if m == "tokens":
            return window_sum(s["tokens_in"] + s["tokens_out"], w), volume
        if m == "max_session_calls":
            from scipy.ndimage import maximum_filter1d

            return maximum_filter1d(s[m], size=w, origin=(w - 1) // 2), volume
        return window_sum(s[m], w), volume

    def condition(self, s: FeatureSeries) -> np.ndarray:
        if self.rule.features is not None and s.feature not in self.rule.features:
            return np.zeros(len(s), dtype=bool)
        value, volume = self.values(s)
        return (volume >= self.rule.min_volume) & _OPS[self.rule.comparison](value, self.rule.threshold)

    def describe(self, s: FeatureSeries, i: int) -> Description:
        value = float(self.values(s)[0][i])
        r = self.rule
        return Description(max(0, i - r.window + 1),
                           f"rule {r.name}: {r.metric} of {s.feature} over {r.window} min is {value:.4g} "
                           f"({r.comparison} {r.threshold:g})", {"value": value})


def monitors_for(cfg: MonitorSettings, spec: Feature) -> list[Monitor]:
    """Every monitor for one feature, built-in families first, then the user's rules."""
    built: list[Monitor] = [
        HallucinationRate(cfg), Ungrounded(cfg), InjectionFollowed(cfg), InjectionAttempts(cfg),
        EscalationRate(cfg, spec), Calibration(cfg), CostSpike(cfg), CostCreep(cfg, spec), SessionLoop(cfg),
        RetryStorm(cfg), NonProdTraffic(cfg), BudgetBreach(cfg, spec), OffManifest(cfg), NewBehaviour(cfg),
        QualityDrift(cfg),
    ]
    built.extend(UserRule(r) for r in cfg.rules)
    return built
