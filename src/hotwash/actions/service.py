"""Action items of incidents: add, done, defer, list, overdue reminders.

Functions take the store first and keyword-only arguments after it, validate what a person gave
(an :class:`~hotwash.errors.InvalidValue` names the field), write one unit of work with its
timeline entry, and return the action's public dict (:func:`public`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hotwash.clock import utc_now
from hotwash.errors import Conflict, DeliveryError, InvalidValue, NotFound
from hotwash.postmortems.template import ACTION_KINDS, ACTION_STATUSES, PLACEHOLDER_OWNERS
from hotwash.store import Store

if TYPE_CHECKING:
    from hotwash.notify.alert import Alert

__all__ = [
    "ACTION_KINDS",
    "ACTION_STATUSES",
    "OverdueReminders",
    "add_action",
    "defer_action",
    "done_action",
    "get_action",
    "list_actions",
    "open_action_count",
    "parse_due",
    "public",
    "publics",
    "remind_overdue",
    "reopen_action",
]

log = logging.getLogger("hotwash.actions")

_MAX_TITLE = 500
_MAX_REASON = 2000
_MAX_NAME = 200
# Incidents in these states take no new actions.
_FINAL_STATES = ("closed",)
# Reminders are informational: channels meant for paging set ``min_severity`` above this.
REMINDER_SEVERITY = "SEV4"


# -- values ---------------------------------------------------------------------------------------
_now = utc_now


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: an action due before it is overdue."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def parse_due(value: str | date | datetime | None, *, now: datetime, allow_past: bool = False) -> datetime:
    """A due date (``YYYY-MM-DD``; an ISO time counts by its UTC day) as midnight UTC of that day.
    A day before today (UTC) is refused unless ``allow_past``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidValue("an action needs a due date (YYYY-MM-DD)", field="due")
    if isinstance(value, datetime):
        day = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    elif isinstance(value, date):
        day = value
    else:
        text = value.strip()
        try:
            day = date.fromisoformat(text) if len(text) == 10 else \
                datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
        except ValueError:
            raise InvalidValue(f"due date {text!r} is not a date: write YYYY-MM-DD, e.g. "
                               f"{(now + timedelta(days=7)).date().isoformat()}", field="due") from None
    today = now.astimezone(UTC).date()
    if day < today and not allow_past:
        raise InvalidValue(f"due date {day.isoformat()} is in the past (today is {today.isoformat()} UTC): "
                           "give today or a later day", field="due")
    return datetime.combine(day, time(), tzinfo=UTC)


def check_kind(kind: str | None) -> str:
    value = (kind or "").strip()
    if value not in ACTION_KINDS:
        raise InvalidValue(f"unknown action kind {value!r}: use one of {', '.join(ACTION_KINDS)}", field="kind")
    return value


def check_owner(owner: str | None) -> str:
    value = " ".join((owner or "").split())
    if not value:
        raise InvalidValue("an action needs an owner: name the person who will do it", field="owner")
    if value.casefold() in PLACEHOLDER_OWNERS:
        raise InvalidValue(f"owner {value!r} is a placeholder: name the person who will do it", field="owner")
    if len(value) > _MAX_NAME:
        raise InvalidValue(f"owner is {len(value)} characters; at most {_MAX_NAME}", field="owner")
    return value


def check_title(title: str | None) -> str:
    value = " ".join((title or "").split())
    if not value:
        raise InvalidValue("an action needs a title: say what will be done", field="title")
    if len(value) > _MAX_TITLE:
        raise InvalidValue(f"title is {len(value)} characters; at most {_MAX_TITLE}", field="title")
    return value


