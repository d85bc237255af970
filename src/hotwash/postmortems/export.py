"""HTML and PDF exports of a postmortem (Markdown is the canonical form: :func:`~hotwash.postmortems.markdown.render`).

Everything in a postmortem may have come from telemetry or from a person's typing, so both exports
treat it as text:

- :func:`to_html` renders the Markdown with markdown-it-py with raw HTML disabled (``<script>`` is
  shown, not run), its link validation on (``javascript:``, ``vbscript:``, ``file:`` and ``data:``
  links are left as text), and the page around it from a Jinja2 template with autoescape. The output is
  never used as a template itself, so ``{{7*7}}`` stays ``{{7*7}}``. The standalone page carries a
  Content-Security-Policy that allows no script and no remote image (an image link in telemetry text
  cannot call home when someone opens the page).
- :func:`to_pdf` lays the document out with fpdf2 (a PDF engine) from markdown-it's tokens: the
  title and front matter, each section heading, paragraphs, lists (the Timeline), code blocks, and
  the Actions table. It uses DejaVu Sans from ``/usr/share/fonts`` (Debian's ``fonts-dejavu-core``)
  when present, for any Unicode text; without it, the core Helvetica font with characters outside
  Latin-1 replaced. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from jinja2 import Environment
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from hotwash.postmortems.markdown import Postmortem, parse, render

__all__ = ["FONT_DIRS", "to_html", "to_pdf"]


def _markdown() -> MarkdownIt:
    # "commonmark" with html=False: raw HTML in the text is escaped; tables for the Actions table.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"])


def _body_markdown(pm: Postmortem) -> str:
    """The canonical Markdown without its front matter (that becomes the page header)."""
    text = render(pm)
    end = text.index("\n---\n", 3) + len("\n---\n")
    return text[end:]


_PAGE = Environment(autoescape=True, keep_trailing_newline=True).from_string("""\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ meta.incident }} postmortem: {{ meta.title }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; color: #444; }
header dt { font-weight: 600; }
header dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
pre { background: #f5f5f5; padding: .6rem; overflow-x: auto; }
</style>
</head>
<body>
{{ article }}
</body>
</html>
""")

_ARTICLE = Environment(autoescape=True).from_string("""\
<article class="postmortem">
<header>
<h1>{{ meta.incident }}: {{ meta.title }}</h1>
<dl>
<dt>Category</dt><dd>{{ meta.category }}</dd>
<dt>Feature</dt><dd>{{ meta.feature }}</dd>
<dt>Severity</dt><dd>{{ meta.severity }}</dd>
<dt>Status</dt><dd>{{ meta.status }}</dd>
<dt>Author</dt><dd>{{ meta.author or "not set" }}</dd>
<dt>Lead</dt><dd>{{ meta.lead or "not set" }}</dd>
<dt>Due</dt><dd>{{ meta.due.isoformat() if meta.due else "not set" }}</dd>
</dl>
</header>
{{ body }}
</article>
""")


def to_html(pm_or_text: Postmortem | str, *, fragment: bool = False) -> str:
    """The postmortem as a standalone HTML page, or with ``fragment`` just its ``<article>`` (for a page
    that has its own layout; insert it as-is, it is already escaped)."""
    pm = parse(pm_or_text) if isinstance(pm_or_text, str) else pm_or_text
    body = Markup(_markdown().render(_body_markdown(pm)))  # noqa: S704 - markdown-it escapes everything (html=False)
    article = Markup(_ARTICLE.render(meta=pm.meta, body=body))  # noqa: S704 - rendered with autoescape
    return str(article) if fragment else _PAGE.render(meta=pm.meta, article=article)


# -- PDF -----------------------------------------------------------------------------------------

#: Where the PDF export looks for DejaVu (``HOTWASH_FONT_DIR`` first, when set).
FONT_DIRS: tuple[str, ...] = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu",
                              "/usr/local/share/fonts", "/Library/Fonts")
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
_MONO_FILE = "DejaVuSansMono.ttf"
_LATIN1 = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "•": "-",
                         "→": "->", "←": "<-", "≥": ">=", "≤": "<=", "×": "x", "\u00a0": " "})


def _font_dir() -> Path | None:
    for folder in (os.environ.get("HOTWASH_FONT_DIR"), *FONT_DIRS):
        if folder and all((Path(folder) / f).is_file() for f in (*_FONT_FILES.values(), _MONO_FILE)):
            return Path(folder)
    return None


class _Writer:
    """Lays a postmortem out on A4 pages, from markdown-it block tokens."""

    def __init__(self) -> None:
        self.pdf = FPDF(format="A4", unit="mm")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.set_margins(18, 16, 18)
        self.pdf.set_creator("hotwash")
        folder = _font_dir()
        if folder is not None:
            for style, name in _FONT_FILES.items():
                self.pdf.add_font("DejaVu", style, str(folder / name))
            self.pdf.add_font("DejaVuMono", "", str(folder / _MONO_FILE))
            self.sans, self.mono, self.unicode = "DejaVu", "DejaVuMono", True
        else:
            self.sans, self.mono, self.unicode = "Helvetica", "Courier", False
        self.pdf.add_page()

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    def write(self, value: str, *, size: float = 10.5, style: str = "", mono: bool = False, indent: float = 0,
              height: float | None = None, fill: bool = False) -> None:
        pdf = self.pdf
        pdf.set_font(self.mono if mono else self.sans, "" if mono else style, size)
        pdf.set_x(pdf.l_margin + indent)
        if fill:
            pdf.set_fill_color(243, 243, 243)
        pdf.multi_cell(pdf.epw - indent, height or size * 0.5, self.text(value), new_x="LMARGIN", new_y="NEXT",
                       fill=fill, align="L", wrapmode="CHAR" if mono else "WORD")

    def gap(self, mm: float = 2.0) -> None:
        self.pdf.ln(mm)

    def header(self, pm: Postmortem) -> None:
        meta = pm.meta
        self.pdf.set_title(self.text(f"{meta.incident} postmortem: {meta.title}"))
        if meta.author:
            self.pdf.set_author(self.text(meta.author))
        self.write(f"{meta.incident}: {meta.title}", size=17, style="B", height=8)
        self.gap(1)
        facts = [("Category", meta.category), ("Feature", meta.feature), ("Severity", meta.severity),
                 ("Status", meta.status), ("Author", meta.author or "not set"), ("Lead", meta.lead or "not set"),
                 ("Due", meta.due.isoformat() if meta.due else "not set")]
        self.write("   ".join(f"{k}: {v}" for k, v in facts), size=9, height=4.5)
        self.gap(3)

    def blocks(self, tokens: Sequence[Token]) -> None:
        i, depth, numbers = 0, 0, []  # list nesting and ordered-list counters
        while i < len(tokens):
            t = tokens[i]
            if t.type == "heading_open":
                level = int(t.tag[1])
                self.gap(3 if level == 2 else 1.5)
                self.write(_inline(tokens[i + 1]), size=14 if level == 2 else 11.5, style="B", height=7)
                self.gap(1)
                i += 3
                continue
            if t.type in ("bullet_list_open", "ordered_list_open"):
                depth += 1
                numbers.append(int(t.attrGet("start") or 1) if t.type == "ordered_list_open" else 0)
            elif t.type in ("bullet_list_close", "ordered_list_close"):
                depth -= 1
                numbers.pop()
                if depth == 0:
                    self.gap(1)
            elif t.type == "list_item_open":
                mark = "•" if not numbers[-1] else f"{numbers[-1]}."
                if numbers[-1]:
                    numbers[-1] += 1
                content = tokens[i + 2] if tokens[i + 1].type == "paragraph_open" else None
                if content is not None and content.type == "inline":
                    self.write(f"{mark} {_inline(content)}", indent=5 * depth, height=5)
                    i += 4  # list_item_open, paragraph_open, inline, paragraph_close
                    continue
            elif t.type == "paragraph_open" and tokens[i + 1].type == "inline":
                self.write(_inline(tokens[i + 1]), indent=5 * depth, height=5)
                self.gap(1.5)
                i += 3
                continue
            elif t.type in ("fence", "code_block"):
                self.write(t.content.rstrip("\n"), size=8.5, mono=True, indent=5 * depth, height=4, fill=True)
                self.gap(1.5)
            elif t.type == "table_open":
                i = self.table(tokens, i)
                continue
            elif t.type == "hr":
                self.gap(2)
            i += 1

    def table(self, tokens: Sequence[Token], start: int) -> int:
        rows: list[list[str]] = []
        i = start + 1
        while tokens[i].type != "table_close":
            t = tokens[i]
            if t.type == "tr_open":
                rows.append([])
            elif t.type == "inline":
                rows[-1].append(self.text(_inline(t)))
            i += 1
        if rows:
            width = max(len(r) for r in rows)
            rows = [r + [""] * (width - len(r)) for r in rows]
            self.pdf.set_font(self.sans, "", 8.5)
            # The Actions table: the action text gets the room; kinds, owners and dates stay narrow.
            widths = (21, 38, 11, 14, 9, 12) if width == 6 else None
            with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=4.2,
                                first_row_as_headings=True) as table:
                for r in rows:
                    row = table.row()
                    for cell in r:
                        row.cell(cell)
            self.gap(2)
        return i + 1


def _inline(token: Token) -> str:
    """The visible text of an inline token: markup dropped, link targets shown after the link text."""
    out: list[str] = []
    href: list[str | None] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak",):
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "link_open":
            href.append(str(child.attrGet("href") or ""))
        elif child.type == "link_close":
            target = href.pop() if href else ""
            if target and target not in "".join(out[-1:]):
                out.append(f" ({target})")
        elif child.type == "image":
            out.append(child.content or "")
    return "".join(out)


def to_pdf(pm_or_text: Postmortem | str, *, created: datetime | None = None) -> bytes:
    """The postmortem as a PDF document (A4). ``created`` sets the document's creation date (default:
    now), so two exports of the same text at the same ``created`` are byte-identical."""
    pm = parse(pm_or_text) if isinstance(pm_or_text, str) else pm_or_text
    writer = _Writer()
    writer.pdf.set_creation_date(created or datetime.now(UTC))
    writer.header(pm)
    writer.blocks(_markdown().parse(_body_markdown(pm)))
    return bytes(writer.pdf.output())
