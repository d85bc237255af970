"""Postmortems: the template, the canonical Markdown, the pre-filled draft, the blameless linter, the
completeness checks and the exports. Everything here is pure (text in, text or data out; no store, no
clock); the workflow that stores, reviews and publishes postmortems is :mod:`hotwash.postmortems.service`.

    template   the seven sections, the action kinds, the front-matter keys
    markdown   parse(text) -> Postmortem, render(pm) -> text (exact round trip), MalformedMarkdown
    draft      draft(incident, now=...) -> Postmortem, draft_markdown(...) -> text
    lint       lint(text, people=...) -> [Finding]; Finding.key; unaccepted(findings, accepted)
    checks     check(text_or_pm, now=...) -> Report(missing, problems, words, warnings)
    export     to_html(pm_or_text), to_pdf(pm_or_text) (imported on first use: fpdf2 is slow to load)
"""

from __future__ import annotations

from typing import Any

from hotwash.postmortems.checks import Report, check
from hotwash.postmortems.draft import draft, draft_markdown
from hotwash.postmortems.lint import RULES, Finding, finding_key, lint, unaccepted
from hotwash.postmortems.markdown import Action, MalformedMarkdown, Meta, Postmortem, TimelineEntry, parse, render
from hotwash.postmortems.template import ACTION_KINDS, REQUIRED_ACTION_KINDS, SECTIONS

__all__ = [
    "ACTION_KINDS",
    "REQUIRED_ACTION_KINDS",
    "RULES",
    "SECTIONS",
    "Action",
    "Finding",
    "MalformedMarkdown",
    "Meta",
    "Postmortem",
    "Report",
    "TimelineEntry",
    "check",
    "draft",
    "draft_markdown",
    "finding_key",
    "lint",
    "parse",
    "render",
    "to_html",
    "to_pdf",
    "unaccepted",
]


def __getattr__(name: str) -> Any:
    if name in ("to_html", "to_pdf"):
        from hotwash.postmortems import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
