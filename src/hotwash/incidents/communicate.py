"""Status updates: compose, store on the timeline, send through the notifiers.

An update has five parts: what happened, impact, what we know, what we do not know yet, and when
the next update comes. Anything the responder leaves out is filled from the incident and a
template of its category. Two audiences:

- ``internal``: for the team and stakeholders; carries the feature, the severity, the blast
  radius, the containment and the open questions of the category's diagnosis.
- ``customer``: plain words, no internals. Templates never mention model names, prompt versions,
  evidence ids or monitors, and text a responder writes for customers is refused if it does (the
  message names the term).

The first update of an incident that is ``detected`` or ``contained`` takes the ``communicate``
step; later updates are only recorded (and sent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from hotwash.errors import InvalidValue
from hotwash.incidents import lifecycle
from hotwash.incidents.service import (
    _apply,
    _Change,
    _check_name,
    _decide_transition,
    _Entry,
    _jsonable,
    _now,
    _refresh_blast,
    _row,
    get_incident,
    incident_ref,
)
from hotwash.manifest import Manifest

if TYPE_CHECKING:
    from hotwash.notify import Dispatcher
    from hotwash.notify.alert import Alert
    from hotwash.store import Store

Audience = Literal["internal", "customer"]
AUDIENCES: tuple[str, ...] = ("internal", "customer")
FIELDS = ("what_happened", "impact", "what_we_know", "what_we_do_not_know", "next_update_at")
# How soon the next update is promised when the responder does not say: sooner for worse incidents.
NEXT_UPDATE = {"SEV1": timedelta(minutes=30), "SEV2": timedelta(hours=1), "SEV3": timedelta(hours=4),
               "SEV4": timedelta(hours=24)}
_MAX_FIELD = 4000

# Per category: the customer's words (no internals), and what the team typically does not know
# yet at first (the open questions of the category's diagnosis).
TEMPLATES: dict[str, dict[str, str]] = {
    "hallucination": {
        "headline": "Some answers from our AI assistant were inaccurate",
        "customer_what": "Some answers from our AI assistant contained information that was not accurate.",
        "customer_impact": "Answers given during this period may include incorrect details. Please double-check "
                           "anything important, or contact our support team.",
        "customer_unknown": "We are still confirming which answers were affected.",
        "internal_unknown": "which outputs were unsupported by their grounding; whether retrieval, the prompt or "
                            "the model changed; how many users acted on a wrong answer",
    },
    "prompt_injection": {
        "headline": "We stopped attempts to misuse our AI assistant",
        "customer_what": "We detected attempts to make our AI assistant act outside its intended behaviour.",
        "customer_impact": "We are reviewing whether any requests or data were affected. If your account was "
                           "affected, we will contact you directly.",
        "customer_unknown": "We are still reviewing which requests were involved.",
        "internal_unknown": "which channel carried the injected text; whether the AI followed it (tool calls, "
                            "leaked instructions); what data or capability it reached",
    },
    "drift": {
        "headline": "The quality of our AI assistant's answers declined",
        "customer_what": "The quality of answers from our AI assistant declined over recent days.",
        "customer_impact": "Some answers may have been less helpful or less accurate than usual.",
        "customer_unknown": "We are still working out how many conversations were affected.",
        "internal_unknown": "whether the model or prompt version changed; whether the inputs shifted; how stale "
                            "the eval set is against current traffic",
    },
    "runaway_cost": {
        "headline": "Our AI assistant is running with limited capacity",
        "customer_what": "Our AI assistant is handling fewer requests than usual while we resolve an internal "
                         "issue.",
        "customer_impact": "Some requests may be slower or briefly unavailable.",
        "customer_unknown": "We are still working out when full capacity will be back.",
        "internal_unknown": "which sessions or callers drive the spend; whether loops, retries or non-production "
                            "traffic are involved; how close the budget is to its limit",
    },
    "escalation_overload": {
        "headline": "More requests than usual are going to our support team",
        "customer_what": "More requests than usual are being handed from our AI assistant to our support team.",
        "customer_impact": "Replies may take longer than usual.",
        "customer_unknown": "We are still working out when response times will be back to normal.",
        "internal_unknown": "whether a prompt or model version changed the escalation rate; whether confidence is "
                            "still calibrated; whether the inputs changed",
    },
    "scope_creep": {
        "headline": "Our AI assistant did things it is not meant to do",
        "customer_what": "Our AI assistant performed some actions outside what it is designed to do.",
        "customer_impact": "We are reviewing the actions it took. If your account was affected, we will contact "
                           "you directly.",
        "customer_unknown": "We are still reviewing which requests were involved.",
        "internal_unknown": "which tools or outputs are off the manifest and when they first appeared; which "
                            "change allowed them; whether the eval suite covers them",
    },
}

# What customers are told about the containment in place, by mode.
_CUSTOMER_CONTAINMENT = {
    "human": "While we fix it, your requests are handled by our support team.",
    "disabled": "We have turned the assistant off for now; our support team is available meanwhile.",
    "rollback": "We have returned the assistant to an earlier, stable version.",
    "throttle": "We have temporarily limited how many requests the assistant handles.",
    "enabled": "Our team is investigating.",
}


def _fmt_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _internal_defaults(inc: Mapping[str, Any]) -> dict[str, str]:
    template = TEMPLATES[inc["category"]]
    signals = inc.get("signals") or []
    since = inc.get("started_at") or inc["detected_at"]
    what = inc["title"]
    if signals:
        what += f" ({len(signals)} signal(s) since {_fmt_time(since)})"
    blast = inc.get("blast") or {}
    impact = (f"{blast.get('events', 0):,} calls, {blast.get('sessions', 0):,} sessions and "
              f"{blast.get('users', 0):,} users of {', '.join(inc['features'])} since {_fmt_time(since)}; "
              f"spend {_money(blast.get('cost_usd') or 0.0)}")
    known = [f"{inc['severity']} {inc['category'].replace('_', ' ')}, detected {_fmt_time(inc['detected_at'])}"]
    containment = inc.get("containment")
    if containment:
        known.append(f"contained: {containment['feature']} in {containment['mode']} mode "
                     f"(by {containment['by']})")
    else:
        known.append("not contained yet")
    answered = [d for d in inc.get("diagnosis") or [] if d.get("answer")]
    if answered:
        known.append(f"{len(answered)} diagnostic question(s) answered")
    mitigation = inc.get("mitigation")
    if mitigation:
        known.append(f"mitigated: {mitigation['description']} ({mitigation['link']})")
    return {"what_happened": what, "impact": impact, "what_we_know": "; ".join(known),
            "what_we_do_not_know": template["internal_unknown"]}


def _customer_defaults(inc: Mapping[str, Any]) -> dict[str, str]:
    template = TEMPLATES[inc["category"]]
    containment = inc.get("containment")
    known = _CUSTOMER_CONTAINMENT.get(containment["mode"] if containment else "enabled",
                                      _CUSTOMER_CONTAINMENT["enabled"])
    if inc.get("mitigation"):
        known = "We have put a fix in place and are monitoring the results."
        unknown = "We are confirming that the fix holds."
    else:
        unknown = template["customer_unknown"]
    return {"what_happened": template["customer_what"], "impact": template["customer_impact"],
            "what_we_know": known, "what_we_do_not_know": unknown}


def internal_terms(store: Store, inc: Mapping[str, Any]) -> dict[str, str]:
    """Words that must not reach customers: ``{term: what it is}`` (model names, prompt versions,
    evidence and signal ids, monitor names) seen in the incident and its window."""
    terms: dict[str, str] = {}
    for sig in inc.get("signals") or []:
        terms[str(sig["monitor"])] = "a monitor name"
        for ev in sig.get("evidence") or []:
            terms[str(ev)] = "an evidence id"
    blast = inc.get("blast") or {}
    start = blast.get("window_start") or inc.get("started_at") or inc["detected_at"]
    end = (blast.get("window_end") or datetime.now(UTC)) + timedelta(seconds=1)
    for feature in inc["features"]:
        mix = store.version_mix(feature, start, end)
        terms.update({m: "a model name" for m in mix.get("model", {}) if m and m != "None"})
        terms.update({v: "a prompt version" for v in mix.get("prompt_version", {}) if v and v != "None"})
    for change in ("rollback",):
        params = (inc.get("containment") or {}).get("params") or {}
        if (inc.get("containment") or {}).get("mode") == change:
            terms.update({str(v): "a pinned version" for v in params.values()})
    return {t: why for t, why in terms.items() if len(t) >= 3}


def _leaks(text: str, terms: Mapping[str, str]) -> tuple[str, str] | None:
    low = text.lower()
    for term, why in terms.items():
        if re.search(r"(?<![\w.-])" + re.escape(term.lower()) + r"(?![\w-])", low):
            return term, why
    return None


def compose(store: Store, inc: Mapping[str, Any], *, audience: str, what_happened: str | None = None,
            impact: str | None = None, what_we_know: str | None = None, what_we_do_not_know: str | None = None,
            next_update_at: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The status update's fields (given ones kept, the rest from the category's template) and its
    rendered ``text``. Customer text carrying an internal term is an InvalidValue naming it."""
    if audience not in AUDIENCES:
        raise InvalidValue(f"unknown audience {audience!r}: use internal or customer", field="audience")
    ts = _now(now)
    given = {"what_happened": what_happened, "impact": impact, "what_we_know": what_we_know,
             "what_we_do_not_know": what_we_do_not_know}
    for key, value in given.items():
        if value is not None and len(value) > _MAX_FIELD:
            raise InvalidValue(f"{key} is {len(value)} characters; at most {_MAX_FIELD}", field=key)
    defaults = _customer_defaults(inc) if audience == "customer" else _internal_defaults(inc)
    fields = {k: (v.strip() if v and v.strip() else defaults[k]) for k, v in given.items()}
    if next_update_at is None:
        next_update_at = ts + NEXT_UPDATE.get(inc["severity"], timedelta(hours=4))
    elif next_update_at.tzinfo is None:
        raise InvalidValue("next_update_at needs a time zone (e.g. 2026-11-27T10:00:00Z)", field="next_update_at")
    elif next_update_at <= ts:
        raise InvalidValue(f"next_update_at {_fmt_time(next_update_at)} is not in the future", field="next_update_at")
    if audience == "customer":
        terms = internal_terms(store, inc)
        for key, value in fields.items():
            leak = _leaks(value, terms)
            if leak:
                raise InvalidValue(f"the customer update's {key.replace('_', ' ')} mentions {leak[0]!r} "
                                   f"({leak[1]}): customers get no internal details; reword it, or post it "
                                   "for the internal audience", field=key)
    template = TEMPLATES[inc["category"]]
    if audience == "customer":
        lines = [f"Service update: {template['headline']}",
                 f"What happened: {fields['what_happened']}",
                 f"Impact: {fields['impact']}",
                 f"What we know: {fields['what_we_know']}",
                 f"What we are still working out: {fields['what_we_do_not_know']}",
                 f"Next update: by {_fmt_time(next_update_at)}"]
    else:
        lines = [f"{inc['id']} status update — {inc['severity']} {inc['category'].replace('_', ' ')} on "
                 f"{', '.join(inc['features'])} ({inc['status']})",
                 f"What happened: {fields['what_happened']}",
                 f"Impact: {fields['impact']}",
                 f"What we know: {fields['what_we_know']}",
                 f"What we do not know yet: {fields['what_we_do_not_know']}",
                 f"Next update: {_fmt_time(next_update_at)}"]
    return {"audience": audience, **fields, "next_update_at": next_update_at, "text": "\n".join(lines)}


