"""The postmortem template: seven sections in a fixed order, the action kinds, the front-matter keys.

Everything else in :mod:`hotwash.postmortems` (the Markdown format, the draft builder, the checks,
the exports) reads its structure from here, so a section or a kind is added in one place.
"""

from __future__ import annotations

from typing import Final

#: The sections of every postmortem, in the order they must appear (PRODUCT.md §5).
SECTIONS: Final = (
    "Summary",
    "Timeline",
    "Root cause",
    "Contributing factors",
    "What worked",
    "Actions",
    "Lessons learned",
)

#: What each section is for; shown as guidance in the draft and the UI.
SECTION_GUIDANCE: Final = {
    "Summary": "What happened, to whom, and how it ended, in 2-3 sentences.",
    "Timeline": "What happened when, one timed entry per line.",
    "Root cause": "The property of the system that let this happen (prompt, retrieval, model, guardrail, process).",
    "Contributing factors": "What made it worse, slower to see, or harder to contain.",
    "What worked": "Detection, containment and communication that went well, with how fast.",
    "Actions": "Every follow-up with a kind, an owner, a due date and a status.",
    "Lessons learned": "What the team now knows that it did not know before.",
}

#: Every postmortem has at least one action of each of these kinds.
REQUIRED_ACTION_KINDS: Final = ("regression_case", "guardrail", "monitoring", "documentation")
#: Optional kinds: a structural change (ownership, process, architecture).
OPTIONAL_ACTION_KINDS: Final = ("structural",)
ACTION_KINDS: Final = REQUIRED_ACTION_KINDS + OPTIONAL_ACTION_KINDS

ACTION_KIND_GUIDANCE: Final = {
    "regression_case": "Turn the incident's failing examples into regression evals that must pass before release.",
    "guardrail": "Change a prompt, a guardrail or a capability boundary so the failure cannot recur the same way.",
    "monitoring": "Detect this failure sooner next time, or keep the monitor that caught it.",
    "documentation": "Update the runbook, the feature's documentation or the on-call notes.",
    "structural": "Change ownership, process or architecture.",
}

ACTION_STATUSES: Final = ("open", "done", "deferred")
POSTMORTEM_STATUSES: Final = ("draft", "in_review", "published")
CATEGORIES: Final = ("hallucination", "prompt_injection", "drift", "runaway_cost", "escalation_overload",
                     "scope_creep")
SEVERITIES: Final = ("SEV1", "SEV2", "SEV3", "SEV4")

#: Front-matter keys of the canonical Markdown, in the order they are written.
META_KEYS: Final = ("incident", "title", "category", "feature", "severity", "status", "author", "lead", "due")
#: Keys that may be left empty.
OPTIONAL_META_KEYS: Final = ("author", "lead")

#: Columns of the Actions table, in order.
ACTION_COLUMNS: Final = ("kind", "action", "owner", "due", "status", "link")

#: An owner written as one of these has not been chosen yet (the draft's stand-in when no lead is known).
PLACEHOLDER_OWNERS: Final = frozenset({"tbd", "todo", "?", "unassigned", "nobody", "none"})
#: A line starting with this marks text the author still has to write; the checks report it.
PLACEHOLDER_PREFIX: Final = "TODO:"

#: The product's "one page": prose above this many words gets a warning.
PROSE_WORD_LIMIT: Final = 600


def section_named(name: str) -> str | None:
    """The canonical section for a heading written with any case or spacing ("root  Cause"), or None."""
    wanted = " ".join(name.split()).casefold()
    for section in SECTIONS:
        if section.casefold() == wanted:
            return section
    return None
