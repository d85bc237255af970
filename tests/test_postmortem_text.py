"""The postmortem as text: template, canonical Markdown (exact round trip, import errors), the draft from
an incident, completeness checks, and the HTML / PDF exports (read back with pypdf)."""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA_DIR
from hotwash.errors import InvalidValue
from hotwash.postmortems import export
from hotwash.postmortems.checks import check, count_sentences, prose_words
from hotwash.postmortems.draft import draft, draft_markdown, format_duration
from hotwash.postmortems.lint import lint
from hotwash.postmortems.markdown import Action, MalformedMarkdown, Meta, Postmortem, TimelineEntry, parse, render
from hotwash.postmortems.template import ACTION_KINDS, REQUIRED_ACTION_KINDS, SECTIONS

POSTMORTEMS = DATA_DIR / "postmortems" / "dev.jsonl"
needs_data = pytest.mark.skipif(not POSTMORTEMS.exists() and not os.environ.get("CI"),
                                reason=f"shared data not found at {POSTMORTEMS}")

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ATTACK = "<script>alert(1)</script> [click](javascript:alert(1)) {{7*7}} ![px](https://evil.example/p.png)"


def incident(**changes: object) -> dict:
    """An incident dict in the shape of ``hotwash.incidents.service.get_incident``."""
    base = {
        "id": "INC-3", "number": 3, "title": "Support bot stated a refund policy that does not exist",
        "category": "hallucination", "severity": "SEV2", "status": "mitigated", "feature": "support-bot",
        "features": ["support-bot"], "lead": "ana",
        "participants": [{"person": "ana", "role": "lead"}, {"person": "bob", "role": "responder"}],
        "opened_at": T0 + timedelta(minutes=14), "started_at": T0 + timedelta(minutes=2),
        "detected_at": T0 + timedelta(minutes=14), "contained_at": T0 + timedelta(minutes=31),
        "communicated_at": T0 + timedelta(minutes=40), "diagnosed_at": None, "mitigated_at": T0 + timedelta(hours=3),
        "postmortem_at": None, "verified_at": None, "closed_at": None,
        "blast": {"events": 1234, "sessions": 310, "users": 290, "cost_usd": 12.5},
        "containment": {"mode": "rollback", "params": {"prompt_version": "v41", "model": None}, "by": "ana"},
        "mitigation": {"description": "Restored the citation requirement in prompt v43",
                       "link": "https://github.com/acme/bot/pull/77"},
        "signals": [{"id": 1, "monitor": "grounding", "category": "hallucination", "feature": "support-bot",
                     "severity": "SEV2", "start": T0 + timedelta(minutes=2), "detected_at": T0 + timedelta(minutes=14),
                     "evidence": [1, 2], "summary": "ungrounded rate 18%", "details": {}}],
        "timeline": [
            {"ts": T0 + timedelta(minutes=14), "actor": "hotwash", "kind": "opened",
             "text": "opened: SEV2 hallucination on support-bot"},
            {"ts": T0 + timedelta(minutes=31), "actor": "ana", "kind": "transition", "text": "rollback on support-bot"},
            {"ts": T0 + timedelta(minutes=35), "actor": "bob", "kind": "note",
             "text": f"customer wrote:\n## Actions\n{ATTACK} | a | b |"},
        ],
        "diagnosis": [
            {"question": "sources", "prompt": "Which sources were retrieved?", "answer": "None for 62% of answers",
             "source": "auto"},
            {"question": "prompt_change", "prompt": "Did the prompt change?", "answer": None, "source": None},
        ],
        "recurrences": [{"id": "INC-1", "title": "Bot invented a discount", "postmortem": "published",
                         "open_actions": 2}],
    }
    return {**base, **changes}


