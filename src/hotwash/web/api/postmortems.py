"""`/api/v1` routes: postmortems, their review and publication, the library, reads and coverage.

A postmortem is addressed by its incident (``/postmortems/INC-3``). Viewers read, search, lint a
text and record their own reads; responders draft, edit, accept findings, submit and publish.
Edits carry ``expected_version`` (409 if someone saved since); an illegal move (publishing a draft)
is 409 with ``allowed``; a publication that is not ready (missing sections, unaccepted lint
findings) is 409 naming what is left; malformed Markdown is 422 naming the line and section.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from hotwash.errors import Forbidden
from hotwash.postmortems import service
from hotwash.web.api.actions import ActionPublic
from hotwash.web.auth import Principal, require

router = APIRouter(tags=["postmortems"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]
ExpectedVersion = Field(default=None, description="The version you read; 409 if the postmortem changed since.")

_MEDIA = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


# -- request bodies -----------------------------------------------------------------------------
class DraftCreate(BaseModel):
    regenerate: bool = Field(default=False, description="Rewrite a postmortem still in draft.")


class MarkdownUpdate(BaseModel):
    markdown: str
    expected_version: int | None = ExpectedVersion


class MarkdownImport(BaseModel):
    markdown: str = Field(description="Canonical Markdown; the front matter names the incident.")


class LintRequest(BaseModel):
    markdown: str
    people: list[str] = Field(default_factory=list, description="Participants' names to watch for.")


class Accept(BaseModel):
    key: str = Field(description="The finding's key, from the review.")


class Move(BaseModel):
    expected_version: int | None = ExpectedVersion


class ReadCreate(BaseModel):
    person: str | None = Field(default=None, description="Who read it (default: you; others need responder).")


# -- public shapes ------------------------------------------------------------------------------
class PostmortemSummary(BaseModel):
    id: int
    incident: str
    title: str
    status: str = Field(description="draft, in_review or published.")
    author: str | None
    lead: str | None
    category: str
    feature: str
    severity: str
    due: str
    due_at: datetime
    overdue: bool = Field(description="Not published by its due time.")
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    version: int


class Reader(BaseModel):
    person: str
    read_at: datetime


class PostmortemPublic(PostmortemSummary):
    markdown: str = Field(description="The canonical Markdown (front matter, seven sections).")
    accepted: list[dict[str, Any]] = Field(description="Lint findings a reviewer accepted.")
    actions: list[ActionPublic]
    readers: list[Reader]
    created: bool | None = None
    changed: bool | None = None
    notified: bool | None = None
    notify_error: str | None = None


class Finding(BaseModel):
    line: int
    quote: str
    rule: str
    why: str
    suggestion: str
    key: str
    accepted: bool


class LintReport(BaseModel):
    findings: list[Finding]
    missing: list[Any]
    problems: list[Any]
    warnings: list[Any]
    words: int
    ok: bool


class Review(LintReport):
    incident: str
    status: str
    version: int


class LibraryItem(PostmortemSummary):
    rank: float | None = None
    summary: str
    readers: int


class Library(BaseModel):
    query: str | None
    postmortems: list[LibraryItem]
    counts: dict[str, dict[str, int]] = Field(description="Per team (feature owner) and per feature; never per "
                                                          "person.")


class ReadResult(BaseModel):
    incident: str
    person: str
    first_read: bool
    readers: list[str]


# -- routes -------------------------------------------------------------------------------------
@router.get("/postmortems", response_model=list[PostmortemSummary], summary="Every postmortem, newest first")
def list_postmortems(principal: Viewer, request: Request, status: str | None = None,
                     overdue: bool = False) -> list[dict]:
    return service.list_postmortems(request.app.state.store, status=status, overdue=overdue)


@router.get("/postmortems/library", response_model=Library, summary="Search and filter published postmortems")
def library(principal: Viewer, request: Request,
            q: Annotated[str | None, Query(description='Words, "a phrase", OR, -word.')] = None,
            category: str | None = None, feature: str | None = None, severity: str | None = None,
            since: datetime | None = None, until: datetime | None = None) -> dict:
    state = request.app.state
    return service.library(state.store, state.manifest, q=q, category=category, feature=feature,
                           severity=severity, since=_aware(since), until=_aware(until))


@router.get("/postmortems/coverage", summary="Who has not read the last N published postmortems")
def coverage(principal: Viewer, request: Request, last: Annotated[int, Query(ge=1, le=100)] = 5,
             person: Annotated[list[str] | None, Query(description="Who should have read them.")] = None) -> dict:
    return service.coverage(request.app.state.store, last=last, people=person or None)


@router.post("/postmortems/lint", response_model=LintReport, summary="Blameless lint and checks of a text")
def lint(body: LintRequest, principal: Viewer) -> dict:
    return service.lint_report(body.markdown, people=body.people)


@router.post("/postmortems/import", response_model=PostmortemPublic, summary="Import canonical Markdown")
def import_markdown(body: MarkdownImport, principal: Responder, request: Request) -> dict:
    state = request.app.state
    return service.import_markdown(state.store, state.manifest, body.markdown, actor=principal.name)


@router.post("/postmortems/{incident}/draft", response_model=PostmortemPublic,
             summary="Generate the draft from the incident (an existing one is returned)")
def draft(incident: str, principal: Responder, request: Request, body: DraftCreate | None = None) -> dict:
    state = request.app.state
    return service.draft(state.store, state.manifest, incident, actor=principal.name,
                         regenerate=bool(body and body.regenerate))


@router.get("/postmortems/{incident}", response_model=PostmortemPublic)
def get_postmortem(incident: str, principal: Viewer, request: Request) -> dict:
    return service.get_postmortem(request.app.state.store, incident)


@router.put("/postmortems/{incident}", response_model=PostmortemPublic, summary="Save edited Markdown")
def update(incident: str, body: MarkdownUpdate, principal: Responder, request: Request) -> dict:
    return service.update_markdown(request.app.state.store, incident, markdown=body.markdown,
                                   expected_version=body.expected_version, actor=principal.name)


@router.get("/postmortems/{incident}/review", response_model=Review,
            summary="Lint findings (with keys to accept) and completeness checks")
def review(incident: str, principal: Viewer, request: Request) -> dict:
    return service.review(request.app.state.store, incident)


@router.post("/postmortems/{incident}/accept", response_model=Review, summary="Accept a lint finding")
def accept(incident: str, body: Accept, principal: Responder, request: Request) -> dict:
    return service.accept_finding(request.app.state.store, incident, body.key, actor=principal.name)


@router.post("/postmortems/{incident}/submit", response_model=PostmortemPublic, summary="draft -> in_review")
def submit(incident: str, principal: Responder, request: Request, body: Move | None = None) -> dict:
    return service.submit(request.app.state.store, incident, actor=principal.name,
                          expected_version=body.expected_version if body else None)


@router.post("/postmortems/{incident}/publish", response_model=PostmortemPublic,
             summary="in_review -> published: the library, and a notice to the team")
def publish(incident: str, principal: Responder, request: Request, body: Move | None = None) -> dict:
    state = request.app.state
    return service.publish(state.store, state.manifest, incident, actor=principal.name,
                           notifier=getattr(state, "dispatcher", None),
                           expected_version=body.expected_version if body else None)


@router.get("/postmortems/{incident}/export", summary="Markdown (canonical), HTML or PDF",
            response_class=Response, responses={200: {"content": {m.split(";")[0]: {} for m in _MEDIA.values()}}})
def export(incident: str, principal: Viewer, request: Request,
           format: Annotated[str, Query(description="md, html or pdf")] = "md") -> Response:
    doc = service.export(request.app.state.store, incident, fmt=format)
    body = doc.encode() if isinstance(doc, str) else doc
    filename = re.sub(r"[^A-Za-z0-9-]", "", incident.upper()) + f"-postmortem.{format}"
    return Response(body, media_type=_MEDIA[format],
                    headers={"content-disposition": f'inline; filename="{filename}"'})


@router.post("/postmortems/{incident}/reads", response_model=ReadResult, summary="Record that someone read it")
def record_read(incident: str, principal: Viewer, request: Request, body: ReadCreate | None = None) -> dict:
    person = (body.person if body else None) or principal.name
    if person != principal.name and not principal.allows("responder"):
        raise Forbidden(f"{principal.name} may record only their own reads")
    return service.record_read(request.app.state.store, incident, person=person)


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts
