"""A feature's per-minute rollups as dense numpy columns: what every monitor reads.

Minute ``i`` of a series is ``t0 + i`` minutes; minutes without traffic are zeros. Windowed sums
come from cumulative sums, so a monitor evaluates thousands of minutes in a few array operations,
and the live engine (a few new minutes at a time) and a backtest (weeks at once) compute the very
same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    """Dense per-minute columns of one feature from ``t0`` for ``len`` minutes.

    A series loaded from the store with ``columns`` holds only those columns at first (a backtest
    reads only what its monitors read); any other column is fetched from the store the first time it
    is asked for, so a monitor never sees a column that was left out as zeros.
    """

    def __init__(self, feature: str, t0: datetime, length: int = 0) -> None:
        self.feature = feature
        self.t0 = floor_minute(t0)
        self.cols: dict[str, np.ndarray] = {c: np.zeros(length) for c in COLUMNS}
        self._source: tuple[Any, datetime] | None = None  # (store, until) of columns still to load

    def __len__(self) -> int:
        return len(self.cols["events"])

    def time(self, i: int) -> datetime:
        return self.t0 + i * MINUTE

    def index(self, ts: datetime) -> int:
        return int((floor_minute(ts) - self.t0) // MINUTE)

    def __getitem__(self, name: str) -> np.ndarray:
        col = self.cols.get(name)
        if col is None:
            if name not in COLUMNS:
                raise KeyError(name)
            self._load_missing([name])
            col = self.cols[name]
        return col

    def _load_missing(self, names: Sequence[str]) -> None:
        assert self._source is not None
        store, until = self._source
        idx, values = store.rollup_arrays(self.feature, self.t0, until, names)
        n = len(self.cols["events"])
        for j, name in enumerate(names):
            col = np.zeros(n)
            col[idx] = values[j]
            self.cols[name] = col
        if len(self.cols) == len(COLUMNS):
            self._source = None

    def _load_all(self) -> None:
        if self._source is not None:
            self._load_missing([c for c in COLUMNS if c not in self.cols])

    def extend(self, until: datetime, rows: Iterable[Mapping[str, Any]]) -> None:
        """Grow the grid to end just before minute ``until`` and add ``rows`` (rollup dicts)."""
        self._load_all()
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
        self._load_all()
        drop = len(self) - keep
        if drop > 0:
            self.t0 += drop * MINUTE
            for name, arr in self.cols.items():
                self.cols[name] = arr[drop:].copy()

    @classmethod
    def load(cls, store: Any, feature: str, t0: datetime, until: datetime,
             columns: Iterable[str] | None = None) -> FeatureSeries:
        """The series of ``feature`` over [t0, until) straight from the store, vectorised: one query,
        numpy arrays from the DB-API rows. With ``columns``, only those (plus ``events``) are read now
        and the rest on first use."""
        series = cls(feature, t0)
        n = max(series.index(until), 0)
        wanted = list(COLUMNS) if columns is None else ["events", *sorted(set(columns) - {"events"})]
        unknown = set(wanted) - set(COLUMNS)
        if unknown:
            raise KeyError(f"not rollup columns: {sorted(unknown)}")
        idx, values = store.rollup_arrays(feature, series.t0, until, wanted)
        grid = np.zeros((len(wanted), n))
        if len(idx):
            grid[:, idx] = values
        series.cols = dict(zip(wanted, grid, strict=True))
        if len(wanted) < len(COLUMNS):
            series._source = (store, until)
        return series

    @classmethod
    def from_rows(cls, feature: str, t0: datetime, until: datetime,
                  rows: Iterable[Mapping[str, Any]]) -> FeatureSeries:
        series = cls(feature, t0)
        series.extend(until, rows)
        return series


class _Probe(FeatureSeries):
    """A series of zeros that notes which columns are read."""

    def __init__(self, feature: str, t0: datetime, length: int) -> None:
        super().__init__(feature, t0, length)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> np.ndarray:
        self.read.add(name)
        return super().__getitem__(name)


def columns_read(monitors: Iterable[Any], feature: str, t0: datetime) -> set[str] | None:
    """The rollup columns the ``condition`` of ``monitors`` read, found by running them once on a
    short series of zeros; None (meaning: read them all) if any of them fails there. Only an
    optimisation: a column missed here is still loaded when first asked for."""
    probe = _Probe(feature, t0, 3 * 60)
    try:
        for m in monitors:
            m.condition(probe)
    except Exception:  # a monitor that cannot run on zeros just gets every column
        return None
    return probe.read


def window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """``out[i]`` = sum of ``x[i-w+1 .. i]`` (fewer terms at the start)."""
    out = np.cumsum(x, dtype=float)
    if 0 < w < len(out):
        out[w:] -= out[:-w].copy()
    return out


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
