"""Detection quality and speed on simulated scenarios (issue 3's targets).

For each failure kind, a scenario of quiet weeks then one failure at a known onset
(`hotwash.demo.scenarios.single`) is ingested through the real writer and per-event checks into a
fresh SQLite store, and every monitor is backtested over it. Printed per case: the detection
delay from onset of the first signal of the failure's category on its feature (against the
target), and every signal that fired before the onset (false signals). Then 30 quiet days
(false signals, target 0), the backtest speed over ~1 M events of 10 features (target < 3 s), and
live latency: `hotwash serve` fed 1,000 events/s, event arrival to stored signal (target p99 < 2 s).

    .venv/bin/python bench/detection_bench.py [--quick] [--skip-live] [--skip-speed]
    .venv/bin/python bench/detection_bench.py --only-speed --speed-db /tmp/speed.db   # keep/reuse the 1 M events
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson

from hotwash.demo import scenarios
from hotwash.detect.checks import EventChecker
from hotwash.detect.engine import MonitorEngine
from hotwash.manifest import parse_manifest
from hotwash.store import open_store
from hotwash.telemetry.model import parse_record
from hotwash.telemetry.writer import EventWriter

MIN = timedelta(minutes=1)
# (category, kind, target delay or None, extra kwargs for scenarios.single)
CASES = [
    ("prompt_injection", "followed", 5 * MIN, {}),
    ("escalation_overload", "overload", 30 * MIN, {}),
    ("runaway_cost", "spike", 30 * MIN, {}),
    ("runaway_cost", "loop", 30 * MIN, {}),
    ("scope_creep", "off_manifest", 30 * MIN, {}),
    ("hallucination", "burst", 60 * MIN, {}),
    ("runaway_cost", "creep", timedelta(days=21), {"quiet_days": 22, "after_days": 22}),
    ("drift", "step", timedelta(days=7), {"quiet_days": 16, "after_days": 8}),
    ("runaway_cost", "retry_storm", None, {}),
    ("runaway_cost", "nonprod", None, {}),
    ("runaway_cost", "budget", None, {}),
    ("scope_creep", "new_tool", None, {}),
]


def ingest(sc: scenarios.Scenario, url: str) -> tuple[object, object, int]:
    manifest = parse_manifest(sc.manifest_yaml())
    store = open_store(url, migrate=True)
    writer = EventWriter(store, EventChecker(manifest))
    batch, n = [], 0
    for obj in sc.events():
        batch.append(parse_record(obj))
        if len(batch) >= 5000:
            writer.write(batch)
            n += len(batch)
            batch = []
    writer.write(batch)
    return store, manifest, n + len(batch)


def run_case(category: str, kind: str, target: timedelta | None, kwargs: dict, work: Path) -> dict:
    sc = scenarios.single(category, kind=kind, **kwargs)
    failure = sc.failure_of(category)
    assert failure is not None
    t = time.perf_counter()
    store, manifest, n = ingest(sc, f"sqlite:///{work / f'{category}-{kind}.db'}")
    ingest_s = time.perf_counter() - t
    signals = MonitorEngine(store, manifest).backtest()
    store.dispose()
    before = [s for s in signals if s.detected_at <= failure.onset]
    hits = [s for s in signals if s.category == category and s.feature == failure.feature
            and s.detected_at > failure.onset]
    delay = hits[0].detected_at - failure.onset if hits else None
    return {"case": f"{category}/{kind}", "events": n, "ingest_s": ingest_s, "delay": delay, "target": target,
            "monitor": hits[0].monitor if hits else None, "false_before": before,
            "ok": delay is not None and (target is None or delay <= target) and not before}


def fmt(td: timedelta | None) -> str:
    if td is None:
        return "-"
    s = td.total_seconds()
    return f"{s / 86400:.1f} d" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def quiet_false_signals(days: int, work: Path) -> tuple[int, int, list]:
    sc = scenarios.quiet(days)
    store, manifest, n = ingest(sc, f"sqlite:///{work / 'quiet.db'}")
    signals = MonitorEngine(store, manifest).backtest()
    store.dispose()
    return n, len(signals), signals


def backtest_speed(days: int, features: int, rate: float, work: Path, db: Path | None = None,
                   rounds: int = 3) -> tuple[int, float | None, list[tuple[float, float]]]:
    """Events, ingest seconds (None when ``db`` was reused) and (wall s, CPU s) of each of ``rounds``
    backtests of every monitor, each by a fresh engine. The machine is shared: CPU time (all threads
    of this process) is what other load does not inflate as much."""
    db = db or work / "speed.db"
    sc = scenarios.quiet(days, features=features, rate_per_minute=rate, seed=3)
    manifest = parse_manifest(sc.manifest_yaml())
    ingest_s = None
    if db.exists():
        store = open_store(f"sqlite:///{db}")
        n = store.status()["events"]
    else:
        t = time.perf_counter()
        store, manifest, n = ingest(sc, f"sqlite:///{db}")
        ingest_s = time.perf_counter() - t
    runs = []
    for _ in range(rounds):
        engine = MonitorEngine(store, manifest)
        t, c = time.perf_counter(), time.process_time()
        engine.backtest()
        runs.append((time.perf_counter() - t, time.process_time() - c))
    store.dispose()
    return n, ingest_s, runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_latency(rate: int, work: Path, seconds: float) -> dict:
    """Stream a scenario with every failure into `hotwash serve` at `rate` events/s."""
    sc = scenarios.demo_weeks()
    ws = work / "live"
    ws.mkdir(exist_ok=True)
    (ws / "hotwash.yaml").write_text(sc.manifest_yaml())
    env = {**os.environ, "HOTWASH_DATABASE_URL": f"sqlite:///{ws / 'live.db'}"}
    subprocess.run([sys.executable, "-m", "hotwash", "init"], cwd=ws, env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "hotwash", "serve", "--port", str(port)], cwd=ws, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent_at: list[tuple[float, datetime]] = []  # (wall time of the POST, newest event ts in it)
    round_trips: list[float] = []
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        events = sc.events()
        per_batch, tick = max(rate // 10, 1), 0.1
        deadline = time.monotonic() + seconds
        with httpx.Client(base_url=url, timeout=30) as client:
            nxt = time.monotonic()
            while time.monotonic() < deadline:
                batch = [e for _, e in zip(range(per_batch), events, strict=False)]
                if not batch:
                    break
                t0 = time.time()
                r = client.post("/api/v1/events", content=orjson.dumps({"events": batch}),
                                headers={"content-type": "application/json"})
                r.raise_for_status()
                round_trips.append(time.time() - t0)
                newest = max(datetime.fromisoformat(e["ts"]) for e in batch if e.get("type") != "change")
                sent_at.append((t0, newest))
                nxt += tick
                time.sleep(max(0.0, nxt - time.monotonic()))
        store = open_store(env["HOTWASH_DATABASE_URL"])
        latencies = []
        for sig in store.list_signals():
            # The signal's minute closed with the first batch holding an event at or after its end.
            closing = next((t for t, newest in sent_at if newest >= sig["detected_at"]), None)
            if closing is not None:
                latencies.append(sig["created_at"].timestamp() - closing)
        store.dispose()
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat = sorted(latencies)
    rt = sorted(round_trips)
    return {"batches": len(round_trips), "events": len(round_trips) * per_batch, "signals": len(lat),
            "latency_p50": statistics.median(lat) if lat else None, "latency_p99": p99(lat),
            "latency_max": lat[-1] if lat else None, "post_p99": p99(rt),
            "achieved_rate": len(round_trips) * per_batch / seconds}


def p99(xs: list[float]) -> float | None:
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter cases")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--only-speed", action="store_true", help="only the backtest speed (no cases, no live)")
    ap.add_argument("--speed-db", type=Path, default=None,
                    help="SQLite file of the speed scenario: built there if missing, reused if present")
    ap.add_argument("--rounds", type=int, default=3, help="backtests timed in the speed run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hotwash-detect-bench-"))
    print(f"# detection benchmark — {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, work dir {work}\n")
    cases = [] if args.only_speed else CASES[:6] if args.quick else CASES
    print("| case | events | first signal | delay | target | false signals before onset | ok |")
    print("|---|---|---|---|---|---|---|")
    all_ok = True
    for category, kind, target, kwargs in cases:
        r = run_case(category, kind, target, kwargs, work)
        all_ok &= r["ok"] or target is None
        false = ", ".join(f"{s.monitor}@{s.feature}" for s in r["false_before"]) or "0"
        print(f"| {r['case']} | {r['events']:,} | {r['monitor'] or 'none'} | {fmt(r['delay'])} | {fmt(target)} "
              f"| {false} | {'PASS' if r['ok'] else 'FAIL'} |", flush=True)

    if not args.only_speed:
        days = 7 if args.quick else 30
        n, k, sigs = quiet_false_signals(days, work)
        print(f"\nquiet {days} days, {n:,} events: {k} signals (target 0) {'PASS' if k == 0 else 'FAIL'}")
        for s in sigs[:20]:
            print(f"  false: {s.detected_at:%Y-%m-%d %H:%M} {s.monitor} {s.feature}: {s.summary}")
        all_ok &= k == 0

    if not args.skip_speed:
        d, f, rate = (3, 10, 23.0) if args.quick else (30, 10, 23.0)
        n, ingest_s, runs = backtest_speed(d, f, rate, work, args.speed_db, args.rounds)
        took = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        each = ", ".join(f"{w:.2f} s ({c:.2f} s CPU)" for w, c in runs)
        built = (f"; ingest with per-event checks took {ingest_s:.0f} s ({n / ingest_s:,.0f} events/s)"
                 if ingest_s else f"; reused {args.speed_db}")
        print(f"\nbacktest of every monitor over {n:,} events ({d} days, {f} features): median {took:.2f} s wall, "
              f"{cpu:.2f} s CPU over {len(runs)} runs [{each}] (target < 3 s) {'PASS' if took < 3 else 'FAIL'}{built}")
        all_ok &= took < 3

    if not args.skip_live and not args.only_speed:
        r = live_latency(1000, work, 20 if args.quick else 60)
        print(f"\nlive: {r['events']:,} events at {r['achieved_rate']:,.0f}/s, {r['signals']} signals; "
              f"event arrival to stored signal p50 {r['latency_p50']:.3f} s, p99 {r['latency_p99']:.3f} s, "
              f"max {r['latency_max']:.3f} s "
              f"(target p99 < 2 s); POST round trip p99 {r['post_p99']:.3f} s"
              if r["signals"] else f"\nlive: no signals in the streamed window ({r})")
        all_ok &= bool(r["signals"]) and r["latency_p99"] < 2
    print(f"\noverall: {'PASS' if all_ok else 'FAIL'}")


if __name__ == "__main__":
    main()
