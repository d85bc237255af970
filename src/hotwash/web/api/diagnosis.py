"""`/api/v1` routes: diagnosis — the incident's diagnostic questions, their answers and evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from hotwash.incidents import diagnose
from hotwash.incidents.service import parse_ref
from hotwash.web.auth import Principal, require

router = APIRouter(tags=["diagnosis"])
_viewer = Depends(require("viewer"))
_responder = Depends(require("responder"))


class AnswerPublic(BaseModel):
    question: str = Field(description="The question's key within its category.")
    prompt: str
    answer: str | None = Field(description="None while nobody (and no telemetry) has answered it.")
    evidence: dict[str, Any] | None = Field(description="Numbers, event ids and change ids behind the answer.")
    source: str | None = Field(description="auto (computed from telemetry) or human.")
    updated_at: datetime | None
    updated_by: str | None


class DiagnosisPublic(BaseModel):
    incident: str
    diagnosis: list[AnswerPublic]


class AnswerUpdate(BaseModel):
    answer: str = Field(min_length=1, max_length=diagnose.MAX_ANSWER_CHARS)


def _out(number: int, answers: list[dict[str, Any]]) -> DiagnosisPublic:
    return DiagnosisPublic(incident=f"INC-{number}", diagnosis=[AnswerPublic(**a) for a in answers])


@router.get("/incidents/{ref}/diagnosis", response_model=DiagnosisPublic)
def get_diagnosis(ref: str, request: Request,
                  principal: Principal = _viewer) -> DiagnosisPublic:
    """The questions of the incident's category, in order, with their answers (None while unanswered)."""
    number = parse_ref(ref)
    return _out(number, diagnose.get_answers(request.app.state.store, number))


@router.post("/incidents/{ref}/diagnosis/refresh", response_model=DiagnosisPublic)
def refresh_diagnosis(ref: str, request: Request,
                      principal: Principal = _responder) -> DiagnosisPublic:
    """Recompute the answers from telemetry; answers a person wrote are kept."""
    number = parse_ref(ref)
    state = request.app.state
    return _out(number, diagnose.prefill(state.store, state.manifest, number))


@router.put("/incidents/{ref}/diagnosis/{question}", response_model=AnswerPublic)
def put_answer(ref: str, question: str, body: AnswerUpdate, request: Request,
               principal: Principal = _responder) -> AnswerPublic:
    """Answer (or correct) one question as the caller; lands on the incident's timeline."""
    number = parse_ref(ref)
    return AnswerPublic(**diagnose.answer(request.app.state.store, number, question, body.answer,
                                          actor=principal.name))
