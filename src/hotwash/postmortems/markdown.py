"""The canonical Markdown of a postmortem: what hotwash writes, what a team keeps in git, what it imports.

The format, by example::

    ---
    incident: INC-3
    title: Support bot stated a refund policy that does not exist
    category: hallucination
    feature: support-bot
    severity: SEV2
    status: draft
    author: ana
    lead: ana
    due: 2026-12-04
    ---

    ## Summary

    Two or three sentences.

    ## Timeline

    All times UTC.

    - 2026-11-27 09:02 — Impact started: first affected answer
    - 2026-11-27 09:14 — Monitor grounding fired (SEV2)

    ## Root cause
    ...
    ## Actions

    | kind | action | owner | due | status | link |
    | --- | --- | --- | --- | --- | --- |
    | monitoring | Keep the grounding monitor at 5 % | ana | 2026-12-04 | open |  |

    ## Lessons learned
    ...

Rules:

- **Front matter** between two ``---`` lines, one ``key: value`` per line, every key of
  :data:`~hotwash.postmortems.template.META_KEYS` exactly once (``author`` and ``lead`` may be empty),
  values as YAML scalars (quoted when they would otherwise read as something else). ``due`` is a date,
  ``YYYY-MM-DD``.
- **Sections** are ``## <name>`` headings from :data:`~hotwash.postmortems.template.SECTIONS`, in that
  order, each at most once. A section may be left out (the checks report it) or be empty. Nothing but
  blank lines between the front matter and the first section. Headings inside fenced code blocks are
  code, not sections; a body line that would read as a ``##`` heading is written with a backslash
  (``\\## like this``), which Markdown shows as the text itself.
- **Timeline**: optional notes, then a list, one entry per item: ``- <time> — <what happened>``. The
  time is ``HH:MM``, ``YYYY-MM-DD HH:MM`` or ISO 8601 (``2026-11-27T09:14:00Z``); an item without a time
  is kept (the checks report it). On import a separator of ``-``, ``–`` or ``:`` is accepted, indented
  continuation lines join their entry, and a two-column table (time | entry) is read as entries.
- **Actions**: optional notes, then a table with the columns of
  :data:`~hotwash.postmortems.template.ACTION_COLUMNS`. A ``|`` inside a cell is written ``\\|``.
  Every row has a known kind, the action, an owner, a due date ``YYYY-MM-DD``; ``status`` is one of
  open / done / deferred (empty reads as open); ``link`` may be empty.
- Nothing follows the list or the table inside Timeline and Actions; notes go above them.

:func:`render` and :func:`parse` round-trip exactly: ``render(parse(text)) == text`` for any text
:func:`render` produced, and ``parse(render(pm)) == pm`` for any valid :class:`Postmortem` (its
constructor brings text to the one form :func:`render` writes: single-line titles, entries and cells;
section bodies without leading or trailing blank lines). A malformed import raises
:class:`MalformedMarkdown` naming the line and the section, e.g.
``line 14: Actions: table row has 4 cells, expected 6 (kind | action | owner | due | status | link)``.

Text in a postmortem may come from telemetry (answers, timeline entries, titles): it is kept as text
here, never interpreted; the HTML and PDF exports escape it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import yaml

from hotwash.errors import InvalidValue
from hotwash.postmortems.template import (
    ACTION_COLUMNS,
    ACTION_KINDS,
    ACTION_STATUSES,
    CATEGORIES,
    META_KEYS,
    OPTIONAL_META_KEYS,
    POSTMORTEM_STATUSES,
    SECTIONS,
    SEVERITIES,
    section_named,
)

__all__ = ["Action", "MalformedMarkdown", "Meta", "Postmortem", "TimelineEntry", "parse", "render"]


class MalformedMarkdown(InvalidValue):
    """A postmortem's Markdown does not follow the format. ``line`` (1-based) and ``section`` say where."""

    def __init__(self, message: str, *, line: int, section: str | None = None) -> None:
        where = f"line {line}: " + (f"{section}: " if section else "")
        super().__init__(where + message, field="markdown")
        self.line = line
        self.section = section
        self.reason = message


