"""The CLI's command groups, one module each; :func:`register` adds them to the ``hotwash`` app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from hotwash.commands import action, auth, diagnosis, evals, flag, incident, insights, monitor, postmortem

    diagnosis.register(incident.app)
    app.add_typer(incident.app, name="incident")
    app.add_typer(flag.app, name="flag")
    app.add_typer(postmortem.app, name="postmortem")
    app.add_typer(action.app, name="action")
    app.add_typer(evals.app, name="eval")
    app.add_typer(monitor.app, name="monitor")
    app.add_typer(auth.user_app, name="user")
    app.add_typer(auth.token_app, name="token")
    app.command("verify")(evals.verify)
    app.command("insights")(insights.insights)
