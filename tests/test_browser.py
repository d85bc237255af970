"""The whole playbook in a real browser: Playwright driving Debian's Chromium against a live server
(uvicorn in a thread) on SQLite. Log in, open an incident, contain it, post a status update, answer a
diagnostic question (htmx), draft the postmortem and watch the live lint, publish it, record a read,
and see the insights charts — with attacker text in the data and no dialog ever opening.

Screenshots land in ``test-artifacts/screenshots/`` (gitignored) for CI to keep.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import LiveServer
from hotwash.detect.engine import Signal, save
from hotwash.incidents import service as incidents
from hotwash.manifest import load_manifest
from hotwash.settings import get_settings
from hotwash.store import open_store
from hotwash.web.auth import add_user

SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
EVIL = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3)) {{7*7}}'
MANIFEST = "features:\n  support-bot:\n    owner: support-ai\n    containment: {fallback: human}\n"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'hotwash.db'}"
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    settings = get_settings(home=tmp_path / ".hotwash", database_url=url, manifest=tmp_path / "hotwash.yaml")
    store = open_store(url, migrate=True)
    manifest = load_manifest(settings.manifest)
    rows = [{"id": f"evt-{i}", "ts": T0 + timedelta(seconds=i), "feature": "support-bot", "ingested_at": T0,
             "cost_source": "reported", "input": EVIL, "output": EVIL} for i in range(3)]
    with store.transaction() as conn:
        store.insert_events(conn, rows)
    save(store, [Signal(monitor="hallucination.rate", category="hallucination", feature="support-bot",
                        severity="SEV2", start=T0, detected_at=T0 + timedelta(minutes=4),
                        evidence=[r["id"] for r in rows], summary=EVIL)])
    inc = incidents.open_incident(store, manifest, title=EVIL, category="hallucination", severity="SEV2",
                                  features=["support-bot"], actor="hotwash", lead="ana",
                                  signal_ids=[store.list_signals()[0]["id"]])
    add_user(store, name="ana", role="responder", password=PASSWORD)
    add_user(store, name="bo", role="viewer", password=PASSWORD)
    try:
        with LiveServer(settings) as live:
            yield {"url": live.url, "store": store, "incident": inc["id"]}
    finally:
        store.dispose()


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is required for the browser tests (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.dialogs = []  # type: ignore[attr-defined]
        pg.console_errors = []  # type: ignore[attr-defined]

        def on_dialog(dialog: Any) -> None:
            pg.dialogs.append(dialog.message)  # type: ignore[attr-defined]
            dialog.dismiss()

        pg.on("dialog", on_dialog)
        pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(  # type: ignore[attr-defined]
            f"{pg.url}: {m.text} ({m.location['url']})"))
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def complete(markdown: str) -> str:
    """The draft with its TODO placeholders written as a team would."""
    filler = ("The retrieval index served no documents for refund questions, and the prompt let the model answer "
              "without a source.")
    return "\n".join(filler if line.strip().startswith("TODO:") else line for line in markdown.splitlines()) + "\n"


def test_the_playbook_in_a_browser(server: dict[str, Any], page: Page) -> None:
    base, ref, store = server["url"], server["incident"], server["store"]
    page.set_default_timeout(15_000)

    # Log in: the login page comes first, then back where we were going.
    page.goto(f"{base}/incidents")
    expect(page).to_have_url(re.compile(r"/login\?next=/incidents$"))
    page.fill("#name", "ana")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".banner.error")).to_contain_text("wrong name or password")
    page.fill("#name", "ana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/incidents")
    expect(page.locator(".whoami")).to_have_text("ana · responder")
    page.console_errors.clear()  # type: ignore[attr-defined] # the refused login's 401 is expected
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["hotwash_session"]["httpOnly"] and cookies["hotwash_session"]["sameSite"] == "Lax"
    shot(page, "01-incidents")

    # Open the incident: attacker text in its title, signal and evidence shows as text.
    page.click(f'tr[data-incident="{ref}"] td.title a')
    expect(page).to_have_url(f"{base}/incidents/{ref}")
    expect(page.locator(".incident-title")).to_have_text(EVIL)
    page.locator("details.event summary").first.click()
    expect(page.locator(".event-input").first).to_have_text(EVIL)
    shot(page, "02-incident")

    # Contain it: one click.
    page.click('button[data-mode="human"]')
    expect(page.locator('[data-flag="support-bot"] .badge')).to_have_text("human")
    expect(page.locator(".steps .current")).to_have_text("contained")

    # Post a status update.
    page.fill("#u-what_happened", "Some answers cited a refund policy that does not exist.")
    page.click("#status-update button[type=submit]")
    expect(page.locator(".steps .current")).to_have_text("communicated")
    expect(page.locator("ol.timeline li.kind-status_update").first).to_contain_text(
        "internal status update: Some answers cited")
    shot(page, "03-contained-and-communicated")

    # Answer a diagnostic question: htmx swaps just that item (works under the strict CSP).
    item = page.locator("li.diagnosis-item").first
    question = item.get_attribute("data-question")
    item.locator("textarea").fill("   ")
    item.locator("button[type=submit]").click()
    expect(page.locator(f"#q-{question} .field-error")).to_contain_text("the answer is empty")
    page.console_errors.clear()  # type: ignore[attr-defined] # the browser logs the deliberate 422
    item = page.locator(f"#q-{question}")
    item.locator("textarea").fill("Retrieval returned no documents for refund questions.")
    item.locator("button[type=submit]").click()
    answered = page.locator(f"#q-{question}")
    expect(answered.locator(".saved")).to_have_text("saved")
    expect(answered.locator(".answer")).to_have_text("Retrieval returned no documents for refund questions.")

    # Draft the postmortem; the linter flags blame as the author types.
    page.click("#draft-postmortem")
    expect(page).to_have_url(f"{base}/postmortems/{ref}/edit")
    draft = page.input_value("#markdown")
    assert draft.startswith(f"---\nincident: {ref}\n")
    blaming = draft.replace("## Summary\n\n", "## Summary\n\nAna deployed a bad prompt and forgot the evals.\n\n", 1)
    page.fill("#markdown", blaming)
    page.locator("#markdown").press("End")
    expect(page.locator("#lint-panel .finding .quote")).to_contain_text("Ana deployed a bad prompt")
    expect(page.locator("#lint-panel .missing-list")).to_contain_text("Contributing factors")
    shot(page, "04-editor-live-lint")

    page.fill("#markdown", complete(draft))
    page.locator("#markdown").press("End")
    expect(page.locator("#lint-panel .checks-summary")).to_contain_text("Complete, and nothing blames a person.")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()

    # Submit, publish.
    page.goto(f"{base}/postmortems/{ref}")
    page.click("#submit-review")
    page.click("#publish")
    expect(page.locator(".badge.status-published")).to_be_visible()
    expect(page.locator("#document h1")).to_contain_text(EVIL)

    # Record a read: the receipt shows, and who has not read it yet.
    expect(page.locator("#readers .not-read")).to_contain_text("bo")
    page.click("#mark-read")
    expect(page.locator(".read-receipt")).to_have_text("You read this.")
    expect(page.locator("#readers .not-read")).not_to_contain_text("ana")
    shot(page, "05-published-and-read")
    page.goto(f"{base}/postmortems")
    expect(page.locator(f'article[data-incident="{ref}"] .reads')).to_have_text("1 read")
    shot(page, "06-library")

    # The insights charts.
    page.goto(f"{base}/insights")
    expect(page.locator("svg.chart")).to_have_count(7)
    expect(page.locator("#chart-incidents rect.bar")).to_have_count(1)
    expect(page.locator("#stat-mttc")).not_to_have_text("—")
    shot(page, "07-insights")

    # Signals and the evidence of the attack, opened.
    page.goto(f"{base}/signals/1")
    for summary in page.locator("details.event summary").all():
        summary.click()
    expect(page.locator(".event-output").first).to_have_text(EVIL)

    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.console_errors == [], "\n".join(page.console_errors)  # type: ignore[attr-defined]
    inc = incidents.get_incident(store, ref)
    assert inc["status"] == "communicated" and inc["containment"]["by"] == "ana"
    assert [p["person"] for p in store.readers([store.get_postmortem(incident_id=inc["number"])["id"]])[1]] == ["ana"]
