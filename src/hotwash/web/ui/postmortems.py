"""Postmortem pages: the library (search, filters, read receipts, "not yet read by"), one postmortem
(rendered, escaped), and the editor with live blameless-lint findings and completeness checks beside it.

Postmortems are addressed by their incident's id, like everywhere else (``/postmortems/INC-3``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.errors import Conflict, InvalidValue
from hotwash.incidents import service as incidents
from hotwash.insights.metrics import CATEGORIES
from hotwash.postmortems import service as postmortems
from hotwash.postmortems.template import SECTION_GUIDANCE, SECTIONS, SEVERITIES
from hotwash.web.ui.core import (
    SECURITY_HEADERS,
    Responder,
    UIRoute,
    Viewer,
    field_errors,
    finish,
    read_form,
    redirect,
    render,
)

router = APIRouter(route_class=UIRoute)
COVERAGE_LAST = 5


def _ref(ref: str) -> str:
    return incidents.incident_ref(incidents.parse_ref(ref))


def _day(value: str, field: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidValue(f"{value!r} is not a date: write YYYY-MM-DD", field=field) from None


# -- the library -------------------------------------------------------------------------------
@router.get("/postmortems")
def library_page(request: Request, _: Viewer, q: str = "", category: str = "", feature: str = "",
                 severity: str = "", since: str = "", until: str = "") -> Response:
    state = request.app.state
    filters = {"q": q, "category": category, "feature": feature, "severity": severity, "since": since,
               "until": until}
    errors: dict[str, str] = {}
    found: dict[str, Any] = {"postmortems": [], "counts": {"team": {}, "feature": {}}}
    try:
        found = postmortems.library(state.store, state.manifest, q=q.strip() or None, category=category or None,
                                    feature=feature or None, severity=severity or None,
                                    since=_day(since, "since"), until=_day(until, "until"))
    except InvalidValue as exc:
        errors = field_errors(exc, "q")
    working = [p for p in postmortems.list_postmortems(state.store) if p["status"] != "published"]
    cover = postmortems.coverage(state.store, last=COVERAGE_LAST)
    not_read = {p["incident"]: p["not_read"] for p in cover["postmortems"]}
    features = sorted(set(state.manifest.features) | set(state.store.features()))
    return render(request, "library.html", {
        "found": found, "filters": filters, "errors": errors, "working": working, "coverage": cover,
        "not_read": not_read, "categories": CATEGORIES, "severities": SEVERITIES, "features": features,
    }, status=422 if errors else 200)


# -- one postmortem ----------------------------------------------------------------------------
def _not_read_by(store: Any, pm: dict[str, Any]) -> list[str]:
    readers = {r["person"] for r in pm["readers"]}
    return [p for p in store.known_people() if p not in readers]


def _view(request: Request, ref: str, *, banner: str | None = None, status: int = 200) -> Response:
    from hotwash.postmortems.export import to_html

    store = request.app.state.store
    pm = postmortems.get_postmortem(store, ref)
    report = postmortems.review(store, ref) if pm["status"] != "published" else None
    who = request.state.principal
    return render(request, "postmortem.html", {
        "pm": pm, "article": to_html(pm["markdown"], fragment=True), "report": report, "banner": banner,
        "not_read_by": _not_read_by(store, pm) if pm["status"] == "published" else [],
        "has_read": any(r["person"] == who.name for r in pm["readers"]),
    }, status=status)


@router.get("/postmortems/{ref}")
def postmortem_page(ref: str, request: Request, _: Viewer) -> Response:
    return _view(request, ref)


@router.post("/postmortems/{ref}/read")
async def postmortem_read(ref: str, request: Request, who: Viewer) -> Response:
    """Any reader records their read (viewers too: reading is what the library is for)."""
    postmortems.record_read(request.app.state.store, ref, person=who.name)
    return redirect(request, f"/postmortems/{_ref(ref)}#readers")


_MEDIA = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@router.get("/postmortems/{ref}/export.{fmt}")
def postmortem_export(ref: str, fmt: str, request: Request, _: Viewer) -> Response:
    body = postmortems.export(request.app.state.store, ref, fmt=fmt)
    name = f"{_ref(ref)}-postmortem.{fmt}"
    disposition = "inline" if fmt == "html" else "attachment"
    response = Response(body, media_type=_MEDIA[fmt],
                        headers={"Content-Disposition": f'{disposition}; filename="{name}"'})
    if fmt == "html":  # the export is a standalone page that runs no script at all
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return finish(request, response)


# -- drafting, editing, review -------------------------------------------------------------------
@router.post("/incidents/{ref}/postmortem")
async def postmortem_draft(ref: str, request: Request, who: Responder) -> Response:
    state = request.app.state
    pm = postmortems.draft(state.store, state.manifest, ref, actor=who.name)
    return redirect(request, f"/postmortems/{pm['incident']}/edit")


def _people(store: Any, pm: dict[str, Any]) -> list[str]:
    number = incidents.parse_ref(pm["incident"])
    names = {p["person"] for p in store.incident_people(number)} | {n for n in (pm["author"], pm["lead"]) if n}
    return sorted(names)


def _lint(store: Any, pm: dict[str, Any], text: str) -> dict[str, Any]:
    """Lint findings and completeness checks of ``text`` (unsaved editor contents included)."""
    try:
        return postmortems.lint_report(text, people=_people(store, pm), accepted=pm["accepted"])
    except InvalidValue as exc:  # the Markdown itself is malformed: say where, like the checks would
        return {"findings": [], "missing": [], "problems": [str(exc)], "warnings": [], "words": 0, "ok": False}


def _editor(request: Request, ref: str, *, text: str | None = None, version: int | None = None,
            errors: dict[str, str] | None = None, banner: str | None = None, saved: bool = False,
            status: int = 200) -> Response:
    store = request.app.state.store
    pm = postmortems.get_postmortem(store, ref)
    markdown = pm["markdown"] if text is None else text
    return render(request, "postmortem_edit.html", {
        "pm": pm, "markdown": markdown, "version": pm["version"] if version is None else version,
        "report": _lint(store, pm, markdown), "errors": errors or {}, "banner": banner, "saved": saved,
        "sections": SECTIONS, "guidance": SECTION_GUIDANCE,
    }, status=status)


@router.get("/postmortems/{ref}/edit")
def postmortem_edit(ref: str, request: Request, _: Responder, saved: int = 0) -> Response:
    return _editor(request, ref, saved=bool(saved))


@router.post("/postmortems/{ref}/edit")
async def postmortem_save(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    text = form.get("markdown", "").replace("\r\n", "\n")
    version = int(form["version"]) if form.get("version", "").isdigit() else None
    try:
        postmortems.update_markdown(request.app.state.store, ref, markdown=text, expected_version=version,
                                    actor=who.name)
    except InvalidValue as exc:
        return _editor(request, ref, text=text, version=version, errors=field_errors(exc, "markdown"), status=422)
    except Conflict as exc:  # someone saved since (StaleUpdate), or it was published meanwhile
        return _editor(request, ref, text=text, version=version, banner=str(exc), status=409)
    return redirect(request, f"/postmortems/{_ref(ref)}/edit?saved=1")


@router.post("/postmortems/{ref}/lint")
async def postmortem_lint(ref: str, request: Request, _: Responder) -> Response:
    """The side panel, for the text as it is in the editor now (htmx, as the author types)."""
    form = await read_form(request)
    store = request.app.state.store
    pm = postmortems.get_postmortem(store, ref)
    text = form.get("markdown", "").replace("\r\n", "\n")
    return render(request, "partials/lint_panel.html", {"pm": pm, "report": _lint(store, pm, text), "back": "edit"})


@router.post("/postmortems/{ref}/accept")
async def postmortem_accept(ref: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    postmortems.accept_finding(request.app.state.store, ref, form.get("key", ""), actor=who.name)
    return redirect(request, f"/postmortems/{_ref(ref)}#review")


@router.post("/postmortems/{ref}/submit")
async def postmortem_submit(ref: str, request: Request, who: Responder) -> Response:
    await read_form(request)
    try:
        postmortems.submit(request.app.state.store, ref, actor=who.name)
    except Conflict as exc:
        return _view(request, ref, banner=str(exc), status=409)
    return redirect(request, f"/postmortems/{_ref(ref)}")


@router.post("/postmortems/{ref}/publish")
async def postmortem_publish(ref: str, request: Request, who: Responder) -> Response:
    await read_form(request)
    state = request.app.state
    try:
        postmortems.publish(state.store, state.manifest, ref, actor=who.name, notifier=state.dispatcher)
    except Conflict as exc:
        return _view(request, ref, banner=str(exc), status=409)
    return redirect(request, f"/postmortems/{_ref(ref)}")
