"""The postmortem workflow: draft from the incident, edit, review, publish, read; the library.

    draft ──submit──► in_review ──publish──► published ──► library, notice to the team, reads
      ▲  (complete: every section, checks pass)   (and every blameless-lint finding fixed or accepted)
      └── edits allowed in draft and in_review; a published postmortem is the record

One postmortem per incident, addressed by the incident's id (``INC-3``). The Markdown is canonical
(:mod:`hotwash.postmortems.markdown`); what the store keeps in columns wins over the front matter
for status, due date, category, feature and severity, and the Actions table is merged with the
``actions`` table (an action is tracked there; the table shows its current owner, due date and
status). :func:`canonical` is that merged document: what ``show``, ``export`` and the API return.
Editing the Actions table syncs it back: rows match actions by kind and text, a new row adds an
action, a row left out keeps its action (actions close as done or deferred, never by deletion).

Functions take the store first and keyword-only arguments after; they return plain dicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from hotwash.actions import service as actions_service
from hotwash.clock import utc_now
from hotwash.errors import Conflict, DeliveryError, IllegalTransition, InvalidValue, NotFound
from hotwash.manifest import Manifest
from hotwash.postmortems.lint import Finding, lint, unaccepted
from hotwash.postmortems.markdown import Action, Postmortem, parse, render
from hotwash.postmortems.template import (
    CATEGORIES,
    PLACEHOLDER_OWNERS,
    POSTMORTEM_STATUSES,
    SEVERITIES,
)
from hotwash.store import Store

if TYPE_CHECKING:
    from hotwash.notify.alert import Alert

__all__ = [
    "EXPORT_FORMATS",
    "TRANSITIONS",
    "accept_finding",
    "canonical",
    "coverage",
    "draft",
    "export",
    "get_postmortem",
    "import_markdown",
    "library",
    "lint_report",
    "list_postmortems",
    "publish",
    "record_read",
    "review",
    "submit",
    "update_markdown",
]

# The review workflow as data: (state, event) -> new state.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "in_review",
    ("in_review", "publish"): "published",
}
EDITABLE = ("draft", "in_review")
EXPORT_FORMATS = ("md", "html", "pdf")
# Notices of published postmortems are informational: paging channels set min_severity above this.
NOTICE_SEVERITY = "SEV4"
_MAX_NAME = 200


# -- small helpers -------------------------------------------------------------------------------
_now = utc_now


def _number(ref: int | str) -> int:
    from hotwash.incidents.service import parse_ref

    return parse_ref(ref)


def _ref(number: int) -> str:
    return f"INC-{number}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _row(store: Store, ref: int | str) -> dict[str, Any]:
    number = _number(ref)
    row = store.get_postmortem(incident_id=number)
    if row is None:
        raise NotFound(f"{_ref(number)} has no postmortem yet: generate one with `hotwash postmortem draft "
                       f"{_ref(number)}`")
    return row


def _transition(row: Mapping[str, Any], event: str) -> str:
    new = TRANSITIONS.get((row["status"], event))
    if new is None:
        allowed = [e for (s, e) in TRANSITIONS if s == row["status"]]
        hint = f"; allowed now: {', '.join(allowed)}" if allowed else "; it is final"
        raise IllegalTransition(f"the postmortem of {_ref(row['incident_id'])} is {row['status']}: cannot {event} "
                                f"it{hint}", state=row["status"], event=event, allowed=allowed)
    return new


def _is_placeholder(owner: str) -> bool:
    return not owner.strip() or owner.strip().casefold() in PLACEHOLDER_OWNERS


def _link(base_url: object | None, path: str) -> str | None:
    return str(base_url).rstrip("/") + path if base_url else None


def _check_person(value: str, what: str) -> str:
    text = " ".join((value or "").split())
    if not text or len(text) > _MAX_NAME:
        raise InvalidValue(f"{what} must be 1-{_MAX_NAME} characters, got {value!r}", field=what)
    return text


# -- canonical Markdown: the document merged with the store's columns and actions ---------------
def _key(kind: str, title: str) -> tuple[str, str]:
    return kind, " ".join(title.split()).casefold()


def _as_row(a: Mapping[str, Any]) -> Action:
    return Action(kind=a["kind"], action=a["title"], owner=a["owner"], due=a["due_at"].date(), status=a["status"],
                  link=a["link"])


def _merge_actions(written: Sequence[Action], tracked: Sequence[Mapping[str, Any]]) -> tuple[Action, ...]:
    """The Actions table as it stands: each written row that matches a tracked action (kind and text)
    shows that action's current values; rows not tracked (an owner still to be chosen) stay as
    written; tracked actions missing from the table are added at its end."""
    tracked = sorted(tracked, key=lambda a: a["id"])
    by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in tracked:
        by_key.setdefault(_key(a["kind"], a["title"]), []).append(a)
    used: set[int] = set()
    out: list[Action] = []
    for row in written:
        match = next((a for a in by_key.get(_key(row.kind, row.action), []) if a["id"] not in used), None)
        if match is None:
            out.append(row)
        else:
            used.add(match["id"])
            out.append(_as_row(match))
    out += [_as_row(a) for a in tracked if a["id"] not in used]
    return tuple(out)


def _with_columns(pm: Postmortem, row: Mapping[str, Any], tracked: Sequence[Mapping[str, Any]]) -> Postmortem:
    meta = dataclasses.replace(pm.meta, incident=_ref(row["incident_id"]), title=row["title"],
                               category=row["category"], feature=row["feature"], severity=row["severity"],
                               status=row["status"], author=row["author"], lead=row["lead"],
                               due=row["due_at"].date())
    return Postmortem(meta=meta, sections=pm.sections, timeline=pm.timeline,
                      actions=_merge_actions(pm.actions, tracked))


def canonical(store: Store, row: Mapping[str, Any]) -> str:
    """The postmortem's Markdown as it stands now (see the module docstring)."""
    tracked = store.list_actions(incident_id=row["incident_id"])
    return render(_with_columns(parse(row["markdown"]), row, tracked))


