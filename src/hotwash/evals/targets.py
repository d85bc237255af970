"""Targets: what a regression case is replayed against.

A target is a small protocol, ``target(case, timeout=...) -> TargetOutput``, raising
:class:`TargetError` when it cannot answer (``retryable`` says whether another attempt may help).
Three ship with hotwash, plus a fake for tests:

- :class:`CallableTarget` — a Python function ``module:function`` of the user's application;
- :class:`OpenAITarget` — any OpenAI-compatible chat-completions endpoint (httpx);
- :class:`RecordedTarget` — the case's own recorded output (the incident's bad answer);
- :class:`FakeTarget` — answers from a table, counting calls.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from hotwash.errors import HotwashError, InvalidValue
from hotwash.evals.cases import Case, TargetSpec
from hotwash.httputil import retry_after

__all__ = [
    "DEFAULT_ESCALATE_TOOLS",
    "CallableTarget",
    "FakeTarget",
    "OpenAITarget",
    "RecordedTarget",
    "Target",
    "TargetError",
    "TargetOutput",
    "load_callable",
    "recorded_output",
    "target_for",
]

# Tool calls an assistant makes to hand a conversation to a person.
DEFAULT_ESCALATE_TOOLS = ("escalate", "escalate_to_human", "handoff", "handoff_to_human", "transfer_to_human")


class TargetError(HotwashError):
    """A target could not answer one case. Caught by the runner: that case fails with this reason."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


def _tool_call(raw: Any) -> dict[str, Any]:
    """One tool call as ``{"name", "arguments"}`` from our shape, OpenAI's, or a model object."""
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump(exclude_none=True)
    if not isinstance(raw, Mapping):
        raise TypeError(f"a tool call must be a mapping with a 'name', got {type(raw).__name__}")
    fn = raw.get("function")
    name = fn.get("name") if isinstance(fn, Mapping) else raw.get("name")
    args = fn.get("arguments") if isinstance(fn, Mapping) else raw.get("arguments")
    if not isinstance(name, str) or not name:
        raise TypeError(f"a tool call without a name: {dict(raw)!r}")
    if isinstance(args, str):
        with contextlib.suppress(ValueError):  # if not JSON, kept as the string the model wrote
            args = json.loads(args) if args.strip() else None
    return {"name": name, "arguments": args}


@dataclass(slots=True)
class TargetOutput:
    """What one call produced: the text, the tool calls, the usage, whether it escalated."""

    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    escalated: bool | None = None
    model: str | None = None

    @property
    def text(self) -> str:
        return self.output or ""

    @property
    def tool_names(self) -> list[str]:
        return [c["name"] for c in self.tool_calls]

    @property
    def tokens_total(self) -> int | None:
        if self.tokens_in is None and self.tokens_out is None:
            return None
        return (self.tokens_in or 0) + (self.tokens_out or 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any) -> TargetOutput:
        """A target's answer as a TargetOutput: a string (the output text), a mapping with any of
        ``output, tool_calls, tokens_in, tokens_out, cost_usd, escalated, model``, or a TargetOutput.
        Raises TypeError saying what was wrong."""
        if isinstance(value, TargetOutput):
            return value
        if value is None or isinstance(value, str):
            return cls(output=value)
        if not isinstance(value, Mapping):
            raise TypeError(f"returned {type(value).__name__}; expected a string or a mapping with 'output'")
        unknown = set(value) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise TypeError(f"returned unknown keys {sorted(unknown)}; expected some of "
                            f"{sorted(cls.__dataclass_fields__)}")
        text = value.get("output")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"'output' is {type(text).__name__}, expected a string")
        calls = value.get("tool_calls") or []
        if not isinstance(calls, Sequence) or isinstance(calls, str):
            raise TypeError("'tool_calls' must be a list")
        out = cls(output=text, tool_calls=[_tool_call(c) for c in calls])
        for key in ("tokens_in", "tokens_out"):
            v = value.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise TypeError(f"'{key}' must be a non-negative integer, got {v!r}")
            setattr(out, key, v)
        cost = value.get("cost_usd")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0):
            raise TypeError(f"'cost_usd' must be a non-negative number, got {cost!r}")
        out.cost_usd = float(cost) if cost is not None else None
        esc = value.get("escalated")
        if esc is not None and not isinstance(esc, bool):
            raise TypeError(f"'escalated' must be true or false, got {esc!r}")
        out.escalated = esc
        out.model = value.get("model")
        return out

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> TargetOutput:
        """A stored telemetry event (``store.get_events`` row) as the output it recorded."""
        return cls(output=event.get("output"), tool_calls=[_tool_call(c) for c in event.get("tool_calls") or ()],
                   tokens_in=event.get("tokens_in"), tokens_out=event.get("tokens_out"),
                   cost_usd=event.get("cost_usd"), escalated=event.get("escalated"), model=event.get("model"))


