"""JSONL ingest throughput: hotwash's real path against the raw limit of Python + SQLite.

What is compared, in one run, on the same file of realistic events (text, retrieved context,
tool calls; ``hotwash.demo.sample``):

* **hotwash** — ``hotwash ingest FILE --json`` as a subprocess into a fresh SQLite store, timed
  end to end (interpreter start, validation with msgspec, pricing, the per-event checks, the
  events INSERT with ``ON CONFLICT DO NOTHING RETURNING``, per-minute rollups, session recounts,
  fsynced commits). Its worker processes (one per CPU) decode, validate and check the next
  batches while the ingesting process commits. The in-process ``ingest_streams`` time is
  reported too (no interpreter start or imports), and so is storage alone (no checks, one process).
* **raw limit** — the least work that stores the same rows: ``orjson.loads`` of each line, the
  row tuple built in Python (timestamps as hotwash stores them, ``YYYY-MM-DD HH:MM:SS.ffffff``
  UTC text; JSON columns as JSON text; the cost from the same per-token rates), and one
  ``executemany`` of plain INSERTs per batch, with the same batch size, into a fresh file
  migrated by hotwash's own ``open_store(url, migrate=True)`` with hotwash's pragmas (WAL,
  ``synchronous=FULL``). No validation, no rollups, no duplicate detection, GC disabled.

Why: the raw limit is what any Python tool could reach on this machine with this schema, so
"hotwash at X % of raw" says how much hotwash's safety (validation, idempotency, rollups) costs,
independent of how fast the machine is. Target: hotwash >= 50 % of raw.

Raw and hotwash run alternately ``--rounds`` times and the medians are reported. A sample of rows
is compared between the two databases, so both really store the same values. CPU times are
reported too (hotwash's split into the ingesting process and its workers): on a machine shared
with other work the wall-clock ratio is pessimistic, and the CPU times give an estimate of the
ratio on an idle machine.

Also reported (no target): hotwash into PostgreSQL (database ``test`` on 127.0.0.1, a fresh
schema dropped afterwards), on a smaller N.

    .venv/bin/python bench/ingest_bench.py            # 1,000,000 events, 3 rounds
    .venv/bin/python bench/ingest_bench.py --quick    # 50,000 events, 1 round
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hotwash.demo.sample import write_jsonl
from hotwash.detect.pool import ParallelChecker
from hotwash.settings import get_settings
from hotwash.store import open_store
from hotwash.store.tables import events as events_table
from hotwash.telemetry.ingest import Quarantine, ingest_streams, open_inputs
from hotwash.telemetry.pricing import price
from hotwash.telemetry.writer import EventWriter

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
VENV_BIN = Path(sys.executable).parent
HOTWASH = str(VENV_BIN / "hotwash")
PG_CONNINFO = os.environ.get("HOTWASH_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")

CORES = os.cpu_count() or 1
BATCH_SIZE = get_settings().batch_size  # hotwash's default batch (events per transaction)
# The telemetry columns the raw path fills, in its tuple order. Columns hotwash adds beyond these
# (per-event findings of its checks) stay NULL in the raw database and are not compared.
COLUMNS = ["id", "ts", "feature", "env", "session_id", "user_id", "provider", "model", "prompt_version",
           "input", "context", "output", "tool_calls", "tokens_in", "tokens_out", "cost_usd", "cost_source",
           "latency_ms", "escalated", "confidence", "retry", "feedback", "score", "error", "untrusted", "tags",
           "ingested_at"]
assert set(COLUMNS) <= {c.name for c in events_table.columns}, "the events table lost a column: update COLUMNS"
JSON_COLUMNS = ("context", "tool_calls", "untrusted", "tags")


# -- shared helpers (the other benchmarks import these) ---------------------------------------
def machine() -> str:
    import hotwash

    return f"{platform.node() or 'host'}: {os.cpu_count()} cores, Python {platform.python_version()}, " \
           f"SQLite {sqlite3.sqlite_version}, {platform.platform()}; load average {load()}; " \
           f"hotwash from {Path(hotwash.__file__).parent}"


def load() -> str:
    """The 1-minute load average: other work on a 2-core machine skews every number here."""
    one = os.getloadavg()[0]
    return f"{one:.2f}" + (" (busy machine: numbers are pessimistic)" if one > 0.7 else "")


def events_file(n: int, seed: int = 7) -> Path:
    """A JSONL file of ``n`` realistic events under bench/.work, generated once and reused."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"events-{n}-seed{seed}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        write_jsonl(str(tmp), n, seed=seed)
        tmp.rename(path)
        print(f"  generated {path.name} ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.1f} s",
              flush=True)
    return path


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def fresh_sqlite(name: str) -> tuple[str, Path]:
    """A new SQLite file under bench/.work migrated by hotwash itself; returns (url, path)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{name}.db"
    remove_sqlite(path)
    url = f"sqlite:///{path}"
    open_store(url, migrate=True).dispose()
    return url, path


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema in database ``test``, migrated; yields its URL, drops it after."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    params = dict(part.split("=", 1) for part in PG_CONNINFO.split())
    url = (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
           f"{params.get('port', '5432')}/{params.get('dbname', 'test')}?options=-csearch_path%3D{schema}")
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        open_store(url, migrate=True).dispose()
        yield url
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def clean_cwd() -> Path:
    """An empty working directory: no hotwash.yaml, so every feature runs on the default checks."""
    cwd = WORK / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    for stray in cwd.iterdir():
        if stray.is_file():
            stray.unlink()
    return cwd


def hotwash_env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTWASH_")}
    env["HOTWASH_DATABASE_URL"] = url
    env["HOTWASH_HOME"] = str(home)
    return env


# -- the raw limit --------------------------------------------------------------------------
def _rates(path: Path) -> dict[tuple[str | None, str], tuple[float, float]]:
    """Per-token (input, output) USD rates of each (provider, model) in the file, via hotwash's prices."""
    seen: dict[tuple[str | None, str], tuple[float, float]] = {}
    with path.open("rb") as fh:
        for i, line in enumerate(fh):
            if i >= 2000:
                break
            ev = orjson.loads(line)
            key = (ev.get("provider"), ev["model"])
            if key not in seen:
                ts = datetime.fromisoformat(ev["ts"])
                seen[key] = (price(key[0], key[1], 1, 0, ts) or 0.0, price(key[0], key[1], 0, 1, ts) or 0.0)
    return seen


