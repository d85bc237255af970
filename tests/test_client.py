"""The embeddable client: delivery to a real server, idempotent re-sends, and that ``record()``
neither blocks nor raises whatever happens to the server or the input."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from hotwash.client import HotwashClient


def _ok(request: httpx.Request) -> httpx.Response:
    n = len(_events(request))
    return httpx.Response(200, json={"accepted": n, "duplicates": 0, "rejected": []})


def _events(request: httpx.Request) -> list[dict]:
    body = request.content
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)["events"]


def _mock(handler: Callable[[httpx.Request], httpx.Response], **kw) -> HotwashClient:
    kw = {"backoff": 0.001, "flush_interval": 0.05, **kw}
    return HotwashClient("http://hotwash.test", transport=httpx.MockTransport(handler), **kw)


# -- against the real server (sqlite and postgresql) ----------------------------------------


def test_delivers_events_and_a_change_to_a_real_server(live_server, store):
    ids = [f"evt-{i}" for i in range(2000)]
    with HotwashClient(live_server.url, flush_interval=0.2) as client:
        for i, eid in enumerate(ids):
            assert client.record({"id": eid, "feature": "bot-a" if i % 2 else "bot-b"},
                                 ts=datetime(2026, 11, 27, 4, i // 60, i % 60, tzinfo=UTC),
                                 model="gpt-4o-mini", tokens_in=i, output=f"answer {i}",
                                 escalated=i % 10 == 0, tenant="acme")
        assert client.record_change("bot-a", "prompt", version="v12", previous="v11",
                                    description="tone rewrite", link="https://x/1", id="chg-7",
                                    ts="2026-11-20T10:00:00Z")
        assert client.flush(timeout=60)
        stats = client.stats
    assert (stats.queued, stats.sent, stats.accepted, stats.duplicates) == (0, 2001, 2001, 0)
    assert (stats.rejected, stats.dropped, stats.failed) == (0, 0, 0)

    status = store.status()
    assert (status["events"], status["changes"]) == (2000, 1)
    assert status["features"] == {"bot-a": 1000, "bot-b": 1000}
    rows = store.get_events(ids)
    assert set(rows) == set(ids)
    row = rows["evt-1234"]
    assert row["feature"] == "bot-b" and row["model"] == "gpt-4o-mini"
    assert row["tokens_in"] == 1234 and row["output"] == "answer 1234"
    assert row["ts"] == datetime(2026, 11, 27, 4, 20, 34, tzinfo=UTC)
    assert row["escalated"] is False and rows["evt-1230"]["escalated"] is True
    assert row["tags"] == {"tenant": "acme"}  # an unknown key is kept in tags
    (change,) = store.list_changes()
    assert {k: change[k] for k in ("id", "feature", "kind", "version", "previous",
                                   "description", "link")} == {
        "id": "chg-7", "feature": "bot-a", "kind": "prompt", "version": "v12",
        "previous": "v11", "description": "tone rewrite", "link": "https://x/1"}
    assert change["ts"] == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_resending_the_same_ids_stores_them_once(live_server, store):
    with HotwashClient(live_server.url) as client:
        for _ in range(2):
            for i in range(100):
                client.record(id=f"dup-{i}", ts="2026-11-27T04:00:00Z", feature="bot")
            client.record_change("bot", "deploy", id="chg-dup", ts="2026-11-27T03:00:00Z")
            assert client.flush(timeout=30)
        stats = client.stats
    assert (stats.sent, stats.accepted, stats.duplicates, stats.rejected) == (202, 101, 101, 0)
    status = store.status()
    assert (status["events"], status["changes"], status["features"]) == (100, 1, {"bot": 100})


def test_bad_input_never_raises(live_server, store, caplog):
    class Unencodable:
        pass

    circular: dict = {"feature": "bot"}
    circular["self"] = circular
    caplog.set_level(logging.DEBUG, logger="hotwash.client")
    mine = {"feature": "bot", "id": "ok-1"}
    with HotwashClient(live_server.url) as client:
        assert not client.record(["not", "a", "dict"])
        assert not client.record("a string")
        assert not client.record(42)
        assert not client.record({"feature": "bot", "obj": Unencodable()})
        assert not client.record(feature="bot", blob=b"\x00bytes")
        assert not client.record({1: "non-string key", "feature": "bot"})
        assert not client.record(circular)
        assert client.record(mine, model="m")  # fields are merged into a copy
        assert client.record({"input": "no feature"})  # the server's job: comes back rejected
        assert client.record(feature="bot", confidence=7)  # out of range: rejected by the server
        assert client.record_change("bot", "nonsense-kind")  # rejected by the server
        assert client.flush(timeout=30)
        stats = client.stats
    assert mine == {"feature": "bot", "id": "ok-1"}
    assert (stats.dropped, stats.accepted, stats.rejected, stats.failed) == (7, 1, 3, 0)
    assert not client.record(feature="bot")  # after close: dropped, not raised
    assert client.stats.dropped == 8
    assert store.status()["events"] == 1 and store.get_events(["ok-1"])["ok-1"]["model"] == "m"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("takes a dict" in r.getMessage() for r in warnings) == 1  # once per kind
    assert sum("rejected event" in r.getMessage() for r in warnings) == 1


# -- failure handling -------------------------------------------------------------------------


def test_unreachable_server_fails_after_retries_without_blocking_record():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = HotwashClient(f"http://127.0.0.1:{port}", max_retries=3, backoff=0.01, timeout=1)
    try:
        for i in range(20):
            start = time.perf_counter()
            assert client.record(feature="bot", i=i)
            assert time.perf_counter() - start < 0.05
        assert client.flush(timeout=20)
        stats = client.stats
        assert (stats.failed, stats.sent, stats.accepted, stats.queued) == (20, 0, 0, 0)
        assert stats.retries == 3
    finally:
        client.close()


def test_full_queue_drops_instead_of_blocking():
    gate = threading.Event()

    def blocked(request: httpx.Request) -> httpx.Response:
        gate.wait(10)
        return _ok(request)

    client = _mock(blocked, max_queue=100, batch_size=10, flush_interval=0.01)
    try:
        slowest = 0.0
        for i in range(1000):
            start = time.perf_counter()
            client.record(feature="bot", i=i)
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 0.05
        stats = client.stats
        assert stats.dropped >= 1000 - 100 - 10
        assert stats.queued + stats.dropped == 1000
        gate.set()
        assert client.flush(timeout=10)
        assert client.stats.accepted == 1000 - stats.dropped
    finally:
        gate.set()
        client.close()


def test_503_and_429_are_retried_honouring_retry_after():
    answers = [httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": "store down"}),
               httpx.Response(429, headers={"Retry-After": "0"})]
    seen: list[tuple[float, list[dict]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), _events(request)))
        return answers.pop(0) if answers else _ok(request)

    with _mock(handler) as client:
        for i in range(5):
            client.record(feature="bot", i=i)
        assert client.flush(timeout=10)
        stats = client.stats
    assert (stats.retries, stats.accepted, stats.failed, stats.sent) == (2, 5, 0, 5)
    assert len(seen) == 3 and seen[0][1] == seen[1][1] == seen[2][1]  # same ids each time
    assert seen[1][0] - seen[0][0] >= 0.9  # waited as Retry-After said


def test_timeouts_and_5xx_are_retried_then_given_up():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(500, text="boom")

    with _mock(handler, max_retries=3) as client:
        client.record(feature="bot")
        client.record(feature="bot")
        assert client.flush(timeout=10)
        stats = client.stats
    assert len(calls) == 4
    assert (stats.retries, stats.failed, stats.sent, stats.rejected) == (3, 2, 0, 0)


@pytest.mark.parametrize("status", [400, 401, 422])
def test_4xx_is_not_retried(status):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"detail": "no"})

    with _mock(handler) as client:
        for _ in range(3):
            client.record(feature="bot")
        assert client.flush(timeout=10)
        stats = client.stats
    assert len(calls) == 1
    assert (stats.rejected, stats.retries, stats.failed) == (3, 0, 0)


def test_too_large_batches_are_split():
    sizes = []

    def handler(request: httpx.Request) -> httpx.Response:
        n = len(_events(request))
        sizes.append(n)
        return _ok(request) if n <= 2 else httpx.Response(413, json={"detail": "too large"})

    with _mock(handler, batch_size=10) as client:
        for _ in range(10):
            client.record(feature="bot")
        assert client.flush(timeout=10)
        stats = client.stats
    assert (stats.accepted, stats.rejected, stats.failed) == (10, 0, 0)
    assert sizes[0] == 10 and sum(n for n in sizes if n <= 2) == 10


# -- batching, wire format, lifecycle ---------------------------------------------------------


def test_batches_fill_ids_timestamps_token_and_gzip():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return _ok(request)

    with _mock(handler, batch_size=50, flush_interval=30, token="s3cret") as client:
        for i in range(120):
            client.record(feature="bot", output="x" * 500 * (i < 100))
        assert client.flush(timeout=10)
    batches = [_events(r) for r in requests]
    assert [len(b) for b in batches] == [50, 50, 20]
    assert requests[0].headers["content-encoding"] == "gzip"  # ~25 kB
    assert "content-encoding" not in requests[2].headers  # small
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in requests)
    assert all(str(r.url) == "http://hotwash.test/api/v1/events" for r in requests)
    events = [e for b in batches for e in b]
    assert len({e["id"] for e in events}) == 120 and events[0]["id"].startswith("evt-")
    ts = datetime.fromisoformat(events[0]["ts"])
    assert ts.tzinfo is not None and abs((datetime.now(UTC) - ts).total_seconds()) < 60


def test_flush_interval_sends_without_flush():
    sent = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        sent.set()
        return _ok(request)

    with _mock(handler, flush_interval=0.1) as client:
        client.record(feature="bot")
        assert sent.wait(5)


def test_close_is_idempotent_and_bounded():
    client = _mock(lambda r: httpx.Response(503), backoff=30, max_retries=5)
    client.record(feature="bot")
    client.record(feature="bot")
    start = time.monotonic()
    client.close(timeout=0.3)
    assert time.monotonic() - start < 2
    client.close()
    assert not client._thread.is_alive()
    stats = client.stats
    assert (stats.failed, stats.queued) == (2, 0)
    assert client.flush(timeout=0.1)  # nothing left: returns at once
