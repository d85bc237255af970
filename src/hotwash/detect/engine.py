"""One monitor engine for live detection and backtests.

:meth:`MonitorEngine.backtest` loads each feature's rollups for a range and evaluates every
monitor over it; :meth:`MonitorEngine.advance` is called by the server as data time moves and
evaluates only the minutes that closed since the last call, over an in-memory series it keeps.
Both end in :meth:`MonitorEngine._evaluate`, and a monitor's condition at a minute depends only
on the data up to that minute, so the two modes give the same signals on the same data (a test
holds them to it).

A minute is *closed* once data time (the newest event seen) is past its end plus ``lateness``.
Events that arrive later than that still land in the store and in later backtests, but the live
engine has already judged their minute.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError

from hotwash.detect.monitors import Monitor, UserRule, monitors_for
from hotwash.detect.series import MINUTE, FeatureSeries, columns_read, floor_minute
from hotwash.manifest import Feature, Manifest, Rule
from hotwash.store import Store

log = logging.getLogger("hotwash.detect")

# How far back each signal's diagnosis looks for changes (deploys, prompt/model switches).
CHANGE_HORIZON = timedelta(days=7)
# A relative change of mean input size that counts as an input-distribution shift.
INPUT_SHIFT = 0.25
# Feature series a backtest loads ahead, on as many threads, while it evaluates one.
LOAD_AHEAD = 2


@dataclass
class Signal:
    monitor: str
    category: str
    feature: str
    severity: str
    start: datetime
    detected_at: datetime
    evidence: list[str]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = _iso(self.start)
        out["detected_at"] = _iso(self.detected_at)
        return out

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": datetime.now(UTC)}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """numpy scalars and datetimes -> JSON-ready values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime):
        return _iso(value)
    return value


