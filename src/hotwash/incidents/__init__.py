"""Incidents on the recovery playbook: the lifecycle table, the service that runs it, status updates.

    signals ──on_signals──► open_incident / attach_signals ──► step (contain, communicate, diagnose,
                                                                     mitigate, postmortem, verify, close)

:mod:`~hotwash.incidents.lifecycle` is the pure transition table; :mod:`~hotwash.incidents.service`
performs its effects against the store; :mod:`~hotwash.incidents.communicate` composes and sends
status updates; :mod:`~hotwash.incidents.diagnose` answers the category's diagnostic questions.
"""

from hotwash.incidents.communicate import compose, post_status_update
from hotwash.incidents.lifecycle import EVENTS, OPEN_STATES, STATES, Transition, allowed, transition
from hotwash.incidents.service import (
    add_note,
    assign,
    attach_signals,
    close,
    contain,
    get_incident,
    incident_ref,
    list_incidents,
    mitigate,
    on_signals,
    open_incident,
    parse_ref,
    step,
)

__all__ = [
    "EVENTS",
    "OPEN_STATES",
    "STATES",
    "Transition",
    "add_note",
    "allowed",
    "assign",
    "attach_signals",
    "close",
    "compose",
    "contain",
    "get_incident",
    "incident_ref",
    "list_incidents",
    "mitigate",
    "on_signals",
    "open_incident",
    "parse_ref",
    "post_status_update",
    "step",
    "transition",
]
