"""JSONL ingestion: bad records explained and quarantined, good ones stored once, rollups exact."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from hotwash.demo.sample import generate_events
from hotwash.store import Store
from hotwash.telemetry.ingest import Quarantine, ingest_streams
from hotwash.telemetry.jsonl import Accepted, Rejected, read_jsonl
from hotwash.telemetry.model import ChangeEvent, Event
from hotwash.telemetry.writer import EventWriter, minute_of

GOOD = {"id": "evt-1", "ts": "2026-11-27T04:25:28.123Z", "feature": "support-bot"}


def _line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def _read(data: bytes, limit: int = 10_000) -> list[Accepted | Rejected]:
    return list(read_jsonl(io.BytesIO(data), source="t.jsonl", max_record_bytes=limit))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"id": "a", "ts": "2026-11-27T04:25:28Z", "feature": \n', "invalid JSON"),
        (b'{"id": "a", "ts": "2026-11-27T04:25:28Z", "feature": "f\xff"}\n', "not UTF-8"),
        (_line({"ts": "2026-11-27T04:25:28Z", "feature": "f"}), "missing required field 'id'"),
        (_line({"id": "a", "feature": "f"}), "missing required field 'ts'"),
        (_line({"id": "a", "ts": "2026-11-27T04:25:28Z"}), "missing required field 'feature'"),
        (_line({**GOOD, "ts": "yesterday at noon"}), "field 'ts'"),
        (_line({**GOOD, "tokens_in": "many"}), "field 'tokens_in'"),
        (_line({**GOOD, "tokens_in": -5}), "field 'tokens_in'"),
        (_line({**GOOD, "confidence": 1.5}), "field 'confidence'"),
        (_line({**GOOD, "context": [{"id": "kb-1"}]}), "missing required field 'context[0].text'"),
        (_line({**GOOD, "tool_calls": [{"arguments": {}}]}), "tool_calls[0].name"),
        (_line({**GOOD, "id": ""}), "field 'id'"),
        (_line([1, 2, 3]), "expected a JSON object"),
        (_line({"type": "change", "id": "c", "ts": "2026-11-27T04:25:28Z", "feature": "f", "kind": "vibes"}),
         "field 'kind'"),
    ],
)
def test_each_bad_record_is_named_with_line_and_reason(line: bytes, reason: str) -> None:
    items = _read(_line(GOOD) + line + _line({**GOOD, "id": "evt-2"}))
    assert [type(i).__name__ for i in items] == ["Accepted", "Rejected", "Accepted"]
    bad = items[1]
    assert isinstance(bad, Rejected)
    assert bad.line == 2 and bad.source == "t.jsonl"
    assert reason in bad.reason


def test_oversized_record_is_rejected_without_reading_it_whole() -> None:
    huge = _line({**GOOD, "id": "big", "input": "x" * 50_000})
    items = _read(_line(GOOD) + huge + _line({**GOOD, "id": "evt-3"}), limit=1000)
    assert isinstance(items[1], Rejected) and "size limit of 1000 bytes" in items[1].reason
    assert len(items[1].raw) <= 1024
    assert [i.line for i in items] == [1, 2, 3]


def test_unknown_keys_are_kept_in_tags_and_blank_lines_skipped() -> None:
    items = _read(b"\n" + _line({**GOOD, "region": "eu", "tags": {"tenant": "acme"}}) + b"   \n")
    assert len(items) == 1 and isinstance(items[0], Accepted)
    ev = items[0].record
    assert isinstance(ev, Event)
    assert ev.tags == {"region": "eu", "tenant": "acme"}
    assert ev.ts == datetime(2026, 11, 27, 4, 25, 28, 123000, tzinfo=UTC)


def test_offsets_are_converted_to_utc_and_change_lines_recognised() -> None:
    items = _read(_line({**GOOD, "ts": "2026-11-27T06:25:28+02:00"})
                  + _line({"type": "change", "id": "chg-7", "ts": "2026-11-20T10:00:00Z",
                           "feature": "support-bot", "kind": "prompt", "version": "v12", "previous": "v11"}))
    ev, chg = (i.record for i in items if isinstance(i, Accepted))
    assert ev.ts.hour == 4 and ev.ts.tzinfo is UTC
    assert isinstance(chg, ChangeEvent) and chg.version == "v12"


def _ingest(store: Store, tmp_path: Path, data: bytes, batch_size: int = 7):
    return ingest_streams([("t.jsonl", io.BytesIO(data))], writer=EventWriter(store),
                          quarantine=Quarantine(tmp_path / "q"), batch_size=batch_size,
                          max_record_bytes=100_000)


def test_bad_records_go_to_quarantine_and_good_ones_land(store: Store, tmp_path: Path) -> None:
    data = _line(GOOD) + b"{broken\n" + b"\xff\xfe\n" + _line({**GOOD, "id": "evt-2"})
    report = _ingest(store, tmp_path, data)
    assert (report.accepted, report.duplicates, report.rejected_count) == (2, 0, 2)
    assert report.quarantine is not None
    quarantined = [orjson.loads(line) for line in report.quarantine.read_bytes().splitlines()]
    assert [(q["line"], q["source"]) for q in quarantined] == [(2, "t.jsonl"), (3, "t.jsonl")]
    assert quarantined[0]["raw"] == "{broken" and "invalid JSON" in quarantined[0]["reason"]
    assert "raw_base64" in quarantined[1]
    assert store.status()["events"] == 2


def _expected_rollups(events: list[dict]) -> dict:
    exp: dict = defaultdict(lambda: {"events": 0, "tokens_in": 0, "escalations": 0, "sessions": set()})
    for e in events:
        ts = datetime.fromisoformat(e["ts"])
        r = exp[(e["feature"], minute_of(ts))]
        r["events"] += 1
        r["tokens_in"] += e.get("tokens_in") or 0
        r["escalations"] += 1 if e.get("escalated") else 0
        if e.get("session_id"):
            r["sessions"].add(e["session_id"])
    return exp


def test_reingest_changes_nothing_and_rollups_are_exact(store: Store, tmp_path: Path) -> None:
    events = list(generate_events(300, rate_per_minute=40))
    data = b"".join(_line(e) for e in events)
    first = _ingest(store, tmp_path, data)
    assert (first.accepted, first.duplicates) == (300, 0)
    before = store.rollup_rows()
    # Re-send the file, plus an overlapping half in another batching: nothing may change.
    again = _ingest(store, tmp_path, data, batch_size=50)
    half = _ingest(store, tmp_path, b"".join(_line(e) for e in events[100:250]), batch_size=13)
    assert (again.accepted, again.duplicates) == (0, 300)
    assert (half.accepted, half.duplicates) == (0, 150)
    assert store.rollup_rows() == before
    exp = _expected_rollups(events)
    got = {(r["feature"], r["minute"]): r for r in before}
    assert got.keys() == exp.keys()
    for key, e in exp.items():
        assert got[key]["events"] == e["events"]
        assert got[key]["tokens_in"] == e["tokens_in"]
        assert got[key]["escalations"] == e["escalations"]
        assert got[key]["sessions"] == len(e["sessions"]), key


def test_sessions_split_across_batches_are_counted_once(store: Store, tmp_path: Path) -> None:
    # The same session in the same minute, arriving in three different batches.
    rows = [{**GOOD, "id": f"e{i}", "ts": f"2026-11-27T04:25:{i:02d}Z", "session_id": "s-1" if i % 2 else "s-2"}
            for i in range(9)]
    _ingest(store, tmp_path, b"".join(_line(r) for r in rows), batch_size=3)
    (rollup,) = store.rollup_rows()
    assert rollup["events"] == 9 and rollup["sessions"] == 2


def test_duplicate_ids_inside_one_batch(store: Store, tmp_path: Path) -> None:
    report = _ingest(store, tmp_path, _line(GOOD) * 3)
    assert (report.accepted, report.duplicates) == (1, 2)
    assert store.rollup_rows()[0]["events"] == 1


def test_costs_priced_reported_and_unpriced(store: Store, tmp_path: Path) -> None:
    rows = [
        {**GOOD, "id": "priced", "provider": "openai", "model": "gpt-4o-mini", "tokens_in": 1_000_000, "tokens_out": 0},
        {**GOOD, "id": "reported", "model": "gpt-4o-mini", "tokens_in": 10, "cost_usd": 1.25},
        {**GOOD, "id": "unknown", "provider": "openai", "model": "our-finetune-9000", "tokens_in": 10, "tokens_out": 5},
    ]
    report = _ingest(store, tmp_path, b"".join(_line(r) for r in rows))
    assert report.unpriced == 1
    got = store.get_events(["priced", "reported", "unknown"])
    assert got["priced"]["cost_source"] == "priced"
    assert got["priced"]["cost_usd"] == pytest.approx(0.15)  # gpt-4o-mini: $0.15 per million input tokens
    assert (got["reported"]["cost_source"], got["reported"]["cost_usd"]) == ("reported", 1.25)
    assert (got["unknown"]["cost_source"], got["unknown"]["cost_usd"]) == ("unpriced", None)
    (rollup,) = store.rollup_rows()
    assert rollup["unpriced"] == 1
    assert rollup["cost_usd"] == pytest.approx(0.15 + 1.25)


def test_stored_event_keeps_every_field(store: Store, tmp_path: Path) -> None:
    full = {**GOOD, "env": "prod", "session_id": "s-1", "user_id": "u-1", "provider": "openai",
            "model": "gpt-4o-mini", "prompt_version": "v12", "input": "Where is my order 1234?",
            "context": [{"id": "kb-12", "text": "Orders ship in 2 days.", "source": "kb"}],
            "output": "It ships in 2 days.", "tool_calls": [{"name": "lookup_order", "arguments": {"id": "1234"}}],
            "tokens_in": 812, "tokens_out": 120, "latency_ms": 900, "escalated": False, "confidence": 0.82,
            "retry": 0, "feedback": -1, "score": 0.5, "untrusted": ["input", "context"], "tags": {"tenant": "acme"}}
    _ingest(store, tmp_path, _line(full))
    got = store.get_events(["evt-1"])["evt-1"]
    for key in ("env", "session_id", "user_id", "provider", "model", "prompt_version", "input", "context",
                "output", "tool_calls", "tokens_in", "tokens_out", "escalated", "confidence", "retry",
                "untrusted", "tags"):
        assert got[key] == full[key], key
    assert got["latency_ms"] == 900.0 and got["feedback"] == -1.0 and got["score"] == 0.5


def test_nul_characters_and_huge_numbers_are_refused_per_record(store: Store, tmp_path: Path) -> None:
    # PostgreSQL cannot store U+0000 nor an INTEGER above 2**31-1: such a record must be refused
    # on its own, with the field named, never fail the batch it came in.
    data = (_line({**GOOD, "id": "nul", "input": "hi\u0000there"})
            + _line({**GOOD, "id": "nul-tag", "tags": {"k": ["a", "b\u0000"]}})
            + _line({**GOOD, "id": "big", "retry": 2**40})
            + _line({**GOOD, "id": "ok"}))
    report = _ingest(store, tmp_path, data)
    assert (report.accepted, report.rejected_count) == (1, 3)
    reasons = [r.reason for r in report.rejected]
    assert "field 'input': contains a NUL character" in reasons[0]
    assert "field 'tags.k[1]'" in reasons[1]
    assert "field 'retry'" in reasons[2]
    assert set(store.get_events(["nul", "nul-tag", "big", "ok"])) == {"ok"}


def test_integers_beyond_64_bits_in_free_form_json_are_refused_per_record(store: Store, tmp_path: Path) -> None:
    # Tags, document metadata and tool arguments are free-form JSON. An integer past 64 bits there
    # used to pass validation and then fail the whole batch at commit (orjson cannot encode it).
    big = 2**70

    def _line(obj: dict) -> bytes:  # orjson, which the module's _line uses, cannot write these
        return json.dumps(obj).encode() + b"\n"

    data = (_line({**GOOD, "id": "big-tag", "tags": {"n": big}})
            + _line({**GOOD, "id": "big-arg", "tool_calls": [{"name": "t", "arguments": {"a": [1, -big]}}]})
            + _line({**GOOD, "id": "big-extra", "order_no": big})  # an unknown key goes to tags
            + _line({**GOOD, "id": "edge", "tags": {"hi": 2**64 - 1, "lo": -(2**63), "s": "1234567890123456789012"}})
            + _line({**GOOD, "id": "ok"}))
    report = _ingest(store, tmp_path, data)
    assert (report.accepted, report.rejected_count) == (2, 3)
    reasons = [r.reason for r in report.rejected]
    assert reasons[0].startswith("field 'tags.n': integer outside the 64-bit range")
    assert reasons[1].startswith("field 'tool_calls[0].arguments.a[1]': integer outside")
    assert reasons[2].startswith("field 'order_no': integer outside")  # named as sent
    got = store.get_events(["edge", "ok"])
    assert set(got) == {"edge", "ok"}
    assert got["edge"]["tags"] == {"hi": 2**64 - 1, "lo": -(2**63), "s": "1234567890123456789012"}
