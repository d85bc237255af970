"""Monitors born from incidents (`hotwash monitor add --from`), on both databases, over real stored
telemetry from the scenario simulator: the proposed rule fires before the real detection, never on
the quiet days (checked against the raw events, not only by the engine that chose it), and once
stored it runs in the engine's backtest and live modes alongside every other monitor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache

import orjson
import pytest
from typer.testing import CliRunner

from hotwash.cli import app
from hotwash.demo.scenarios import Scenario, single
from hotwash.detect.checks import EventChecker
from hotwash.detect.engine import MonitorEngine, save
from hotwash.errors import Conflict, HotwashError, InvalidValue, NotFound
from hotwash.evals import monitor_from_incident as mfi
from hotwash.incidents import service
from hotwash.manifest import Manifest, parse_manifest
from hotwash.store import Store
from hotwash.telemetry.model import parse_record
from hotwash.telemetry.writer import EventWriter

FEATURE = "ticket-classifier"
MINUTE = timedelta(minutes=1)


@cache
def _scenario() -> tuple[Scenario, list[dict]]:
    """Three quiet days of a ticket classifier, then its escalation rate jumps from 20 % to 60 %."""
    sc = single("escalation_overload", feature=FEATURE, quiet_days=3, after_days=0.25, rate_per_minute=5, seed=1)
    return sc, [e for e in sc.events() if e.get("feature") == FEATURE]


def _incident(store: Store) -> tuple[Manifest, dict]:
    """Ingest the scenario through the real writer, detect, and let the incident policy open the incident."""
    sc, events = _scenario()
    manifest = parse_manifest(sc.manifest_yaml())
    EventWriter(store, EventChecker(manifest)).write([parse_record(dict(e)) for e in events])
    signals = save(store, MonitorEngine(store, manifest).backtest())
    [inc] = service.on_signals(store, manifest, signals)
    assert inc["opened"] and inc["category"] == "escalation_overload" and inc["feature"] == FEATURE
    return manifest, inc


def _minute(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC).replace(second=0, microsecond=0)


def _raw_rates(window: int) -> dict[datetime, tuple[int, int]]:
    """(escalated, calls) over the ``window`` minutes ending at each minute, counted from the raw events."""
    _, events = _scenario()
    calls, escalated = Counter(), Counter()
    for e in events:
        m = _minute(e["ts"])
        calls[m] += 1
        escalated[m] += bool(e.get("escalated"))
    lo, hi = min(calls), max(calls)
    out, t = {}, lo
    while t <= hi:
        span = [t - i * MINUTE for i in range(window)]
        out[t] = (sum(escalated[m] for m in span), sum(calls[m] for m in span))
        t += MINUTE
    return out


def test_proposed_rule_fires_earlier_never_on_quiet_days_and_runs_live_and_in_backtest(store: Store) -> None:
    manifest, inc = _incident(store)
    sc, _ = _scenario()
    onset = sc.failures[0].onset
    proposal = mfi.propose(store, manifest, inc, quiet_days=3)
    rule = proposal.rule

    # The rule is the manifest's rule shape, on the metric that fired, over a shorter window.
    assert rule.metric == "escalation_rate" and rule.comparison == ">="
    assert rule.window < 15 and rule.features == [FEATURE] and rule.category == "escalation_overload"
    assert rule.name == f"inc-{inc['number']}-escalation-rate-{rule.window}m"
    assert proposal.learned_from == ["escalation.rate"]
    # It fires after the failure really began (ground truth) and before the real detection.
    detected = inc["detected_at"]
    assert onset < proposal.fired_at < detected
    assert proposal.lead_time_s == (detected - proposal.fired_at).total_seconds() > 0
    assert proposal.false_alarms == 0
    assert proposal.windows.start == inc["started_at"]
    assert proposal.windows.quiet_start == inc["started_at"] - timedelta(days=3)
    # The default week is cut to the stored data.
    assert mfi.incident_windows(store, inc).quiet_start == sc.start

    # Independent check from the raw events: silent on every quiet minute, true at the firing minute.
    rates = _raw_rates(rule.window)
    fired_minute = proposal.fired_at - MINUTE

    def fires(m: datetime) -> bool:
        k, n = rates[m]
        return n >= rule.min_volume and k / n >= rule.threshold

    quiet = [m for m in rates if proposal.windows.quiet_start <= m < proposal.windows.start]
    assert len(quiet) > 2 * 1440
    assert not any(fires(m) for m in quiet)
    busiest_quiet = max(k / n for k, n in (rates[m] for m in quiet) if n >= rule.min_volume)
    assert busiest_quiet == pytest.approx(proposal.quiet_worst) and rule.threshold > busiest_quiet
    assert fires(fired_minute)
    assert not any(fires(m) for m in rates if proposal.windows.start <= m < fired_minute)

    # Stored, it runs in every backtest and in the live engine, alongside the built-in monitors.
    live = MonitorEngine(store, manifest)
    assert live.advance(onset - timedelta(hours=1)) == []  # first call: starts at the data's first minute
    stored = mfi.store_proposal(store, manifest, proposal, incident_id=inc["number"], actor="alice")
    assert stored["name"] == rule.name and stored["incident"] == inc["id"] and stored["source"] == "stored"
    name = f"rule.{rule.name}"
    backtest = MonitorEngine(store, manifest).backtest()
    mine = [s for s in backtest if s.monitor == name]
    assert [s.detected_at for s in mine][:1] == [proposal.fired_at]
    assert {s.monitor for s in backtest} == {"escalation.rate", name}
    later = live.advance(proposal.windows.end + MINUTE)  # picks up the monitor stored since its last pass
    assert [s.detected_at for s in later if s.monitor == name][:1] == [proposal.fired_at]

    listed = mfi.list_monitors(store, manifest)
    assert [(m["name"], m["source"], m["incident"]) for m in listed] == [(rule.name, "stored", inc["id"])]
    assert listed[0]["rule"]["threshold"] == rule.threshold
    entries = [e for e in service.get_incident(store, inc["id"])["timeline"] if e["kind"] == "monitor"]
    assert len(entries) == 1 and rule.name in entries[0]["text"] and entries[0]["actor"] == "alice"
    assert entries[0]["data"]["lead_time_s"] == proposal.lead_time_s

    # Names are unique; the next proposal gets a free name; removal stops it everywhere.
    with pytest.raises(Conflict, match="already exists"):
        mfi.store_proposal(store, manifest, proposal, incident_id=inc["number"], actor="alice")
    assert mfi.propose(store, manifest, inc, quiet_days=3).rule.name == f"{rule.name}-2"
    mfi.remove_monitor(store, manifest, rule.name, actor="alice")
    assert not [s for s in MonitorEngine(store, manifest).backtest() if s.monitor == name]
    assert not [s for s in live.advance(proposal.windows.end + 2 * MINUTE) if s.monitor == name]
    with pytest.raises(NotFound, match="no stored monitor named"):
        mfi.remove_monitor(store, manifest, rule.name, actor="alice")

    # When the quiet days already reached the level of the 'incident' window, no threshold separates
    # them: pretend the incident started a day earlier, on normal traffic.
    fake = {**inc, "signals": [], "started_at": inc["started_at"] - timedelta(days=1),
            "detected_at": inc["started_at"] - timedelta(days=1) + timedelta(minutes=10)}
    with pytest.raises(HotwashError, match="no metric of ticket-classifier moved past its quiet-day values"):
        mfi.propose(store, manifest, fake, quiet_days=1, after=timedelta(hours=2))
    # No telemetry before the start: no quiet day to check false alarms on.
    early = {**inc, "signals": [], "started_at": sc.start - timedelta(days=1), "detected_at": sc.start}
    with pytest.raises(HotwashError, match="no telemetry is stored before"):
        mfi.propose(store, manifest, early)
    with pytest.raises(InvalidValue, match="not a valid monitor name"):
        mfi.propose(store, manifest, inc, quiet_days=3, name="Bad Name!")


def test_monitor_commands(store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path, db_url: str) -> None:
    """`hotwash monitor list/add/remove` through the CLI: manifest rules are listed with the stored ones,
    and bad references are errors that say what to do."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTWASH_DATABASE_URL", db_url)
    (tmp_path / "hotwash.yaml").write_text(
        "version: 1\nmonitors:\n  rules:\n    - {name: spend-cap, category: runaway_cost, metric: cost_usd,"
        " window: 60m, threshold: 5, features: [travel-agent]}\n")
    runner = CliRunner()
    listed = runner.invoke(app, ["monitor", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [rule] = orjson.loads(listed.stdout)
    assert (rule["name"], rule["source"], rule["feature"], rule["rule"]["window"]) == \
        ("spend-cap", "manifest", "travel-agent", 60)
    store.add_stored_monitor(name="by-hand", incident_id=None, feature="support-bot", now=datetime.now(UTC),
                             rule={"name": "by-hand", "category": "drift", "metric": "score_mean", "window": 60,
                                   "comparison": "<", "threshold": 0.5})
    table = runner.invoke(app, ["monitor", "list"])
    assert table.exit_code == 0 and "spend-cap" in table.stdout and "by-hand" in table.stdout
    missing = runner.invoke(app, ["monitor", "add", "--from", "INC-9"])
    assert isinstance(missing.exception, NotFound) and "no incident INC-9" in str(missing.exception)
    manifest_rule = runner.invoke(app, ["monitor", "remove", "spend-cap"])
    assert isinstance(manifest_rule.exception, InvalidValue) and "hotwash.yaml" in str(manifest_rule.exception)
    removed = runner.invoke(app, ["monitor", "remove", "by-hand", "--json"])
    assert removed.exit_code == 0 and orjson.loads(removed.stdout)["name"] == "by-hand"
    assert store.list_stored_monitors() == []


def test_stored_monitors_store_queries(store: Store) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rule = {"name": "m1", "category": "drift", "metric": "score_mean", "window": 60, "comparison": "<",
            "threshold": 0.5}
    row = store.add_stored_monitor(name="m1", incident_id=None, feature="bot", rule=rule, now=now)
    assert (row["name"], row["feature"], row["enabled"], row["rule"]) == ("m1", "bot", True, rule)
    store.add_stored_monitor(name="m2", incident_id=None, feature="bot", rule={**rule, "name": "m2"}, now=now,
                             enabled=False)
    assert [r["name"] for r in store.list_stored_monitors(enabled=True)] == ["m1"]
    assert [r["name"] for r in store.list_stored_monitors(feature="bot")] == ["m1", "m2"]
    stamp = store.stored_monitors_stamp()
    assert [enabled for _, enabled in stamp] == [True, False]
    with pytest.raises(Conflict):
        store.add_stored_monitor(name="m1", incident_id=None, feature="x", rule=rule, now=now)
    assert store.remove_stored_monitor("m2") and not store.remove_stored_monitor("m2")
    assert store.get_stored_monitor("m2") is None and store.stored_monitors_stamp() != stamp
    # A stored rule the engine cannot read is skipped, not fatal to detection.
    store.add_stored_monitor(name="broken", incident_id=None, feature="bot", rule={"metric": "nope"}, now=now)
    engine = MonitorEngine(store, Manifest())
    engine.refresh_stored()
    assert [r.name for r in engine._stored] == ["m1"]
