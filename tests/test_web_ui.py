"""The web UI through the real app (in-process), on both databases: every page renders, each form does
what it says and validates server-side (the message next to the field), roles hide buttons and refuse
POSTs, the postmortem editor lints live, the library records reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotwash.detect.engine import Signal, save
from hotwash.incidents import service as incidents
from hotwash.manifest import Manifest, load_manifest
from hotwash.settings import Settings, get_settings
from hotwash.store import Store
from hotwash.web import create_app
from hotwash.web.auth import add_user

MANIFEST = """\
features:
  support-bot:
    owner: support-ai
    containment: {fallback: human, rollback_to: {prompt_version: v11}}
  agent: {}
"""
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def field_error(html: str, field: str) -> str:
    """The message shown next to ``field`` (``data-field`` marks it on the incident page)."""
    found = re.search(rf'<div class="field-error"[^>]*data-field="{re.escape(field)}"[^>]*>([^<]*)</div>', html)
    assert found, f"no error shown next to {field}"
    return found.group(1)


@pytest.fixture
def ui_settings(tmp_path: Path, db_url: str) -> Settings:
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    return get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=tmp_path / "hotwash.yaml")


@pytest.fixture
def manifest(ui_settings: Settings) -> Manifest:
    return load_manifest(ui_settings.manifest)


@pytest.fixture
def ui(store: Store, ui_settings: Settings) -> Iterator[TestClient]:
    """An install with no people yet: the UI is served as ``local`` (admin)."""
    with TestClient(create_app(ui_settings, store=store)) as c:
        c.csrf = csrf_of(c.get("/flags").text)  # type: ignore[attr-defined]
        yield c


def post(c: TestClient, path: str, **data: str):
    return c.post(path, data={**data, "csrf_token": c.csrf}, follow_redirects=False)  # type: ignore[attr-defined]


def with_signal(store: Store, manifest: Manifest, *, title: str = "support bot invents refunds") -> dict:
    rows = [{"id": f"e{i}", "ts": T0 + timedelta(seconds=i), "feature": "support-bot", "ingested_at": T0,
             "cost_source": "reported", "input": f"question {i}", "output": f"answer {i}"} for i in range(3)]
    with store.transaction() as conn:
        store.insert_events(conn, rows)
    save(store, [Signal(monitor="hallucination.rate", category="hallucination", feature="support-bot",
                        severity="SEV2", start=T0, detected_at=T0 + timedelta(minutes=4), evidence=["e0", "e1", "e2"],
                        summary="hallucination rate 40% over 30 min")])
    return incidents.open_incident(store, manifest, title=title, category="hallucination", severity="SEV2",
                                   features=["support-bot"], actor="ana", lead="ana",
                                   signal_ids=[store.list_signals()[0]["id"]])


def test_pages_render_and_home_goes_to_incidents(ui: TestClient, store: Store, manifest: Manifest) -> None:
    inc = with_signal(store, manifest)
    assert ui.get("/", follow_redirects=False).headers["location"] == "/incidents"
    for path in ("/incidents", f"/incidents/{inc['id']}", "/signals", "/signals/1", "/monitors", "/flags",
                 "/actions", "/postmortems", "/insights", "/admin", "/login"):
        page = ui.get(path)
        assert page.status_code == 200, path
        assert '<script src="/static/htmx.min.js" defer></script>' in page.text
    assert ui.get("/static/htmx.min.js").text.startswith("var htmx=")
    assert ui.get("/incidents/INC-999").status_code == 404
    assert "no incident" in ui.get("/incidents/nonsense").text
    assert ui.get("/signals/999").status_code == 404
    monitors = ui.get("/monitors").text
    assert "<code>hallucination.rate</code>" in monitors and "support-bot" in monitors


def test_incident_list_filters_and_open_form(ui: TestClient, store: Store, manifest: Manifest) -> None:
    with_signal(store, manifest)
    incidents.open_incident(store, manifest, title="agent loops", category="runaway_cost", severity="SEV3",
                            features=["agent"], actor="bo")
    listed = ui.get("/incidents").text
    assert "support bot invents refunds" in listed and "agent loops" in listed
    only = ui.get("/incidents", params={"category": "runaway_cost"}).text
    assert "agent loops" in only and "support bot invents refunds" not in only
    assert "agent loops" not in ui.get("/incidents", params={"feature": "support-bot"}).text
    assert "No incidents match" in ui.get("/incidents", params={"status": "closed"}).text
    bad = ui.get("/incidents", params={"status": "sleeping"})
    assert bad.status_code == 422 and "unknown status" in bad.text

    missing = post(ui, "/incidents", title="", category="drift", severity="SEV3", features="support-bot")
    assert missing.status_code == 422 and "title must be" in missing.text
    assert 'value="support-bot"' in missing.text  # what was typed is kept
    made = post(ui, "/incidents", title="quality slid", category="drift", severity="SEV4",
                features="support-bot, agent", lead="cy")
    assert made.status_code == 303
    inc = incidents.get_incident(store, made.headers["location"].rsplit("/", 1)[1])
    assert (inc["title"], inc["features"], inc["lead"], inc["opened_by"]) == (
        "quality slid", ["support-bot", "agent"], "cy", "local")


def test_run_the_playbook_from_the_incident_page(ui: TestClient, store: Store, manifest: Manifest) -> None:
    inc = with_signal(store, manifest)
    ref = inc["id"]
    page = ui.get(f"/incidents/{ref}").text
    # Signals with their evidence events; one containment button per mode.
    assert "hallucination rate 40% over 30 min" in page and 'class="event-input">question 0<' in page
    assert [m for m in re.findall(r'data-mode="(\w+)"', page)] == ["disabled", "human", "rollback", "throttle",
                                                                   "enabled"]

    # Throttle with no rate (the manifest declares none): the message is next to the rate field.
    throttle = post(ui, f"/incidents/{ref}/contain", mode="throttle")
    assert throttle.status_code == 422 and "throttle of support-bot needs a cap" in field_error(
        throttle.text, "params.rate_per_s")
    assert post(ui, f"/incidents/{ref}/contain", mode="throttle", rate_per_s="fast").status_code == 422

    done = post(ui, f"/incidents/{ref}/contain", mode="human", reason="route to people")
    assert done.status_code == 303 and done.headers["location"] == f"/incidents/{ref}#contain"
    inc = incidents.get_incident(store, ref)
    assert inc["status"] == "contained" and inc["containment"]["mode"] == "human"
    assert store.get_flag_row("support-bot")["mode"] == "human"
    assert 'data-flag="support-bot">support-bot: <span class="badge mode-human">' in ui.get(f"/incidents/{ref}").text

    bad = post(ui, f"/incidents/{ref}/update", audience="everyone", what_happened="x", version=str(inc["version"]))
    assert bad.status_code == 422 and "unknown audience" in field_error(bad.text, "audience")
    stale = post(ui, f"/incidents/{ref}/update", audience="internal", what_happened="x", version="1")
    assert stale.status_code == 409 and "changed since you read it" in stale.text
    ok = post(ui, f"/incidents/{ref}/update", audience="internal", what_happened="Answers cite no source",
              version=str(inc["version"]))
    assert ok.status_code == 303
    inc = incidents.get_incident(store, ref)
    assert inc["status"] == "communicated"
    assert any(e["kind"] == "status_update" and "Answers cite no source" in e["text"] for e in inc["timeline"])

    note = post(ui, f"/incidents/{ref}/note", text="  ")
    assert note.status_code == 422 and "text must not be empty" in field_error(note.text, "text")
    assert post(ui, f"/incidents/{ref}/note", text="looking at retrieval").status_code == 303

    # The diagnosis checklist: a person's answer replaces the pre-filled one; htmx gets just that item.
    question = inc["diagnosis"][0]["question"]
    empty = post(ui, f"/incidents/{ref}/diagnosis/{question}", answer="")
    assert empty.status_code == 422 and "the answer is empty" in empty.text
    hx = ui.post(f"/incidents/{ref}/diagnosis/{question}", data={"answer": "retrieval returned nothing"},
                 headers={"hx-request": "true", "x-csrf-token": ui.csrf})  # type: ignore[attr-defined]
    assert hx.status_code == 200 and hx.text.lstrip().startswith(f'<li class="diagnosis-item card" id="q-{question}"')
    assert "retrieval returned nothing" in hx.text and "answered by local" in hx.text

    assert post(ui, f"/incidents/{ref}/step", event="diagnose", version=str(
        incidents.get_incident(store, ref)["version"])).status_code == 303
    nolink = post(ui, f"/incidents/{ref}/mitigate", description="pinned prompt v11", link="")
    assert nolink.status_code == 422 and "link must not be empty" in field_error(nolink.text, "link")
    assert post(ui, f"/incidents/{ref}/mitigate", description="pinned prompt v11",
                link="https://git.example/pr/7").status_code == 303
    illegal = post(ui, f"/incidents/{ref}/step", event="close")
    assert illegal.status_code == 409 and "mitigated" in illegal.text
    assert post(ui, f"/incidents/{ref}/step", event="teleport").status_code == 422
    assert incidents.get_incident(store, ref)["status"] == "mitigated"
    lead = post(ui, f"/incidents/{ref}/lead", lead="bo")
    assert lead.status_code == 303 and incidents.get_incident(store, ref)["lead"] == "bo"


def test_actions_board_overdue_first(ui: TestClient, store: Store, manifest: Manifest) -> None:
    ref = with_signal(store, manifest)["id"]
    bad = post(ui, f"/incidents/{ref}/actions", title="add cases", kind="regression_case", owner="tbd",
               due="2099-01-01")
    assert bad.status_code == 422 and "placeholder" in field_error(bad.text, "owner")
    past = post(ui, f"/incidents/{ref}/actions", title="x", kind="monitoring", owner="bo", due="2001-01-01")
    assert past.status_code == 422 and "in the past" in field_error(past.text, "due")
    assert post(ui, f"/incidents/{ref}/actions", title="later one", kind="monitoring", owner="bo",
                due="2099-01-01").status_code == 303
    # An action that is already late (stored directly: the form refuses past due dates).
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    late = store.add_action(values={"incident_id": 1, "title": "late one", "kind": "guardrail", "owner": "cy",
                                    "due_at": midnight - timedelta(days=3), "status": "open", "created_at": now,
                                    "updated_at": now})
    board = ui.get("/actions").text
    assert board.index("late one") < board.index("later one")
    assert f'<tr id="action-{late["id"]}" class="overdue"' in board and "overdue 3d" in board

    nodefer = post(ui, f"/actions/{late['id']}/defer", reason=" ")
    assert nodefer.status_code == 422 and "needs a reason" in nodefer.text
    assert post(ui, f"/actions/{late['id']}/defer", reason="covered by the guardrail epic").status_code == 303
    assert store.get_action(late["id"])["status"] == "deferred"
    again = post(ui, f"/actions/{late['id']}/done")
    assert again.status_code == 409 and "already deferred" in again.text
    assert post(ui, f"/actions/{late['id']}/reopen").status_code == 303
    assert post(ui, f"/actions/{late['id']}/done").status_code == 303
    assert ui.get("/actions", params={"status": "done"}).text.count('data-action="') == 1
    assert "later one" not in ui.get("/actions", params={"owner": "cy"}).text


def test_postmortem_editor_lint_and_library(ui: TestClient, store: Store, manifest: Manifest) -> None:
    ref = with_signal(store, manifest)["id"]
    drafted = post(ui, f"/incidents/{ref}/postmortem")
    assert drafted.status_code == 303 and drafted.headers["location"] == f"/postmortems/{ref}/edit"
    editor = ui.get(f"/postmortems/{ref}/edit").text
    assert 'hx-post="/postmortems/INC-1/lint"' in editor and "not ready" in editor
    text = re.search(r'<textarea class="markdown"[^>]*>(.*?)</textarea>', editor, re.S).group(1)
    import html as htmllib

    markdown = htmllib.unescape(text)
    assert markdown.startswith("---\nincident: INC-1\n")

    # Live lint of unsaved text: the blaming sentence is found, with a suggestion.
    blaming = markdown.replace("## Summary\n\n", "## Summary\n\nAna deployed a bad prompt.\n\n", 1)
    panel = post(ui, f"/postmortems/{ref}/lint", markdown=blaming)
    assert panel.status_code == 200 and 'id="lint-panel"' in panel.text
    assert "“Ana deployed a bad prompt.”" in panel.text and "Try:" in panel.text
    broken = post(ui, f"/postmortems/{ref}/lint", markdown="no front matter")
    assert broken.status_code == 200 and "line 1" in broken.text

    complete = _complete(markdown)
    saved = post(ui, f"/postmortems/{ref}/edit", markdown=complete, version="1")
    assert saved.status_code == 303
    stale = post(ui, f"/postmortems/{ref}/edit", markdown=complete, version="1")
    assert stale.status_code == 409 and "version" in stale.text
    malformed = post(ui, f"/postmortems/{ref}/edit", markdown="---\nnope\n", version="2")
    assert malformed.status_code == 422 and 'id="error-markdown"' in malformed.text

    view = ui.get(f"/postmortems/{ref}").text
    assert 'id="submit-review"' in view and "Complete, and nothing blames a person." in view
    assert post(ui, f"/postmortems/{ref}/submit").status_code == 303
    assert post(ui, f"/postmortems/{ref}/publish").status_code == 303
    view = ui.get(f"/postmortems/{ref}").text
    assert 'id="mark-read"' in view and "Not yet read by: ana" in view
    assert post(ui, f"/postmortems/{ref}/read").status_code == 303
    view = ui.get(f"/postmortems/{ref}").text
    assert "You read this." in view and "local" in view and 'id="mark-read"' not in view

    library = ui.get("/postmortems").text
    assert f'data-incident="{ref}"' in library and "1 read" in library and "support-ai: 1" in library
    assert f'data-incident="{ref}"' in ui.get("/postmortems", params={"q": "retrieval"}).text
    assert f'data-incident="{ref}"' not in ui.get("/postmortems", params={"q": "kubernetes"}).text
    assert f'data-incident="{ref}"' not in ui.get("/postmortems", params={"category": "drift"}).text
    bad = ui.get("/postmortems", params={"since": "yesterday"})
    assert bad.status_code == 422 and "not a date" in bad.text
    assert ui.get(f"/postmortems/{ref}/export.md").text.startswith("---\nincident: INC-1\n")
    assert ui.get(f"/postmortems/{ref}/export.docx").status_code == 422


def _complete(markdown: str) -> str:
    """The draft with its TODO placeholders written."""
    lines = []
    for line in markdown.splitlines():
        if line.strip().startswith("TODO:"):
            line = ("The retrieval index served no documents for refund questions, and the prompt let the model "
                    "answer without a source.")
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_flags_page_sets_modes_with_errors_next_to_the_field(ui: TestClient, store: Store) -> None:
    page = ui.get("/flags").text
    assert 'data-feature="support-bot"' in page and 'data-feature="agent"' in page
    nope = post(ui, "/flags/agent", mode="rollback")
    assert nope.status_code == 422 and "rollback of agent needs the version to pin" in nope.text
    rate = post(ui, "/flags/agent", mode="throttle", rate_per_s="-1")
    assert rate.status_code == 422 and "must be a positive number" in rate.text
    ok = post(ui, "/flags/agent", mode="throttle", rate_per_s="2.5", reason="cost spike")
    assert ok.status_code == 303
    row = store.get_flag_row("agent")
    assert (row["mode"], row["params"], row["reason"], row["updated_by"]) == ("throttle", {"rate_per_s": 2.5},
                                                                              "cost spike", "local")
    stale = post(ui, "/flags/agent", mode="enabled", version="0")
    assert stale.status_code == 409 and store.get_flag_row("agent")["mode"] == "throttle"


def test_signals_page_filters(ui: TestClient, store: Store, manifest: Manifest) -> None:
    with_signal(store, manifest)
    page = ui.get("/signals").text
    assert "hallucination rate 40% over 30 min" in page and '<a href="/incidents/INC-1">INC-1</a>' in page
    assert "No signals match" in ui.get("/signals", params={"category": "drift"}).text
    detail = ui.get("/signals/1").text
    assert "Evidence (3 events)" in detail and "answer 2" in detail


def test_viewers_read_but_see_no_buttons_and_cannot_change(store: Store, ui_settings: Settings,
                                                           manifest: Manifest) -> None:
    ref = with_signal(store, manifest)["id"]
    add_user(store, name="vic", role="viewer", password="viewer-password")
    with TestClient(create_app(ui_settings, store=store)) as c:
        page = c.get("/login")
        c.post("/login", data={"name": "vic", "password": "viewer-password", "csrf_token": csrf_of(page.text)})
        detail = c.get(f"/incidents/{ref}").text
        assert "support bot invents refunds" in detail
        for marker in ("data-mode=", 'action="/incidents/INC-1/update"', 'data-step=', 'action="/incidents/INC-1/note"',
                       "Save answer", 'id="draft-postmortem"'):
            assert marker not in detail, marker
        token = csrf_of(detail)  # the logout form
        refused = c.post(f"/incidents/{ref}/contain", data={"mode": "disabled", "csrf_token": token},
                         follow_redirects=False)
        assert refused.status_code == 403 and "this needs responder" in refused.text
        assert incidents.get_incident(store, ref)["status"] == "detected"
        # Without a session at all: to the login page (pages), 401 (API) — never a 500.
        c.cookies.clear()
        assert c.post(f"/incidents/{ref}/contain", data={"mode": "disabled"},
                      follow_redirects=False).headers["location"].startswith("/login")
        assert c.get("/api/v1/incidents").status_code == 401
        assert c.get("/api/v1/incidents", headers={"authorization": "Bearer wrong"}).status_code == 401


def test_a_reviewer_accepts_a_lint_false_alarm(ui: TestClient, store: Store, manifest: Manifest) -> None:
    ref = with_signal(store, manifest)["id"]
    post(ui, f"/incidents/{ref}/postmortem")
    import html as htmllib

    editor = ui.get(f"/postmortems/{ref}/edit").text
    markdown = htmllib.unescape(re.search(r'<textarea class="markdown"[^>]*>(.*?)</textarea>', editor, re.S).group(1))
    # A sentence the linter reads as blame although it is not ("Bo" is a participant; the team stands by it).
    blaming = _complete(markdown).replace("## What worked\n\n", "## What worked\n\nBo forgot nothing.\n\n", 1)
    incidents.assign(store, ref, actor="ana", participants=[("Bo", "responder")])
    assert post(ui, f"/postmortems/{ref}/edit", markdown=blaming, version="1").status_code == 303
    editor = ui.get(f"/postmortems/{ref}/edit").text
    assert "“Bo forgot nothing.”" in editor and 'class="small accept"' not in editor and "review page" in editor

    view = ui.get(f"/postmortems/{ref}").text
    key = re.search(r'name="key" value="([^"]+)"', view).group(1)
    assert post(ui, f"/postmortems/{ref}/submit").status_code == 303
    held = post(ui, f"/postmortems/{ref}/publish")
    assert held.status_code == 409 and "blameless lint" in held.text
    assert post(ui, f"/postmortems/{ref}/accept", key="nonsense").status_code == 422
    assert post(ui, f"/postmortems/{ref}/accept", key=key).status_code == 303
    view = ui.get(f"/postmortems/{ref}").text
    assert "· accepted" in view and 'class="small accept"' not in view
    assert post(ui, f"/postmortems/{ref}/publish").status_code == 303
    assert store.get_postmortem(incident_id=1)["status"] == "published"
