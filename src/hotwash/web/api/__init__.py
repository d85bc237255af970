"""The JSON API routers under ``/api/v1``, one module per part of the playbook."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from hotwash.web.api import actions, auth, diagnosis, evals, flags, incidents, insights, postmortems

    for module in (incidents, diagnosis, flags, postmortems, actions, evals, insights, auth):
        app.include_router(module.router, prefix="/api/v1")
