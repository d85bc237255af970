"""``hotwash demo``: a fresh workspace, weeks of simulated production traffic with every kind
of failure, ingested through the real path, judged by every monitor, then worked through the
playbook by a small team (:mod:`hotwash.demo.playbook`).

The simulated weeks end at most a week before today: the scenario is moved by whole weeks (its
weekly and daily rhythm, and so what the monitors see, stay the same), so the incidents, due
dates and overdue actions the UI shows are recent. The traffic is generated in a separate
process that writes JSON lines into a pipe, read by the ordinary ingest (``read_jsonl`` ->
``EventWriter`` with the ``ParallelChecker``), so generating and ingesting overlap.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotwash.demo.scenarios import Failure, Scenario, demo_weeks
from hotwash.detect.engine import MonitorEngine, save
from hotwash.detect.pool import ParallelChecker
from hotwash.errors import HotwashError
from hotwash.incidents.service import AUTO_ACTOR
from hotwash.manifest import load_manifest
from hotwash.settings import Settings, get_settings
from hotwash.store import open_store
from hotwash.telemetry.ingest import Quarantine, ingest_streams
from hotwash.telemetry.jsonl import Accepted, Rejected, read_jsonl
from hotwash.telemetry.writer import EventWriter

try:
    import resource
except ImportError:  # pragma: no cover - Windows: no CPU times in the report
    resource = None  # type: ignore[assignment]

# Kept for tests and examples that want a small manifest of the three demo features.
_DEMO_MANIFEST = """\
version: 1
features:
  support-bot:
    owner: support-ai
    capabilities: {tools: [search_kb, lookup_order], outputs: [reply]}
    grounding: required
    escalation: {baseline_rate: 0.15}
    budget: {daily_usd: 200, weekly_growth_max: 0.10}
    containment: {fallback: human, rollback_to: {prompt_version: v11, model: gpt-4o-mini}}
  ticket-classifier:
    owner: support-ops
    capabilities: {tools: [], outputs: [label]}
    escalation: {baseline_rate: 0.2}
  travel-agent:
    owner: travel-ai
    capabilities: {tools: [get_reservation, search_flights, update_reservation, cancel_reservation]}
    escalation: {baseline_rate: 0.08}
    budget: {daily_usd: 500}
"""

DEFAULT_WEEKS = 3
_CHUNK_RECORDS = 2000  # ~2 MB of JSON lines
_QUEUED_CHUNKS = 24  # what the generator may run ahead of the ingest: ~50 MB
# Mean model calls a minute of the three features: ~150k events in three weeks, so that generating,
# ingesting, checking and detecting them and the playbook take well under a minute on two cores.
DEMO_RATE = 5.0
WEEK = timedelta(days=7)
# The incident policy and the auto-containment the demo's team chose (added to the scenario's manifest).
INCIDENT_POLICY: dict[str, Any] = {
    "open_min_severity": "SEV2",  # a SEV3/SEV4 signal alone stays a signal (it joins an open incident)
    "open_on": {"drift": "SEV3"},  # slow quality drift is worth an incident at SEV3
    "postmortem_due_days": 5,
}
AUTO_CONTAINMENT: dict[str, dict[str, Any]] = {
    "travel-agent": {"auto": {"runaway_cost": "throttle"}, "throttle_rps": 2},
}


def demo_settings(workspace: Path) -> Settings:
    """The settings of a demo workspace: its own SQLite store and manifest, whatever the environment says."""
    workspace = workspace.resolve()
    return get_settings(home=workspace / ".hotwash", manifest=workspace / "hotwash.yaml",
                        database_url=f"sqlite:///{(workspace / '.hotwash' / 'hotwash.db').as_posix()}")


def demo_manifest_yaml(scenario: Scenario) -> str:
    """The scenario's manifest with the team's incident policy and auto-containment."""
    data = yaml.safe_load(scenario.manifest_yaml())
    for name, extra in AUTO_CONTAINMENT.items():
        if name in data["features"]:
            data["features"][name].setdefault("containment", {}).update(extra)
    data["incidents"] = INCIDENT_POLICY
    head = ("# hotwash demo: three AI features of one product (written by `hotwash demo`).\n"
            "# incidents: which signals open an incident; containment.auto: what hotwash contains by itself.\n")
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)


def week_shift(end: datetime, now: datetime) -> timedelta:
    """Whole weeks that move a scenario ending at ``end`` to end within the week before ``now``."""
    return WEEK * ((now - end) // WEEK)


def _shifted_failures(failures: list[Failure], shift: timedelta) -> list[Failure]:
    return [replace(f, onset=f.onset + shift, end=f.end + shift if f.end else None) for f in failures]


# -- the traffic: generated in another process, read through the ordinary ingest -----------------
def _records(scenario: Scenario, shift_days: int) -> Iterator[bytes]:
    """The scenario's records as JSON, a few thousand lines per chunk, every ``ts`` moved by ``shift_days``."""
    days: dict[str, str] = {}

    def moved(ts: str) -> str:
        day = ts[:10]
        new = days.get(day)
        if new is None:
            new = days[day] = (date.fromisoformat(day) + timedelta(days=shift_days)).isoformat()
        return new + ts[10:]

    buf: list[bytes] = []
    for ev in scenario.events():
        if shift_days and isinstance(ev.get("ts"), str):
            ev["ts"] = moved(ev["ts"])
        buf.append(orjson.dumps(ev))
        if len(buf) >= _CHUNK_RECORDS:
            yield b"\n".join(buf) + b"\n"
            buf.clear()
    if buf:
        yield b"\n".join(buf) + b"\n"


