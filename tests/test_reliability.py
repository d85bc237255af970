"""Crash safety: SIGKILL the ingesting process mid-file and mid-HTTP-stream, restart, re-send.
No acknowledged event may be lost, none may be stored twice, and the rollups must still agree
with the events exactly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from hotwash.demo.sample import generate_events, write_jsonl
from hotwash.store import Store

pytestmark = pytest.mark.slow


def _assert_consistent(store: Store, expected_ids: set[str]) -> None:
    status = store.status()
    assert status["events"] == len(expected_ids)
    rollups = store.rollup_rows()
    assert sum(r["events"] for r in rollups) == len(expected_ids)  # nothing counted twice
    # Spot-check the per-minute session counts against the raw events.
    by_minute: dict = {}
    for ev in store.iter_events():
        key = (ev["feature"], ev["ts"].replace(second=0, microsecond=0))
        by_minute.setdefault(key, set()).add(ev["session_id"])
    assert {(r["feature"], r["minute"]): r["sessions"] for r in rollups} == {
        k: len(v) for k, v in by_minute.items()}


def _wait_for(predicate, timeout: float = 60.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)


def test_sigkill_mid_file_then_resend(store: Store, workspace: Path) -> None:
    n = 60_000
    path = workspace / "big.jsonl"
    write_jsonl(str(path), n, rate_per_minute=600)
    env = {**os.environ, "HOTWASH_BATCH_SIZE": "1000"}
    proc = subprocess.Popen([sys.executable, "-m", "hotwash", "ingest", str(path), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: store.status()["events"] >= 5_000 or proc.poll() is not None)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    acknowledged = set(store.get_events([f"evt-{i:09d}" for i in range(n)]))
    assert 5_000 <= len(acknowledged) < n

    again = subprocess.run([sys.executable, "-m", "hotwash", "ingest", str(path), "--json"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    summary = orjson.loads(again.stdout)
    assert summary["accepted"] + summary["duplicates"] == n
    assert summary["duplicates"] >= len(acknowledged)
    all_ids = {f"evt-{i:09d}" for i in range(n)}
    assert acknowledged <= set(store.get_events(acknowledged))
    _assert_consistent(store, all_ids)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "hotwash", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_for(up, timeout=30)
    return proc


def test_sigkill_server_mid_stream_then_resend(store: Store, workspace: Path) -> None:
    events = list(generate_events(30_000, rate_per_minute=600))
    batches = [events[i:i + 250] for i in range(0, len(events), 250)]
    port = _free_port()
    acknowledged: set[str] = set()
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for batch in batches:
                if stop.is_set():
                    return
                try:
                    resp = client.post("/api/v1/events", content=orjson.dumps({"events": batch}),
                                       headers={"content-type": "application/json"})
                except httpx.HTTPError:
                    return  # the server died under us: this batch was never acknowledged
                if resp.status_code == 200:
                    acknowledged.update(e["id"] for e in batch)

    server = _serve(port)
    sender = threading.Thread(target=stream)
    try:
        sender.start()
        _wait_for(lambda: len(acknowledged) >= 3_000)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        stop.set()
        sender.join(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert 3_000 <= len(acknowledged) < len(events)
    assert acknowledged <= set(store.get_events(acknowledged)), "an acknowledged event was lost"

    server = _serve(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            duplicates = 0
            for batch in batches:
                resp = client.post("/api/v1/events", json={"events": batch})
                assert resp.status_code == 200, resp.text
                duplicates += resp.json()["duplicates"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert duplicates >= len(acknowledged)
    _assert_consistent(store, {e["id"] for e in events})
