"""`hotwash action ...`: follow-ups tracked to closure (add, done, defer, list, remind)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hotwash.actions import service
from hotwash.commands.common import ActorOpt, JsonOpt, actor, out, print_json, settings, store
from hotwash.manifest import load_manifest

app = typer.Typer(help="Action items: owner, due date, kind, status (open / done / deferred with a reason).",
                  no_args_is_help=True)

NumArg = Annotated[str, typer.Argument(help="The action's number (see `hotwash action list`).")]


def _line(a: dict[str, Any]) -> str:
    state = a["status"] + (f" ({escape(a['reason'])})" if a["reason"] else "")
    overdue = f" [red]{a['days_overdue']} day(s) overdue[/]" if a["overdue"] else ""
    return (f"#{a['id']} {a['incident']} [{a['kind']}] {escape(a['title'])} · owner {escape(a['owner'])} · "
            f"due {a['due']}{overdue} · {state}")


@app.command("list")
def list_(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open actions past their due date.")] = False,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    incident: Annotated[str | None, typer.Option("--incident", help="e.g. INC-3")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open, done or deferred.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Action items by due date, overdue ones marked."""
    items = service.list_actions(store(), overdue=overdue, owner=owner, incident=incident, status=status)
    if json_:
        print_json(items)
        return
    table = Table(title="overdue actions" if overdue else "actions")
    for column in ("#", "incident", "kind", "title", "owner", "due", "status", "link"):
        table.add_column(column)
    for a in items:
        due = f"[red]{a['due']} (+{a['days_overdue']}d)[/]" if a["overdue"] else a["due"]
        table.add_row(str(a["id"]), a["incident"], a["kind"], escape(a["title"]), escape(a["owner"]), due,
                      a["status"] + (f": {escape(a['reason'])}" if a["reason"] else ""), escape(a["link"] or ""))
    out.print(table)


@app.command("add")
def add(
    incident: Annotated[str, typer.Argument(help="The incident, e.g. INC-3.")],
    title: Annotated[str, typer.Option("--title", help="What will be done.")],
    kind: Annotated[str, typer.Option("--kind", help=f"One of {', '.join(service.ACTION_KINDS)}.")],
    owner: Annotated[str, typer.Option("--owner", help="The person who will do it.")],
    due: Annotated[str, typer.Option("--due", help="Due date, YYYY-MM-DD (today or later).")],
    link: Annotated[str | None, typer.Option("--link", help="The item in an external tracker (URL).")] = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add an action item to an incident."""
    a = service.add_action(store(), incident, title=title, kind=kind, owner=owner, due=due, link=link,
                           actor=actor(actor_))
    if json_:
        print_json(a)
    else:
        out.print(f"added {_line(a)}", highlight=False)


@app.command("done")
def done(action: NumArg, actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Mark an action done."""
    a = service.done_action(store(), action, actor=actor(actor_))
    if json_:
        print_json(a)
    else:
        out.print(_line(a), highlight=False)


@app.command("defer")
def defer(action: NumArg,
          reason: Annotated[str, typer.Option("--reason", help="Why it will not be done now (required).")],
          actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Defer an action, with the reason."""
    a = service.defer_action(store(), action, reason=reason, actor=actor(actor_))
    if json_:
        print_json(a)
    else:
        out.print(_line(a), highlight=False)


@app.command("reopen")
def reopen(action: NumArg,
           due: Annotated[str | None, typer.Option("--due", help="A new due date, YYYY-MM-DD.")] = None,
           actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Open a done or deferred action again."""
    a = service.reopen_action(store(), action, actor=actor(actor_), due=due)
    if json_:
        print_json(a)
    else:
        out.print(_line(a), highlight=False)


@app.command("remind")
def remind(
    every_hours: Annotated[float, typer.Option("--every-hours", help="Remind an action at most this often.")] = 24,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List who would be reminded; send nothing.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Send each owner one reminder of their overdue actions through the notify channels
    (the server does this on a schedule)."""
    from hotwash.notify import open_dispatcher

    cfg = settings()
    st = store(cfg)
    manifest = load_manifest(cfg.manifest)
    dispatcher = None if dry_run else open_dispatcher(st, manifest.notify, os.environ)
    try:
        sent = service.remind_overdue(st, dispatcher, every=timedelta(hours=every_hours),
                                      base_url=manifest.notify.base_url)
    finally:
        if dispatcher is not None:
            dispatcher.close(timeout=30)
    if json_:
        print_json(sent)
        return
    if not sent:
        out.print("no overdue action is due for a reminder", highlight=False)
    for r in sent:
        what = "reminded" if r["sent"] else ("would remind" if dispatcher is None else "not reminded")
        out.print(f"{what} {escape(r['owner'])}: " + ", ".join(f"#{i}" for i in r["actions"])
                  + (f" ({escape(r['error'])})" if r["error"] else ""), highlight=False)
    if dispatcher is None and not dry_run:
        out.print("no notify channels in hotwash.yaml: nothing was sent", highlight=False)