def recorded_output(case: Case) -> TargetOutput:
    """The output recorded in the case (the incident's bad answer). InvalidValue if it has none."""
    rec = case.recorded
    if rec is None:
        raise InvalidValue(f"{case.where}: case {case.id!r} has no 'recorded' output to replay", field="recorded")
    return TargetOutput(output=rec.output, tool_calls=[_tool_call(c) for c in rec.tool_calls],
                        tokens_in=rec.tokens_in, tokens_out=rec.tokens_out, cost_usd=rec.cost_usd,
                        escalated=rec.escalated, model=rec.model)


@runtime_checkable
class Target(Protocol):
    """Replays one case. Raises TargetError when it cannot answer."""

    name: str

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput: ...


# -- recorded --------------------------------------------------------------------------------------


class RecordedTarget:
    """The case's recorded output, as if the feature answered it again unchanged."""

    name = "recorded"

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput:
        if case.recorded is None:
            raise TargetError(f"case {case.id!r} has no recorded output (give the run a target: "
                              "--target module:function or --openai URL --model M)")
        return recorded_output(case)


# -- a Python callable -----------------------------------------------------------------------------

_import_lock = threading.Lock()


def load_callable(spec: str, *, what: str = "--target") -> Callable[..., Any]:
    """``package.module:function`` -> the function. The working directory is importable (as with
    ``python -m``), so a project's own modules can be named. InvalidValue says what failed."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidValue(f"{what} {spec!r}: expected module:function (e.g. myapp.bot:answer)", field="target")
    with _import_lock:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure of user code is reported, not raised
            raise InvalidValue(f"{what} {spec!r}: cannot import module {module_name!r}: "
                               f"{type(exc).__name__}: {exc}", field="target") from exc
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise InvalidValue(f"{what} {spec!r}: module {module_name!r} has no function {attr!r}", field="target")
    return fn


class CallableTarget:
    """A Python function of the application. It is called with the keyword arguments it declares
    among ``input`` (str), ``context`` (list of {id, text, source}), ``tools`` (offered tool names)
    and ``case`` (the Case) — or with the input alone if it declares none of them — and returns a
    string or a mapping ``{output, tool_calls, tokens_in, tokens_out, cost_usd, escalated}``."""

    def __init__(self, fn: str | Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = load_callable(fn) if isinstance(fn, str) else fn
        self.name = name or (fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}")
        try:
            params = inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            params = {}
        kinds = {p.kind for p in params.values()}
        self._all = inspect.Parameter.VAR_KEYWORD in kinds
        self._names = {n for n, p in params.items()
                       if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n in {"input", "context", "tools",
                                                                                       "case"}}

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput:
        available = {"input": case.input,
                     "context": [d.model_dump() for d in case.context],
                     "tools": [t.name for t in case.tools.offered()],
                     "case": case}
        try:
            if self._all:
                result = self.fn(**available)
            elif self._names:
                result = self.fn(**{k: available[k] for k in self._names})
            else:
                result = self.fn(case.input)
        except (TimeoutError, ConnectionError) as exc:
            raise TargetError(f"{self.name} raised {type(exc).__name__}: {exc}", retryable=True) from exc
        except Exception as exc:  # the application's failure fails this case, not the run
            raise TargetError(f"{self.name} raised {type(exc).__name__}: {exc}") from exc
        try:
            return TargetOutput.coerce(result)
        except TypeError as exc:
            raise TargetError(f"{self.name} {exc}") from exc


# -- an OpenAI-compatible chat-completions endpoint -------------------------------------------------


def _content_text(content: Any) -> str | None:
    """``message.content``: a string, null, or a list of parts (``{"type": "text", "text": ...}``)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(content)