def check_link(link: str | None) -> str | None:
    """An optional link to the item in an external tracker: an http(s) URL."""
    value = (link or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise InvalidValue(f"link {value[:100]!r} is not an http(s) URL to the tracker item", field="link")
    return value


def check_reason(reason: str | None) -> str:
    value = (reason or "").strip()
    if not value:
        raise InvalidValue("deferring an action needs a reason: say why it will not be done now", field="reason")
    if len(value) > _MAX_REASON:
        raise InvalidValue(f"reason is {len(value)} characters; at most {_MAX_REASON}", field="reason")
    return value


def _parse_action_id(action_id: int | str) -> int:
    if isinstance(action_id, int) and not isinstance(action_id, bool):
        return action_id
    text = str(action_id).strip().lstrip("#")
    if not text.isdigit():
        raise NotFound(f"no action {action_id!r}: action ids are numbers (see `hotwash action list`)")
    return int(text)


def _incident_number(ref: int | str) -> int:
    from hotwash.incidents.service import parse_ref

    return parse_ref(ref)


# -- the public shape ------------------------------------------------------------------------------
def is_overdue(row: Mapping[str, Any], now: datetime) -> bool:
    return row["status"] == "open" and row["due_at"] < day_start(now)


def public(row: Mapping[str, Any], *, now: datetime, incident: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An action as the CLI and API show it. ``overdue``: open and its due day has passed."""
    overdue = is_overdue(row, now)
    out = {
        "id": row["id"],
        "incident": f"INC-{row['incident_id']}",
        "title": row["title"],
        "kind": row["kind"],
        "owner": row["owner"],
        "due": row["due_at"].date().isoformat(),
        "due_at": row["due_at"],
        "status": row["status"],
        "reason": row["reason"],
        "link": row["link"],
        "overdue": overdue,
        "days_overdue": (day_start(now) - row["due_at"]).days if overdue else 0,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "closed_at": row["closed_at"],
        "last_reminded_at": row["last_reminded_at"],
    }
    if incident is not None:
        out["incident_title"] = incident["title"]
        out["incident_status"] = incident["status"]
        out["feature"] = incident["feature"]
        out["category"] = incident["category"]
    return out


def publics(store: Store, rows: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    incidents = store.incident_refs(r["incident_id"] for r in rows)
    return [public(r, now=now, incident=incidents.get(r["incident_id"])) for r in rows]


# -- operations ------------------------------------------------------------------------------------
def add_action(store: Store, incident_ref: int | str, *, title: str, kind: str, owner: str,
               due: str | date | datetime, actor: str, link: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """Add an action item to an incident. Owner required, due today or later, a known kind."""
    ts = _now(now)
    number = _incident_number(incident_ref)
    values = {"title": check_title(title), "kind": check_kind(kind), "owner": check_owner(owner),
              "due_at": parse_due(due, now=ts), "link": check_link(link)}
    incident = store.incident_refs([number]).get(number)
    if incident is None:
        raise NotFound(f"no incident INC-{number}: see `hotwash incident list`")
    if incident["status"] in _FINAL_STATES:
        raise Conflict(f"INC-{number} is closed: it takes no new actions")
    row = store.add_action(values={**values, "incident_id": number, "status": "open", "created_at": ts,
                                   "updated_at": ts})
    store.add_timeline(incident_id=number, ts=ts, actor=actor, kind="action",
                       text=f"action #{row['id']} added: {values['title']} ({values['kind']}, owner "
                            f"{values['owner']}, due {values['due_at'].date().isoformat()})",
                       data={"action": row["id"], "event": "add"})
    return public(row, now=ts, incident=incident)


def get_action(store: Store, action_id: int | str, *, now: datetime | None = None) -> dict[str, Any]:
    ts = _now(now)
    row = store.get_action(_parse_action_id(action_id))
    if row is None:
        raise NotFound(f"no action {action_id}: see `hotwash action list`")
    return publics(store, [row], ts)[0]


def _close(store: Store, action_id: int | str, *, status: str, actor: str, reason: str | None,
           now: datetime | None) -> dict[str, Any]:
    ts = _now(now)
    number = _parse_action_id(action_id)
    current = store.get_action(number)
    if current is None:
        raise NotFound(f"no action {action_id}: see `hotwash action list`")
    if current["status"] != "open":
        raise Conflict(f"action #{number} is already {current['status']}"
                       + ("; reopen it first to change that" if current["status"] != status else ""))
    row = store.update_action(action_id=number, expected_status=["open"],
                              values={"status": status, "reason": reason, "closed_at": ts, "updated_at": ts})
    what = "done" if status == "done" else f"deferred: {reason}"
    store.add_timeline(incident_id=row["incident_id"], ts=ts, actor=actor, kind="action",
                       text=f"action #{number} {what} ({row['title']})",
                       data={"action": number, "event": status, "reason": reason})
    return publics(store, [row], ts)[0]


def done_action(store: Store, action_id: int | str, *, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Mark an open action done."""
    return _close(store, action_id, status="done", actor=actor, reason=None, now=now)


def defer_action(store: Store, action_id: int | str, *, reason: str, actor: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """Defer an open action; the reason is required and kept (an incident may close with it deferred)."""
    return _close(store, action_id, status="deferred", actor=actor, reason=check_reason(reason), now=now)


def reopen_action(store: Store, action_id: int | str, *, actor: str, due: str | date | datetime | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Open a done or deferred action again (optionally with a new due date)."""
    ts = _now(now)
    number = _parse_action_id(action_id)
    values: dict[str, Any] = {"status": "open", "reason": None, "closed_at": None, "updated_at": ts,
                              "last_reminded_at": None}
    if due is not None:
        values["due_at"] = parse_due(due, now=ts)
    row = store.update_action(action_id=number, expected_status=["done", "deferred"], values=values)
    store.add_timeline(incident_id=row["incident_id"], ts=ts, actor=actor, kind="action",
                       text=f"action #{number} reopened ({row['title']})", data={"action": number, "event": "reopen"})
    return publics(store, [row], ts)[0]


def list_actions(store: Store, *, overdue: bool = False, owner: str | None = None,
                 incident: int | str | None = None, status: str | Sequence[str] | None = None,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Actions by due date. ``overdue``: open ones whose due day has passed."""
    ts = _now(now)
    if isinstance(status, str) and status not in ACTION_STATUSES:
        raise InvalidValue(f"unknown status {status!r}: use one of {', '.join(ACTION_STATUSES)}", field="status")
    if overdue:
        if status not in (None, "open", ["open"], ("open",)):
            raise InvalidValue("only open actions are overdue", field="status")
        status = "open"
    rows = store.list_actions(incident_id=_incident_number(incident) if incident is not None else None,
                              owner=owner.strip() if owner else None, status=status,
                              due_before=day_start(ts) if overdue else None)
    return publics(store, rows, ts)


def open_action_count(store: Store, incident_ref: int | str) -> int:
    return store.open_action_count(_incident_number(incident_ref))


# -- reminders -------------------------------------------------------------------------------------
def _link(base_url: object | None, path: str) -> str | None:
    return str(base_url).rstrip("/") + path if base_url else None


def reminder_alert(owner: str, items: Sequence[Mapping[str, Any]], *, now: datetime,
                   base_url: object | None = None) -> Alert:
    """One notice telling ``owner`` which of their actions are overdue."""
    from hotwash.notify.alert import Alert  # imports detection; not needed to list or change actions

    lines = [f"#{a['id']} {a['incident']}: {a['title']} ({a['kind']}) — due {a['due']}, "
             f"{a['days_overdue']} day(s) overdue" for a in items]
    features = sorted({a.get("feature") or "" for a in items} - {""})
    return Alert(
        title=f"{len(items)} overdue action item(s) for {owner}",
        summary="\n".join(lines),
        severity=REMINDER_SEVERITY,
        category="overdue_actions",
        feature=features[0] if len(features) == 1 else ", ".join(features) or "-",
        monitor="action-reminder",
        start=min(a["due_at"] for a in items),
        detected_at=now,
        evidence=(),
        signals=(),
        link=_link(base_url, f"/actions?owner={owner}"),
        dedup_key=f"hotwash:actions:{owner}",
    )


def remind_overdue(store: Store, notifier: Any, *, now: datetime | None = None,
                   every: timedelta = timedelta(days=1), base_url: object | None = None) -> list[dict[str, Any]]:
    """Remind each owner of their overdue actions: one notice per owner, and an action at most once
    per ``every`` (``last_reminded_at``), so nobody is spammed however often this runs.

    ``notifier`` is a :class:`~hotwash.notify.Dispatcher` (queued, retried in the background), a
    single :class:`~hotwash.notify.Notifier` (sent now; a failed send is reported and tried again
    next run), or None (nothing sent or marked: a dry run). Returns one entry per owner:
    ``{"owner", "actions": [ids], "sent", "error"}``.
    """
    ts = _now(now)
    rows = store.actions_to_remind(overdue_before=day_start(ts), reminded_before=ts - every)
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for item in publics(store, rows, ts):
        by_owner.setdefault(item["owner"], []).append(item)
    out = []
    for owner, items in sorted(by_owner.items()):
        alert = reminder_alert(owner, items, now=ts, base_url=base_url)
        sent, error = False, None
        if notifier is not None:
            try:
                if hasattr(notifier, "announce"):
                    notifier.announce(alert)
                else:
                    notifier.send(alert)
                sent = True
            except DeliveryError as exc:
                error = exc.reason
        ids = [a["id"] for a in items]
        if sent:
            store.mark_reminded(ids, now=ts)
        out.append({"owner": owner, "actions": ids, "sent": sent, "error": error, "title": alert.title})
    return out


class OverdueReminders:
    """Runs :func:`remind_overdue` every ``interval`` seconds in a daemon thread (the server's
    schedule). ``last_reminded_at`` keeps each action to one reminder per ``every``, so a restart or
    several servers sharing a store do not repeat reminders within the period (beyond a race)."""

    def __init__(self, store: Store, notifier: Any, *, every: timedelta = timedelta(days=1),
                 interval: float = 3600.0, base_url: object | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.store = store
        self.notifier = notifier
        self.every = every
        self.interval = interval
        self.base_url = base_url
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotwash-action-reminders", daemon=True)

    def start(self) -> OverdueReminders:
        self._thread.start()
        return self

    def run_once(self, now: datetime | None = None) -> list[dict[str, Any]]:
        return remind_overdue(self.store, self.notifier, now=now, every=self.every, base_url=self.base_url)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a store hiccup must not end the schedule; the next run tries again
                log.exception("overdue action reminders failed")
            self.runs += 1
            self._stop.wait(self.interval)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
