"""``hotwash demo``: a fresh workspace, weeks of simulated production traffic with every kind
of failure, ingested through the real path and judged by every monitor."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotwash.demo.scenarios import demo_weeks
from hotwash.detect.engine import MonitorEngine, save
from hotwash.detect.pool import ParallelChecker
from hotwash.manifest import load_manifest
from hotwash.settings import get_settings
from hotwash.store import open_store
from hotwash.telemetry.ingest import Quarantine, ingest_streams, open_inputs
from hotwash.telemetry.writer import EventWriter

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


def run_demo(workspace: Path, *, weeks: int, console: Console) -> dict[str, Any]:
    """Simulate ``weeks`` of traffic into a fresh ``workspace`` and detect what went wrong."""
    if (workspace / ".hotwash").exists():
        shutil.rmtree(workspace / ".hotwash")  # a fresh store each run: the demo is reproducible
    workspace.mkdir(parents=True, exist_ok=True)
    scenario = demo_weeks(weeks=weeks)
    manifest_path = workspace / "hotwash.yaml"
    manifest_path.write_text(scenario.manifest_yaml(), encoding="utf-8")
    settings = get_settings(home=workspace / ".hotwash", manifest=manifest_path,
                            database_url=f"sqlite:///{(workspace / '.hotwash' / 'hotwash.db').as_posix()}")
    manifest = load_manifest(manifest_path)
    store = open_store(settings.resolved_database_url, migrate=True)
    sample = workspace / "telemetry.jsonl"
    console.print(f"simulating {weeks} weeks of {', '.join(scenario.features)} into {sample}")
    total = scenario.write_jsonl(str(sample))
    with ExitStack() as stack, Progress(TextColumn("[bold]ingest + per-event checks"), BarColumn(),
                                        MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                        transient=True) as progress:
        task = progress.add_task("ingest", total=total)
        checker = stack.enter_context(ParallelChecker(manifest, workers=settings.check_workers))
        report = ingest_streams(
            open_inputs([str(sample)]), writer=EventWriter(store, checker),
            quarantine=Quarantine(settings.quarantine_dir), batch_size=settings.batch_size,
            max_record_bytes=settings.max_record_bytes,
            on_batch=lambda _n, _l, _p, r: progress.advance(task, r.accepted + r.duplicates),
        )
    signals = MonitorEngine(store, manifest).backtest()
    save(store, signals)
    status = store.status()
    rollups = store.rollup_rows()
    store.dispose()

    spend = sum(r["cost_usd"] for r in rollups)
    table = Table(title=f"what the monitors found in {weeks} weeks ({len(signals)} signals)")
    for col in ("detected (UTC)", "sev", "feature", "category", "summary"):
        table.add_column(col)
    for sig in signals:
        table.add_row(sig.detected_at.strftime("%m-%d %H:%M"), sig.severity, sig.feature, sig.category,
                      escape(sig.summary))
    console.print(table)
    injected = sorted(scenario.failures, key=lambda f: f.onset)
    caught = 0
    for f in injected:
        hit = next((s for s in signals if s.category == f.category and s.feature == f.feature
                    and s.detected_at > f.onset and (f.end is None or s.start < f.end)), None)
        caught += hit is not None
    console.print(f"stored {status['events']:,} events and {status['changes']:,} changes · "
                  f"{report.rejected_count:,} rejected · spend ${spend:,.2f} · "
                  f"{caught} of {len(injected)} injected failures detected")
    return {"workspace": str(workspace), **report.to_json(), "store": status, "spend_usd": round(spend, 4),
            "signals": [s.to_json() for s in signals], "failures_injected": len(injected),
            "failures_detected": caught}
