"""OTLP ingestion: GenAI spans to events (PRODUCT.md §7), over protobuf and OTLP/JSON, through the
real server and the real OpenTelemetry SDK exporter."""

from __future__ import annotations

import base64
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import LiveServer
from hotwash.errors import PayloadError
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.telemetry import otlp
from hotwash.telemetry.ingest import Quarantine, ingest_streams
from hotwash.telemetry.jsonl import Accepted, Rejected
from hotwash.telemetry.model import Event
from hotwash.telemetry.writer import EventWriter

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
T0 = 1_764_217_528_123_000_000  # 2025-11-27T04:25:28.123Z
PB = "application/x-protobuf"


# -- building requests ----------------------------------------------------------------------------


def any_value(v: Any) -> AnyValue:
    out = AnyValue()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, bytes):
        out.bytes_value = v
    elif isinstance(v, list):
        out.array_value.values.extend(any_value(x) for x in v)
    elif isinstance(v, dict):
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(x)) for k, x in v.items())
    return out


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def span(n: int, name: str = "chat gpt-4o-mini", attrs: dict[str, Any] | None = None, *, parent: int | None = None,
         start: int = T0, duration_ms: float = 900, trace: bytes = TRACE, status: tuple[int, str] | None = None,
         events: list[tuple[str, dict[str, Any]]] | None = None) -> Span:
    s = Span(trace_id=trace, span_id=sid(n), name=name, kind=Span.SPAN_KIND_CLIENT,
             start_time_unix_nano=start, end_time_unix_nano=start + int(duration_ms * 1_000_000))
    if parent is not None:
        s.parent_span_id = sid(parent)
    s.attributes.extend(kvs(attrs or {}))
    if status is not None:
        s.status.code, s.status.message = status
    for ev_name, ev_attrs in events or []:
        s.events.add(name=ev_name, time_unix_nano=start, attributes=kvs(ev_attrs))
    return s


def request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": "checkout-svc"} if resource is None else resource))
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    ss.spans.extend(spans)
    return req


