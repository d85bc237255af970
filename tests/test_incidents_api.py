"""The incidents API through the real app (in-process ASGI), on both databases: every step of the
playbook, roles, and each bad request's status code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hotwash.notify import Dispatcher, MemoryNotifier
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.store.tables import actions, proofs
from hotwash.web import auth, create_app

T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
MANIFEST = """\
features:
  support-bot:
    containment: {fallback: human, rollback_to: {prompt_version: v11, model: gpt-4o-mini},
                  auto: {escalation_overload: human}}
"""
NEW = {"title": "support bot promises refunds", "category": "hallucination", "severity": "SEV2",
       "features": ["support-bot"], "lead": "ana", "participants": [{"person": "bo", "role": "communicator"}]}


@pytest.fixture
def api(store: Store, tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    path = tmp_path / "hotwash.yaml"
    path.write_text(MANIFEST)
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=path)
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def test_the_whole_playbook_over_http(api: TestClient, store: Store) -> None:
    memory = MemoryNotifier()
    api.app.state.dispatcher = Dispatcher(store, [memory], group_wait=0)  # type: ignore[attr-defined]
    try:
        inc = ok(api.post("/api/v1/incidents", json=NEW), 201)
        assert (inc["id"], inc["status"], inc["version"], inc["opened_by"], inc["lead"]) == (
            "INC-1", "detected", 1, "local", "ana")
        assert inc["participants"] == [{"person": "ana", "role": "lead"}, {"person": "bo", "role": "communicator"}]
        assert inc["allowed"] == ["contain", "communicate"]
        assert inc["opened_at"].startswith("20") and set(inc["blast"]) == {
            "events", "sessions", "users", "cost_usd", "window_start", "window_end"}

        inc = ok(api.post("/api/v1/incidents/INC-1/contain",
                          json={"mode": "human", "reason": "stop it", "expected_version": 1}))
        assert inc["status"] == "contained" and inc["containment"]["mode"] == "human"
        assert ok(api.get("/api/v1/flags/support-bot"))["mode"] == "human"

        inc = ok(api.post("/api/v1/incidents/INC-1/status-updates",
                          json={"audience": "customer", "what_happened": "Some refund answers were wrong.",
                                "expected_version": inc["version"]}), 201)
        assert inc["status"] == "communicated"
        assert inc["status_update"]["what_happened"] == "Some refund answers were wrong."
        assert inc["status_update"]["offered_to"] == ["memory"]
        assert memory.wait_for(1) and memory.alerts[0].summary.startswith("Service update:")

        inc = ok(api.post("/api/v1/incidents/INC-1/notes", json={"text": "KB sync broke at 03:00"}), 201)
        assert inc["timeline"][-1]["kind"] == "note" and inc["timeline"][-1]["actor"] == "local"
        inc = ok(api.post("/api/v1/incidents/INC-1/events", json={"event": "diagnose", "text": "stale KB",
                                                                  "expected_version": inc["version"]}))
        assert inc["status"] == "diagnosed" and inc["timeline"][-1]["text"] == "communicated → diagnosed: stale KB"
        inc = ok(api.post("/api/v1/incidents/INC-1/mitigation",
                          json={"description": "re-synced the KB", "link": "https://github.com/a/kb/pull/3"}))
        assert inc["status"] == "mitigated" and inc["mitigation"]["kind"] == "pr"
        inc = ok(api.post("/api/v1/incidents/INC-1/events", json={"event": "postmortem"}))
        assert inc["status"] == "postmortem"
        # Containing again in a later state keeps the state.
        inc = ok(api.post("/api/v1/incidents/INC-1/events", json={"event": "contain", "mode": "rollback"}))
        assert inc["status"] == "postmortem" and inc["containment"]["params"] == {
            "prompt_version": "v11", "model": "gpt-4o-mini"}

        refused = api.post("/api/v1/incidents/INC-1/events", json={"event": "verify"})
        assert refused.status_code == 409 and refused.json()["allowed"] == ["contain"]
        assert "hotwash verify INC-1" in refused.json()["detail"]
        with store.transaction() as conn:
            for kind in ("regression", "monitor"):
                conn.execute(proofs.insert().values(incident_id=1, kind=kind, ok=True, data={}, created_at=T0))
            conn.execute(actions.insert().values(incident_id=1, title="add case", kind="regression_case", owner="ana",
                                                 due_at=T0, status="open", created_at=T0, updated_at=T0))
        assert ok(api.post("/api/v1/incidents/INC-1/events", json={"event": "verify"}))["status"] == "verified"
        blocked = api.post("/api/v1/incidents/INC-1/events", json={"event": "close"})
        assert blocked.status_code == 409 and "1 action(s) still open" in blocked.json()["detail"]
        with store.transaction() as conn:
            conn.execute(actions.update().values(status="deferred", reason="next quarter"))

        inc = ok(api.post("/api/v1/incidents/INC-1/participants",
                          json={"lead": "bo", "participants": [{"person": "cy", "role": "scribe"}]}))
        assert inc["lead"] == "bo"
        assert sorted((p["person"], p["role"]) for p in inc["participants"]) == [
            ("ana", "responder"), ("bo", "lead"), ("cy", "scribe")]
        inc = ok(api.post("/api/v1/incidents/INC-1/events",
                          json={"event": "close", "expected_version": inc["version"]}))
        assert inc["status"] == "closed" and inc["allowed"] == []
    finally:
        api.app.state.dispatcher.close()  # type: ignore[attr-defined]

    got = ok(api.get("/api/v1/incidents/inc-1"))
    milestones = [got[f"{s}_at"] for s in ("detected", "contained", "communicated", "diagnosed", "mitigated",
                                           "postmortem", "verified", "closed")]
    assert all(milestones) and milestones[1:] == sorted(milestones[1:])
    assert [e["kind"] for e in got["timeline"]].count("transition") == 7
    listed = ok(api.get("/api/v1/incidents", params={"status": "closed", "feature": "support-bot"}))
    assert [(i["id"], i["status"]) for i in listed] == [("INC-1", "closed")]
    assert ok(api.get("/api/v1/incidents", params={"status": "open"})) == []
    assert ok(api.get("/api/v1/incidents", params={"category": "drift"})) == []


def test_bad_requests_get_clear_4xx_and_write_nothing(api: TestClient, store: Store) -> None:
    ok(api.post("/api/v1/incidents", json=NEW), 201)
    assert api.get("/api/v1/incidents/INC-9").status_code == 404
    assert api.get("/api/v1/incidents/whatever").status_code == 404
    assert api.post("/api/v1/incidents/INC-9/notes", json={"text": "x"}).status_code == 404

    illegal = api.post("/api/v1/incidents/INC-1/events", json={"event": "mitigate", "description": "d", "link": "l"})
    assert illegal.status_code == 409
    body = illegal.json()
    assert (body["state"], body["event"], body["allowed"]) == ("detected", "mitigate", ["contain", "communicate"])
    unknown = api.post("/api/v1/incidents/INC-1/events", json={"event": "resolve"})
    assert unknown.status_code == 409 and "unknown playbook step" in unknown.json()["detail"]

    bad_mode = api.post("/api/v1/incidents/INC-1/contain", json={"mode": "off"})
    assert bad_mode.status_code == 422 and bad_mode.json()["field"] == "mode"
    bad_params = api.post("/api/v1/incidents/INC-1/contain", json={"mode": "throttle"})
    assert bad_params.status_code == 422 and bad_params.json()["field"] == "params.rate_per_s"
    stale = api.post("/api/v1/incidents/INC-1/contain", json={"mode": "human", "expected_version": 4})
    assert stale.status_code == 409 and "at version 1, you sent 4" in stale.json()["detail"]
    assert api.post("/api/v1/incidents/INC-1/notes", json={"text": "x", "expected_version": 2}).status_code == 409

    bad_open = api.post("/api/v1/incidents", json={**NEW, "category": "bias"})
    assert bad_open.status_code == 422 and bad_open.json()["field"] == "category"
    assert api.post("/api/v1/incidents", json={**NEW, "features": []}).status_code == 422
    assert api.post("/api/v1/incidents", json={**NEW, "colour": "red"}).status_code == 422
    assert api.post("/api/v1/incidents", json={**NEW, "signal_ids": [77]}).status_code == 404
    bad_role = api.post("/api/v1/incidents/INC-1/participants",
                        json={"participants": [{"person": "x", "role": "czar"}]})
    assert bad_role.status_code == 422 and bad_role.json()["field"] == "role"
    assert api.post("/api/v1/incidents/INC-1/status-updates", json={"audience": "press"}).status_code == 422
    assert api.post("/api/v1/incidents/INC-1/status-updates",
                    json={"next_update_at": "2020-01-01T00:00:00Z"}).status_code == 422
    bad_list = api.get("/api/v1/incidents", params={"status": "resolved"})
    assert bad_list.status_code == 422 and bad_list.json()["field"] == "status"

    got = ok(api.get("/api/v1/incidents/INC-1"))
    assert got["version"] == 1 and got["status"] == "detected" and [e["kind"] for e in got["timeline"]] == ["opened"]
    assert api.get("/api/v1/flags/support-bot").json()["source"] == "default"


def test_customer_updates_refuse_internal_details(api: TestClient) -> None:
    ok(api.post("/api/v1/incidents", json=NEW), 201)
    ok(api.post("/api/v1/incidents/INC-1/contain", json={"mode": "rollback"}))
    leak = api.post("/api/v1/incidents/INC-1/status-updates",
                    json={"audience": "customer", "what_we_know": "We rolled back to GPT-4o-mini."})
    assert leak.status_code == 422 and leak.json()["field"] == "what_we_know"
    assert "'gpt-4o-mini' (a pinned version)" in leak.json()["detail"]
    internal = ok(api.post("/api/v1/incidents/INC-1/status-updates",
                           json={"audience": "internal", "what_we_know": "We rolled back to gpt-4o-mini."}), 201)
    assert internal["status"] == "communicated"
    fine = ok(api.post("/api/v1/incidents/INC-1/status-updates", json={"audience": "customer"}), 201)
    assert "earlier, stable version" in fine["status_update"]["what_we_know"]


def test_roles_viewer_reads_responder_acts(api: TestClient, store: Store) -> None:
    ok(api.post("/api/v1/incidents", json=NEW), 201)  # open install: local admin
    for role in ("viewer", "responder"):
        store.add_token(name=f"{role}-bot", token_hash=auth.token_hash(f"tok-{role}"), role=role, now=T0)
    viewer = {"authorization": "Bearer tok-viewer"}
    responder = {"authorization": "Bearer tok-responder"}
    assert api.get("/api/v1/incidents").status_code == 401
    assert ok(api.get("/api/v1/incidents", headers=viewer))[0]["id"] == "INC-1"
    assert ok(api.get("/api/v1/incidents/INC-1", headers=viewer))["title"] == NEW["title"]
    writes = [("/api/v1/incidents", NEW), ("/api/v1/incidents/INC-1/contain", {"mode": "human"}),
              ("/api/v1/incidents/INC-1/status-updates", {}), ("/api/v1/incidents/INC-1/notes", {"text": "x"}),
              ("/api/v1/incidents/INC-1/mitigation", {"description": "d", "link": "l"}),
              ("/api/v1/incidents/INC-1/events", {"event": "communicate"}),
              ("/api/v1/incidents/INC-1/participants", {"lead": "x"})]
    for path, body in writes:
        assert api.post(path, json=body, headers=viewer).status_code == 403, path
    assert ok(api.get("/api/v1/incidents/INC-1", headers=viewer))["version"] == 1
    done = ok(api.post("/api/v1/incidents/INC-1/contain", json={"mode": "human"}, headers=responder))
    assert done["containment"]["by"] == "responder-bot"
    assert done["timeline"][-1]["actor"] == "responder-bot"


def test_openapi_lists_the_incident_routes(api: TestClient) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/incidents", "/api/v1/incidents/{ref}", "/api/v1/incidents/{ref}/contain",
            "/api/v1/incidents/{ref}/status-updates", "/api/v1/incidents/{ref}/notes",
            "/api/v1/incidents/{ref}/mitigation", "/api/v1/incidents/{ref}/events",
            "/api/v1/incidents/{ref}/participants"} <= set(paths)
    assert "IncidentCreate" in api.get("/api/v1/openapi.json").json()["components"]["schemas"]


def test_blast_radius_over_http_reflects_telemetry(api: TestClient, store: Store) -> None:
    rows = [{"id": f"e{i}", "ts": T0 + timedelta(minutes=i), "feature": "support-bot", "cost_source": "reported",
             "ingested_at": T0, "session_id": f"s{i % 2}", "user_id": "u", "cost_usd": 0.5} for i in range(6)]
    with store.transaction() as conn:
        store.insert_events(conn, rows)
    (sid,) = store.save_signals([{"monitor": "m", "category": "hallucination", "feature": "support-bot",
                                  "severity": "SEV2", "start": T0 + timedelta(minutes=2),
                                  "detected_at": T0 + timedelta(minutes=3), "evidence": ["e2"], "summary": "s",
                                  "details": {}, "created_at": T0}])
    inc = ok(api.post("/api/v1/incidents", json={**NEW, "signal_ids": [sid]}), 201)
    assert {k: inc["blast"][k] for k in ("events", "sessions", "users", "cost_usd")} == {
        "events": 4, "sessions": 2, "users": 1, "cost_usd": 2.0}
    assert inc["signals"][0]["id"] == sid and inc["started_at"].startswith("2026-11-27T04:02:00")
