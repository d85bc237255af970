"""The pipelined ingest (workers decode and check the next batches while this process commits) stores
exactly what the one-batch-at-a-time path stores: the same events with the same findings, the same
rollups and first sightings, the same rejections, with on_batch reporting only committed batches."""

from __future__ import annotations

import io
import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from hotwash.demo.scenarios import single
from hotwash.detect.checks import EventChecker
from hotwash.detect.pool import ParallelChecker, _encoder, decode_result
from hotwash.errors import StoreError
from hotwash.manifest import parse_manifest
from hotwash.settings import Settings
from hotwash.store import Store, sqlite_values
from hotwash.store.tables import behaviours, changes, events, rollups
from hotwash.telemetry import otlp
from hotwash.telemetry.ingest import IngestReport, Quarantine, decode_lines, ingest_streams, line_batches
from hotwash.telemetry.jsonl import Accepted, read_jsonl
from hotwash.telemetry.model import parse_record
from hotwash.telemetry.writer import EventWriter, Prepared, prepare
from hotwash.web import create_app

# -- the line splitter and decoder against read_jsonl -----------------------------------------------

GOOD = {"id": "e-1", "ts": "2026-11-27T04:25:28Z", "feature": "f"}
_LINE_KINDS = [
    orjson.dumps(GOOD),
    orjson.dumps({**GOOD, "id": "e-2", "input": "x" * 40}),
    orjson.dumps({**GOOD, "id": "e-3", "extra": 1}),  # unknown key: the slow path
    orjson.dumps({"type": "change", "id": "c-1", "ts": "2026-11-27T04:25:28Z", "feature": "f", "kind": "prompt"}),
    b'{"id": "broken", ',
    b"\xff\xfe not utf-8",
    orjson.dumps({**GOOD, "confidence": 7}),
    b"",
    b"   ",
    orjson.dumps(GOOD) + b"\r",
    b"y" * 150,  # over the limit below
    orjson.dumps({**GOOD, "id": "nul", "input": "a\x00b"}),
]


def _reference(data: bytes, limit: int) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for item in read_jsonl(io.BytesIO(data), source="s", max_record_bytes=limit):
        if isinstance(item, Accepted):
            out.append(("ok", item.line, item.record))
        else:
            out.append(("bad", item.line, item.reason, item.raw))
    return out


def _pipelined(data: bytes, limit: int, batch_lines: int, block: int) -> tuple[list[tuple[Any, ...]], list[int]]:
    out: list[tuple[Any, ...]] = []
    positions = []
    batches = list(line_batches(io.BytesIO(data), batch_lines, limit, block=block))
    for n, (first, lines, consumed) in enumerate(batches):
        # a batch holds batch_lines records (lines read_jsonl yields an item for); the last one may hold fewer
        records_in = sum(1 for line in lines if len(line) > limit or line.strip())
        assert records_in == batch_lines or (n == len(batches) - 1 and records_in < batch_lines)
        assert all(len(line) <= max(limit + 1, block + limit + 1) for line in lines)
        records, rejected, _ = decode_lines(first, lines, limit)
        # decode_lines keeps no line numbers for records: recover them the way the reference counts
        accepted_lines = [first + i for i, line in enumerate(lines)
                          if len(line) <= limit and line.rstrip(b"\r\n").strip()
                          and not any(r[0] == first + i for r in rejected)]
        items: list[tuple[Any, ...]] = [("ok", n, rec) for n, rec in zip(accepted_lines, records, strict=True)]
        items += [("bad", n, reason, raw) for n, reason, raw in rejected]
        out += sorted(items, key=lambda t: t[1])
        positions.append(consumed)
    return out, positions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, len(_LINE_KINDS) - 1), max_size=30), final_newline=st.booleans(),
       batch_lines=st.integers(1, 7), block=st.sampled_from([1, 3, 17, 64, 1 << 20]),
       huge=st.lists(st.integers(0, 30), max_size=2))
def test_line_batches_and_decode_lines_read_what_read_jsonl_reads(
        picks: list[int], final_newline: bool, batch_lines: int, block: int, huge: list[int]) -> None:
    lines = [_LINE_KINDS[i] for i in picks]
    for at in huge:  # a line far longer than a block and the limit: skipped without being kept
        lines.insert(min(at, len(lines)), b"z" * 5000)
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    limit = 120
    got, positions = _pipelined(data, limit, batch_lines, block)
    assert got == _reference(data, limit)
    assert positions == sorted(positions) and positions[-1] == len(data)