def complete_pm(**changes: object) -> Postmortem:
    """A postmortem that passes every check."""
    due = date(2026, 12, 4)
    pm = Postmortem(
        meta=Meta(incident="INC-3", title="Refund policy invented", category="hallucination", feature="support-bot",
                  severity="SEV2", due=due, author="ana", lead="ana"),
        sections={
            "Summary": "The support bot stated a refund policy that does not exist. It was rolled back after 17 min.",
            "Timeline": "All times UTC.",
            "Root cause": "The prompt lost its citation requirement in v42.",
            "Contributing factors": "No eval covered refund questions.",
            "What worked": "The grounding monitor detected it in 12 min.",
            "Actions": "",
            "Lessons learned": "Prompt changes need the same gate as code.",
        },
        timeline=(TimelineEntry("09:02", "Impact began"), TimelineEntry("09:14", "Grounding monitor fired")),
        actions=tuple(Action(kind=k, action=f"Do the {k} work", owner="ana", due=due) for k in REQUIRED_ACTION_KINDS),
    )
    return replace(pm, **changes)


# -- template ------------------------------------------------------------------------------------

def test_template_sections_and_kinds_are_the_product_contract():
    assert SECTIONS == ("Summary", "Timeline", "Root cause", "Contributing factors", "What worked", "Actions",
                        "Lessons learned")
    assert REQUIRED_ACTION_KINDS == ("regression_case", "guardrail", "monitoring", "documentation")
    assert (*REQUIRED_ACTION_KINDS, "structural") == ACTION_KINDS


# -- canonical Markdown --------------------------------------------------------------------------

def test_render_writes_the_documented_format():
    text = render(complete_pm())
    assert text.startswith("---\nincident: INC-3\ntitle: Refund policy invented\ncategory: hallucination\n")
    assert "\ndue: 2026-12-04\n---\n\n## Summary\n\n" in text
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == list(SECTIONS)
    assert "\n- 09:14 — Grounding monitor fired\n" in text
    assert "| kind | action | owner | due | status | link |\n| --- | --- | --- | --- | --- | --- |\n" in text
    assert "| monitoring | Do the monitoring work | ana | 2026-12-04 | open |  |" in text
    assert text.endswith("Prompt changes need the same gate as code.\n")


def test_round_trip_is_exact_both_ways():
    pm = complete_pm(sections={**complete_pm().sections,
                               "Root cause": "Text with a heading-like line:\n## Summary\nand code:\n```\n## x\n```"},
                     actions=(Action("guardrail", "Cap | tokens \\| per call", "bob", date(2026, 12, 1),
                                     "deferred", "https://tracker/1"),))
    text = render(pm)
    assert "\\## Summary" in text  # a body line that would read as a section is escaped...
    assert "```\n## x\n```" in text  # ...but not inside code
    assert parse(text) == pm
    assert render(parse(text)) == text


def test_constructor_normalises_to_what_render_writes():
    pm = complete_pm(timeline=(TimelineEntry(None, "2026-11-27 09:14 — split\nover lines"), TimelineEntry(None, " ")))
    assert pm.timeline == (TimelineEntry("2026-11-27 09:14", "split over lines"),)
    assert parse(render(pm)) == pm


def test_front_matter_values_that_yaml_would_retype_are_quoted():
    pm = complete_pm(meta=replace(complete_pm().meta, title="yes", author="null", lead="3: x"))
    text = render(pm)
    assert 'title: "yes"\n' in text and 'author: "null"\n' in text and 'lead: "3: x"\n' in text
    assert parse(text).meta == pm.meta


line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=40)
# Lines that the format has to escape or that change the parser's state.
tricky_line = st.sampled_from(["## Summary", "\\## Timeline", " ## x ##", "##", "```", "~~~~", "```py", "- 09:14 x",
                               "| a | b |", "---", "TODO: x", "# Title", "> quote", "    ## code?"])
