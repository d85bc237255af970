"""Incidents: opening by policy and by hand, attaching signals, blast radius, recurrences,
containment, status updates, mitigation, guards, participants — through the service and the CLI,
on both databases."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
import typer
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.containment.flags import get_flag
from hotwash.errors import Conflict, IllegalTransition, InvalidValue, NotFound, StaleUpdate
from hotwash.incidents import communicate, service
from hotwash.manifest import Manifest, parse_manifest
from hotwash.notify import Dispatcher, MemoryNotifier
from hotwash.store import Store
from hotwash.store.tables import actions, incidents, postmortems, proofs

T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
MANIFEST = """\
features:
  support-bot:
    containment: {fallback: human, rollback_to: {prompt_version: v11}, auto: {escalation_overload: human}}
  pricey-bot:
    containment: {throttle_rps: 2, auto: {runaway_cost: throttle}}
  no-rate-bot:
    containment: {auto: {runaway_cost: throttle}}
incidents:
  open_min_severity: SEV3
  open_on: {drift: SEV4, scope_creep: SEV1}
"""


@pytest.fixture
def manifest() -> Manifest:
    return parse_manifest(MANIFEST)


def add_events(store: Store, n: int, *, feature: str = "support-bot", start: datetime = T0,
               every: timedelta = timedelta(minutes=1), prefix: str = "e", **fields: Any) -> list[str]:
    rows = [{"id": f"{prefix}{i}", "ts": start + i * every, "feature": feature, "cost_source": "reported",
             "ingested_at": T0, "session_id": f"s{i % 4}", "user_id": f"u{i % 3}", "cost_usd": 0.25,
             "model": "gpt-4o-mini", "prompt_version": "v12", **fields} for i in range(n)]
    with store.transaction() as conn:
        store.insert_events(conn, rows)
    return [r["id"] for r in rows]


def add_signal(store: Store, *, category: str = "escalation_overload", feature: str = "support-bot",
               severity: str = "SEV2", start: datetime = T0, detected: timedelta = timedelta(minutes=10),
               monitor: str | None = None, evidence: Sequence[str] = ("e1", "e2"), summary: str = "rate 58%") -> int:
    row = {"monitor": monitor or f"{category}_rate", "category": category, "feature": feature, "severity": severity,
           "start": start, "detected_at": start + detected, "evidence": list(evidence), "summary": summary,
           "details": {}, "created_at": T0}
    (sid,) = store.save_signals([row])
    return sid


def kinds(inc: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in inc["timeline"]]


def open_one(store: Store, manifest: Manifest, **over: Any) -> dict[str, Any]:
    args = {"title": "bot answers wrong", "category": "hallucination", "severity": "SEV2",
            "features": ["support-bot"], "actor": "ana", "now": T0 + timedelta(minutes=30)} | over
    return service.open_incident(store, manifest, **args)


def walk_to(store: Store, manifest: Manifest, number: int, state: str) -> dict[str, Any]:
    path = ["contain", "communicate", "diagnose", "mitigate", "postmortem"]
    inc = service.get_incident(store, number)
    for event in path:
        if inc["status"] == state:
            break
        if event == "contain":
            inc = service.contain(store, manifest, number, mode="human", actor="ana")
        elif event == "mitigate":
            inc = service.mitigate(store, manifest, number, description="fix", link="abc1234", actor="ana")
        else:
            inc = service.step(store, manifest, number, event, actor="ana")
    assert inc["status"] == state
    return inc


# -- signals -> incidents ---------------------------------------------------------------------
def test_signals_open_by_policy_then_attach_and_are_never_attached_twice(store: Store, manifest: Manifest) -> None:
    add_events(store, 20)
    first = add_signal(store, severity="SEV2")
    (opened,) = service.on_signals(store, manifest, [{"id": first}], now=T0 + timedelta(minutes=12))
    assert opened["opened"] is True and opened["attached"] == [first]
    assert (opened["id"], opened["status"], opened["severity"], opened["opened_by"]) == (
        "INC-1", "contained", "SEV2", "hotwash")  # auto-contained: escalation_overload -> human
    assert opened["started_at"] == T0 and opened["detected_at"] == T0 + timedelta(minutes=10)
    assert [s["id"] for s in opened["signals"]] == [first]

    worse = add_signal(store, severity="SEV1", start=T0 - timedelta(minutes=5), monitor="escalation_cusum",
                       summary="cusum alarm")
    minor = add_signal(store, category="hallucination", severity="SEV4")  # below SEV3: kept as a signal only
    out = service.on_signals(store, manifest, [worse, minor], now=T0 + timedelta(minutes=20))
    assert [(i["id"], i["opened"], i["attached"]) for i in out] == [("INC-1", False, [worse])]
    inc = out[0]
    assert inc["severity"] == "SEV1" and inc["started_at"] == T0 - timedelta(minutes=5)
    attached = [e for e in inc["timeline"] if e["kind"] == "signal" and e["text"].startswith("signal attached")]
    assert [e["data"]["signal_id"] for e in attached] == [worse]
    assert "severity" in kinds(inc)
    assert get_flag(store, manifest, "support-bot")["version"] == 1  # not contained a second time

    version = inc["version"]
    assert service.on_signals(store, manifest, [first, worse, minor], now=T0 + timedelta(minutes=30)) == []
    assert service.get_incident(store, "INC-1")["version"] == version
    assert store.incident_count() == 1


def test_policy_thresholds_per_category_and_one_incident_per_feature(store: Store, manifest: Manifest) -> None:
    drift4 = add_signal(store, category="drift", severity="SEV4", feature="summarizer")
    scope2 = add_signal(store, category="scope_creep", severity="SEV2", feature="summarizer")
    scope1 = add_signal(store, category="scope_creep", severity="SEV1", feature="agent")
    other = add_signal(store, category="drift", severity="SEV3", feature="agent")
    out = service.on_signals(store, manifest, [drift4, scope2, scope1, other], now=T0 + timedelta(hours=1))
    assert sorted((i["feature"], i["category"]) for i in out) == [
        ("agent", "drift"), ("agent", "scope_creep"), ("summarizer", "drift")]
    assert all(i["opened"] for i in out)
    assert service.opens_incident(manifest, "hallucination", "SEV3")
    assert not service.opens_incident(manifest, "hallucination", "SEV4")


def test_auto_containment_throttles_and_a_failure_is_told(store: Store, manifest: Manifest) -> None:
    sid = add_signal(store, category="runaway_cost", feature="pricey-bot", severity="SEV2")
    (inc,) = service.on_signals(store, manifest, [sid], now=T0 + timedelta(minutes=15))
    assert inc["status"] == "contained" and inc["contained_at"] == T0 + timedelta(minutes=15)
    assert inc["containment"]["mode"] == "throttle" and inc["containment"]["by"] == "hotwash (auto)"
    flag = get_flag(store, manifest, "pricey-bot")
    assert (flag["mode"], flag["params"], flag["updated_by"], flag["incident"]) == (
        "throttle", {"rate_per_s": 2}, "hotwash (auto)", inc["id"])
    auto = [e for e in inc["timeline"] if e["actor"] == "hotwash (auto)"]
    assert [e["kind"] for e in auto] == ["flag", "transition"]

    bad = add_signal(store, category="runaway_cost", feature="no-rate-bot", severity="SEV2")
    (failed,) = service.on_signals(store, manifest, [bad], now=T0 + timedelta(minutes=15))
    assert failed["status"] == "detected" and failed["containment"] is None
    note = [e for e in failed["timeline"] if e["kind"] == "note"]
    assert len(note) == 1 and "auto-containment (throttle) failed" in note[0]["text"]
    assert get_flag(store, manifest, "no-rate-bot")["source"] == "default"


def test_on_signals_takes_signal_objects_too(store: Store, manifest: Manifest) -> None:
    from hotwash.detect.engine import Signal

    sig = Signal(monitor="m", category="hallucination", feature="kb-bot", severity="SEV2", start=T0,
                 detected_at=T0 + timedelta(minutes=1), evidence=["x"], summary="ungrounded answers")
    store.save_signals([sig.row()])
    (inc,) = service.on_signals(store, manifest, [sig], now=T0 + timedelta(minutes=2))
    assert inc["title"] == "Hallucination on kb-bot: ungrounded answers" and inc["status"] == "detected"


# -- blast radius and recurrences -------------------------------------------------------------
def test_blast_radius_counts_the_window_of_every_affected_feature(store: Store, manifest: Manifest) -> None:
    add_events(store, 10, start=T0 - timedelta(minutes=10), prefix="before")  # before the first evidence
    add_events(store, 12, start=T0, prefix="in")  # 4 sessions, 3 users, $0.25 each
    add_events(store, 3, feature="widget", start=T0, prefix="w", session_id="ws", user_id="wu")
    add_events(store, 5, feature="unrelated", start=T0, prefix="x")
    sid = add_signal(store, category="hallucination", evidence=["in1"])
    inc = service.open_incident(store, manifest, title="t", category="hallucination", severity="SEV2",
                                features=["support-bot", "widget"], actor="ana", signal_ids=[sid],
                                now=T0 + timedelta(minutes=30))
    blast = inc["blast"]
    assert (blast["events"], blast["sessions"], blast["users"], blast["cost_usd"]) == (15, 5, 4, 3.75)
    assert blast["window_start"] == T0 and blast["window_end"] == T0 + timedelta(minutes=30)
    assert service.list_incidents(store)[0]["blast"]["events"] == 15  # the stored snapshot

    # Mitigation closes the window: what comes later is not part of the damage.
    walk_to(store, manifest, inc["number"], "diagnosed")
    service.mitigate(store, manifest, inc["number"], description="fix", link="abc1234", actor="ana",
                     now=T0 + timedelta(minutes=5, seconds=30))
    after = service.get_incident(store, inc["number"])
    assert after["blast"]["events"] == 6 + 3  # in0..in5 and w0..w2 are at or before 04:05:30
    assert after["blast"]["window_end"] == T0 + timedelta(minutes=5, seconds=30)


def test_recurrences_list_past_incidents_with_postmortems_and_open_actions(store: Store, manifest: Manifest) -> None:
    old = open_one(store, manifest, category="drift", now=T0)
    older_other = open_one(store, manifest, category="hallucination", now=T0)
    with store.transaction() as conn:
        conn.execute(postmortems.insert().values(
            incident_id=old["number"], status="published", title="pm", markdown="# pm", category="drift",
            feature="support-bot", severity="SEV2", due_at=T0, created_at=T0, updated_at=T0))
        for status in ("open", "open", "done"):
            conn.execute(actions.insert().values(incident_id=old["number"], title="a", kind="monitoring", owner="o",
                                                 due_at=T0, status=status, created_at=T0, updated_at=T0))
    new = open_one(store, manifest, category="drift", now=T0 + timedelta(days=3))
    assert [(r["id"], r["postmortem"], r["open_actions"]) for r in new["recurrences"]] == [
        (old["id"], "published", 2)]
    entry = next(e for e in new["timeline"] if e["kind"] == "recurrence")
    assert old["id"] in entry["text"] and "postmortem published" in entry["text"] and entry["data"]["incidents"] == [
        old["id"]]
    assert older_other["recurrences"] == []


# -- opening by hand ------------------------------------------------------------------------------
def test_manual_open_validates_and_records_people_and_signals(store: Store, manifest: Manifest) -> None:
    sid = add_signal(store, category="hallucination")
    inc = open_one(store, manifest, lead="bo", participants=[("cy", "communicator"), ("di", "observer")],
                   signal_ids=[sid])
    assert inc["lead"] == "bo" and inc["opened_by"] == "ana" and inc["status"] == "detected"
    assert inc["participants"] == [{"person": "bo", "role": "lead"}, {"person": "cy", "role": "communicator"},
                                   {"person": "di", "role": "observer"}]
    assert [s["id"] for s in inc["signals"]] == [sid] and inc["started_at"] == T0
    assert kinds(inc)[:2] == ["signal", "opened"]
    assert [d["question"] for d in inc["diagnosis"]] == ["grounding", "unsupported_claims", "changes"]

    cases = [({"category": "bias"}, "category"), ({"severity": "SEV5"}, "severity"), ({"features": []}, "features"),
             ({"title": " "}, "title"), ({"participants": [("x", "boss")]}, "role")]
    for over, field in cases:
        with pytest.raises(InvalidValue) as info:
            open_one(store, manifest, **over)
        assert info.value.field == field
    with pytest.raises(NotFound, match="no signal 999"):
        open_one(store, manifest, signal_ids=[999])
    with pytest.raises(Conflict, match=f"signal {sid} already belongs to INC-1"):
        open_one(store, manifest, signal_ids=[sid])
    assert store.incident_count() == 1
    assert open_one(store, manifest, severity="sev3")["severity"] == "SEV3"


def test_get_and_list_with_filters(store: Store, manifest: Manifest) -> None:
    a = open_one(store, manifest, features=["support-bot", "widget"])
    b = open_one(store, manifest, category="drift", severity="SEV4", features=["widget"])
    walk_to(store, manifest, b["number"], "contained")
    assert [i["id"] for i in service.list_incidents(store)] == [b["id"], a["id"]]
    assert [i["id"] for i in service.list_incidents(store, feature="widget")] == [b["id"], a["id"]]
    assert [i["id"] for i in service.list_incidents(store, feature="support-bot")] == [a["id"]]
    assert [i["id"] for i in service.list_incidents(store, status="contained")] == [b["id"]]
    assert [i["id"] for i in service.list_incidents(store, status="open", category="hallucination")] == [a["id"]]
    assert [i["id"] for i in service.list_incidents(store, severity="SEV4")] == [b["id"]]
    assert service.list_incidents(store, status="closed") == []
    with pytest.raises(InvalidValue, match="unknown status 'resolved'"):
        service.list_incidents(store, status="resolved")
    assert service.get_incident(store, "inc-1")["id"] == "INC-1" == service.get_incident(store, 1)["id"]
    for ref in ("INC-99", "nonsense"):
        with pytest.raises(NotFound):
            service.get_incident(store, ref)


# -- containment --------------------------------------------------------------------------------
def test_contain_in_later_states_keeps_the_state_and_records_the_flag(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest)
    first = service.contain(store, manifest, inc["id"], mode="human", actor="ana", reason="stop the bleeding")
    assert first["status"] == "contained" and first["version"] == 2
    walk_to(store, manifest, inc["number"], "diagnosed")
    before = service.get_incident(store, inc["id"])
    again = service.contain(store, manifest, inc["id"], mode="rollback", actor="bo")
    assert again["status"] == "diagnosed" and again["version"] == before["version"] + 1
    assert again["contained_at"] == first["contained_at"]  # the first containment's time is kept
    assert again["containment"]["mode"] == "rollback" and again["containment"]["params"] == {"prompt_version": "v11"}
    new_entries = again["timeline"][len(before["timeline"]):]
    assert [(e["kind"], e["actor"], e["text"]) for e in new_entries] == [
        ("flag", "bo", "support-bot: human → rollback")]
    assert get_flag(store, manifest, "support-bot")["mode"] == "rollback"


def test_refused_containment_writes_nothing(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest, features=["support-bot", "widget"])
    snapshot = service.get_incident(store, inc["id"])

    def unchanged() -> None:
        now = service.get_incident(store, inc["id"])
        assert (now["version"], now["timeline"], now["status"]) == (
            snapshot["version"], snapshot["timeline"], snapshot["status"])
        assert get_flag(store, manifest, "support-bot")["source"] == "default"
        assert get_flag(store, manifest, "widget")["source"] == "default"

    with pytest.raises(InvalidValue) as info:
        service.contain(store, manifest, inc["id"], mode="off", actor="ana")
    assert info.value.field == "mode"
    unchanged()
    with pytest.raises(InvalidValue, match="needs the version to pin"):
        service.contain(store, manifest, inc["id"], mode="rollback", actor="ana", feature="widget")
    unchanged()
    with pytest.raises(InvalidValue, match="not a feature of INC-1"):
        service.contain(store, manifest, inc["id"], mode="human", actor="ana", feature="other")
    unchanged()
    with pytest.raises(StaleUpdate, match="at version 1, you sent 7"):
        service.contain(store, manifest, inc["id"], mode="human", actor="ana", expected_version=7)
    unchanged()
    done = service.contain(store, manifest, inc["id"], mode="disabled", actor="ana", feature="widget",
                           expected_version=1)
    assert done["containment"]["feature"] == "widget" and get_flag(store, manifest, "widget")["mode"] == "disabled"


def test_closed_incidents_refuse_containment(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest)
    number = inc["number"]
    walk_to(store, manifest, number, "postmortem")
    with store.transaction() as conn:
        for kind in ("regression", "monitor"):
            conn.execute(proofs.insert().values(incident_id=number, kind=kind, ok=True, data={}, created_at=T0))
    service.step(store, manifest, number, "verify", actor="ana")
    closed = service.close(store, manifest, number, actor="ana", text="all done")
    assert closed["status"] == "closed" and closed["allowed"] == []
    assert closed["timeline"][-1]["text"] == "verified → closed: all done"
    flag_version = get_flag(store, manifest, "support-bot")["version"]
    with pytest.raises(IllegalTransition, match="closed") as info:
        service.contain(store, manifest, number, mode="disabled", actor="ana")
    assert info.value.allowed == []
    assert get_flag(store, manifest, "support-bot")["version"] == flag_version
    assert service.add_note(store, number, text="late learning", actor="bo")["timeline"][-1]["kind"] == "note"


# -- guards, staleness, steps ---------------------------------------------------------------------
def test_verify_needs_both_newest_proofs_ok_and_close_needs_actions_resolved(store: Store,
                                                                          manifest: Manifest) -> None:
    number = open_one(store, manifest)["number"]
    walk_to(store, manifest, number, "postmortem")

    def proof(kind: str, ok: bool, minute: int) -> None:
        with store.transaction() as conn:
            conn.execute(proofs.insert().values(incident_id=number, kind=kind, ok=ok, data={},
                                                created_at=T0 + timedelta(minutes=minute)))

    def refused(event: str, match: str) -> None:
        version = service.get_incident(store, number)["version"]
        with pytest.raises(IllegalTransition, match=match) as info:
            service.step(store, manifest, number, event, actor="ana")
        assert event not in info.value.allowed and "contain" in info.value.allowed
        assert service.get_incident(store, number)["version"] == version

    refused("verify", "regression proof has not been computed and the monitor proof has not been computed")
    proof("regression", True, 1)
    proof("monitor", False, 1)
    refused("verify", "the monitor proof failed; run `hotwash verify INC-1`")
    proof("monitor", True, 2)
    proof("regression", False, 3)  # the newest counts
    refused("verify", "the regression proof failed")
    proof("regression", True, 4)
    verified = service.step(store, manifest, number, "verify", actor="ana")
    assert verified["status"] == "verified" and verified["verified_at"] is not None

    with store.transaction() as conn:
        for status in ("open", "deferred", "done"):
            conn.execute(actions.insert().values(incident_id=number, title=f"{status} one", kind="guardrail",
                                                 owner="cy", due_at=T0, status=status, created_at=T0, updated_at=T0))
    refused("close", r"1 action\(s\) still open: #1 'open one' \(cy\)")
    with store.transaction() as conn:
        conn.execute(actions.update().where(actions.c.status == "open").values(status="done"))
    assert service.close(store, manifest, number, actor="ana")["status"] == "closed"


def test_stale_updates_are_refused_and_write_nothing(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest)
    service.add_note(store, inc["id"], text="first", actor="ana", expected_version=1)
    for call in (lambda: service.add_note(store, inc["id"], text="again", actor="bo", expected_version=1),
                 lambda: service.step(store, manifest, inc["id"], "communicate", actor="bo", expected_version=1),
                 lambda: service.assign(store, inc["id"], actor="bo", lead="bo", expected_version=1),
                 lambda: communicate.post_status_update(store, manifest, inc["id"], audience="internal", actor="bo",
                                                        expected_version=1)):
        with pytest.raises(StaleUpdate, match="INC-1 changed since you read it: it is at version 2, you sent 1"):
            call()
    now = service.get_incident(store, inc["id"])
    assert now["version"] == 2 and now["status"] == "detected" and now["lead"] is None
    assert [e["text"] for e in now["timeline"] if e["kind"] == "note"] == ["first"]


def test_concurrent_writers_one_wins_with_a_version_all_land_without(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest)
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def note(name: str, expected: int | None) -> None:
        barrier.wait()
        try:
            service.add_note(store, inc["id"], text=name, actor=name, expected_version=expected)
            outcomes.append("ok")
        except StaleUpdate:
            outcomes.append("stale")

    def race(expected: int | None) -> None:
        outcomes.clear()
        threads = [threading.Thread(target=note, args=(f"n{i}", expected)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    race(1)  # all read version 1: exactly one may write
    assert sorted(outcomes) == ["ok", "stale", "stale"]
    assert service.get_incident(store, inc["id"])["version"] == 2
    race(None)  # no version given: each retries from a fresh read, none is lost
    assert outcomes == ["ok", "ok", "ok"]
    final = service.get_incident(store, inc["id"])
    assert final["version"] == 5 and kinds(final).count("note") == 4


def test_step_checks_its_event_and_details(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest)
    with pytest.raises(IllegalTransition, match="cannot diagnose an incident that is detected") as info:
        service.step(store, manifest, inc["id"], "diagnose", actor="ana")
    assert info.value.allowed == ["contain", "communicate"]
    with pytest.raises(IllegalTransition, match="unknown playbook step 'fix'"):
        service.step(store, manifest, inc["id"], "fix", actor="ana")
    with pytest.raises(InvalidValue, match="takes no mode"):
        service.step(store, manifest, inc["id"], "communicate", actor="ana", mode="human")
    with pytest.raises(InvalidValue, match="contain needs a mode"):
        service.step(store, manifest, inc["id"], "contain", actor="ana")
    contained = service.step(store, manifest, inc["id"], "contain", actor="ana", mode="human")
    assert contained["status"] == "contained"
    moved = service.step(store, manifest, inc["id"], "communicate", actor="ana", text="told the team")
    assert moved["timeline"][-1]["text"] == "contained → communicated: told the team"


# -- mitigation -----------------------------------------------------------------------------------
def test_mitigation_records_the_change_and_its_kind(store: Store, manifest: Manifest) -> None:
    assert service.link_kind("https://github.com/acme/bot/pull/42") == "pr"
    assert service.link_kind("https://gitlab.com/acme/bot/-/merge_requests/7") == "pr"
    assert service.link_kind("https://github.com/acme/bot/commit/0a1b2c3d") == "commit"
    assert service.link_kind("0a1b2c3d4e") == "commit"
    assert service.link_kind("prompt:v13") == "prompt_version"
    assert service.link_kind("https://wiki/x") == "other"

    with store.transaction() as conn:
        store.insert_changes(conn, [{"id": "chg-9", "ts": T0 + timedelta(hours=1), "feature": "support-bot",
                                     "kind": "prompt", "version": "v13", "previous": "v12", "ingested_at": T0}])
    inc = open_one(store, manifest)
    with pytest.raises(IllegalTransition, match="cannot mitigate an incident that is detected"):
        service.mitigate(store, manifest, inc["id"], description="d", link="prompt:v13", actor="ana")
    walk = walk_to(store, manifest, inc["number"], "diagnosed")
    with pytest.raises(InvalidValue) as info:
        service.mitigate(store, manifest, inc["id"], description="  ", link="x", actor="ana")
    assert info.value.field == "description"
    assert service.get_incident(store, inc["id"])["version"] == walk["version"]
    done = service.mitigate(store, manifest, inc["id"], description="rolled the prompt forward to v13",
                            link="prompt:v13", actor="bo")
    assert done["status"] == "mitigated"
    m = done["mitigation"]
    assert (m["description"], m["link"], m["kind"], m["change_id"], m["by"]) == (
        "rolled the prompt forward to v13", "prompt:v13", "prompt_version", "chg-9", "bo")
    assert kinds(done)[-2:] == ["mitigation", "transition"]
    assert done["timeline"][-2]["text"] == "mitigation: rolled the prompt forward to v13 (prompt:v13)"


# -- people ---------------------------------------------------------------------------------------
def test_assign_lead_and_participants(store: Store, manifest: Manifest) -> None:
    inc = open_one(store, manifest, lead="ana")
    out = service.assign(store, inc["id"], actor="ana", lead="bo", participants=[("cy", "communicator")])
    assert out["lead"] == "bo"
    assert sorted((p["person"], p["role"]) for p in out["participants"]) == [
        ("ana", "responder"), ("bo", "lead"), ("cy", "communicator")]
    assert [e["text"] for e in out["timeline"] if e["kind"] == "participant"] == [
        "lead: ana → bo", "cy is communicator"]
    out = service.assign(store, inc["id"], actor="ana", remove=["cy"], participants=[("bo", "observer")])
    assert out["lead"] is None and sorted(p["person"] for p in out["participants"]) == ["ana", "bo"]
    for kwargs, field in (({"participants": [("x", "chief")]}, "role"), ({}, "lead"),
                          ({"lead": "a", "participants": [("b", "lead")]}, "lead")):
        with pytest.raises(InvalidValue) as info:
            service.assign(store, inc["id"], actor="ana", **kwargs)
        assert info.value.field == field


# -- status updates -------------------------------------------------------------------------------
def test_customer_templates_carry_no_internals(store: Store, manifest: Manifest) -> None:
    add_events(store, 5)
    for category in service.CATEGORIES:
        sid = add_signal(store, category=category, evidence=["e1", "e3"], monitor=f"{category}_monitor")
        inc = open_one(store, manifest, category=category, signal_ids=[sid])
        composed = communicate.compose(store, service.get_incident(store, inc["id"]), audience="customer",
                                       now=T0 + timedelta(hours=1))
        text = composed["text"]
        for internal in ("gpt-4o-mini", "v12", "e1", "e3", "_monitor", "support-bot", "INC-", "SEV"):
            assert internal not in text, (category, internal)
        assert text.startswith("Service update: " + communicate.TEMPLATES[category]["headline"])
        assert composed["next_update_at"] == T0 + timedelta(hours=2)  # SEV2: an hour
        assert composed["what_happened"] == communicate.TEMPLATES[category]["customer_what"]
        internal_text = communicate.compose(store, service.get_incident(store, inc["id"]), audience="internal",
                                            now=T0 + timedelta(hours=1))["text"]
        assert communicate.TEMPLATES[category]["internal_unknown"] in internal_text and inc["id"] in internal_text


def test_status_updates_compose_store_send_and_communicate(store: Store, manifest: Manifest) -> None:
    add_events(store, 8)
    sid = add_signal(store, category="hallucination", evidence=["e1"])
    inc = open_one(store, manifest, signal_ids=[sid])
    memory = MemoryNotifier()
    dispatcher = Dispatcher(store, [memory], group_wait=0)
    try:
        with pytest.raises(InvalidValue) as info:
            communicate.post_status_update(store, manifest, inc["id"], audience="customer", actor="cy",
                                           impact="answers from gpt-4o-mini were wrong", dispatcher=dispatcher)
        assert info.value.field == "impact" and "'gpt-4o-mini' (a model name)" in str(info.value)
        with pytest.raises(InvalidValue, match="not in the future"):
            communicate.post_status_update(store, manifest, inc["id"], audience="internal", actor="cy",
                                           next_update_at=T0, dispatcher=dispatcher)
        with pytest.raises(InvalidValue, match="unknown audience"):
            communicate.post_status_update(store, manifest, inc["id"], audience="press", actor="cy")
        assert service.get_incident(store, inc["id"])["version"] == 1  # nothing written by the refusals

        now = T0 + timedelta(minutes=40)
        first = communicate.post_status_update(store, manifest, inc["id"], audience="internal", actor="cy",
                                               what_we_know="retrieval returns stale articles",
                                               dispatcher=dispatcher, now=now)
        assert first["status"] == "communicated" and first["communicated_at"] == now
        update = first["status_update"]
        assert update["what_we_know"] == "retrieval returns stale articles"
        assert update["impact"].startswith("8 calls, 4 sessions and 3 users of support-bot")
        assert "$2.00" in update["impact"]
        assert update["next_update_at"] == now + timedelta(hours=1)
        assert update["offered_to"] == ["memory"]
        entry = next(e for e in first["timeline"] if e["kind"] == "status_update")
        assert entry["actor"] == "cy" and entry["data"]["audience"] == "internal"
        assert entry["data"]["what_we_know"] == "retrieval returns stale articles"
        assert entry["data"]["text"] == update["text"]

        second = communicate.post_status_update(store, manifest, inc["id"], audience="customer", actor="cy",
                                                dispatcher=dispatcher, now=now + timedelta(minutes=5))
        assert second["status"] == "communicated" and second["version"] == first["version"] + 1
        assert kinds(second).count("status_update") == 2 and kinds(second).count("transition") == 1
        assert memory.wait_for(2)
    finally:
        dispatcher.close()
    internal, customer = memory.alerts
    assert internal.title.startswith("INC-1 internal status update") and internal.monitor == "incident"
    assert "retrieval returns stale articles" in internal.summary and internal.signals == ()
    assert customer.evidence == () and "gpt-4o-mini" not in customer.summary
    assert customer.dedup_key == "hotwash:incident:INC-1"


def test_opening_from_signals_announces_the_incident(store: Store, manifest: Manifest) -> None:
    old = open_one(store, manifest, category="drift", now=T0 - timedelta(days=9))
    with store.transaction() as conn:
        conn.execute(incidents.update().where(incidents.c.id == old["number"]).values(status="closed"))
    memory = MemoryNotifier()
    with Dispatcher(store, [memory], group_wait=0) as dispatcher:
        sid = add_signal(store, category="drift", severity="SEV3")
        (inc,) = service.on_signals(store, manifest, [sid], dispatcher=dispatcher, now=T0 + timedelta(hours=1))
        assert memory.wait_for(1)
    (alert,) = memory.alerts
    assert alert.title == f"{inc['id']} opened: SEV3 drift on support-bot"
    assert "Recurrence: 1 earlier incident(s) of this feature and category: INC-1" in alert.summary


# -- the CLI --------------------------------------------------------------------------------------
@functools.cache
def _command(app: typer.Typer) -> Any:
    return typer.main.get_command(app)


def run(*args: str) -> Any:
    # Typer rebuilds the whole command tree on every invoke (half a second); build it once.
    with mock.patch("typer.testing._get_command", _command):
        return CliRunner().invoke(cli_app, list(args), catch_exceptions=True)


def ok_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return orjson.loads(result.stdout)


def test_cli_runs_the_whole_playbook(workspace: Path, store: Store) -> None:
    (workspace / "hotwash.yaml").write_text(MANIFEST)
    opened = ok_json("incident", "open", "--title", "bot invents refunds", "--category", "hallucination",
                     "--severity", "SEV2", "--feature", "support-bot", "--feature", "widget", "--lead", "ana",
                     "--participant", "bo:communicator", "--actor", "ana")
    assert (opened["id"], opened["features"], opened["lead"], opened["opened_by"]) == (
        "INC-1", ["support-bot", "widget"], "ana", "ana")
    listed = ok_json("incident", "list")
    assert [{k: i[k] for k in ("id", "category", "feature", "severity", "status", "lead")} for i in listed] == [
        {"id": "INC-1", "category": "hallucination", "feature": "support-bot", "severity": "SEV2",
         "status": "detected", "lead": "ana"}]
    assert listed[0]["opened_at"].endswith("Z")
    assert ok_json("incident", "list", "--status", "closed") == []
    assert len(ok_json("incident", "list", "--feature", "widget", "--category", "hallucination")) == 1

    contained = ok_json("incident", "contain", "INC-1", "--mode", "rollback", "--expect-version", "1",
                        "--actor", "bo")
    assert contained["status"] == "contained" and contained["containment"]["params"] == {"prompt_version": "v11"}
    updated = ok_json("incident", "update", "INC-1", "--audience", "customer", "--what", "Some answers were wrong.",
                      "--impact", "Refund answers may be wrong.", "--next-update", "2h", "--actor", "bo")
    assert updated["status"] == "communicated"
    assert updated["status_update"]["what_happened"] == "Some answers were wrong."
    assert ok_json("incident", "note", "INC-1", "KB sync failed at 03:00", "--actor", "ana")["timeline"][-1][
        "text"] == "KB sync failed at 03:00"
    assert ok_json("incident", "step", "INC-1", "diagnose", "--text", "stale KB")["status"] == "diagnosed"
    mitigated = ok_json("incident", "mitigate", "INC-1", "--description", "re-synced the KB", "--link",
                        "https://github.com/acme/kb/pull/9")
    assert mitigated["mitigation"]["kind"] == "pr" and mitigated["status"] == "mitigated"
    assert ok_json("incident", "step", "INC-1", "postmortem")["status"] == "postmortem"

    refused = run("incident", "step", "INC-1", "verify")
    assert isinstance(refused.exception, IllegalTransition) and "hotwash verify INC-1" in str(refused.exception)
    with store.transaction() as conn:
        for kind in ("regression", "monitor"):
            conn.execute(proofs.insert().values(incident_id=1, kind=kind, ok=True, data={}, created_at=T0))
    assert ok_json("incident", "step", "INC-1", "verify")["status"] == "verified"
    assigned = ok_json("incident", "assign", "INC-1", "--lead", "bo", "--participant", "cy:scribe")
    assert assigned["lead"] == "bo" and {"person": "cy", "role": "scribe"} in assigned["participants"]
    stale = run("incident", "close", "INC-1", "--expect-version", "3")
    assert isinstance(stale.exception, StaleUpdate)
    closed = ok_json("incident", "close", "INC-1", "--expect-version", str(assigned["version"]))
    assert closed["status"] == "closed" and closed["closed_at"] is not None

    shown = ok_json("incident", "show", "INC-1")
    assert [e["kind"] for e in shown["timeline"]] == [
        "opened", "flag", "transition", "status_update", "transition", "note", "transition", "mitigation",
        "transition", "transition", "transition", "participant", "participant", "transition"]
    human = run("incident", "show", "INC-1")
    assert human.exit_code == 0 and "bot invents refunds" in human.stdout and "timeline" in human.stdout
    status = ok_json("status")
    assert status["incidents"] == 1


def test_cli_human_output_and_bad_input(workspace: Path, store: Store) -> None:
    (workspace / "hotwash.yaml").write_text(MANIFEST)
    opened = run("incident", "open", "--title", "[red]x[/red] loops", "--category", "runaway_cost", "--severity",
                 "SEV1", "--feature", "pricey-bot")
    assert opened.exit_code == 0 and "INC-1 opened · now detected (version 1)" in opened.stdout
    shown = run("incident", "show", "INC-1")
    assert "[red]x[/red] loops" in shown.stdout  # escaped, not rendered as markup
    contained = run("incident", "contain", "INC-1", "--mode", "throttle", "--rate", "1.5")
    assert contained.exit_code == 0 and "contained: pricey-bot in throttle mode" in contained.stdout
    bad_rate = run("incident", "contain", "INC-1", "--mode", "human", "--rate", "3")
    assert isinstance(bad_rate.exception, InvalidValue)
    update = run("incident", "update", "INC-1", "--no-send")
    assert update.exit_code == 0 and "What we do not know yet:" in update.stdout
    assert isinstance(run("incident", "show", "INC-7").exception, NotFound)
    assert isinstance(run("incident", "assign", "INC-1", "--participant", "nocolon").exception, InvalidValue)
    assert isinstance(run("incident", "step", "INC-1", "contain").exception, InvalidValue)


def test_cli_errors_exit_2_with_the_allowed_steps(workspace: Path, store: Store, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from hotwash.cli import main

    (workspace / "hotwash.yaml").write_text(MANIFEST)
    service.open_incident(store, parse_manifest(MANIFEST), title="t", category="drift", severity="SEV3",
                          features=["support-bot"], actor="ana")

    def in_process(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["hotwash", *args])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code == 2
        return " ".join(capsys.readouterr().err.split())

    assert "no incident INC-42" in in_process("incident", "contain", "INC-42", "--mode", "human")
    assert "unknown mode 'off'" in in_process("incident", "contain", "INC-1", "--mode", "off")
    assert "INC-1 changed since you read it" in in_process("incident", "note", "INC-1", "x", "--expect-version", "5")
    if store.dialect != "sqlite":
        return  # the entry point does not depend on the database; its start-up is slow, run it once
    illegal = subprocess.run([sys.executable, "-m", "hotwash", "incident", "step", "INC-1", "close"],
                             capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False)
    assert illegal.returncode == 2
    assert "INC-1: cannot close an incident that is detected; allowed now: contain, communicate" in illegal.stderr