def _sync_plan(written: Sequence[Action], tracked: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What :meth:`Store.update_postmortem` needs to bring the tracked actions in line with a table.

    Rows pair with tracked actions by kind and text first, then (an edited text) with the remaining
    actions of the same kind in order. Rows whose owner is still a placeholder are not tracked yet.
    """
    rows = [r for r in written if not _is_placeholder(r.owner)]
    free = sorted(tracked, key=lambda a: a["id"])
    paired: dict[int, Mapping[str, Any]] = {}
    for i, r in enumerate(rows):
        match = next((a for a in free if _key(a["kind"], a["title"]) == _key(r.kind, r.action)), None)
        if match is not None:
            paired[i] = match
            free.remove(match)
    for i, r in enumerate(rows):
        if i not in paired:
            match = next((a for a in free if a["kind"] == r.kind), None)
            if match is not None:
                paired[i] = match
                free.remove(match)
    plan = []
    for i, r in enumerate(rows):
        item: dict[str, Any] = {"title": r.action, "kind": r.kind, "owner": r.owner,
                                "due_at": _midnight(r.due) if r.due else None, "status": r.status, "link": r.link}
        old = paired.get(i)
        if item["due_at"] is None:
            raise InvalidValue(f"Actions: action {r.action[:60]!r} has no due date; write YYYY-MM-DD",
                               field="markdown")
        if old is not None:
            item["id"] = old["id"]
            if r.status == "deferred" and old["status"] != "deferred":
                raise InvalidValue(f"Actions: action {r.action[:60]!r} is marked deferred; a deferral needs a reason: "
                                   f"run `hotwash action defer {old['id']} --reason ...`", field="markdown")
            if r.status == old["status"]:
                item.pop("status")
            elif r.status == "open":
                item["reason"] = None
        elif r.status == "deferred":
            item["reason"] = "deferred in the postmortem's Actions table"
        plan.append(item)
    return plan


def _parse_for(row: Mapping[str, Any] | None, text: str) -> Postmortem:
    pm = parse(text)
    if row is not None and pm.meta.incident != _ref(row["incident_id"]):
        raise InvalidValue(f"front matter: incident {pm.meta.incident} does not match this postmortem "
                           f"({_ref(row['incident_id'])})", field="markdown")
    return pm


# -- public shapes --------------------------------------------------------------------------------
def is_overdue(row: Mapping[str, Any], now: datetime) -> bool:
    """Not published by its due time."""
    return row["status"] != "published" and now > row["due_at"]


def summary(row: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """A postmortem in a listing. Author and lead are credited; ``overdue`` shows everywhere."""
    out = {
        "id": row["id"],
        "incident": _ref(row["incident_id"]),
        "title": row["title"],
        "status": row["status"],
        "author": row["author"],
        "lead": row["lead"],
        "category": row["category"],
        "feature": row["feature"],
        "severity": row["severity"],
        "due": row["due_at"].date().isoformat(),
        "due_at": row["due_at"],
        "overdue": is_overdue(row, now),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "published_at": row["published_at"],
        "version": row["version"],
    }
    if "rank" in row:
        out["rank"] = row["rank"]
    return out


def _full(store: Store, row: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    tracked = store.list_actions(incident_id=row["incident_id"])
    readers = store.readers([row["id"]])[row["id"]]
    return {
        **summary(row, now=now),
        "markdown": canonical(store, row),
        "accepted": list(row["accepted"] or []),
        "actions": actions_service.publics(store, tracked, now),
        "readers": readers,
    }


# -- drafting and editing -------------------------------------------------------------------------
def draft(store: Store, manifest: Manifest, incident_ref: int | str, *, actor: str, now: datetime | None = None,
          regenerate: bool = False) -> dict[str, Any]:
    """The incident's postmortem, generated from what hotwash knows about the incident (any state).

    An existing postmortem is returned as it is (``created`` False) unless ``regenerate``, which
    rewrites a postmortem still in draft. Drafting a ``mitigated`` incident also takes its
    ``postmortem`` step. The due date is ``postmortem_due_days`` after detection.
    """
    from hotwash.incidents import service as incidents
    from hotwash.postmortems.draft import draft_markdown

    ts = _now(now)
    actor = _check_person(actor, "actor")
    incident = incidents.get_incident(store, incident_ref, now=ts)
    number = incident["number"]
    existing = store.get_postmortem(incident_id=number)
    if existing is not None and not regenerate:
        return {**_full(store, existing, now=ts), "created": False}
    if existing is not None and existing["status"] != "draft":
        raise Conflict(f"the postmortem of {_ref(number)} is {existing['status']}: only a draft can be regenerated")
    days = manifest.incidents.postmortem_due_days
    spec = manifest.features.get(incident["feature"])
    text = draft_markdown(incident, now=ts, due_days=days, feature_owner=spec.owner if spec else None, author=actor)
    pm = parse(text)
    due_at = incident["detected_at"] + timedelta(days=days)
    tracked = store.list_actions(incident_id=number)
    plan = _sync_plan(pm.actions, tracked)
    if existing is None:
        values = {"incident_id": number, "status": "draft", "title": pm.meta.title or incident["title"],
                  "markdown": text, "author": pm.meta.author or actor, "lead": pm.meta.lead or incident.get("lead"),
                  "category": incident["category"], "feature": incident["feature"],
                  "severity": incident["severity"], "due_at": due_at, "created_at": ts, "updated_at": ts,
                  "accepted": []}
        row, _ = store.create_postmortem(values=values, actions_=plan)
    else:
        row, _ = store.update_postmortem(postmortem_id=existing["id"], expected_version=existing["version"],
                                         expected_status=["draft"], now=ts, actions_=plan,
                                         values={"markdown": text, "title": pm.meta.title or incident["title"]})
    store.add_timeline(incident_id=number, ts=ts, actor=actor, kind="postmortem",
                       text=f"postmortem draft {'re' if existing else ''}generated (due {due_at.date().isoformat()})",
                       data={"postmortem": row["id"], "event": "draft"})
    if incident["status"] == "mitigated":
        # If someone moved the incident on meanwhile, the draft stands either way.
        with contextlib.suppress(IllegalTransition):
            incidents.step(store, manifest, number, "postmortem", actor=actor, now=ts)
    return {**_full(store, row, now=ts), "created": True}


def update_markdown(store: Store, ref: int | str, *, markdown: str, expected_version: int | None, actor: str,
                    now: datetime | None = None) -> dict[str, Any]:
    """Replace the Markdown (draft or in review). ``expected_version`` is the version the text was
    based on: if someone saved since, StaleUpdate (re-read, merge, save again). The title, author and
    lead come from the front matter; the Actions table is synced to the tracked actions."""
    ts = _now(now)
    row = _row(store, ref)
    if row["status"] not in EDITABLE:
        raise Conflict(f"the postmortem of {_ref(row['incident_id'])} is published: it is the record and is no "
                       "longer edited (track follow-ups as actions)")
    _check_person(actor, "actor")  # edits are not put on the timeline (they are many); updated_at keeps the last
    pm = _parse_for(row, markdown)
    return _save(store, row, pm, expected_version=expected_version, now=ts)


def _save(store: Store, row: Mapping[str, Any], pm: Postmortem, *, expected_version: int | None,
          now: datetime) -> dict[str, Any]:
    tracked = store.list_actions(incident_id=row["incident_id"])
    plan = _sync_plan(pm.actions, tracked)
    values: dict[str, Any] = {"markdown": render(pm), "title": pm.meta.title, "author": pm.meta.author,
                              "lead": pm.meta.lead}
    new, _ = store.update_postmortem(postmortem_id=row["id"], expected_version=expected_version, now=now,
                                     expected_status=[row["status"]], values=values, actions_=plan)
    return _full(store, new, now=now)


def import_markdown(store: Store, manifest: Manifest, text: str, *, actor: str, now: datetime | None = None
                    ) -> dict[str, Any]:
    """Import a postmortem's Markdown (e.g. kept in git): the front matter names the incident, which
    must exist here. It replaces the Markdown of that incident's postmortem (draft or in review; a
    published one only takes the identical text), or creates the postmortem with the front matter's
    status. A malformed file raises MalformedMarkdown naming the line and section."""
    from hotwash.incidents import service as incidents

    ts = _now(now)
    actor = _check_person(actor, "actor")
    pm = parse(text)
    incident = incidents.get_incident(store, pm.meta.incident, now=ts)
    number = incident["number"]
    row = store.get_postmortem(incident_id=number)
    if row is not None:
        current = canonical(store, row)
        if render(_with_columns(pm, row, store.list_actions(incident_id=number))) == current:
            return {**_full(store, row, now=ts), "changed": False}
        if row["status"] not in EDITABLE:
            raise Conflict(f"the postmortem of {_ref(number)} is published and differs from the file: a published "
                           "postmortem is the record and is not replaced")
        out = _save(store, row, pm, expected_version=row["version"], now=ts)
        store.add_timeline(incident_id=number, ts=ts, actor=actor, kind="postmortem", text="postmortem imported",
                           data={"postmortem": row["id"], "event": "import"})
        return {**out, "changed": True}
    status = pm.meta.status
    values = {"incident_id": number, "status": status, "title": pm.meta.title, "markdown": render(pm),
              "author": pm.meta.author, "lead": pm.meta.lead, "category": incident["category"],
              "feature": incident["feature"], "severity": incident["severity"],
              "due_at": incident["detected_at"] + timedelta(days=manifest.incidents.postmortem_due_days),
              "created_at": ts, "updated_at": ts, "published_at": ts if status == "published" else None,
              "accepted": []}
    plan = _sync_plan(pm.actions, store.list_actions(incident_id=number))
    row, _ = store.create_postmortem(values=values, actions_=plan)
    store.add_timeline(incident_id=number, ts=ts, actor=actor, kind="postmortem",
                       text=f"postmortem imported ({status})", data={"postmortem": row["id"], "event": "import"})
    return {**_full(store, row, now=ts), "changed": True}


def get_postmortem(store: Store, ref: int | str, *, now: datetime | None = None) -> dict[str, Any]:
    """The postmortem with its canonical Markdown, tracked actions, readers and accepted findings."""
    ts = _now(now)
    return _full(store, _row(store, ref), now=ts)


def list_postmortems(store: Store, *, status: str | None = None, overdue: bool = False,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """Every postmortem, newest first; ``overdue`` keeps those not published by their due time."""
    ts = _now(now)
    if status is not None and status not in POSTMORTEM_STATUSES:
        raise InvalidValue(f"unknown status {status!r}: use one of {', '.join(POSTMORTEM_STATUSES)}", field="status")
    items = [summary(r, now=ts) for r in store.list_postmortems(status=status)]
    return [p for p in items if p["overdue"]] if overdue else items


# -- review --------------------------------------------------------------------------------------
def _people(store: Store, row: Mapping[str, Any]) -> list[str]:
    names = {p["person"] for p in store.incident_people(row["incident_id"])}
    names |= {n for n in (row["author"], row["lead"]) if n}
    return sorted(names)


def lint_report(text: str, *, people: Iterable[str] = (), accepted: Iterable[Any] = ()) -> dict[str, Any]:
    """Blameless lint and completeness checks of a text: ``{"findings", "missing", "problems",
    "warnings", "words", "ok"}``; each finding says whether a reviewer accepted it."""
    from hotwash.postmortems.checks import check

    findings = lint(text, people=list(people))
    open_keys = {f.key for f in unaccepted(findings, list(accepted))}
    result = check(text)
    out = {
        "findings": [{**_finding(f), "accepted": f.key not in open_keys} for f in findings],
        "missing": list(_get(result, "missing")),
        "problems": [_plain(p) for p in _get(result, "problems")],
        "warnings": [_plain(w) for w in _get(result, "warnings")],
        "words": int(_get(result, "words")),
    }
    out["ok"] = not (out["missing"] or out["problems"] or open_keys)
    return out


def _finding(f: Finding) -> dict[str, Any]:
    return {"line": f.line, "quote": f.quote, "rule": f.rule, "why": f.why, "suggestion": f.suggestion,
            "key": f.key}


def _get(result: Any, name: str) -> Any:
    return result[name] if isinstance(result, Mapping) else getattr(result, name)


def _plain(item: Any) -> Any:
    if isinstance(item, str | int | float | dict) or item is None:
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if hasattr(item, "to_dict"):
        return item.to_dict()
    return str(item)


def review(store: Store, ref: int | str) -> dict[str, Any]:
    """The lint findings (accepted or not) and completeness checks of the postmortem as it stands."""
    row = _row(store, ref)
    return {"incident": _ref(row["incident_id"]), "status": row["status"], "version": row["version"],
            **lint_report(canonical(store, row), people=_people(store, row), accepted=row["accepted"] or [])}


def accept_finding(store: Store, ref: int | str, key: str, *, actor: str, now: datetime | None = None
                   ) -> dict[str, Any]:
    """A reviewer accepts a lint finding (a false alarm, or wording the team stands by): it no longer
    holds up publishing. ``key`` is the finding's ``key`` from the lint report."""
    ts = _now(now)
    actor = _check_person(actor, "actor")
    row = _row(store, ref)
    findings = lint(canonical(store, row), people=_people(store, row))
    found = next((f for f in findings if f.key == key.strip()), None)
    if found is None:
        keys = ", ".join(f.key for f in findings) or "none"
        raise InvalidValue(f"no current finding with key {key!r} in the postmortem of {_ref(row['incident_id'])} "
                           f"(current keys: {keys})", field="key")
    accepted = list(row["accepted"] or [])
    if all(a.get("key") != found.key for a in accepted):
        accepted.append({"key": found.key, "rule": found.rule, "quote": found.quote, "by": actor,
                         "at": ts.isoformat().replace("+00:00", "Z")})
        store.set_postmortem_accepted(postmortem_id=row["id"], accepted=accepted)
        store.add_timeline(incident_id=row["incident_id"], ts=ts, actor=actor, kind="postmortem",
                           text=f"lint finding accepted ({found.rule}): {found.quote[:200]}",
                           data={"postmortem": row["id"], "event": "accept", "key": found.key})
    return review(store, ref)


