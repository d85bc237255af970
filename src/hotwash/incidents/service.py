"""The incident service: open incidents (by hand or from signals), move them through the playbook,
contain, note, mitigate, assign. Thin callers (CLI, API, UI, demo) use these functions only.

Every function is one unit of work and returns the incident's public dict (see :func:`get_incident`).
A change is written only if the incident is still at the version the caller read: pass
``expected_version`` to make that the version *you* saw (StaleUpdate otherwise). The row update,
its version bump and its timeline entries commit together, or not at all.

The lifecycle table (:mod:`hotwash.incidents.lifecycle`) decides what a step does; this module
performs its effects: sets the flag (through :func:`hotwash.containment.flags.set_mode`), stamps
milestones, writes the timeline, and checks the guards of ``verify`` (both proofs ok) and ``close``
(no open action).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import Connection

from hotwash.clock import utc_now
from hotwash.errors import Conflict, HotwashError, IllegalTransition, InvalidValue, NotFound, StaleUpdate
from hotwash.incidents import lifecycle
from hotwash.manifest import Category, Manifest, Severity

if TYPE_CHECKING:
    from hotwash.notify import Dispatcher
    from hotwash.store import Store

log = logging.getLogger("hotwash.incidents")

CATEGORIES: tuple[str, ...] = get_args(Category)
SEVERITIES: tuple[str, ...] = get_args(Severity)  # most severe first
# Roles people take on an incident. One lead: the person closest to the incident.
ROLES = ("lead", "responder", "communicator", "scribe", "observer", "expert")
SYSTEM_ACTOR = "hotwash"
AUTO_ACTOR = "hotwash (auto)"
PROOF_KINDS = ("regression", "monitor")
# Attempts at a change that loses an optimistic-concurrency race it did not ask to win (no
# expected_version given): each re-reads the incident and decides again.
_RETRIES = 5
_MAX_TITLE = 300
_MAX_TEXT = 10_000


# -- references and values --------------------------------------------------------------------
def incident_ref(number: int) -> str:
    return f"INC-{number}"


def parse_ref(ref: int | str) -> int:
    """``3``, ``"3"``, ``"INC-3"`` or ``"inc-3"`` -> 3; anything else is NotFound."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    text = str(ref).strip()
    if text.upper().startswith("INC-"):
        text = text[4:]
    if not text.isdigit():
        raise NotFound(f"no incident {ref!r}: incident ids look like INC-3 (see `hotwash incident list`)")
    return int(text)


_now = utc_now


def severity_rank(severity: str) -> int:
    """0 for SEV1 (most severe) .. 3 for SEV4."""
    return SEVERITIES.index(severity)


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise InvalidValue(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}", field="category")
    return category


