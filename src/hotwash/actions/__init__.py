"""Action items: the follow-ups of a postmortem, tracked like bugs until done or deferred with a reason.

    add ──► open ──► done
              └────► deferred (reason required)     open actions keep their incident from closing

Due dates are dates (UTC): an action is overdue once its due day has passed while it is open.
Overdue actions are reminded through the notifiers, at most once per period per action
(:func:`~hotwash.actions.service.remind_overdue`).
"""

from hotwash.actions.service import (
    ACTION_KINDS,
    ACTION_STATUSES,
    add_action,
    defer_action,
    done_action,
    get_action,
    list_actions,
    open_action_count,
    parse_due,
    remind_overdue,
    reopen_action,
)

__all__ = [
    "ACTION_KINDS",
    "ACTION_STATUSES",
    "add_action",
    "defer_action",
    "done_action",
    "get_action",
    "list_actions",
    "open_action_count",
    "parse_due",
    "remind_overdue",
    "reopen_action",
]
