"""Completeness checks of a postmortem: the gate before review and publication.

``check(text_or_pm, now=...)`` returns a :class:`Report`:

``missing``
    sections absent, or present with nothing in them (a section holding only ``TODO:`` placeholder lines
    counts as empty; Timeline needs an entry or a note, Actions a row or a note).
``problems``
    what must be fixed: a Summary that is not 2-3 sentences, a Timeline without entries or with entries
    that have no time, an action without an owner (or with a placeholder owner such as ``TBD``), without a
    due date or with an unknown kind or status, a required action kind with no action, an open action due
    before ``now`` (pass ``now`` when checking a draft: a new action cannot start overdue), ``TODO:``
    placeholders left in a section that has other text, and no lead in the front matter.
``words``
    words of prose: every section's text except Timeline entries, the Actions table, code blocks and
    placeholders.
``warnings``
    advice that does not block: ``over ~600 words of prose: N`` (the one-page rule).

A text is parsed with :func:`hotwash.postmortems.markdown.parse` first, so a malformed text raises the
same :class:`~hotwash.postmortems.markdown.MalformedMarkdown` an import does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from hotwash.postmortems.markdown import Postmortem, parse
from hotwash.postmortems.template import (
    ACTION_KINDS,
    ACTION_STATUSES,
    PLACEHOLDER_OWNERS,
    PLACEHOLDER_PREFIX,
    PROSE_WORD_LIMIT,
    REQUIRED_ACTION_KINDS,
    SECTIONS,
)

__all__ = ["Report", "check", "count_sentences", "prose_words"]


@dataclass(frozen=True)
class Report:
    """What a postmortem still lacks. ``ok`` when nothing is missing and there are no problems
    (warnings do not count)."""

    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    words: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"missing": list(self.missing), "problems": list(self.problems), "words": self.words,
                "warnings": list(self.warnings), "ok": self.ok}


_PLACEHOLDER = re.compile(rf"^\s*(?:[-*+]\s+)?[*_]*{re.escape(PLACEHOLDER_PREFIX)}", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_WORD = re.compile(r"[^\W_](?:[\w'’-]*[^\W_])?")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|incl|cf|Mr|Mrs|Ms|Dr|No|St)\.$|\b[A-Za-z]\.$")


def _prose_lines(text: str) -> tuple[list[str], list[str]]:
    """The lines of ``text`` outside code blocks, split into (written text, placeholder lines)."""
    written: list[str] = []
    placeholders: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not line[m.end():].strip():
                fence = None
            continue
        if m:
            fence = m[1]
            continue
        (placeholders if _PLACEHOLDER.match(line) else written).append(line)
    return written, placeholders


def prose_words(text: str) -> int:
    """Words of prose in a section's Markdown (code blocks and placeholders left out)."""
    written, _ = _prose_lines(text)
    plain = re.sub(r"\]\([^)]*\)|https?://\S+|`[^`]*`", " ", "\n".join(written))
    return len(_WORD.findall(plain))


def count_sentences(text: str) -> int:
    """Sentences in a stretch of prose: ends at ``.``, ``!`` or ``?`` followed by a space or the end, not
    after common abbreviations ("e.g.") or initials; trailing text without a full stop counts as one."""
    written, _ = _prose_lines(text)
    plain = " ".join(" ".join(written).split())
    plain = re.sub(r"\]\([^)]*\)|`[^`]*`", " ", plain)
    count, start = 0, 0
    for m in re.finditer(r"[.!?]+(?=\s|$)", plain):
        if _ABBREVIATION.search(plain[start:m.end()]):
            continue
        if re.search(r"\w", plain[start:m.end()]):
            count += 1
        start = m.end()
    if re.search(r"\w", plain[start:]):
        count += 1
    return count


def _is_empty(pm: Postmortem, section: str) -> bool:
    if section not in pm.sections:
        return True
    written, _ = _prose_lines(pm.sections[section])
    has_prose = any(line.strip() for line in written)
    if section == "Timeline":
        return not (pm.timeline or has_prose)
    if section == "Actions":
        return not (pm.actions or has_prose)
    return not has_prose


def check(text_or_pm: str | Postmortem, *, now: datetime | date | None = None) -> Report:
    """Check a postmortem (Markdown or parsed) for completeness; see the module docstring."""
    pm = parse(text_or_pm) if isinstance(text_or_pm, str) else text_or_pm
    today = now.date() if isinstance(now, datetime) else now
    missing = [name for name in SECTIONS if _is_empty(pm, name)]
    problems: list[str] = []

    if not pm.meta.lead:
        problems.append("front matter: no lead; name the person closest to the incident")

    for name in SECTIONS:
        if name in missing:
            continue
        _, placeholders = _prose_lines(pm.sections[name])
        if placeholders:
            problems.append(f"{name}: replace the placeholder {placeholders[0].strip()[:80]!r}")

    if "Summary" not in missing:
        n = count_sentences(pm.sections["Summary"])
        if not 2 <= n <= 3:
            problems.append(f"Summary has {n} sentence{'s' if n != 1 else ''}; write 2-3")

    if "Timeline" not in missing:
        if not pm.timeline:
            problems.append("Timeline has no entries; list what happened when, one '- HH:MM — entry' per line")
        untimed = [e for e in pm.timeline if not e.time]
        if untimed:
            problems.append(f"Timeline: {len(untimed)} of {len(pm.timeline)} entries have no time "
                            f"(first: {untimed[0].text[:60]!r}); start each with HH:MM or YYYY-MM-DD HH:MM")

    for a in pm.actions:
        label = f"Actions: {a.action[:60]!r}" if a.action else "Actions: an action with no text"
        if a.kind not in ACTION_KINDS:
            problems.append(f"{label} has kind {a.kind!r}; use one of {', '.join(ACTION_KINDS)}")
        if not a.owner:
            problems.append(f"{label} has no owner")
        elif a.owner.casefold() in PLACEHOLDER_OWNERS:
            problems.append(f"{label} has no owner yet ({a.owner!r}); name the person who will do it")
        if a.due is None:
            problems.append(f"{label} has no due date")
        elif today is not None and a.status == "open" and a.due < today:
            problems.append(f"{label} is due {a.due.isoformat()}, before today ({today.isoformat()}); "
                            "give it a date still ahead")
        if a.status not in ACTION_STATUSES:
            problems.append(f"{label} has status {a.status!r}; use one of {', '.join(ACTION_STATUSES)}")
    if pm.actions:
        kinds = {a.kind for a in pm.actions}
        absent = [k for k in REQUIRED_ACTION_KINDS if k not in kinds]
        if absent:
            problems.append(f"Actions: no {', no '.join(absent)} action (every postmortem needs one of each "
                            f"of {', '.join(REQUIRED_ACTION_KINDS)})")

    words = sum(prose_words(pm.sections[name]) for name in SECTIONS if name in pm.sections)
    warnings = [f"over ~{PROSE_WORD_LIMIT} words of prose: {words}"] if words > PROSE_WORD_LIMIT else []
    return Report(missing=missing, problems=problems, words=words, warnings=warnings)
