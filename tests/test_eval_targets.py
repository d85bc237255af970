"""Eval targets: a Python callable, the recorded output, and an OpenAI-compatible chat-completions
endpoint — tested against a local server speaking that wire format (tool calls, usage, 500s,
Retry-After, timeouts, garbage, an unreachable port). A target that cannot answer fails its case
with the cause; the run always completes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.errors import InvalidValue
from hotwash.evals import (
    CallableTarget,
    OpenAITarget,
    RecordedTarget,
    TargetError,
    TargetOutput,
    parse_cases,
    recorded_output,
    run_cases,
    write_case,
)
from hotwash.evals.targets import load_callable

KB = "The X200 ships with a 12-month limited warranty covering manufacturing defects."


def case(**kw: Any):
    raw = {"version": 1, "id": "c1", "input": "Do you offer a warranty?", "assertions": [{"contains": "warranty"}],
           **kw}
    return parse_cases(yaml.safe_dump(raw), source="mem.yaml")[0]


# -- a local server speaking the chat-completions wire format ----------------------------------------


class Upstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append({"body": body, "authorization": request.headers.get("authorization")})
        last = body["messages"][-1]["content"]
        self.counts[last] += 1
        if last == "boom":
            return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}}, status_code=500)
        if last.startswith("flaky") and self.counts[last] == 1:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503, headers={"retry-after": "0"})
        if last == "slow":
            await asyncio.sleep(3)
        if last == "garbage":
            return PlainTextResponse("<html>proxy error page</html>")
        if last == "forbidden":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        content: Any = f"About the warranty: {last}"
        tool_calls = None
        if "refund" in last:
            content = None
            tool_calls = [{"id": "call_1", "type": "function",
                           "function": {"name": "refund", "arguments": '{"order": "1234", "amount": 90}'}}]
        elif "human" in last:
            content = [{"type": "text", "text": "Let me get "}, {"type": "text", "text": "a colleague."}]
            tool_calls = [{"id": "call_2", "type": "function",
                           "function": {"name": "escalate_to_human", "arguments": "{}"}}]
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000, "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if tool_calls else "stop"}],
                "usage": {"prompt_tokens": 50 + len(last), "completion_tokens": 12,
                          "total_tokens": 62 + len(last)}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    up = Upstream()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(up.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "test upstream did not start"
        time.sleep(0.02)
    try:
        yield up, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_openai_target_sends_the_case_and_maps_content_usage_and_tool_calls(
        upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch) -> None:
    up, url = upstream
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-123")
    target = OpenAITarget(base_url=url, model="local-test", api_key_env="TEST_LLM_KEY", system="Be brief.",
                          temperature=0)
    c = case(input="please refund order 1234", context=[{"id": "kb-12", "text": KB}, {"text": "  "}],
             tools={"allowed": ["search_kb"], "declared": ["search_kb", {"name": "refund", "description": "Refund",
                                                                         "parameters": {"type": "object"}}]})
    try:
        out = target(c, timeout=5)
    finally:
        target.close()
    assert out.output is None and out.tool_calls == [{"name": "refund", "arguments": {"order": "1234", "amount": 90}}]
    assert (out.tokens_in, out.tokens_out, out.escalated, out.model) == (50 + len(c.input), 12, False, "local-test")
    assert out.cost_usd is None  # a model the price data does not know is unpriced, not free
    sent = up.requests[-1]
    assert sent["authorization"] == "Bearer sk-test-123"
    assert sent["body"]["model"] == "local-test" and sent["body"]["temperature"] == 0
    assert sent["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Documents:\n\n[kb-12] {KB}"},  # untrusted documents are not system text
        {"role": "user", "content": "please refund order 1234"},
    ]
    assert sent["body"]["tools"] == [
        {"type": "function", "function": {"name": "search_kb", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "refund", "description": "Refund",
                                          "parameters": {"type": "object"}}},
    ]


def test_openai_target_escalation_content_parts_and_pricing(upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    target = OpenAITarget(base_url=url + "/chat/completions", model="gpt-4o-mini")
    try:
        out = target(case(input="I want a human"), timeout=5)
        plain = target(case(input="hello"), timeout=5)
    finally:
        target.close()
    assert out.output == "Let me get a colleague." and out.escalated is True
    assert out.tool_names == ["escalate_to_human"]
    assert plain.output == "About the warranty: hello" and plain.escalated is False and plain.tool_calls == []
    assert plain.cost_usd is not None and 0 < plain.cost_usd < 0.001  # priced from the maintained price data


def test_a_run_against_the_endpoint_survives_500s_timeouts_garbage_and_refusals(
        upstream: tuple[Upstream, str]) -> None:
    up, url = upstream
    cases = [case(id="ok", input="tell me about it"),
             case(id="refund", input="refund me", assertions=[{"tool_denylist": ["refund"]}]),
             case(id="boom", input="boom"),
             case(id="flaky", input="flaky warranty question"),
             case(id="slow", input="slow"),
             case(id="garbage", input="garbage"),
             case(id="forbidden", input="forbidden")]
    target = OpenAITarget(base_url=url, model="local-test")
    try:
        run = run_cases(cases, target, concurrency=4, timeout=0.5, retries=2, backoff=0.01)
    finally:
        target.close()
    r = {x.case_id: x for x in run.results}
    assert (r["ok"].status, r["ok"].attempts) == ("passed", 1)
    assert r["refund"].status == "failed"
    assert r["refund"].reason == "output calls tool 'refund' which the denylist forbids"
    assert (r["boom"].status, r["boom"].attempts) == ("error", 3)
    assert r["boom"].error == f"{url}/chat/completions answered HTTP 500: upstream exploded (after 3 attempts)"
    assert up.counts["boom"] == 3
    assert (r["flaky"].status, r["flaky"].attempts) == ("passed", 2)  # 503 with Retry-After: 0, then fine
    assert r["slow"].status == "error" and "did not answer within 0.5s" in r["slow"].error
    assert r["slow"].attempts == 3
    assert (r["garbage"].status, r["garbage"].attempts) == ("error", 1)
    assert "did not answer with chat.completion JSON" in r["garbage"].error and "proxy error page" in r["garbage"].error
    assert (r["forbidden"].status, r["forbidden"].attempts) == ("error", 1)
    assert r["forbidden"].error.endswith("refused the request, HTTP 401: invalid api key")
    assert (run.passed, run.failed, run.errors) == (2, 1, 4)


def test_an_unreachable_endpoint_fails_each_case_with_the_cause() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    target = OpenAITarget(base_url=url, model="m")
    try:
        run = run_cases([case(id="a"), case(id="b")], target, retries=1, backoff=0.01)
    finally:
        target.close()
    assert [x.status for x in run.results] == ["error", "error"]
    assert all(x.error.startswith(f"cannot reach {url}/chat/completions") and x.error.endswith("(after 2 attempts)")
               for x in run.results)


def test_openai_target_needs_its_key_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(InvalidValue, match="the API key variable NO_SUCH_KEY_VAR is not set"):
        OpenAITarget(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="NO_SUCH_KEY_VAR")


def test_eval_run_against_the_endpoint_from_the_command_line(upstream: tuple[Upstream, str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = upstream
    monkeypatch.chdir(tmp_path)
    write_case(case(id="good", input="hello"), tmp_path / "evals" / "good.yaml")
    write_case(case(id="bad", input="refund please", assertions=[{"tool_allowlist": ["search_kb"]}]),
               tmp_path / "evals" / "bad.yaml")
    result = CliRunner().invoke(cli_app, ["eval", "run", "--openai", url, "--model", "local-test", "--json",
                                          "--retries", "0", "--junit", "junit.xml"])
    assert result.exit_code == 1, result.output
    data = orjson.loads(result.stdout)
    assert data["target"] == f"openai local-test @ {url}/chat/completions"
    assert {c["id"]: c["status"] for c in data["cases"]} == {"bad": "failed", "good": "passed"}
    bad = next(c for c in data["cases"] if c["id"] == "bad")
    assert bad["assertions"][0]["message"] == "output calls tool 'refund', which is not in the allowlist [search_kb]"
    assert bad["output"]["tool_calls"] == [{"name": "refund", "arguments": {"order": "1234", "amount": 90}}]
    assert "<failure" in (tmp_path / "junit.xml").read_text()

    (tmp_path / "evals" / "bad.yaml").unlink()
    ok = CliRunner().invoke(cli_app, ["eval", "run", "--openai", url, "--model", "local-test"])
    assert ok.exit_code == 0 and "ok: 1 passed · 0 failed of 1" in ok.stdout


def test_a_case_can_name_its_own_endpoint(upstream: tuple[Upstream, str]) -> None:
    up, url = upstream
    c = case(id="own", input="own target please", target={"openai": {"base_url": url, "model": "case-model"}})
    run = run_cases([c])
    assert run.results[0].status == "passed" and run.results[0].target == f"openai case-model @ {url}/chat/completions"
    assert up.requests[-1]["body"]["model"] == "case-model"


# -- a Python callable -----------------------------------------------------------------------------


@pytest.fixture
def appmod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"evapp_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""\
        def by_input(question):
            return f"you asked: {question}"

        def with_context(input, context, tools):
            return {"output": context[0]["text"], "tool_calls": [{"name": t} for t in tools],
                    "tokens_in": 10, "tokens_out": 5, "escalated": False}

        def everything(**kw):
            return {"output": f"{sorted(kw)} {kw['case'].id}",
                    "tool_calls": [{"type": "function", "function": {"name": "refund", "arguments": '{"a": 1}'}}]}

        def unknown_keys(input):
            return {"text": "hi"}

        def bad_tokens(input):
            return {"output": "x", "tokens_in": -3}

        def times_out(input):
            raise TimeoutError("backend slow")

        def crashes(input):
            raise KeyError("order")

        not_callable = 3
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_callable_target_passes_what_the_function_declares(appmod: str) -> None:
    c = case(context=[{"id": "kb-1", "text": KB}], tools=["search_kb", "lookup_order"])
    assert CallableTarget(f"{appmod}:by_input")(c, timeout=1).output == "you asked: Do you offer a warranty?"
    out = CallableTarget(f"{appmod}:with_context")(c, timeout=1)
    assert out == TargetOutput(output=KB, tool_calls=[{"name": "search_kb", "arguments": None},
                                                      {"name": "lookup_order", "arguments": None}],
                               tokens_in=10, tokens_out=5, escalated=False)
    every = CallableTarget(f"{appmod}:everything")(c, timeout=1)
    assert every.output == "['case', 'context', 'input', 'tools'] c1"
    assert every.tool_calls == [{"name": "refund", "arguments": {"a": 1}}]  # OpenAI's shape accepted too
    assert CallableTarget(lambda input: input.upper())(c, timeout=1).output == "DO YOU OFFER A WARRANTY?"


@pytest.mark.parametrize(("fn", "retryable", "message"), [
    ("unknown_keys", False, "returned unknown keys ['text']"),
    ("bad_tokens", False, "'tokens_in' must be a non-negative integer, got -3"),
    ("times_out", True, "raised TimeoutError: backend slow"),
    ("crashes", False, "raised KeyError: 'order'"),
])
def test_callable_target_failures_say_why(appmod: str, fn: str, retryable: bool, message: str) -> None:
    with pytest.raises(TargetError) as info:
        CallableTarget(f"{appmod}:{fn}")(case(), timeout=1)
    assert info.value.retryable is retryable and message in str(info.value)


def test_a_callable_that_cannot_be_loaded_is_a_usage_error(appmod: str) -> None:
    with pytest.raises(InvalidValue, match="expected module:function"):
        load_callable("no_colon")
    with pytest.raises(InvalidValue, match=f"module '{appmod}' has no function 'nope'"):
        load_callable(f"{appmod}:nope")
    with pytest.raises(InvalidValue, match="has no function 'not_callable'"):
        load_callable(f"{appmod}:not_callable")
    with pytest.raises(InvalidValue, match="cannot import module 'definitely_missing_mod'"):
        CallableTarget("definitely_missing_mod:fn")


# -- the recorded output ---------------------------------------------------------------------------


def test_recorded_target_and_outputs_from_stored_events() -> None:
    c = case(recorded={"output": "A lifetime warranty!", "tool_calls": [{"name": "refund", "arguments": '{"x": 2}'}],
                       "tokens_in": 800, "tokens_out": 90, "cost_usd": 0.002, "escalated": True, "model": "m"})
    expected = TargetOutput(output="A lifetime warranty!", tool_calls=[{"name": "refund", "arguments": {"x": 2}}],
                            tokens_in=800, tokens_out=90, cost_usd=0.002, escalated=True, model="m")
    assert RecordedTarget()(c, timeout=1) == expected == recorded_output(c)
    assert expected.tokens_total == 890 and expected.to_dict()["tool_calls"][0]["name"] == "refund"
    with pytest.raises(TargetError, match="has no recorded output"):
        RecordedTarget()(case(), timeout=1)
    with pytest.raises(InvalidValue, match="has no 'recorded' output"):
        recorded_output(case())
    event = {"id": "evt-1", "ts": datetime(2026, 11, 27, tzinfo=UTC), "output": "hi",
             "tool_calls": [{"name": "search_kb", "arguments": {"q": "x"}, "result": "..."}], "tokens_in": 3,
             "tokens_out": None, "cost_usd": None, "escalated": None, "model": "gpt-4o-mini"}
    assert TargetOutput.from_event(event) == TargetOutput(
        output="hi", tool_calls=[{"name": "search_kb", "arguments": {"q": "x"}}], tokens_in=3, model="gpt-4o-mini")
    assert json.loads(json.dumps(TargetOutput.from_event(event).to_dict()))["tokens_in"] == 3
