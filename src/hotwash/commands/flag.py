"""`hotwash flag ...`: read and set each feature's kill switch."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import ActorOpt, JsonOpt, actor, out, parse_incident_id, print_json, settings, store
from hotwash.containment.flags import MODES, check_mode, get_flag, list_flags, set_mode
from hotwash.manifest import load_manifest

app = typer.Typer(help="Read and set each feature's kill switch (enabled, disabled, human, rollback, throttle).",
                  no_args_is_help=True)


def _params(flag: dict[str, Any]) -> str:
    return orjson.dumps(flag["params"]).decode() if flag["params"] else ""


def _show(flag: dict[str, Any]) -> None:
    line = f"[bold]{escape(flag['feature'])}[/]: {flag['mode']}"
    if flag["params"]:
        line += f" {escape(_params(flag))}"
    if flag["source"] == "default":
        line += " (manifest default, never set)"
    else:
        line += f" · v{flag['version']} by {escape(flag['updated_by'])} at {flag['updated_at']:%Y-%m-%d %H:%M:%S}Z"
        if flag["incident"]:
            line += f" for {flag['incident']}"
        if flag["reason"]:
            line += f" · {escape(flag['reason'])}"
    out.print(line, highlight=False)


@app.command("get")
def get(feature: Annotated[str, typer.Argument(help="The feature, as named in telemetry and hotwash.yaml.")],
        json_: JsonOpt = False) -> None:
    """Show a feature's flag (a feature never set is in its manifest default)."""
    cfg = settings()
    flag = get_flag(store(cfg), load_manifest(cfg.manifest), feature)
    if json_:
        print_json(flag)
    else:
        _show(flag)


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Every feature's flag: the manifest's features and any other feature set before."""
    cfg = settings()
    flags = list_flags(store(cfg), load_manifest(cfg.manifest))
    if json_:
        print_json(flags)
        return
    table = Table(title="flags")
    for column in ("feature", "mode", "params", "version", "set by", "incident", "reason"):
        table.add_column(column)
    for flag in flags:
        set_ = flag["source"] == "set"
        table.add_row(escape(flag["feature"]), flag["mode"], escape(_params(flag)), str(flag["version"]),
                      escape(flag["updated_by"]) if set_ else "(default)", flag["incident"] or "",
                      escape(flag["reason"] or ""))
    out.print(table)


@app.command("set")
def set_(
    feature: Annotated[str, typer.Argument(help="The feature to contain or release.")],
    mode: Annotated[str, typer.Argument(help=f"One of {', '.join(MODES)}.")],
    rate: Annotated[float | None, typer.Option("--rate", help="throttle: requests per second allowed "
                                               "(default: the manifest's containment.throttle_rps).")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="throttle: a spend cap, USD per day.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the timeline.")] = None,
    incident: Annotated[str | None, typer.Option("--incident", help="The incident this is for, e.g. INC-3.")] = None,
    expected_version: Annotated[int | None, typer.Option(
        "--expected-version", help="Refuse if the flag is no longer at this version (someone changed it).")] = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Put a feature in a mode. The change lands on the timeline of each open incident of the feature."""
    check_mode(mode)  # before touching the store: a typo is reported even when the store is down
    params: dict[str, Any] = {}
    if rate is not None:
        params["rate_per_s"] = rate
    if budget is not None:
        params["budget_usd_per_day"] = budget
    if params and mode != "throttle":
        raise typer.BadParameter(f"--rate and --budget apply to throttle, not {mode}")
    cfg = settings()
    flag = set_mode(store(cfg), load_manifest(cfg.manifest), feature, mode, actor=actor(actor_),
                    params=params or None, reason=reason,
                    incident_id=parse_incident_id(incident) if incident else None,
                    expected_version=expected_version)
    if json_:
        print_json(flag)
    else:
        _show(flag)