def check_severity(severity: str) -> str:
    value = str(severity).strip().upper()
    if value not in SEVERITIES:
        raise InvalidValue(f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)} (SEV1 most severe)",
                           field="severity")
    return value


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValue(f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role")
    return role


def _check_name(value: str, what: str, *, limit: int = 200) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text or len(text) > limit or not text.isprintable():
        raise InvalidValue(f"{what} must be 1-{limit} printable characters, got {value!r}", field=what)
    return text


def _check_text(value: str | None, what: str, *, limit: int = _MAX_TEXT) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidValue(f"{what} must not be empty", field=what)
    if len(text) > limit:
        raise InvalidValue(f"{what} is {len(text)} characters; at most {limit}", field=what)
    return text


# -- reading ----------------------------------------------------------------------------------
_MILESTONE_COLUMNS = ("started_at", "detected_at", *(f"{s}_at" for s in lifecycle.STATES[1:]))


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public fields of an incident row (what listings show)."""
    out = {
        "id": incident_ref(row["id"]),
        "number": row["id"],
        "title": row["title"],
        "category": row["category"],
        "severity": row["severity"],
        "status": row["status"],
        "feature": row["feature"],
        "features": list(row["features"] or [row["feature"]]),
        "lead": row["lead"],
        "opened_by": row["opened_by"],
        "opened_at": row["opened_at"],
        **{col: row[col] for col in _MILESTONE_COLUMNS},
        "blast": _stored_blast(row["blast"]),
        "containment": row["containment"],
        "mitigation": row["mitigation"],
        "version": row["version"],
        "allowed": lifecycle.allowed(row["status"]),
    }
    return out


def _stored_blast(blast: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if blast is None:
        return None
    out = dict(blast)
    for key in ("window_start", "window_end"):
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key].replace("Z", "+00:00"))
    return out


def _window(row: Mapping[str, Any], signal_rows: Sequence[Mapping[str, Any]],
            now: datetime) -> tuple[datetime, datetime]:
    """First evidence to the mitigation (damage stopped), or while unmitigated to now / the last signal."""
    start = row["started_at"] or row["detected_at"]
    if signal_rows:
        start = min(start, *(s["start"] for s in signal_rows))
    if row["mitigated_at"] is not None:
        return start, max(start, row["mitigated_at"])
    last = max((s["detected_at"] for s in signal_rows), default=start)
    return start, max(now, last, start)


def _blast(store: Store, row: Mapping[str, Any], signal_rows: Sequence[Mapping[str, Any]],
           now: datetime) -> dict[str, Any]:
    start, end = _window(row, signal_rows, now)
    features = list(row["features"] or [row["feature"]])
    # The end is inclusive: an event at the very second the window closes was exposed.
    counts = store.blast_radius(features=features, start=start, end=_just_after(end))
    return {**counts, "window_start": start, "window_end": end}


def _just_after(ts: datetime) -> datetime:
    return ts + timedelta(microseconds=1)


def _diagnosis(store: Store, number: int) -> list[dict[str, Any]]:
    from hotwash.incidents import diagnose

    return diagnose.get_answers(store, number)


def _signal_public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "monitor", "category", "feature", "severity", "start", "detected_at",
                                "evidence", "summary", "details")}


def recurrences(store: Store, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Earlier incidents of the same feature and category: the warning sign that a fix did not hold."""
    return [{"id": incident_ref(r["id"]), "number": r["id"], "title": r["title"], "severity": r["severity"],
             "status": r["status"], "opened_at": r["opened_at"], "closed_at": r["closed_at"],
             "postmortem": r["postmortem_status"], "open_actions": int(r["open_actions"] or 0)}
            for r in store.recurrence_rows(feature=row["feature"], category=row["category"], before=row["id"])]


def _row(store: Store, ref: int | str, *, conn: Connection | None = None) -> dict[str, Any]:
    number = parse_ref(ref)
    row = store.incident_row(number, conn=conn)
    if row is None:
        raise NotFound(f"no incident {incident_ref(number)}: see `hotwash incident list`")
    return row


def get_incident(store: Store, ref: int | str, *, now: datetime | None = None) -> dict[str, Any]:
    """The incident's public dict: its fields, milestones, blast radius (live while it is open),
    participants, signals, timeline, diagnosis answers and recurrences. NotFound if there is none."""
    row = _row(store, ref)
    number = row["id"]
    signal_rows = store.incident_signal_rows(number)
    out = _summary(row)
    out["blast"] = _blast(store, row, signal_rows, _now(now))
    out["participants"] = [{"person": p["person"], "role": p["role"]} for p in store.list_participants(number)]
    out["signals"] = [_signal_public(s) for s in signal_rows]
    out["timeline"] = [{"id": e["id"], "ts": e["ts"], "actor": e["actor"], "kind": e["kind"], "text": e["text"],
                        "data": e["data"]} for e in store.list_timeline(number)]
    out["diagnosis"] = _diagnosis(store, number)
    out["recurrences"] = recurrences(store, row)
    return out


def list_incidents(store: Store, *, status: str | Sequence[str] | None = None, category: str | None = None,
                   feature: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
    """Incidents, newest first. ``status`` is a state, a list of states, ``open`` (any state but
    closed) or ``all``/None."""
    states: Sequence[str] | None
    if status is None or status == "all":
        states = None
    elif status == "open":
        states = lifecycle.OPEN_STATES
    else:
        states = [status] if isinstance(status, str) else list(status)
        bad = [s for s in states if s not in lifecycle.STATES]
        if bad:
            raise InvalidValue(f"unknown status {bad[0]!r}: use open, all or one of {', '.join(lifecycle.STATES)}",
                               field="status")
    if category is not None:
        check_category(category)
    if severity is not None:
        severity = check_severity(severity)
    rows = store.list_incident_rows(status=states, category=category, feature=feature, severity=severity)
    return [_summary(r) for r in rows]


# -- writing: one guarded unit of work ----------------------------------------------------------
@dataclass
class _Entry:
    kind: str
    text: str
    data: dict[str, Any] | None = None
    actor: str | None = None
    ts: datetime | None = None


@dataclass
class _Change:
    values: dict[str, Any] = field(default_factory=dict)
    entries: list[_Entry] = field(default_factory=list)
    guards: tuple[str, ...] = ()
    event: str | None = None
    # Extra writes of the same unit of work (participants, signals), given the connection.
    also: Callable[[Connection, dict[str, Any]], None] | None = None


def _stale(number: int, expected: int, current: int) -> StaleUpdate:
    return StaleUpdate(f"{incident_ref(number)} changed since you read it: it is at version {current}, you sent "
                       f"{expected}; reload it (`hotwash incident show {incident_ref(number)}`) and try again")


def _apply(store: Store, ref: int | str, decide: Callable[[dict[str, Any]], _Change], *, actor: str,
           now: datetime, expected_version: int | None) -> dict[str, Any]:
    """Read the incident, let ``decide`` compute the change from it, and write it if the incident is
    still at the version read. Without ``expected_version`` a lost race is retried from a fresh read."""
    for attempt in range(_RETRIES):
        row = _row(store, ref)
        if expected_version is not None and expected_version != row["version"]:
            raise _stale(row["id"], expected_version, row["version"])
        change = decide(row)
        with store.transaction() as conn:
            new = store.update_incident(conn, incident_id=row["id"], version=row["version"], values=change.values)
            if new is None:
                current = store.incident_row(row["id"], conn=conn)
                if current is None:
                    raise NotFound(f"no incident {incident_ref(row['id'])}: it was deleted")
                if expected_version is not None or attempt == _RETRIES - 1:
                    raise _stale(row["id"], row["version"], current["version"])
                continue
            _check_guards(store, conn, row, change)
            if change.also is not None:
                change.also(conn, new)
            for e in change.entries:
                store.add_timeline(incident_id=row["id"], ts=e.ts or now, actor=e.actor or actor, kind=e.kind,
                                   text=e.text, data=e.data, conn=conn)
        return new
    raise AssertionError("unreachable")  # pragma: no cover


def _check_guards(store: Store, conn: Connection, row: Mapping[str, Any], change: _Change) -> None:
    ref = incident_ref(row["id"])
    others = [e for e in lifecycle.allowed(row["status"]) if e != change.event]
    if "proofs" in change.guards:
        status = store.newest_proof_status(row["id"], conn=conn)
        problems = [f"the {k} proof {'failed' if k in status else 'has not been computed'}"
                    for k in PROOF_KINDS if not status.get(k)]
        if problems:
            raise IllegalTransition(
                f"{ref} cannot be verified yet: {' and '.join(problems)}; run `hotwash verify {ref}` once the "
                "regression case and the new monitor are in place (it computes and stores both proofs)",
                state=row["status"], event="verify", allowed=others)
    if "actions_resolved" in change.guards:
        open_actions = store.open_action_rows(row["id"], conn=conn)
        if open_actions:
            listed = ", ".join(f"#{a['id']} {a['title']!r} ({a['owner']})" for a in open_actions[:5])
            more = f" and {len(open_actions) - 5} more" if len(open_actions) > 5 else ""
            raise IllegalTransition(
                f"{ref} cannot close: {len(open_actions)} action(s) still open: {listed}{more}; mark each done "
                "(`hotwash action done ID`) or defer it with a reason (`hotwash action defer ID --reason ...`)",
                state=row["status"], event="close", allowed=others)


def _decide_transition(row: Mapping[str, Any], event: str, *, now: datetime, text: str | None = None,
                       data: Mapping[str, Any] | None = None, values: Mapping[str, Any] | None = None,
                       entries: Iterable[_Entry] = ()) -> _Change:
    """The change ``event`` makes to ``row``, as the lifecycle table says (IllegalTransition if none)."""
    try:
        t = lifecycle.transition(row["status"], event)
    except IllegalTransition as exc:
        raise IllegalTransition(f"{incident_ref(row['id'])}: {exc}", state=exc.state, event=exc.event,
                                allowed=exc.allowed) from None
    change = _Change(values={"status": t.state, **(values or {})}, entries=list(entries), guards=t.guards,
                     event=event)
    for column in t.milestones:
        if row[column] is None:
            change.values[column] = now
    if any(e.kind == "timeline" for e in t.effects):
        what = f"{row['status']} → {t.state}" + (f": {text}" if text else "")
        change.entries.append(_Entry("transition", what, {"event": event, "from": row["status"], "to": t.state,
                                                          **(data or {})}))
    return change


def _finish(store: Store, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return get_incident(store, row["id"], now=now)


# -- opening --------------------------------------------------------------------------------
def _refresh_blast(store: Store, number: int, now: datetime) -> None:
    """Keep the stored snapshot of the blast radius current (listings show it)."""
    row = store.incident_row(number)
    if row is not None:
        store.save_blast(number, _jsonable(_blast(store, row, store.incident_signal_rows(number), now)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _signal_entry(sig: Mapping[str, Any], *, attached: bool) -> _Entry:
    verb = "signal attached" if attached else "signal"
    return _Entry("signal", f"{verb}: {sig['severity']} {sig['monitor']}: {sig['summary']}",
                  {"signal_id": sig["id"], "monitor": sig["monitor"], "severity": sig["severity"],
                   "start": _jsonable(sig["start"]), "detected_at": _jsonable(sig["detected_at"]),
                   "evidence": list(sig["evidence"] or [])[:20]},
                  actor=f"{SYSTEM_ACTOR} ({sig['monitor']})"[:200], ts=sig["detected_at"])


def _recurrence_entry(past: Sequence[Mapping[str, Any]], feature: str, category: str) -> _Entry:
    def one(p: Mapping[str, Any]) -> str:
        pm = f"postmortem {p['postmortem']}" if p["postmortem"] else "no postmortem"
        return f"{p['id']} ({p['status']}, {pm}, {p['open_actions']} open action(s))"

    return _Entry("recurrence", f"recurrence: {len(past)} earlier {category} incident(s) on {feature}: "
                  + "; ".join(one(p) for p in past[:5]),
                  {"incidents": [p["id"] for p in past]})


def open_incident(store: Store, manifest: Manifest, *, title: str, category: str, severity: str,
                  features: Sequence[str] | str, actor: str, lead: str | None = None,
                  signal_ids: Sequence[int] = (), participants: Iterable[tuple[str, str]] = (),
                  now: datetime | None = None) -> dict[str, Any]:
    """Open an incident (state ``detected``); the first of ``features`` is the primary one.

    ``signal_ids`` are linked to it (each must exist and belong to no incident yet). Earlier
    incidents of the same feature and category are listed on its timeline as a recurrence, and the
    diagnosis is pre-filled with evidence. Returns the incident.
    """
    ts = _now(now)
    title = _check_name(title, "title", limit=_MAX_TITLE)
    category = check_category(category)
    severity = check_severity(severity)
    names = [features] if isinstance(features, str) else list(features)
    if not names:
        raise InvalidValue("an incident needs at least one affected feature", field="features")
    names = list(dict.fromkeys(_check_name(f, "feature") for f in names))
    actor = _check_name(actor, "actor")
    lead = _check_name(lead, "lead") if lead else None
    people = [(_check_name(p, "participant"), check_role(r)) for p, r in participants]
    if lead is None:
        lead = next((p for p, r in people if r == "lead"), None)
    people = [(p, r) for p, r in people if p != lead and r != "lead"]
    ids = list(dict.fromkeys(int(i) for i in signal_ids))
    sigs = store.signal_rows(ids)
    missing = [i for i in ids if i not in sigs]
    if missing:
        raise NotFound(f"no signal {missing[0]}: see `hotwash detect` for stored signals")
    taken = store.attached_incidents(ids)
    if taken:
        sid, owner = next(iter(taken.items()))
        raise Conflict(f"signal {sid} already belongs to {incident_ref(owner)}")
    ordered = sorted(sigs.values(), key=lambda s: (s["detected_at"], s["id"]))
    values = {
        "title": title, "category": category, "severity": severity, "status": "detected",
        "feature": names[0], "features": names, "lead": lead, "opened_by": actor, "opened_at": ts,
        "started_at": min((s["start"] for s in ordered), default=None),
        "detected_at": min((s["detected_at"] for s in ordered), default=ts),
    }
    past = recurrences(store, {"id": None, "feature": names[0], "category": category})
    with store.transaction() as conn:
        row = store.insert_incident(conn, values=values)
        number = row["id"]
        if lead:
            store.set_participant(conn, incident_id=number, person=lead, role="lead", now=ts)
        for person, role in people:
            store.set_participant(conn, incident_id=number, person=person, role=role, now=ts)
        linked = store.attach_signals(conn, incident_id=number, signal_ids=ids, now=ts)
        if len(linked) != len(ids):  # another incident took one between our check and now
            raise Conflict(f"signal(s) {sorted(set(ids) - set(linked))} were just attached to another incident")
        where = ", ".join(names)
        entries = [_Entry("opened", f"opened: {severity} {category} on {where}: {title}",
                          {"severity": severity, "category": category, "features": names, "lead": lead})]
        entries += [_signal_entry(s, attached=False) for s in ordered]
        if past:
            entries.append(_recurrence_entry(past, names[0], category))
        for e in entries:
            store.add_timeline(incident_id=number, ts=e.ts or ts, actor=e.actor or actor, kind=e.kind, text=e.text,
                               data=e.data, conn=conn)
    _refresh_blast(store, number, ts)
    _prefill_diagnosis(store, manifest, number)
    return get_incident(store, number, now=ts)


def _prefill_diagnosis(store: Store, manifest: Manifest, number: int) -> None:
    from hotwash.incidents import diagnose

    try:
        diagnose.prefill(store, manifest, number)
    except Exception:  # the incident is open and committed; a failed pre-fill must not hide that
        log.exception("could not pre-fill the diagnosis of %s", incident_ref(number))


# -- signals -> incidents ---------------------------------------------------------------------
def opens_incident(manifest: Manifest, category: str, severity: str) -> bool:
    """Whether a signal of this category and severity opens an incident (policy of ``incidents:``)."""
    policy = manifest.incidents
    threshold = policy.open_on.get(category, policy.open_min_severity)  # type: ignore[call-overload]
    return severity in SEVERITIES and severity_rank(severity) <= severity_rank(threshold)


def _signal_ids(store: Store, signals: Iterable[Any]) -> list[int]:
    """Stored signal ids from rows (dicts with ``id``), ids, (id, Signal) pairs or Signal objects."""
    ids: list[int] = []
    unresolved = []
    for item in signals:
        if isinstance(item, int):
            ids.append(item)
        elif isinstance(item, Mapping):
            ids.append(int(item["id"]))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int):
            ids.append(item[0])
        else:
            unresolved.append(item)
    if unresolved:
        keys = {(s.monitor, s.feature, s.start): s for s in unresolved}
        found = store.signal_ids(keys)
        ids.extend(found[k] for k in keys if k in found)
    return list(dict.fromkeys(ids))


def _title_for(sig: Mapping[str, Any]) -> str:
    what = sig["category"].replace("_", " ")
    title = f"{what.capitalize()} on {sig['feature']}: {sig['summary']}"
    return " ".join(title.split())[:_MAX_TITLE]


def attach_signals(store: Store, ref: int | str, signal_ids: Sequence[int], *, actor: str = SYSTEM_ACTOR,
                   now: datetime | None = None) -> dict[str, Any]:
    """Link signals to an open incident ("signal attached" on its timeline). A signal more severe than
    the incident raises its severity; earlier evidence moves ``started_at`` back. Signals already
    linked to an incident are skipped."""
    ts = _now(now)
    number = _attach(store, ref, signal_ids, actor=actor, now=ts)
    return get_incident(store, number, now=ts)


def _attach(store: Store, ref: int | str, signal_ids: Sequence[int], *, actor: str, now: datetime) -> int:
    ts = now
    found = store.signal_rows(signal_ids)
    missing = set(signal_ids) - set(found)
    if missing:
        raise NotFound(f"no signal {min(missing)}: see `hotwash detect` for stored signals")
    taken = store.attached_incidents(signal_ids)
    sigs = [s for i, s in sorted(found.items()) if i not in taken]
    if not sigs:
        return parse_ref(ref)

    def decide(row: dict[str, Any]) -> _Change:
        if not lifecycle.is_open(row["status"]):
            raise Conflict(f"{incident_ref(row['id'])} is closed: signals attach to open incidents only")
        change = _Change()
        worst = min((s["severity"] for s in sigs), key=severity_rank)
        if severity_rank(worst) < severity_rank(row["severity"]):
            change.values["severity"] = worst
            change.entries.append(_Entry("severity", f"severity {row['severity']} → {worst} (a more severe signal)",
                                         {"from": row["severity"], "to": worst}))
        earliest = min(s["start"] for s in sigs)
        if row["started_at"] is None or earliest < row["started_at"]:
            change.values["started_at"] = earliest

        def link(conn: Connection, new: dict[str, Any]) -> None:
            linked = set(store.attach_signals(conn, incident_id=new["id"], signal_ids=[s["id"] for s in sigs],
                                              now=ts))
            for s in sigs:
                if s["id"] in linked:
                    store.add_timeline(incident_id=new["id"], ts=s["detected_at"], conn=conn,
                                       **_entry_fields(_signal_entry(s, attached=True)))

        change.also = link
        return change

    row = _apply(store, ref, decide, actor=actor, now=ts, expected_version=None)
    _refresh_blast(store, row["id"], ts)
    return int(row["id"])


def _entry_fields(e: _Entry) -> dict[str, Any]:
    return {"actor": e.actor or SYSTEM_ACTOR, "kind": e.kind, "text": e.text, "data": e.data}


def on_signals(store: Store, manifest: Manifest, signals: Iterable[Any], *, now: datetime | None = None,
               dispatcher: Dispatcher | None = None) -> list[dict[str, Any]]:
    """Apply the incident policy to stored signals, oldest first.

    A signal joins the open incident of its feature and category if there is one; otherwise it
    opens one when its severity reaches the policy's threshold (``incidents.open_on`` per category,
    else ``incidents.open_min_severity``); otherwise it is only kept as a signal. Signals already in
    an incident are skipped. If the feature's manifest maps the category to an auto-containment mode
    and the incident was never contained, hotwash contains it (actor ``hotwash (auto)``).

    Returns the incidents opened or joined, each with ``opened`` (bool) and ``attached`` (signal ids).
    """
    ts = _now(now)
    ids = _signal_ids(store, signals)
    taken = store.attached_incidents(ids)
    rows = sorted((s for i, s in store.signal_rows(ids).items() if i not in taken),
                  key=lambda s: (s["detected_at"], s["id"]))
    touched: dict[int, dict[str, Any]] = {}
    for sig in rows:
        existing = store.find_open_incident(feature=sig["feature"], category=sig["category"])
        if existing is not None:
            _attach(store, existing["id"], [sig["id"]], actor=SYSTEM_ACTOR, now=ts)
            number, opened = existing["id"], False
        elif opens_incident(manifest, sig["category"], sig["severity"]):
            inc = open_incident(store, manifest, title=_title_for(sig), category=sig["category"],
                                severity=sig["severity"], features=[sig["feature"]], actor=SYSTEM_ACTOR,
                                signal_ids=[sig["id"]], now=ts)
            number, opened = inc["number"], True
            if dispatcher is not None:
                _announce_opened(dispatcher, manifest, inc)
        else:
            continue
        entry = touched.setdefault(number, {"opened": opened, "attached": []})
        entry["attached"].append(sig["id"])
        _auto_contain(store, manifest, number, sig, now=ts)
    out = []
    for number, info in touched.items():
        out.append({**get_incident(store, number, now=ts), **info})
    return out


def _auto_contain(store: Store, manifest: Manifest, number: int, sig: Mapping[str, Any], *, now: datetime) -> None:
    declared = manifest.features.get(sig["feature"])
    mode = declared.containment.auto.get(sig["category"]) if declared is not None else None  # type: ignore[call-overload]
    if mode is None:
        return
    row = store.incident_row(number)
    if row is None or row["containment"] is not None or not lifecycle.is_open(row["status"]):
        return  # people (or an earlier signal) already chose the containment: hotwash does not override it
    reason = f"auto-containment: {sig['category']} signal {sig['id']} ({sig['monitor']})"
    try:
        contain(store, manifest, number, mode=mode, actor=AUTO_ACTOR, reason=reason, now=now)
    except HotwashError as exc:  # e.g. throttle with no rate declared: say so where responders look
        log.warning("auto-containment of %s failed: %s", incident_ref(number), exc)
        add_note(store, number, text=f"auto-containment ({mode}) failed: {exc}", actor=AUTO_ACTOR, now=now)


def _announce_opened(dispatcher: Dispatcher, manifest: Manifest, inc: Mapping[str, Any]) -> None:
    from hotwash.incidents.communicate import incident_notice

    past = inc.get("recurrences") or []
    lines = [f"{inc['id']} opened: {inc['title']}"]
    if past:
        lines.append(f"Recurrence: {len(past)} earlier incident(s) of this feature and category: "
                     + ", ".join(p["id"] for p in past[:5]))
    dispatcher.announce(incident_notice(inc, title=f"{inc['id']} opened: {inc['severity']} "
                                        f"{inc['category'].replace('_', ' ')} on {inc['feature']}",
                                        summary="\n".join(lines), base_url=manifest.notify.base_url))


# -- the playbook steps ---------------------------------------------------------------------
_STEP_DETAILS = {"contain": {"mode", "params", "reason", "feature"}, "mitigate": {"description", "link"}}


def step(store: Store, manifest: Manifest, ref: int | str, event: str, *, actor: str,
         expected_version: int | None = None, now: datetime | None = None, **details: Any) -> dict[str, Any]:
    """Take one playbook step. ``contain`` needs ``mode`` (and takes ``params``, ``reason``),
    ``mitigate`` needs ``description`` and ``link``; any other step takes an optional ``text`` for
    its timeline entry. IllegalTransition names the steps allowed now."""
    if event in _STEP_DETAILS:
        unknown = sorted(set(details) - _STEP_DETAILS[event])
        if unknown:
            raise InvalidValue(f"{event} takes {', '.join(sorted(_STEP_DETAILS[event]))}, not {', '.join(unknown)}",
                               field=unknown[0])
    if event == "contain":
        if not details.get("mode"):
            raise InvalidValue("contain needs a mode", field="mode")
        return contain(store, manifest, ref, actor=actor, expected_version=expected_version, now=now, **details)
    if event == "mitigate":
        return mitigate(store, manifest, ref, actor=actor, expected_version=expected_version, now=now, **details)
    unknown = sorted(set(details) - {"text"})
    if unknown:
        raise InvalidValue(f"{event} takes no {', '.join(unknown)} (only an optional text)", field=unknown[0])
    ts = _now(now)
    actor = _check_name(actor, "actor")
    text = (details.get("text") or "").strip() or None
    row = _apply(store, ref, lambda r: _decide_transition(r, event, now=ts, text=text), actor=actor, now=ts,
                 expected_version=expected_version)
    _refresh_blast(store, row["id"], ts)
    return _finish(store, row, ts)


def close(store: Store, manifest: Manifest, ref: int | str, *, actor: str, expected_version: int | None = None,
          now: datetime | None = None, text: str | None = None) -> dict[str, Any]:
    """Close a verified incident whose actions are all done or deferred."""
    return step(store, manifest, ref, "close", actor=actor, expected_version=expected_version, now=now, text=text)


def contain(store: Store, manifest: Manifest, ref: int | str, *, mode: str, actor: str,
            params: Mapping[str, Any] | None = None, reason: str | None = None, feature: str | None = None,
            expected_version: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Contain in one action: set the kill switch of the incident's feature (or of ``feature``, one of
    its affected features) to ``mode`` and take the ``contain`` step. Allowed in every open state;
    after ``contained`` the state stays and the flag change is the record."""
    from hotwash.containment.flags import check_mode, resolve_params, set_mode

    ts = _now(now)
    actor = _check_name(actor, "actor")
    check_mode(mode)
    row = _row(store, ref)
    number = row["id"]
    if expected_version is not None and expected_version != row["version"]:
        raise _stale(number, expected_version, row["version"])
    _decide_transition(row, "contain", now=ts)  # refuse (closed) before the flag is touched
    target = feature or row["feature"]
    if target not in (row["features"] or [row["feature"]]):
        raise InvalidValue(f"{target!r} is not a feature of {incident_ref(number)} "
                           f"(its features: {', '.join(row['features'])})", field="feature")
    resolve_params(manifest, target, mode, params)  # refuse bad params before anything is written
    reason = (reason or "").strip() or None
    flag = set_mode(store, manifest, target, mode, actor=actor, params=params, reason=reason, incident_id=number,
                    now=ts)
    containment = {"mode": mode, "feature": target, "params": flag["params"], "reason": reason, "by": actor,
                   "at": _jsonable(ts), "flag_version": flag["version"]}
    text = f"{mode} on {target}" + (f" ({reason})" if reason else "")

    # The flag is set (and on the timeline); the step follows it from a fresh read, so a change
    # someone made to the incident in between does not undo the containment.
    new = _apply(store, number, lambda r: _decide_transition(r, "contain", now=ts, text=text,
                                                             data={"mode": mode, "feature": target},
                                                             values={"containment": containment}),
                 actor=actor, now=ts, expected_version=None)
    _refresh_blast(store, number, ts)
    return _finish(store, new, ts)


_HEX = re.compile(r"^[0-9a-f]{7,40}$")


def link_kind(link: str) -> str:
    """What a mitigation link points at: ``pr``, ``commit``, ``prompt_version`` or ``other``."""
    low = link.lower()
    if re.search(r"/(pull|pulls|merge_requests)/\d+", low):
        return "pr"
    if "/commit/" in low or _HEX.match(low):
        return "commit"
    if low.startswith(("prompt:", "prompt-version:", "prompt_version:")):
        return "prompt_version"
    return "other"


def mitigate(store: Store, manifest: Manifest, ref: int | str, *, description: str, link: str, actor: str,
             expected_version: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Record the mitigation (what was changed, with a link to the change: commit, PR, new prompt
    version) and take the ``mitigate`` step. A link naming a recorded change of the feature (its id,
    version or link) is tied to that change."""
    ts = _now(now)
    actor = _check_name(actor, "actor")
    description = _check_text(description, "description")
    link = _check_text(link, "link", limit=2000)
    kind = link_kind(link)

    def decide(row: dict[str, Any]) -> _Change:
        bare = link.split(":", 1)[1] if kind == "prompt_version" else link
        change = next((c for c in reversed(store.list_changes(feature=row["feature"]))
                       if bare in {c["id"], c["version"], c["link"]}), None)
        prompt = change is not None and kind == "other" and change["kind"] == "prompt"
        found_kind = "prompt_version" if prompt else kind
        mitigation = {"description": description, "link": link, "kind": found_kind,
                      "change_id": change["id"] if change else None, "by": actor, "at": _jsonable(ts)}
        entry = _Entry("mitigation", f"mitigation: {description} ({link})", dict(mitigation))
        return _decide_transition(row, "mitigate", now=ts, values={"mitigation": mitigation}, entries=[entry],
                                  data={"link": link})

    row = _apply(store, ref, decide, actor=actor, now=ts, expected_version=expected_version)
    _refresh_blast(store, row["id"], ts)
    return _finish(store, row, ts)


def add_note(store: Store, ref: int | str, *, text: str, actor: str, expected_version: int | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """Put a note on the timeline (allowed in every state, closed included)."""
    ts = _now(now)
    actor = _check_name(actor, "actor")
    text = _check_text(text, "text")
    row = _apply(store, ref, lambda r: _Change(entries=[_Entry("note", text)]), actor=actor, now=ts,
                 expected_version=expected_version)
    return _finish(store, row, ts)


def assign(store: Store, ref: int | str, *, actor: str, lead: str | None = None,
           participants: Iterable[tuple[str, str]] = (), remove: Iterable[str] = (),
           expected_version: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Set the lead (the person closest to the incident) and add, re-role or remove participants.
    The previous lead stays on as a responder."""
    ts = _now(now)
    actor = _check_name(actor, "actor")
    people = [(_check_name(p, "participant"), check_role(r)) for p, r in participants]
    leads = [p for p, r in people if r == "lead"]
    if lead is not None:
        leads.insert(0, _check_name(lead, "lead"))
    if len(set(leads)) > 1:
        raise InvalidValue(f"an incident has one lead, got {', '.join(dict.fromkeys(leads))}", field="lead")
    new_lead = leads[0] if leads else None
    people = [(p, r) for p, r in people if r != "lead"]
    gone = [_check_name(p, "participant") for p in remove]
    if new_lead is None and not people and not gone:
        raise InvalidValue("nothing to assign: give a lead, participants (name:role) or people to remove",
                           field="lead")
    if new_lead is not None and new_lead in gone:
        raise InvalidValue(f"{new_lead} cannot be made lead and removed at once", field="lead")

    def decide(row: dict[str, Any]) -> _Change:
        change = _Change()
        old = row["lead"]
        lead_now = old
        if new_lead is not None and new_lead != old:
            lead_now = new_lead
            change.entries.append(_Entry("participant", f"lead: {old or 'nobody'} → {new_lead}",
                                         {"person": new_lead, "role": "lead", "previous": old}))
        for person, role in people:
            change.entries.append(_Entry("participant", f"{person} is {role}", {"person": person, "role": role}))
        for person in gone:
            change.entries.append(_Entry("participant", f"{person} left the incident",
                                         {"person": person, "role": None}))
        # The lead taking another role, or leaving, leaves the incident without a lead until one is named.
        if lead_now is not None and (lead_now in gone or any(p == lead_now for p, _ in people)):
            lead_now = None
        if lead_now != old:
            change.values["lead"] = lead_now

        def write(conn: Connection, new: dict[str, Any]) -> None:
            if new_lead is not None and new_lead != old:
                if old and old not in gone and all(p != old for p, _ in people):
                    store.set_participant(conn, incident_id=new["id"], person=old, role="responder", now=ts)
                store.set_participant(conn, incident_id=new["id"], person=new_lead, role="lead", now=ts)
            for person, role in people:
                store.set_participant(conn, incident_id=new["id"], person=person, role=role, now=ts)
            for person in gone:
                store.remove_participant(conn, incident_id=new["id"], person=person)

        change.also = write
        return change

    row = _apply(store, ref, decide, actor=actor, now=ts, expected_version=expected_version)
    return _finish(store, row, ts)