class OpenAITarget:
    """``POST {base_url}/chat/completions`` with the case as messages: the optional system prompt,
    the retrieved documents (a user message, since they are untrusted), then the input; the case's
    offered tools as function declarations. Maps ``choices[0].message`` (content, tool_calls) and
    ``usage`` back. A tool call named in ``escalate_tools`` marks the answer escalated."""

    def __init__(self, *, base_url: str, model: str, api_key_env: str | None = None, system: str | None = None,
                 temperature: float | None = None, escalate_tools: Sequence[str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        url = base_url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.system = system
        self.temperature = temperature
        self.escalate_tools = frozenset(escalate_tools if escalate_tools is not None else DEFAULT_ESCALATE_TOOLS)
        self.name = f"openai {model} @ {self.url}"
        headers = {"content-type": "application/json", "user-agent": "hotwash-evals"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise InvalidValue(f"the API key variable {api_key_env} is not set in the environment "
                                   "(set it, or leave out --api-key-env for an endpoint without auth)",
                                   field="api_key_env")
            headers["authorization"] = f"Bearer {key}"
        self._client = httpx.Client(headers=headers, transport=transport, follow_redirects=False)

    @classmethod
    def from_spec(cls, spec: Any, **kw: Any) -> OpenAITarget:
        return cls(base_url=spec.base_url, model=spec.model, api_key_env=spec.api_key_env, system=spec.system,
                   temperature=spec.temperature, escalate_tools=spec.escalate_tools, **kw)

    def close(self) -> None:
        self._client.close()

    def request_body(self, case: Case) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        docs = [d for d in case.context if d.text.strip()]
        if docs:
            parts = [f"[{d.id or i}] {d.text}" for i, d in enumerate(docs)]
            messages.append({"role": "user", "content": "Documents:\n\n" + "\n\n".join(parts)})
        if case.input is None:
            raise TargetError(f"case {case.id!r} has no 'input' to send")
        messages.append({"role": "user", "content": case.input})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        offered = case.tools.offered()
        if offered:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, **({"description": t.description} if t.description else {}),
                "parameters": t.parameters or {"type": "object", "properties": {}}}} for t in offered]
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput:
        body = self.request_body(case)
        try:
            resp = self._client.post(self.url, json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TargetError(f"{self.url} did not answer within {timeout:g}s ({type(exc).__name__})",
                              retryable=True) from exc
        except httpx.TransportError as exc:
            raise TargetError(f"cannot reach {self.url}: {exc or type(exc).__name__}", retryable=True) from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TargetError(f"{self.url} answered HTTP {resp.status_code}: {_error_text(resp)}", retryable=True,
                              retry_after=retry_after(resp.headers.get("retry-after")))
        if resp.status_code >= 400:
            raise TargetError(f"{self.url} refused the request, HTTP {resp.status_code}: {_error_text(resp)}")
        try:
            data = resp.json()
            message = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TargetError(f"{self.url} did not answer with chat.completion JSON "
                              f"(choices[0].message): {resp.text[:200]!r}") from None
        try:
            calls = [_tool_call(c) for c in message.get("tool_calls") or ()]
            if not calls and isinstance(message.get("function_call"), Mapping):  # the older, single-call form
                calls = [_tool_call(message["function_call"])]
        except TypeError as exc:
            raise TargetError(f"{self.url} answered a malformed tool call: {exc}") from None
        usage = data.get("usage") or {}
        tin = usage.get("prompt_tokens", usage.get("input_tokens"))
        tout = usage.get("completion_tokens", usage.get("output_tokens"))
        model = data.get("model") or self.model
        return TargetOutput(output=_content_text(message.get("content")), tool_calls=calls,
                            tokens_in=tin if isinstance(tin, int) else None,
                            tokens_out=tout if isinstance(tout, int) else None,
                            cost_usd=_price(model, tin, tout),
                            escalated=any(c["name"] in self.escalate_tools for c in calls), model=model)


def _error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    except (ValueError, AttributeError):
        pass
    return resp.text[:300] or resp.reason_phrase


def _price(model: str | None, tokens_in: Any, tokens_out: Any) -> float | None:
    """The call's cost from the maintained price data; None for a model it does not know."""
    if not isinstance(tokens_in, int) and not isinstance(tokens_out, int):
        return None
    from hotwash.telemetry.pricing import price

    try:
        return price(None, model, tokens_in if isinstance(tokens_in, int) else None,
                     tokens_out if isinstance(tokens_out, int) else None, datetime.now(UTC))
    except Exception:  # pricing is best effort: an unknown model is simply unpriced
        return None


# -- the fake --------------------------------------------------------------------------------------


Answer = TargetOutput | str | Mapping[str, Any] | BaseException | Callable[[Case], Any]


class FakeTarget:
    """Answers from a table ``{case id: answer}`` (or ``default``). An answer is a TargetOutput, a
    string, a mapping, an exception (raised) or a function of the case; a list of answers is used
    one per call (the last repeats), to script retries. ``calls`` counts calls per case id."""

    def __init__(self, answers: Mapping[str, Answer | list[Answer]] | None = None, *,
                 default: Answer | None = None, name: str = "fake") -> None:
        self.answers = dict(answers or {})
        self.default = default
        self.name = name
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput:
        with self._lock:
            n = self.calls.get(case.id, 0)
            self.calls[case.id] = n + 1
        answer = self.answers.get(case.id, self.default)
        if isinstance(answer, list):
            answer = answer[min(n, len(answer) - 1)]
        if answer is None:
            raise TargetError(f"the fake target has no answer for case {case.id!r}")
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(case)
        return TargetOutput.coerce(answer)


def target_for(spec: TargetSpec) -> Target:
    """The target a case's ``target:`` key names."""
    if spec.python:
        return CallableTarget(spec.python)
    if spec.openai:
        return OpenAITarget.from_spec(spec.openai)
    return RecordedTarget()
