"""`hotwash incident ...`: open incidents and run the playbook, one verb per step.

    list · show · open · contain · update (status update) · note · diagnose/answer (diagnosis) ·
    mitigate · step (any playbook step by name) · close · assign
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import ActorOpt, JsonOpt, actor, err, out, parse_time, print_json, settings, store
from hotwash.errors import InvalidValue
from hotwash.incidents import communicate, service
from hotwash.incidents.lifecycle import EVENTS, STATES
from hotwash.manifest import load_manifest

app = typer.Typer(help="Open incidents and run the recovery playbook: contain, communicate, diagnose, "
                       "mitigate, postmortem, verify, close.", no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="The incident, e.g. INC-3.")]
ExpectOpt = Annotated[int | None, typer.Option(
    "--expect-version", "--expected-version",
    help="Refuse if the incident is no longer at this version (someone else changed it since you read it).")]


def _when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _done(inc: dict[str, Any], what: str, json_: bool) -> None:
    """After a change: the incident as JSON, or one line saying where it stands now."""
    if json_:
        print_json(inc)
        return
    out.print(f"[bold]{inc['id']}[/] {what} · now [bold]{inc['status']}[/] (version {inc['version']}) · "
              f"next: {', '.join(inc['allowed']) or 'nothing (closed)'}", highlight=False)


def _pair(value: str, option: str) -> tuple[str, str]:
    name, sep, role = value.rpartition(":")
    if not sep or not name.strip() or not role.strip():
        raise InvalidValue(f"{option} takes name:role (e.g. alice:communicator), got {value!r}", field="participant")
    return name.strip(), role.strip()


_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")


def _next_update(value: str | None) -> datetime | None:
    """``30m``, ``2h``, ``1d`` from now, or an ISO 8601 time."""
    if value is None:
        return None
    m = _DURATION.match(value.lower())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return datetime.now(UTC) + timedelta(**{unit: int(m.group(1))})
    return parse_time(value, "--next-update")


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help=f"open, all, or a state: {', '.join(STATES)}.")] = None,
    category: Annotated[str | None, typer.Option(help="One of the six categories.")] = None,
    feature: Annotated[str | None, typer.Option(help="Incidents affecting this feature.")] = None,
    severity: Annotated[str | None, typer.Option(help="SEV1 .. SEV4.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    rows = service.list_incidents(store(settings()), status=status, category=category, feature=feature,
                                  severity=severity)
    if json_:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} incident(s)")
    for column in ("id", "severity", "status", "category", "feature", "lead", "opened", "title"):
        table.add_column(column)
    for inc in rows:
        table.add_row(inc["id"], inc["severity"], inc["status"], inc["category"], escape(", ".join(inc["features"])),
                      escape(inc["lead"] or "-"), _when(inc["opened_at"]), escape(inc["title"]))
    out.print(table)


@app.command("show")
def show(incident: IdArg, json_: JsonOpt = False) -> None:
    """Everything about one incident: milestones, blast radius, people, signals, timeline, diagnosis."""
    inc = service.get_incident(store(settings()), incident)
    if json_:
        print_json(inc)
        return
    out.print(f"[bold]{inc['id']}[/] {escape(inc['title'])}", highlight=False)
    out.print(f"{inc['severity']} · {inc['category']} · {escape(', '.join(inc['features']))} · "
              f"[bold]{inc['status']}[/] · version {inc['version']} · lead {escape(inc['lead'] or 'nobody')}",
              highlight=False)
    milestones = [(k.removesuffix("_at"), inc[k]) for k in ("started_at", "detected_at", "contained_at",
                                                            "communicated_at", "diagnosed_at", "mitigated_at",
                                                            "postmortem_at", "verified_at", "closed_at") if inc[k]]
    out.print("milestones: " + " · ".join(f"{name} {_when(ts)}" for name, ts in milestones), highlight=False)
    b = inc["blast"]
    out.print(f"blast radius: {b['events']:,} calls · {b['sessions']:,} sessions · {b['users']:,} users · "
              f"${b['cost_usd']:,.2f} ({_when(b['window_start'])} → {_when(b['window_end'])})", highlight=False)
    if inc["containment"]:
        c = inc["containment"]
        out.print(f"containment: {escape(c['feature'])} in [bold]{c['mode']}[/] by {escape(c['by'])}", highlight=False)
    if inc["mitigation"]:
        m = inc["mitigation"]
        out.print(f"mitigation: {escape(m['description'])} ({escape(m['link'])})", highlight=False)
    if inc["participants"]:
        out.print("people: " + ", ".join(f"{escape(p['person'])} ({p['role']})" for p in inc["participants"]),
                  highlight=False)
    if inc["recurrences"]:
        listed = ", ".join(f"{r['id']} ({r['status']}, postmortem {r['postmortem'] or 'none'}, "
                           f"{r['open_actions']} open action(s))" for r in inc["recurrences"][:5])
        out.print(f"[yellow]recurrence:[/] {len(inc['recurrences'])} earlier incident(s): {listed}", highlight=False)
    out.print(f"next steps: {', '.join(inc['allowed']) or 'none (closed)'}", highlight=False)
    table = Table(title="timeline")
    for column in ("time (UTC)", "actor", "kind", "what"):
        table.add_column(column)
    for e in inc["timeline"]:
        table.add_row(_when(e["ts"]), escape(e["actor"]), e["kind"], escape(e["text"]))
    out.print(table)
    answered = [d for d in inc["diagnosis"] if d.get("answer")]
    if inc["diagnosis"]:
        out.print(f"diagnosis: {len(answered)}/{len(inc['diagnosis'])} answered "
                  f"(`hotwash incident diagnose {inc['id']}`)", highlight=False)


@app.command("open")
def open_(
    title: Annotated[str, typer.Option(help="What is wrong, in a line.")],
    category: Annotated[str, typer.Option(help="hallucination, prompt_injection, drift, runaway_cost, "
                                               "escalation_overload or scope_creep.")],
    severity: Annotated[str, typer.Option(help="SEV1 (worst) .. SEV4.")],
    feature: Annotated[list[str], typer.Option(help="An affected feature; repeat for several (the first is "
                                                    "the primary one).")],
    lead: Annotated[str | None, typer.Option(help="The person closest to the incident.")] = None,
    participant: Annotated[list[str] | None, typer.Option(help="name:role; repeatable.")] = None,
    signal: Annotated[list[int] | None, typer.Option(help="A stored signal id to link; repeatable.")] = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Open an incident by hand."""
    cfg = settings()
    inc = service.open_incident(store(cfg), load_manifest(cfg.manifest), title=title, category=category,
                                severity=severity, features=feature, actor=actor(actor_), lead=lead,
                                participants=[_pair(p, "--participant") for p in participant or []],
                                signal_ids=signal or [])
    if not json_ and inc["recurrences"]:
        err.print(f"[yellow]recurrence:[/] {len(inc['recurrences'])} earlier {inc['category']} incident(s) on "
                  f"{escape(inc['feature'])}: " + ", ".join(r["id"] for r in inc["recurrences"][:5]), highlight=False)
    _done(inc, "opened", json_)


