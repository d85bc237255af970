"""`hotwash eval ...` and `hotwash verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotwash.commands.common import JsonOpt, err, out, print_json, settings, store
from hotwash.errors import InvalidValue

app = typer.Typer(help="Regression eval cases born from incidents.", no_args_is_help=True)

PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Case files or directories of them (default: ./evals).", show_default=False)]
_DEFAULT_DIR = Path("evals")


def _case_paths(paths: list[Path] | None) -> list[Path]:
    if paths:
        return paths
    if _DEFAULT_DIR.is_dir():
        return [_DEFAULT_DIR]
    raise InvalidValue("no case files given and no ./evals directory: name case files or directories, "
                       "or write cases with `hotwash eval add --from INC-<n>`", field="path")


def _load(paths: list[Path] | None):  # -> list[Case]
    from hotwash.evals.cases import load_cases

    cases = load_cases(_case_paths(paths))
    if not cases:
        raise InvalidValue(f"no cases in {', '.join(str(p) for p in _case_paths(paths))} (looked for *.yaml, *.yml)",
                           field="path")
    return cases


def _target(target: str | None, openai: str | None, model: str | None, api_key_env: str | None,
            system: str | None, recorded: bool):  # -> Target | None
    from hotwash.evals.targets import CallableTarget, OpenAITarget, RecordedTarget

    chosen = [name for name, given in (("--target", target), ("--openai", openai), ("--recorded", recorded))
              if given]
    if len(chosen) > 1:
        raise InvalidValue(f"give one target, not {' and '.join(chosen)}", field="target")
    if model is not None and openai is None:
        raise InvalidValue("--model goes with --openai URL", field="model")
    if (api_key_env is not None or system is not None) and openai is None:
        raise InvalidValue("--api-key-env and --system go with --openai URL", field="openai")
    if openai is not None:
        if not model:
            raise InvalidValue("--openai needs --model (the model name the endpoint serves)", field="model")
        if not openai.startswith(("http://", "https://")):
            raise InvalidValue(f"--openai: not an http(s) URL: {openai!r}", field="openai")
        return OpenAITarget(base_url=openai, model=model, api_key_env=api_key_env, system=system)
    if target is not None:
        return CallableTarget(target)
    if recorded:
        return RecordedTarget()
    return None


@app.command("run")
def run(
    paths: PathsArg = None,
    target: Annotated[str | None, typer.Option(
        "--target", help="A Python callable of your application, module:function.")] = None,
    openai: Annotated[str | None, typer.Option(
        "--openai", help="Base URL of an OpenAI-compatible chat-completions endpoint.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name for --openai.")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        "--api-key-env", help="Environment variable holding the API key for --openai.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt sent to --openai.")] = None,
    recorded: Annotated[bool, typer.Option(
        "--recorded", help="Replay each case's recorded output (the incident's bad answer).")] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Cases run at once.")] = 4,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds one attempt may take.")] = 30.0,
    retries: Annotated[int, typer.Option(min=0, help="Extra attempts after a transient failure.")] = 2,
    json_: JsonOpt = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML here (for CI).")] = None,
) -> None:
    """Replay regression cases against a target and check their assertions; exit 1 if any fails.

    Without a target option, a case uses its own `target:` key, else its recorded output."""
    from hotwash.evals.report import summary_line, table, write_junit
    from hotwash.evals.runner import run_cases

    tgt = _target(target, openai, model, api_key_env, system, recorded)
    try:
        cases = _load(paths)
        if json_ or not err.is_terminal:
            result = run_cases(cases, tgt, concurrency=concurrency, timeout=timeout, retries=retries)
        else:
            with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as progress:
                task = progress.add_task("cases", total=len(cases))
                result = run_cases(cases, tgt, concurrency=concurrency, timeout=timeout, retries=retries,
                                   on_result=lambda _r: progress.advance(task))
    finally:
        close = getattr(tgt, "close", None)
        if close is not None:
            close()
    if junit is not None:
        write_junit(result, junit)
    if json_:
        print_json(result.to_dict())
    else:
        out.print(table(result))
        out.print(summary_line(result), highlight=False)
        if junit is not None:
            out.print(f"JUnit XML: {escape(str(junit))}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command("add")
def add(
    from_: Annotated[str, typer.Option("--from", help="The incident, e.g. INC-3.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where the case files go.")] = _DEFAULT_DIR,
    limit: Annotated[int, typer.Option(min=1, help="At most this many cases (one per evidence event).")] = 3,
    force: Annotated[bool, typer.Option("--force", help="Replace case files already there.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Write regression cases from an incident's evidence, with assertions suggested for its category."""
    from hotwash.evals.from_incident import add_from_incident
    from hotwash.manifest import load_manifest

    cfg = settings()
    st = store(cfg)
    try:
        written = add_from_incident(st, load_manifest(cfg.manifest), from_, directory=directory, limit=limit,
                                    force=force)
    finally:
        st.dispose()
    if json_:
        print_json(written)
        return
    t = Table(title=f"regression cases from {escape(from_.upper())}")
    for col in ("case", "file", "assertions", "catches"):
        t.add_column(col, overflow="fold")
    for w in written:
        t.add_row(escape(w["id"]), escape(w["path"]) + ("" if w["written"] else " [dim](kept)[/]"),
                  ", ".join(w["assertions"]), "[green]yes[/]" if w["catches"] else "[red]no[/]")
    out.print(t)
    for w in written:
        for note in w["notes"]:
            out.print(f"[yellow]note[/] {escape(w['id'])}: {escape(note)}", highlight=False)
    out.print("review the suggested assertions, then commit the files; run them with `hotwash eval run "
              f"{escape(str(directory))}`", highlight=False)


