"""`/api/v1` routes: action items, tracked to closure.

Viewers read; responders add, complete, defer and reopen, and trigger reminders. A bad value
(missing owner, due date in the past, unknown kind, a link that is not a URL, no reason to defer)
is 422 naming the ``field``; an unknown action 404; completing an action that is not open 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from hotwash.actions import service
from hotwash.web.auth import Principal, require

router = APIRouter(tags=["actions"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]


class ActionCreate(BaseModel):
    incident: str = Field(description="The incident, e.g. INC-3.")
    title: str = Field(description="What will be done.")
    kind: str = Field(description="regression_case, guardrail, monitoring, documentation or structural.")
    owner: str = Field(description="The person who will do it.")
    due: str = Field(description="Due date, YYYY-MM-DD, today or later (UTC).")
    link: str | None = Field(default=None, description="The item in an external tracker (http(s) URL).")


class ActionDefer(BaseModel):
    reason: str = Field(description="Why it will not be done now.")


class ActionReopen(BaseModel):
    due: str | None = Field(default=None, description="A new due date, YYYY-MM-DD.")


class ActionPublic(BaseModel):
    id: int
    incident: str
    title: str
    kind: str
    owner: str
    due: str = Field(description="The due day, YYYY-MM-DD (UTC).")
    due_at: datetime
    status: str = Field(description="open, done or deferred.")
    reason: str | None = Field(description="Why it was deferred.")
    link: str | None
    overdue: bool = Field(description="Open and its due day has passed.")
    days_overdue: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    last_reminded_at: datetime | None
    incident_title: str | None = None
    incident_status: str | None = None
    feature: str | None = None
    category: str | None = None


class Reminder(BaseModel):
    owner: str
    actions: list[int]
    sent: bool
    error: str | None
    title: str


@router.get("/actions", response_model=list[ActionPublic], summary="List action items by due date")
def list_actions(
    principal: Viewer,
    request: Request,
    overdue: Annotated[bool, Query(description="Only open actions past their due day.")] = False,
    owner: str | None = None,
    incident: Annotated[str | None, Query(description="e.g. INC-3")] = None,
    status: Annotated[str | None, Query(description="open, done or deferred")] = None,
) -> list[dict]:
    return service.list_actions(request.app.state.store, overdue=overdue, owner=owner, incident=incident,
                                status=status)


@router.post("/actions", response_model=ActionPublic, status_code=201, summary="Add an action item")
def add_action(body: ActionCreate, principal: Responder, request: Request) -> dict:
    return service.add_action(request.app.state.store, body.incident, title=body.title, kind=body.kind,
                              owner=body.owner, due=body.due, link=body.link, actor=principal.name)


@router.post("/actions/remind", response_model=list[Reminder],
             summary="Remind owners of overdue actions now (the server also does it on a schedule)")
def remind(principal: Responder, request: Request) -> list[dict]:
    state = request.app.state
    return service.remind_overdue(state.store, state.dispatcher, base_url=state.manifest.notify.base_url)


@router.get("/actions/{action_id}", response_model=ActionPublic)
def get_action(action_id: int, principal: Viewer, request: Request) -> dict:
    return service.get_action(request.app.state.store, action_id)


@router.post("/actions/{action_id}/done", response_model=ActionPublic, summary="Mark an action done")
def done(action_id: int, principal: Responder, request: Request) -> dict:
    return service.done_action(request.app.state.store, action_id, actor=principal.name)


@router.post("/actions/{action_id}/defer", response_model=ActionPublic, summary="Defer an action, with the reason")
def defer(action_id: int, body: ActionDefer, principal: Responder, request: Request) -> dict:
    return service.defer_action(request.app.state.store, action_id, reason=body.reason, actor=principal.name)


@router.post("/actions/{action_id}/reopen", response_model=ActionPublic, summary="Open an action again")
def reopen(action_id: int, body: ActionReopen, principal: Responder, request: Request) -> dict:
    return service.reopen_action(request.app.state.store, action_id, actor=principal.name, due=body.due)
