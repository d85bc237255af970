"""The pre-filled draft: a postmortem written from what hotwash knows about the incident.

:func:`draft` builds a :class:`~hotwash.postmortems.markdown.Postmortem` from the incident's public dict
(``hotwash.incidents.service.get_incident``), and :func:`draft_markdown` renders it. Pure: no store, no
clock (``now`` is passed in). Filled in:

- **Summary**: what the feature did wrong, its severity and when it began; how many events, sessions and
  users were exposed (the blast radius); what detected it and how fast, what contained it and how fast.
- **Timeline**: the moment impact began (data time of the first evidence) and every timeline entry of
  the incident, in time order (UTC).
- **Root cause**: the category and the answers to its diagnostic questions, then a placeholder for the
  root cause stated as a property of the system.
- **Contributing factors**: earlier incidents of the same feature and category (a fix that did not
  hold), then a placeholder.
- **What worked**: detection (which monitor, time to detect = detected - started), containment (which
  mode, time to contain = contained - detected), communication and mitigation.
- **Actions**: one of each required kind (regression_case, guardrail, monitoring, documentation) with
  category-specific wording, owned by the lead (else the feature owner, else ``TBD``), due ``due_days``
  after the draft is written.
- **Lessons learned**: a placeholder.

Placeholders are lines starting ``TODO:``; :func:`hotwash.postmortems.checks.check` reports any left.
The wording is blameless (the draft passes :func:`hotwash.postmortems.lint.lint`). Text that came from
telemetry or from people (titles, entries, answers) is kept verbatim on one line, as text: the
Markdown structure cannot be broken by it, and the HTML and PDF exports escape it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hotwash.errors import InvalidValue
from hotwash.postmortems.markdown import Action, Meta, Postmortem, TimelineEntry, render
from hotwash.postmortems.template import PLACEHOLDER_PREFIX

__all__ = ["CATEGORY_PHRASES", "GUARDRAIL_ACTIONS", "draft", "draft_markdown", "format_duration"]

#: What a feature did, per category, as the predicate of "The <feature> feature ...".
CATEGORY_PHRASES = {
    "hallucination": "gave answers that its sources do not support",
    "prompt_injection": "followed instructions injected into its input",
    "drift": "drifted from its established quality",
    "runaway_cost": "spent far beyond its expected cost",
    "escalation_overload": "handed conversations to people faster than they could be answered",
    "scope_creep": "acted outside its declared scope",
}

#: The guardrail action pre-filled per category: a prompt, guardrail or capability boundary.
GUARDRAIL_ACTIONS = {
    "hallucination": "Require answers of {feature} to cite a retrieved source, and answer 'I don't know' when "
                     "none supports the claim",
    "prompt_injection": "Treat retrieved and tool content of {feature} as data, not instructions, and narrow the "
                        "tools it may call without confirmation",
    "drift": "Pin the model and prompt versions of {feature} and gate any change on an eval pass before promote",
    "runaway_cost": "Cap tokens per request and calls per session of {feature}, and stop loops that exceed them",
    "escalation_overload": "Rate-limit hand-offs of {feature} to people and queue the excess with an honest "
                           "wait time",
    "scope_creep": "Enforce the declared capabilities of {feature} as an allowlist of tools and outputs",
}

#: Owner written on pre-filled actions when neither a lead nor a feature owner is known.
PLACEHOLDER_OWNER = "TBD"


def draft_markdown(incident: Mapping[str, Any], *, now: datetime, due_days: int = 7,
                   feature_owner: str | None = None, author: str | None = None) -> str:
    """The draft postmortem of ``incident`` as canonical Markdown (see :func:`draft`)."""
    return render(draft(incident, now=now, due_days=due_days, feature_owner=feature_owner, author=author))


def draft(incident: Mapping[str, Any], *, now: datetime, due_days: int = 7, feature_owner: str | None = None,
          author: str | None = None) -> Postmortem:
    """The draft postmortem of ``incident`` (the dict of ``get_incident``).

    The postmortem is due ``due_days`` (5-7) after detection; the pre-filled actions are due ``due_days``
    after ``now``. Actions are owned by the incident's lead, else ``feature_owner``, else ``TBD``."""
    if not 5 <= due_days <= 7:
        raise InvalidValue(f"due_days must be 5-7 (a postmortem within a week), got {due_days}", field="due_days")
    when = _when(now)
    if when is None:
        raise InvalidValue(f"now must be a time, got {now!r}", field="now")
    now = when
    feature = _one(incident.get("feature")) or "the feature"
    category = _one(incident.get("category"))
    detected = _when(incident.get("detected_at")) or _when(incident.get("opened_at")) or now
    lead = _one(incident.get("lead")) or None
    meta = Meta(incident=_one(incident.get("id")) or f"INC-{incident.get('number')}",
                title=_one(incident.get("title")) or f"{category} on {feature}",
                category=category, feature=feature, severity=_one(incident.get("severity")),
                due=(detected + timedelta(days=due_days)).date(), status="draft", author=author, lead=lead)
    facts = _Facts.of(incident)
    sections = {
        "Summary": _summary(incident, facts, feature=feature, category=category),
        "Timeline": "All times UTC.",
        "Root cause": _root_cause(incident, category=category),
        "Contributing factors": _contributing(incident, feature=feature, category=category),
        "What worked": _what_worked(incident, facts),
        "Actions": "",
        "Lessons learned": f"{PLACEHOLDER_PREFIX} what does the team know now that it did not know before?",
    }
    owner = lead or _one(feature_owner) or PLACEHOLDER_OWNER
    return Postmortem(meta=meta, sections=sections, timeline=tuple(_timeline(incident)),
                      actions=tuple(_actions(incident, facts, feature=feature, category=category, owner=owner,
                                             due=(now + timedelta(days=due_days)).date())))