def _ts_text(value: str) -> str:
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is not None and dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def raw_ingest(path: Path, db_path: Path, batch_size: int = BATCH_SIZE) -> tuple[int, float]:
    """orjson parse + one executemany per batch into hotwash's schema. Returns (rows, seconds)."""
    rates = _rates(path)
    dumps = orjson.dumps
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
    n = 0
    gc.disable()
    t0 = time.perf_counter()
    try:
        conn = sqlite3.connect(db_path)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON",
                       "wal_autocheckpoint=16000"):
            conn.execute(f"PRAGMA {pragma}")
        batch: list[tuple[Any, ...]] = []
        with path.open("rb") as fh:
            for line in fh:
                e = orjson.loads(line)
                g = e.get
                tin, tout, model = g("tokens_in"), g("tokens_out"), g("model")
                cost = g("cost_usd")
                if cost is not None:
                    source = "reported"
                elif model and (tin is not None or tout is not None):
                    rate = rates.get((g("provider"), model))
                    cost = (tin or 0) * rate[0] + (tout or 0) * rate[1] if rate else None
                    source = "priced" if rate else "unpriced"
                else:
                    source = "none"
                ctx, tools, untrusted, tags = g("context"), g("tool_calls"), g("untrusted"), g("tags")
                batch.append((
                    e["id"], _ts_text(e["ts"]), e["feature"], g("env"), g("session_id"), g("user_id"),
                    g("provider"), model, g("prompt_version"), g("input"),
                    None if ctx is None else dumps(ctx).decode(), g("output"),
                    None if tools is None else dumps(tools).decode(), tin, tout, cost, source,
                    g("latency_ms"), g("escalated"), g("confidence"), g("retry"), g("feedback"), g("score"),
                    g("error"), None if untrusted is None else dumps(untrusted).decode(),
                    None if tags is None else dumps(tags).decode(), now,
                ))
                if len(batch) >= batch_size:
                    conn.executemany(sql, batch)
                    conn.commit()
                    n += len(batch)
                    batch = []
        if batch:
            conn.executemany(sql, batch)
            conn.commit()
            n += len(batch)
        conn.close()
        return n, time.perf_counter() - t0
    finally:
        gc.enable()


