"""What an incident page shows of the later playbook: its postmortem, its actions, its proofs."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hotwash.actions import service as actions
from hotwash.postmortems.template import ACTION_KINDS


def incident_extras(request: Request, inc: dict[str, Any]) -> dict[str, Any]:
    store = request.app.state.store
    number = inc["number"]
    return {
        "postmortem": _postmortem(store, number),
        "actions": actions.list_actions(store, incident=number),
        "action_kinds": ACTION_KINDS,
        "proofs": store.latest_proofs(number),
    }


def _postmortem(store: Any, number: int) -> dict[str, Any] | None:
    return store.get_postmortem(incident_id=number)