def _state(path: str, digest: str) -> str:
    from hotwash.evals.cases import digest as sha

    p = Path(path)
    if not p.is_file():
        return "missing"
    return "ok" if sha(p.read_bytes()) == digest else "modified"


@app.command("list")
def list_(
    incident: Annotated[str | None, typer.Option("--incident", help="Only cases of this incident.")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Only cases of this feature.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The indexed regression cases, with whether each file is still there unchanged."""
    from hotwash.commands.common import parse_incident_id

    st = store()
    try:
        rows = st.list_eval_cases(incident_id=parse_incident_id(incident) if incident else None, feature=feature)
    finally:
        st.dispose()
    items = [{"id": r["id"], "incident": f"INC-{r['incident_id']}" if r["incident_id"] is not None else None,
              "feature": r["feature"], "category": r["category"], "path": r["path"], "digest": r["digest"],
              "created_at": r["created_at"], "state": _state(r["path"], r["digest"])} for r in rows]
    if json_:
        print_json(items)
        return
    t = Table(title="regression cases")
    for col in ("case", "incident", "feature", "category", "file", "state"):
        t.add_column(col, overflow="fold")
    for i in items:
        state = {"ok": "ok", "modified": "[yellow]modified[/]", "missing": "[red]missing[/]"}[i["state"]]
        t.add_row(escape(i["id"]), i["incident"] or "", escape(i["feature"] or ""), i["category"] or "",
                  escape(i["path"]), state)
    out.print(t)
    out.print(f"{len(items)} case(s)", highlight=False)


@app.command("check")
def check_(paths: PathsArg = None, json_: JsonOpt = False) -> None:
    """Validate case files, and say whether each case fails on its recorded output (catches it)."""
    from hotwash.evals.assertions import evaluate_case
    from hotwash.evals.targets import recorded_output

    cases = _load(paths)
    items = []
    for c in cases:
        catches = None if c.recorded is None else evaluate_case(c, recorded_output(c)).status == "failed"
        items.append({"id": c.id, "path": str(c.path) if c.path else None, "assertions": len(c.assertions),
                      "catches_recorded": catches})
    if json_:
        print_json({"valid": True, "cases": items})
        return
    for i in items:
        mark = {True: "[green]catches its recorded output[/]", False: "[red]PASSES on its recorded output[/]",
                None: "[dim]no recorded output[/]"}[i["catches_recorded"]]
        out.print(f"{escape(i['id'])} ({escape(i['path'] or '')}): {i['assertions']} assertion(s), {mark}",
                  highlight=False)
    out.print(f"{len(items)} case(s): valid", highlight=False)


@app.command("export")
def export(
    promptfoo: Annotated[Path, typer.Option("--promptfoo", help="Write a promptfoo config (YAML) here.")],
    paths: PathsArg = None,
    provider: Annotated[str | None, typer.Option("--provider", help="promptfoo provider id to use.")] = None,
    openai: Annotated[str | None, typer.Option("--openai", help="OpenAI-compatible endpoint base URL.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name for --openai.")] = None,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="API key variable for --openai.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt for every test.")] = None,
) -> None:
    """Export cases as a promptfoo configuration (prompts, providers, tests with assertions)."""
    from hotwash.evals.promptfoo import export_promptfoo, openai_provider

    cases = _load(paths)
    if provider and openai:
        raise InvalidValue("give --provider or --openai, not both", field="provider")
    if openai and not model:
        raise InvalidValue("--openai needs --model", field="model")
    chosen = openai_provider(openai, model, api_key_env, cases) if openai and model else provider
    text = export_promptfoo(cases, provider=chosen, system=system)
    promptfoo.parent.mkdir(parents=True, exist_ok=True)
    promptfoo.write_text(text, encoding="utf-8")
    out.print(f"wrote {len(cases)} test(s) to {escape(str(promptfoo))} (run: npx promptfoo eval -c "
              f"{escape(str(promptfoo))})", highlight=False)


# -- `hotwash verify` (the verify helper's) ------------------------------------------------------------------


def verify(
    incident: Annotated[str, typer.Argument(help="The incident, e.g. INC-3.")],
    target: Annotated[str | None, typer.Option(
        "--target", help="The fixed feature as a Python callable, module:function (default: each case's own "
                         "target, else healthy outputs recorded before the incident).")] = None,
    openai: Annotated[str | None, typer.Option(
        "--openai", help="Or an OpenAI-compatible chat-completions endpoint (base URL).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name for --openai.")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        "--api-key-env", help="Environment variable holding the API key for --openai.")] = None,
    quiet_days: Annotated[float, typer.Option(
        "--quiet-days", min=0.01, help="Days before the incident on which the monitor must stay silent.")] = 7.0,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds one target call may take.")] = 30.0,
    json_: JsonOpt = False,
    actor_: Annotated[str | None, typer.Option(
        "--actor", help="Who is acting, for the timeline (default: $HOTWASH_USER, else your login name).")] = None,
) -> None:
    """Compute and store both proofs of the verify step; exit 1 unless both hold.

    Proof 1: each regression case of the incident fails on its recorded bad output and passes on the
    target. Proof 2: the incident's new monitor, replayed over its stored telemetry, fires (how much
    earlier than the real detection, with how many false alarms on the quiet days). An incident in
    `postmortem` moves to `verified` when both hold."""
    from hotwash.commands.common import actor
    from hotwash.evals.verify import run_verify, summary
    from hotwash.manifest import load_manifest

    cfg = settings()
    st = store(cfg)
    tgt = _target(target, openai, model, api_key_env, None, False)
    try:
        result = run_verify(st, load_manifest(cfg.manifest), incident, actor=actor(actor_), target=tgt,
                            quiet_days=quiet_days, timeout=timeout)
    finally:
        getattr(tgt, "close", lambda: None)()
        st.dispose()
    if json_:
        print_json(result)
    else:
        reg, mon = result["regression"], result["monitor"]
        t = Table(title=f"{result['incident']}: regression proof {'holds' if reg['ok'] else 'FAILS'}")
        for col in ("case", "fails on recorded", "passes on target", "target", "why"):
            t.add_column(col, overflow="fold")
        for c in reg["cases"]:
            d = c["details"]
            why = d.get("error") or (d.get("target") or {}).get("reason") or (d.get("healthy") or {}).get("reason") \
                or (d.get("recorded") or {}).get("reason") or ""
            t.add_row(escape(c["id"]), "[green]yes[/]" if c["fails_on_recorded"] else "[red]no[/]",
                      "[green]yes[/]" if c["passes_on_target"] else "[red]no[/]", escape(c["target"] or ""),
                      escape(why))
        if reg["cases"]:
            out.print(t)
        for m in mon["monitors"]:
            lead = f"{m['lead_time_s']:+.0f} s" if m["lead_time_s"] is not None else "-"
            out.print(f"monitor {escape(m['name'])}: {'fired at ' + m['fired_at'] if m['fired'] else 'did not fire'}"
                      f", lead time {lead}, false alarms {m['false_alarms']}", highlight=False)
        out.print(escape(summary(result["incident"], reg, mon)), highlight=False)
        out.print(f"{result['incident']} is {result['status']}", highlight=False)
    if not (result["regression"]["ok"] and result["monitor"]["ok"]):
        raise typer.Exit(1)