# -- the pipeline against the sequential path, on both databases ------------------------------------


def _scenario_file(tmp_path: Path) -> tuple[Path, str]:
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    objs = list(itertools.islice(scenario.events(), 2600))
    lines = [orjson.dumps(o) for o in objs]
    # duplicates inside a batch, across batches and of an already stored event; bad records; a change
    lines.insert(5, lines[3])
    lines.insert(1500, lines[10])
    lines.insert(700, b'{"id": "broken"')
    lines.insert(701, b"")
    lines.insert(1200, orjson.dumps({"type": "change", "id": "chg-1", "ts": objs[1000]["ts"],
                                     "feature": objs[1000]["feature"], "kind": "prompt", "version": "v2"}))
    event = next(o for o in objs if "type" not in o)
    lines.insert(1900, orjson.dumps({**event, "id": "late", "confidence": 3}))
    lines.insert(2000, b"x" * 3000)  # over the size limit used below
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, scenario.manifest_yaml()


def _contents(store: Store) -> dict[str, list[dict[str, Any]]]:
    out = {}
    with store.engine.connect() as conn:
        for table, order in ((events, events.c.id), (rollups, (rollups.c.feature, rollups.c.minute)),
                             (behaviours, (behaviours.c.feature, behaviours.c.kind, behaviours.c.name)),
                             (changes, changes.c.id)):
            order_by = order if isinstance(order, tuple) else (order,)
            rows = [dict(r) for r in conn.execute(select(table).order_by(*order_by)).mappings()]
            for r in rows:
                r.pop("ingested_at", None)
            out[table.name] = rows
    return out