def to_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: hex ids, integer enums, camelCase."""
    return otlp._to_otlp_json(req)


def chat(**extra: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", **extra}


def msgs(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": c}]} for r, c in pairs])


def one(req: ExportTraceServiceRequest) -> Event:
    batch = otlp.spans_to_events(req)
    assert not batch.rejected, batch.rejected
    assert len(batch.records) == 1, batch.records
    return batch.records[0]


def eid(n: int, trace: bytes = TRACE) -> str:
    return f"otel-{trace.hex()}-{sid(n).hex()}"


# -- mapping --------------------------------------------------------------------------------------


def test_a_chat_span_with_current_semconv_maps_every_field() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 120,
        "gen_ai.conversation.id": "s-1",
        "gen_ai.prompt.name": "support-reply",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.input.messages": msgs(("user", "hello"), ("assistant", "hi"), ("user", "Where is my order 1234?")),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "It ships today."},
            {"type": "tool_call", "id": "call_1", "name": "lookup_order", "arguments": {"id": "1234"}}],
            "finish_reason": "stop"}]),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a support agent."}]),
        "gen_ai.retrieval.documents": json.dumps([{"id": "kb-12", "content": "Orders ship in 2 days.", "score": 0.9},
                                                  {"id": 7, "text": "Refunds take a week."}]),
        "gen_ai.evaluation.score.value": 0.75,
        "hotwash.feature": "support-bot",
        "hotwash.env": "staging",
        "hotwash.escalated": True,
        "hotwash.confidence": 0.82,
        "hotwash.retry": 1,
        "hotwash.feedback": -1.0,
        "hotwash.cost_usd": 0.0012,
        "hotwash.tenant": "acme",
        "enduser.id": "u-1",
        "http.route": "/chat",
    }
    ev = one(request(span(1, attrs=attrs, duration_ms=900), resource={
        "service.name": "checkout-svc", "deployment.environment.name": "prod", "service.version": "1.2.3"}))
    assert ev.id == eid(1)
    assert ev.ts == datetime(2025, 11, 27, 4, 25, 28, 123000, tzinfo=UTC)
    assert ev.latency_ms == pytest.approx(900)
    assert (ev.feature, ev.env, ev.session_id, ev.user_id) == ("support-bot", "staging", "s-1", "u-1")
    assert (ev.provider, ev.model, ev.prompt_version) == ("openai", "gpt-4o-mini-2024-07-18", "support-reply")
    assert (ev.tokens_in, ev.tokens_out) == (812, 120)
    assert ev.input == "Where is my order 1234?"
    assert ev.output == "It ships today."
    assert [(c.name, c.arguments, c.id) for c in ev.tool_calls or []] == [("lookup_order", {"id": "1234"}, "call_1")]
    assert [(d.id, d.text, d.score) for d in ev.context or []] == [
        ("kb-12", "Orders ship in 2 days.", 0.9), ("7", "Refunds take a week.", None)]
    assert (ev.score, ev.escalated, ev.confidence, ev.retry, ev.feedback, ev.cost_usd) == (
        0.75, True, 0.82, 1, -1.0, 0.0012)
    assert ev.error is None
    tags = ev.tags or {}
    assert tags["gen_ai.system_instructions"] == "You are a support agent."
    assert tags["gen_ai.request.model"] == "gpt-4o"  # kept because the response model differs
    assert tags["gen_ai.request.temperature"] == 0.2
    assert tags["gen_ai.response.finish_reasons"] == ["stop"]
    assert tags["tenant"] == "acme"
    assert tags["http.route"] == "/chat"
    assert tags["service.version"] == "1.2.3"
    assert tags["otel.trace_id"] == TRACE.hex() and tags["otel.span_id"] == sid(1).hex()
    assert "hotwash.feature" not in tags and "feature" not in tags


def test_deprecated_attribute_names_still_map() -> None:
    attrs = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku",
        "gen_ai.usage.prompt_tokens": 30,
        "gen_ai.usage.completion_tokens": 4,
        "gen_ai.prompt": json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]),
        "gen_ai.completion": json.dumps([{"role": "assistant", "content": "4"}]),
    }
    ev = one(request(span(1, "anthropic.chat", attrs), resource={"service.name": "calc",
                                                                  "deployment.environment": "dev"}))
    assert (ev.provider, ev.model, ev.tokens_in, ev.tokens_out) == ("anthropic", "claude-3-5-haiku", 30, 4)
    assert (ev.input, ev.output, ev.feature, ev.env) == ("2+2?", "4", "calc", "dev")
    assert (ev.tags or {})["gen_ai.system_instructions"] == "Be brief."


def test_openllmetry_indexed_prompt_and_completion_attributes() -> None:
    attrs = {"gen_ai.system": "openai", "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "sys",
             "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "what's the weather?",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Let me check.",
             "gen_ai.completion.0.tool_calls.0.name": "weather",
             "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Oslo"}'}
    ev = one(request(span(1, "openai.chat", attrs)))
    assert (ev.input, ev.output) == ("what's the weather?", "Let me check.")
    assert [(c.name, c.arguments) for c in ev.tool_calls or []] == [("weather", {"city": "Oslo"})]


def test_current_names_win_over_deprecated_ones() -> None:
    ev = one(request(span(1, attrs={
        "gen_ai.provider.name": "openai", "gen_ai.system": "az.ai.openai",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.prompt_tokens": 99,
        "gen_ai.usage.output_tokens": 2, "gen_ai.usage.completion_tokens": 98,
        "gen_ai.request.model": "gpt-4o", "hotwash.prompt_version": "v12", "gen_ai.prompt.name": "reply",
        "gen_ai.input.messages": msgs(("user", "new")), "gen_ai.prompt": "old"})))
    assert (ev.provider, ev.tokens_in, ev.tokens_out, ev.model) == ("openai", 10, 2, "gpt-4o")
    assert ev.prompt_version == "v12" and (ev.tags or {})["gen_ai.prompt.name"] == "reply"
    assert ev.input == "new"
    assert "gen_ai.request.model" not in (ev.tags or {})  # same as the model: not repeated


@pytest.mark.parametrize(
    ("own", "parent", "resource", "expected"),
    [
        ({"hotwash.feature": "f", "gen_ai.agent.name": "agent"}, {}, {"service.name": "svc"}, "f"),
        ({"gen_ai.agent.name": "agent"}, {}, {"service.name": "svc"}, "agent"),
        ({}, {}, {"service.name": "svc"}, "svc"),
        ({}, {}, {}, "unknown_service"),
        # inherited from an ancestor in the same request (an agent span, or the app's own span)
        ({}, {"gen_ai.agent.name": "planner"}, {"service.name": "svc"}, "planner"),
        ({}, {"hotwash.feature": "support-bot"}, {"service.name": "svc"}, "support-bot"),
        ({"gen_ai.agent.name": "own-agent"}, {"hotwash.feature": "support-bot"}, {}, "support-bot"),
    ],
)
def test_feature_precedence(own: dict[str, Any], parent: dict[str, Any], resource: dict[str, Any],
                            expected: str) -> None:
    root = span(1, "POST /chat", parent)  # not a GenAI span
    ev = one(request(root, span(2, attrs=chat(**own), parent=1), resource=resource))
    assert ev.feature == expected


@pytest.mark.parametrize(
    ("attrs", "resource", "env", "user"),
    [
        ({"hotwash.env": "staging", "user.id": "u2"}, {"deployment.environment.name": "prod"}, "staging", "u2"),
        ({"enduser.id": "u1", "user.id": "u2"}, {"deployment.environment.name": "prod",
                                                 "deployment.environment": "old"}, "prod", "u1"),
        ({}, {"deployment.environment": "old", "user.id": "u3"}, "old", "u3"),
        ({}, {}, None, None),
    ],
)
def test_env_and_user(attrs: dict[str, Any], resource: dict[str, Any], env: str | None, user: str | None) -> None:
    ev = one(request(span(1, attrs=chat(**attrs)), resource={"service.name": "s", **resource}))
    assert (ev.env, ev.user_id) == (env, user)


def test_execute_tool_child_spans_become_tool_calls_of_their_genai_parent() -> None:
    agent = span(1, "invoke_agent support", {"gen_ai.operation.name": "invoke_agent",
                                             "gen_ai.agent.name": "support", "gen_ai.provider.name": "openai"},
                 duration_ms=5000)
    llm = span(2, attrs=chat(**{"gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "call_9", "name": "lookup_order", "arguments": {"id": "1"}}]}])}),
        parent=1, start=T0 + 1)
    # executed under the chat span; the second one sits under a non-GenAI span of the chat span
    tool_b = span(4, "execute_tool search_kb", {"gen_ai.tool.name": "search_kb",
                                                "gen_ai.tool.call.arguments": '{"q": "refund"}',
                                                "gen_ai.tool.call.result": '[{"id": "kb-1"}]'},
                  parent=5, start=T0 + 300)
    http = span(5, "GET /kb", {"http.route": "/kb"}, parent=2, start=T0 + 250)
    tool_a = span(3, "execute_tool", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                                      "gen_ai.tool.call.id": "call_9", "gen_ai.tool.call.arguments": '{"id": "1"}',
                                      "gen_ai.tool.call.result": '{"status": "shipped"}'}, parent=2, start=T0 + 200)
    # a tool called by the agent itself, beside the chat span
    tool_c = span(6, "execute_tool escalate", {"gen_ai.tool.name": "escalate"}, parent=1, start=T0 + 900,
                  status=(Status.STATUS_CODE_ERROR, "no human available"))
    batch = otlp.spans_to_events(request(tool_b, tool_a, http, llm, tool_c, agent))
    assert not batch.rejected and batch.ignored == 1
    by_id = {e.id: e for e in batch.records}
    assert set(by_id) == {eid(1), eid(2)}
    calls = by_id[eid(2)].tool_calls or []
    # the requested call (from the output message) is completed by the executed one with its id
    assert [(c.name, c.id, c.arguments, c.result) for c in calls] == [
        ("lookup_order", "call_9", {"id": "1"}, {"status": "shipped"}),
        ("search_kb", None, {"q": "refund"}, [{"id": "kb-1"}]),
    ]
    agent_calls = by_id[eid(1)].tool_calls or []
    assert [(c.name, c.result) for c in agent_calls] == [("escalate", {"error": "no human available"})]
    assert by_id[eid(2)].feature == "support"  # inherited from the agent span


def test_a_tool_span_whose_parent_is_not_in_the_request_is_its_own_event() -> None:
    tool = span(3, "execute_tool lookup_order", {"gen_ai.tool.call.arguments": "not json",
                                                 "gen_ai.tool.call.result": "shipped", "hotwash.feature": "bot"},
                parent=2, duration_ms=12)
    ev = one(request(tool))
    assert ev.id == eid(3) and ev.feature == "bot" and ev.latency_ms == pytest.approx(12)
    assert [(c.name, c.arguments, c.result) for c in ev.tool_calls or []] == [("lookup_order", "not json", "shipped")]
    assert (ev.tags or {})["otel.parent_span_id"] == sid(2).hex()


def test_span_events_carry_messages_and_evaluations() -> None:
    events = [
        ("gen_ai.system.message", {"content": "Be kind."}),
        ("gen_ai.user.message", {"content": "first"}),
        ("gen_ai.user.message", {"content": "second question"}),
        ("gen_ai.choice", {"index": 0, "message": json.dumps({"content": "the answer", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]})}),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.4,
                                      "gen_ai.evaluation.score.label": "low"}),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "tone", "gen_ai.evaluation.score.value": 0.9}),
    ]
    ev = one(request(span(1, attrs=chat(), events=events)))
    assert (ev.input, ev.output, ev.score) == ("second question", "the answer", 0.4)
    assert [(c.name, c.arguments, c.id) for c in ev.tool_calls or []] == [("f", {"x": 1}, "c1")]
    tags = ev.tags or {}
    assert tags["gen_ai.system_instructions"] == "Be kind."
    assert tags["gen_ai.evaluations"] == [{"name": "relevance", "score.value": 0.4, "score.label": "low"},
                                          {"name": "tone", "score.value": 0.9}]


def test_inference_operation_details_event() -> None:
    ev = one(request(span(1, attrs=chat(), events=[("gen_ai.client.inference.operation.details", {
        "gen_ai.input.messages": msgs(("user", "q")), "gen_ai.output.messages": msgs(("assistant", "a")),
        "gen_ai.system_instructions": "plain system text"})])))
    assert (ev.input, ev.output, (ev.tags or {})["gen_ai.system_instructions"]) == ("q", "a", "plain system text")


def test_structured_message_attributes_are_accepted() -> None:
    # Semconv allows the messages as structured (non-string) attribute values too.
    ev = one(request(span(1, attrs=chat(**{
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "structured"}]}],
        "gen_ai.retrieval.documents": [{"id": "d1", "content": "doc"}]}))))
    assert ev.input == "structured" and [d.text for d in ev.context or []] == ["doc"]


@pytest.mark.parametrize(
    ("status", "attrs", "error"),
    [
        ((Status.STATUS_CODE_ERROR, "rate limited"), {}, "rate limited"),
        ((Status.STATUS_CODE_ERROR, ""), {"error.type": "timeout"}, "timeout"),
        ((Status.STATUS_CODE_ERROR, ""), {}, "error"),
        ((Status.STATUS_CODE_OK, ""), {}, None),
        ((Status.STATUS_CODE_UNSET, "ignored"), {}, None),
    ],
)
def test_span_status_error(status: tuple[int, str], attrs: dict[str, Any], error: str | None) -> None:
    assert one(request(span(1, attrs=chat(**attrs), status=status))).error == error


def test_which_spans_are_genai_calls() -> None:
    spans = [
        span(1, "GET /", {"http.route": "/"}),
        span(2, "db", {"db.system": "postgresql", "gen_ai.conversation.id": "s"}),  # no marker: ignored
        span(3, "x", {"gen_ai.operation.name": "embeddings"}),
        span(4, "x", {"gen_ai.request.model": "m"}),
        span(5, "x", {"gen_ai.system": "openai"}),
        span(6, "x", {"gen_ai.provider.name": "openai"}),
        span(7, "x", {"gen_ai.operation.name": "generate_content"}),
    ]
    batch = otlp.spans_to_events(request(*spans))
    assert batch.ignored == 2 and not batch.rejected
    assert sorted(e.id for e in batch.records) == sorted(eid(n) for n in range(3, 8))


def test_resending_yields_the_same_ids() -> None:
    req = request(span(1, attrs=chat()), span(2, attrs=chat()))
    assert [e.id for e in otlp.spans_to_events(req).records] == [e.id for e in otlp.spans_to_events(req).records]


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"gen_ai.usage.input_tokens": -5}, "attribute 'gen_ai.usage.input_tokens': expected a non-negative integer"),
        ({"gen_ai.usage.prompt_tokens": "many"}, "attribute 'gen_ai.usage.prompt_tokens'"),
        ({"hotwash.confidence": 1.5}, "attribute 'hotwash.confidence' (field 'confidence'"),
        ({"hotwash.feedback": float("nan")}, "expected a finite number"),
        ({"hotwash.escalated": "maybe"}, "attribute 'hotwash.escalated': expected a boolean"),
        ({"hotwash.retry": 2**40}, "over the largest accepted value"),
        ({"gen_ai.request.model": "m" * 300}, "attribute 'gen_ai.request.model'"),
        ({"gen_ai.conversation.id": ["a", "list"]}, "attribute 'gen_ai.conversation.id': expected a string"),
        ({"hotwash.feature": ""}, None),  # empty: falls through to service.name, fine
    ],
)
def test_a_bad_span_is_rejected_with_where_and_why(attrs: dict[str, Any], reason: str | None) -> None:
    batch = otlp.spans_to_events(request(span(1, attrs=chat()), span(2, attrs=chat(**attrs))))
    if reason is None:
        assert len(batch.records) == 2 and not batch.rejected
        return
    assert [e.id for e in batch.records] == [eid(1)]
    [(where, why)] = batch.rejected
    assert where == f"resourceSpans[0].scopeSpans[0].spans[1] (span {sid(2).hex()})"
    assert reason in why


def test_structurally_bad_spans_are_rejected() -> None:
    no_ids = span(1, attrs=chat())
    no_ids.span_id = b""
    backwards = span(2, attrs=chat())
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    unstarted = span(3, attrs=chat())
    unstarted.start_time_unix_nano = 0
    batch = otlp.spans_to_events(request(no_ids, backwards, unstarted))
    reasons = [r for _, r in batch.rejected]
    assert not batch.records and len(reasons) == 3
    assert "no traceId or spanId" in reasons[0]
    assert "ends before it starts" in reasons[1]
    assert "no startTimeUnixNano" in reasons[2]


def test_a_bad_tool_span_is_rejected_alone() -> None:
    batch = otlp.spans_to_events(request(
        span(1, attrs=chat()), span(2, "execute_tool " + "t" * 300, {}, parent=1),
        span(3, "execute_tool ok", {}, parent=1)))
    assert [e.id for e in batch.records] == [eid(1)]
    assert [c.name for c in batch.records[0].tool_calls or []] == ["ok"]
    assert [w for w, _ in batch.rejected] == [f"resourceSpans[0].scopeSpans[0].spans[1] (span {sid(2).hex()})"]


def test_nul_characters_and_non_finite_tag_values_are_made_storable() -> None:
    ev = one(request(span(1, attrs=chat(**{"gen_ai.input.messages": msgs(("user", "a\x00b")),
                                           "gen_ai.request.temperature": float("inf")}))))
    assert ev.input == "a\ufffdb" and (ev.tags or {})["gen_ai.request.temperature"] == "inf"


def test_deep_values_nul_keys_and_nulls_are_made_storable_on_every_path() -> None:
    # Values the quick check in C sends to the walk in Python: a NUL in a key, nesting past the
    # depth limit, null in tool arguments, brackets in plain text (which only look deep).
    deep: Any = "leaf"
    for _ in range(40):
        deep = [deep]
    ev = one(request(
        span(1, attrs=chat(**{"hotwash.a\x00b": "v", "hotwash.deep": deep, "hotwash.text": "[" * 40,
                              "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                                  {"type": "tool_call", "id": "c1", "name": "t", "arguments": {"x": None}}]}])})),
        span(2, "execute_tool t", {"gen_ai.tool.call.id": "c1", "gen_ai.tool.call.result": '{"r": null}'},
             parent=1)))
    tags = ev.tags or {}
    assert tags["a\ufffdb"] == "v" and tags["text"] == "[" * 40
    assert otlp._json_safe(deep, 2) == tags["deep"] != deep  # cut at the depth limit
    [call] = ev.tool_calls or []
    assert (call.arguments, call.result) == ({"x": None}, {"r": None})
    # a non-finite number alone (no NUL anywhere) is caught too
    plain = one(request(span(1, attrs=chat(**{"gen_ai.request.temperature": float("-inf"),
                                               "hotwash.n": [float("nan")]}))))
    assert (plain.tags or {})["gen_ai.request.temperature"] == "-inf" and (plain.tags or {})["n"] == ["nan"]


def test_spans_across_several_resources() -> None:
    req = request(span(1, attrs=chat()), resource={"service.name": "a"})
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": "b"}))
    rs.scope_spans.add().spans.extend([span(2, attrs=chat()), span(3, attrs=chat(**{"hotwash.confidence": 7}))])
    batch = otlp.spans_to_events(req)
    assert [(e.id, e.feature) for e in batch.records] == [(eid(1), "a"), (eid(2), "b")]
    assert batch.rejected[0][0] == f"resourceSpans[1].scopeSpans[0].spans[1] (span {sid(3).hex()})"


# -- decoding -------------------------------------------------------------------------------------


def test_otlp_json_with_hex_ids_maps_like_protobuf() -> None:
    req = request(span(1, attrs=chat(**{"gen_ai.usage.input_tokens": 5})),
                  span(2, "execute_tool t", {"gen_ai.tool.name": "t"}, parent=1))
    doc = to_json(req)
    sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert sp["traceId"] == TRACE.hex() and sp["spanId"] == sid(1).hex() and sp["kind"] == 3
    assert sp["attributes"][-1]["value"] == {"intValue": "5"}
    doc["resourceSpans"][0]["someFutureField"] = {"x": 1}  # unknown fields are ignored
    from_json = otlp.decode_and_map(orjson.dumps(doc), "application/json; charset=utf-8")
    from_pb = otlp.decode_and_map(req.SerializeToString(), PB)
    assert from_json.records == from_pb.records
    assert from_json.records[0].tool_calls and from_json.records[0].tool_calls[0].name == "t"


def test_otlp_json_accepts_snake_case_keys_enum_names_and_base64_ids() -> None:
    doc = {"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": base64.b64encode(TRACE).decode(), "span_id": sid(1).hex(), "name": "chat",
        "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": T0, "end_time_unix_nano": str(T0 + 10**6),
        "status": {"code": 2},
        "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}]}]}]}]}
    [ev] = otlp.decode_and_map(orjson.dumps(doc), "application/json").records
    assert ev.id == eid(1) and ev.latency_ms == pytest.approx(1) and ev.error == "error"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xfe garbage \x00\x01", PB, "not a valid OTLP protobuf"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"", "application/json", "body is empty"),
        (b"[1, 2]", "application/json", "got a JSON list"),
        (b'{"resourceSpans": 7}', "application/json", "not a valid OTLP/JSON"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz-not-hex"}]}]}]}', "application/json",
         "resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        (b"{}", "text/plain", "application/x-protobuf"),
    ],
)
def test_garbage_raises_payload_error_with_a_useful_message(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        otlp.decode_and_map(body, content_type)
    assert message in str(info.value)


def test_unsupported_content_type_names_the_supported_ones() -> None:
    with pytest.raises(PayloadError, match=r"application/x-protobuf.*application/json"):
        otlp.decode_request(b"", "application/xml")


# -- responses ------------------------------------------------------------------------------------


def test_full_success_is_an_empty_response() -> None:
    batch = otlp.spans_to_events(request(span(1, attrs=chat())))
    assert otlp.encode_response(batch, PB) == b""
    assert orjson.loads(otlp.encode_response(batch, "application/json")) == {}
    assert otlp.response_media_type("application/json; charset=utf-8") == "application/json"
    assert otlp.response_media_type(PB) == PB


def test_partial_success_counts_and_explains_the_rejected_spans() -> None:
    bad = [span(n, attrs=chat(**{"gen_ai.usage.input_tokens": -n})) for n in range(2, 7)]
    batch = otlp.spans_to_events(request(span(1, attrs=chat()), *bad))
    response = ExportTraceServiceResponse.FromString(otlp.encode_response(batch, PB))
    assert response.partial_success.rejected_spans == 5
    message = response.partial_success.error_message
    assert message.startswith("5 spans rejected: resourceSpans[0].scopeSpans[0].spans[1]")
    assert "gen_ai.usage.input_tokens" in message and message.endswith("and 2 more")
    as_json = orjson.loads(otlp.encode_response(batch, "application/json"))
    assert as_json["partialSuccess"]["rejectedSpans"] in ("5", 5)
    assert as_json["partialSuccess"]["errorMessage"] == message


# -- otlp-json files ------------------------------------------------------------------------------


def _read_file(data: bytes, limit: int = 100_000) -> list[Accepted | Rejected]:
    return list(otlp.read_otlp_json(io.BytesIO(data), source="traces.json", max_record_bytes=limit))


def test_file_exporter_json_lines() -> None:
    line1 = orjson.dumps(to_json(request(span(1, attrs=chat()), span(2, attrs=chat()))))
    line3 = orjson.dumps(to_json(request(span(3, attrs=chat(**{"hotwash.confidence": 2})), span(4, "GET /"))))
    items = _read_file(line1 + b"\n\n" + line3 + b"\n{broken\n" + line1 + b"\n")
    assert [(type(i).__name__, i.line) for i in items] == [
        ("Accepted", 1), ("Accepted", 1), ("Rejected", 3), ("Rejected", 4), ("Accepted", 5), ("Accepted", 5)]
    bad_span, bad_line = items[2], items[3]
    assert isinstance(bad_span, Rejected) and isinstance(bad_line, Rejected)
    assert "spans[0] (span" in bad_span.reason and "hotwash.confidence" in bad_span.reason
    assert "not valid JSON" in bad_line.reason and bad_line.raw == b"{broken"
    # the quarantined span is a one-span request: fixed, it can be ingested again
    fixed = bad_span.raw.replace(b'"doubleValue":2.0', b'"doubleValue":0.5').replace(b'"intValue":"2"',
                                                                                       b'"doubleValue":0.5')
    [again] = _read_file(fixed)
    assert isinstance(again, Accepted) and again.record.id == eid(3) and again.record.confidence == 0.5


def test_one_pretty_printed_document() -> None:
    doc = json.dumps(to_json(request(span(1, attrs=chat()), span(2, attrs=chat()))), indent=2).encode()
    items = _read_file(b"\n" + doc)
    assert [(type(i).__name__, i.line) for i in items] == [("Accepted", 2), ("Accepted", 2)]


def test_json_lines_with_a_broken_first_line_and_odd_files() -> None:
    good = orjson.dumps(to_json(request(span(1, attrs=chat()))))
    items = _read_file(b'{"resourceSpans": [\n' + good + b"\n")
    assert [(type(i).__name__, i.line) for i in items] == [("Rejected", 1), ("Accepted", 2)]
    assert _read_file(b"") == [] and _read_file(b"\n \n") == []
    [bad] = _read_file(b"{\n  not json\n}\n")
    assert isinstance(bad, Rejected) and bad.line == 1 and "not valid JSON" in bad.reason
    [big] = _read_file(good + b"\n", limit=1)
    assert isinstance(big, Rejected) and "size limit" in big.reason
    pretty = json.dumps(to_json(request(span(1, attrs=chat()))), indent=2).encode()
    [big_doc] = _read_file(pretty, limit=2)
    assert isinstance(big_doc, Rejected) and big_doc.line == 1 and "document is over the size limit" in big_doc.reason


def test_ingest_otlp_json_file_into_the_store(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    lines = [orjson.dumps(to_json(request(span(n, attrs=chat(**{"gen_ai.usage.input_tokens": n}))))) for n in (1, 2)]
    path.write_bytes(b"\n".join([*lines, lines[0]]) + b"\n")
    with path.open("rb") as fh:
        report = ingest_streams([(str(path), fh)], writer=EventWriter(store), quarantine=Quarantine(tmp_path / "q"),
                                batch_size=100, max_record_bytes=10_000, reader=otlp.read_otlp_json)
    assert (report.accepted, report.duplicates, report.rejected_count) == (2, 1, 0)
    assert {r["id"]: r["tokens_in"] for r in store.iter_events()} == {eid(1): 1, eid(2): 2}


# -- the HTTP receiver ----------------------------------------------------------------------------


def test_protobuf_json_and_gzip_over_http(live_server: LiveServer, store: Store) -> None:
    req = request(span(1, attrs=chat(**{"gen_ai.usage.input_tokens": 3})), span(2, "GET /health"))
    with httpx.Client(base_url=live_server.url) as http:
        r = http.post("/v1/traces", content=req.SerializeToString(), headers={"content-type": PB})
        assert r.status_code == 200 and r.headers["content-type"].startswith(PB) and r.content == b""
        r = http.post("/v1/traces", content=orjson.dumps(to_json(request(span(3, attrs=chat())))),
                      headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json() == {}
        r = http.post("/v1/traces", content=gzip.compress(request(span(4, attrs=chat())).SerializeToString()),
                      headers={"content-type": PB, "content-encoding": "gzip"})
        assert r.status_code == 200
        # re-sending is harmless
        r = http.post("/v1/traces", content=req.SerializeToString(), headers={"content-type": PB})
        assert r.status_code == 200
    rows = store.get_events([eid(1), eid(2), eid(3), eid(4)])
    assert set(rows) == {eid(1), eid(3), eid(4)}
    assert rows[eid(1)]["tokens_in"] == 3 and rows[eid(1)]["feature"] == "checkout-svc"
    assert store.status()["events"] == 3


def test_garbage_body_is_a_400_with_a_message(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        r = http.post("/v1/traces", content=b"\xff\xff\xff\xff garbage", headers={"content-type": PB})
        assert r.status_code == 400 and "not a valid OTLP protobuf" in r.json()["detail"]
        r = http.post("/v1/traces", content=b"{oops", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        r = http.post("/v1/traces", content=b"x", headers={"content-type": "text/csv"})
        assert r.status_code == 415 and "application/x-protobuf" in r.json()["detail"]


def test_partial_success_over_http(live_server: LiveServer, store: Store) -> None:
    req = request(span(1, attrs=chat()), span(2, attrs=chat(**{"gen_ai.usage.output_tokens": -1})))
    with httpx.Client(base_url=live_server.url) as http:
        r = http.post("/v1/traces", content=req.SerializeToString(), headers={"content-type": PB})
        response = ExportTraceServiceResponse.FromString(r.content)
        assert r.status_code == 200 and response.partial_success.rejected_spans == 1
        assert "gen_ai.usage.output_tokens" in response.partial_success.error_message
        r = http.post("/v1/traces", content=orjson.dumps(to_json(req)), headers={"content-type": "application/json"})
        assert r.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    assert list(store.get_events([eid(1), eid(2)])) == [eid(1)]


def test_a_small_export_goes_to_a_worker_and_stores_what_inline_stores(store: Store, tmp_path: Path,
                                                                       db_url: str) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import delete, select

    from hotwash.store.tables import behaviours, events, rollups
    from hotwash.web import app as web_app

    spans = [span(n, attrs=chat(**{"gen_ai.input.messages": msgs(("user", f"question {n} " + "q" * 400)),
                                    "gen_ai.output.messages": msgs(("assistant", "an answer"))}))
             for n in range(1, 9)]
    spans.append(span(9, "execute_tool lookup", {"gen_ai.tool.call.arguments": '{"id": 1}'}, parent=1))
    body = request(*spans).SerializeToString()
    assert web_app._WORKER_BODY_BYTES <= len(body) < 32 * 1024  # a few spans: under the old 32 KB threshold
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url)

    def post(check_workers: int | None) -> tuple[int, bytes, list[int], list[list[dict[str, Any]]]]:
        shipped: list[int] = []
        with TestClient(web_app.create_app(settings, store=store, check_workers=check_workers)) as client:
            pool = client.app.state.pool  # type: ignore[attr-defined]
            if pool is not None:
                submit = pool.submit_otlp
                pool.submit_otlp = lambda b, *a, **k: (shipped.append(len(b)), submit(b, *a, **k))[1]
            r = client.post("/v1/traces", content=body, headers={"content-type": PB})
        stored = []
        with store.engine.begin() as conn:
            for table, order in ((events, events.c.id), (rollups, rollups.c.minute), (behaviours, behaviours.c.name)):
                rows = [dict(row) for row in conn.execute(select(table).order_by(order)).mappings()]
                stored.append([{k: v for k, v in row.items() if k != "ingested_at"} for row in rows])
                conn.execute(delete(table))
        return r.status_code, r.content, shipped, stored

    inline, piped = post(None), post(2)
    assert inline[2] == [] and piped[2] == [len(body)]
    assert inline[0] == 200 and inline[:2] == piped[:2]
    assert inline[3] == piped[3] and len(piped[3][0]) == 8


def test_oversized_body_is_a_413(tmp_path: Path, db_url: str, store: Store) -> None:
    small = get_settings(home=tmp_path / ".hotwash", database_url=db_url, max_body_bytes=1000)
    big = request(*(span(n, attrs=chat(**{"gen_ai.input.messages": msgs(("user", "x" * 100))})) for n in range(20)))
    body = big.SerializeToString()
    assert len(body) > 1000
    with LiveServer(small) as server, httpx.Client(base_url=server.url) as http:
        r = http.post("/v1/traces", content=body, headers={"content-type": PB})
        assert r.status_code == 413 and "1000" in r.json()["detail"]
        # a small gzip body that inflates past the limit is refused too
        r = http.post("/v1/traces", content=gzip.compress(body), headers={"content-type": PB,
                                                                          "content-encoding": "gzip"})
        assert r.status_code == 413
        r = http.post("/v1/traces", content=request(span(1, attrs=chat())).SerializeToString(),
                      headers={"content-type": PB})
        assert r.status_code == 200
    assert store.status()["events"] == 1


# -- the real OpenTelemetry SDK -------------------------------------------------------------------


def _sdk_provider(endpoint: str, *, batch: bool, gzip_: bool = False) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=10,
                                compression=Compression.Gzip if gzip_ else Compression.NoCompression)
    provider = TracerProvider(resource=Resource({"service.name": "support-svc",
                                                 "deployment.environment.name": "prod"}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def _emit_agent_turn(provider: Any) -> tuple[str, str, str]:
    from opentelemetry.trace import SpanKind, StatusCode
    from opentelemetry.trace import Status as TraceStatus

    tracer = provider.get_tracer("my-app.genai", "1.0")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.conversation.id": "conv-42",
        "gen_ai.request.temperature": 0.3,
        "hotwash.feature": "support-bot",
        "hotwash.prompt_version": "v12",
        "enduser.id": "u-7",
    }) as chat_span:
        with tracer.start_as_current_span("execute_tool lookup_order", attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"order_id": "1234"}',
            "gen_ai.tool.call.result": '{"status": "shipped"}',
        }) as tool_span:
            pass
        chat_span.set_attribute("gen_ai.input.messages", msgs(("user", "Where is my order 1234?")))
        chat_span.set_attribute("gen_ai.output.messages", msgs(("assistant", "It has shipped.")))
        chat_span.set_attribute("gen_ai.usage.input_tokens", 812)
        chat_span.set_attribute("gen_ai.usage.output_tokens", 120)
        chat_span.set_attribute("hotwash.confidence", 0.82)
        chat_span.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "groundedness",
                                                         "gen_ai.evaluation.score.value": 0.9})
        chat_span.set_status(TraceStatus(StatusCode.ERROR, "upstream 429 after retry"))
        trace_hex = format(chat_span.get_span_context().trace_id, "032x")
        chat_hex = format(chat_span.get_span_context().span_id, "016x")
        tool_hex = format(tool_span.get_span_context().span_id, "016x")
    return trace_hex, chat_hex, tool_hex


def _assert_chat_row(row: dict[str, Any]) -> None:
    assert row["feature"] == "support-bot" and row["env"] == "prod"
    assert (row["provider"], row["model"], row["prompt_version"]) == ("openai", "gpt-4o-mini-2024-07-18", "v12")
    assert (row["session_id"], row["user_id"]) == ("conv-42", "u-7")
    assert (row["tokens_in"], row["tokens_out"]) == (812, 120)
    assert (row["input"], row["output"]) == ("Where is my order 1234?", "It has shipped.")
    assert row["confidence"] == pytest.approx(0.82) and row["score"] == pytest.approx(0.9)
    assert row["error"] == "upstream 429 after retry"
    assert row["latency_ms"] is not None and row["latency_ms"] >= 0
    assert row["tags"]["gen_ai.request.temperature"] == 0.3
    assert row["cost_source"] in ("priced", "unpriced")


@pytest.mark.parametrize("gzip_", [False, True], ids=["plain", "gzip"])
def test_real_sdk_exporter_batch_processor(live_server: LiveServer, store: Store, gzip_: bool) -> None:
    provider = _sdk_provider(live_server.url, batch=True, gzip_=gzip_)
    try:
        trace_hex, chat_hex, tool_hex = _emit_agent_turn(provider)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    rows = store.get_events([f"otel-{trace_hex}-{chat_hex}", f"otel-{trace_hex}-{tool_hex}"])
    # both spans went in one request: the tool span is a tool call of the chat event
    assert list(rows) == [f"otel-{trace_hex}-{chat_hex}"]
    row = rows[f"otel-{trace_hex}-{chat_hex}"]
    _assert_chat_row(row)
    assert row["tool_calls"] == [{"name": "lookup_order", "arguments": {"order_id": "1234"},
                                  "result": {"status": "shipped"}, "id": "call_1"}]


def test_real_sdk_exporter_simple_processor(live_server: LiveServer, store: Store) -> None:
    provider = _sdk_provider(live_server.url, batch=False)
    try:
        trace_hex, chat_hex, tool_hex = _emit_agent_turn(provider)
        trace2, chat2, _ = _emit_agent_turn(provider)  # a second turn
    finally:
        provider.shutdown()
    # each span is exported alone as it ends: the tool span's parent is not in its request, so
    # it is kept as an event of its own rather than lost
    rows = store.get_events([f"otel-{trace_hex}-{chat_hex}", f"otel-{trace_hex}-{tool_hex}",
                             f"otel-{trace2}-{chat2}"])
    assert len(rows) == 3
    _assert_chat_row(rows[f"otel-{trace_hex}-{chat_hex}"])
    tool = rows[f"otel-{trace_hex}-{tool_hex}"]
    assert tool["feature"] == "support-svc"  # its own attributes carry no feature: the service name
    assert tool["tool_calls"][0]["name"] == "lookup_order"
    assert tool["tags"]["otel.parent_span_id"] == chat_hex
    assert store.status()["events"] == 4


# -- properties -----------------------------------------------------------------------------------

PROPS = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "parentSpanId", "attributes", "key", "value",
        "stringValue", "intValue", "events", "status", "code", "startTimeUnixNano", "links", "resource", "name"]
otlpish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="0123456789abcdefABC=+/xyz", max_size=34)
    | st.floats(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    max_leaves=30,
)


@PROPS
@given(st.binary(max_size=300), st.sampled_from([PB, "application/json", "text/plain", ""]))
def test_random_bytes_only_ever_raise_payload_error(body: bytes, content_type: str) -> None:
    try:
        batch = otlp.decode_and_map(body, content_type)
    except PayloadError:
        return
    otlp.encode_response(batch, content_type)


@PROPS
@given(st.one_of(json_values, otlpish))
def test_random_json_only_ever_raises_payload_error(doc: Any) -> None:
    try:
        body = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return  # integers orjson cannot write
    try:
        batch = otlp.decode_and_map(body, "application/json")
    except PayloadError:
        return
    assert orjson.loads(otlp.encode_response(batch, "application/json")) is not None


@PROPS
@given(st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
                    | st.text(alphabet="ab\x00[{\\u0n", max_size=8),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(alphabet="ab\x00", max_size=3), children, max_size=3),
                    max_leaves=40),
       st.integers(0, 40))
def test_the_quick_storable_check_only_passes_what_the_walk_would_leave_alone(value: Any, depth: int) -> None:
    if otlp._plainly_safe(value, depth):
        assert otlp._json_safe(value, depth) == value


attribute_values = st.recursive(
    st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats() | st.text(max_size=40)
    | st.binary(max_size=8) | st.sampled_from(['[{"role": "user", "parts": [{"type": "text", "content": "x"}]}]',
                                              '{"id": 1}', "[", "[1, null]", '[{"parts": 5}]', "-3", "0.5"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
ATTRIBUTE_KEYS = [
    "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name", "gen_ai.system",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens", "gen_ai.conversation.id", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.prompt.0.content", "gen_ai.completion.0.tool_calls.0.name",
    "gen_ai.system_instructions", "gen_ai.retrieval.documents", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.tool.call.id", "gen_ai.prompt.name", "gen_ai.evaluation.score.value",
    "gen_ai.agent.name", "hotwash.feature", "hotwash.escalated", "hotwash.confidence", "hotwash.env",
    "hotwash.prompt_version", "hotwash.retry", "hotwash.x", "enduser.id", "user.id", "error.type",
]
sane_values = st.one_of(st.text(max_size=12), st.integers(0, 10_000), st.floats(0, 1), st.booleans())
span_specs = st.lists(
    st.tuples(
        st.integers(0, 5),  # span id (0: empty)
        st.one_of(st.none(), st.integers(0, 5)),  # parent
        st.sampled_from(["chat", "execute_tool", "execute_tool x", "GET /"]),
        st.dictionaries(st.sampled_from(ATTRIBUTE_KEYS), sane_values | attribute_values, max_size=6),
        st.one_of(st.just(T0), st.integers(0, 2**64 - 1)),  # start
        st.one_of(st.integers(0, 10**10), st.integers(-(2**64), 2**64)),  # end - start
        st.sampled_from([0, 1, 2, 99]),  # status code
        st.lists(st.tuples(st.sampled_from(["gen_ai.choice", "gen_ai.user.message", "gen_ai.evaluation.result",
                                            "gen_ai.client.inference.operation.details"]),
                           st.dictionaries(st.sampled_from(["content", "message", "gen_ai.evaluation.score.value",
                                                            "gen_ai.input.messages", "gen_ai.output.messages"]),
                                           sane_values | attribute_values, max_size=3)), max_size=2),
    ),
    max_size=6,
)


@PROPS
@given(span_specs, st.dictionaries(st.sampled_from(["service.name", "deployment.environment.name", "user.id"]),
                                   sane_values | attribute_values, max_size=3))
def test_spans_to_events_never_raises(specs: list[Any], resource: dict[str, Any]) -> None:
    spans = []
    for n, parent, name, attrs, start, duration, code, events in specs:
        s = Span(trace_id=TRACE, span_id=sid(n) if n else b"", name=name, start_time_unix_nano=start,
                 end_time_unix_nano=min(max(start + duration, 0), 2**64 - 1))
        if parent is not None:
            s.parent_span_id = sid(parent)
        s.attributes.extend(kvs(attrs))
        s.status.code = code  # type: ignore[assignment] - an unknown enum value is kept as an int
        for ev_name, ev_attrs in events:
            s.events.add(name=ev_name, attributes=kvs(ev_attrs))
        spans.append(s)
    req = request(*spans, resource=resource)
    batch = otlp.spans_to_events(req)
    assert batch.ignored + len(batch.records) + len(batch.rejected) <= len(spans)
    for record in batch.records:
        assert isinstance(record, Event) and record.id.startswith("otel-")
    # the same spans over OTLP/JSON map to the same events
    again = otlp.decode_and_map(orjson.dumps(to_json(req)), "application/json")
    assert again.records == batch.records and again.rejected == batch.rejected
    otlp.encode_response(batch, PB)


# -- group commit (the server commits concurrent requests' batches together) ---------------------


def _stored(store: Store) -> dict[str, list[dict[str, Any]]]:
    from sqlalchemy import select

    from hotwash.store.tables import behaviours, events, rollups

    out = {}
    with store.engine.connect() as conn:
        for table, order in ((events, (events.c.id,)), (rollups, (rollups.c.feature, rollups.c.minute)),
                             (behaviours, (behaviours.c.feature, behaviours.c.kind, behaviours.c.name))):
            rows = [dict(r) for r in conn.execute(select(table).order_by(*order)).mappings()]
            out[table.name] = [{k: v for k, v in r.items() if k != "ingested_at"} for r in rows]
    return out


def _wipe_stored(store: Store) -> None:
    from sqlalchemy import delete

    from hotwash.store.tables import behaviours, events, rollups

    with store.engine.begin() as conn:
        for table in (events, rollups, behaviours):
            conn.execute(delete(table))


def _sample_records(n: int) -> list[Any]:
    from hotwash.demo.sample import generate_events
    from hotwash.telemetry.model import parse_record

    return [parse_record(o) for o in generate_events(n, seed=5)]


def test_a_group_commit_stores_and_answers_what_committing_one_by_one_does(store: Store) -> None:
    """Overlapping batches (an id in two requests of one group, ids already stored) in one
    transaction: each batch's accepted / duplicate counts, the rows, the rollups and the first
    sightings are those of committing the batches one after the other."""
    from hotwash.detect.checks import EventChecker
    from hotwash.telemetry.writer import prepare

    records = _sample_records(600)
    checker = EventChecker()

    def batches() -> list[Any]:
        chunks = [records[0:250], records[200:450], records[100:150] + records[450:600], records[590:600]]
        return [prepare(c, checker) for c in chunks]

    writer = EventWriter(store)
    writer.commit(prepare(records[0:50], checker))  # some of the first batch is stored already
    one_by_one = [writer.commit(p) for p in batches()]
    expected = _stored(store)
    assert [(r.accepted, r.duplicates) for r in one_by_one] == [(200, 50), (200, 50), (150, 50), (0, 10)]
    _wipe_stored(store)
    writer.commit(prepare(records[0:50], checker))
    assert writer.commit_many(batches()) == one_by_one
    assert _stored(store) == expected
    assert writer.commit_many(batches()) == [type(r)(0, len(p.event_rows)) for r, p in zip(one_by_one, batches(),
                                                                                         strict=True)]
    assert _stored(store) == expected


def test_rows_bound_for_sqlite_and_mapping_rows_commit_in_one_group(store: Store) -> None:
    from hotwash.detect.checks import EventChecker
    from hotwash.telemetry.writer import prepare

    if store.dialect != "sqlite":
        pytest.skip("rows bound for SQLite")
    records = _sample_records(300)
    checker = EventChecker()
    writer = EventWriter(store)
    writer.commit(prepare(records[:200], checker))
    writer.commit(prepare(records[100:], checker, sqlite=True))
    expected = _stored(store)
    _wipe_stored(store)
    results = writer.commit_many([prepare(records[:200], checker), prepare(records[100:], checker, sqlite=True)])
    assert [(r.accepted, r.duplicates) for r in results] == [(200, 0), (100, 100)]
    assert _stored(store) == expected


def test_the_group_committer_fails_only_the_bad_batch_of_a_group(store: Store) -> None:
    from hotwash.telemetry.group import GroupCommitter
    from hotwash.telemetry.writer import prepare

    records = _sample_records(40)
    seen: list[int] = []
    committer = GroupCommitter(EventWriter(store), after_commit=lambda b, r: seen.append(len(b)))
    try:
        with committer._cond:  # queue them all before the committer takes any: one group
            futures = [committer.submit(prepare(records[i:i + 10])) for i in (0, 10)]
        assert [f.result(30).accepted for f in futures] == [10, 10]
        assert committer.groups == 1 and seen == [2]
        good1, bad, good2 = (prepare(records[i:i + 10]) for i in (20, 30, 25))
        bad.event_rows[3]["feature"] = None  # NOT NULL: the database refuses this batch
        with committer._cond:
            futures = [committer.submit(p) for p in (good1, bad, good2)]
        assert (futures[0].result(30).accepted, futures[0].result().duplicates) == (10, 0)
        assert (futures[2].result(30).accepted, futures[2].result().duplicates) == (5, 5)
        with pytest.raises(Exception, match=r"(?i)null"):
            futures[1].result(30)
        assert committer.groups == 1 and seen == [2, 1, 1]  # the failed group was retried one by one
    finally:
        committer.close()
    stored = store.get_events(r.id for r in records)
    assert set(stored) == {r.id for r in records[:35]}  # good2's ids 30-34 were the bad batch's too