# -- the model -----------------------------------------------------------------------------------

_HOUR_MIN = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
#: A timeline time: ``HH:MM``, ``YYYY-MM-DD HH:MM`` or ISO 8601, optionally with a zone.
TIME_PATTERN = rf"(?:\d{{4}}-\d{{2}}-\d{{2}}[T ])?{_HOUR_MIN}(?:Z|[+-]\d{{2}}:?\d{{2}}| ?UTC)?"
_TIME_RE = re.compile(TIME_PATTERN)
# An entry: the time, an optional separator, the text.
_ENTRY_RE = re.compile(rf"(?P<time>{TIME_PATTERN})(?:[ \t]*[—–:|-])?(?:[ \t]+(?P<text>.*))?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _one_line(value: object) -> str:
    """Collapse any whitespace (newlines, tabs, Unicode line separators) into single spaces."""
    return " ".join(str(value).split())


def _split_time(text: str) -> tuple[str | None, str]:
    m = _ENTRY_RE.fullmatch(text)
    if m is None:
        return None, text
    return m["time"], m["text"] or ""


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline line: a time as written (``None`` when the entry has none) and what happened."""

    time: str | None
    text: str

    def __post_init__(self) -> None:
        text = _one_line(self.text)
        time = _one_line(self.time) if self.time is not None else None
        if time is None:
            # An entry whose text starts with a time would read back with that time: split it now.
            time, text = _split_time(text)
        elif not _TIME_RE.fullmatch(time):
            raise InvalidValue(f"timeline time {time!r} is not a time; write HH:MM or YYYY-MM-DD HH:MM",
                               field="timeline")
        object.__setattr__(self, "time", time or None)
        object.__setattr__(self, "text", text)


@dataclass(frozen=True)
class Action:
    """One follow-up action as written in the Actions table.

    The constructor only normalises (single-line text, an empty link is ``None``); :func:`parse`
    rejects missing owners, unknown kinds and bad dates, and :func:`hotwash.postmortems.checks.check`
    reports them on a :class:`Postmortem` built in code."""

    kind: str
    action: str
    owner: str
    due: date | None
    status: str = "open"
    link: str | None = None

    def __post_init__(self) -> None:
        for name in ("kind", "action", "owner", "status"):
            object.__setattr__(self, name, _one_line(getattr(self, name) or ""))
        link = _one_line(self.link) if self.link is not None else ""
        object.__setattr__(self, "link", link or None)


@dataclass(frozen=True)
class Meta:
    """The front matter: which incident, what it was, who wrote it and who led it, when it is due."""

    incident: str
    title: str
    category: str
    feature: str
    severity: str
    due: date
    status: str = "draft"
    author: str | None = None
    lead: str | None = None

    def __post_init__(self) -> None:
        for name in ("incident", "title", "category", "feature", "severity", "status"):
            object.__setattr__(self, name, _one_line(getattr(self, name) or ""))
        for name in OPTIONAL_META_KEYS:
            value = getattr(self, name)
            object.__setattr__(self, name, (_one_line(value) or None) if value is not None else None)


@dataclass(frozen=True)
class Postmortem:
    """A parsed postmortem.

    ``sections`` maps each section present in the document to its prose (Markdown); for Timeline and
    Actions that is the note above the list or table, and ``timeline`` / ``actions`` hold the entries.
    A section absent from ``sections`` is absent from the document."""

    meta: Meta
    sections: Mapping[str, str] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()
    actions: tuple[Action, ...] = ()

    def __post_init__(self) -> None:
        unknown = [name for name in self.sections if name not in SECTIONS]
        if unknown:
            raise InvalidValue(f"unknown section {unknown[0]!r}; sections are: {', '.join(SECTIONS)}",
                               field="sections")
        timeline = tuple(e for e in self.timeline if e.time or e.text)
        actions = tuple(self.actions)
        given = dict(self.sections)
        if timeline:
            given.setdefault("Timeline", "")
        if actions:
            given.setdefault("Actions", "")
        sections = {name: _clean_body(given[name]) for name in SECTIONS if name in given}
        object.__setattr__(self, "sections", sections)
        object.__setattr__(self, "timeline", timeline)
        object.__setattr__(self, "actions", actions)

    def prose(self, section: str) -> str:
        """The section's prose ('' when absent)."""
        return self.sections.get(section, "")


def _clean_body(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


# -- Markdown structure shared by render and parse -----------------------------------------------

_H2_RE = re.compile(r" {0,3}##(?:[ \t].*)?")
_ESCAPABLE_RE = re.compile(r"( {0,3})(\\*)(##(?:[ \t].*)?)")
_ESCAPED_RE = re.compile(r"( {0,3})\\(\\*##(?:[ \t].*)?)")
_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ITEM_RE = re.compile(r" {0,3}[-*+](?:[ \t]+(.*))?")
_TABLE_RE = re.compile(r" {0,3}\|.*")


def _fenced(lines: list[str]) -> tuple[list[bool], int | None]:
    """For each line, whether it belongs to a fenced code block (delimiters included); and the index
    of the opening line of a block left open at the end, if any."""
    inside: list[bool] = []
    opener: tuple[str, int] | None = None
    opened_at: int | None = None
    for i, line in enumerate(lines):
        m = _FENCE_RE.fullmatch(line)
        if opener is None:
            if m and not (m[1][0] == "`" and "`" in m[2]):
                opener, opened_at = (m[1][0], len(m[1])), i
                inside.append(True)
            else:
                inside.append(False)
        else:
            inside.append(True)
            if m and m[1][0] == opener[0] and len(m[1]) >= opener[1] and not m[2].strip():
                opener, opened_at = None, None
    return inside, opened_at


def _escape(lines: list[str]) -> list[str]:
    inside, _ = _fenced(lines)
    out = []
    for line, fenced in zip(lines, inside, strict=True):
        m = None if fenced else _ESCAPABLE_RE.fullmatch(line)
        out.append(f"{m[1]}\\{m[2]}{m[3]}" if m else line)
    return out


def _unescape(lines: list[str]) -> list[str]:
    inside, _ = _fenced(lines)
    out = []
    for line, fenced in zip(lines, inside, strict=True):
        m = None if fenced else _ESCAPED_RE.fullmatch(line)
        out.append(m[1] + m[2] if m else line)
    return out


def _cells(line: str) -> list[str]:
    """The cells of a table row: split on unescaped ``|``, outer pipes optional, ``\\|`` -> ``|``."""
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)]


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


