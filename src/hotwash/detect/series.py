"""A feature's per-minute rollups as dense numpy columns: what every monitor reads.

Minute ``i`` of a series is ``t0 + i`` minutes; minutes without traffic are zeros. Windowed sums
come from cumulative sums, so a monitor evaluates thousands of minutes in a few array operations,
and the live engine (a few new minutes at a time) and a backtest (weeks at once) compute the very
same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from hotwash.store.tables import CONFIDENCE_BINS

MINUTE = timedelta(minutes=1)

# The rollup columns a series carries (everything numeric of `rollups`).
COLUMNS = (
    "events", "tokens_in", "tokens_out", "cost_usd", "unpriced", "escalations", "errors", "retries",
    "sessions", "nonprod", "score_sum", "score_n", "feedback_sum", "feedback_n", "confidence_sum",
    "confidence_n", "latency_sum", "output_chars", "judged", "hallucinated", "ungrounded", "injections",
    "injections_followed", "offscope", "new_behaviours", "refusals", "max_session_calls",
    *[f"conf_{part}_{b}" for b in range(CONFIDENCE_BINS) for part in ("n", "sum", "ok")],
)


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


class FeatureSeries:
    """Dense per-minute columns of one feature from ``t0`` for ``len`` minutes."""

    def __init__(self, feature: str, t0: datetime, length: int = 0) -> None:
        self.feature = feature
        self.t0 = floor_minute(t0)
        self.cols: dict[str, np.ndarray] = {c: np.zeros(length) for c in COLUMNS}

    def __len__(self) -> int:
        return len(self.cols["events"])

    def time(self, i: int) -> datetime:
        return self.t0 + i * MINUTE

    def index(self, ts: datetime) -> int:
        return int((floor_minute(ts) - self.t0) // MINUTE)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def extend(self, until: datetime, rows: Iterable[Mapping[str, Any]]) -> None:
        """Grow the grid to end just before minute ``until`` and add ``rows`` (rollup dicts)."""
        n_new = self.index(until) - len(self)
        if n_new > 0:
            for name, arr in self.cols.items():
                self.cols[name] = np.concatenate([arr, np.zeros(n_new)])
        for row in rows:
            i = self.index(row["minute"])
            if 0 <= i < len(self):
                for name in COLUMNS:
                    self.cols[name][i] = row[name]

    def trim(self, keep: int) -> None:
        """Drop all but the last ``keep`` minutes (the live engine's memory bound)."""
        drop = len(self) - keep
        if drop > 0:
            self.t0 += drop * MINUTE
            for name, arr in self.cols.items():
                self.cols[name] = arr[drop:].copy()

    @classmethod
    def load(cls, store: Any, feature: str, t0: datetime, until: datetime) -> FeatureSeries:
        """The series of ``feature`` over [t0, until) straight from the store, vectorised."""
        series = cls(feature, t0)
        series.extend(until, ())
        minutes, values = store.rollup_matrix(feature, series.t0, until, COLUMNS)
        if minutes:
            idx = np.asarray(minutes, dtype=np.int64)
            matrix = np.asarray(values, dtype=float)
            for j, name in enumerate(COLUMNS):
                series.cols[name][idx] = matrix[:, j]
        return series

    @classmethod
    def from_rows(cls, feature: str, t0: datetime, until: datetime,
                  rows: Iterable[Mapping[str, Any]]) -> FeatureSeries:
        series = cls(feature, t0)
        series.extend(until, rows)
        return series


def window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """``out[i]`` = sum of ``x[i-w+1 .. i]`` (fewer terms at the start)."""
    cs = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    return cs[idx] - cs[np.maximum(idx - w, 0)]


def lagged_sum(x: np.ndarray, w: int, lag: int) -> np.ndarray:
    """``out[i]`` = sum of ``x[i-lag-w+1 .. i-lag]``: a baseline window ending ``lag`` minutes ago."""
    s = window_sum(x, w)
    out = np.zeros_like(s)
    if lag < len(s):
        out[lag:] = s[: len(s) - lag]
    return out


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def block_sums(x: np.ndarray, block: int, offset: int) -> np.ndarray:
    """Sums of consecutive blocks of ``block`` minutes, the first starting at ``offset``."""
    n = (len(x) - offset) // block
    if n <= 0:
        return np.zeros(0)
    return x[offset: offset + n * block].reshape(n, block).sum(axis=1)
