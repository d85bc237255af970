"""Insights: MTTD / MTTC / MTTR from incident milestones, recurrences, growth, postmortem timeliness,
overdue actions and read coverage — computed once and shown by the CLI, the API, the page and its
SVG charts (labels escaped)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.insights import compute
from hotwash.insights.charts import bar_chart, charts_for, line_chart, meter_chart, nice_ticks, ticks_for
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.web import create_app

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def add_incident(store: Store, *, category: str, feature: str, detected: datetime, started: datetime | None = None,
                 contained: datetime | None = None, mitigated: datetime | None = None,
                 closed: datetime | None = None, title: str = "t") -> int:
    values = {"title": title, "category": category, "severity": "SEV2", "status": "closed" if closed else "mitigated"
              if mitigated else "contained" if contained else "detected", "feature": feature, "features": [feature],
              "lead": "ana", "opened_by": "ana", "opened_at": detected, "started_at": started, "detected_at": detected,
              "contained_at": contained, "mitigated_at": mitigated, "closed_at": closed}
    with store.transaction() as conn:
        return store.insert_incident(conn, values=values)["id"]


def add_postmortem(store: Store, incident: int, *, due: datetime, published: datetime | None, title: str) -> int:
    row, _ = store.create_postmortem(values={
        "incident_id": incident, "status": "published" if published else "draft", "title": title, "markdown": "# x",
        "author": "ana", "lead": "ana", "category": "hallucination", "feature": "support-bot", "severity": "SEV2",
        "due_at": due, "created_at": due - timedelta(days=7), "updated_at": due - timedelta(days=7),
        "published_at": published, "accepted": None, "version": 1})
    return row["id"]


def add_action(store: Store, incident: int, *, due: datetime, status: str, owner: str) -> None:
    store.add_action(values={"incident_id": incident, "title": f"fix {owner}", "kind": "monitoring", "owner": owner,
                             "due_at": due, "status": status, "created_at": T0, "updated_at": T0})


@pytest.fixture
def history(store: Store) -> dict[str, Any]:
    """Three incidents, two postmortems published (on time, late) and one overdue, reads, actions, growth."""
    a = add_incident(store, category="hallucination", feature="support-bot", started=T0,
                     detected=T0 + timedelta(minutes=10), contained=T0 + timedelta(minutes=40),
                     mitigated=T0 + timedelta(hours=2, minutes=10), closed=T0 + timedelta(days=2, minutes=10))
    # 45 days later, same feature and category: a recurrence. Never contained, mitigated after an hour.
    b_at = T0 + timedelta(days=45, minutes=20)
    b = add_incident(store, category="hallucination", feature="support-bot", started=T0 + timedelta(days=45),
                     detected=b_at, mitigated=b_at + timedelta(hours=1))
    c = add_incident(store, category="runaway_cost", feature="agent", detected=T0 + timedelta(days=50),
                     title='<script>alert("x")</script>')
    # Same feature, other category: not a recurrence.
    add_incident(store, category="drift", feature="support-bot", detected=T0 + timedelta(days=51))

    pa = add_postmortem(store, a, due=T0 + timedelta(days=7), published=T0 + timedelta(days=5), title="A")
    pb = add_postmortem(store, b, due=b_at + timedelta(days=7), published=b_at + timedelta(days=10), title="B <b>")
    add_postmortem(store, c, due=T0 + timedelta(days=57), published=None, title="C")
    for name in ("ana", "bo", "cy"):
        store.upsert_user(name=name, role="viewer", password_hash=None, now=T0)
    for pm, person in ((pa, "ana"), (pa, "bo"), (pa, "dee"), (pb, "ana")):
        store.record_read(postmortem_id=pm, person=person, now=NOW)

    add_action(store, a, due=datetime(2026, 11, 20, tzinfo=UTC), status="open", owner="bo")
    add_action(store, b, due=datetime(2026, 11, 30, tzinfo=UTC), status="open", owner="bo")
    add_action(store, b, due=datetime(2026, 12, 1, tzinfo=UTC), status="open", owner="ana")  # due today: not late
    add_action(store, a, due=datetime(2026, 10, 5, tzinfo=UTC), status="done", owner="cy")

    for i, day in enumerate((2, 3, 46)):
        store.index_eval_case(id=f"case-{i}", incident_id=a, feature="support-bot", category="hallucination",
                              path=f"evals/case-{i}.yaml", digest="0" * 64, now=T0 + timedelta(days=day))
    store.add_stored_monitor(name="grounding-tight", incident_id=a, feature="support-bot",
                             rule={"metric": "x"}, now=T0 + timedelta(days=3))
    return {"a": a, "b": b, "c": c, "pa": pa, "pb": pb}


def test_numbers(store: Store, history: dict[str, Any]) -> None:
    data = compute(store, now=NOW)
    inc = data["incidents"]
    assert inc["total"] == 4 and inc["open"] == 3
    assert inc["by_category"] == {"hallucination": 2, "prompt_injection": 0, "drift": 1, "runaway_cost": 1,
                                  "escalation_overload": 0, "scope_creep": 0}
    weeks = {w["week"]: w["counts"] for w in inc["weekly"]}
    assert weeks["2026-09-28"]["hallucination"] == 1  # Thursday 1 October is in the week of Monday 28 September
    assert weeks["2026-11-09"]["hallucination"] == 1  # Sunday 15 November
    assert weeks["2026-11-16"] == {**dict.fromkeys(weeks["2026-11-16"], 0), "runaway_cost": 1, "drift": 1}
    assert inc["weekly"][-1]["week"] == "2026-11-30" and len(inc["weekly"]) == 10  # quiet weeks show as zero

    resp = data["response"]
    # detect: 600 s and 1200 s; contain: 1800 s (B never contained); resolve: A closed after 2 days, B mitigated 1 h.
    assert resp["overall"]["detect"] == {"n": 2, "mean_s": 900.0, "median_s": 900.0}
    assert resp["overall"]["contain"] == {"n": 1, "mean_s": 1800.0, "median_s": 1800.0}
    assert resp["overall"]["resolve"] == {"n": 2, "mean_s": (172800 + 3600) / 2, "median_s": (172800 + 3600) / 2}
    assert (resp["mttd_s"], resp["mttc_s"], resp["mttr_s"]) == (900.0, 1800.0, 88200.0)
    months = {m["month"]: m for m in resp["monthly"]}
    assert months["2026-10"]["detect"]["median_s"] == 600.0 and months["2026-11"]["detect"]["median_s"] == 1200.0
    assert months["2026-11"]["contain"]["n"] == 0

    rec = data["recurrences"]
    assert rec["count"] == 1 and rec["window_days"] == 90
    assert rec["items"] == [{"incident": f"INC-{history['b']}", "previous": f"INC-{history['a']}",
                             "feature": "support-bot", "category": "hallucination", "days_apart": 45.0,
                             "month": "2026-11"}]

    growth = data["growth"]
    assert (growth["eval_cases"], growth["monitors"]) == (3, 1)
    by_week = {w["week"]: (w["eval_cases"], w["monitors"]) for w in growth["weekly"]}
    assert by_week["2026-09-28"] == (2, 1) and by_week["2026-11-09"] == (2, 1) and by_week["2026-11-16"] == (3, 1)

    pms = data["postmortems"]
    assert {k: pms[k] for k in ("total", "published", "on_time", "late", "overdue", "pending")} == {
        "total": 3, "published": 2, "on_time": 1, "late": 1, "overdue": 1, "pending": 0}

    acts = data["actions"]
    assert (acts["open"], acts["overdue"], acts["done"]) == (3, 2, 1)
    assert acts["overdue_by_owner"] == {"bo": 2}
    assert [a["days_overdue"] for a in acts["overdue_items"]] == [11, 1]

    reads = data["reads"]
    # The audience: people with a login (ana, bo, cy) and past readers (dee). A: read by 3 of 4; B: 1 of 4.
    assert (reads["people"], reads["published"], reads["reads"]) == (4, 2, 4)
    assert reads["coverage"] == 0.5
    assert [(p["reads"], p["audience"], p["not_read_by"]) for p in reads["per_postmortem"]] == [
        (3, 4, ["cy"]), (1, 4, ["bo", "cy", "dee"])]


def test_empty_store(store: Store) -> None:
    data = compute(store, now=NOW)
    assert data["incidents"]["total"] == 0 and data["incidents"]["weekly"] == []
    assert data["response"]["mttd_s"] is None and data["reads"]["coverage"] is None
    for svg in charts_for(data).values():
        root = parse(str(svg))
        assert "no data yet" in "".join(root.itertext())


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def test_charts_are_valid_svg_with_the_values_and_escaped_labels() -> None:
    svg = bar_chart("Per <week>", ["w1", "<img src=x onerror=alert(1)>"], {"hallucination": [2, 1],
                                                                           "drift": [0, 3]})
    root = parse(str(svg))
    bars = [(r.get("data-series"), float(r.get("data-value"))) for r in root.iter(f"{SVG}rect")
            if r.get("class") == "bar"]
    assert bars == [("hallucination", 2.0), ("hallucination", 1.0), ("drift", 3.0)]
    assert "<img" not in str(svg) and "&lt;img src=x onerror=alert(1)&gt;" in str(svg)
    assert root.find(f"{SVG}title").text == "Per <week>"  # escaped in the markup, the text itself when parsed
    # Stacked: the second label's bars are on top of each other, the total 4 under the top tick.
    heights = [float(r.get("height")) for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert heights[1] / heights[2] == pytest.approx(1 / 3, rel=1e-2)

    line = parse(str(line_chart("growth", ["a", "b", "c"], {"eval_cases": [1, None, 3]})))
    points = [float(c.get("data-value")) for c in line.iter(f"{SVG}circle")]
    assert points == [1.0, 3.0] and len(list(line.iter(f"{SVG}polyline"))) == 2  # the gap breaks the line

    meter = parse(str(meter_chart("reads", [("A", 3, 4), ('"><script>', 0, 3)])))
    assert [(float(r.get("data-value")), float(r.get("data-of"))) for r in meter.iter(f"{SVG}rect")
            if r.get("class") == "meter"] == [(3.0, 4.0), (0.0, 3.0)]
    assert nice_ticks(7) == [0, 2, 4, 6, 8] and nice_ticks(0.3)[-1] >= 0.3
    assert ticks_for(7 * 86400 + 300, "s") == [0, 2 * 86400, 4 * 86400, 6 * 86400, 8 * 86400]  # whole days
    assert ticks_for(5400, "s") == [0, 1800, 3600, 5400]


def test_cli_api_and_page_show_the_same_numbers(store: Store, history: dict[str, Any], workspace: Path,
                                               tmp_path: Path, db_url: str) -> None:
    result = CliRunner().invoke(cli_app, ["insights", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cli = orjson.loads(result.stdout)
    assert cli["recurrences"]["count"] == 1 and cli["actions"]["open"] == 3
    assert cli["response"]["mttd_s"] == 900.0 and cli["reads"]["coverage"] == 0.5
    human = CliRunner().invoke(cli_app, ["insights"], catch_exceptions=False)
    assert "incidents: 4 (3 open)" in human.stdout and "mean time to detect 15.0 min" in human.stdout

    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, admin_token="adm")
    with TestClient(create_app(settings, store=store)) as c:
        assert c.get("/api/v1/insights").status_code == 401  # people exist: no more open access
        c.headers["authorization"] = "Bearer adm"
        api = c.get("/api/v1/insights").json()
        assert api["response"] == cli["response"] and api["recurrences"] == cli["recurrences"]
        assert api["incidents"]["by_category"] == cli["incidents"]["by_category"]
        page = c.get("/insights")
        assert page.status_code == 200
        assert page.text.count("<svg") == 7 and 'id="chart-incidents"' in page.text
        assert 'id="stat-mttd">15.0 min<' in page.text and 'id="stat-recurrences">1<' in page.text
        assert "<b>" not in page.text and "B &lt;b&gt;" in page.text