# -- reading the incident ------------------------------------------------------------------------

def _one(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _when(value: object) -> datetime | None:
    """A timestamp from the incident dict: an aware datetime, or an ISO string (the API's JSON)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def format_duration(delta: timedelta) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``1 h 5 min``, ``2 d 3 h``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class _Facts:
    """The milestones and what they say: time to detect, to contain, to communicate."""

    def __init__(self, incident: Mapping[str, Any]) -> None:
        signals = [s for s in incident.get("signals") or [] if isinstance(s, Mapping)]
        starts = [t for t in (_when(s.get("start")) for s in signals) if t is not None]
        self.started = _when(incident.get("started_at")) or (min(starts) if starts else None)
        self.detected = _when(incident.get("detected_at"))
        self.contained = _when(incident.get("contained_at"))
        self.communicated = _when(incident.get("communicated_at"))
        self.mitigated = _when(incident.get("mitigated_at"))
        self.monitors = list(dict.fromkeys(_one(s.get("monitor")) for s in signals if s.get("monitor")))
        containment = incident.get("containment")
        if isinstance(containment, Mapping):
            self.mode = _one(containment.get("mode")) or None
            self.params = containment.get("params") if isinstance(containment.get("params"), Mapping) else None
        else:
            self.mode, self.params = (_one(containment) or None), None

    @classmethod
    def of(cls, incident: Mapping[str, Any]) -> _Facts:
        return cls(incident)

    def between(self, a: datetime | None, b: datetime | None) -> str | None:
        return format_duration(b - a) if a is not None and b is not None else None

    @property
    def time_to_detect(self) -> str | None:
        return self.between(self.started, self.detected)

    @property
    def time_to_contain(self) -> str | None:
        return self.between(self.detected, self.contained)

    @property
    def detector(self) -> str:
        if not self.monitors:
            return "a report from a person"
        names = ", ".join(self.monitors[:3])
        return f"the {names} monitor{'s' if len(self.monitors) > 1 else ''}"


def _blast_sentence(incident: Mapping[str, Any]) -> str | None:
    blast = incident.get("blast")
    if not isinstance(blast, Mapping) or not blast.get("events"):
        return None
    parts = [f"{int(blast['events']):,} events"]
    if blast.get("sessions"):
        parts.append(f"{int(blast['sessions']):,} sessions")
    if blast.get("users"):
        parts.append(f"{int(blast['users']):,} users")
    text = "The affected window held " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    cost = blast.get("cost_usd")
    if cost:
        text += f", costing ${float(cost):,.2f}"
    return text + "."


def _summary(incident: Mapping[str, Any], facts: _Facts, *, feature: str, category: str) -> str:
    phrase = CATEGORY_PHRASES.get(category, f"had a {category.replace('_', ' ')} failure")
    first = f"The {feature} feature {phrase} ({_one(incident.get('severity')) or 'severity not set'})"
    if facts.started:
        first += f", starting {_stamp(facts.started)} UTC"
    sentences = [first + "."]
    blast = _blast_sentence(incident)
    if blast:
        sentences.append(blast)
    response = f"It was detected by {facts.detector}"
    if facts.time_to_detect:
        response += f" {facts.time_to_detect} after it began"
    if facts.mode:
        response += f", and contained ({facts.mode})"
        if facts.time_to_contain:
            response += f" {facts.time_to_contain} after detection"
    sentences.append(response + ".")
    return " ".join(sentences)


def _timeline(incident: Mapping[str, Any]) -> list[TimelineEntry]:
    facts = _Facts.of(incident)
    rows: list[tuple[datetime, int, str]] = []
    if facts.started:
        rows.append((facts.started, 0, "Impact began (first affected event)"))
    entries = [e for e in incident.get("timeline") or [] if isinstance(e, Mapping)]
    for i, e in enumerate(entries, start=1):
        ts = _when(e.get("ts"))
        if ts is None:
            continue
        text = _one(e.get("text")) or _one(e.get("kind"))
        actor = _one(e.get("actor"))
        rows.append((ts, i, f"{text} ({actor})" if actor else text))
    if not entries:  # an incident without its own entries still has its milestones
        for n, (label, ts) in enumerate((("Detected", facts.detected), ("Contained", facts.contained),
                                         ("Communicated", facts.communicated), ("Mitigated", facts.mitigated))):
            if ts is not None:
                rows.append((ts, n + 1, label))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [TimelineEntry(time=_stamp(ts), text=text) for ts, _, text in rows]


def _root_cause(incident: Mapping[str, Any], *, category: str) -> str:
    lines = [f"Category: {category.replace('_', ' ')}."]
    answers = [a for a in incident.get("diagnosis") or [] if isinstance(a, Mapping)]
    if answers:
        lines += ["", "Diagnostic answers:", ""]
        for a in answers:
            question = _one(a.get("prompt") or a.get("question"))
            answer = _one(a.get("answer")) or "not answered yet"
            source = " (from telemetry)" if a.get("source") == "auto" and a.get("answer") else ""
            lines.append(f"- {question} {answer}{source}")
    lines += ["", f"{PLACEHOLDER_PREFIX} state the root cause as a property of the system (the prompt, the "
                  "retrieval, the model, a guardrail, the release process), using the answers above."]
    return "\n".join(lines)


def _contributing(incident: Mapping[str, Any], *, feature: str, category: str) -> str:
    lines: list[str] = []
    past = [r for r in incident.get("recurrences") or [] if isinstance(r, Mapping)]
    if past:
        lines.append(f"This is not the first {category.replace('_', ' ')} incident on {feature}:")
        lines.append("")
        for r in past[:5]:
            status = _one(r.get("postmortem")) or "no postmortem"
            open_actions = r.get("open_actions")
            if isinstance(open_actions, Sequence) and not isinstance(open_actions, str):
                open_actions = len(open_actions)
            extra = f", {open_actions} action(s) still open" if open_actions else ""
            lines.append(f"- {_one(r.get('id'))}: {_one(r.get('title'))} (postmortem: {status}{extra})")
        lines.append("")
    lines.append(f"{PLACEHOLDER_PREFIX} what made this worse, slower to see, or harder to contain?")
    return "\n".join(lines)


def _what_worked(incident: Mapping[str, Any], facts: _Facts) -> str:
    lines: list[str] = []
    if facts.monitors:
        detect = f"- Detection: {facts.detector}"
        detect += f" raised a signal {facts.time_to_detect} after impact began." if facts.time_to_detect else \
            " raised a signal."
        lines.append(detect)
    if facts.mode:
        settings = [f"{k}={_one(v)}" for k, v in sorted((facts.params or {}).items()) if v is not None]
        contain = f"- Containment: {facts.mode}" + (f" ({', '.join(settings)})" if settings else "")
        contain += f", {facts.time_to_contain} after detection." if facts.time_to_contain else "."
        lines.append(contain)
    communicated = facts.between(facts.detected, facts.communicated)
    if communicated:
        lines.append(f"- Communication: the first status update went out {communicated} after detection.")
    mitigation = incident.get("mitigation")
    if isinstance(mitigation, Mapping) and mitigation.get("description"):
        link = _one(mitigation.get("link"))
        lines.append(f"- Mitigation: {_one(mitigation['description'])}" + (f" ({link})." if link else "."))
    if not lines:
        lines.append(f"{PLACEHOLDER_PREFIX} what went well in detection, containment and communication?")
    return "\n".join(lines)


def _actions(incident: Mapping[str, Any], facts: _Facts, *, feature: str, category: str, owner: str,
             due: date) -> list[Action]:
    label = category.replace("_", " ")
    guardrail = GUARDRAIL_ACTIONS.get(category, "Add a guardrail to {feature} that blocks this failure mode")
    if facts.monitors:
        monitoring = f"Keep {facts.detector} on {feature}"
        monitoring += (f" and check whether a tighter window would have caught it sooner than "
                       f"{facts.time_to_detect}") if facts.time_to_detect else ""
    else:
        monitoring = f"Add a monitor that detects {label} on {feature}; this incident was found without one"
    containment = f" ({facts.mode})" if facts.mode else ""
    return [
        Action(kind="regression_case", owner=owner, due=due,
               action=f"Add the failing examples of this incident as regression cases of {feature} that must "
                      "pass before release"),
        Action(kind="guardrail", owner=owner, due=due, action=guardrail.format(feature=feature)),
        Action(kind="monitoring", owner=owner, due=due, action=monitoring),
        Action(kind="documentation", owner=owner, due=due,
               action=f"Add this incident's containment{containment} and diagnosis to the {feature} runbook"),
    ]
