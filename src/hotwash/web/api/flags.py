"""`/api/v1` routes: the kill switches that applications read.

Reads need the viewer role (give applications a read-only token: ``hotwash token add app --role
viewer``); changes need responder. ``GET /flags/{feature}`` answers for any feature name, known or
not: a feature nobody has set is in its manifest default (``source: "default"``), and one the
manifest does not declare is ``enabled``, so an application never has to handle a 404 to run.

Reads carry ``ETag`` and ``Cache-Control: private, max-age=<HOTWASH_FLAG_MAX_AGE>``; a request
with a matching ``If-None-Match`` gets ``304 Not Modified`` and no body.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hotwash.containment.flags import get_flag, list_flags, set_mode
from hotwash.errors import InvalidValue
from hotwash.web.auth import Principal, require

router = APIRouter(tags=["flags"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Responder = Annotated[Principal, Depends(require("responder"))]
ModeName = Literal["enabled", "disabled", "human", "rollback", "throttle"]


class FlagPublic(BaseModel):
    feature: str
    mode: ModeName
    params: dict[str, Any]
    reason: str | None
    incident: str | None = Field(description="The incident the change was made for, e.g. INC-3.")
    updated_at: datetime | None
    updated_by: str | None
    version: int = Field(description="Bumped by every change; 0 for a feature never set.")
    source: Literal["set", "default"]


class FlagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A plain string, checked by the service, so a bad mode gets the same message as on the CLI.
    mode: str = Field(description="enabled, disabled, human, rollback or throttle.")
    params: dict[str, Any] | None = Field(
        default=None, description="throttle: rate_per_s, budget_usd_per_day; rollback: prompt_version, model.")
    reason: str | None = Field(default=None, max_length=2000)
    incident: str | int | None = Field(default=None, description="Link the change to an incident, e.g. INC-3.")
    expected_version: int | None = Field(
        default=None, description="The version you read; refused with 409 if the flag changed since.")


def _incident_number(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    text = value.strip()
    if text.upper().startswith("INC-"):
        text = text[4:]
    if not text.isdigit():
        raise InvalidValue(f"not an incident id: {value!r} (expected INC-<number>, e.g. INC-3)", field="incident")
    return int(text)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def _cached_json(request: Request, value: Any, tag: str, *, conditional: bool = True) -> Response:
    """``value`` as JSON with its validators; 304 when the client already holds this version."""
    body = orjson.dumps(value, option=orjson.OPT_UTC_Z)
    # The version and mode tell a reader at a glance what it holds; the digest covers everything
    # else in the body (params, a manifest default edited between restarts).
    etag = f'"{tag}-{hashlib.sha256(body).hexdigest()[:16]}"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={request.app.state.settings.flag_max_age}",
               "Vary": "Authorization, Cookie"}
    if conditional and _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/flags", response_model=list[FlagPublic], summary="Every feature's flag")
def flags_list(request: Request, principal: Viewer) -> Response:
    state = request.app.state
    flags = list_flags(state.store, state.manifest)
    return _cached_json(request, flags, f"n{len(flags)}")


@router.get("/flags/{feature:path}", response_model=FlagPublic, summary="One feature's flag",
            responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}})
def flag_get(feature: str, request: Request, principal: Viewer) -> Response:
    state = request.app.state
    flag = get_flag(state.store, state.manifest, feature)
    return _cached_json(request, flag, f"v{flag['version']}-{flag['mode']}")


@router.put("/flags/{feature:path}", response_model=FlagPublic, summary="Set a feature's mode",
            responses={409: {"description": "expected_version is stale"}, 422: {"description": "bad mode or params"}})
def flag_put(feature: str, body: FlagUpdate, request: Request,
             principal: Responder) -> Response:
    state = request.app.state
    flag = set_mode(state.store, state.manifest, feature, body.mode, actor=principal.name, params=body.params,
                    reason=body.reason, incident_id=_incident_number(body.incident),
                    expected_version=body.expected_version)
    return _cached_json(request, flag, f"v{flag['version']}-{flag['mode']}", conditional=False)
