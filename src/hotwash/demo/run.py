"""``hotwash demo``: a fresh workspace, simulated production traffic, ingested and summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotwash.demo.sample import FEATURES, write_jsonl
from hotwash.settings import get_settings
from hotwash.store import open_store
from hotwash.telemetry.ingest import Quarantine, ingest_streams, open_inputs
from hotwash.telemetry.writer import EventWriter

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


def run_demo(workspace: Path, *, events: int, console: Console) -> dict[str, Any]:
    workspace.mkdir(parents=True, exist_ok=True)
    manifest = workspace / "hotwash.yaml"
    if not manifest.exists():
        manifest.write_text(_DEMO_MANIFEST, encoding="utf-8")
    settings = get_settings(home=workspace / ".hotwash", manifest=manifest,
                            database_url=f"sqlite:///{(workspace / '.hotwash' / 'hotwash.db').as_posix()}")
    store = open_store(settings.resolved_database_url, migrate=True)
    sample = workspace / "telemetry.jsonl"
    console.print(f"simulating {events:,} calls of {', '.join(FEATURES)} into {sample}")
    write_jsonl(str(sample), events)
    with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("ingest", total=events)
        report = ingest_streams(
            open_inputs([str(sample)]), writer=EventWriter(store),
            quarantine=Quarantine(settings.quarantine_dir), batch_size=settings.batch_size,
            max_record_bytes=settings.max_record_bytes,
            on_batch=lambda _n, _l, _p, r: progress.advance(task, r.accepted + r.duplicates),
        )
    status = store.status()
    rollups = store.rollup_rows()
    store.dispose()
    spend = sum(r["cost_usd"] for r in rollups)
    table = Table(title=f"stored in {workspace}/.hotwash/hotwash.db")
    table.add_column("feature")
    table.add_column("events", justify="right")
    table.add_column("spend (USD)", justify="right")
    table.add_column("escalation rate", justify="right")
    for feature, count in status["features"].items():
        rows = [r for r in rollups if r["feature"] == feature]
        esc = sum(r["escalations"] for r in rows) / max(count, 1)
        table.add_row(feature, f"{count:,}", f"{sum(r['cost_usd'] for r in rows):,.2f}", f"{esc:.1%}")
    console.print(table)
    console.print(f"accepted {report.accepted:,} · duplicates {report.duplicates:,} · "
                  f"rejected {report.rejected_count:,} · {len(rollups):,} minute rollups · "
                  f"spend ${spend:,.2f}")
    return {"workspace": str(workspace), **report.to_json(), "store": status,
            "rollup_minutes": len(rollups), "spend_usd": round(spend, 4)}