def _wipe(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in (events, rollups, behaviours, changes):
            conn.execute(delete(table))


def _run(store: Store, path: Path, checker: EventChecker, quarantine: Path, *, batch_size: int,
         on_batch: Any = None, lines: int | None = None) -> IngestReport:
    data = path.read_bytes()
    if lines is not None:
        data = b"\n".join(data.split(b"\n")[:lines]) + b"\n"
    return ingest_streams([(path.name, io.BytesIO(data))], writer=EventWriter(store, checker),
                          quarantine=Quarantine(quarantine), batch_size=batch_size, max_record_bytes=2000,
                          on_batch=on_batch)


def _quarantined(report: IngestReport) -> list[dict[str, Any]]:
    if report.quarantine is None:
        return []
    return [orjson.loads(line) for line in report.quarantine.read_bytes().splitlines()]


def test_pipelined_ingest_stores_exactly_what_the_inline_path_stores(store: Store, tmp_path: Path) -> None:
    path, manifest_yaml = _scenario_file(tmp_path)
    manifest = parse_manifest(manifest_yaml)

    def both(checker: EventChecker, label: str) -> tuple[IngestReport, IngestReport, dict[str, Any]]:
        early = _run(store, path, checker, tmp_path / f"q-{label}-1", batch_size=300, lines=400)
        full = _run(store, path, checker, tmp_path / f"q-{label}-2", batch_size=300)
        return early, full, _contents(store)

    inline = both(EventChecker(manifest), "inline")
    _wipe(store)
    with ParallelChecker(manifest, workers=2) as pool:
        piped = both(pool, "piped")
        assert pool._pool is not None, "the batches must have gone to the workers"

    for a, b in zip(inline[:2], piped[:2], strict=True):
        assert a.to_json() | {"quarantine": None} == b.to_json() | {"quarantine": None}
        assert [(r.line, r.reason, r.raw) for r in a.rejected] == [(r.line, r.reason, r.raw) for r in b.rejected]
        assert _quarantined(a) == _quarantined(b)
    early, full = inline[:2]
    assert len(_quarantined(full)) == full.rejected_count == 3
    assert full.duplicates == early.accepted + 2 and full.accepted > 2000
    for name in inline[2]:  # every row and column, floats bit for bit (the same batches, summed in the same order)
        assert len(inline[2][name]) == len(piped[2][name])
        diff = [{k: (v, b[k]) for k, v in a.items() if b[k] != v}
                for a, b in zip(inline[2][name], piped[2][name], strict=True) if a != b]
        assert not diff, (name, diff[:3])
    stored = inline[2]
    # Equality must not be two empty results agreeing: findings, counters and behaviours are there.
    assert sum(1 for e in stored["events"] if e["findings"]) > 20
    assert sum(r["injections"] for r in stored["rollups"]) > 0
    assert sum(r["new_behaviours"] for r in stored["rollups"]) == len(stored["behaviours"]) > 0
    assert "chg-1" in {c["id"] for c in stored["changes"]}


def test_on_batch_reports_only_committed_batches_in_order(store: Store, tmp_path: Path) -> None:
    path, manifest_yaml = _scenario_file(tmp_path)
    ids_by_line = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if "type" not in obj and obj["id"] != "late":
            ids_by_line[n] = obj["id"]
    calls: list[tuple[int, int, int]] = []

    def on_batch(name: str, last_line: int, position: int, result: Any) -> None:
        assert name == path.name
        # everything up to last_line is durable when the callback runs
        wanted = {i for n, i in ids_by_line.items() if n <= last_line}
        assert set(store.get_events(wanted)) == wanted
        calls.append((last_line, position, result.accepted + result.duplicates))

    with ParallelChecker(parse_manifest(manifest_yaml), workers=2) as pool:
        report = _run(store, path, pool, tmp_path / "q", batch_size=250, on_batch=on_batch)
    assert len(calls) >= 10
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert [c[1] for c in calls] == sorted({c[1] for c in calls}) and calls[-1][1] == path.stat().st_size
    assert sum(c[2] for c in calls) == report.accepted + report.duplicates


class _CountingChecker(ParallelChecker):
    """Counts the batches handed to the workers and not yet committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open = self.most = 0

    def submit_lines(self, first_line: int, lines: list[bytes], limit: int, **kw: Any) -> Any:
        self.open += 1
        self.most = max(self.most, self.open)
        return super().submit_lines(first_line, lines, limit, **kw)


def test_at_most_workers_plus_two_batches_are_in_flight(store: Store, tmp_path: Path) -> None:
    path, manifest_yaml = _scenario_file(tmp_path)
    with _CountingChecker(parse_manifest(manifest_yaml), workers=2) as pool:
        writer = EventWriter(store, pool)
        commit = writer.commit

        def counted(p: Prepared) -> Any:
            pool.open -= 1 if p.event_rows or p.change_rows or p.duplicates else 0
            return commit(p)

        writer.commit = counted  # type: ignore[method-assign]
        report = ingest_streams([(path.name, io.BytesIO(path.read_bytes()))], writer=writer,
                                quarantine=Quarantine(tmp_path / "q"), batch_size=100, max_record_bytes=2000)
    assert report.accepted > 2000
    assert 2 <= pool.most <= pool.workers + 2


def test_other_readers_are_pipelined_too(store: Store, tmp_path: Path) -> None:
    """An OTLP/JSON file: read here, its events prepared by the workers; same result as inline."""
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    objs = list(itertools.islice(scenario.events(), 900))
    manifest = parse_manifest(scenario.manifest_yaml())
    path = tmp_path / "traces.jsonl"
    with path.open("wb") as fh:
        for i in range(0, len(objs), 50):
            fh.write(orjson.dumps(_otlp_json(objs[i:i + 50], first=i)) + b"\n")
        fh.write(b"{not json\n")

    def run(checker: EventChecker) -> tuple[dict[str, Any], dict[str, Any]]:
        with path.open("rb") as fh:
            report = ingest_streams([(path.name, fh)], writer=EventWriter(store, checker),
                                    quarantine=Quarantine(tmp_path / "q"), batch_size=200,
                                    max_record_bytes=1 << 20, reader=otlp.read_otlp_json)
        return report.to_json() | {"quarantine": None}, _contents(store)

    inline = run(EventChecker(manifest))
    _wipe(store)
    with ParallelChecker(manifest, workers=2) as pool:
        piped = run(pool)
    assert inline == piped
    assert inline[0]["accepted"] == 900 and inline[0]["rejected"] == 1
    assert sum(1 for e in inline[1]["events"] if e["findings"]) > 5


def _otlp_json(objs: list[dict[str, Any]], first: int = 0) -> dict[str, Any]:
    """Events as one OTLP/JSON export: a chat span each, carrying input, output and retrieved documents."""
    spans = []
    for n, ev in enumerate(objs, start=first + 1):
        ts = int(datetime.fromisoformat(ev["ts"].replace("Z", "+00:00")).timestamp() * 1e9)
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": ev.get("model") or "gpt-4o",
                                 "hotwash.feature": ev["feature"]}
        if ev.get("input"):
            attrs["gen_ai.input.messages"] = orjson.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": ev["input"]}]}]).decode()
        if ev.get("output"):
            attrs["gen_ai.output.messages"] = orjson.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": ev["output"]}]}]).decode()
        if ev.get("context"):
            attrs["gen_ai.retrieval.documents"] = orjson.dumps(
                [{"id": d.get("id"), "content": d["text"]} for d in ev["context"]]).decode()
        spans.append({"traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": "chat",
                      "startTimeUnixNano": str(ts), "endTimeUnixNano": str(ts + 10**8),
                      "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]})
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}


# -- the OTLP endpoint with worker processes ----------------------------------------------------------


def test_otlp_endpoint_with_workers_stores_what_the_inline_endpoint_stores(
        store: Store, settings: Settings, tmp_path: Path) -> None:
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    objs = list(itertools.islice(scenario.events(), 600))
    (tmp_path / "hotwash.yaml").write_text(scenario.manifest_yaml())
    settings = settings.model_copy(update={"manifest": tmp_path / "hotwash.yaml"})
    big = otlp.decode_request(orjson.dumps(_otlp_json(objs[:400])), otlp.JSON).SerializeToString()
    bad_span = _otlp_json(objs[400:600], first=400)
    bad_span["resourceSpans"][0]["scopeSpans"][0]["spans"][3]["startTimeUnixNano"] = "0"
    mixed = otlp.decode_request(orjson.dumps(bad_span), otlp.JSON).SerializeToString()
    assert len(big) > 32 * 1024 and len(mixed) > 32 * 1024
    headers = {"content-type": otlp.PROTOBUF}

    def post_all(check_workers: int | None) -> tuple[list[Any], dict[str, Any]]:
        answers = []
        with TestClient(create_app(settings, store=store, check_workers=check_workers)) as client:
            assert (client.app.state.pool is not None) == (check_workers is not None)  # type: ignore[attr-defined]
            for body in (big, mixed, big):
                r = client.post("/v1/traces", content=body, headers=headers)
                answers.append((r.status_code, r.content))
            r = client.post("/v1/traces", content=b"\x00garbage" * 10_000, headers=headers)
            answers.append((r.status_code, r.json()["detail"][:60]))
        return answers, _contents(store)

    inline = post_all(None)
    _wipe(store)
    piped = post_all(2)
    assert inline == piped
    answers, stored = inline
    assert [a[0] for a in answers] == [200, 200, 200, 400]
    assert b"1 span rejected" in answers[1][1]
    assert len(stored["events"]) == 599
    assert sum(1 for e in stored["events"] if e["findings"]) > 5


# -- workers never outlive the ingest ---------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_exit_when_the_ingesting_process_is_killed() -> None:
    code = ("import multiprocessing, time\n"
            "from hotwash.detect.pool import ParallelChecker\n"
            "pool = ParallelChecker(workers=2).start()\n"
            "print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "a worker outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_prepare_then_commit_is_write(store: Store) -> None:
    """The worker's half (prepare, shipped as msgpack) and this process's half (commit) are the
    sequential write, split: the same rows, and a second write finds them all stored."""
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    records = [parse_record(o) for o in itertools.islice(scenario.events(), 300)]
    checker = EventChecker(parse_manifest(scenario.manifest_yaml()))
    shipped = decode_result(_encoder.encode(prepare(records, checker).to_wire()))
    result = EventWriter(store).commit(Prepared.from_wire(shipped))
    assert (result.accepted, result.duplicates) == (300, 0)
    stored = _contents(store)
    again = EventWriter(store, checker).write(records)
    assert (again.accepted, again.duplicates) == (0, 300)
    _wipe(store)
    EventWriter(store, checker).write(records)
    assert _contents(store) == stored


def test_rows_bound_for_sqlite_in_a_worker_store_what_plain_rows_store(store: Store) -> None:
    """Bulk ingest into SQLite ships rows as SQLite's bound values (the worker converts them); they
    must store exactly what mapping rows store, also when part of the batch is already there (the
    rollups are then recomputed from the bound rows), and a PostgreSQL store refuses them."""
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    records = [parse_record(o) for o in itertools.islice(scenario.events(), 400)]
    checker = EventChecker(parse_manifest(scenario.manifest_yaml()))

    def shipped(batch: list[Any], *, sqlite: bool) -> Prepared:
        return Prepared.from_wire(decode_result(_encoder.encode(prepare(batch, checker, sqlite=sqlite).to_wire())))

    plain = shipped(records, sqlite=False)
    bound = shipped(records, sqlite=True)
    assert bound.sqlite_bound and not plain.sqlite_bound
    # the worker's rows are what the store's own conversion makes of the mapping rows
    mapped = prepare(records, checker).event_rows
    for row in mapped:
        row["ingested_at"] = None  # stamped at commit
    reference = sqlite_values(events, mapped)
    assert len(bound.event_rows) == len(reference) > 300
    json_at = [i for i, c in enumerate(events.columns) if c.name in ("context", "tool_calls", "untrusted", "tags",
                                                                         "findings")]
    for a, b in zip(bound.event_rows, reference, strict=True):  # the same values; JSON read back equal
        assert [v for i, v in enumerate(a) if i not in json_at] == [v for i, v in enumerate(b) if i not in json_at]
        assert [None if a[i] is None else orjson.loads(a[i]) for i in json_at] == \
            [None if b[i] is None else orjson.loads(b[i]) for i in json_at]
    assert bound.contributions == plain.contributions and bound.first_seen == plain.first_seen
    assert bound.latest_ts() == plain.latest_ts() == max(r.ts for r in records)
    assert bound.rollup_fields() == plain.rollup_fields()
    if store.dialect != "sqlite":
        with pytest.raises(StoreError, match="bound for SQLite"):
            EventWriter(store).commit(bound)
        return
    writer = EventWriter(store)
    writer.commit(shipped(records[:150], sqlite=False))
    result = writer.commit(bound)  # 150 of 400 already stored
    assert (result.accepted, result.duplicates) == (250, 150)
    stored = _contents(store)
    _wipe(store)
    writer.commit(shipped(records[:150], sqlite=False))
    writer.commit(shipped(records, sqlite=False))  # the same two batches as mapping rows
    assert _contents(store) == stored


def test_otlp_endpoint_goes_on_when_a_worker_dies(store: Store, settings: Settings) -> None:
    objs = list(itertools.islice(single("prompt_injection", quiet_days=0.5, seed=3).events(), 900))
    objs = [o for o in objs if "type" not in o]
    bodies = [otlp.decode_request(orjson.dumps(_otlp_json(objs[i:i + 300], first=i)), otlp.JSON).SerializeToString()
              for i in (0, 300)]
    with TestClient(create_app(settings, store=store, check_workers=2)) as client:
        pool = client.app.state.pool  # type: ignore[attr-defined]
        assert client.post("/v1/traces", content=bodies[0], headers={"content-type": otlp.PROTOBUF}).status_code == 200
        for process in list(pool._pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        r = client.post("/v1/traces", content=bodies[1], headers={"content-type": otlp.PROTOBUF})
        assert r.status_code == 200, r.text
        assert client.app.state.pool is None  # type: ignore[attr-defined]
    assert store.status()["events"] == len(objs[:600])


def test_insert_events_skips_stored_ids_and_keeps_values(store: Store) -> None:
    """The store's batch INSERT (one unnest() statement on PostgreSQL): only new ids are reported, and
    numbers of mixed Python types, JSON (also pre-encoded fragments) and times come back as sent."""
    from datetime import UTC, timedelta

    base = prepare([parse_record({**GOOD, "id": f"e-{i}", "cost_usd": 1 if i % 2 else 0.25, "latency_ms": i,
                                  "context": [{"text": f"doc {i}", "score": 0.5}], "tags": {"n": i}})
                    for i in range(6)])
    rows = base.event_rows
    rows[1]["context"] = orjson.Fragment(orjson.dumps(rows[1]["context"]))  # as the pipeline ships it
    rows[3]["cost_usd"], rows[5]["latency_ms"] = 1, 5  # ints among floats: one array must still take them
    now = datetime.now(UTC)
    for row in rows:
        row["ingested_at"] = now
    with store.transaction() as conn:
        assert store.insert_events(conn, rows[:4]) == {"e-0", "e-1", "e-2", "e-3"}
    with store.transaction() as conn:
        assert store.insert_events(conn, rows) == {"e-4", "e-5"}
    got = store.get_events([f"e-{i}" for i in range(6)])
    assert [got[f"e-{i}"]["cost_usd"] for i in range(6)] == [0.25, 1.0, 0.25, 1.0, 0.25, 1.0]
    assert [got[f"e-{i}"]["latency_ms"] for i in range(6)] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert got["e-1"]["context"] == [{"text": "doc 1", "score": 0.5}] and got["e-5"]["tags"] == {"n": 5}
    assert got["e-3"]["ts"] == datetime(2026, 11, 27, 4, 25, 28, tzinfo=UTC)
    assert abs(got["e-3"]["ingested_at"] - now) < timedelta(milliseconds=1)
    assert got["e-0"]["findings"] is None and got["e-0"]["tool_calls"] is None
