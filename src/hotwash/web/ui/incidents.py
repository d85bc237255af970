"""Incident pages: the list with filters, and the detail page where the playbook is run.

The detail page has one form per kind of change (contain, status update, step, mitigate, note,
diagnosis answer). Each posts, and on success redirects back (POST-redirect-GET); on a bad value the
page is shown again with the message next to the field and what was typed kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.actions import service as actions
from hotwash.containment.flags import MODES, get_flag
from hotwash.errors import Conflict, InvalidValue
from hotwash.incidents import diagnose, lifecycle
from hotwash.incidents import service as incidents
from hotwash.incidents.communicate import AUDIENCES, post_status_update
from hotwash.web.ui.core import Responder, UIRoute, Viewer, field_errors, read_form, redirect, render
from hotwash.web.ui.related import incident_extras

router = APIRouter(route_class=UIRoute)

STEP_LABELS = {"communicate": "Post a status update", "diagnose": "Mark diagnosed", "mitigate": "Mark mitigated",
               "postmortem": "Move to postmortem", "verify": "Verify", "close": "Close"}
# Steps taken with a plain button; the others have their own form.
BUTTON_STEPS = ("diagnose", "postmortem", "verify", "close")
EVIDENCE_PER_SIGNAL = 10


def _filters(status: str, category: str, feature: str, severity: str) -> dict[str, str | None]:
    return {"status": status or "open", "category": category or None, "feature": feature or None,
            "severity": severity or None}


@router.get("/incidents")
def incident_list(request: Request, _: Viewer, status: str = "open", category: str = "", feature: str = "",
                  severity: str = "") -> Response:
    return _list_page(request, _filters(status, category, feature, severity))


def _list_page(request: Request, filters: dict[str, str | None], *, errors: dict[str, str] | None = None,
               form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    store = request.app.state.store
    filter_errors: dict[str, str] = {}
    try:
        rows = incidents.list_incidents(store, **filters)
    except InvalidValue as exc:
        filter_errors = field_errors(exc, "status")
        rows, status_code = [], 422
    features = sorted(set(request.app.state.manifest.features) | set(store.features()))
    return render(request, "incidents.html", {
        "incidents": rows, "filters": filters, "filter_errors": filter_errors,
        "statuses": ("open", "all", *lifecycle.STATES), "categories": incidents.CATEGORIES,
        "severities": incidents.SEVERITIES, "features": features, "errors": errors or {}, "form": form or {},
    }, status=status_code)


@router.post("/incidents")
async def incident_open(request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    features = [f.strip() for f in form.get("features", "").split(",") if f.strip()]
    try:
        inc = incidents.open_incident(state.store, state.manifest, title=form.get("title", ""),
                                      category=form.get("category", ""), severity=form.get("severity", ""),
                                      features=features, actor=who.name, lead=form.get("lead", "").strip() or None)
    except InvalidValue as exc:
        return _list_page(request, _filters("open", "", "", ""), errors=field_errors(exc, "title"), form=form,
                          status_code=422)
    return redirect(request, f"/incidents/{inc['id']}")


# -- the detail page -----------------------------------------------------------------------------
def _evidence(store: Any, inc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ids = [e for s in inc["signals"] for e in (s["evidence"] or [])[:EVIDENCE_PER_SIGNAL]]
    return store.get_events(ids) if ids else {}


def detail_page(request: Request, ref: str, *, errors: dict[str, dict[str, str]] | None = None,
                banner: str | None = None, values: dict[str, dict[str, str]] | None = None,
                status: int = 200) -> Response:
    state = request.app.state
    store = state.store
    inc = incidents.get_incident(store, ref)
    flags = {f: get_flag(store, state.manifest, f) for f in inc["features"]}
    allowed = inc["allowed"]
    return render(request, "incident.html", {
        "inc": inc, "flags": flags, "modes": [m for m in MODES if m != "enabled"], "all_modes": MODES,
        "states": lifecycle.STATES, "done_states": _done_states(inc), "allowed": allowed,
        "buttons": [(e, STEP_LABELS[e]) for e in BUTTON_STEPS if e in allowed],
        "audiences": AUDIENCES, "events": _evidence(store, inc), "errors": errors or {}, "banner": banner,
        "values": values or {}, "extras": incident_extras(request, inc),
    }, status=status)


def _done_states(inc: dict[str, Any]) -> set[str]:
    return {s for s in lifecycle.STATES if inc.get(f"{s}_at") is not None}


@router.get("/incidents/{ref}")
def incident_detail(ref: str, request: Request, _: Viewer) -> Response:
    return detail_page(request, ref)


def _version(form: dict[str, str]) -> int | None:
    text = form.get("version", "").strip()
    return int(text) if text.isdigit() else None


async def _act(request: Request, ref: str, form_name: str, action: Any, form: dict[str, str],
               default_field: str) -> Response:
    """Run ``action``; on success back to the incident, else the page with the error where it belongs."""
    try:
        action()
    except InvalidValue as exc:
        return detail_page(request, ref, errors={form_name: field_errors(exc, default_field)},
                           values={form_name: form}, status=422)
    except Conflict as exc:
        return detail_page(request, ref, banner=str(exc), values={form_name: form}, status=409)
    return redirect(request, f"/incidents/{incidents.incident_ref(incidents.parse_ref(ref))}#{form_name}")


@router.post("/incidents/{ref}/contain")
async def incident_contain(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    params: dict[str, Any] | None = None
    rate = form.get("rate_per_s", "").strip()
    if form.get("mode") == "throttle" and rate:
        try:
            params = {"rate_per_s": float(rate)}
        except ValueError:
            return detail_page(request, ref, errors={"contain": {"params.rate_per_s": f"{rate!r} is not a number"}},
                               values={"contain": form}, status=422)
    return await _act(request, ref, "contain", lambda: incidents.contain(
        state.store, state.manifest, ref, mode=form.get("mode", ""), actor=who.name, params=params,
        reason=form.get("reason"), feature=form.get("feature") or None), form, "mode")


@router.post("/incidents/{ref}/update")
async def incident_update(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    next_at: datetime | None = None
    raw_next = form.get("next_update_at", "").strip()
    if raw_next:
        try:
            next_at = datetime.fromisoformat(raw_next.replace("Z", "+00:00"))
        except ValueError:
            return detail_page(request, ref, errors={"update": {"next_update_at": "not a date and time"}},
                               values={"update": form}, status=422)
        if next_at.tzinfo is None:  # a datetime-local field: the form says its times are UTC
            next_at = next_at.replace(tzinfo=UTC)
    fields = {k: (form.get(k) or None) for k in ("what_happened", "impact", "what_we_know", "what_we_do_not_know")}
    return await _act(request, ref, "update", lambda: post_status_update(
        state.store, state.manifest, ref, audience=form.get("audience", "internal"), actor=who.name,
        next_update_at=next_at, dispatcher=state.dispatcher, expected_version=_version(form), **fields),
        form, "what_happened")


@router.post("/incidents/{ref}/step")
async def incident_step(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    event = form.get("event", "")
    if event not in BUTTON_STEPS:
        return detail_page(request, ref, banner=f"unknown step {event!r}", status=422)
    text = form.get("text", "").strip()
    return await _act(request, ref, "step", lambda: incidents.step(
        state.store, state.manifest, ref, event, actor=who.name, expected_version=_version(form),
        **({"text": text} if text else {})), form, "event")


@router.post("/incidents/{ref}/mitigate")
async def incident_mitigate(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    return await _act(request, ref, "mitigate", lambda: incidents.mitigate(
        state.store, state.manifest, ref, description=form.get("description", ""), link=form.get("link", ""),
        actor=who.name, expected_version=_version(form)), form, "description")


@router.post("/incidents/{ref}/note")
async def incident_note(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    return await _act(request, ref, "note", lambda: incidents.add_note(
        request.app.state.store, ref, text=form.get("text", ""), actor=who.name), form, "text")


@router.post("/incidents/{ref}/lead")
async def incident_lead(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    return await _act(request, ref, "lead", lambda: incidents.assign(
        request.app.state.store, ref, actor=who.name, lead=form.get("lead", "").strip() or None), form, "lead")


@router.post("/incidents/{ref}/diagnosis/{question}")
async def incident_answer(ref: str, question: str, request: Request, who: Responder) -> Response:
    """Answer one diagnostic question. With htmx only that question is re-rendered in place."""
    form = await read_form(request)
    store = request.app.state.store
    hx = bool(request.headers.get("hx-request"))
    try:
        saved = diagnose.answer(store, ref, question, form.get("answer", ""), actor=who.name)
    except InvalidValue as exc:
        if not hx:
            return detail_page(request, ref, errors={f"q-{question}": field_errors(exc, "answer")},
                               values={f"q-{question}": form}, status=422)
        current = next((a for a in diagnose.get_answers(store, ref) if a["question"] == question), None)
        if current is None:
            raise
        return render(request, "partials/diagnosis_item.html",
                      {"a": current, "inc": incidents.get_incident(store, ref), "error": str(exc),
                       "typed": form.get("answer", "")}, status=422)
    if hx:
        return render(request, "partials/diagnosis_item.html",
                      {"a": saved, "inc": incidents.get_incident(store, ref), "error": None, "saved": True})
    return redirect(request, f"/incidents/{incidents.incident_ref(incidents.parse_ref(ref))}#q-{question}")


@router.post("/incidents/{ref}/diagnosis")
async def incident_prefill(ref: str, request: Request, who: Responder) -> Response:
    """Re-compute the automatic answers from telemetry (answers people wrote are kept)."""
    await read_form(request)
    state = request.app.state
    diagnose.prefill(state.store, state.manifest, ref)
    return redirect(request, f"/incidents/{incidents.incident_ref(incidents.parse_ref(ref))}#diagnosis")


@router.post("/incidents/{ref}/actions")
async def incident_add_action(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    store = request.app.state.store
    return await _act(request, ref, "action", lambda: actions.add_action(
        store, ref, title=form.get("title", ""), kind=form.get("kind", ""), owner=form.get("owner", ""),
        due=form.get("due", ""), link=form.get("link") or None, actor=who.name), form, "title")
