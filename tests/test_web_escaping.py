"""Attacker text stays inert. Telemetry carries injection payloads by design; so can anything a person
types. Script tags, HTML with event handlers, Markdown ``javascript:`` links and template syntax go
into events, signals, incident titles, notes, status updates, diagnosis answers, flag reasons, action
titles, people's names and postmortem Markdown — and every page and export must show them as text."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from hotwash.actions import service as actions
from hotwash.containment import flags
from hotwash.detect.engine import Signal, save
from hotwash.incidents import diagnose
from hotwash.incidents import service as incidents
from hotwash.incidents.communicate import post_status_update
from hotwash.manifest import load_manifest
from hotwash.postmortems import service as postmortems
from hotwash.postmortems.draft import draft_markdown
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.web import create_app

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
MDLINK = "[click me](javascript:alert(3))"
# Evaluated, these would read 49 and 1343433; the raw block would lose its tags.
TEMPLATE = "{{7*7}} {{ 7*191919 }} {% raw %}kept{% endraw %} ${7*7}"
EVIL = f"{SCRIPT} {IMG} {MDLINK} {TEMPLATE}"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
EVIL_FEATURE = "<i>evil-feature</i>"
MANIFEST = "features:\n  support-bot:\n    containment: {fallback: human, rollback_to: {prompt_version: v11}}\n"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Inert(HTMLParser):
    """Collects everything that could run: script elements, event-handler attributes, script URLs,
    and elements that fetch (img, iframe, object, embed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            if dict(attrs).get("src") != "/static/htmx.min.js":
                self.live.append(f"<script {attrs}>")
        if tag in ("img", "iframe", "object", "embed", "base", "frame"):
            self.live.append(f"<{tag} {attrs}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.live.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value and \
                    re.sub(r"\s", "", value).lower().startswith(("javascript:", "vbscript:", "data:text")):
                self.live.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.live.append(f"inline script: {data[:80]!r}")


def assert_inert(html: str, where: str, *, shows_payload: bool = True) -> None:
    parser = Inert()
    parser.feed(html)
    assert parser.live == [], f"{where}: live markup {parser.live}"
    assert "1343433" not in html, f"{where}: a template expression was evaluated"
    if shows_payload:
        # The payload is there, as text: escaped tags, template syntax kept verbatim.
        assert ESCAPED_SCRIPT in html, f"{where}: the payload is not shown"
        assert "{{7*7}}" in html and "{% raw %}kept{% endraw %}" in html, f"{where}: template syntax was altered"


@pytest.fixture
def poisoned(store: Store, tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=tmp_path / "hotwash.yaml")
    manifest = load_manifest(settings.manifest)
    with TestClient(create_app(settings, store=store)) as client:
        # Telemetry, through the real ingest API: inputs, outputs, retrieved context, tool arguments.
        events = [{"id": f"evt-{i}", "ts": (T0 + timedelta(seconds=i)).isoformat(), "feature": "support-bot",
                   "input": EVIL, "output": EVIL, "context": [{"id": "kb-1", "text": EVIL, "source": "kb"}],
                   "tool_calls": [{"name": "search_kb", "arguments": {"q": EVIL}}], "untrusted": ["input"]}
                  for i in range(3)]
        events.append({"id": "evt-odd", "ts": T0.isoformat(), "feature": EVIL_FEATURE, "input": EVIL})
        events.append({"type": "change", "id": "chg-1", "ts": (T0 - timedelta(days=1)).isoformat(),
                       "feature": "support-bot", "kind": "prompt", "version": "v12", "description": EVIL})
        assert client.post("/api/v1/events", json=events).json()["accepted"] == 5
        sig = Signal(monitor="hallucination.rate", category="hallucination", feature="support-bot", severity="SEV2",
                     start=T0, detected_at=T0 + timedelta(minutes=5), evidence=["evt-0", "evt-1", "evt-2"],
                     summary=EVIL, details={"note": EVIL})
        save(store, [sig])
        signal_id = store.list_signals()[0]["id"]

        inc = incidents.open_incident(store, manifest, title=EVIL, category="hallucination", severity="SEV2",
                                      features=["support-bot"], actor="ana", lead="ana", signal_ids=[signal_id])
        ref = inc["id"]
        incidents.add_note(store, ref, text=EVIL, actor="ana")
        incidents.assign(store, ref, actor="ana", participants=[(IMG, "observer")])
        post_status_update(store, manifest, ref, audience="internal", actor="ana", what_happened=EVIL,
                           impact=EVIL)
        question = diagnose.get_answers(store, ref)[0]["question"]
        diagnose.answer(store, ref, question, EVIL, actor="ana")
        flags.set_mode(store, manifest, "support-bot", "human", actor="ana", reason=EVIL, incident_id=inc["number"])
        actions.add_action(store, ref, title=EVIL, kind="monitoring", owner=EVIL, due="2099-01-01", actor="ana")

        # A draft whose Markdown carries the payloads (and tries to close the editor's textarea).
        pm = postmortems.draft(store, manifest, ref, actor="ana")
        text = pm["markdown"].replace("## Summary\n\n", f"## Summary\n\n{EVIL}\n\n</textarea>{SCRIPT}\n\n", 1)
        postmortems.update_markdown(store, ref, markdown=text, expected_version=pm["version"], actor="ana")

        # A second incident whose postmortem is published: the library, reads and coverage show it.
        other = incidents.open_incident(store, manifest, title=f"second {EVIL}", category="hallucination",
                                        severity="SEV3", features=["support-bot"], actor="ana")
        published = draft_markdown(other, now=T0).replace("status: draft", "status: published", 1)
        published = published.replace("## Summary\n\n", f"## Summary\n\n{EVIL}\n\n", 1)
        postmortems.import_markdown(store, manifest, published, actor="ana")
        postmortems.record_read(store, other["id"], person=SCRIPT)
        yield client, {"ref": ref, "other": other["id"], "signal": signal_id, "question": question}


PAGES = ["/incidents", "/incidents?status=all", "/incidents/{ref}", "/incidents/{other}", "/signals",
         "/signals/{signal}", "/flags", "/actions", "/insights", "/postmortems", "/postmortems/{ref}",
         "/postmortems/{ref}/edit", "/postmortems/{other}", "/postmortems/{ref}/export.html",
         "/postmortems/{other}/export.html"]


def test_every_page_shows_the_payloads_as_text(poisoned: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = poisoned
    for template in PAGES:
        path = template.format(**ids)
        page = client.get(path)
        assert page.status_code == 200, f"{path}: {page.status_code}"
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"] or \
            "default-src 'none'" in page.headers["content-security-policy"]
        assert_inert(page.text, path, shows_payload=path != "/insights")
    # Pages without the payload itself still carry escaped names and titles.
    for path in ("/monitors", "/admin"):
        page = client.get(path)
        assert page.status_code == 200
        assert_inert(page.text, path, shows_payload=False)
    # The odd feature name is an option in the filters, escaped.
    signals = client.get("/signals").text
    assert "&lt;i&gt;evil-feature&lt;/i&gt;" in signals and "<i>evil" not in signals


def test_specific_places(poisoned: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = poisoned
    detail = client.get(f"/incidents/{ids['ref']}").text
    # The title, the note, the status update, the signal summary, the evidence events' input and output.
    assert detail.count(ESCAPED_SCRIPT) >= 8
    assert 'class="event-input">' + ESCAPED_SCRIPT in detail and 'class="event-output">' + ESCAPED_SCRIPT in detail
    editor = client.get(f"/postmortems/{ids['ref']}/edit").text
    # The textarea holds the text, closing tag included, escaped: nothing after it becomes markup.
    inside = re.search(r'<textarea class="markdown"[^>]*>(.*?)</textarea>', editor, re.S).group(1)
    assert "&lt;/textarea&gt;" + ESCAPED_SCRIPT in inside
    view = client.get(f"/postmortems/{ids['other']}").text
    # The Markdown link to javascript: is not a link.
    assert "[click me](javascript:alert(3))" in view and 'href="javascript' not in view
    assert ESCAPED_SCRIPT in view  # the reader named <script>...
    library = client.get("/postmortems").text
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in library  # ... and the participant named <img ...>


def test_partials_rendered_for_htmx(poisoned: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = poisoned
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/flags").text).group(1)
    hx = {"hx-request": "true", "x-csrf-token": csrf}
    lint = client.post(f"/postmortems/{ids['ref']}/lint", data={"markdown": f"{EVIL}\n"}, headers=hx)
    assert lint.status_code == 200
    assert_inert(lint.text, "lint panel", shows_payload=False)
    answer = client.post(f"/incidents/{ids['ref']}/diagnosis/{ids['question']}", data={"answer": EVIL}, headers=hx)
    assert answer.status_code == 200 and answer.text.lstrip().startswith("<li")
    assert_inert(answer.text, "diagnosis answer")


def test_exports_keep_the_text_inert(poisoned: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = poisoned
    md = client.get(f"/postmortems/{ids['ref']}/export.md")
    # Markdown is text: served as text (never sniffed as HTML), the payload verbatim for the repository.
    assert md.headers["content-type"].startswith("text/markdown") and md.headers["x-content-type-options"] == "nosniff"
    assert "attachment" in md.headers["content-disposition"] and EVIL in md.text
    html = client.get(f"/postmortems/{ids['other']}/export.html")
    assert html.headers["content-security-policy"].startswith("default-src 'none'")
    assert_inert(html.text, "HTML export")
    pdf = client.get(f"/postmortems/{ids['ref']}/export.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    flat = " ".join(text.split())
    assert "alert(1)" in flat and "{{7*7}}" in flat and "1343433" not in flat
    # JSON: the exact text, as data.
    api = client.get(f"/api/v1/incidents/{ids['ref']}")
    assert api.headers["content-type"] == "application/json" and api.json()["title"] == EVIL
    assert client.get(f"/api/v1/postmortems/{ids['ref']}").json()["markdown"].count(SCRIPT) >= 2
    insights = client.get("/api/v1/insights").json()
    assert any(a["title"] == EVIL for a in insights["actions"]["overdue_items"]) or insights["actions"]["open"] >= 1


def test_form_errors_echo_input_escaped(poisoned: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = poisoned
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/flags").text).group(1)
    bad = client.post(f"/incidents/{ids['ref']}/actions", data={"title": EVIL, "kind": "monitoring", "owner": "bo",
                                                                 "due": EVIL, "csrf_token": csrf})
    assert bad.status_code == 422 and 'data-field="due"' in bad.text
    assert_inert(bad.text, "action form error")
    search = client.get("/postmortems", params={"q": EVIL, "category": SCRIPT})
    assert search.status_code == 422
    assert_inert(search.text, "library search with a bad filter")
    login = client.get("/login", params={"next": "javascript:alert(1)"})
    assert 'value="/"' in login.text
