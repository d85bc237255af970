"""The insights page: the compounding, as server-side SVG charts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.insights import compute
from hotwash.insights.charts import charts_for
from hotwash.web.ui.core import UIRoute, Viewer, render

router = APIRouter(route_class=UIRoute)


@router.get("/insights")
def insights_page(request: Request, _: Viewer) -> Response:
    data = compute(request.app.state.store)
    return render(request, "insights.html", {"data": data, "charts": charts_for(data)})
