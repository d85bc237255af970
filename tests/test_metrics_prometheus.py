"""hotwash's own metrics at /metrics: counted right in-process, and scraped by a real Prometheus
(Debian's /usr/bin/prometheus) from a live server, read back through Prometheus's query API."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hotwash.detect.engine import Signal
from hotwash.incidents import service as incidents
from hotwash.manifest import load_manifest
from hotwash.notify import Dispatcher, MemoryNotifier
from hotwash.settings import Settings, get_settings
from hotwash.store import Store
from hotwash.web import create_app

# One rule that fires on a burst of calls, so a few events make a real live signal.
MANIFEST = """\
features:
  support-bot: {}
monitors:
  rules:
    - {name: burst, category: runaway_cost, metric: events, window: 1, comparison: ">=", threshold: 5,
       severity: SEV2}
"""
T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def events(n: int, *, start: datetime = T0, prefix: str = "e") -> list[dict]:
    return [{"id": f"{prefix}{i}", "ts": (start + timedelta(seconds=i)).isoformat(), "feature": "support-bot",
             "tokens_in": 10} for i in range(n)]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def app_settings(tmp_path: Path, db_url: str) -> Settings:
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    return get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=tmp_path / "hotwash.yaml")


@pytest.fixture
def client(store: Store, app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings, store=store)) as c:
        yield c


def test_counters_and_gauges(client: TestClient, store: Store) -> None:
    app = client.app
    first = samples(client.get("/metrics").text)
    assert first[("hotwash_events_accepted_total", ())] == 0
    assert first[("hotwash_store_up", ())] == 1
    assert first[("hotwash_incidents_open", (("severity", "SEV2"),))] == 0

    # 6 calls in one minute (the burst), then one two minutes later, which closes that minute for the live engine.
    batch = [*events(6), *events(1, start=T0 + timedelta(minutes=2), prefix="late"), {"id": "bad"}]
    assert client.post("/api/v1/events", json=batch).json()["accepted"] == 7
    client.post("/api/v1/events", json=events(3))  # re-sent: duplicates
    assert app.state.live.wait_idle(10)
    m = samples(client.get("/metrics").text)
    assert m[("hotwash_events_accepted_total", ())] == 7
    assert m[("hotwash_events_duplicates_total", ())] == 3
    assert m[("hotwash_events_rejected_total", ())] == 1
    assert m[("hotwash_signals_detected_total", (("category", "runaway_cost"),))] == 1
    assert m[("hotwash_signals_stored", (("category", "runaway_cost"),))] == 1
    assert m[("hotwash_detector_lag_seconds", ())] == 0  # caught up
    assert [s["monitor"] for s in store.list_signals()] == ["rule.burst"]
    # The live signal (SEV2) opened an incident by policy.
    assert m[("hotwash_incidents_open", (("severity", "SEV2"),))] == 1

    manifest = load_manifest(app.state.settings.manifest)
    incidents.open_incident(store, manifest, title="by hand", category="drift", severity="SEV1",
                            features=["support-bot"], actor="ana")
    store.record_deliveries([{"signal_id": 1, "channel": "slack", "status": "failed", "attempts": 5,
                              "last_error": "HTTP 500", "updated_at": T0},
                             {"signal_id": 2, "channel": "pager", "status": "sent", "attempts": 1,
                              "last_error": None, "updated_at": T0}])
    m = samples(client.get("/metrics").text)
    assert m[("hotwash_incidents_open", (("severity", "SEV1"),))] == 1
    assert m[("hotwash_incidents_open", (("severity", "SEV2"),))] == 1
    assert m[("hotwash_notify_failed_deliveries", (("channel", "all"),))] == 1


def test_queue_depth_of_a_real_dispatcher(client: TestClient, store: Store) -> None:
    # Held for grouping for a minute: the signals wait in the channel, and /metrics shows how many.
    dispatcher = Dispatcher(store, [MemoryNotifier("slack"), MemoryNotifier("pager")], group_wait=60,
                            group_window=60)
    try:
        client.app.state.dispatcher = dispatcher
        sigs = [Signal(monitor="burst", category="runaway_cost", feature=f"f{i}", severity="SEV2", start=T0,
                       detected_at=T0, evidence=[], summary="x") for i in range(3)]
        dispatcher.submit(list(enumerate(sigs, start=1)))
        deadline = time.monotonic() + 5
        while dispatcher.queue_depths() != {"slack": 3, "pager": 3} and time.monotonic() < deadline:
            time.sleep(0.02)
        m = samples(client.get("/metrics").text)
        assert m[("hotwash_notify_queue_depth", (("channel", "slack"),))] == 3
        assert m[("hotwash_notify_queue_depth", (("channel", "pager"),))] == 3
        assert m[("hotwash_notify_failed_deliveries", (("channel", "slack"),))] == 0
    finally:
        client.app.state.dispatcher = None
        dispatcher.close(timeout=5)
    assert dispatcher.queue_depths() == {"slack": 0, "pager": 0}


def test_each_app_counts_on_its_own_registry(store: Store, app_settings: Settings) -> None:
    with TestClient(create_app(app_settings, store=store)) as a, TestClient(create_app(app_settings, store=store)) as b:
        a.post("/api/v1/events", json=events(2))
        assert samples(a.get("/metrics").text)[("hotwash_events_accepted_total", ())] == 2
        assert samples(b.get("/metrics").text)[("hotwash_events_accepted_total", ())] == 0


# -- a real Prometheus --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(live_server, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("Debian's prometheus package is required for this test (apt-get install prometheus)")
    target = live_server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: hotwash
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs: [{{targets: ["{target}"]}}]
""")
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def query(url: str, promql: str) -> list[dict]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for_value(url: str, promql: str, expected: float, timeout: float = 30) -> float | None:
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = query(url, promql)
        if result:
            seen = float(result[0]["value"][1])
            if seen == expected:
                return seen
        time.sleep(0.25)
    return seen


def test_prometheus_scrapes_what_was_ingested(live_server, prometheus: str) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        assert http.post("/api/v1/events", json=events(25)).json()["accepted"] == 25
        assert wait_for_value(prometheus, "hotwash_events_accepted_total", 25) == 25
        assert query(prometheus, 'up{job="hotwash"}')[0]["value"][1] == "1"
        assert float(query(prometheus, "hotwash_store_up")[0]["value"][1]) == 1

        # More data, and a re-send: Prometheus follows the live counters.
        http.post("/api/v1/events", json=events(10, start=T0 + timedelta(minutes=5), prefix="more"))
        http.post("/api/v1/events", json=events(4))
        assert wait_for_value(prometheus, "hotwash_events_accepted_total", 35) == 35
        assert wait_for_value(prometheus, "hotwash_events_duplicates_total", 4) == 4
        assert wait_for_value(prometheus, 'sum(hotwash_incidents_open)', 0) == 0
