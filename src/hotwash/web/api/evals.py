"""`/api/v1` routes: the verify step's proofs and the monitors born from incidents.

Viewers read proofs and monitors; responders compute proofs (``POST .../verify``, which also moves
an incident in ``postmortem`` to ``verified`` when both hold) and add or remove monitors. Over HTTP
a verify replays each case against its own ``target:`` (from the case file in the repository) or
the healthy outputs recorded before the incident: a request cannot name code to import or a URL for
the server to call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hotwash.web.auth import Principal, require

router = APIRouter(tags=["verify"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifyCreate(_Body):
    quiet_days: float = Field(default=7.0, gt=0, le=90,
                              description="Days before the incident on which its monitor must stay silent.")
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds one target call may take.")


class VerifyPublic(BaseModel):
    incident: str
    regression: dict[str, Any] = Field(description="Proof 1: ok, and per case fails_on_recorded, passes_on_target, "
                                                   "target and details.")
    monitor: dict[str, Any] = Field(description="Proof 2: ok, monitors, lead_time_s (positive: earlier than the "
                                                "real detection), false_alarms, fired_at.")
    status: str = Field(description="The incident's state after the run (verified if it was in postmortem and "
                                    "both proofs hold).")
    verified: bool


class ProofPublic(BaseModel):
    kind: str = Field(description="regression or monitor.")
    ok: bool
    data: dict[str, Any]
    created_at: datetime


class ProofsPublic(BaseModel):
    incident: str
    latest: dict[str, ProofPublic] = Field(description="The newest proof of each kind (the ones that count).")
    history: list[ProofPublic] = Field(description="Every proof computed, oldest first.")


class MonitorCreate(_Body):
    incident: str = Field(description="The incident to learn from, e.g. INC-3.")
    name: str | None = Field(default=None, description="Name of the new monitor (default: inc-N-metric-window).")
    quiet_days: float = Field(default=7.0, gt=0, le=90,
                              description="Days before the incident on which the rule must stay silent.")
    dry_run: bool = Field(default=False, description="Only propose: store nothing.")


class MonitorPublic(BaseModel):
    name: str
    source: str = Field(description="manifest (hotwash.yaml) or stored (born from an incident).")
    incident: str | None
    feature: str | None
    enabled: bool
    created_at: datetime | None
    rule: dict[str, Any] = Field(description="The rule, in the shape of hotwash.yaml's monitors.rules.")
    description: str


class MonitorProposal(BaseModel):
    proposal: dict[str, Any] = Field(description="The rule, its replay (fired_at, lead_time_s, false_alarms) "
                                                 "and the windows it was replayed over.")
    stored: MonitorPublic | None


def _proof(row: dict[str, Any]) -> ProofPublic:
    return ProofPublic(kind=row["kind"], ok=bool(row["ok"]), data=row["data"], created_at=row["created_at"])


@router.post("/incidents/{ref}/verify", response_model=VerifyPublic,
             summary="Compute and store both proofs of the verify step")
def verify(ref: str, body: VerifyCreate, request: Request, principal: Responder) -> dict[str, Any]:
    from hotwash.evals.verify import run_verify

    state = request.app.state
    return run_verify(state.store, state.manifest, ref, actor=principal.name, quiet_days=body.quiet_days,
                      timeout=body.timeout)


@router.get("/incidents/{ref}/proofs", response_model=ProofsPublic, summary="The proofs computed for an incident")
def proofs(ref: str, request: Request, _: Viewer) -> ProofsPublic:
    from hotwash.incidents.service import get_incident

    store = request.app.state.store
    incident = get_incident(store, ref)
    rows = store.list_proofs(incident["number"])
    latest = {kind: _proof(row) for kind, row in store.latest_proofs(incident["number"]).items()}
    return ProofsPublic(incident=incident["id"], latest=latest, history=[_proof(r) for r in rows])


@router.get("/monitors", response_model=list[MonitorPublic], summary="The manifest's rules and the stored monitors")
def monitors(request: Request, _: Viewer) -> list[dict[str, Any]]:
    from hotwash.evals.monitor_from_incident import list_monitors

    return list_monitors(request.app.state.store, request.app.state.manifest)


@router.post("/monitors", response_model=MonitorProposal, status_code=201,
             summary="Propose (and store) a monitor that would have caught an incident sooner")
def add_monitor(body: MonitorCreate, request: Request, response: Response, principal: Responder) -> MonitorProposal:
    from hotwash.evals.monitor_from_incident import propose, store_proposal
    from hotwash.incidents.service import get_incident

    state = request.app.state
    incident = get_incident(state.store, body.incident)
    proposal = propose(state.store, state.manifest, incident, quiet_days=body.quiet_days, name=body.name)
    stored = None
    if body.dry_run:
        response.status_code = 200  # nothing was created
    else:
        stored = store_proposal(state.store, state.manifest, proposal, incident_id=incident["number"],
                                actor=principal.name)
    return MonitorProposal(proposal=proposal.to_json(), stored=MonitorPublic(**stored) if stored else None)


@router.delete("/monitors/{name}", response_model=MonitorPublic, summary="Remove a stored monitor")
def remove_monitor(name: str, request: Request, principal: Responder) -> dict[str, Any]:
    from hotwash.evals.monitor_from_incident import remove_monitor as remove

    return remove(request.app.state.store, request.app.state.manifest, name, actor=principal.name)
