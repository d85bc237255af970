"""The verify step's two proofs, on both databases, computed from real stored telemetry (the scenario
simulator's escalation overload of a ticket classifier, ingested through the real writer): both hold
for a real regression case and a proposed monitor, each fails when it should, they are stored per
run, the API serves them, and the whole incident goes from signal to `verified` through the CLI."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hotwash.cli import app
from hotwash.demo.scenarios import Scenario, single
from hotwash.detect.checks import EventChecker
from hotwash.detect.engine import MonitorEngine, save
from hotwash.errors import IllegalTransition
from hotwash.evals.cases import load_cases, write_case
from hotwash.evals.from_incident import add_from_incident
from hotwash.evals.monitor_from_incident import propose, store_proposal
from hotwash.evals.targets import CallableTarget
from hotwash.evals.verify import HEALTHY_SAMPLE, run_verify
from hotwash.incidents import service
from hotwash.manifest import Manifest, parse_manifest
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.telemetry.model import parse_record
from hotwash.telemetry.writer import EventWriter
from hotwash.web import auth, create_app

FEATURE = "ticket-classifier"


@cache
def _scenario() -> tuple[Scenario, list[dict]]:
    """Three quiet days of a ticket classifier, then its escalation rate jumps from 20 % to 60 %."""
    sc = single("escalation_overload", feature=FEATURE, quiet_days=3, after_days=0.25, rate_per_minute=5, seed=1)
    return sc, [e for e in sc.events() if e.get("feature") == FEATURE]


def _incident(store: Store) -> tuple[Manifest, dict]:
    sc, events = _scenario()
    manifest = parse_manifest(sc.manifest_yaml())
    EventWriter(store, EventChecker(manifest)).write([parse_record(dict(e)) for e in events])
    signals = save(store, MonitorEngine(store, manifest).backtest())
    [inc] = service.on_signals(store, manifest, signals)
    return manifest, inc


def _to_postmortem(store: Store, manifest: Manifest, ref: str) -> None:
    service.contain(store, manifest, ref, mode="human", actor="alice")
    for event in ("communicate", "diagnose"):
        service.step(store, manifest, ref, event, actor="alice")
    service.mitigate(store, manifest, ref, description="model switch rolled back", link="prompt:v3", actor="alice")
    service.step(store, manifest, ref, "postmortem", actor="alice")


def _answers_itself(input: str) -> dict:
    return {"output": "billing", "escalated": False}


def _still_escalates(input: str) -> dict:
    return {"output": "other", "escalated": True}


def _unreachable(input: str) -> dict:
    raise ConnectionRefusedError("connection refused by 127.0.0.1:9")


def test_both_proofs_hold_fail_when_they_should_and_gate_the_verified_state(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # case files are indexed by their path from the working directory
    manifest, inc = _incident(store)
    ref = inc["id"]

    # Nothing in place yet: both proofs are computed, stored, and fail saying what to do.
    first = run_verify(store, manifest, ref, actor="alice", quiet_days=3)
    assert first["regression"] == {"ok": False, "cases": [],
                                   "reason": f"{ref} has no regression case: write one with "
                                             f"`hotwash eval add --from {ref}`"}
    assert not first["monitor"]["ok"] and "monitor add --from" in first["monitor"]["reason"]
    assert {k: r["ok"] for k, r in store.latest_proofs(inc["number"]).items()} == {"regression": False,
                                                                                 "monitor": False}

    # A regression case from the incident's evidence and a monitor from its signal.
    written = add_from_incident(store, manifest, ref, directory=Path("evals"), limit=2)
    assert len(written) == 2 and all(w["catches"] for w in written)
    proposal = propose(store, manifest, inc, quiet_days=3)
    store_proposal(store, manifest, proposal, incident_id=inc["number"], actor="alice")

    result = run_verify(store, manifest, ref, actor="alice", quiet_days=3)
    reg, mon = result["regression"], result["monitor"]
    assert reg["ok"] and mon["ok"]
    # Proof 1, no target configured: each case fails on its recorded bad output (escalated) and
    # passes on most healthy outputs of the feature recorded before the incident.
    assert {c["id"] for c in reg["cases"]} == {w["id"] for w in written}
    for case in reg["cases"]:
        assert case["fails_on_recorded"] and case["passes_on_target"] and case["ok"]
        assert case["details"]["recorded"]["status"] == "failed"
        assert "escalated to a person" in case["details"]["recorded"]["reason"]
        healthy = case["details"]["healthy"]
        assert healthy["judged"] == HEALTHY_SAMPLE and HEALTHY_SAMPLE / 2 < healthy["passed"] < HEALTHY_SAMPLE
        assert case["target"] == f"healthy outputs of {FEATURE} before {ref}"
        healthy_ids = [f["event"] for f in healthy["failures"]]
        rows = store.get_events(healthy_ids)
        assert rows and all(r["escalated"] and r["ts"] < inc["started_at"] for r in rows.values())
    # Proof 2: the stored monitor, replayed over the stored telemetry, fires before the real detection.
    [m] = mon["monitors"]
    assert m["name"] == proposal.rule.name and m["fired"] and m["false_alarms"] == 0
    assert mon["lead_time_s"] == proposal.lead_time_s > 0 and mon["false_alarms"] == 0
    assert mon["fired_at"] == proposal.fired_at.isoformat().replace("+00:00", "Z")
    assert mon["detected_at"] == inc["detected_at"].isoformat().replace("+00:00", "Z")
    assert m["evidence"] and all(e["escalated"] is not None for e in store.get_events(m["evidence"]).values())
    # Computed at any state; the incident moves only from postmortem.
    assert result["status"] == "detected" and not result["verified"]
    assert [(p["kind"], p["ok"]) for p in store.list_proofs(inc["number"])] == [
        ("regression", False), ("monitor", False), ("regression", True), ("monitor", True)]
    assert store.latest_proofs(inc["number"])["monitor"]["data"]["lead_time_s"] == proposal.lead_time_s
    proofs_on_timeline = [e for e in service.get_incident(store, ref)["timeline"] if e["kind"] == "proof"]
    assert len(proofs_on_timeline) == 2 and "monitor proof holds" in proofs_on_timeline[-1]["text"]

    # With a target: a fixed feature passes, one that still escalates fails, an unreachable one is a
    # failure of each case with its cause, not a crash.
    fixed = run_verify(store, manifest, ref, actor="alice", quiet_days=3, target=CallableTarget(_answers_itself))
    assert fixed["regression"]["ok"] and all(c["target"].endswith("_answers_itself") for c in fixed["regression"]
                                             ["cases"])
    broken = run_verify(store, manifest, ref, actor="alice", quiet_days=3, target=CallableTarget(_still_escalates))
    assert not broken["regression"]["ok"]
    assert all(c["fails_on_recorded"] and not c["passes_on_target"] for c in broken["regression"]["cases"])
    down = run_verify(store, manifest, ref, actor="alice", quiet_days=3, target=CallableTarget(_unreachable),
                      timeout=5)
    reasons = [c["details"]["target"] for c in down["regression"]["cases"]]
    assert all(r["status"] == "error" and "ConnectionRefusedError" in r["reason"] for r in reasons)

    # The playbook refuses `verified` while the newest proofs fail.
    _to_postmortem(store, manifest, ref)
    with pytest.raises(IllegalTransition, match="the regression proof failed"):
        service.step(store, manifest, ref, "verify", actor="alice")

    # A case that PASSES on the recorded bad output catches nothing: proof 1 fails.
    [case] = load_cases([written[0]["path"]])
    lenient = case.model_copy(update={"id": "lenient", "assertions": [
        case.assertions[0].model_copy(update={"value": True})]})  # must escalate: what the bad output did
    digest = write_case(lenient, Path("evals/lenient.yaml"))
    store.index_eval_case(id="lenient", incident_id=inc["number"], feature=FEATURE, category=inc["category"],
                          path="evals/lenient.yaml", digest=digest, now=inc["opened_at"])
    # A monitor that never fires, and one that fires on quiet days too: proof 2 fails.
    never = proposal.rule.model_copy(update={"name": "never", "threshold": 1.01})
    noisy = proposal.rule.model_copy(update={"name": "noisy", "threshold": 0.3, "min_volume": 5})
    for rule in (never, noisy):
        store.add_stored_monitor(name=rule.name, incident_id=inc["number"], feature=FEATURE,
                                 rule=rule.model_dump(mode="json"), now=inc["opened_at"])
    bad = run_verify(store, manifest, ref, actor="alice", quiet_days=3)
    assert bad["status"] == "postmortem" and not bad["verified"]
    lenient_result = next(c for c in bad["regression"]["cases"] if c["id"] == "lenient")
    assert not lenient_result["fails_on_recorded"] and not lenient_result["ok"] and not bad["regression"]["ok"]
    assert "does not catch the failure" in lenient_result["details"]["recorded"]["reason"]
    by_name = {m["name"]: m for m in bad["monitor"]["monitors"]}
    assert not by_name["never"]["fired"] and by_name["never"]["lead_time_s"] is None
    assert by_name["noisy"]["false_alarms"] > 0 and not by_name["noisy"]["ok"]
    assert by_name[proposal.rule.name]["ok"] and not bad["monitor"]["ok"]
    assert bad["monitor"]["false_alarms"] == by_name["noisy"]["false_alarms"]
    assert "never" in bad["monitor"]["reason"] and "did not fire" in bad["monitor"]["reason"]

    # A case file deleted from the repository fails its case with the cause.
    Path("evals/lenient.yaml").unlink()
    gone = run_verify(store, manifest, ref, actor="alice", quiet_days=3)
    assert "cannot read the case file" in next(c for c in gone["regression"]["cases"]
                                               if c["id"] == "lenient")["details"]["error"]

    # Fixed: both proofs hold and the incident is verified.
    store.remove_eval_case("lenient")
    for name in ("never", "noisy"):
        store.remove_stored_monitor(name)
    done = run_verify(store, manifest, ref, actor="alice", quiet_days=3)
    assert done["regression"]["ok"] and done["monitor"]["ok"]
    assert done["status"] == "verified" and done["verified"]
    inc = service.get_incident(store, ref)
    assert inc["status"] == "verified" and inc["verified_at"] is not None


def test_api_verify_proofs_and_monitors(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        db_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    sc, _ = _scenario()
    _manifest, inc = _incident(store)
    (tmp_path / "hotwash.yaml").write_text(sc.manifest_yaml())
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=tmp_path / "hotwash.yaml")
    store.add_token(name="ci-viewer", token_hash=auth.token_hash("view-tok"), role="viewer", now=inc["opened_at"])
    store.add_token(name="bob", token_hash=auth.token_hash("resp-tok"), role="responder", now=inc["opened_at"])
    viewer = {"authorization": "Bearer view-tok"}
    responder = {"authorization": "Bearer resp-tok"}
    with TestClient(create_app(settings, store=store)) as client:
        assert client.get("/api/v1/monitors", headers=viewer).json() == []
        body = {"incident": inc["id"], "quiet_days": 3}
        assert client.post("/api/v1/monitors", json=body, headers=viewer).status_code == 403
        dry = client.post("/api/v1/monitors", json={**body, "dry_run": True}, headers=responder)
        assert dry.status_code == 200 and dry.json()["stored"] is None and dry.json()["proposal"]["name"]
        made = client.post("/api/v1/monitors", json=body, headers=responder)
        assert made.status_code == 201, made.text
        proposal, stored = made.json()["proposal"], made.json()["stored"]
        assert stored["name"] == proposal["name"] and stored["incident"] == inc["id"]
        assert proposal["false_alarms"] == 0 and proposal["lead_time_s"] > 0
        assert [m["name"] for m in client.get("/api/v1/monitors", headers=viewer).json()] == [stored["name"]]
        again = client.post("/api/v1/monitors", json={**body, "name": stored["name"]}, headers=responder)
        assert again.status_code == 409
        assert client.post("/api/v1/monitors", json={**body, "incident": "INC-77"},
                           headers=responder).status_code == 404
        assert client.post("/api/v1/monitors", json={**body, "quiet_days": -1},
                           headers=responder).status_code == 422

        assert client.post(f"/api/v1/incidents/{inc['id']}/verify", json={}, headers=viewer).status_code == 403
        verified = client.post(f"/api/v1/incidents/{inc['id']}/verify", json={"quiet_days": 3}, headers=responder)
        assert verified.status_code == 200, verified.text
        out = verified.json()
        assert out["monitor"]["ok"] and out["monitor"]["lead_time_s"] == proposal["lead_time_s"]
        assert not out["regression"]["ok"] and out["status"] == "detected"
        proofs = client.get(f"/api/v1/incidents/{inc['id']}/proofs", headers=viewer).json()
        assert proofs["incident"] == inc["id"]
        assert {k: v["ok"] for k, v in proofs["latest"].items()} == {"regression": False, "monitor": True}
        assert proofs["latest"]["monitor"]["data"]["fired_at"] == proposal["fired_at"]
        assert [p["kind"] for p in proofs["history"]] == ["regression", "monitor"]
        assert client.get("/api/v1/incidents/INC-77/proofs", headers=viewer).status_code == 404
        timeline = client.get(f"/api/v1/incidents/{inc['id']}", headers=viewer).json()["timeline"]
        assert [e["actor"] for e in timeline if e["kind"] == "proof"] == ["bob"]

        assert client.delete(f"/api/v1/monitors/{stored['name']}", headers=responder).status_code == 200
        assert client.delete(f"/api/v1/monitors/{stored['name']}", headers=responder).status_code == 404


def test_an_incident_from_signal_to_verified_through_the_cli(workspace: Path) -> None:
    """The issue's definition of done: telemetry in, signal, incident, new monitor, regression cases,
    the playbook, and `hotwash verify` moving it to `verified`, every step a CLI command."""
    sc, events = _scenario()
    (workspace / "hotwash.yaml").write_text(sc.manifest_yaml())
    (workspace / "telemetry.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    runner = CliRunner()

    def hotwash(*args: str) -> dict | list | None:
        result = runner.invoke(app, list(args), env={"HOTWASH_USER": "alice"})
        assert result.exit_code == 0, f"hotwash {' '.join(args)}: {result.output}{result.exception!r}"
        return orjson.loads(result.stdout) if "--json" in args else None

    hotwash("init")
    assert hotwash("ingest", "telemetry.jsonl", "--json")["accepted"] == len(events)
    detected = runner.invoke(app, ["detect", "--open", "--json"])
    assert detected.exit_code == 0, detected.output
    assert [orjson.loads(line)["monitor"] for line in detected.stdout.splitlines()] == ["escalation.rate"]
    [inc] = hotwash("incident", "list", "--json")  # opened by `detect --open`, by the manifest's policy
    ref = inc["id"]
    assert (inc["category"], inc["feature"], inc["status"]) == ("escalation_overload", FEATURE, "detected")

    added = hotwash("monitor", "add", "--from", ref, "--quiet-days", "3", "--yes", "--json")
    assert added["stored"] and added["false_alarms"] == 0 and added["lead_time_s"] > 0
    assert [m["name"] for m in hotwash("monitor", "list", "--json")] == [added["name"]]
    cases = hotwash("eval", "add", "--from", ref, "--limit", "1", "--json")
    assert len(cases) == 1 and cases[0]["catches"] and Path(cases[0]["path"]).is_file()

    hotwash("incident", "contain", ref, "--mode", "human")
    hotwash("incident", "update", ref, "--no-send")
    hotwash("incident", "step", ref, "diagnose")
    hotwash("incident", "mitigate", ref, "--description", "rolled back the model switch", "--link", "prompt:v3")
    hotwash("incident", "step", ref, "postmortem")
    refused = runner.invoke(app, ["incident", "step", ref, "verify"])
    assert isinstance(refused.exception, IllegalTransition)

    result = runner.invoke(app, ["verify", ref, "--quiet-days", "3", "--json"], env={"HOTWASH_USER": "alice"})
    assert result.exit_code == 0, result.output
    proofs = orjson.loads(result.stdout)
    assert proofs["incident"] == ref and proofs["status"] == "verified"
    assert proofs["regression"]["ok"] and proofs["regression"]["cases"][0]["fails_on_recorded"]
    assert proofs["monitor"]["ok"] and proofs["monitor"]["lead_time_s"] == added["lead_time_s"]
    assert proofs["monitor"]["false_alarms"] == 0
    shown = hotwash("incident", "show", ref, "--json")
    assert shown["status"] == "verified" and shown["verified_at"]
    assert any(e["kind"] == "proof" and e["actor"] == "alice" for e in shown["timeline"])

    # Human output, and a failing proof exits 1: the case file is gone.
    shutil.rmtree(workspace / "evals")
    failing = runner.invoke(app, ["verify", ref, "--quiet-days", "3"])
    assert failing.exit_code == 1
    assert "regression proof FAILS" in failing.stdout and "monitor proof holds" in failing.stdout