tricky_cell = st.sampled_from(["a|b", "x\\", "\\|", "|", " | ", "\\\\|"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=line_text.filter(str.strip), prose=st.lists(st.one_of(line_text, tricky_line), max_size=8),
       entries=st.lists(st.tuples(st.sampled_from([None, "09:14", "2026-11-27 09:14"]), line_text), max_size=4),
       cells=st.lists(st.tuples(st.one_of(line_text, tricky_cell).filter(str.strip),
                                st.one_of(line_text, tricky_cell).filter(str.strip)), max_size=3))
def test_round_trip_property(title, prose, entries, cells):
    body = "\n".join(prose)
    try:
        pm = complete_pm(meta=replace(complete_pm().meta, title=title),
                         sections={**complete_pm().sections, "Root cause": body, "Lessons learned": body},
                         timeline=tuple(TimelineEntry(t, x) for t, x in entries),
                         actions=tuple(Action("monitoring", a, o, date(2026, 12, 4)) for a, o in cells))
        text = render(pm)
    except InvalidValue:
        return  # e.g. an unclosed code fence in the prose: refused, never written wrongly
    assert parse(text) == pm
    assert render(parse(text)) == text


@pytest.mark.parametrize(("mutate", "where", "message"), [
    # ``where``: the line number, or a text on the line the error must point at
    (lambda t: t.replace("---\n", "", 1), 1, "missing front matter"),
    (lambda t: t.replace("severity: SEV2\n", ""), 10, "missing key 'severity'"),
    (lambda t: t.replace("due: 2026-12-04", "due: 2026-13-40"), "due: 2026-13-40", "due '2026-13-40' is not a date"),
    (lambda t: t.replace("category: hallucination", "category: oops"), "category: oops", "category 'oops' is not"),
    (lambda t: t.replace("lead: ana\n", "lead: ana\nweight: 3\n"), "weight: 3", "unknown key 'weight'"),
    (lambda t: t.replace("incident: INC-3", "incident: 3"), "incident: 3", "not an incident id like INC-3"),
    (lambda t: t.replace("## What worked", "## Impact"), "## Impact", "unknown section 'Impact'"),
    (lambda t: t.replace("## Timeline", "## X").replace("## Root cause", "## Timeline")
     .replace("## X", "## Root cause"), "## Timeline", "section 'Timeline' comes after 'Root cause'"),
    (lambda t: t.replace("## Root cause", "## summary"), "## summary", "a second 'Summary' section (the first is on"),
    (lambda t: t.replace("\n## Summary", "# Title\n\n## Summary"), "# Title", "text before the first section"),
    (lambda t: t.replace("| ana | 2026-12-04 | open |  |", "| ana | 2026-12-04 |", 1), "| regression_case",
     "Actions: table row has 4 cells, expected 6"),
    (lambda t: t.replace("| monitoring |", "| alerting |"), "| alerting", "unknown action kind 'alerting'"),
    (lambda t: t.replace("| Do the guardrail work | ana |", "| Do the guardrail work |  |"), "| guardrail",
     "'Do the guardrail work' has no owner"),
    (lambda t: t.replace("| ana | 2026-12-04 | open |  |", "| ana | 4 Dec | open |  |", 1), "4 Dec",
     "due date '4 Dec' is not a date"),
    (lambda t: t.replace("| ana | 2026-12-04 | open |  |", "| ana |  | open |  |", 1), "| regression_case",
     "has no due date"),
    (lambda t: t.replace("| open |  |", "| later |  |", 1), "later", "status 'later'"),
    (lambda t: t.replace("| kind | action |", "| type | action |"), "| type", "header must be"),
    (lambda t: t.replace("- 09:14 — Grounding monitor fired", "- 09:14 — fired\n\nAfterthought."), "Afterthought",
     "Timeline: text after the entries"),
    (lambda t: t.replace("| open |  |\n\n## Lessons", "| open |  |\nNote below.\n\n## Lessons"), "Note below",
     "Actions: text after the actions table"),
    (lambda t: t.replace("## Root cause\n\n", "## Root cause\n\n```\n"), "```", "Root cause: a code block"),
])
def test_malformed_import_names_the_line_and_section(mutate, where, message):
    text = mutate(render(complete_pm()))
    with pytest.raises(MalformedMarkdown) as err:
        parse(text)
    line = where if isinstance(where, int) else next(
        n for n, row in enumerate(text.split("\n"), start=1) if row.startswith(where) or where in row)
    assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(f"line {line}: ") and message in str(err.value)
    assert isinstance(err.value, InvalidValue)  # -> HTTP 422


def test_action_row_error_points_at_that_row():
    text = render(complete_pm())
    row = text.split("\n").index("| guardrail | Do the guardrail work | ana | 2026-12-04 | open |  |") + 1
    bad = text.replace("| guardrail | Do the guardrail work | ana | 2026-12-04 | open |  |",
                       "| guardrail | Do the guardrail work | ana | 2026-12-04 |")
    with pytest.raises(MalformedMarkdown) as err:
        parse(bad)
    assert err.value.line == row and err.value.section == "Actions"
    assert str(err.value) == (f"line {row}: Actions: table row has 4 cells, expected 6 "
                              "(kind | action | owner | due | status | link)")


def test_import_accepts_a_timeline_table_and_loose_spelling():
    text = render(complete_pm()).replace(
        "- 09:02 — Impact began\n- 09:14 — Grounding monitor fired",
        "| Time | Event |\n|---|---|\n| 09:02 | Impact began |\n| 2026-11-27 09:14 | Monitor fired |").replace(
        "## Root cause", "## root CAUSE ##")
    pm = parse(text)
    assert pm.timeline == (TimelineEntry("09:02", "Impact began"), TimelineEntry("2026-11-27 09:14", "Monitor fired"))
    assert "Root cause" in pm.sections


def test_missing_sections_are_allowed_and_kept_missing():
    text = render(complete_pm(sections={"Summary": "One. Two."}, timeline=(), actions=()))
    pm = parse(text)
    assert list(pm.sections) == ["Summary"]
    assert render(pm) == text


@needs_data
def test_real_postmortems_import_with_a_located_error():
    docs = {json.loads(line)["id"]: json.loads(line)["text"] for line in POSTMORTEMS.open(encoding="utf-8")}
    moj = docs["ministryofjustice-ab6abe42d1"]  # middleman front matter: title, weight
    with pytest.raises(MalformedMarkdown) as err:
        parse(moj)
    assert err.value.line == 3 and "unknown key 'weight'" in str(err.value)
    dfds = docs["dfds-70d8f8caf6"]  # Summary, Timeline table, Contributing Factors, Lessons Learned, Action Items
    front = render(complete_pm(sections={}, timeline=(), actions=()))
    body = dfds.split("\n", 2)[2]  # drop the H1 title
    text = front + "\n" + body
    with pytest.raises(MalformedMarkdown) as err:
        parse(text)
    expected = text.split("\n").index("## Action Items") + 1
    assert err.value.line == expected and "unknown section 'Action Items'" in str(err.value)
    # Without that section the real document imports: its timeline table becomes timed entries.
    pm = parse(text.split("\n## Action Items")[0] + "\n")
    assert len(pm.timeline) == 6 and all(e.time and e.time.startswith("2019-12-04") for e in pm.timeline)
    assert set(pm.sections) == {"Summary", "Timeline", "Contributing factors", "Lessons learned"}


# -- the draft -----------------------------------------------------------------------------------

def test_draft_is_prefilled_from_the_incident():
    now = T0 + timedelta(hours=5)
    text = draft_markdown(incident(), now=now)
    pm = parse(text)
    assert render(pm) == text
    assert pm.meta == Meta(incident="INC-3", title="Support bot stated a refund policy that does not exist",
                           category="hallucination", feature="support-bot", severity="SEV2",
                           due=date(2026, 12, 4), status="draft", author=None, lead="ana")
    summary = pm.sections["Summary"]
    assert 2 <= count_sentences(summary) <= 3
    assert "grounding monitor 12 min after it began" in summary  # time to detect = detected - started
    assert "contained (rollback) 17 min after detection" in summary  # time to contain = contained - detected
    assert "1,234 events, 310 sessions and 290 users" in summary
    assert [e.time for e in pm.timeline] == ["2026-11-27 09:02", "2026-11-27 09:14", "2026-11-27 09:31",
                                             "2026-11-27 09:35"]
    assert pm.timeline[0].text == "Impact began (first affected event)"
    assert pm.timeline[2].text == "rollback on support-bot (ana)"
    assert "Which sources were retrieved? None for 62% of answers (from telemetry)" in pm.sections["Root cause"]
    assert "Did the prompt change? not answered yet" in pm.sections["Root cause"]
    assert "INC-1: Bot invented a discount (postmortem: published, 2 action(s) still open)" in \
        pm.sections["Contributing factors"]
    assert "Containment: rollback (prompt_version=v41), 17 min after detection." in pm.sections["What worked"]
    assert "Restored the citation requirement in prompt v43" in pm.sections["What worked"]
    assert [a.kind for a in pm.actions] == list(REQUIRED_ACTION_KINDS)
    assert {(a.owner, a.due, a.status) for a in pm.actions} == {("ana", date(2026, 12, 4), "open")}
    assert "cite a retrieved source" in pm.actions[1].action  # the hallucination guardrail


def test_draft_keeps_telemetry_text_as_text():
    pm = parse(draft_markdown(incident(), now=T0))
    note = pm.timeline[-1]
    assert note.text == f"customer wrote: ## Actions {ATTACK} | a | b | (bob)"  # one line, verbatim
    assert list(pm.sections) == list(SECTIONS)  # the "## Actions" inside it did not become a section


def test_draft_owner_and_due_fallbacks_and_limits():
    pm = draft(incident(lead=None, timeline=[], signals=[], containment=None, blast=None), now=T0, due_days=5,
               feature_owner="team-bots")
    assert {a.owner for a in pm.actions} == {"team-bots"}
    assert pm.meta.due == date(2026, 12, 2)
    assert {a.due for a in pm.actions} == {date(2026, 12, 2)}
    assert "Add a monitor that detects hallucination on support-bot" in pm.actions[2].action
    assert [e.text for e in pm.timeline][:3] == ["Impact began (first affected event)", "Detected", "Contained"]
    assert {a.owner for a in draft(incident(lead=None), now=T0).actions} == {"TBD"}
    with pytest.raises(InvalidValue, match="due_days must be 5-7"):
        draft(incident(), now=T0, due_days=9)


def test_draft_reads_the_api_json_shape():
    as_json = json.loads(json.dumps(incident(), default=lambda v: v.isoformat()))
    assert draft_markdown(as_json, now=T0) == draft_markdown(incident(), now=T0)


def test_draft_wording_is_blameless_and_checks_name_what_is_left():
    text = draft_markdown(incident(), now=T0 + timedelta(hours=5))
    assert lint(text, people=["ana", "bob"]) == []
    report = check(text, now=T0 + timedelta(hours=5))
    assert report.missing == ["Lessons learned"]
    assert any(p.startswith("Root cause: replace the placeholder 'TODO:") for p in report.problems)
    assert any(p.startswith("Contributing factors: replace the placeholder") for p in report.problems)
    assert not report.ok


@pytest.mark.parametrize(("delta", "text"), [(timedelta(seconds=45), "45 s"), (timedelta(minutes=12), "12 min"),
                                             (timedelta(minutes=65), "1 h 5 min"), (timedelta(hours=51), "2 d 3 h")])
def test_format_duration(delta, text):
    assert format_duration(delta) == text


# -- completeness checks -------------------------------------------------------------------------

def test_a_complete_postmortem_passes():
    report = check(complete_pm(), now=datetime(2026, 11, 28, tzinfo=UTC))
    assert (report.missing, report.problems, report.warnings) == ([], [], [])
    # 18 (Summary) + 3 (the Timeline note) + 8 + 5 + 8 + 8: entries and the Actions table are not prose
    assert report.ok and report.words == 50


@pytest.mark.parametrize(("pm", "expected"), [
    (complete_pm(sections={k: v for k, v in complete_pm().sections.items() if k != "What worked"}),
     ("missing", "What worked")),
    (complete_pm(sections={**complete_pm().sections, "Lessons learned": "TODO: later"}),
     ("missing", "Lessons learned")),
    (complete_pm(sections={**complete_pm().sections, "Summary": "Only one sentence here."}),
     ("problem", "Summary has 1 sentence; write 2-3")),
    (complete_pm(sections={**complete_pm().sections, "Summary": "One. Two. Three. Four."}),
     ("problem", "Summary has 4 sentences; write 2-3")),
    (complete_pm(timeline=(TimelineEntry(None, "sometime the alert fired"),)),
     ("problem", "Timeline: 1 of 1 entries have no time")),
    (complete_pm(timeline=()), ("problem", "Timeline has no entries")),
    (complete_pm(actions=complete_pm().actions[:3]), ("problem", "Actions: no documentation action")),
    (complete_pm(actions=(*complete_pm().actions, Action("structural", "Own the prompt", "", date(2026, 12, 4)))),
     ("problem", "'Own the prompt' has no owner")),
    (complete_pm(actions=(*complete_pm().actions, Action("structural", "Own the prompt", "TBD", date(2026, 12, 4)))),
     ("problem", "'Own the prompt' has no owner yet ('TBD')")),
    (complete_pm(actions=(*complete_pm().actions, Action("structural", "Own the prompt", "ana", None))),
     ("problem", "'Own the prompt' has no due date")),
    (complete_pm(actions=(*complete_pm().actions, Action("alerting", "Page", "ana", date(2026, 12, 4)))),
     ("problem", "'Page' has kind 'alerting'")),
    (complete_pm(actions=(*complete_pm().actions, Action("structural", "Late", "ana", date(2026, 11, 1)))),
     ("problem", "'Late' is due 2026-11-01, before today (2026-11-28)")),
    (complete_pm(meta=replace(complete_pm().meta, lead=None)), ("problem", "front matter: no lead")),
    (complete_pm(sections={**complete_pm().sections, "Root cause": "The prompt changed.\nTODO: say why"}),
     ("problem", "Root cause: replace the placeholder 'TODO: say why'")),
])
def test_each_check_reports_its_problem(pm, expected):
    report = check(pm, now=datetime(2026, 11, 28, 12, tzinfo=UTC))
    kind, text = expected
    if kind == "missing":
        assert report.missing == [text]
    else:
        assert report.missing == []
        assert len(report.problems) == 1 and text in report.problems[0], report.problems
    assert not report.ok


def test_done_actions_in_the_past_are_not_overdue_problems():
    late_done = Action("structural", "Late", "ana", date(2026, 11, 1), "done")
    assert check(complete_pm(actions=(*complete_pm().actions, late_done)), now=T0).ok


def test_one_page_warning_and_prose_count():
    long = " ".join(["word"] * 300)
    pm = complete_pm(sections={**complete_pm().sections, "Root cause": long + "\n```\n" + long + "\n```",
                               "Lessons learned": long})
    report = check(pm)
    assert report.words > 600 and report.warnings == [f"over ~600 words of prose: {report.words}"]
    assert report.ok  # a warning does not block
    assert prose_words("Two words\n```\nnot counted here\n```\nTODO: nor this") == 2


def test_check_of_text_parses_it_first():
    assert check(render(complete_pm())).ok
    with pytest.raises(MalformedMarkdown):
        check("no front matter")


@needs_data
def test_sentence_and_word_counts_on_real_summaries():
    docs = {json.loads(line)["id"]: json.loads(line)["text"] for line in POSTMORTEMS.open(encoding="utf-8")}
    summary = docs["dfds-70d8f8caf6"].split("## Summary\n")[1].split("\n## ")[0]
    assert count_sentences(summary) == 4  # two paragraphs of two sentences: over the 2-3 the template asks
    assert prose_words(docs["posthog-a80efd2108"]) > 600  # the long PostHog report is over one page
    assert prose_words(docs["ministryofjustice-c4153432bc"]) < 600


# -- exports -------------------------------------------------------------------------------------

def test_html_export_is_inert_for_attacker_text():
    pm = complete_pm(meta=replace(complete_pm().meta, title="<img src=x onerror=alert(1)> {{7*7}}"),
                     sections={**complete_pm().sections, "Root cause": ATTACK + "\n\n<b onclick=x>raw</b>"})
    page = export.to_html(pm)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page  # shown as text, not a link
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b onclick" not in page
    assert "{{7*7}}" in page and "49" not in page
    assert "default-src 'none'" in page and "img-src data:" in page  # no script, no remote image
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page
    assert "<td>monitoring</td>" in page and "<li>09:14 — Grounding monitor fired</li>" in page


def test_html_fragment_and_text_input():
    text = render(complete_pm())
    fragment = export.to_html(text, fragment=True)
    assert fragment.startswith('<article class="postmortem">') and "<html" not in fragment
    assert "<h1>INC-3: Refund policy invented</h1>" in fragment


def _pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_export_reads_back_with_headings_and_timeline():
    text = draft_markdown(incident(title="Grüße — “quotes” ✓"), now=T0)
    data = export.to_pdf(text, created=T0)
    assert data.startswith(b"%PDF-")
    content = _pdf_text(data)
    for section in SECTIONS:
        assert section in content
    assert "2026-11-27 09:31 — rollback on support-bot (ana)" in content
    assert "Grüße" in content
    assert "regression_case" in content.replace("\n", "")
    assert pypdf.PdfReader(io.BytesIO(data)).metadata.title.startswith("INC-3 postmortem")
    assert export.to_pdf(text, created=T0) == data  # same text, same date: same bytes


def test_pdf_falls_back_to_a_core_font_without_dejavu(monkeypatch, tmp_path):
    monkeypatch.setattr(export, "FONT_DIRS", (str(tmp_path),))
    monkeypatch.delenv("HOTWASH_FONT_DIR", raising=False)
    content = _pdf_text(export.to_pdf(complete_pm(meta=replace(complete_pm().meta, title="Ünïcode — ✓ 中文"))))
    assert "Summary" in content and "09:14 - Grounding monitor fired" in content
    assert "Ünïcode - ? ??" in content  # Latin-1 kept, the rest replaced rather than failing


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(line_text, tricky_line, st.sampled_from([
    "title: [a, b]", "title: *x", "due: 2026-02-30", "title: {a: 1}", "due:", "## Actions", "| a | b |",
    "|---|---|", "| kind | action | owner | due | status | link |", "- 25:00 x", "title: 'x", "## Timeline"])),
    max_size=25))
