"""Pages of the running system: feature flags (kill switches), signals with their evidence, monitors."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.containment import flags as flag_service
from hotwash.detect.monitors import monitors_for
from hotwash.errors import Conflict, InvalidValue, NotFound
from hotwash.insights.metrics import CATEGORIES
from hotwash.manifest import Feature
from hotwash.web.ui.core import Responder, UIRoute, Viewer, field_errors, read_form, redirect, render

router = APIRouter(route_class=UIRoute)


# -- flags -------------------------------------------------------------------------------------
def _flags_page(request: Request, *, errors: dict[str, dict[str, str]] | None = None, message: str | None = None,
                status: int = 200) -> Response:
    state = request.app.state
    flags = flag_service.list_flags(state.store, state.manifest)
    return render(request, "flags.html", {"flags": flags, "modes": flag_service.MODES, "errors": errors or {},
                                          "message": message}, status=status)


@router.get("/flags")
def flags_page(request: Request, _: Viewer) -> Response:
    return _flags_page(request)


def _number(text: str, field: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue(f"{text!r} is not a number", field=field) from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidValue("must be a positive number", field=field)
    return value


@router.post("/flags/{feature}")
async def flag_set(feature: str, request: Request, who: Responder) -> Response:
    form = await read_form(request)
    state = request.app.state
    mode = form.get("mode", "")
    try:
        params: dict[str, Any] = {}
        if mode == "throttle":
            rate = _number(form.get("rate_per_s", ""), "params.rate_per_s")
            budget = _number(form.get("budget_usd_per_day", ""), "params.budget_usd_per_day")
            params = {k: v for k, v in (("rate_per_s", rate), ("budget_usd_per_day", budget)) if v is not None}
        version = form.get("version", "").strip()
        flag_service.set_mode(state.store, state.manifest, feature, mode, actor=who.name, params=params or None,
                              reason=form.get("reason", "").strip() or None,
                              expected_version=int(version) if version.isdigit() else None)
    except InvalidValue as exc:
        return _flags_page(request, errors={feature: field_errors(exc, "mode")}, status=422)
    except Conflict as exc:
        return _flags_page(request, message=str(exc), status=409)
    return redirect(request, f"/flags#flag-{feature}")


# -- signals -----------------------------------------------------------------------------------
@router.get("/signals")
def signals_page(request: Request, _: Viewer, feature: str = "", category: str = "") -> Response:
    store = request.app.state.store
    rows = store.recent_signals(feature=feature or None, category=category or None, limit=300)
    owners = store.attached_incidents(r["id"] for r in rows)
    features = sorted(set(store.features()) | set(request.app.state.manifest.features))
    return render(request, "signals.html", {"signals": rows, "owners": owners, "features": features,
                                            "categories": CATEGORIES, "feature": feature, "category": category})


@router.get("/signals/{signal_id}")
def signal_page(signal_id: int, request: Request, _: Viewer) -> Response:
    store = request.app.state.store
    signal = store.signal_rows([signal_id]).get(signal_id)
    if signal is None:
        raise NotFound(f"no signal {signal_id}: see the signals page")
    events = store.get_events(signal["evidence"] or [])
    ordered = [events[i] for i in signal["evidence"] or [] if i in events]
    incident = store.attached_incidents([signal_id]).get(signal_id)
    return render(request, "signal.html", {"signal": signal, "events": ordered, "incident": incident,
                                           "missing": [i for i in signal["evidence"] or [] if i not in events]})


# -- monitors ----------------------------------------------------------------------------------
def _builtin(name: str, spec: Feature, cfg: Any) -> list[dict[str, Any]]:
    return [{"feature": name, "name": m.name, "category": m.category, "severity": m.severity}
            for m in monitors_for(cfg, spec)]


@router.get("/monitors")
def monitors_page(request: Request, _: Viewer) -> Response:
    state = request.app.state
    manifest = state.manifest
    builtin = [row for name, spec in sorted(manifest.features.items())
               for row in _builtin(name, spec, manifest.monitors)]
    stored = state.store.list_stored_monitors()
    fired = state.store.signal_counts_by_monitor()
    return render(request, "monitors.html", {"builtin": builtin, "stored": stored, "rules": manifest.monitors.rules,
                                             "fired": fired})