@app.command("contain")
def contain(
    incident: IdArg,
    mode: Annotated[str, typer.Option(help="enabled, disabled, human, rollback or throttle.")],
    rate: Annotated[float | None, typer.Option(help="throttle: requests per second allowed.")] = None,
    budget: Annotated[float | None, typer.Option(help="throttle: a spend cap, USD per day.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the timeline.")] = None,
    feature: Annotated[str | None, typer.Option(help="Which affected feature (default: the primary one).")] = None,
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Contain in one action: set the feature's kill switch. Allowed in every open state."""
    params: dict[str, Any] = {}
    if rate is not None:
        params["rate_per_s"] = rate
    if budget is not None:
        params["budget_usd_per_day"] = budget
    if params and mode != "throttle":
        raise InvalidValue(f"--rate and --budget apply to throttle, not {mode}", field="mode")
    cfg = settings()
    inc = service.contain(store(cfg), load_manifest(cfg.manifest), incident, mode=mode, actor=actor(actor_),
                          params=params or None, reason=reason, feature=feature, expected_version=expect_version)
    c = inc["containment"]
    _done(inc, f"contained: {escape(c['feature'])} in {c['mode']} mode", json_)


@app.command("update")
def update(
    incident: IdArg,
    audience: Annotated[str, typer.Option(help="internal or customer.")] = "internal",
    what: Annotated[str | None, typer.Option(help="What happened (default: from the incident).")] = None,
    impact: Annotated[str | None, typer.Option(help="Who and what is affected (default: the blast radius).")] = None,
    known: Annotated[str | None, typer.Option(help="What we know.")] = None,
    unknown: Annotated[str | None, typer.Option(help="What we do not know yet.")] = None,
    next_update: Annotated[str | None, typer.Option(
        help="When the next update comes: 30m, 2h, 1d or an ISO time (default: by severity).")] = None,
    send: Annotated[bool, typer.Option(help="Send it to the notify channels of hotwash.yaml.")] = True,
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Post a status update: stored on the timeline and sent through the notifiers. The first one
    takes the communicate step."""
    from hotwash.notify import open_dispatcher

    cfg = settings()
    manifest = load_manifest(cfg.manifest)
    st = store(cfg)
    dispatcher = open_dispatcher(st, manifest.notify, os.environ) if send else None
    try:
        inc = communicate.post_status_update(
            st, manifest, incident, audience=audience, actor=actor(actor_), what_happened=what, impact=impact,
            what_we_know=known, what_we_do_not_know=unknown, next_update_at=_next_update(next_update),
            dispatcher=dispatcher, expected_version=expect_version)
    finally:
        if dispatcher is not None:
            dispatcher.close(timeout=30)
    if json_:
        print_json(inc)
        return
    out.print(escape(inc["status_update"]["text"]), highlight=False)
    sent = inc["status_update"]["offered_to"]
    _done(inc, f"{audience} status update posted" + (f" (sent to {', '.join(sent)})" if sent else ""), False)


@app.command("note")
def note(
    incident: IdArg,
    text: Annotated[str, typer.Argument(help="The note.")],
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Put a note on the timeline."""
    inc = service.add_note(store(settings()), incident, text=text, actor=actor(actor_), expected_version=expect_version)
    _done(inc, "note added", json_)


@app.command("mitigate")
def mitigate(
    incident: IdArg,
    description: Annotated[str, typer.Option(help="What was changed to stop the failure.")],
    link: Annotated[str, typer.Option(help="The change: a PR or commit URL, a commit sha, or prompt:<version>.")],
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Record the mitigation with a link to the change, and take the mitigate step."""
    cfg = settings()
    inc = service.mitigate(store(cfg), load_manifest(cfg.manifest), incident, description=description, link=link,
                           actor=actor(actor_), expected_version=expect_version)
    _done(inc, f"mitigated ({inc['mitigation']['kind']})", json_)


@app.command("step")
def step(
    incident: IdArg,
    event: Annotated[str, typer.Argument(help=f"One of {', '.join(EVENTS)}.")],
    text: Annotated[str | None, typer.Option(help="A note for the timeline entry.")] = None,
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Take any playbook step by name (contain and mitigate have their own commands for their options)."""
    if event in ("contain", "mitigate"):
        raise InvalidValue(f"use `hotwash incident {event}`: it takes the options {event} needs", field="event")
    cfg = settings()
    details = {"text": text} if text else {}
    inc = service.step(store(cfg), load_manifest(cfg.manifest), incident, event, actor=actor(actor_),
                       expected_version=expect_version, **details)
    _done(inc, f"{event}: done", json_)


@app.command("close")
def close(
    incident: IdArg,
    text: Annotated[str | None, typer.Option(help="A closing note for the timeline.")] = None,
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Close a verified incident whose actions are all done or deferred."""
    cfg = settings()
    inc = service.close(store(cfg), load_manifest(cfg.manifest), incident, actor=actor(actor_),
                        expected_version=expect_version, text=text)
    _done(inc, "closed", json_)


@app.command("assign")
def assign(
    incident: IdArg,
    lead: Annotated[str | None, typer.Option(help="The new lead (the previous one stays as responder).")] = None,
    participant: Annotated[list[str] | None, typer.Option(
        help=f"name:role, role one of {', '.join(service.ROLES)}; repeatable.")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="Someone who left the incident; repeatable.")] = None,
    expect_version: ExpectOpt = None,
    actor_: ActorOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set the lead, add or re-role participants, remove people."""
    inc = service.assign(store(settings()), incident, actor=actor(actor_), lead=lead,
                         participants=[_pair(p, "--participant") for p in participant or []], remove=remove or [],
                         expected_version=expect_version)
    people = ", ".join(f"{escape(p['person'])} ({p['role']})" for p in inc["participants"])
    _done(inc, f"people: {people or 'nobody'}", json_)
