"""`hotwash postmortem ...`: draft, edit, lint, review, publish, export/import, the library, reads."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import ActorOpt, JsonOpt, actor, err, out, parse_time, print_json, settings, store
from hotwash.errors import InvalidValue
from hotwash.manifest import load_manifest
from hotwash.postmortems import service

app = typer.Typer(help="Postmortems: draft from the incident, lint, review, publish, export, the library.",
                  no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="The incident whose postmortem it is, e.g. INC-3.")]
VersionOpt = Annotated[int | None, typer.Option(
    "--expected-version", help="Refuse if the postmortem is no longer at this version (someone saved since).")]


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidValue(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    except UnicodeDecodeError:
        raise InvalidValue(f"{path} is not UTF-8 text", field="file") from None


def _line(pm: dict[str, Any]) -> str:
    credit = " · ".join(f"{k} {escape(v)}" for k, v in (("author", pm["author"]), ("lead", pm["lead"])) if v)
    overdue = " [red]OVERDUE[/]" if pm["overdue"] else ""
    return (f"[bold]{pm['incident']}[/] {escape(pm['title'])} · {pm['status']} · due {pm['due']}{overdue}"
            + (f" · {credit}" if credit else "") + f" · v{pm['version']}")


def _print_doc(pm: dict[str, Any]) -> None:
    out.print(_line(pm), highlight=False)
    sys.stdout.flush()
    sys.stdout.write("\n" + pm["markdown"])


@app.command("draft")
def draft(incident: IdArg,
          regenerate: Annotated[bool, typer.Option("--regenerate", help="Rewrite a postmortem still in draft.")]
          = False,
          actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Generate the postmortem draft from the incident (at any state; a mitigated incident moves to
    its postmortem step). An existing postmortem is shown as it is unless --regenerate."""
    cfg = settings()
    pm = service.draft(store(cfg), load_manifest(cfg.manifest), incident, actor=actor(actor_), regenerate=regenerate)
    if json_:
        print_json(pm)
        return
    verb = "drafted" if pm["created"] else "exists:"
    out.print(f"{verb} {_line(pm)}", highlight=False)
    out.print(f"edit it: hotwash postmortem export {pm['incident']} -o {pm['incident']}.md, then "
              f"hotwash postmortem edit {pm['incident']} --file {pm['incident']}.md --expected-version {pm['version']}",
              highlight=False)


@app.command("show")
def show(incident: IdArg, json_: JsonOpt = False) -> None:
    """The postmortem: canonical Markdown, with status, due date and version."""
    pm = service.get_postmortem(store(), incident)
    if json_:
        print_json(pm)
    else:
        _print_doc(pm)


@app.command("list")
def list_(status: Annotated[str | None, typer.Option("--status", help="draft, in_review or published.")] = None,
          overdue: Annotated[bool, typer.Option("--overdue", help="Only those not published by their due date.")]
          = False,
          json_: JsonOpt = False) -> None:
    """Every postmortem, newest first, overdue ones marked."""
    items = service.list_postmortems(store(), status=status, overdue=overdue)
    if json_:
        print_json(items)
        return
    table = Table(title="postmortems")
    for column in ("incident", "title", "status", "due", "author", "lead", "feature"):
        table.add_column(column)
    for p in items:
        due = f"[red]{p['due']} overdue[/]" if p["overdue"] else p["due"]
        table.add_row(p["incident"], escape(p["title"]), p["status"], due, escape(p["author"] or ""),
                      escape(p["lead"] or ""), escape(p["feature"]))
    out.print(table)