def incident_notice(inc: Mapping[str, Any], *, title: str, summary: str, base_url: str | None = None) -> Alert:
    """An incident's message to the notify channels (not about one signal, so it carries none)."""
    from hotwash.notify.alert import Alert  # the notify package pulls in the detectors: only when sending

    start = inc.get("started_at") or inc["detected_at"]
    return Alert(title=title, summary=summary, severity=inc["severity"], category=inc["category"],
                 feature=inc["feature"], monitor="incident", start=start, detected_at=inc["detected_at"],
                 evidence=(), signals=(),
                 link=f"{str(base_url).rstrip('/')}/incidents/{inc['id']}" if base_url else None,
                 dedup_key=f"hotwash:incident:{inc['id']}")


def post_status_update(store: Store, manifest: Manifest, ref: int | str, *, audience: str, actor: str,
                       what_happened: str | None = None, impact: str | None = None, what_we_know: str | None = None,
                       what_we_do_not_know: str | None = None, next_update_at: datetime | None = None,
                       dispatcher: Dispatcher | None = None, expected_version: int | None = None,
                       now: datetime | None = None) -> dict[str, Any]:
    """Compose a status update, store it on the timeline (kind ``status_update``, the fields in its
    data), take the ``communicate`` step if the incident is detected or contained, and send it
    through ``dispatcher`` if given. Returns the incident with the update under ``status_update``."""
    ts = _now(now)
    actor = _check_name(actor, "actor")
    current = get_incident(store, _row(store, ref)["id"], now=ts)
    update = compose(store, current, audience=audience, what_happened=what_happened, impact=impact,
                     what_we_know=what_we_know, what_we_do_not_know=what_we_do_not_know,
                     next_update_at=next_update_at, now=ts)
    data = _jsonable(update)

    def decide(row: dict[str, Any]) -> _Change:
        entry = _Entry("status_update", f"{audience} status update: {update['what_happened']}", data)
        if "communicate" in lifecycle.allowed(row["status"]):
            return _decide_transition(row, "communicate", now=ts, entries=[entry], data={"audience": audience})
        return _Change(entries=[entry])

    row = _apply(store, current["number"], decide, actor=actor, now=ts, expected_version=expected_version)
    _refresh_blast(store, row["id"], ts)
    offered_to: list[str] = []
    if dispatcher is not None:
        notice = incident_notice(current, title=f"{incident_ref(row['id'])} {audience} status update: "
                                 f"{current['title']}", summary=update["text"], base_url=manifest.notify.base_url)
        dispatcher.announce(notice)
        offered_to = list(dispatcher.channels)  # each takes it if the severity is within its min_severity
    out = get_incident(store, row["id"], now=ts)
    out["status_update"] = {**update, "offered_to": offered_to}
    return out
