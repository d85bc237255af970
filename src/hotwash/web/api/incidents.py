"""`/api/v1` routes: incidents and their playbook.

Viewers read; responders open incidents and take steps. Every change accepts ``expected_version``
(the version you read): if the incident changed since, the answer is 409 and nothing is written.
Errors: unknown incident 404, a step the state does not allow 409 (with ``allowed``), a bad value
(mode, category, role ...) 422 naming the ``field``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hotwash.incidents import communicate, service
from hotwash.web.auth import Principal, require

router = APIRouter(tags=["incidents"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]
StatusQuery = Annotated[str | None, Query(description="open, all or a state")]

ExpectedVersion = Field(default=None, description="The version you read; 409 if the incident changed since.")


# -- public shapes --------------------------------------------------------------------------
class Blast(BaseModel):
    events: int
    sessions: int
    users: int
    cost_usd: float
    window_start: datetime
    window_end: datetime


class IncidentSummary(BaseModel):
    id: str = Field(description="INC-<number>.")
    number: int
    title: str
    category: str
    severity: str
    status: str
    feature: str = Field(description="The primary affected feature.")
    features: list[str]
    lead: str | None
    opened_by: str
    opened_at: datetime
    started_at: datetime | None = Field(description="Data time of the first evidence.")
    detected_at: datetime
    contained_at: datetime | None
    communicated_at: datetime | None
    diagnosed_at: datetime | None
    mitigated_at: datetime | None
    postmortem_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    blast: Blast | None
    containment: dict[str, Any] | None
    mitigation: dict[str, Any] | None
    version: int = Field(description="Bumped by every change; send it back as expected_version.")
    allowed: list[str] = Field(description="The playbook steps allowed now.")


class Participant(BaseModel):
    person: str
    role: str


class TimelineEntry(BaseModel):
    id: int
    ts: datetime
    actor: str
    kind: str
    text: str
    data: dict[str, Any] | None


class Recurrence(BaseModel):
    id: str
    number: int
    title: str
    severity: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    postmortem: str | None = Field(description="The postmortem's status, or null if none was written.")
    open_actions: int


class IncidentPublic(IncidentSummary):
    participants: list[Participant]
    signals: list[dict[str, Any]]
    timeline: list[TimelineEntry]
    diagnosis: list[dict[str, Any]]
    recurrences: list[Recurrence]
    status_update: dict[str, Any] | None = Field(default=None, description="The update just posted.")


# -- requests -------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentCreate(_Body):
    title: str = Field(max_length=300)
    category: str = Field(description="One of the six categories.")
    severity: str = Field(description="SEV1 (worst) .. SEV4.")
    features: list[str] = Field(min_length=1, description="Affected features; the first is the primary one.")
    lead: str | None = None
    participants: list[Participant] = Field(default_factory=list)
    signal_ids: list[int] = Field(default_factory=list)


class ContainRequest(_Body):
    mode: str = Field(description="enabled, disabled, human, rollback or throttle.")
    params: dict[str, Any] | None = Field(default=None, description="throttle: rate_per_s, budget_usd_per_day; "
                                                                    "rollback: prompt_version, model.")
    reason: str | None = Field(default=None, max_length=2000)
    feature: str | None = Field(default=None, description="Which affected feature (default: the primary one).")
    expected_version: int | None = ExpectedVersion


class StatusUpdateCreate(_Body):
    audience: Literal["internal", "customer"] = "internal"
    what_happened: str | None = None
    impact: str | None = None
    what_we_know: str | None = None
    what_we_do_not_know: str | None = None
    next_update_at: datetime | None = None
    send: bool = Field(default=True, description="Send it through the configured notify channels.")
    expected_version: int | None = ExpectedVersion


class NoteCreate(_Body):
    text: str
    expected_version: int | None = ExpectedVersion


class MitigationCreate(_Body):
    description: str
    link: str = Field(description="The change: a PR or commit URL, a commit sha, or prompt:<version>.")
    expected_version: int | None = ExpectedVersion


class EventCreate(_Body):
    event: str = Field(description="contain, communicate, diagnose, mitigate, postmortem, verify or close.")
    expected_version: int | None = ExpectedVersion
    text: str | None = Field(default=None, description="A note for the timeline entry.")
    mode: str | None = Field(default=None, description="contain: the mode.")
    params: dict[str, Any] | None = None
    reason: str | None = None
    description: str | None = Field(default=None, description="mitigate: what was changed.")
    link: str | None = Field(default=None, description="mitigate: the change.")


class ParticipantsUpdate(_Body):
    lead: str | None = None
    participants: list[Participant] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    expected_version: int | None = ExpectedVersion


# -- routes ---------------------------------------------------------------------------------
@router.get("/incidents", response_model=list[IncidentSummary])
def list_incidents(request: Request, _: Viewer, status: StatusQuery = None, category: str | None = None,
                   feature: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
    return service.list_incidents(request.app.state.store, status=status, category=category, feature=feature,
                                  severity=severity)


@router.post("/incidents", response_model=IncidentPublic, status_code=201)
def open_incident(body: IncidentCreate, request: Request,
                  principal: Responder) -> dict[str, Any]:
    state = request.app.state
    return service.open_incident(state.store, state.manifest, title=body.title, category=body.category,
                                 severity=body.severity, features=body.features, actor=principal.name,
                                 lead=body.lead, participants=[(p.person, p.role) for p in body.participants],
                                 signal_ids=body.signal_ids)


@router.get("/incidents/{ref}", response_model=IncidentPublic)
def get_incident(ref: str, request: Request, _: Viewer) -> dict[str, Any]:
    return service.get_incident(request.app.state.store, ref)


@router.post("/incidents/{ref}/contain", response_model=IncidentPublic)
def contain(ref: str, body: ContainRequest, request: Request,
            principal: Responder) -> dict[str, Any]:
    state = request.app.state
    return service.contain(state.store, state.manifest, ref, mode=body.mode, actor=principal.name,
                           params=body.params, reason=body.reason, feature=body.feature,
                           expected_version=body.expected_version)


@router.post("/incidents/{ref}/status-updates", response_model=IncidentPublic, status_code=201)
def post_status_update(ref: str, body: StatusUpdateCreate, request: Request,
                       principal: Responder) -> dict[str, Any]:
    state = request.app.state
    return communicate.post_status_update(
        state.store, state.manifest, ref, audience=body.audience, actor=principal.name,
        what_happened=body.what_happened, impact=body.impact, what_we_know=body.what_we_know,
        what_we_do_not_know=body.what_we_do_not_know, next_update_at=body.next_update_at,
        dispatcher=state.dispatcher if body.send else None, expected_version=body.expected_version)


@router.post("/incidents/{ref}/notes", response_model=IncidentPublic, status_code=201)
def add_note(ref: str, body: NoteCreate, request: Request,
             principal: Responder) -> dict[str, Any]:
    return service.add_note(request.app.state.store, ref, text=body.text, actor=principal.name,
                            expected_version=body.expected_version)


@router.post("/incidents/{ref}/mitigation", response_model=IncidentPublic)
def mitigate(ref: str, body: MitigationCreate, request: Request,
             principal: Responder) -> dict[str, Any]:
    state = request.app.state
    return service.mitigate(state.store, state.manifest, ref, description=body.description, link=body.link,
                            actor=principal.name, expected_version=body.expected_version)


@router.post("/incidents/{ref}/events", response_model=IncidentPublic)
def take_step(ref: str, body: EventCreate, request: Request,
              principal: Responder) -> dict[str, Any]:
    """Take one playbook step by name: contain needs ``mode``, mitigate ``description`` and ``link``."""
    state = request.app.state
    details = body.model_dump(exclude={"event", "expected_version"}, exclude_none=True)
    return service.step(state.store, state.manifest, ref, body.event, actor=principal.name,
                        expected_version=body.expected_version, **details)


@router.post("/incidents/{ref}/participants", response_model=IncidentPublic)
def assign(ref: str, body: ParticipantsUpdate, request: Request,
           principal: Responder) -> dict[str, Any]:
    return service.assign(request.app.state.store, ref, actor=principal.name, lead=body.lead,
                          participants=[(p.person, p.role) for p in body.participants], remove=body.remove,
                          expected_version=body.expected_version)
