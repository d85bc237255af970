"""The ``hotwash`` command line: thin Typer commands over the services."""

from __future__ import annotations

import gc
import ipaddress
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from hotwash.commands import register
from hotwash.commands.common import JsonOpt, err, out, parse_time, print_json
from hotwash.commands.common import settings as settings_
from hotwash.commands.common import store as open_checked_store
from hotwash.detect.checks import EventChecker
from hotwash.detect.pool import ParallelChecker
from hotwash.errors import HotwashError, InputError
from hotwash.manifest import load_manifest, write_starter_manifest
from hotwash.store import open_store
from hotwash.telemetry.ingest import Quarantine, ingest_streams, open_inputs
from hotwash.telemetry.model import CHANGE_KINDS, ChangeEvent, parse_record
from hotwash.telemetry.writer import EventWriter

app = typer.Typer(help="Incident response for AI features: detect, contain, postmortem, verify.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
change_app = typer.Typer(help="Record and list changes (deploys, prompt/model/config/eval-set updates).",
                         no_args_is_help=True)
app.add_typer(change_app, name="change")

_print_json = print_json
_settings = settings_
_store = open_checked_store


@app.command()
def init() -> None:
    """Write a starter hotwash.yaml (never overwriting one) and create or migrate the store."""
    settings = _settings()
    if write_starter_manifest(settings.manifest):
        out.print(f"wrote starter manifest [bold]{settings.manifest}[/]: edit it to describe your features")
    else:
        load_manifest(settings.manifest)  # validate what is there
        out.print(f"kept existing manifest {settings.manifest} (valid)")
    store = open_store(settings.resolved_database_url, migrate=True)
    out.print(f"store ready at {store.engine.url.render_as_string(hide_password=True)} "
              f"(schema {store.current_revision()})")
    store.dispose()


@app.command()
def status(json_: JsonOpt = False) -> None:
    """What the store holds: events per feature, changes, signals, incidents."""
    store = _store(_settings())
    data = store.status()
    data["incidents"] = store.incident_count()
    if json_:
        _print_json(data)
        return
    table = Table(title="hotwash store")
    table.add_column("feature")
    table.add_column("events", justify="right")
    for name, count in data["features"].items():
        table.add_row(name, f"{count:,}")
    out.print(table)
    out.print(f"events {data['events']:,} · changes {data['changes']:,} · "
              f"signals {data['signals']:,} · incidents {data['incidents']:,}")


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="JSONL files to ingest; '-' reads standard input.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or otlp-json")] = "jsonl",
    json_: JsonOpt = False,
) -> None:
    """Ingest telemetry and change events. Bad records are reported and quarantined; the rest land."""
    settings = _settings()
    if fmt not in ("jsonl", "otlp-json"):
        raise HotwashError(f"unknown --format {fmt!r}: use jsonl or otlp-json")
    for p in paths:
        if p != "-" and not Path(p).is_file():
            raise HotwashError(f"no such file: {p}")
    store = _store(settings)
    reader = None
    if fmt == "otlp-json":
        from hotwash.telemetry.otlp import read_otlp_json

        reader = read_otlp_json
    total = sum(Path(p).stat().st_size for p in paths if p != "-")
    show = not json_ and sys.stderr.isatty() and total > 0
    with Progress(TextColumn("[bold]ingest[/] {task.fields[name]}"), BarColumn(), TransferSpeedColumn(),
                  TimeElapsedColumn(), console=err, disable=not show, transient=True) as progress:
        task = progress.add_task("ingest", total=total or None, name="")
        done_before: dict[str, int] = {}

        def on_batch(name: str, _line: int, position: int, _result: object) -> None:
            prev = done_before.get(name, 0)
            progress.update(task, advance=max(position - prev, 0), name=Path(name).name)
            done_before[name] = position

        with ParallelChecker(load_manifest(settings.manifest), workers=settings.check_workers) as checker:
            report = ingest_streams(
                open_inputs(paths), writer=EventWriter(store, checker), reader=reader,
                quarantine=Quarantine(settings.quarantine_dir), batch_size=settings.batch_size,
                max_record_bytes=settings.max_record_bytes, on_batch=on_batch,
            )
    store.dispose()
    if json_:
        _print_json(report.to_json())
    else:
        for rej in report.rejected:
            err.print(f"[red]rejected[/] {escape(rej.source)}:{rej.line}: {escape(rej.reason)}", highlight=False)
        if report.rejected_count > len(report.rejected):
            err.print(f"... and {report.rejected_count - len(report.rejected)} more")
        out.print(f"accepted {report.accepted:,} · duplicates {report.duplicates:,} · "
                  f"rejected {report.rejected_count:,}"
                  + (f" · unpriced {report.unpriced:,} (model unknown to genai-prices)" if report.unpriced else ""))
        if report.quarantine:
            out.print(f"rejected records kept in {report.quarantine}")
    if report.rejected_count:
        raise typer.Exit(1)


_parse_time = parse_time


@app.command()
def detect(
    since: Annotated[str | None, typer.Option(help="Only signals that fired at or after this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only signals that fired before this time.")] = None,
    notify: Annotated[bool, typer.Option(help="Alert the configured channels about new signals.")] = True,
    open_: Annotated[bool, typer.Option("--open", help="Open incidents from the signals by the manifest's policy "
                                                       "(or attach them to the open incident of their feature and "
                                                       "category).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run every monitor over the stored telemetry (backtest) and store the signals it finds."""
    from hotwash.detect.engine import MonitorEngine, save
    from hotwash.notify import open_dispatcher, with_ids

    settings = _settings()
    manifest = load_manifest(settings.manifest)
    store = _store(settings)
    engine = MonitorEngine(store, manifest)
    signals = engine.backtest(since=_parse_time(since, "--since"), until=_parse_time(until, "--until"))
    new = save(store, signals)
    dispatcher = open_dispatcher(store, manifest.notify, os.environ) if notify and new else None
    if open_ and dispatcher is None and notify:
        dispatcher = open_dispatcher(store, manifest.notify, os.environ)
    if dispatcher is not None and new:
        dispatcher.submit(with_ids(store, new))
    touched = []
    if open_:
        from hotwash.incidents.service import on_signals

        touched = on_signals(store, manifest, signals, dispatcher=dispatcher)
    if dispatcher is not None:
        dispatcher.close(timeout=30)
    store.dispose()
    if json_:
        for sig in signals:
            _print_json({k: v for k, v in sig.to_json().items() if k != "details"})
        return
    for inc in touched:
        verb = "opened" if inc.get("opened") else "updated"
        err.print(f"{verb} {inc['id']} [{inc['severity']}] {inc['category']} on {escape(inc['feature'])}: "
                  f"{escape(inc['title'])}", highlight=False)
    table = Table(title=f"{len(signals)} signals ({len(new)} new)")
    for col in ("detected", "severity", "feature", "monitor", "summary"):
        table.add_column(col)
    for sig in signals:
        table.add_row(sig.detected_at.strftime("%Y-%m-%d %H:%M"), sig.severity, sig.feature, sig.monitor,
                      escape(sig.summary))
    out.print(table)


@app.command()
def scan(
    path: Annotated[str, typer.Argument(help="A JSONL file of events ('-' for standard input).")],
    json_: JsonOpt = False,
) -> None:
    """Run the per-event checks on a file without storing anything."""
    from dataclasses import asdict

    from hotwash.telemetry.jsonl import Accepted, read_jsonl
    from hotwash.telemetry.model import Event

    settings = _settings()
    checker = EventChecker(load_manifest(settings.manifest))
    rejected = flagged = total = 0
    for name, stream in open_inputs([path]):
        for item in read_jsonl(stream, source=name, max_record_bytes=settings.max_record_bytes):
            if not isinstance(item, Accepted):
                rejected += 1
                err.print(f"[red]rejected[/] {escape(item.source)}:{item.line}: {escape(item.reason)}", highlight=False)
                continue
            if not isinstance(item.record, Event):
                continue
            verdict = checker.check(item.record)
            total += 1
            flagged += any(f.flagged for f in verdict.findings)
            if json_:
                _print_json({"id": item.record.id, "findings": [asdict(f) for f in verdict.findings]})
            else:
                for f in verdict.findings:
                    if f.flagged:
                        out.print(f"{escape(item.record.id)}  {f.category}  {f.check}  {f.score:.2f}  "
                                  f"{escape('; '.join(f.evidence)[:160])}", highlight=False)
    if not json_:
        out.print(f"scanned {total:,} events · {flagged:,} with flagged findings · {rejected:,} rejected")


@change_app.command("add")
def change_add(
    feature: Annotated[str, typer.Argument(help="The feature that changed.")],
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(CHANGE_KINDS)}.")],
    version: Annotated[str | None, typer.Option(help="The new version (prompt v12, model name...).")] = None,
    previous: Annotated[str | None, typer.Option(help="The version it replaced.")] = None,
    description: Annotated[str | None, typer.Option(help="What changed and why.")] = None,
    link: Annotated[str | None, typer.Option(help="PR, commit or release URL.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who or what made the change.")] = None,
    ts: Annotated[str | None, typer.Option(help="When (ISO 8601, default now).")] = None,
    change_id: Annotated[str | None, typer.Option("--id", help="Idempotency key (default generated).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Record a change, so diagnosis can ask 'did the prompt or model change?'."""
    settings = _settings()
    when = ts or datetime.now(UTC).isoformat()
    obj = {"type": "change", "id": change_id or f"chg-{feature}-{kind}-{when}", "ts": when,
           "feature": feature, "kind": kind, "version": version, "previous": previous,
           "description": description, "link": link, "actor": actor}
    record = parse_record({k: v for k, v in obj.items() if v is not None}, where="change")
    store = _store(settings)
    result = EventWriter(store).write([record])
    store.dispose()
    assert isinstance(record, ChangeEvent)
    if json_:
        _print_json({"id": record.id, "recorded": result.accepted == 1})
    else:
        out.print(f"{'recorded' if result.accepted else 'already recorded'} change {record.id}")


@change_app.command("list")
def change_list(
    feature: Annotated[str | None, typer.Option(help="Only this feature.")] = None,
    json_: JsonOpt = False,
) -> None:
    """List recorded changes, oldest first."""
    store = _store(_settings())
    rows = store.list_changes(feature=feature)
    store.dispose()
    if json_:
        _print_json([{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()
                      if k != "ingested_at"} for r in rows])
        return
    table = Table(title="changes")
    for col in ("ts", "feature", "kind", "version", "previous", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["ts"].strftime("%Y-%m-%d %H:%M"), r["feature"], r["kind"], r["version"] or "",
                      r["previous"] or "", r["description"] or "")
    out.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8321,
) -> None:
    """Run the server: OTLP receiver (/v1/traces), JSON API (/api/v1) and UI."""
    import uvicorn

    from hotwash.web import create_app

    settings = _settings()
    store = _store(settings)  # fail here, clearly, if the store is not ready
    configured = store.auth_configured() or settings.admin_token is not None or settings.ingest_token is not None
    store.dispose()
    if not _is_loopback(host) and not configured and not settings.dev_mode:
        raise HotwashError(
            f"refusing to serve on {host} while nobody has to authenticate: add a person or a token "
            "(`hotwash user add`, `hotwash token add`), or set HOTWASH_ADMIN_TOKEN / HOTWASH_INGEST_TOKEN; "
            "or HOTWASH_DEV_MODE=1 on a trusted network"
        )
    out.print(f"hotwash serving on http://{host}:{port}/ (web UI: /, API: /api/v1, OTLP: /v1/traces, "
              "metrics: /metrics)")
    if not configured:
        out.print("no people or tokens are set up: every request is served as 'local' with the admin role "
                  "(loopback only)")
    server_app = create_app(settings, check_workers=settings.check_workers)
    # Everything imported so far lives as long as the server: the collector need not walk it again
    # on every full collection (one took ~80 ms mid-ingest, under the GIL the requests need).
    gc.freeze()
    uvicorn.run(server_app, host=host, port=port, log_level="info")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Run the simulation and the playbook, print a "
                                                             "summary, exit.")] = False,
    weeks: Annotated[int, typer.Option(min=1, max=8, help="Weeks of traffic to simulate.")] = 3,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web UI (on 127.0.0.1).")] = 8321,
    reuse: Annotated[bool, typer.Option("--reuse", help="Serve the existing ./hotwash-demo without simulating "
                                                        "again.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object (no serve).")] = False,
) -> None:
    """Simulate weeks of three AI features failing in all six ways, detect it, work the incidents
    through the playbook, then serve the web UI on it."""
    import contextlib

    from hotwash.demo.run import demo_settings, run_demo

    workspace = Path("hotwash-demo").resolve()
    settings = demo_settings(workspace)
    if reuse:
        if not Path(settings.resolved_database_url.removeprefix("sqlite:///")).is_file():
            raise HotwashError(f"no demo in {workspace}: run `hotwash demo` first (without --reuse)")
    else:
        summary = run_demo(workspace, weeks=weeks, console=err if json_ else out)
        if json_:
            _print_json(summary)
            return
    if no_serve:
        out.print(f"the demo workspace is {workspace}: `cd hotwash-demo && hotwash incident list`, or serve it "
                  "with `hotwash demo --reuse`")
        return
    import uvicorn

    from hotwash.web import create_app

    store = _store(settings)
    configured = store.auth_configured() or settings.admin_token is not None or settings.ingest_token is not None
    store.dispose()
    out.print(f"open http://127.0.0.1:{port}/ (the web UI of the demo; API: /api/v1) — Ctrl-C stops it")
    if not configured:
        out.print("nobody has to log in: the demo store has no people or tokens, so the UI runs as 'local' with "
                  "the admin role (loopback only)")
    with contextlib.chdir(workspace):  # regression case paths are relative to the workspace
        uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


register(app)  # the workflow command groups, after the core commands above


def main() -> None:
    try:
        app()
    except InputError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except HotwashError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
