"""Kill switches: the service, the store, the HTTP API and the CLI, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.containment.flags import MODES, get_flag, list_flags, set_mode
from hotwash.errors import InvalidValue, NotFound, StaleUpdate
from hotwash.incidents.service import contain, open_incident
from hotwash.manifest import parse_manifest
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.store.tables import incidents
from hotwash.web import auth, create_app

MANIFEST = """\
version: 1
features:
  support-bot:
    containment: {rollback_to: {prompt_version: v11, model: gpt-4o-mini}, throttle_rps: 2.5}
  summarizer:
    containment: {default: human}
  plain-bot: {}
"""
T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


@pytest.fixture
def manifest():
    return parse_manifest(MANIFEST)


def add_incident(store: Store, feature: str, *, features: list[str] | None = None, status: str = "detected") -> int:
    """An open incident through the incident service; a closed one straight into its table."""
    if status == "detected":
        opened = open_incident(store, parse_manifest(MANIFEST), title=f"trouble in {feature}",
                               category="hallucination", severity="SEV2", features=features or [feature],
                               actor="test", now=T0)
        return int(opened["number"])
    with store.transaction() as conn:
        return int(conn.execute(incidents.insert().values(
            title=f"trouble in {feature}", category="hallucination", severity="SEV2", status=status,
            feature=feature, features=features or [feature], opened_by="test", opened_at=T0,
            detected_at=T0).returning(incidents.c.id)).scalar_one())


def flag_entries(store: Store, incident_id: int) -> list[dict]:
    return [e for e in store.list_timeline(incident_id) if e["kind"] == "flag"]


# -- the service ------------------------------------------------------------------------------
def test_unset_flags_are_the_manifest_default(store: Store, manifest) -> None:
    assert get_flag(store, manifest, "support-bot") == {
        "feature": "support-bot", "mode": "enabled", "params": {}, "reason": None, "incident": None,
        "updated_at": None, "updated_by": None, "version": 0, "source": "default"}
    assert get_flag(store, manifest, "summarizer")["mode"] == "human"
    unknown = get_flag(store, manifest, "never-declared")
    assert (unknown["mode"], unknown["source"], unknown["version"]) == ("enabled", "default", 0)
    set_mode(store, manifest, "side-project", "disabled", actor="ana", now=T0)
    assert [(f["feature"], f["mode"], f["source"]) for f in list_flags(store, manifest)] == [
        ("plain-bot", "enabled", "default"), ("side-project", "disabled", "set"),
        ("summarizer", "human", "default"), ("support-bot", "enabled", "default")]


def test_set_mode_bumps_the_version_and_lands_on_each_open_incident(store: Store, manifest) -> None:
    primary = add_incident(store, "support-bot")
    secondary = add_incident(store, "search", features=["search", "support-bot"])
    closed = add_incident(store, "support-bot", status="closed")
    other = add_incident(store, "summarizer")

    flag = set_mode(store, manifest, "support-bot", "human", actor="ana", reason="bad answers", now=T0)
    assert {k: flag[k] for k in ("mode", "version", "source", "updated_by", "reason", "params")} == {
        "mode": "human", "version": 1, "source": "set", "updated_by": "ana", "reason": "bad answers", "params": {}}
    assert flag["updated_at"] == T0

    flag = set_mode(store, manifest, "support-bot", "throttle", actor="bo", incident_id=primary, expected_version=1)
    assert (flag["mode"], flag["version"], flag["params"], flag["incident"]) == (
        "throttle", 2, {"rate_per_s": 2.5}, f"INC-{primary}")
    assert get_flag(store, manifest, "support-bot") == flag

    for incident in (primary, secondary):
        entries = flag_entries(store, incident)
        assert [(e["actor"], e["text"]) for e in entries] == [
            ("ana", "support-bot: enabled → human (bad answers)"), ("bo", "support-bot: human → throttle")]
        assert entries[1]["data"] == {"feature": "support-bot", "from": "human", "to": "throttle",
                                      "params": {"rate_per_s": 2.5}, "version": 2}
    assert flag_entries(store, closed) == [] and flag_entries(store, other) == []


def test_containing_an_incident_sets_its_flag(store: Store, manifest) -> None:
    number = add_incident(store, "support-bot")
    done = contain(store, manifest, number, mode="rollback", actor="ana", now=T0)
    assert done["status"] == "contained"
    flag = get_flag(store, manifest, "support-bot")
    assert (flag["mode"], flag["params"]["prompt_version"], flag["incident"], flag["updated_by"]) == (
        "rollback", "v11", f"INC-{number}", "ana")
    assert [e["text"] for e in flag_entries(store, number)] == ["support-bot: enabled → rollback"]


def test_mode_params(store: Store, manifest) -> None:
    rollback = set_mode(store, manifest, "support-bot", "rollback", actor="ana")
    assert rollback["params"] == {"prompt_version": "v11", "model": "gpt-4o-mini"}
    own_rate = set_mode(store, manifest, "support-bot", "throttle", actor="ana",
                        params={"rate_per_s": 0.5, "budget_usd_per_day": 40})
    assert own_rate["params"] == {"rate_per_s": 0.5, "budget_usd_per_day": 40}
    budget_only = set_mode(store, manifest, "plain-bot", "throttle", actor="ana", params={"budget_usd_per_day": 9})
    assert budget_only["params"] == {"budget_usd_per_day": 9}

    with pytest.raises(InvalidValue) as exc:
        set_mode(store, manifest, "plain-bot", "rollback", actor="ana")
    assert exc.value.field == "features.plain-bot.containment.rollback_to"
    assert "features.plain-bot.containment.rollback_to" in str(exc.value)
    with pytest.raises(InvalidValue) as exc:
        set_mode(store, manifest, "plain-bot", "throttle", actor="ana")
    assert exc.value.field == "params.rate_per_s" and "throttle_rps" in str(exc.value)
    with pytest.raises(InvalidValue) as exc:
        set_mode(store, manifest, "support-bot", "throttle", actor="ana", params={"rate_per_s": -1})
    assert exc.value.field == "params.rate_per_s"
    with pytest.raises(InvalidValue) as exc:
        set_mode(store, manifest, "support-bot", "rollback", actor="ana", params={"prompt": "v9"})
    assert exc.value.field == "params.prompt"
    with pytest.raises(InvalidValue) as exc:
        set_mode(store, manifest, "support-bot", "off", actor="ana")
    assert exc.value.field == "mode" and all(m in str(exc.value) for m in MODES)
    # None of the refused changes was written.
    assert get_flag(store, manifest, "plain-bot")["version"] == 1
    assert get_flag(store, manifest, "support-bot")["version"] == 2


def test_refused_changes_write_nothing(store: Store, manifest) -> None:
    incident = add_incident(store, "support-bot")
    set_mode(store, manifest, "support-bot", "human", actor="ana")
    with pytest.raises(StaleUpdate, match="version 1 \\(human, set by ana\\), not 0"):
        set_mode(store, manifest, "support-bot", "disabled", actor="bo", expected_version=0)
    with pytest.raises(StaleUpdate, match="never been set"):
        set_mode(store, manifest, "plain-bot", "disabled", actor="bo", expected_version=3)
    with pytest.raises(NotFound, match="INC-999"):
        set_mode(store, manifest, "support-bot", "disabled", actor="bo", incident_id=999)
    assert get_flag(store, manifest, "support-bot")["mode"] == "human"
    assert get_flag(store, manifest, "plain-bot")["source"] == "default"
    assert len(flag_entries(store, incident)) == 1


def test_flag_and_timeline_are_one_unit_of_work(store: Store, manifest, monkeypatch: pytest.MonkeyPatch) -> None:
    add_incident(store, "support-bot")
    add_incident(store, "support-bot")
    calls = []
    real = store.add_timeline

    def second_fails(**kw):
        calls.append(kw["incident_id"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kw)

    monkeypatch.setattr(store, "add_timeline", second_fails)
    with pytest.raises(RuntimeError):
        set_mode(store, manifest, "support-bot", "disabled", actor="ana")
    monkeypatch.undo()
    assert get_flag(store, manifest, "support-bot")["source"] == "default"
    assert all(flag_entries(store, i) == [] for i in calls)


def test_concurrent_changes_from_one_version_let_exactly_one_through(store: Store, manifest) -> None:
    set_mode(store, manifest, "support-bot", "human", actor="ana")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(mode: str) -> None:
        barrier.wait()
        try:
            set_mode(store, manifest, "support-bot", mode, actor=mode, expected_version=1)
            outcomes.append("ok")
        except StaleUpdate:
            outcomes.append("stale")

    threads = [threading.Thread(target=attempt, args=(m,)) for m in ("disabled", "enabled", "human", "rollback")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok", "stale", "stale", "stale"]
    assert get_flag(store, manifest, "support-bot")["version"] == 2


# -- the HTTP API -----------------------------------------------------------------------------
@pytest.fixture
def api(store: Store, tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    path = tmp_path / "hotwash.yaml"
    path.write_text(MANIFEST)
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=path, flag_max_age=7)
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def tokens(store: Store) -> dict[str, str]:
    made = {}
    for role in ("viewer", "responder"):
        made[role] = f"tok-{role}"
        store.add_token(name=f"{role}-bot", token_hash=auth.token_hash(made[role]), role=role, now=T0)
    return made


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_api_reads_are_cacheable_and_revalidate(api: TestClient) -> None:
    first = api.get("/api/v1/flags/support-bot")
    assert first.status_code == 200
    assert first.json()["mode"] == "enabled" and first.json()["source"] == "default"
    assert first.headers["cache-control"] == "private, max-age=7"
    etag = first.headers["etag"]
    assert etag.startswith('"v0-enabled-')
    again = api.get("/api/v1/flags/support-bot", headers={"if-none-match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert api.get("/api/v1/flags/support-bot", headers={"if-none-match": f'W/{etag}, "x"'}).status_code == 304

    put = api.put("/api/v1/flags/support-bot", json={"mode": "human", "reason": "loop", "expected_version": 0})
    assert put.status_code == 200 and put.json()["version"] == 1 and put.json()["updated_by"] == "local"
    changed = api.get("/api/v1/flags/support-bot", headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed.json()["mode"] == "human"
    assert changed.headers["etag"].startswith('"v1-human-') and changed.headers["etag"] != etag

    unknown = api.get("/api/v1/flags/not-in-the-manifest")
    assert unknown.status_code == 200 and unknown.json()["mode"] == "enabled"
    listing = api.get("/api/v1/flags")
    assert [f["feature"] for f in listing.json()] == ["plain-bot", "summarizer", "support-bot"]
    assert api.get("/api/v1/flags", headers={"if-none-match": listing.headers["etag"]}).status_code == 304
    assert {"/api/v1/flags", "/api/v1/flags/{feature}"} <= set(api.get("/api/v1/openapi.json").json()["paths"])


def test_api_refuses_bad_changes_with_clear_4xx(api: TestClient, store: Store) -> None:
    bad = api.put("/api/v1/flags/support-bot", json={"mode": "off"})
    assert bad.status_code == 422 and bad.json()["field"] == "mode" and "throttle" in bad.json()["detail"]
    rollback = api.put("/api/v1/flags/plain-bot", json={"mode": "rollback"})
    assert rollback.status_code == 422
    assert rollback.json()["field"] == "features.plain-bot.containment.rollback_to"
    assert api.put("/api/v1/flags/support-bot", json={"mode": "human"}).status_code == 200
    stale = api.put("/api/v1/flags/support-bot", json={"mode": "disabled", "expected_version": 0})
    assert stale.status_code == 409 and "version 1" in stale.json()["detail"]
    missing = api.put("/api/v1/flags/support-bot", json={"mode": "disabled", "incident": "INC-42"})
    assert missing.status_code == 404
    assert api.put("/api/v1/flags/support-bot", json={"mode": "disabled", "incident": "x"}).status_code == 422
    assert api.get("/api/v1/flags/support-bot").json()["version"] == 1

    incident = add_incident(store, "support-bot")
    linked = api.put("/api/v1/flags/support-bot", json={"mode": "throttle", "params": {"rate_per_s": 1},
                                                         "incident": f"INC-{incident}"})
    assert linked.status_code == 200 and linked.json()["incident"] == f"INC-{incident}"
    assert [e["text"] for e in flag_entries(store, incident)] == ["support-bot: human → throttle"]


def test_api_roles_read_only_token_reads_and_cannot_write(api: TestClient, store: Store) -> None:
    made = tokens(store)
    assert api.get("/api/v1/flags/support-bot").status_code == 401
    assert api.get("/api/v1/flags").status_code == 401
    assert api.get("/api/v1/flags/support-bot", headers=bearer("wrong")).status_code == 401
    read = api.get("/api/v1/flags/support-bot", headers=bearer(made["viewer"]))
    assert read.status_code == 200 and read.json()["mode"] == "enabled"
    assert api.get("/api/v1/flags", headers=bearer(made["viewer"])).status_code == 200
    denied = api.put("/api/v1/flags/support-bot", json={"mode": "disabled"}, headers=bearer(made["viewer"]))
    assert denied.status_code == 403
    assert api.put("/api/v1/flags/support-bot", json={"mode": "disabled"}).status_code == 401
    done = api.put("/api/v1/flags/support-bot", json={"mode": "disabled"}, headers=bearer(made["responder"]))
    assert done.status_code == 200 and done.json()["updated_by"] == "responder-bot"
    assert api.get("/api/v1/flags/support-bot", headers=bearer(made["viewer"])).json()["mode"] == "disabled"


# -- the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def cli_env(workspace: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    (workspace / "hotwash.yaml").write_text(MANIFEST)
    monkeypatch.setenv("HOTWASH_USER", "cli-user")
    return workspace


def run(*args: str):
    result = CliRunner().invoke(cli_app, list(args), catch_exceptions=True)
    return result


def test_cli_get_set_list(cli_env: Path, store: Store) -> None:
    incident = add_incident(store, "support-bot")
    got = run("flag", "get", "summarizer", "--json")
    assert got.exit_code == 0, got.output
    assert orjson.loads(got.stdout)["mode"] == "human"

    done = run("flag", "set", "support-bot", "throttle", "--rate", "0.5", "--reason", "cost spike",
               "--incident", f"INC-{incident}", "--json")
    assert done.exit_code == 0, done.output
    flag = orjson.loads(done.stdout)
    assert {k: flag[k] for k in ("mode", "params", "reason", "incident", "updated_by", "version")} == {
        "mode": "throttle", "params": {"rate_per_s": 0.5}, "reason": "cost spike", "incident": f"INC-{incident}",
        "updated_by": "cli-user", "version": 1}
    assert [(e["actor"], e["text"]) for e in flag_entries(store, incident)] == [
        ("cli-user", "support-bot: enabled → throttle (cost spike)")]

    listing = orjson.loads(run("flag", "list", "--json").stdout)
    assert [(f["feature"], f["mode"]) for f in listing] == [
        ("plain-bot", "enabled"), ("summarizer", "human"), ("support-bot", "throttle")]
    human = run("flag", "get", "support-bot")
    assert "support-bot: throttle" in human.stdout and "cost spike" in human.stdout

    stale = run("flag", "set", "support-bot", "enabled", "--expected-version", "0")
    assert stale.exit_code != 0 and isinstance(stale.exception, StaleUpdate)
    assert run("flag", "get", "support-bot", "--json").stdout.count('"throttle"') == 1


def test_cli_refuses_a_rollback_the_manifest_cannot_pin(cli_env: Path) -> None:
    result = run("flag", "set", "plain-bot", "rollback")
    assert isinstance(result.exception, InvalidValue)
    assert result.exception.field == "features.plain-bot.containment.rollback_to"


def test_cli_bad_mode_exits_2_naming_the_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the mode is checked before any store is opened
    result = subprocess.run([sys.executable, "-m", "hotwash", "flag", "set", "support-bot", "paused"],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False)
    assert result.returncode == 2
    assert "unknown mode 'paused'" in result.stderr and "enabled, disabled, human, rollback, throttle" in result.stderr
    assert not (tmp_path / ".hotwash").exists()
