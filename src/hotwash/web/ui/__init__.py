"""The server-rendered web UI: Jinja2 pages, htmx for the live bits, no build step.

:func:`mount_ui` adds the page routes and ``/static`` (our CSS and the vendored htmx) to the app.
Pages call the same services as the CLI and the JSON API; none of them speaks SQL.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def mount_ui(app: FastAPI) -> None:
    from hotwash.web.ui import actions, admin, incidents, insights, login, ops, postmortems

    app.mount("/static", StaticFiles(directory=str(files("hotwash.web") / "static")), name="static")
    for module in (login, incidents, postmortems, actions, ops, insights, admin):
        app.include_router(module.router, include_in_schema=False)