# -- hotwash --------------------------------------------------------------------------------
def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# `hotwash ingest` exactly as the console script runs it (`from hotwash.cli import main`), plus a
# note of its own CPU time and its worker processes' at exit, written to $BENCH_CPU_FILE.
_CLI = """
import atexit, os, resource, sys
def _cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["BENCH_CPU_FILE"], "w") as fh:
        fh.write(f"{own.ru_utime + own.ru_stime} {kids.ru_utime + kids.ru_stime}")
atexit.register(_cpu)
sys.argv[0] = "hotwash"
from hotwash.cli import main
sys.exit(main())
"""


@dataclass
class CliRun:
    accepted: int
    seconds: float  # wall, end to end
    cpu: float  # CPU seconds of the process and its workers
    main_cpu: float  # ... of the ingesting process alone (reads, commits)


def hotwash_cli_ingest(path: Path | str, url: str, home: Path) -> CliRun:
    """``hotwash ingest PATH --json`` as a subprocess, timed end to end."""
    cpu_file = WORK / "cli-cpu.txt"
    cpu_file.unlink(missing_ok=True)
    env = {**hotwash_env(url, home), "BENCH_CPU_FILE": str(cpu_file)}
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CLI, "ingest", str(path), "--json"], env=env, cwd=clean_cwd(),
                          capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"hotwash ingest failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    report = orjson.loads(proc.stdout.strip().splitlines()[-1])
    main_cpu, _ = (float(x) for x in cpu_file.read_text().split())
    return CliRun(report["accepted"], elapsed, children_cpu() - cpu0, main_cpu)


def hotwash_inprocess_ingest(path: Path, url: str, home: Path, *, checks: bool = True) -> tuple[int, float]:
    """``ingest_streams`` called in this process (no interpreter start, no imports), with the
    per-event checks in worker processes as ``hotwash ingest`` runs them (one per CPU).

    ``checks=False`` leaves out the per-event detection checks (and the workers): what storage
    alone costs in one process."""
    store = open_store(url)
    store.check_ready()
    try:
        with ParallelChecker(workers=get_settings().check_workers) if checks else nullcontext() as checker:
            t0 = time.perf_counter()
            report = ingest_streams(open_inputs([str(path)]), writer=EventWriter(store, checker),
                                    quarantine=Quarantine(home / "quarantine"), batch_size=BATCH_SIZE,
                                    max_record_bytes=get_settings().max_record_bytes)
            return report.accepted, time.perf_counter() - t0
    finally:
        store.dispose()


