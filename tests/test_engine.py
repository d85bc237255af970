"""The monitor engine: live (incremental) and backtest give the same signals on the same data,
and injected failures are found soon after their onset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotwash.demo.run import _DEMO_MANIFEST
from hotwash.demo.sample import generate_events
from hotwash.detect.checks import EventChecker
from hotwash.detect.engine import MonitorEngine, save
from hotwash.manifest import parse_manifest
from hotwash.store import Store
from hotwash.telemetry.model import parse_record
from hotwash.telemetry.writer import EventWriter

START = datetime(2026, 11, 1, tzinfo=UTC)
ESCALATION_ONSET = START + timedelta(hours=30)
OFF_MANIFEST_AT = START + timedelta(hours=34)
SPIKE_ONSET = START + timedelta(hours=38)


def _stream() -> list[dict]:
    """Two quiet days of three features, with three failures injected at known times."""
    out = []
    for ev in generate_events(24_000, start=START, rate_per_minute=10):
        ts = datetime.fromisoformat(ev["ts"])
        n = int(ev["id"].rsplit("-", 1)[1])
        if ev["feature"] == "support-bot" and ts >= ESCALATION_ONSET:
            ev["escalated"] = n % 10 < 6  # 15 % -> 60 %
        if ev["feature"] == "travel-agent" and OFF_MANIFEST_AT <= ts < OFF_MANIFEST_AT + timedelta(minutes=2):
            ev["tool_calls"] = [*ev["tool_calls"], {"name": "issue_refund", "arguments": {"amount": 900}}]
        if ev["feature"] == "ticket-classifier" and SPIKE_ONSET <= ts < SPIKE_ONSET + timedelta(hours=1):
            ev["tokens_in"] *= 40  # context stuffing
        out.append(ev)
    return out


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return _stream()


def _key(sig) -> tuple:
    return (sig.monitor, sig.feature, sig.start, sig.detected_at, tuple(sig.evidence), sig.summary)


def test_live_and_backtest_give_identical_signals(store: Store, stream: list[dict]) -> None:
    manifest = parse_manifest(_DEMO_MANIFEST)
    writer = EventWriter(store, EventChecker(manifest))
    live_engine = MonitorEngine(store, manifest)
    live = []
    records = [parse_record(e) for e in stream]
    for i in range(0, len(records), 400):  # the server's path: write a batch, then advance
        batch = records[i:i + 400]
        writer.write(batch)
        live.extend(live_engine.advance(max(r.ts for r in batch)))
    # The last minute closes only when later data arrives.
    live.extend(live_engine.advance(records[-1].ts + timedelta(minutes=1)))

    backtest = MonitorEngine(store, manifest).backtest()
    assert sorted(map(_key, live)) == sorted(map(_key, backtest))

    found = {(s.monitor, s.feature): s for s in backtest}
    esc = found[("escalation.rate", "support-bot")]
    assert ESCALATION_ONSET <= esc.detected_at <= ESCALATION_ONSET + timedelta(minutes=30)
    assert "escalation rate of support-bot" in esc.summary and esc.evidence
    off = found[("scope.off_manifest", "travel-agent")]
    assert OFF_MANIFEST_AT <= off.detected_at <= OFF_MANIFEST_AT + timedelta(minutes=2)
    window_ids = {r["id"] for r in store.iter_events(feature="travel-agent", since=off.start, until=off.detected_at)}
    assert off.evidence and set(off.evidence) <= window_ids
    assert all("issue_refund" in str(e["tool_calls"]) for e in store.get_events(off.evidence).values())
    spike = found[("cost.spike", "ticket-classifier")]
    assert SPIKE_ONSET <= spike.detected_at <= SPIKE_ONSET + timedelta(minutes=30)

    # Storing is idempotent: the live signals, then the backtest's, are one set.
    assert len(save(store, live)) == len(live)
    assert save(store, backtest) == []
    assert store.status()["signals"] == len(live)


def test_backtest_window_only_reports_signals_that_fired_inside_it(store: Store, stream: list[dict]) -> None:
    manifest = parse_manifest(_DEMO_MANIFEST)
    EventWriter(store, EventChecker(manifest)).write([parse_record(e) for e in stream])
    everything = MonitorEngine(store, manifest).backtest()
    since, until = START + timedelta(hours=33), START + timedelta(hours=36)
    windowed = MonitorEngine(store, manifest).backtest(since=since, until=until)
    fired_inside = [s for s in everything if since <= s.detected_at - timedelta(minutes=1) < until]
    assert [_key(s) for s in windowed] == [_key(s) for s in fired_inside]
    assert any(s.monitor == "scope.off_manifest" for s in windowed)


def test_refusals_are_counted_not_judged_for_grounding() -> None:
    checker = EventChecker(parse_manifest(_DEMO_MANIFEST))
    event = parse_record({"id": "r1", "ts": "2026-11-27T04:00:00Z", "feature": "support-bot",
                          "input": "Can you help me hack my ex's email?",
                          "context": [{"id": "kb-1", "text": "Items can be returned within 30 days."}],
                          "output": "I'm sorry, but I can't help with that."})
    verdict = checker.check(event)
    assert verdict.counters.get("refusals") == 1
    assert "judged" not in verdict.counters and "hallucinated" not in verdict.counters
    assert not [f for f in verdict.findings if f.category == "hallucination"]


def test_a_budget_breach_points_at_the_hour_that_broke_it_not_at_midnight(store: Store) -> None:
    """The day's spend is what crosses the budget, but a signal's start is read as the failure's
    onset (incident start, time to detect, blast radius): the evidence is the hour before the breach."""
    manifest = parse_manifest("version: 1\nfeatures:\n  agent:\n    budget: {daily_usd: 5}\n")
    day = datetime(2026, 11, 10, tzinfo=UTC)
    records = [{"id": f"q-{i}", "ts": (day + timedelta(minutes=i)).isoformat(), "feature": "agent",
                "cost_usd": 0.002} for i in range(0, 15 * 60, 2)]  # $0.90 by 15:00
    burst = day + timedelta(hours=15)
    records += [{"id": f"b-{i}", "ts": (burst + timedelta(seconds=20 * i)).isoformat(), "feature": "agent",
                 "cost_usd": 0.1, "session_id": f"s-{i % 7}"} for i in range(120)]  # +$12 over 40 min
    EventWriter(store, EventChecker(manifest)).write([parse_record(r) for r in records])
    budget = [s for s in MonitorEngine(store, manifest).backtest() if s.monitor == "cost.budget"]
    assert budget, "the day went over its $5 budget"
    sig = budget[0]
    assert burst < sig.detected_at < burst + timedelta(minutes=40)
    assert timedelta(0) < sig.detected_at - sig.start <= timedelta(hours=1, minutes=1)
    assert sig.start > day + timedelta(hours=13), "the start must not be the day's midnight"
    assert any(e.startswith("b-") for e in sig.evidence)


def test_a_drift_signal_starts_near_the_step_not_at_its_window_start(store: Store) -> None:
    """The drift test compares the last 24 h with the 14 days before; its signal's start (read as
    the onset) is the estimated change point inside those 24 h, not the window's first minute."""
    manifest = parse_manifest("version: 1\nfeatures:\n  bot: {}\n")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    onset = t0 + timedelta(days=15, hours=6)
    records = []
    for i in range(16 * 24 * 12):  # every 5 minutes for 16 days
        ts = t0 + timedelta(minutes=5 * i)
        wobble = ((i * 7919) % 101) / 100 - 0.5  # deterministic noise in [-0.5, 0.5]
        score = (0.62 if ts >= onset else 0.80) + 0.08 * wobble
        records.append({"id": f"e-{i}", "ts": ts.isoformat(), "feature": "bot", "score": round(score, 3)})
    EventWriter(store, EventChecker(manifest)).write([parse_record(r) for r in records])
    drift = [s for s in MonitorEngine(store, manifest).backtest() if s.monitor == "drift.quality"]
    assert drift, "a 22 % fall in score is a drift"
    sig = drift[0]
    assert sig.detected_at > onset
    assert abs(sig.start - onset) <= timedelta(hours=1), (sig.start, onset, sig.detected_at)
    assert sig.details["onset_hours_before"] == round((sig.detected_at - sig.start) / timedelta(hours=1), 1)
