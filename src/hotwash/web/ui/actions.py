"""The actions board: every follow-up of every incident, overdue first, tracked like bugs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.actions import service as actions
from hotwash.errors import Conflict, InvalidValue
from hotwash.postmortems.template import ACTION_KINDS, ACTION_STATUSES
from hotwash.web.ui.core import Responder, UIRoute, Viewer, field_errors, read_form, redirect, render

router = APIRouter(route_class=UIRoute)


def _order(a: dict) -> tuple:
    # Overdue first (longest overdue on top), then open by due date, then the closed ones.
    rank = 0 if a["overdue"] else 1 if a["status"] == "open" else 2
    return (rank, -a["days_overdue"], a["due_at"], a["id"])


def _board(request: Request, *, owner: str = "", status: str = "", kind: str = "",
           errors: dict[int, dict[str, str]] | None = None, banner: str | None = None, code: int = 200) -> Response:
    store = request.app.state.store
    filter_error = None
    try:
        rows = actions.list_actions(store, owner=owner or None, status=status or None)
    except InvalidValue as exc:
        rows, filter_error, code = [], str(exc), 422
    if kind:
        rows = [a for a in rows if a["kind"] == kind]
    rows.sort(key=_order)
    owners = sorted({a["owner"] for a in actions.list_actions(store)})
    return render(request, "actions.html", {
        "actions": rows, "owner": owner, "status": status, "kind": kind, "owners": owners,
        "statuses": ACTION_STATUSES, "kinds": ACTION_KINDS, "errors": errors or {}, "banner": banner,
        "filter_error": filter_error, "overdue": sum(1 for a in rows if a["overdue"]),
    }, status=code)


@router.get("/actions")
def actions_page(request: Request, _: Viewer, owner: str = "", status: str = "", kind: str = "") -> Response:
    return _board(request, owner=owner, status=status, kind=kind)


async def _change(request: Request, action_id: int, do) -> Response:
    try:
        do()
    except InvalidValue as exc:
        return _board(request, errors={action_id: field_errors(exc, "reason")}, code=422)
    except Conflict as exc:
        return _board(request, banner=str(exc), code=409)
    return redirect(request, f"/actions#action-{action_id}")


@router.post("/actions/{action_id}/done")
async def action_done(action_id: int, request: Request, who: Responder) -> Response:
    return await _change(request, action_id,
                         lambda: actions.done_action(request.app.state.store, action_id, actor=who.name))


@router.post("/actions/{action_id}/defer")
async def action_defer(action_id: int, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    return await _change(request, action_id, lambda: actions.defer_action(
        request.app.state.store, action_id, reason=form.get("reason", ""), actor=who.name))


@router.post("/actions/{action_id}/reopen")
async def action_reopen(action_id: int, request: Request, who: Responder) -> Response:
    return await _change(request, action_id,
                         lambda: actions.reopen_action(request.app.state.store, action_id, actor=who.name))
