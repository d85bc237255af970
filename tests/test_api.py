"""The JSON ingest API through the real app (in-process ASGI), on both databases."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.web import create_app

EVENT = {"id": "a1", "ts": "2026-11-27T04:25:28Z", "feature": "support-bot", "tokens_in": 10}


@pytest.fixture
def client(store: Store, tmp_path, db_url: str) -> Iterator[TestClient]:
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, ingest_token="s3cret",
                            max_body_bytes=20_000)
    with TestClient(create_app(settings, store=store)) as c:
        c.headers["authorization"] = "Bearer s3cret"
        yield c


def test_token_is_required_and_checked(client: TestClient) -> None:
    body = {"events": [EVENT]}
    assert client.post("/api/v1/events", json=body, headers={"authorization": ""}).status_code == 401
    wrong = client.post("/api/v1/events", json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "ingest token" in wrong.json()["detail"]
    assert client.post("/v1/traces", content=b"", headers={"authorization": "Basic x"}).status_code == 401
    assert client.post("/api/v1/events", json=body).status_code == 200


def test_batch_with_bad_records_reports_each_and_keeps_the_rest(client: TestClient, store: Store) -> None:
    body = [EVENT, {"id": "a2", "feature": "x"}, "nope", {**EVENT, "id": "a3", "confidence": 7},
            {"type": "change", "id": "c1", "ts": "2026-11-27T04:00:00Z", "feature": "support-bot",
             "kind": "prompt", "version": "v2"}]
    r = client.post("/api/v1/events", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["accepted"] == 2 and out["duplicates"] == 0
    assert [(x["index"], x["id"]) for x in out["rejected"]] == [(1, "a2"), (2, None), (3, "a3")]
    assert "missing required field 'ts'" in out["rejected"][0]["reason"]
    assert "field 'confidence'" in out["rejected"][2]["reason"]
    again = client.post("/api/v1/events", json=body).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    assert client.get("/api/v1/status").json() == {"events": 1, "changes": 1, "features": {"support-bot": 1},
                                                 "signals": 0}


def test_an_integer_beyond_64_bits_is_refused_with_its_field_not_rounded(client: TestClient, store: Store) -> None:
    body = '[{"id": "big", "ts": "2026-11-27T04:00:00Z", "feature": "f", "tags": {"n": 1180591620717411303424}}]'
    r = client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["accepted"] == 0
    assert r.json()["rejected"][0]["reason"].startswith("field 'tags.n': integer outside the 64-bit range")
    assert store.get_events(["big"]) == {}


def test_gzip_garbage_and_oversized_bodies(client: TestClient) -> None:
    packed = gzip.compress(orjson.dumps({"events": [EVENT]}))
    ok = client.post("/api/v1/events", content=packed,
                     headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    bad = client.post("/api/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["detail"]
    shape = client.post("/api/v1/events", json={"event": []})
    assert shape.status_code == 400 and "JSON array of events" in shape.json()["detail"]
    big = client.post("/api/v1/events", json={"events": [{**EVENT, "input": "x" * 30_000}]})
    assert big.status_code == 413
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")  # tiny on the wire, 5 MB unpacked
    assert len(bomb) < 20_000
    r = client.post("/api/v1/events", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["detail"]
    assert client.post("/api/v1/events", content=b"x", headers={"content-encoding": "br"}).status_code == 400


def test_openapi_document_lists_the_ingest_endpoints(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/v1/traces", "/api/v1/events", "/api/v1/status"} <= set(doc["paths"])


def test_serve_refuses_an_open_address_without_a_token(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTWASH_")}
    subprocess.run([sys.executable, "-m", "hotwash", "init"], env=env, capture_output=True, timeout=60, check=True)
    # It must refuse before binding anything: the address is never listened on.
    r = subprocess.run([sys.executable, "-m", "hotwash", "serve", "--host", "0.0.0.0"], env=env,  # noqa: S104
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "HOTWASH_INGEST_TOKEN" in r.stderr and "hotwash token add" in r.stderr


def test_live_detection_runs_off_the_request_path(store: Store, tmp_path, db_url: str) -> None:
    manifest = tmp_path / "hotwash.yaml"
    manifest.write_text("features:\n  bot:\n    capabilities: {tools: [search_kb]}\n")
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=manifest)
    calls = [{"id": f"e{i}", "ts": f"2026-11-27T04:{i:02d}:00Z", "feature": "bot",
              "tool_calls": [{"name": "delete_account" if i == 3 else "search_kb"}]} for i in range(6)]
    with TestClient(create_app(settings, store=store)) as c:
        for ev in calls:  # one call a minute: minute 3 closes when the minute-4 event arrives
            assert c.post("/api/v1/events", json=[ev]).status_code == 200
        assert c.app.state.live.wait_idle(timeout=20)
        (sig,) = store.list_signals()
    assert (sig["monitor"], sig["feature"], sig["evidence"]) == ("scope.off_manifest", "bot", ["e3"])


def test_ingest_takes_a_responder_token_once_people_or_tokens_exist(store: Store, tmp_path, db_url: str) -> None:
    from datetime import UTC, datetime

    from hotwash.web.auth import token_hash

    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url)
    now = datetime.now(UTC)
    store.add_token(name="ci", token_hash=token_hash("hw_responder"), role="responder", now=now)
    store.add_token(name="dash", token_hash=token_hash("hw_viewer"), role="viewer", now=now)
    with TestClient(create_app(settings, store=store)) as c:
        body = {"events": [EVENT]}
        assert c.post("/api/v1/events", json=body).status_code == 401  # configured: no longer open
        assert c.post("/api/v1/events", json=body, headers={"authorization": "Bearer hw_viewer"}).status_code == 401
        assert c.post("/api/v1/events", json=body, headers={"authorization": "Bearer nope"}).status_code == 401
        ok = c.post("/api/v1/events", json=body, headers={"authorization": "Bearer hw_responder"})
        assert ok.status_code == 200 and ok.json()["accepted"] == 1
