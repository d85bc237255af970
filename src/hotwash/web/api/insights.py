"""`/api/v1` routes: insights (the numbers behind the insights page and `hotwash insights --json`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from hotwash.insights import compute
from hotwash.web.auth import Principal, require

Viewer = Annotated[Principal, Depends(require("viewer"))]

router = APIRouter(tags=["insights"])


@router.get("/insights")
def insights(request: Request, _: Viewer) -> dict[str, Any]:
    """Incidents per category weekly, time to detect / contain / resolve (overall and monthly), recurrences,
    regression-case and monitor growth, postmortem timeliness, overdue actions and read coverage."""
    return compute(request.app.state.store)
