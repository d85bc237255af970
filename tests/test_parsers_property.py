"""Property-based: whatever bytes arrive, the JSONL reader never crashes; it accepts (something the
store can hold) or explains."""

from __future__ import annotations

import io
import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotwash.telemetry.jsonl import Accepted, Rejected, read_jsonl
from hotwash.telemetry.writer import prepare

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
field_values = json_values | st.sampled_from(["2026-11-27T04:25:28Z", "2026-11-27", "", "support-bot", -1, 1.5])
events = st.fixed_dictionaries(
    {},
    optional={k: field_values for k in (
        "id", "ts", "feature", "env", "session_id", "model", "input", "context", "output", "tool_calls",
        "tokens_in", "tokens_out", "cost_usd", "escalated", "confidence", "retry", "feedback", "score",
        "untrusted", "tags", "type", "kind")},
)


def _check(data: bytes, limit: int = 2_000) -> list[Accepted | Rejected]:
    items = list(read_jsonl(io.BytesIO(data), source="p", max_record_bytes=limit))
    lines = [i.line for i in items]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
    for item in items:
        if isinstance(item, Rejected):
            assert item.reason and item.line >= 1
            orjson.dumps(item.to_json())  # always quarantinable
    return items


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3_000))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=6))
def test_random_event_shapes_are_accepted_or_explained(objs: list[dict]) -> None:
    data = b"".join(json.dumps(o).encode() + b"\n" for o in objs)  # stdlib: big ints too
    items = _check(data, limit=100_000)
    assert len(items) == len(objs)  # one verdict per non-blank line
    for obj, item in zip(objs, items, strict=True):
        if isinstance(item, Accepted):
            assert item.record.id == obj["id"] and item.record.feature == obj["feature"]
            # what is accepted can be stored: the rows encode on either dialect's path
            prepare([item.record]).to_wire()
            prepare([item.record], sqlite=True).to_wire()
        elif "id" in obj and "ts" in obj and "feature" in obj:
            assert "field" in item.reason or "expected" in item.reason


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=200), max_size=10), st.integers(min_value=1, max_value=300))
def test_line_numbers_survive_oversized_lines(lines: list[bytes], limit: int) -> None:
    cleaned = [line.replace(b"\n", b"") for line in lines]
    data = b"\n".join(cleaned)
    items = _check(data, limit=limit)
    nonblank = [i + 1 for i, line in enumerate(cleaned) if line.strip() or len(line) > limit]
    assert [i.line for i in items] == nonblank


free_json = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
valid_core = st.fixed_dictionaries(
    {"id": st.just("e-1"), "ts": st.just("2026-11-27T04:25:28Z"), "feature": st.just("f")},
    optional={
        "tags": free_json,
        "tool_calls": st.lists(st.fixed_dictionaries({"name": st.just("t")},
                                                     optional={"arguments": free_json, "result": json_values}),
                               max_size=2),
        "context": st.lists(st.fixed_dictionaries({"text": st.text(max_size=20)}, optional={"metadata": free_json}),
                            max_size=2),
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_core)
def test_free_form_json_is_stored_or_explained(obj: dict) -> None:
    """Tags, tool arguments and results, document metadata: any JSON, accepted only if storable."""
    (item,) = _check(json.dumps(obj).encode() + b"\n", limit=100_000)
    if isinstance(item, Accepted):
        prepare([item.record]).to_wire()
        prepare([item.record], sqlite=True).to_wire()
    else:
        assert item.reason.startswith("field '"), item.reason
