"""The recovery playbook as data: (state, event) -> (new state, effects).

    detected ──contain──► contained ──communicate──► communicated ──diagnose──► diagnosed
        └──────────────communicate──────────────────────┘                          │
                                                                                 mitigate
                                                                                    ▼
    closed ◄──close── verified ◄──verify── postmortem ◄──postmortem── mitigated

A first status update may come before containment (``detected --communicate-->``).
``contain`` is allowed from every open state, in one action: from ``detected`` it moves the
incident to ``contained``; later it keeps the state and only records the flag change (a second
containment, a different mode). ``closed`` is terminal.

Nothing here touches the store. :func:`transition` returns the new state and the effects the
caller performs (set the flag, stamp a milestone, write the timeline entry) and the guards the
caller checks against the store first (``verify`` needs both proofs, ``close`` needs every action
resolved). An event the table does not list raises :class:`IllegalTransition` naming the allowed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotwash.errors import IllegalTransition

STATES = ("detected", "contained", "communicated", "diagnosed", "mitigated", "postmortem", "verified", "closed")
EVENTS = ("contain", "communicate", "diagnose", "mitigate", "postmortem", "verify", "close")
OPEN_STATES = STATES[:-1]

# The column that keeps the first time each state was reached (``detected_at`` is set on open).
MILESTONES = {state: f"{state}_at" for state in STATES}

EffectKind = Literal["flag", "milestone", "timeline"]
Guard = Literal["proofs", "actions_resolved"]


@dataclass(frozen=True, slots=True)
class Effect:
    """Something the caller does when a transition is accepted.

    ``flag``: set the feature's kill switch (``contain``); ``milestone``: stamp ``arg`` (a
    milestone column) unless it is already set; ``timeline``: record the step on the timeline.
    """

    kind: EffectKind
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    state: str
    effects: tuple[Effect, ...]
    guards: tuple[Guard, ...] = ()

    @property
    def milestones(self) -> tuple[str, ...]:
        return tuple(e.arg for e in self.effects if e.kind == "milestone" and e.arg)


_RECORD = Effect("timeline")
_FLAG = Effect("flag")


def _to(state: str, *extra: Effect, guards: tuple[Guard, ...] = ()) -> Transition:
    return Transition(state, (*extra, Effect("milestone", MILESTONES[state]), _RECORD), guards)


TABLE: dict[tuple[str, str], Transition] = {
    ("detected", "contain"): _to("contained", _FLAG),
    # Containing again (or for the first time, after a first status update) keeps the state: the
    # flag change is the record. `contained_at` is the time of the first containment either way.
    **{(s, "contain"): Transition(s, (_FLAG, Effect("milestone", "contained_at"))) for s in OPEN_STATES[1:]},
    ("detected", "communicate"): _to("communicated"),
    ("contained", "communicate"): _to("communicated"),
    ("communicated", "diagnose"): _to("diagnosed"),
    ("diagnosed", "mitigate"): _to("mitigated"),
    ("mitigated", "postmortem"): _to("postmortem"),
    ("postmortem", "verify"): _to("verified", guards=("proofs",)),
    ("verified", "close"): _to("closed", guards=("actions_resolved",)),
}


def allowed(state: str) -> list[str]:
    """The events the playbook accepts in ``state``, in playbook order."""
    return [e for e in EVENTS if (state, e) in TABLE]


def transition(state: str, event: str) -> Transition:
    """The new state and the effects of ``event`` in ``state``; IllegalTransition if not allowed."""
    if state not in STATES:
        raise ValueError(f"unknown incident state {state!r}")
    found = TABLE.get((state, event))
    if found is not None:
        return found
    ok = allowed(state)
    if event not in EVENTS:
        why = f"unknown playbook step {event!r} (steps: {', '.join(EVENTS)})"
    elif state == "closed":
        why = "the incident is closed; nothing more can happen to it"
    else:
        why = f"cannot {event} an incident that is {state}"
    hint = f"; allowed now: {', '.join(ok)}" if ok else ""
    raise IllegalTransition(why + hint, state=state, event=event, allowed=ok)


def is_open(state: str) -> bool:
    return state in OPEN_STATES