class MonitorEngine:
    """Runs every built-in monitor, the manifest's rules and the enabled stored monitors (born from
    incidents, `hotwash monitor add --from`); with ``only``, exactly those rules and nothing else, which
    is how candidate and stored monitors are replayed over an incident's data by this same code."""

    def __init__(self, store: Store, manifest: Manifest | None = None, *,
                 lateness: timedelta = timedelta(0), start_at: datetime | None = None,
                 only: Sequence[Rule] | None = None) -> None:
        self.store = store
        self.manifest = manifest or Manifest()
        self.lateness = lateness
        self.cooldown = self.manifest.monitors.cooldown
        self.only = list(only) if only is not None else None
        self._monitors: dict[str, list[Monitor]] = {}
        self._stored: list[Rule] = []
        self._stamp: tuple[tuple[int, bool], ...] | None = None
        self._series: dict[str, FeatureSeries] = {}
        self._closed: datetime | None = floor_minute(start_at) if start_at else None
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------
    def monitors(self, feature: str) -> list[Monitor]:
        if feature not in self._monitors:
            if self.only is not None:
                built: list[Monitor] = [UserRule(r) for r in self.only]
            else:
                spec = self.manifest.features.get(feature, Feature())
                built = [*monitors_for(self.manifest.monitors, spec), *(UserRule(r) for r in self._stored)]
            # A rule scoped to other features never fires here: leave it out (and its feature's data unread).
            self._monitors[feature] = [m for m in built if not isinstance(m, UserRule)
                                       or m.rule.features is None or feature in m.rule.features]
        return self._monitors[feature]

    def refresh_stored(self) -> None:
        """Reload the stored monitors if they changed since the last look (one small query)."""
        if self.only is not None:
            return
        stamp = self.store.stored_monitors_stamp()
        if stamp == self._stamp:
            return
        rules = []
        for row in self.store.list_stored_monitors(enabled=True):
            try:
                rule = Rule.model_validate({"features": [row["feature"]], **row["rule"]})
            except ValidationError as exc:  # a bad row must not stop detection of everything else
                log.warning("stored monitor %s is not a valid rule and is skipped: %s", row["name"], exc)
                continue
            rules.append(rule)
        self._stored, self._stamp = rules, stamp
        self._monitors.clear()

    def history(self, feature: str) -> int:
        """Minutes of past data the monitors of ``feature`` need, plus the cooldown."""
        return max((m.lookback for m in self.monitors(feature)), default=1) + self.cooldown + 1

    # -- backtest -----------------------------------------------------------------------------
    def backtest(self, *, since: datetime | None = None, until: datetime | None = None) -> list[Signal]:
        """Every signal whose firing minute lies in [since, until), over stored rollups."""
        lo, hi = self.store.data_range()
        if lo is None or hi is None:
            return []
        since = floor_minute(since) if since else lo
        until = floor_minute(until) if until else hi + MINUTE
        self.refresh_stored()
        jobs = []
        for feature in self.store.features():
            if not self.monitors(feature):
                continue
            t0 = since - self.history(feature) * MINUTE
            # only the columns the monitors read (others load on first use): a third less to fetch
            jobs.append((feature, t0, columns_read(self.monitors(feature), feature, t0)))
        signals: list[Signal] = []
        for series in self._load_ahead(jobs, until):
            if not series["events"].any():
                continue
            signals.extend(self._evaluate(series, series.index(since)))
        signals.sort(key=lambda s: (s.detected_at, s.feature, s.monitor))
        return signals

    def _load_ahead(self, jobs: list[tuple[str, datetime, set[str] | None]], until: datetime
                    ) -> Iterator[FeatureSeries]:
        """The series of ``jobs`` in order, the next ones loading on other threads while one is
        evaluated (the database and numpy work mostly without the GIL)."""
        def load(job: tuple[str, datetime, set[str] | None]) -> FeatureSeries:
            return FeatureSeries.load(self.store, job[0], job[1], until, job[2])

        if len(jobs) < 2 or not self.store.parallel_reads:
            yield from map(load, jobs)
            return
        with ThreadPoolExecutor(max_workers=LOAD_AHEAD, thread_name_prefix="hotwash-backtest") as pool:
            pending = deque(pool.submit(load, job) for job in jobs[:LOAD_AHEAD])
            for job in jobs[LOAD_AHEAD:]:
                series = pending.popleft().result()
                pending.append(pool.submit(load, job))
                yield series
            while pending:
                yield pending.popleft().result()

    # -- live ---------------------------------------------------------------------------------
    def advance(self, watermark: datetime) -> list[Signal]:
        """Evaluate the minutes closed by data time reaching ``watermark``."""
        with self._lock:
            closed = floor_minute(watermark - self.lateness)
            if self._closed is None:
                lo, _ = self.store.data_range()
                if lo is None:
                    return []
                self._closed = lo
            if closed <= self._closed:
                return []
            prev, self._closed = self._closed, closed
            self.refresh_stored()
            fresh: dict[str, list[dict[str, Any]]] = {}
            for row in self.store.rollups_between(prev, closed):
                fresh.setdefault(row["feature"], []).append(row)
            signals: list[Signal] = []
            for feature in sorted(set(fresh) | set(self._series)):
                keep = self.history(feature)
                series = self._series.get(feature)
                if series is None:
                    series = FeatureSeries.load(self.store, feature, prev - keep * MINUTE, closed)
                    self._series[feature] = series
                else:
                    series.extend(closed, fresh.get(feature, ()))
                signals.extend(self._evaluate(series, series.index(prev)))
                series.trim(keep)
            return signals

    # -- the one evaluation path --------------------------------------------------------------
    def _evaluate(self, series: FeatureSeries, first: int) -> list[Signal]:
        out: list[Signal] = []
        first = max(first, 0)
        for monitor in self.monitors(series.feature):
            cond = monitor.condition(series)
            for i in np.flatnonzero(cond[first:]) + first:
                if cond[max(0, i - self.cooldown): i].any():
                    continue  # the same episode: one signal per monitor and feature, no storm
                out.append(self._signal(monitor, series, int(i)))
        return out

    def _signal(self, monitor: Monitor, series: FeatureSeries, i: int) -> Signal:
        d = monitor.describe(series, i)
        start, detected = series.time(d.start), series.time(i) + MINUTE
        ev = monitor.evidence
        evidence = self.store.evidence_ids(series.feature, start, detected, kind=ev.kind, category=ev.category)
        details = dict(d.details)
        changes = self.store.changes_between(series.feature, start - CHANGE_HORIZON, detected)
        if changes:
            details["changes"] = [{k: c[k] for k in ("id", "ts", "kind", "version", "previous", "description")}
                                  for c in changes]
        if monitor.category == "drift":
            details["attribution"] = self._attribute(series.feature, start, detected)
        return Signal(monitor.name, monitor.category, series.feature, d.severity or monitor.severity,
                      start, detected, evidence, d.summary, _plain(details))

    def _attribute(self, feature: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Did the model, the prompt or the inputs change between the baseline and now?"""
        span = end - start
        before = self.store.version_mix(feature, start - 2 * span, start)
        after = self.store.version_mix(feature, start, end)
        out: dict[str, Any] = {}
        for key in ("model", "prompt_version"):
            new = sorted(set(after[key]) - set(before[key]))
            if new:
                out[f"{key}_changed"] = {"before": before[key], "after": after[key], "new": new}
        shifted = {}
        p0 = self.store.input_profile(feature, start - 2 * span, start)
        p1 = self.store.input_profile(feature, start, end)
        for key in ("mean_tokens_in", "mean_input_chars"):
            if p0[key] > 0 and abs(p1[key] / p0[key] - 1) >= INPUT_SHIFT:
                shifted[key] = {"before": round(p0[key], 1), "after": round(p1[key], 1)}
        if shifted:
            out["input_shift"] = shifted
        eval_set = self.store.last_change(feature, "eval_set", end)
        out["eval_set_age_days"] = round((end - eval_set["ts"]).total_seconds() / 86400, 1) if eval_set else None
        return out


def save(store: Store, signals: list[Signal]) -> list[Signal]:
    """Store signals (idempotent); returns the ones that were new."""
    new_ids = store.save_signals([s.row() for s in signals])
    if len(new_ids) == len(signals):
        return signals
    stored = {(r["monitor"], r["feature"], r["start"]) for r in store.list_signals() if r["id"] in set(new_ids)}
    return [s for s in signals if (s.monitor, s.feature, s.start) in stored]
