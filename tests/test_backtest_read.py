"""The backtest's fast read of rollups (``Store.rollup_arrays``, ``FeatureSeries.load`` with only the
columns the monitors read, the rest on first use) gives exactly the numbers of a full read, on both
databases; and the windowed sums the monitors use match their definition."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from hotwash.detect.engine import MonitorEngine
from hotwash.detect.monitors import HallucinationRate, monitors_for
from hotwash.detect.series import COLUMNS, MINUTE, FeatureSeries, columns_read, lagged_sum, window_sum
from hotwash.manifest import Feature, Manifest
from hotwash.store import ROLLUP_COUNTERS, Store

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _rows(feature: str, minutes: list[int], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for m in minutes:
        row = {"feature": feature, "minute": T0 + m * MINUTE, "sessions": 0, "max_session_calls": 0}
        for name in ROLLUP_COUNTERS:
            # floats with all their digits (sums of costs and scores), ints for counts
            row[name] = float(rng.random() * 10 + 1 / 3) if name.endswith("sum") or name == "cost_usd" \
                else int(rng.integers(0, 50))
        out.append(row)
    return out


@pytest.fixture
def filled(store: Store) -> Store:
    with store.transaction() as conn:
        store.add_rollups(conn, _rows("bot", [0, 1, 2, 5, 9, 60, 61, 200], seed=1))
        store.add_rollups(conn, _rows("other", [0, 3, 4], seed=2))
    return store


def test_rollup_arrays_exact_and_offsets(filled: Store) -> None:
    full = {r["minute"]: r for r in filled.rollup_rows(feature="bot")}
    cols = ["cost_usd", "events", "score_sum"]
    idx, values = filled.rollup_arrays("bot", T0 - 3 * MINUTE, T0 + 100 * MINUTE, cols)
    assert idx.tolist() == [3, 4, 5, 8, 12, 63, 64]  # minutes since the start; 200 is past the end
    assert values.shape == (3, 7) and values.flags.c_contiguous
    for j, name in enumerate(cols):
        expect = [full[T0 + (i - 3) * MINUTE][name] for i in idx.tolist()]
        assert values[j].tolist() == expect  # bit-exact, floats included
    none_idx, none_values = filled.rollup_arrays("nobody", T0, T0 + MINUTE, cols)
    assert len(none_idx) == 0 and none_values.shape == (3, 0)
    # the plain-tuple read gives the same numbers
    offsets, tuples = filled.rollup_matrix("bot", T0 - 3 * MINUTE, T0 + 100 * MINUTE, cols)
    assert offsets == idx.tolist() and [list(t) for t in tuples] == values.T.tolist()


def test_counts_too_large_to_pack_are_read_plainly(store: Store) -> None:
    rows = _rows("big", [0, 1, 2], seed=3)
    rows[1]["events"] = 2**26 + 5  # SQLite reads pack two counters into one value below 2**26 each
    rows[2]["judged"] = 2**31 - 1  # the largest INTEGER on PostgreSQL
    with store.transaction() as conn:
        store.add_rollups(conn, rows)
    idx, values = store.rollup_arrays("big", T0, T0 + 10 * MINUTE, ["judged", "events", "cost_usd", "refusals"])
    assert idx.tolist() == [0, 1, 2]
    assert values[1].tolist() == [rows[0]["events"], 2**26 + 5, rows[2]["events"]]
    assert values[0].tolist() == [rows[0]["judged"], rows[1]["judged"], 2**31 - 1]
    assert values[2].tolist() == [r["cost_usd"] for r in rows] and values[3].tolist() == [r["refusals"] for r in rows]


def test_partial_load_equals_full_load_and_fetches_the_rest_on_use(filled: Store) -> None:
    start, until = T0 - 10 * MINUTE, T0 + 300 * MINUTE
    full = FeatureSeries.load(filled, "bot", start, until)
    part = FeatureSeries.load(filled, "bot", start, until, columns={"hallucinated", "judged"})
    assert len(part) == len(full) == 310
    assert set(part.cols) == {"events", "hallucinated", "judged"}
    for name in ("events", "hallucinated", "judged"):
        assert np.array_equal(part[name], full[name])
    # a column left out is read on first use, not taken as zeros
    assert full["cost_usd"].sum() > 0
    assert np.array_equal(part["cost_usd"], full["cost_usd"])
    with pytest.raises(KeyError):
        part["no_such_column"]
    # growing or trimming a partial series first completes it
    part.trim(100)
    full.trim(100)
    assert set(part.cols) == set(COLUMNS)
    for name in COLUMNS:
        assert np.array_equal(part[name], full[name]), name
    with pytest.raises(KeyError):
        FeatureSeries.load(filled, "bot", start, until, columns={"nope"})


def test_columns_read_by_monitors() -> None:
    cfg = Manifest().monitors
    cols = columns_read([HallucinationRate(cfg)], "bot", T0)
    assert cols == {"hallucinated", "judged"}
    every = columns_read(monitors_for(cfg, Feature()), "bot", T0)
    assert every is not None and {"events", "cost_usd", "escalations", "conf_n_0", "score_sum"} <= every
    assert every < set(COLUMNS)  # the backtest reads fewer columns than there are

    class Broken:
        def condition(self, s: FeatureSeries) -> np.ndarray:
            raise ValueError("cannot run on zeros")

    assert columns_read([HallucinationRate(cfg), Broken()], "bot", T0) is None  # then: read them all


def test_backtest_on_parallel_loads_matches_one_at_a_time(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with filled.transaction() as conn:  # enough features to load ahead
        for k in range(4):
            filled.add_rollups(conn, _rows(f"f{k}", list(range(0, 600, 7)), seed=10 + k))
    engine = MonitorEngine(filled, Manifest())
    ahead = [s.to_json() for s in engine.backtest()]
    monkeypatch.setattr(type(filled), "parallel_reads", property(lambda self: False))
    one = [s.to_json() for s in MonitorEngine(filled, Manifest()).backtest()]
    assert ahead == one


def test_window_sums_match_their_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(500) * 3
    for w in (1, 5, 60, 499, 500, 2000):
        naive = np.array([x[max(0, i - w + 1): i + 1].sum() for i in range(len(x))])
        assert np.allclose(window_sum(x, w), naive, rtol=0, atol=1e-9), w
        lag = 7
        lagged = np.array([x[max(0, i - lag - w + 1): i - lag + 1].sum() if i >= lag else 0.0 for i in range(len(x))])
        assert np.allclose(lagged_sum(x, w, lag), lagged, rtol=0, atol=1e-9), w
    assert window_sum(np.zeros(0), 5).shape == (0,)
    # the same sums as the previous formula, bit for bit (live and backtest must agree exactly)
    cs = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    assert np.array_equal(window_sum(x, 60), cs[idx] - cs[np.maximum(idx - 60, 0)])