def test_parse_never_fails_other_than_with_a_located_error(lines):
    front = render(complete_pm(sections={}, timeline=(), actions=())).rstrip("\n").split("\n")
    for text in ("\n".join(lines), "\n".join([*front, *lines]), "\n".join([front[0], *lines, *front[1:]])):
        try:
            pm = parse(text)
        except MalformedMarkdown as err:
            assert 1 <= err.line <= max(1, len(text.split("\n")))
        else:
            assert parse(render(pm)) == pm


@needs_data
def test_exports_carry_a_real_document_as_section_text():
    docs = {json.loads(line)["id"]: json.loads(line)["text"] for line in POSTMORTEMS.open(encoding="utf-8")}
    real = docs["2i2c-org-54eddc0791"]  # headings, a code block, links, a list of actions
    pm = complete_pm(sections={**complete_pm().sections, "Root cause": real})
    assert parse(render(pm)) == pm  # its "## Summary" / "## Timeline" lines are escaped, not sections
    page = export.to_html(pm)
    assert page.count("<h2>Summary</h2>") == 1 and "<p>## Summary</p>" in page  # shown as the text it is
    assert "kubectl top node" in page
    content = _pdf_text(export.to_pdf(pm, created=T0))
    assert "Lessons learned" in content and "kubectl top node" in content and "09:21 PM" in content