@app.command("edit")
def edit(incident: IdArg,
         file: Annotated[str, typer.Option("--file", "-f", help="The edited Markdown ('-' reads stdin).")],
         expected_version: VersionOpt = None, actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Upload edited Markdown (draft or in review). With --expected-version the save is refused if
    someone saved since that version."""
    pm = service.update_markdown(store(), incident, markdown=_read(file), expected_version=expected_version,
                                 actor=actor(actor_))
    if json_:
        print_json(pm)
    else:
        out.print(f"saved {_line(pm)}", highlight=False)


def _print_report(report: dict[str, Any]) -> None:
    for f in report["findings"]:
        mark = "[green]accepted[/] " if f["accepted"] else ""
        out.print(f"line {f['line']}: {mark}[yellow]{f['rule']}[/] {escape(f['quote'])}", highlight=False)
        out.print(f"  why: {escape(f['why'])}", highlight=False)
        out.print(f"  try: {escape(f['suggestion'])}", highlight=False)
        out.print(f"  key: {f['key']}", highlight=False)
    for name in report["missing"]:
        out.print(f"[red]missing section:[/] {escape(str(name))}", highlight=False)
    for p in report["problems"]:
        out.print(f"[red]problem:[/] {escape(str(p))}", highlight=False)
    for w in report["warnings"]:
        out.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False)
    open_findings = sum(1 for f in report["findings"] if not f["accepted"])
    out.print(f"{open_findings} finding(s) to address, {len(report['missing'])} missing section(s), "
              f"{len(report['problems'])} problem(s), {report['words']} words of prose", highlight=False)


@app.command("lint")
def lint(path: Annotated[str, typer.Argument(help="A postmortem Markdown file ('-' reads stdin).")],
         person: Annotated[list[str] | None, typer.Option("--person", help="A participant's name to watch for "
                                                          "(repeatable); the front matter's author and lead count.")]
         = None,
         json_: JsonOpt = False) -> None:
    """Blameless lint and completeness checks of a file. Exit 1 if anything needs attention."""
    from hotwash.postmortems.markdown import parse

    text = _read(path)
    people = list(person or [])
    try:
        meta = parse(text).meta
        people += [n for n in (meta.author, meta.lead) if n]
    except InvalidValue:
        pass  # a malformed file is still linted; the checks report what is wrong with it
    report = service.lint_report(text, people=people)
    if json_:
        print_json(report)
    else:
        _print_report(report)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("review")
def review(incident: IdArg, json_: JsonOpt = False) -> None:
    """The stored postmortem's lint findings (with their keys, for `accept`) and completeness checks."""
    report = service.review(store(), incident)
    if json_:
        print_json(report)
    else:
        _print_report(report)


@app.command("accept")
def accept(incident: IdArg,
           key: Annotated[str, typer.Argument(help="The finding's key, from `hotwash postmortem review`.")],
           actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Accept a lint finding as a reviewer (a false alarm, or wording the team stands by)."""
    report = service.accept_finding(store(), incident, key, actor=actor(actor_))
    if json_:
        print_json(report)
    else:
        out.print(f"accepted {escape(key)} on {report['incident']}", highlight=False)


@app.command("submit")
def submit(incident: IdArg, expected_version: VersionOpt = None, actor_: ActorOpt = None,
           json_: JsonOpt = False) -> None:
    """draft -> in_review (every section present, checks pass)."""
    pm = service.submit(store(), incident, actor=actor(actor_), expected_version=expected_version)
    if json_:
        print_json(pm)
    else:
        out.print(f"in review: {_line(pm)}", highlight=False)


@app.command("publish")
def publish(incident: IdArg, expected_version: VersionOpt = None, actor_: ActorOpt = None,
            json_: JsonOpt = False) -> None:
    """in_review -> published: into the library, and a notice to the notify channels."""
    from hotwash.notify import open_dispatcher

    cfg = settings()
    st = store(cfg)
    manifest = load_manifest(cfg.manifest)
    dispatcher = open_dispatcher(st, manifest.notify, os.environ)
    try:
        pm = service.publish(st, manifest, incident, actor=actor(actor_), notifier=dispatcher,
                             expected_version=expected_version)
    finally:
        if dispatcher is not None:
            dispatcher.close(timeout=30)
    if json_:
        print_json(pm)
        return
    out.print(f"published: {_line(pm)}", highlight=False)
    if dispatcher is None:
        out.print("no notify channels in hotwash.yaml: nobody was told", highlight=False)


@app.command("export")
def export(incident: IdArg,
           fmt: Annotated[str, typer.Option("--format", help="md (canonical, re-importable), html or pdf.")] = "md",
           output: Annotated[str | None, typer.Option("-o", "--output", help="File to write (default: stdout; "
                                                      "required for pdf).")] = None) -> None:
    """Export the postmortem as Markdown, HTML or PDF."""
    if fmt not in service.EXPORT_FORMATS:
        raise InvalidValue(f"unknown export format {fmt!r}: use one of {', '.join(service.EXPORT_FORMATS)}",
                           field="format")
    if fmt == "pdf" and output is None:
        raise InvalidValue("a PDF goes to a file: add -o FILE", field="output")
    doc = service.export(store(), incident, fmt=fmt)
    if output is None:
        sys.stdout.write(doc if isinstance(doc, str) else doc.decode())
        return
    data = doc.encode() if isinstance(doc, str) else doc
    Path(output).write_bytes(data)
    err.print(f"wrote {escape(output)} ({len(data):,} bytes)", highlight=False)


@app.command("import")
def import_(file: Annotated[str, typer.Argument(help="A postmortem Markdown file ('-' reads stdin).")],
            actor_: ActorOpt = None, json_: JsonOpt = False) -> None:
    """Import a postmortem's Markdown; the front matter names the incident. Errors name the line and section."""
    cfg = settings()
    pm = service.import_markdown(store(cfg), load_manifest(cfg.manifest), _read(file), actor=actor(actor_))
    if json_:
        print_json(pm)
    else:
        out.print(f"{'imported' if pm['changed'] else 'unchanged'}: {_line(pm)}", highlight=False)


@app.command("library")
def library(
    q: Annotated[str | None, typer.Option("--q", help='Full-text search: words, "a phrase", OR, -word.')] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    feature: Annotated[str | None, typer.Option("--feature")] = None,
    severity: Annotated[str | None, typer.Option("--severity")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Published at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Published before (ISO 8601).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Published postmortems: search and filter; credits author and lead; counts per team and feature."""
    cfg = settings()
    lib = service.library(store(cfg), load_manifest(cfg.manifest), q=q, category=category, feature=feature,
                          severity=severity, since=parse_time(since, "--since"), until=parse_time(until, "--until"))
    if json_:
        print_json(lib)
        return
    table = Table(title="postmortem library" + (f" · {escape(q)}" if q else ""))
    for column in ("incident", "title", "category", "feature", "severity", "published", "author", "lead", "readers"):
        table.add_column(column)
    for p in lib["postmortems"]:
        table.add_row(p["incident"], escape(p["title"]), p["category"], escape(p["feature"]), p["severity"],
                      f"{p['published_at']:%Y-%m-%d}", escape(p["author"] or ""), escape(p["lead"] or ""),
                      str(p["readers"]))
    out.print(table)
    for what, counts in lib["counts"].items():
        if counts:
            out.print(f"per {what}: " + ", ".join(f"{escape(k)} {v}" for k, v in counts.items()), highlight=False)


@app.command("read")
def read(incident: IdArg,
         person: Annotated[str | None, typer.Option("--person", help="Who read it (default: you).")] = None,
         json_: JsonOpt = False) -> None:
    """Record that someone read the postmortem."""
    result = service.record_read(store(), incident, person=actor(person))
    if json_:
        print_json(result)
    else:
        out.print(f"{escape(result['person'])} read {result['incident']} "
                  f"({len(result['readers'])} reader(s))", highlight=False)


@app.command("coverage")
def coverage(last: Annotated[int, typer.Option("--last", help="How many recent published postmortems.")] = 5,
             person: Annotated[list[str] | None, typer.Option("--person", help="Who should have read them "
                                                              "(repeatable; default: everyone hotwash knows).")]
             = None,
             json_: JsonOpt = False) -> None:
    """Who has not read the last N published postmortems."""
    result = service.coverage(store(), last=last, people=person or None)
    if json_:
        print_json(result)
        return
    table = Table(title=f"reading coverage of the last {len(result['postmortems'])} published postmortem(s)")
    for column in ("person", "read", "not read"):
        table.add_column(column)
    for p in result["people"]:
        table.add_row(escape(p["person"]), f"{p['read']}/{p['of']}", ", ".join(p["missing"]))
    out.print(table)