def compare_rows(raw_db: Path, hw_db: Path, n: int, samples: int = 200) -> None:
    """Fail loudly unless a sample of rows is identical in both databases (``ingested_at`` aside)."""
    step = max(n // samples, 1)
    ids = [f"evt-{i:09d}" for i in range(0, n, step)]
    cols = [c for c in COLUMNS if c != "ingested_at"]
    query = f"SELECT {', '.join(cols)} FROM events WHERE id IN ({', '.join('?' * len(ids))}) ORDER BY id"  # noqa: S608

    def fetch(db: Path) -> list[dict[str, Any]]:
        with sqlite3.connect(db) as conn:
            rows = [dict(zip(cols, r, strict=True)) for r in conn.execute(query, ids)]
        for r in rows:
            for c in JSON_COLUMNS:
                if r[c] is not None:
                    r[c] = orjson.loads(r[c])
        return rows

    a, b = fetch(raw_db), fetch(hw_db)
    if len(a) != len(ids) or a != b:
        diff = next(((x, y) for x, y in zip(a, b, strict=False) if x != y), None)
        raise AssertionError(f"raw and hotwash rows differ: {diff}")


@dataclass
class IngestResult:
    n: int
    raw_s: list[float]
    cli_s: list[float]
    inproc_s: list[float]
    nochecks_s: list[float]
    cli_cpu_s: list[float]
    raw_cpu_s: list[float]
    cli_main_cpu_s: list[float] = field(default_factory=list)
    pg_n: int = 0
    pg_s: float = 0.0

    @property
    def raw_rate(self) -> float:
        return self.n / statistics.median(self.raw_s)

    @property
    def cli_rate(self) -> float:
        return self.n / statistics.median(self.cli_s)

    @property
    def inproc_rate(self) -> float:
        return self.n / statistics.median(self.inproc_s)

    @property
    def nochecks_rate(self) -> float:
        return self.n / statistics.median(self.nochecks_s)

    @property
    def ratio(self) -> float:
        return self.cli_rate / self.raw_rate

    @property
    def round_ratios(self) -> list[float]:
        """hotwash / raw of each round: the two ran back to back, under the same machine load."""
        return [r / c for r, c in zip(self.raw_s, self.cli_s, strict=True)]

    @property
    def cpu_ratio(self) -> float:
        """raw CPU seconds / hotwash CPU seconds: the ratio with other processes' load factored out."""
        return statistics.median(self.raw_cpu_s) / statistics.median(self.cli_cpu_s)

    @property
    def projected_ratio(self) -> float:
        """The wall-clock ratio the CPU times imply on an otherwise idle machine with ``CORES`` cores:
        hotwash can go no faster than its busiest process (the one that commits) nor than all
        its CPU time spread over the cores, whichever is slower; raw uses one core."""
        main, total = statistics.median(self.cli_main_cpu_s), statistics.median(self.cli_cpu_s)
        return statistics.median(self.raw_cpu_s) / max(main, total / CORES)

    @property
    def pg_rate(self) -> float:
        return self.pg_n / self.pg_s if self.pg_s else 0.0


def measure_raw_limit(n: int, rounds: int = 1) -> float:
    """The raw limit in events/s (median of ``rounds``) on ``n`` events: for the other benchmarks."""
    path = events_file(n)
    times = []
    for _ in range(rounds):
        _, db = fresh_sqlite("raw-limit")
        rows, secs = raw_ingest(path, db)
        assert rows == n
        times.append(secs)
        remove_sqlite(db)
    return n / statistics.median(times)


def run(n: int, rounds: int, pg_n: int) -> IngestResult:
    path = events_file(n)
    home = WORK / "home-ingest"
    shutil.rmtree(home, ignore_errors=True)
    res = IngestResult(n, [], [], [], [], [], [])
    for r in range(1, rounds + 1):
        _, raw_db = fresh_sqlite("raw")
        cpu0 = self_cpu()
        rows, secs = raw_ingest(path, raw_db)
        cpu = self_cpu() - cpu0
        assert rows == n, f"raw stored {rows} of {n}"
        res.raw_s.append(secs)
        res.raw_cpu_s.append(cpu)
        print(f"  round {r}: raw limit        {n / secs:>10,.0f} events/s ({secs:.1f} s; {cpu:.1f} s CPU)", flush=True)

        url, hw_db = fresh_sqlite("hotwash-cli")
        cli = hotwash_cli_ingest(path, url, home)
        assert cli.accepted == n, f"hotwash accepted {cli.accepted} of {n}"
        res.cli_s.append(cli.seconds)
        res.cli_cpu_s.append(cli.cpu)
        res.cli_main_cpu_s.append(cli.main_cpu)
        print(f"  round {r}: hotwash ingest   {n / cli.seconds:>10,.0f} events/s ({cli.seconds:.1f} s, CLI end to "
              f"end; {cli.cpu:.1f} s CPU: {cli.main_cpu:.1f} s the ingesting process, "
              f"{cli.cpu - cli.main_cpu:.1f} s its workers)", flush=True)
        if r == 1:
            compare_rows(raw_db, hw_db, n)
            print("  rows compared: raw and hotwash stored identical values", flush=True)
        remove_sqlite(hw_db)
        remove_sqlite(raw_db)

        url, ip_db = fresh_sqlite("hotwash-inproc")
        accepted, secs = hotwash_inprocess_ingest(path, url, home)
        assert accepted == n
        res.inproc_s.append(secs)
        print(f"  round {r}: ingest_streams   {n / secs:>10,.0f} events/s ({secs:.1f} s, in process)", flush=True)
        remove_sqlite(ip_db)

        url, ip_db = fresh_sqlite("hotwash-nochecks")
        accepted, secs = hotwash_inprocess_ingest(path, url, home, checks=False)
        assert accepted == n
        res.nochecks_s.append(secs)
        print(f"  round {r}: ... without checks {n / secs:>8,.0f} events/s ({secs:.1f} s, in process, "
              "storage only)", flush=True)
        remove_sqlite(ip_db)
    if pg_n:
        pg_path = events_file(pg_n)
        with pg_schema() as url:
            cli = hotwash_cli_ingest(pg_path, url, home)
        assert cli.accepted == pg_n
        res.pg_n, res.pg_s, secs = pg_n, cli.seconds, cli.seconds
        print(f"  PostgreSQL: hotwash ingest {pg_n / secs:>8,.0f} events/s ({pg_n:,} events, {secs:.1f} s)",
              flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return res


def report(res: IngestResult) -> None:
    print(f"\nJSONL ingest, {res.n:,} events, median of {len(res.raw_s)} alternating round(s):")
    print(f"  raw limit (orjson + executemany)  {res.raw_rate:>10,.0f} events/s")
    print(f"  hotwash ingest (CLI, end to end)  {res.cli_rate:>10,.0f} events/s  = {res.ratio:.0%} of raw"
          f"  (target >= 50 %: {'PASS' if res.ratio >= 0.5 else 'FAIL'})")
    print(f"  hotwash ingest_streams (in proc)  {res.inproc_rate:>10,.0f} events/s  = "
          f"{res.inproc_rate / res.raw_rate:.0%} of raw")
    print(f"  ... without the per-event checks  {res.nochecks_rate:>10,.0f} events/s  = "
          f"{res.nochecks_rate / res.raw_rate:.0%} of raw (storage alone: validation, pricing, rollups)")
    print(f"  per-round hotwash/raw ratios      {', '.join(f'{x:.0%}' for x in res.round_ratios)}")
    print(f"  by CPU time (median)              raw {statistics.median(res.raw_cpu_s):.1f} s, hotwash CLI "
          f"{statistics.median(res.cli_cpu_s):.1f} s (the ingesting process "
          f"{statistics.median(res.cli_main_cpu_s):.1f} s) = {res.cpu_ratio:.0%} of raw's CPU per event")
    raw_us = statistics.median(res.raw_cpu_s) / res.n * 1e6
    main_us = statistics.median(res.cli_main_cpu_s) / res.n * 1e6
    workers_us = statistics.median(c - m for c, m in zip(res.cli_cpu_s, res.cli_main_cpu_s, strict=True)) / res.n * 1e6
    print(f"  CPU per event (median)            raw {raw_us:.1f} us; hotwash: the ingesting process {main_us:.1f} us "
          f"({main_us / raw_us:.2f}x raw), its workers {workers_us:.1f} us ({workers_us / raw_us:.2f}x raw); "
          "a loaded machine inflates all of them alike, so compare the ratios")
    print(f"  projected on an idle {CORES}-core machine  {res.projected_ratio:.0%} of raw  (raw CPU / max(ingesting "
          f"process CPU, all CPU / {CORES}); an estimate, not the target's measure)")
    if res.pg_n:
        print(f"  hotwash ingest into PostgreSQL    {res.pg_rate:>10,.0f} events/s  ({res.pg_n:,} events, no target)")


def main(argv: list[str] | None = None) -> IngestResult:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N, one round: a smoke run")
    ap.add_argument("-n", type=int, help="events (default 1,000,000; 50,000 with --quick)")
    ap.add_argument("--rounds", type=int, help="alternating raw/hotwash rounds (default 3; 1 with --quick)")
    ap.add_argument("--pg-n", type=int, help="events for PostgreSQL, 0 to skip (default 200,000; 20,000 quick)")
    args = ap.parse_args(argv)
    n = args.n or (50_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    pg_n = args.pg_n if args.pg_n is not None else (20_000 if args.quick else 200_000)
    print(f"ingest_bench: {machine()}")
    print(f"  N={n:,}, batch size {BATCH_SIZE:,}, rounds {rounds}", flush=True)
    res = run(n, rounds, pg_n)
    report(res)
    print(f"  load average at the end: {load()}")
    return res


if __name__ == "__main__":
    main()