# -- render --------------------------------------------------------------------------------------

def _yaml_scalar(value: str | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if value and value == value.strip() and _reads_back(value):
        return value
    quoted = json.dumps(value, ensure_ascii=False)
    # YAML refuses these characters raw even inside quotes; JSON leaves them raw.
    return re.sub(r"[\x7f-\x9f\u2028\u2029\ufeff]", lambda m: f"\\u{ord(m[0]):04x}", quoted)


def _reads_back(value: str) -> bool:
    """Whether ``key: value`` reads back as that same string, both verbatim and as typed YAML
    (so ``yes``, ``null`` or ``3`` get quoted for other tools that read the front matter)."""
    try:
        raw = yaml.load(f"k: {value}", Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only strings
        typed = yaml.safe_load(f"k: {value}")
    except yaml.YAMLError:
        return False
    return raw == {"k": value} and typed == {"k": value}


def _prose_lines(section: str, text: str, *, structured: bool) -> list[str]:
    if not text:
        return []
    lines = text.split("\n")
    inside, opened = _fenced(lines)
    if opened is not None:
        raise InvalidValue(f"{section}: a code block opened with {lines[opened].strip()!r} is never closed",
                           field="sections")
    if structured:
        for line, fenced in zip(lines, inside, strict=True):
            if not fenced and _is_structured(line, lists=section == "Timeline"):
                raise InvalidValue(f"{section}: the note above the entries has a list or table line {line!r}; "
                                   "entries go in the structured list", field="sections")
    return _escape(lines)


def render(pm: Postmortem) -> str:
    """The canonical Markdown of ``pm`` (see the module docstring for the format)."""
    meta = pm.meta
    out = ["---"]
    for key in META_KEYS:
        value = _yaml_scalar(getattr(meta, key))
        out.append(f"{key}: {value}" if value else f"{key}:")
    out.append("---")
    text = "\n".join(out) + "\n"
    for name, prose in pm.sections.items():
        body = _prose_lines(name, prose, structured=name in ("Timeline", "Actions"))
        rows: list[str] = []
        if name == "Timeline":
            rows = [f"- {e.time} — {e.text}" if e.time and e.text else f"- {e.time or e.text}" for e in pm.timeline]
        elif name == "Actions" and pm.actions:
            rows = ["| " + " | ".join(ACTION_COLUMNS) + " |", "| " + " | ".join("---" for _ in ACTION_COLUMNS) + " |"]
            for a in pm.actions:
                cells = (a.kind, a.action, a.owner, a.due.isoformat() if a.due else "", a.status, a.link or "")
                rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if body and rows:
            body.append("")
        body += rows
        text += f"\n## {name}\n" + ("\n" + "\n".join(body) + "\n" if body else "")
    return text


# -- parse ---------------------------------------------------------------------------------------

def parse(text: str) -> Postmortem:
    """Read a postmortem's Markdown; raise :class:`MalformedMarkdown` naming the line and section of the
    first problem."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    meta, first = _parse_front_matter(lines)

    inside, opened = _fenced(lines[first:])
    inside = [False] * first + inside
    if opened is not None:
        opened += first
        raise MalformedMarkdown(f"a code block opened with {lines[opened].strip()!r} is never closed",
                                line=opened + 1, section=_section_at(lines, inside, opened))
    found: dict[str, tuple[int, list[str]]] = {}  # name -> (line number of the heading, body lines)
    current: str | None = None
    for i in range(first, len(lines)):
        line, number = lines[i], i + 1
        if not inside[i] and _H2_RE.fullmatch(line):
            heading = re.sub(r"(?:^|[ \t]+)#+$", "", line.strip()[2:].strip()).strip()
            name = section_named(heading)
            if name is None:
                raise MalformedMarkdown(f"unknown section {heading!r}; the sections are, in order: "
                                        f"{', '.join(SECTIONS)}", line=number)
            if name in found:
                raise MalformedMarkdown(f"a second {name!r} section (the first is on line {found[name][0]})",
                                        line=number)
            if current is not None and SECTIONS.index(name) < SECTIONS.index(current):
                raise MalformedMarkdown(f"section {name!r} comes after {current!r}; the order is "
                                        f"{', '.join(SECTIONS)}", line=number)
            found[name] = (number, [])
            current = name
        elif current is None:
            if line.strip():
                raise MalformedMarkdown(f"text before the first section: {line.strip()[:60]!r}; start the body "
                                        "with '## Summary' (the title belongs in the front matter)", line=number)
        else:
            found[current][1].append(line)

    sections: dict[str, str] = {}
    timeline: list[TimelineEntry] = []
    actions: list[Action] = []
    for name, (heading_line, body) in found.items():
        body = _unescape(body)
        if name == "Timeline":
            prose_end = _structured_start(body, lists=True)
            timeline = _parse_timeline(body[prose_end:], first_line=heading_line + 1 + prose_end)
            body = body[:prose_end]
        elif name == "Actions":
            prose_end = _structured_start(body, lists=False)
            actions = _parse_actions(body[prose_end:], first_line=heading_line + 1 + prose_end)
            body = body[:prose_end]
        sections[name] = "\n".join(body)
    return Postmortem(meta=meta, sections=sections, timeline=tuple(timeline), actions=tuple(actions))


def _section_at(lines: list[str], inside: list[bool], index: int) -> str | None:
    for i in range(index, -1, -1):
        if not inside[i] and _H2_RE.fullmatch(lines[i]):
            return section_named(lines[i].strip()[2:].strip().rstrip("#").strip())
    return None


def _is_structured(line: str, *, lists: bool) -> bool:
    return bool(_TABLE_RE.fullmatch(line) or (lists and _ITEM_RE.fullmatch(line)))


def _structured_start(body: list[str], *, lists: bool) -> int:
    """Index of the first table row (or, with ``lists``, list item) outside a code block: where the
    entries begin."""
    inside, _ = _fenced(body)
    for i, line in enumerate(body):
        if not inside[i] and _is_structured(line, lists=lists):
            return i
    return len(body)


def _parse_front_matter(lines: list[str]) -> tuple[Meta, int]:
    if not lines or lines[0].strip() != "---":
        raise MalformedMarkdown("missing front matter: the file must start with a '---' line, then "
                                f"{', '.join(META_KEYS)} (one 'key: value' per line), then '---'", line=1)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise MalformedMarkdown("the front matter opened on line 1 is never closed with a '---' line", line=1)
    values: dict[str, str] = {}
    where: dict[str, int] = {}
    for i in range(1, end):
        line, number = lines[i], i + 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*?))?[ \t]*", line)
        if m is None:
            raise MalformedMarkdown(f"front matter line {line.strip()[:60]!r} is not 'key: value'", line=number)
        key = m[1].lower()
        if key not in META_KEYS:
            raise MalformedMarkdown(f"front matter: unknown key {m[1]!r}; the keys are {', '.join(META_KEYS)}",
                                    line=number)
        if key in values:
            raise MalformedMarkdown(f"front matter: {key!r} is given twice (first on line {where[key]})", line=number)
        values[key], where[key] = _scalar(m[2] or "", key=key, line=number), number
    for key in META_KEYS:
        if key not in values:
            raise MalformedMarkdown(f"front matter: missing key {key!r}", line=end + 1)
        if not values[key] and key not in OPTIONAL_META_KEYS:
            raise MalformedMarkdown(f"front matter: {key!r} is empty", line=where[key])

    def check(key: str, allowed: tuple[str, ...]) -> None:
        if values[key] not in allowed:
            raise MalformedMarkdown(f"front matter: {key} {values[key]!r} is not one of {', '.join(allowed)}",
                                    line=where[key])

    if not re.fullmatch(r"INC-\d+", values["incident"]):
        raise MalformedMarkdown(f"front matter: incident {values['incident']!r} is not an incident id like INC-3",
                                line=where["incident"])
    check("category", CATEGORIES)
    check("severity", SEVERITIES)
    check("status", POSTMORTEM_STATUSES)
    due = _date(values["due"], line=where["due"], section=None, what="front matter: due")
    meta = Meta(incident=values["incident"], title=values["title"], category=values["category"],
                feature=values["feature"], severity=values["severity"], due=due, status=values["status"],
                author=values["author"] or None, lead=values["lead"] or None)
    return meta, end + 1


def _scalar(raw: str, *, key: str, line: int) -> str:
    try:
        value = yaml.load(raw, Loader=yaml.BaseLoader) if raw else ""  # noqa: S506 - BaseLoader builds only strings
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not a YAML value"
        raise MalformedMarkdown(f"front matter: {key}: {problem}; put the value in double quotes",
                                line=line) from None
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedMarkdown(f"front matter: {key} must be a single value on one line; put it in double quotes",
                                line=line)
    return _one_line(value)


def _date(value: str, *, line: int, section: str | None, what: str) -> date:
    try:
        if not _DATE_RE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedMarkdown(f"{what} {value!r} is not a date; write YYYY-MM-DD", line=line,
                                section=section) from None


def _parse_timeline(lines: list[str], *, first_line: int) -> list[TimelineEntry]:
    if lines and _TABLE_RE.fullmatch(lines[0]):
        return _parse_timeline_table(lines, first_line=first_line)
    entries: list[list[str]] = []  # [time-or-"", text] while collecting continuation lines
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        item = _ITEM_RE.fullmatch(line)
        if item is not None:
            time, text = _split_time((item[1] or "").strip())
            entries.append([time or "", text])
        elif line[:1] in (" ", "\t") and entries:
            entries[-1][1] = f"{entries[-1][1]} {line.strip()}".strip()
        else:
            raise MalformedMarkdown(f"text after the entries: {line.strip()[:60]!r}; make it an entry "
                                    "('- HH:MM — what happened') or move it above the list",
                                    line=first_line + offset, section="Timeline")
    return [TimelineEntry(time=t or None, text=x) for t, x in entries]


def _parse_timeline_table(lines: list[str], *, first_line: int) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for offset, line in enumerate(lines):
        number = first_line + offset
        if not line.strip():
            continue
        if not _TABLE_RE.fullmatch(line):
            raise MalformedMarkdown(f"text after the timeline table: {line.strip()[:60]!r}; move it above the table",
                                    line=number, section="Timeline")
        cells = _cells(line)
        if offset == 0 or all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue  # the header row and the separator row
        if len(cells) < 2:
            raise MalformedMarkdown(f"timeline table row has {len(cells)} cell, expected 2 (time | entry)",
                                    line=number, section="Timeline")
        time = cells[0] if _TIME_RE.fullmatch(cells[0]) else None
        text = " — ".join(c for c in cells[1:] if c) if time else " — ".join(c for c in cells if c)
        entries.append(TimelineEntry(time=time, text=text))
    return entries


def _parse_actions(lines: list[str], *, first_line: int) -> list[Action]:
    actions: list[Action] = []
    columns = " | ".join(ACTION_COLUMNS)
    seen_header = seen_separator = False
    for offset, line in enumerate(lines):
        number = first_line + offset
        if not line.strip():
            if seen_header:
                # A blank line ends a Markdown table; anything after it would silently leave the table.
                rest = next((j for j in range(offset + 1, len(lines)) if lines[j].strip()), None)
                if rest is not None:
                    raise MalformedMarkdown(f"text after the actions table: {lines[rest].strip()[:60]!r}; keep the "
                                            "table in one piece and put notes above it",
                                            line=first_line + rest, section="Actions")
                break
            continue
        if not _TABLE_RE.fullmatch(line):
            raise MalformedMarkdown(f"text after the actions table: {line.strip()[:60]!r}; put notes above it",
                                    line=number, section="Actions")
        cells = _cells(line)
        if not seen_header:
            if [c.lower() for c in cells] != list(ACTION_COLUMNS):
                raise MalformedMarkdown(f"the actions table header must be | {columns} |, not | "
                                        f"{' | '.join(cells)} |", line=number, section="Actions")
            seen_header = True
            continue
        if not seen_separator:
            if len(cells) != len(ACTION_COLUMNS) or not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                raise MalformedMarkdown("the line under the actions table header must be | --- | --- | ... |",
                                        line=number, section="Actions")
            seen_separator = True
            continue
        actions.append(_action_row(cells, line=number))
    return actions


def _action_row(cells: list[str], *, line: int) -> Action:
    def fail(message: str) -> MalformedMarkdown:
        return MalformedMarkdown(message, line=line, section="Actions")

    if len(cells) != len(ACTION_COLUMNS):
        return_word = "cell" if len(cells) == 1 else "cells"
        raise fail(f"table row has {len(cells)} {return_word}, expected {len(ACTION_COLUMNS)} "
                   f"({' | '.join(ACTION_COLUMNS)})")
    kind, action, owner, due, status, link = cells
    if kind not in ACTION_KINDS:
        raise fail(f"unknown action kind {kind!r}; use one of {', '.join(ACTION_KINDS)}")
    if not action:
        raise fail("an action with no text; say what will be done")
    if not owner:
        raise fail(f"action {action[:60]!r} has no owner; name the person who will do it")
    if not due:
        raise fail(f"action {action[:60]!r} has no due date; write YYYY-MM-DD")
    status = status.lower() or "open"
    if status not in ACTION_STATUSES:
        raise fail(f"action {action[:60]!r} has status {status!r}; use one of {', '.join(ACTION_STATUSES)}")
    return Action(kind=kind, action=action, owner=owner, due=_date(due, line=line, section="Actions", what="due date"),
                  status=status, link=link or None)
