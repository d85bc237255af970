"""``hotwash demo``: weeks of simulated traffic, detection, and the playbook worked by a team, then the UI.

The full demo runs once (a subprocess, like the README's `make demo`, on SQLite) and the tests read
what it printed and what it left in ``./hotwash-demo``. It is heavy (~150k events): one run, shared.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from hotwash.demo.playbook import _replace_todo
from hotwash.demo.run import demo_manifest_yaml, week_shift
from hotwash.demo.scenarios import demo_weeks
from hotwash.manifest import parse_manifest
from hotwash.store import open_store

CATEGORIES = {"hallucination", "prompt_injection", "drift", "runaway_cost", "escalation_overload", "scope_creep"}


def _env() -> dict[str, str]:
    """The environment without any HOTWASH_* setting: the demo must not depend on one."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HOTWASH_")}


def _hotwash(cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotwash", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(), timeout=timeout, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    cwd = tmp_path_factory.mktemp("demo")
    proc = _hotwash(cwd, "demo", "--no-serve", "--json", "--weeks", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield cwd / "hotwash-demo", orjson.loads(proc.stdout)


def test_demo_detects_every_failure_and_works_the_playbook(demo: tuple[Path, dict[str, Any]]) -> None:
    workspace, out = demo
    assert out["failures_injected"] == 7 and out["failures_detected"] == 7
    assert out["store"]["events"] > 100_000 and out["rejected"] == 0
    incidents = out["incidents"]
    # Each injected failure became one incident (the policy keeps SEV3/SEV4 echoes as signals).
    assert len(incidents) == 7, [(i["category"], i["feature"]) for i in incidents]
    assert {i["category"] for i in incidents} == CATEGORIES
    assert not out["problems"], out["problems"]
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for inc in incidents:
        by_cat.setdefault(inc["category"], []).append(inc)
    # The travel agent's runaway cost is contained by hotwash itself (manifest containment.auto),
    # the others by the named lead with a mode that fits the category.
    auto = [i for i in incidents if i["containment"] and i["containment"]["by"] == "hotwash (auto)"]
    assert auto and all(i["category"] == "runaway_cost" and i["containment"]["mode"] == "throttle" for i in auto)
    injection = by_cat["prompt_injection"][0]["containment"]
    assert (injection["mode"], injection["by"]) == ("disabled", "ana")
    assert by_cat["escalation_overload"][0]["containment"]["mode"] == "rollback"
    assert all(i["contained_at"] is not None and i["lead"] in out["people"] for i in incidents)
    assert all(i["time_to_contain_s"] is not None and i["time_to_contain_s"] >= 0 for i in incidents)
    # The second cost incident recurs: the first was closed before it opened.
    first_cost, second_cost = sorted(by_cat["runaway_cost"], key=lambda i: i["number"])
    assert first_cost["status"] == "closed" and first_cost["closed_at"] < second_cost["detected_at"]
    assert out["insights"]["recurrences"]["count"] >= 1

    # Postmortems: drafted for every incident, some published, one in review, the rest drafts.
    assert all(i["postmortem"] in ("draft", "in_review", "published") for i in incidents)
    assert out["postmortems"]["published"] >= 2 and out["postmortems"]["in_review"] >= 1
    assert out["postmortems"]["draft"] >= 1
    # Actions came from the drafts; some done, one deferred (the closed incident), one overdue.
    acts = out["actions"]
    assert acts["total"] >= 4 * len(incidents) and acts["done"] >= 4 and acts["deferred"] >= 1
    assert acts["overdue"] >= 1

    # Verified incidents: both proofs hold, the cases are on disk, the monitors stored.
    verified = [i for i in incidents if i["verified_at"] is not None]
    assert len(verified) >= 3 and out["verified"] == len(verified)
    for inc in verified:
        assert inc["proofs"] == {"regression": True, "monitor": True}, inc
        assert inc["eval_cases"] and inc["monitors"]
        for path in inc["eval_cases"]:
            assert (workspace / path).is_file() and path.startswith("evals/"), path

    # What the JSON says is what the store holds (read directly, not through the demo).
    store = open_store(f"sqlite:///{workspace / '.hotwash' / 'hotwash.db'}")
    try:
        for inc in verified:
            assert store.newest_proof_status(inc["number"]) == {"regression": True, "monitor": True}
        monitors = store.list_stored_monitors()
        assert {m["name"] for m in monitors} == {n for i in incidents for n in i["monitors"]} and monitors
        published = store.list_postmortems(status="published")
        assert len(published) == out["postmortems"]["published"]
        assert all(store.readers([p["id"]])[p["id"]] for p in published)  # read by people
        changed_by = {p["person"] for i in incidents for p in store.list_participants(i["number"])}
        assert {"ana", "ben", "chidi", "dana"} <= changed_by
    finally:
        store.dispose()

    # The workspace is an ordinary hotwash workspace: the CLI reads it with its defaults.
    status = _hotwash(workspace, "status", "--json", timeout=120)
    assert status.returncode == 0, status.stderr
    data = orjson.loads(status.stdout)
    assert data["incidents"] == len(incidents) and data["events"] == out["store"]["events"]
    assert data["signals"] == len(out["signals"]) > 0
    shown = _hotwash(workspace, "incident", "show", first_cost["id"], "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["status"] == "closed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_the_ui(demo: tuple[Path, dict[str, Any]]) -> None:
    workspace, out = demo
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hotwash", "demo", "--reuse", "--port", str(port)],
                            cwd=workspace.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"open http://127.0.0.1:{port}/" in first, first
        assert "local" in proc.stdout.readline()  # nobody configured: the UI runs as the local admin
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the demo server did not come up"
            time.sleep(0.3)
        page = httpx.get(f"{base}/", follow_redirects=True, timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        api = httpx.get(f"{base}/api/v1/incidents", timeout=30)
        assert api.status_code == 200
        assert len(api.json()) == len(out["incidents"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_reuse_without_a_demo_says_so(tmp_path: Path) -> None:
    proc = _hotwash(tmp_path, "demo", "--reuse", timeout=60)
    assert proc.returncode == 2
    assert "run `hotwash demo` first" in proc.stderr


# -- the parts, quickly --------------------------------------------------------------------------
def test_demo_manifest_adds_the_policy_and_auto_containment() -> None:
    sc = demo_weeks(weeks=3, rate_per_minute=5.0)
    text = demo_manifest_yaml(sc)
    manifest = parse_manifest(text)
    assert manifest.incidents.open_min_severity == "SEV2"
    assert manifest.incidents.open_on == {"drift": "SEV3"}
    agent = manifest.features["travel-agent"].containment
    assert agent.auto == {"runaway_cost": "throttle"} and agent.throttle_rps == 2
    assert manifest.features["support-bot"].containment.auto == {}
    assert set(yaml.safe_load(text)["features"]) == set(sc.features)


def test_week_shift_ends_within_the_last_week() -> None:
    end = datetime(2026, 11, 23, tzinfo=UTC)
    for now in (end, end + timedelta(days=3), end + timedelta(days=7), end - timedelta(days=1),
                end + timedelta(days=400, hours=5)):
        shift = week_shift(end, now)
        assert shift % timedelta(days=7) == timedelta(0)
        assert now - timedelta(days=7) < end + shift <= now


def test_replace_todo_fills_the_placeholder() -> None:
    text = "Category: drift.\n\nTODO: state the root cause\nTODO: another"
    filled = _replace_todo(text, "The prompt changed.")
    assert filled == "Category: drift.\n\nThe prompt changed."
    assert _replace_todo("", "Lessons.") == "Lessons."