def _gate(store: Store, row: Mapping[str, Any], event: str) -> None:
    report = lint_report(canonical(store, row), people=_people(store, row), accepted=row["accepted"] or [])
    reasons = []
    if report["missing"]:
        reasons.append(f"missing or empty sections: {', '.join(map(str, report['missing']))}")
    for p in report["problems"]:
        reasons.append(p if isinstance(p, str) else str(p.get("message") or p))
    if event == "publish":
        waiting = [f for f in report["findings"] if not f["accepted"]]
        for f in waiting:
            reasons.append(f"line {f['line']}: blameless lint ({f['rule']}): {f['quote'][:120]!r} — reword it "
                           f"(e.g. {f['suggestion'][:120]!r}) or accept it: `hotwash postmortem accept "
                           f"{_ref(row['incident_id'])} {f['key']}`")
    if reasons:
        raise Conflict(f"the postmortem of {_ref(row['incident_id'])} cannot {event} yet: " + "; ".join(reasons))


def submit(store: Store, ref: int | str, *, actor: str, expected_version: int | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """draft -> in_review, once every section is there and the completeness checks pass."""
    ts = _now(now)
    row = _row(store, ref)
    new_status = _transition(row, "submit")
    _gate(store, row, "submit")
    new, _ = store.update_postmortem(postmortem_id=row["id"], expected_version=expected_version or row["version"],
                                     expected_status=[row["status"]], values={"status": new_status}, now=ts)
    store.add_timeline(incident_id=row["incident_id"], ts=ts, actor=actor, kind="postmortem",
                       text="postmortem submitted for review", data={"postmortem": row["id"], "event": "submit"})
    return _full(store, new, now=ts)


def publish(store: Store, manifest: Manifest, ref: int | str, *, actor: str, notifier: Any = None,
            expected_version: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """in_review -> published: checks pass and every lint finding is fixed or accepted. The
    postmortem joins the library and a notice goes to the team through ``notifier`` (a Dispatcher,
    queued; or a Notifier, sent now). The result's ``notified`` says whether it went out."""
    ts = _now(now)
    row = _row(store, ref)
    new_status = _transition(row, "publish")
    _gate(store, row, "publish")
    new, _ = store.update_postmortem(postmortem_id=row["id"], expected_version=expected_version or row["version"],
                                     expected_status=[row["status"]], now=ts,
                                     values={"status": new_status, "published_at": ts})
    store.add_timeline(incident_id=row["incident_id"], ts=ts, actor=actor, kind="postmortem",
                       text="postmortem published", data={"postmortem": row["id"], "event": "publish"})
    out = _full(store, new, now=ts)
    notified, error = False, None
    if notifier is not None:
        alert = publication_notice(out, base_url=manifest.notify.base_url, now=ts)
        try:
            notifier.announce(alert) if hasattr(notifier, "announce") else notifier.send(alert)
            notified = True
        except DeliveryError as exc:
            error = exc.reason
    return {**out, "notified": notified, "notify_error": error}


def publication_notice(pm: Mapping[str, Any], *, now: datetime, base_url: object | None = None) -> Alert:
    """The team's notice that a postmortem is out: what happened, who wrote and led it, where to read it."""
    from hotwash.notify.alert import Alert  # imports detection; only needed to notify

    doc = parse(pm["markdown"])
    credit = ", ".join(f"{what} {who}" for what, who in (("written by", pm["author"]), ("led by", pm["lead"]))
                       if who)
    text = doc.prose("Summary").strip()
    return Alert(
        title=f"Postmortem published: {pm['incident']} {pm['title']}",
        summary=(text + ("\n" if text else "") + (credit[:1].upper() + credit[1:] if credit else "")).strip(),
        severity=NOTICE_SEVERITY,
        category=pm["category"],
        feature=pm["feature"],
        monitor="postmortem",
        start=pm["published_at"] or now,
        detected_at=now,
        evidence=(),
        signals=(),
        link=_link(base_url, f"/postmortems/{pm['incident']}"),
        dedup_key=f"hotwash:postmortem:{pm['incident']}",
    )


# -- export --------------------------------------------------------------------------------------
def export(store: Store, ref: int | str, *, fmt: str = "md") -> str | bytes:
    """The postmortem as canonical Markdown (re-importable), HTML, or PDF (bytes)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidValue(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}", field="format")
    text = canonical(store, _row(store, ref))
    if fmt == "md":
        return text
    from hotwash.postmortems import export as exporter

    return exporter.to_html(text) if fmt == "html" else exporter.to_pdf(text)


# -- the library, reads and coverage -------------------------------------------------------------
def _choice(value: str | None, allowed: Sequence[str], field: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidValue(f"unknown {field} {value!r}: use one of {', '.join(allowed)}", field=field)
    return value


def library(store: Store, manifest: Manifest, *, q: str | None = None, category: str | None = None,
            feature: str | None = None, severity: str | None = None, since: datetime | None = None,
            until: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Published postmortems, searched in full text (best match first) and filtered by category,
    feature, severity and publication date. Each names its author and lead; the counts are per
    team (the feature's owner in the manifest) and per feature — never per person."""
    ts = _now(now)
    if since is not None and until is not None and since >= until:
        raise InvalidValue("--since must be before --until", field="since")
    rows = store.list_postmortems(status="published", q=q, category=_choice(category, CATEGORIES, "category"),
                                  feature=feature or None, severity=_choice(severity, SEVERITIES, "severity"),
                                  since=since, until=until)
    readers = store.readers(r["id"] for r in rows)
    items = []
    for r in rows:
        item = summary(r, now=ts)
        item["summary"] = parse(r["markdown"]).prose("Summary")
        item["readers"] = len(readers[r["id"]])
        items.append(item)

    def team(feature_name: str) -> str:
        spec = manifest.features.get(feature_name)
        return (spec.owner if spec is not None and spec.owner else None) or "(no owner in hotwash.yaml)"

    return {
        "query": q or None,
        "postmortems": items,
        "counts": {
            "team": dict(sorted(Counter(team(i["feature"]) for i in items).items())),
            "feature": dict(sorted(Counter(i["feature"] for i in items).items())),
        },
    }


def record_read(store: Store, ref: int | str, *, person: str, now: datetime | None = None) -> dict[str, Any]:
    """Record that ``person`` read the postmortem (the first read counts)."""
    ts = _now(now)
    person = _check_person(person, "person")
    row = _row(store, ref)
    first = store.record_read(postmortem_id=row["id"], person=person, now=ts)
    return {"incident": _ref(row["incident_id"]), "person": person, "first_read": first,
            "readers": [r["person"] for r in store.readers([row["id"]])[row["id"]]]}


def coverage(store: Store, *, last: int = 5, people: Iterable[str] | None = None) -> dict[str, Any]:
    """Who has not read the last ``last`` published postmortems. ``people`` defaults to everyone
    hotwash knows: people with a login, incident participants and past readers."""
    if last < 1:
        raise InvalidValue("--last must be at least 1", field="last")
    recent = store.list_postmortems(status="published", limit=last)
    everyone = sorted({" ".join(p.split()) for p in people if p.strip()}) if people is not None \
        else store.known_people()
    readers = store.readers(r["id"] for r in recent)
    read_by = {r["id"]: {x["person"] for x in readers[r["id"]]} for r in recent}
    postmortems = [{"incident": _ref(r["incident_id"]), "title": r["title"], "published_at": r["published_at"],
                    "readers": sorted(read_by[r["id"]]),
                    "not_read": [p for p in everyone if p not in read_by[r["id"]]]} for r in recent]
    per_person = []
    for person in everyone:
        missing = [_ref(r["incident_id"]) for r in recent if person not in read_by[r["id"]]]
        per_person.append({"person": person, "read": len(recent) - len(missing), "of": len(recent),
                           "missing": missing})
    return {"last": last, "postmortems": postmortems, "people": per_person,
            "not_read": [p["person"] for p in per_person if p["missing"]]}
