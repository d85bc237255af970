"""`hotwash monitor ...`: the manifest's rules and the monitors born from incidents."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import ActorOpt, JsonOpt, actor, out, print_json, settings, store
from hotwash.manifest import load_manifest

app = typer.Typer(help="Monitors: the manifest's rules and the ones born from incidents (run live and in backtest).",
                  no_args_is_help=True)


@app.command("add")
def add(
    incident: Annotated[str, typer.Option("--from", help="The incident to learn from, e.g. INC-3.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new monitor (default: inc-N-metric-window).")
                    ] = None,
    quiet_days: Annotated[float, typer.Option("--quiet-days", min=0.01,
                                              help="Days before the incident on which the rule must stay silent.")
                          ] = 7.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Store the proposed monitor without asking.")] = False,
    json_: JsonOpt = False,
    actor_: ActorOpt = None,
) -> None:
    """Propose a rule that would have caught an incident sooner, replayed over its stored telemetry."""
    from hotwash.evals.monitor_from_incident import lead_text, propose, store_proposal
    from hotwash.incidents.service import get_incident

    cfg = settings()
    st = store(cfg)
    manifest = load_manifest(cfg.manifest)
    inc = get_incident(st, incident)
    proposal = propose(st, manifest, inc, quiet_days=quiet_days, name=name)
    if not json_:
        r = proposal.rule
        out.print(f"[bold]proposed monitor {escape(r.name)}[/] for {escape(proposal.incident)} "
                  f"({escape(r.category)}, {r.severity}), learned from {escape(', '.join(proposal.learned_from))}",
                  highlight=False)
        out.print(f"  rule: {escape(r.metric)} over {r.window} min {r.comparison} {r.threshold:g}"
                  + (f", at least {r.min_volume} calls" if r.min_volume else "") + f" on {escape(proposal.feature)}",
                  highlight=False)
        days = proposal.windows.to_json()["quiet_window"]["days"]
        out.print(f"  replayed over the stored telemetry: fires at {proposal.fired_at:%Y-%m-%d %H:%M}Z, "
                  f"{lead_text(proposal.lead_time_s)} ({proposal.windows.detected:%H:%M}Z), lead time "
                  f"{proposal.lead_time_s:+.0f} s · false alarms {proposal.false_alarms} on the {days:g} quiet days "
                  f"before · {proposal.tried} candidate rules tried", highlight=False)
    if not yes and not json_ and sys.stdin.isatty():
        yes = typer.confirm("store this monitor?", default=False)
    stored = None
    if yes:
        stored = store_proposal(st, manifest, proposal, incident_id=inc["number"], actor=actor(actor_))
    if json_:
        print_json({**proposal.to_json(), "stored": stored is not None})
    elif stored:
        out.print(f"stored monitor {escape(stored['name'])}: it runs live and in every backtest from now on",
                  highlight=False)
    else:
        out.print("not stored: run again with --yes to store it", highlight=False)


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Every rule: the manifest's (hotwash.yaml) and the stored ones born from incidents."""
    from hotwash.evals.monitor_from_incident import list_monitors

    cfg = settings()
    monitors = list_monitors(store(cfg), load_manifest(cfg.manifest))
    if json_:
        print_json(monitors)
        return
    if not monitors:
        out.print("no rules: add one with `hotwash monitor add --from INC-N` or under monitors.rules in hotwash.yaml")
        return
    table = Table(title=f"rules ({len(monitors)}; the built-in monitors always run)")
    for column in ("name", "source", "incident", "feature", "category", "rule", "enabled"):
        table.add_column(column)
    for m in monitors:
        table.add_row(escape(m["name"]), m["source"], m["incident"] or "", escape(m["feature"] or "all"),
                      m["rule"]["category"], escape(m["description"]), "yes" if m["enabled"] else "no")
    out.print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The stored monitor's name.")],
           json_: JsonOpt = False, actor_: ActorOpt = None) -> None:
    """Delete a stored monitor (rules of hotwash.yaml are removed by editing the file)."""
    from hotwash.evals.monitor_from_incident import remove_monitor

    cfg = settings()
    removed = remove_monitor(store(cfg), load_manifest(cfg.manifest), name, actor=actor(actor_))
    if json_:
        print_json(removed)
    else:
        out.print(f"removed monitor {escape(removed['name'])}", highlight=False)