def _write_traffic(scenario: Scenario, shift_days: int, fd: int) -> None:
    with open(fd, "wb") as fh:
        for chunk in _records(scenario, shift_days):
            fh.write(chunk)


def _child(scenario: Scenario, shift_days: int, read_fd: int, write_fd: int) -> None:
    """The generator process. A writer thread empties a bounded queue into the pipe, so generating
    goes on while the ingest is busy checking and writing a batch (a pipe holds only 64 KiB)."""
    os.close(read_fd)
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)

    def writer() -> None:
        try:
            with open(write_fd, "wb") as fh:
                while (chunk := chunks.get()) is not None:
                    fh.write(chunk)
        except OSError:  # the ingest stopped reading (it failed or was interrupted): stop generating
            os._exit(1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for chunk in _records(scenario, shift_days):
        chunks.put(chunk)
    chunks.put(None)
    thread.join()


class Traffic:
    """The simulated traffic as a byte stream: a forked process (or, without fork, a thread)
    writes it into a pipe. ``cpu_s`` is the generator's CPU time once it has finished."""

    def __init__(self, scenario: Scenario, shift: timedelta) -> None:
        self.cpu_s: float | None = None
        read_fd, write_fd = os.pipe()
        days = shift.days
        self._proc: Any = None
        self._thread: threading.Thread | None = None
        if "fork" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("fork")
            self._before = _children_cpu()
            self._proc = ctx.Process(target=_child, args=(scenario, days, read_fd, write_fd), daemon=True,
                                     name="hotwash-demo-traffic")
            self._proc.start()
            os.close(write_fd)
        else:  # pragma: no cover - platforms without fork
            self._thread = threading.Thread(target=_write_traffic, args=(scenario, days, write_fd), daemon=True)
            self._thread.start()
        self.stream: BinaryIO = open(read_fd, "rb", buffering=1 << 20)  # noqa: SIM115 - closed in finish()

    def finish(self) -> None:
        """Wait for the generator; an error if it did not write everything."""
        self.stream.close()
        if self._proc is not None:
            self._proc.join()
            self.cpu_s = round(_children_cpu() - self._before, 2)
            if self._proc.exitcode != 0:
                raise HotwashError(f"the traffic simulation stopped with exit code {self._proc.exitcode}")
        elif self._thread is not None:  # pragma: no cover
            self._thread.join()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (0 where the platform does not say)."""
    if resource is None:  # pragma: no cover - Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    if resource is None:  # pragma: no cover - Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _watching(on_record: Callable[[datetime], None]) -> Callable[..., Iterator[Accepted | Rejected]]:
    """``read_jsonl`` that reports each accepted record's time (for the progress bar)."""

    def reader(stream: BinaryIO, *, source: str, max_record_bytes: int) -> Iterator[Accepted | Rejected]:
        for item in read_jsonl(stream, source=source, max_record_bytes=max_record_bytes):
            if isinstance(item, Accepted):
                on_record(item.record.ts)
            yield item

    return reader


# -- the demo ------------------------------------------------------------------------------------
def _fresh(workspace: Path) -> None:
    """Remove what an earlier demo run left: the store, the regression cases, the old sample file."""
    for name in (".hotwash", "evals"):
        if (workspace / name).exists():
            shutil.rmtree(workspace / name)
    with contextlib.suppress(FileNotFoundError):
        (workspace / "telemetry.jsonl").unlink()


def run_demo(workspace: Path, *, weeks: int = DEFAULT_WEEKS, console: Console, now: datetime | None = None,
             playbook: bool = True) -> dict[str, Any]:
    """Simulate ``weeks`` of traffic into a fresh ``workspace``, detect what went wrong, and work
    the incidents through the playbook. Returns the summary (what ``--json`` prints)."""
    from hotwash.demo.playbook import run_playbook

    now = now or datetime.now(UTC)
    workspace = workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    _fresh(workspace)
    scenario = demo_weeks(weeks=weeks, rate_per_minute=DEMO_RATE)
    shift = week_shift(scenario.end, now)
    start, end = scenario.start + shift, scenario.end + shift
    failures = _shifted_failures(scenario.failures, shift)
    manifest_path = workspace / "hotwash.yaml"
    manifest_path.write_text(demo_manifest_yaml(scenario), encoding="utf-8")
    settings = demo_settings(workspace)
    manifest = load_manifest(manifest_path)
    store = open_store(settings.resolved_database_url, migrate=True)
    timings: dict[str, float | None] = {}
    console.print(f"simulating {weeks} weeks ({start:%Y-%m-%d} to {end:%Y-%m-%d}) of "
                  f"{', '.join(scenario.features)} into {settings.resolved_database_url}")
    t0, cpu0 = time.perf_counter(), _self_cpu()
    traffic = Traffic(scenario, shift)  # started before any thread (the progress bar's) exists
    total_min = int((end - start).total_seconds() // 60)
    seen = {"ts": start}

    def on_record(ts: datetime) -> None:
        seen["ts"] = ts

    try:
        with ExitStack() as stack:
            progress = stack.enter_context(Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console, transient=True))
            sim = progress.add_task("simulate + ingest + check", total=total_min, note="")
            checker = stack.enter_context(ParallelChecker(manifest, workers=settings.check_workers))
            events = {"n": 0}

            def on_batch(_name: str, _line: int, _pos: int, result: Any) -> None:
                events["n"] += result.accepted + result.duplicates
                done = max(0, min(total_min, int((seen["ts"] - start).total_seconds() // 60)))
                day = min(done // 1440 + 1, total_min // 1440)
                progress.update(sim, completed=done, note=f"day {day} of {total_min // 1440} · {events['n']:,} events")

            report = ingest_streams(
                [("simulated traffic", traffic.stream)], writer=EventWriter(store, checker),
                quarantine=Quarantine(settings.quarantine_dir), batch_size=settings.batch_size,
                max_record_bytes=settings.max_record_bytes, on_batch=on_batch, reader=_watching(on_record))
            traffic.finish()
            workers_before = _children_cpu()
            checker.close()
            timings["check_workers_cpu_s"] = round(_children_cpu() - workers_before, 2)
            progress.update(sim, completed=total_min)
            timings["generate_cpu_s"] = traffic.cpu_s
            timings["ingest_s"] = round(time.perf_counter() - t0, 2)
            timings["ingest_cpu_s"] = round(_self_cpu() - cpu0, 2)

            t1, cpu1 = time.perf_counter(), _self_cpu()
            det = progress.add_task("detect (every monitor over the stored weeks)", total=1, note="")
            signals = MonitorEngine(store, manifest).backtest()
            save(store, signals)
            progress.update(det, completed=1, note=f"{len(signals)} signals")
            timings["detect_s"] = round(time.perf_counter() - t1, 2)
            timings["detect_cpu_s"] = round(_self_cpu() - cpu1, 2)

            t2, cpu2 = time.perf_counter(), _self_cpu()
            played: dict[str, Any] = {"incidents": []}
            if playbook:
                steps = progress.add_task("playbook (the team works the incidents)", total=None, note="")

                def on_step(done: int, total: int, what: str) -> None:
                    progress.update(steps, completed=done, total=total, note=escape(what[:60]))

                with contextlib.chdir(workspace):  # regression case paths are kept relative to the workspace
                    played = run_playbook(store, manifest, failures=failures, now=now, on_step=on_step)
            timings["playbook_s"] = round(time.perf_counter() - t2, 2)
            timings["playbook_cpu_s"] = round(_self_cpu() - cpu2, 2)
            timings["simulation_s"] = round(time.perf_counter() - t0, 2)
    except BaseException:
        traffic.abort()
        store.dispose()
        raise

    status = store.status()
    status["incidents"] = store.incident_count()
    spend = sum(r["cost_usd"] for r in store.rollup_rows())
    stored_signals = store.list_signals()
    store.dispose()

    caught = 0
    for f in failures:
        hit = next((s for s in signals if s.category == f.category and s.feature == f.feature
                    and s.detected_at > f.onset and (f.end is None or s.start < f.end)), None)
        caught += hit is not None
    summary = {
        "workspace": str(workspace), "weeks": weeks, "database_url": settings.resolved_database_url,
        "window": {"start": start, "end": end, "shift_days": shift.days},
        **report.to_json(), "store": status, "spend_usd": round(spend, 4),
        "signals": [{**s.to_json(), "id": row["id"]} for s, row in _with_rows(signals, stored_signals)],
        "failures_injected": len(failures), "failures_detected": caught,
        **played,
        "timings": timings,
    }
    _print_summary(console, summary)
    return summary


def _with_rows(signals: list[Any], rows: list[dict[str, Any]]) -> list[tuple[Any, dict[str, Any]]]:
    by_key = {(r["monitor"], r["feature"], r["start"]): r for r in rows}
    return [(s, by_key.get((s.monitor, s.feature, s.start), {"id": None})) for s in signals]


def _span(seconds: float | None) -> str:
    """A duration in a table cell: ``9m``, ``14h14m``, ``2d3h``."""
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24}h"


def _contained(c: dict[str, Any] | None) -> str:
    if not c:
        return "—"
    return f"{c['mode']}, {'auto' if c['by'] == AUTO_ACTOR else c['by']}"


def _verify(proofs: dict[str, bool]) -> str:
    if not proofs:
        return "—"
    if all(proofs.values()) and len(proofs) == 2:
        return "both ok"
    return ", ".join(f"{k} {'ok' if v else 'FAILS'}" for k, v in sorted(proofs.items()))


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    t = s["timings"]
    console.print(f"stored {s['store']['events']:,} events and {s['store']['changes']:,} changes · "
                  f"{s['rejected']:,} rejected · spend ${s['spend_usd']:,.2f} · {len(s['signals'])} signals · "
                  f"{s['failures_detected']} of {s['failures_injected']} injected failures detected")
    incidents = s.get("incidents") or []
    if incidents:
        table = Table(title=f"{len(incidents)} incidents, worked through the playbook", box=box.SIMPLE_HEAD,
                      title_justify="left")
        for col in ("id", "category", "feature", "sev", "signals", "status", "lead", "contained", "detect",
                    "contain", "postmortem", "verify"):
            table.add_column(col, no_wrap=col in ("id", "sev", "signals", "detect", "contain"))
        for inc in incidents:
            table.add_row(inc["id"], inc["category"], inc["feature"], inc["severity"], str(inc["signals"]),
                          inc["status"], escape(inc.get("lead") or "—"), escape(_contained(inc.get("containment"))),
                          _span(inc.get("time_to_detect_s")), _span(inc.get("time_to_contain_s")),
                          inc.get("postmortem") or "—", _verify(inc.get("proofs") or {}))
        # Piped output is not cut to 80 columns: the table is read in logs too.
        wide = console if console.is_terminal else Console(file=console.file, width=max(console.width, 150),
                                                           soft_wrap=True, no_color=True)
        wide.print(table)
        for inc in incidents:
            for note in inc.get("notes") or ():
                console.print(f"{inc['id']}: {escape(note)}", highlight=False)
    for problem in s.get("problems") or ():
        console.print(f"[yellow]playbook step not taken:[/] {escape(problem)}", highlight=False)
    ins = s.get("insights")
    if ins:
        resp = ins["response"]
        console.print(f"insights: mean time to detect {_span(resp['mttd_s'])} · to contain {_span(resp['mttc_s'])} "
                      f"· to resolve {_span(resp['mttr_s'])} · recurrences {ins['recurrences']['count']} · "
                      f"regression cases {ins['growth']['eval_cases']} · stored monitors {ins['growth']['monitors']}")
        pms, acts = ins["postmortems"], ins["actions"]
        coverage = "—" if ins["reads"]["coverage"] is None else f"{ins['reads']['coverage'] * 100:.0f}%"
        console.print(f"postmortems: {pms['total']} ({pms['published']} published, {pms['on_time']} on time, "
                      f"{pms['overdue']} overdue) · actions: {acts['open']} open, {acts['overdue']} overdue, "
                      f"{acts['done']} done, {acts['deferred']} deferred · read coverage {coverage}")
    console.print(f"took {t.get('simulation_s')} s: generate + ingest + check {t.get('ingest_s')} s, detect "
                  f"{t.get('detect_s')} s, playbook {t.get('playbook_s')} s")
