"""OpenTelemetry traces in, telemetry events out (PRODUCT.md §7, "OpenTelemetry").

Three steps, each usable alone:

* :func:`decode_request` turns an OTLP/HTTP body (protobuf, or OTLP/JSON with hex ids) into the
  official ``ExportTraceServiceRequest`` message; garbage raises :class:`PayloadError`.
* :func:`spans_to_events` maps the GenAI spans of a request to :class:`Event` records, each
  validated by :func:`parse_record` exactly like a JSONL line. It never raises: a span that
  cannot become a valid event is listed in ``rejected`` with where it is and why, and spans
  that are not GenAI calls are only counted (``ignored``).
* :func:`encode_response` answers with an ``ExportTraceServiceResponse`` carrying
  ``partial_success`` when spans were rejected, so the exporter logs the reasons.

Mapping, in the order each field is looked for (span attributes unless said otherwise):

==============  ==========================================================================
id              ``otel-<traceId hex>-<spanId hex>`` (re-sending a span is harmless)
ts, latency_ms  span start time; end - start
feature         ``hotwash.feature``, ``gen_ai.agent.name`` (each on the span, then on its
                ancestors in the same request), resource ``service.name``, ``unknown_service``
env             ``hotwash.env``, resource ``deployment.environment.name`` /
                ``deployment.environment``
session_id      ``gen_ai.conversation.id``, ``session.id``
user_id         ``enduser.id``, ``user.id`` (span, then resource)
provider        ``gen_ai.provider.name``, ``gen_ai.system``
model           ``gen_ai.response.model``, ``gen_ai.request.model``
prompt_version  ``hotwash.prompt_version``, ``gen_ai.prompt.name``
tokens_in/out   ``gen_ai.usage.input_tokens`` / ``output_tokens``, else ``prompt_tokens`` /
                ``completion_tokens``
input           the last user message of ``gen_ai.input.messages`` (also from the
                ``gen_ai.client.inference.operation.details`` event, the older
                ``gen_ai.prompt`` / ``gen_ai.prompt.N.*`` attributes, ``gen_ai.user.message``
                events)
output          the assistant text of ``gen_ai.output.messages`` (likewise
                ``gen_ai.completion`` / ``gen_ai.completion.N.*``, ``gen_ai.choice`` events)
context         ``gen_ai.retrieval.documents`` (``[{id, content|text, score?, source?}]``)
tool_calls      ``tool_call`` parts of the output messages, then ``execute_tool`` spans
                (``gen_ai.tool.name``, ``gen_ai.tool.call.arguments`` / ``.result`` / ``.id``)
                under this span; a tool span whose GenAI parent is not in the request is an
                event of its own
score           ``gen_ai.evaluation.score.value``, else the first ``gen_ai.evaluation.result``
                span event's
error           span status ERROR: its message, else ``error.type``, else ``"error"``
escalated, confidence, cost_usd, retry, feedback
                ``hotwash.<field>``
tags            a few request/response attributes, the system instructions, the trace and
                span ids, and every other ``hotwash.<name>`` attribute as ``<name>``
==============  ==========================================================================

A span is a GenAI call when it has ``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.provider.name`` or ``gen_ai.system``, or is an ``execute_tool`` span.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import msgspec
import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from hotwash.errors import InputError, PayloadError, UnsupportedMediaType
from hotwash.telemetry.jsonl import Accepted, Rejected
from hotwash.telemetry.model import Event, ToolCall, parse_record

__all__ = [
    "OtlpBatch",
    "decode_and_map",
    "decode_request",
    "encode_response",
    "read_otlp_json",
    "response_media_type",
    "spans_to_events",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({"", PROTOBUF, "application/protobuf", "application/vnd.google.protobuf"})

# A span is a GenAI call if it carries any of these (or is an execute_tool span).
_GENAI_MARKERS = ("gen_ai.operation.name", "gen_ai.request.model", "gen_ai.provider.name", "gen_ai.system")

# Span names of the GenAI operations ("{gen_ai.operation.name} {model or agent}"): only a hint
# that the span is worth reading at once; whether it is a GenAI call is decided by the markers.
_GENAI_SPAN_NAMES = ("chat", "text_completion", "generate_content", "embeddings", "invoke_agent", "create_agent")

# Attributes kept verbatim in ``tags`` when present: useful for diagnosis, small.
_TAG_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.request.top_k",
    "gen_ai.request.max_tokens",
    "gen_ai.request.seed",
    "gen_ai.request.frequency_penalty",
    "gen_ai.request.presence_penalty",
    "gen_ai.request.choice.count",
    "gen_ai.request.stream",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.output.type",
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.agent.version",
    "gen_ai.data_source.id",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.label",
    "error.type",
    "http.route",
    "http.response.status_code",
    "server.address",
)
_RESOURCE_TAGS = ("service.version", "service.namespace", "service.instance.id")

# hotwash.* attributes that are event fields; any other hotwash.<name> becomes tags[<name>].
_HOTWASH_FIELDS = ("feature", "env", "prompt_version", "escalated", "confidence", "cost_usd", "retry", "feedback")

_MAX_SUMMARY = 3  # rejection reasons quoted in the partial-success message
_MAX_EVALUATIONS = 10
_REQUEST_LIMIT_FACTOR = 64  # a request line of an otlp-json file may hold this many records' bytes
_ID_FIELDS = (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))
_LINK_ID_FIELDS = (("traceId", "trace_id"), ("spanId", "span_id"))
_HEX = re.compile(r"[0-9a-fA-F]*")
_INT_TEXT = re.compile(r"\s*-?\d{1,30}\s*")
_INDEXED = re.compile(r"gen_ai\.(prompt|completion)\.(\d+)\.(.+)")


@dataclass
class OtlpBatch:
    """What one export request yields."""

    records: list[Event] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)
    ignored: int = 0  # spans that are not GenAI calls


# -- decoding -------------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(content_type: str | None) -> bool:
    mt = _media_type(content_type)
    if mt in _PROTOBUF_TYPES:
        return False
    if mt == JSON or mt.endswith("+json"):
        return True
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}: send {PROTOBUF} (OTLP/protobuf) or {JSON} (OTLP/JSON)"
    )


def response_media_type(content_type: str) -> str:
    """The response is encoded like the request: protobuf or JSON."""
    try:
        return JSON if _is_json(content_type) else PROTOBUF
    except PayloadError:
        return PROTOBUF


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace export body; :class:`PayloadError` if it is not one."""
    if _is_json(content_type):
        return _request_from_json(_load_json(body))
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # DecodeError, and whatever else the C parser raises on garbage
        raise PayloadError(f"body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    return request


def _load_json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise PayloadError("body is empty: expected an OTLP/JSON ExportTraceServiceRequest object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError(
            f'expected an OTLP/JSON ExportTraceServiceRequest object {{"resourceSpans": [...]}}, '
            f"got a JSON {type(doc).__name__}"
        )
    return doc


def _items(obj: Any, *keys: str) -> list[Any]:
    """``obj[key]`` for the first key present, if ``obj`` is a dict and the value a list."""
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value if isinstance(value, list) else []
    return []


def _walk_spans(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, span dict) of every span of an OTLP/JSON document, and of each span link."""
    for i, rs in enumerate(_items(doc, "resourceSpans", "resource_spans")):
        for j, ss in enumerate(_items(rs, "scopeSpans", "scope_spans")):
            for k, sp in enumerate(_items(ss, "spans")):
                if isinstance(sp, dict):
                    path = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    yield path, sp
                    for n, link in enumerate(_items(sp, "links")):
                        if isinstance(link, dict):
                            yield f"{path}.links[{n}]", link


def _hex_to_base64(value: Any, where: str) -> Any:
    """OTLP/JSON ids are hex; protobuf's JSON parser wants base64. Base64 ids are tolerated."""
    if not isinstance(value, str) or not value:
        return value  # not a string: the parser reports it
    if len(value) % 2 == 0 and _HEX.fullmatch(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{where}: {value[:80]!r} is not a hex id") from None
    return value


def _request_from_json(doc: dict[str, Any]) -> ExportTraceServiceRequest:
    for path, obj in _walk_spans(doc):
        fields = _LINK_ID_FIELDS if ".links[" in path else _ID_FIELDS
        for names in fields:
            for name in names:
                if name in obj:
                    obj[name] = _hex_to_base64(obj[name], f"{path}.{name}")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except RecursionError:
        raise PayloadError("OTLP/JSON body is nested too deeply") from None
    except Exception as exc:  # ParseError, and type errors on wrong shapes
        raise PayloadError(f"body is not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request


def _to_otlp_json(message: Message) -> dict[str, Any]:
    """A message as OTLP/JSON: camelCase keys, integer enums, hex trace and span ids."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    for path, obj in _walk_spans(doc):
        fields = _LINK_ID_FIELDS if ".links[" in path else _ID_FIELDS
        for name, _ in fields:
            if isinstance(obj.get(name), str):
                obj[name] = base64.b64decode(obj[name]).hex()
    return doc


# -- attribute values -----------------------------------------------------------------------------

_MAX_DEPTH = 32


def _value(v: AnyValue, depth: int = 0) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if depth >= _MAX_DEPTH:
        return None
    if kind == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attrs(v.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _attrs(kvs: Any, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in kvs:
        key = kv.key
        if key in out:  # keys must be unique; the first one wins
            continue
        v = kv.value
        # _value's commonest case inline: every protobuf attribute read builds an object, so each one
        # saved counts at a few hundred attributes per export. A non-empty string_value can only be
        # the set member of the oneof (an unset one reads as ""), so WhichOneof is not needed.
        text = v.string_value
        out[key] = text if text else _value(v, depth)
    return out


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Make a value storable as JSON in both stores: no NaN/Infinity, no NUL characters, nothing
    nested deeper than ``_MAX_DEPTH`` (replaced by None)."""
    t = type(value)
    if t is str:
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if t is dict:
        return None if depth > _MAX_DEPTH else _safe_dict(value, depth + 1)
    if t is list:
        return None if depth > _MAX_DEPTH else [_safe_child(x, depth + 1) for x in value]
    return _safe_other(value, depth)


def _safe_other(value: Any, depth: int) -> Any:
    # The general rule, for any type (subclasses of str, dict and list included).
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, list):
        return [_json_safe(x, depth + 1) for x in value]
    if isinstance(value, dict):
        return {_json_safe(str(k)): _json_safe(x, depth + 1) for k, x in value.items()}
    return value


def _safe_child(x: Any, depth: int) -> Any:
    """:func:`_json_safe` of a container's item, with the common scalars decided without a call."""
    t = type(x)
    if t is str:
        return x.replace("\x00", "\ufffd") if "\x00" in x else x
    if x is None or t is int or t is bool or (t is float and math.isfinite(x)):
        return None if depth > _MAX_DEPTH else x
    return _json_safe(x, depth)


def _safe_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in value.items():
        if type(k) is not str or "\x00" in k:
            k = _json_safe(str(k))
        out[k] = _safe_child(x, depth)
    return out


def _plainly_safe(value: Any, depth: int = 0) -> bool:
    """Whether :func:`_json_safe` (from ``depth``) would leave ``value`` as it is, told from orjson's
    text of it in C rather than by walking it in Python. False means "walk it" (never "unsafe"):

    * a NUL in any string or key is written ``\\u0000``;
    * orjson writes NaN and ±Infinity as ``null`` (so any ``null`` sends the value to the walk);
    * nothing sits deeper than ``_MAX_DEPTH`` when the whole text opens fewer brackets than that
      (every level of nesting opens one; brackets inside strings only count against);
    * what orjson cannot write (non-string keys, huge integers, other types) is walked.
    """
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return (b"\\u0000" not in raw and b"null" not in raw
            and depth + raw.count(b"{") + raw.count(b"[") <= _MAX_DEPTH)


def _maybe_json(value: Any) -> Any:
    """A JSON-encoded string attribute decoded; anything else as it is."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in ("[", "{"):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                return value
    return value


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
            dict: "a map"}.get(type(value), type(value).__name__)


def _as_str(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise InputError(f"attribute '{key}': expected a string, got {_type_name(value)}")


def _integral(value: Any) -> bool:
    """A float with no fraction, or a decimal string (some SDKs stringify counts)."""
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, str) and _INT_TEXT.fullmatch(value) is not None


def _as_int(value: Any, key: str, maximum: int = 2**63 - 1) -> int | None:
    if value is None:
        return None
    result: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif _integral(value):
        result = int(value)
    if result is None or result < 0:
        raise InputError(f"attribute '{key}': expected a non-negative integer, got {_short(value)}")
    if result > maximum:
        raise InputError(f"attribute '{key}': {result} is over the largest accepted value, {maximum}")
    return result


def _as_retry(value: Any, key: str) -> int | None:
    return _as_int(value, key, 2**31 - 1)


def _as_float(value: Any, key: str) -> float | None:
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InputError(f"attribute '{key}': expected a finite number, got {_short(value)}")
    return number


def _as_bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InputError(f"attribute '{key}': expected a boolean, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first(attrs: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    """(key, value) of the first key present with a non-empty value."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "" and value != []:
            return key, value
    return keys[0], None


# -- messages -------------------------------------------------------------------------------------


def _as_messages(value: Any) -> list[dict[str, Any]] | str | None:
    """A messages attribute as a list of message dicts, or plain text, or None."""
    value = _maybe_json(value)
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        return [m for m in value if isinstance(m, dict)]
    return None


def _parts_text(parts: Any) -> list[str]:
    texts: list[str] = []
    if isinstance(parts, str):
        return [parts]
    if not isinstance(parts, list):
        return texts
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") in ("text", "output_text", "input_text"):
            content = part.get("content", part.get("text"))
            if isinstance(content, str):
                texts.append(content)
    return texts


def _message_text(message: dict[str, Any]) -> str | None:
    texts = _parts_text(message.get("parts"))
    if not texts:
        content = _maybe_json(message.get("content"))
        if isinstance(content, dict):  # {"content": {"text": ...}} seen in some instrumentations
            content = content.get("text", content.get("content"))
        texts = _parts_text(content)
    return "\n".join(texts) if texts else None


def _role(message: dict[str, Any]) -> str:
    role = message.get("role")
    return role.lower() if isinstance(role, str) else ""


def _last_user_text(messages: list[dict[str, Any]] | str | None) -> str | None:
    if isinstance(messages, str) or messages is None:
        return messages
    for message in reversed(messages):
        if _role(message) in ("user", "human"):
            text = _message_text(message)
            if text is not None:
                return text
    return None


def _system_text(messages: list[dict[str, Any]] | str | None) -> str | None:
    if not isinstance(messages, list):
        return None
    texts = [t for m in messages if _role(m) in ("system", "developer") and (t := _message_text(m))]
    return "\n".join(texts) if texts else None


def _output_text(messages: list[dict[str, Any]] | str | None) -> str | None:
    if isinstance(messages, str) or messages is None:
        return messages
    for message in messages:  # one message per choice: the first one that has text
        if _role(message) in ("", "assistant", "model", "ai"):
            text = _message_text(message)
            if text is not None:
                return text
    return None


def _arguments(value: Any) -> dict[str, Any] | str | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        decoded = _maybe_json(value)
        return decoded if isinstance(decoded, dict) else value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode() if _jsonable(value) else str(value)


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def _tool_calls_of(messages: list[dict[str, Any]] | str | None) -> list[dict[str, Any]]:
    """Tool calls the model asked for: ``tool_call`` parts, or OpenAI-style ``tool_calls``."""
    calls: list[dict[str, Any]] = []
    if not isinstance(messages, list):
        return calls
    for message in messages:
        parts = message.get("parts")
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.get("type") == "tool_call":
                calls.append(_tool_call(part.get("name"), part.get("arguments"), None, part.get("id")))
        legacy = _maybe_json(message.get("tool_calls"))
        for call in legacy if isinstance(legacy, list) else []:
            if isinstance(call, dict):
                fn = call.get("function") if isinstance(call.get("function"), dict) else call
                calls.append(_tool_call(fn.get("name"), fn.get("arguments"), None, call.get("id")))
    return calls


def _tool_call(name: Any, arguments: Any, result: Any, call_id: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name if isinstance(name, str) and name else "unknown"}
    args = _arguments(arguments)
    if args is not None:
        call["arguments"] = args
    if result is not None:
        call["result"] = _maybe_json(result)
    if isinstance(call_id, (str, int)) and not isinstance(call_id, bool) and call_id != "":
        call["id"] = str(call_id)
    return call


def _indexed_messages(attrs: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """OpenLLMetry-style ``gen_ai.prompt.0.role`` / ``.content`` / ``.tool_calls.0.name``."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _INDEXED.fullmatch(key)
        if m is None or m.group(1) != kind:
            continue
        msg = found.setdefault(int(m.group(2)), {})
        rest = m.group(3)
        if rest in ("role", "content"):
            msg[rest] = value
        elif rest.startswith("tool_calls."):
            idx, _, leaf = rest[len("tool_calls."):].partition(".")
            if idx.isdigit() and leaf in ("name", "arguments", "id"):
                msg.setdefault("_tools", {}).setdefault(int(idx), {})[leaf] = value
    out = []
    for _, msg in sorted(found.items()):
        tools = msg.pop("_tools", None)
        if tools:
            msg["tool_calls"] = [t for _, t in sorted(tools.items())]
        out.append(msg)
    return out


# -- mapping --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Span:
    i: int
    j: int
    k: int
    span: Span
    resource: dict[str, Any]
    parent_key: tuple[bytes, bytes] | None = None
    is_genai: bool = False
    is_tool: bool = False  # decided for GenAI spans only
    _attrs: dict[str, Any] | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        """The attributes as plain values (converted on first use: most non-GenAI spans never are)."""
        if self._attrs is None:
            self._attrs = _attrs(self.span.attributes)
        return self._attrs

    @property
    def where(self) -> str:
        return f"resourceSpans[{self.i}].scopeSpans[{self.j}].spans[{self.k}] (span {self.span.span_id.hex()})"

    @classmethod
    def of(cls, i: int, j: int, k: int, span: Span, resource: dict[str, Any]) -> _Span:
        """The span, classified: a GenAI call when it carries a GenAI marker, a tool call when it
        is an ``execute_tool`` span (by name or operation)."""
        parent = span.parent_span_id
        s = cls(i, j, k, span, resource, (span.trace_id, parent) if parent else None)
        name = span.name
        if name.startswith("execute_tool"):
            s.is_genai = s.is_tool = True
        # Every marker is a "gen_ai." key, kept as it is in the span's wire bytes: a span without
        # that text (most non-GenAI spans) is told apart without reading its attributes one by one.
        # A span named like a GenAI operation is read at once (it is nearly always one).
        elif name.startswith(_GENAI_SPAN_NAMES) or b"gen_ai." in span.SerializeToString():
            a = s.attrs
            s.is_genai = any(m in a for m in _GENAI_MARKERS)
            s.is_tool = s.is_genai and a.get("gen_ai.operation.name") == "execute_tool"
        return s


@dataclass
class _Mapped:
    batch: OtlpBatch
    rejected_spans: list[_Span]


def spans_to_events(request: ExportTraceServiceRequest) -> OtlpBatch:
    """Map the GenAI spans of ``request`` to validated events. Never raises."""
    return _map_request(request).batch


def _map_request(request: ExportTraceServiceRequest) -> _Mapped:
    batch = OtlpBatch()
    rejected: list[_Span] = []
    spans: list[_Span] = []
    index: dict[tuple[bytes, bytes], _Span] = {}
    rs: ResourceSpans
    ss: ScopeSpans
    for i, rs in enumerate(request.resource_spans):
        resource = _attrs(rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            for k, span in enumerate(ss.spans):
                s = _Span.of(i, j, k, span, resource)
                spans.append(s)
                if span.span_id:
                    index.setdefault((span.trace_id, span.span_id), s)

    def reject(s: _Span, reason: str) -> None:
        batch.rejected.append((s.where, reason))
        rejected.append(s)

    # Tool spans attach to their nearest GenAI ancestor in this request, if there is one.
    calls = [s for s in spans if s.is_genai and not s.is_tool]
    call_ids = {id(s) for s in calls}
    tools_of: dict[int, list[_Span]] = {}
    orphan_tools: list[_Span] = []
    for s in spans:
        if not s.is_genai:
            batch.ignored += 1
        elif s.is_tool:
            owner = next((a for a in _ancestors(s, index) if id(a) in call_ids), None)
            if owner is None:
                orphan_tools.append(s)
            else:
                tools_of.setdefault(id(owner), []).append(s)

    for s in calls:
        tool_calls: list[dict[str, Any]] = []
        tools = tools_of.get(id(s))
        if tools is not None and len(tools) > 1:
            tools.sort(key=_start_time)  # stable, as sorted() was
        for t in tools or ():
            try:
                tool_calls.append(_checked_tool_call(_tool_span_call(t)))
            except InputError as exc:
                reject(t, exc.reason)
            except Exception as exc:  # pragma: no cover - a safety net: never fail the request
                reject(t, f"could not map the tool span: {type(exc).__name__}: {exc}")
        _emit(s, index, tool_calls, batch, reject)
    for t in orphan_tools:
        _emit(t, index, [], batch, reject)
    return _Mapped(batch, rejected)


def _emit(s: _Span, index: dict[tuple[bytes, bytes], _Span], tool_calls: list[dict[str, Any]],
          batch: OtlpBatch, reject: Any) -> None:
    try:
        record = _span_event(s, index, tool_calls)
    except InputError as exc:
        reject(s, exc.reason)
    except Exception as exc:  # a safety net: one odd span must not fail the whole request
        reject(s, f"could not map the span: {type(exc).__name__}: {exc}")
    else:
        batch.records.append(record)


def _start_time(s: _Span) -> int:
    return s.span.start_time_unix_nano


def _ancestors(s: _Span, index: dict[tuple[bytes, bytes], _Span]) -> Iterator[_Span]:
    seen = {id(s)}
    key = s.parent_key
    while key is not None:
        parent = index.get(key)
        if parent is None or id(parent) in seen:
            return
        seen.add(id(parent))
        yield parent
        key = parent.parent_key


def _tool_span_call(t: _Span) -> dict[str, Any]:
    a = t.attrs
    name = a.get("gen_ai.tool.name")
    if not isinstance(name, str) or not name:
        name = t.span.name.removeprefix("execute_tool").strip() or None
    result = a.get("gen_ai.tool.call.result")
    if result is None and t.span.status.code == Status.STATUS_CODE_ERROR:
        result = {"error": t.span.status.message or _as_str(a.get("error.type"), "error.type") or "error"}
    return _tool_call(name, a.get("gen_ai.tool.call.arguments"), result, a.get("gen_ai.tool.call.id"))


# Where a tool call sits in the event record (record -> tool_calls list -> call): sanitizing it
# at that depth once makes it exactly what sanitizing the whole record would, so the record's
# pass can leave the tool calls out.
_TOOL_CALL_DEPTH = 2


def _checked_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    if not _plainly_safe(call, _TOOL_CALL_DEPTH):
        call = _json_safe(call, _TOOL_CALL_DEPTH)
    try:
        msgspec.convert(call, ToolCall)
    except msgspec.ValidationError as exc:
        raise InputError(f"tool call: {exc}") from None
    return call


def _merge_tool_calls(requested: list[dict[str, Any]], executed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requested calls (from the output messages) completed by the executed ones with the same id."""
    by_id = {c["id"]: c for c in requested if "id" in c}
    out = list(requested)
    for call in executed:
        match = by_id.get(call.get("id"))  # type: ignore[arg-type]
        if match is not None:
            for key, value in call.items():
                if key not in match or (key == "name" and match[key] == "unknown"):
                    match[key] = value
        else:
            out.append(call)
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(ns: int) -> datetime:
    seconds, rem = divmod(ns, 1_000_000_000)
    try:
        return _EPOCH + timedelta(0, seconds, rem // 1000)
    except OverflowError:
        raise InputError(f"startTimeUnixNano {ns} is out of range") from None


def _event_attrs(events: Any, name: str) -> list[dict[str, Any]]:
    """The attributes of the span events (``span.events``) called ``name``."""
    return [_attrs(e.attributes) for e in events if e.name == name] if events else []


def _span_event(s: _Span, index: dict[tuple[bytes, bytes], _Span], executed: list[dict[str, Any]]) -> Event:
    span, a, res = s.span, s.attrs, s.resource
    events = span.events
    if not span.trace_id or not span.span_id:
        raise InputError("span has no traceId or spanId")
    if not span.start_time_unix_nano:
        raise InputError("span has no startTimeUnixNano")
    trace_hex, span_hex = span.trace_id.hex(), span.span_id.hex()
    sources: dict[str, str] = {}  # event field -> the attribute it came from, for error messages

    def take(field_name: str, conv: Any, attrs: Mapping[str, Any], *keys: str) -> Any:
        # _first, inline: most of these attributes are absent, and every converter maps None to None
        for key in keys:
            raw = attrs.get(key)
            if raw is not None and raw != "" and raw != []:
                value = conv(raw, key)
                if value is not None:
                    sources[field_name] = key
                return value
        return None

    rec: dict[str, Any] = {"id": f"otel-{trace_hex}-{span_hex}", "ts": _timestamp(span.start_time_unix_nano)}
    if span.end_time_unix_nano:
        if span.end_time_unix_nano < span.start_time_unix_nano:
            raise InputError("span ends before it starts (endTimeUnixNano < startTimeUnixNano)")
        rec["latency_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6

    rec["feature"] = _feature(s, index, sources)
    rec["env"] = take("env", _as_str, a, "hotwash.env") or take(
        "env", _as_str, res, "deployment.environment.name", "deployment.environment")
    rec["session_id"] = take("session_id", _as_str, a, "gen_ai.conversation.id", "session.id")
    rec["user_id"] = take("user_id", _as_str, a, "enduser.id", "user.id") or take(
        "user_id", _as_str, res, "enduser.id", "user.id")
    rec["provider"] = take("provider", _as_str, a, "gen_ai.provider.name", "gen_ai.system")
    rec["model"] = take("model", _as_str, a, "gen_ai.response.model", "gen_ai.request.model")
    rec["prompt_version"] = take("prompt_version", _as_str, a, "hotwash.prompt_version", "gen_ai.prompt.name")
    rec["tokens_in"] = take("tokens_in", _as_int, a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    rec["tokens_out"] = take("tokens_out", _as_int, a, "gen_ai.usage.output_tokens",
                             "gen_ai.usage.completion_tokens")
    hotwash_keys = [k for k in a if k.startswith("hotwash.")]
    if hotwash_keys:
        rec["escalated"] = take("escalated", _as_bool, a, "hotwash.escalated")
        rec["confidence"] = take("confidence", _as_float, a, "hotwash.confidence")
        rec["cost_usd"] = take("cost_usd", _as_float, a, "hotwash.cost_usd")
        rec["retry"] = take("retry", _as_retry, a, "hotwash.retry")
        rec["feedback"] = take("feedback", _as_float, a, "hotwash.feedback")
    else:  # the usual case: none of them (the same keys, in the same order)
        rec["escalated"] = rec["confidence"] = rec["cost_usd"] = rec["retry"] = rec["feedback"] = None
    tags: dict[str, Any] = {}

    # Messages: the span attributes, else the operation-details event, else the older forms.
    details = next(iter(_event_attrs(events, "gen_ai.client.inference.operation.details")), {})
    inputs = _as_messages(_first(a, "gen_ai.input.messages")[1] or details.get("gen_ai.input.messages")
                          or a.get("gen_ai.prompt") or _indexed_messages(a, "prompt") or None)
    outputs = _as_messages(_first(a, "gen_ai.output.messages")[1] or details.get("gen_ai.output.messages")
                           or a.get("gen_ai.completion") or _indexed_messages(a, "completion") or None)
    rec["input"] = _last_user_text(inputs)
    if rec["input"] is None:
        user_events = [_event_message(e) for e in _event_attrs(events, "gen_ai.user.message")]
        rec["input"] = next((t for t in reversed(user_events) if t), None)
    rec["output"] = _output_text(outputs)
    requested = _tool_calls_of(outputs)
    if rec["output"] is None or not requested:
        for choice in _event_attrs(events, "gen_ai.choice"):
            message = _maybe_json(choice.get("message"))
            message = message if isinstance(message, dict) else {"content": choice.get("content")}
            if rec["output"] is None:
                rec["output"] = _message_text(message)
            if not requested:
                requested = _tool_calls_of([message])
    system = _system_instructions(a.get("gen_ai.system_instructions")
                                  or details.get("gen_ai.system_instructions"))
    if system is None:
        system = _system_text(inputs) or next(
            (t for e in _event_attrs(events, "gen_ai.system.message") if (t := _event_message(e))), None)
    if system is not None:
        tags["gen_ai.system_instructions"] = system

    calls = [_checked_tool_call(c) for c in requested] if requested else []
    if s.is_tool:  # an execute_tool span with no GenAI parent here: it is its own event
        executed = [_checked_tool_call(_tool_span_call(s))]
    calls = _merge_tool_calls(calls, executed)
    rec["tool_calls"] = calls or None
    rec["context"] = _documents(a.get("gen_ai.retrieval.documents"))

    rec["score"] = take("score", _as_float, a, "gen_ai.evaluation.score.value")
    evaluations = []
    for ev in _event_attrs(events, "gen_ai.evaluation.result")[:_MAX_EVALUATIONS]:
        item = {k.removeprefix("gen_ai.evaluation."): v for k, v in ev.items()
                if k in ("gen_ai.evaluation.name", "gen_ai.evaluation.score.value", "gen_ai.evaluation.score.label")}
        evaluations.append(item)
        if rec["score"] is None and "gen_ai.evaluation.score.value" in ev:
            rec["score"] = _as_float(ev["gen_ai.evaluation.score.value"],
                                     "gen_ai.evaluation.score.value (gen_ai.evaluation.result event)")
    if evaluations:
        tags["gen_ai.evaluations"] = evaluations

    if span.status.code == Status.STATUS_CODE_ERROR:
        rec["error"] = span.status.message or _as_str(a.get("error.type"), "error.type") or "error"

    tags["otel.trace_id"] = trace_hex
    tags["otel.span_id"] = span_hex
    if span.parent_span_id:
        tags["otel.parent_span_id"] = span.parent_span_id.hex()
    tags["otel.span_name"] = span.name
    for key in _TAG_ATTRIBUTES:
        if key in a and a[key] is not None:
            tags[key] = a[key]
    for key in _RESOURCE_TAGS:
        if key in res and res[key] is not None:
            tags[key] = res[key]
    request_model = a.get("gen_ai.request.model")
    if request_model is not None and request_model != rec["model"]:
        tags["gen_ai.request.model"] = request_model
    prompt_name = a.get("gen_ai.prompt.name")
    if prompt_name is not None and prompt_name != rec["prompt_version"]:
        tags["gen_ai.prompt.name"] = prompt_name
    for key in hotwash_keys:
        value = a[key]
        if key[len("hotwash."):] not in _HOTWASH_FIELDS and value is not None:
            tags[key[len("hotwash."):]] = value
    rec["tags"] = tags

    # Every tool call already passed _checked_tool_call (at its depth in the record).
    clean = {k: v for k, v in rec.items() if v is not None and k != "ts" and k != "tool_calls"}
    if not _plainly_safe(clean):
        clean = _json_safe(clean)
    clean["ts"] = rec["ts"]
    if rec["tool_calls"]:
        clean["tool_calls"] = rec["tool_calls"]
    # Every key is an Event field, and the documents and tool calls carry only their structs'
    # fields, so parse_record's reshaping would change nothing: convert directly, and let
    # parse_record say what is wrong (the same validation, its wording) only when that fails.
    try:
        return msgspec.convert(clean, Event)
    except msgspec.ValidationError:
        pass
    try:
        record = parse_record(clean, nul_checked=True)  # every NUL was replaced above
    except InputError as exc:
        raise InputError(_name_attribute(exc.reason, sources)) from None
    assert isinstance(record, Event)
    return record


def _name_attribute(reason: str, sources: Mapping[str, str]) -> str:
    """'field 'tokens_in': ...' -> 'attribute 'gen_ai.usage.input_tokens' (field 'tokens_in'): ...'."""
    m = re.match(r"field '([a-z_]+)", reason)
    if m and m.group(1) in sources:
        return f"attribute '{sources[m.group(1)]}' ({reason})"
    return reason


def _feature(s: _Span, index: dict[tuple[bytes, bytes], _Span], sources: dict[str, str]) -> str:
    chain = [s, *_ancestors(s, index)]
    for key in ("hotwash.feature", "gen_ai.agent.name"):
        for span in chain:
            if key in span.attrs:
                value = _as_str(span.attrs[key], key)
                if value:
                    sources["feature"] = key
                    return value
    service = _as_str(s.resource.get("service.name"), "service.name")
    if service:
        sources["feature"] = "service.name"
        return service
    return "unknown_service"  # what the OpenTelemetry SDKs report when no service.name is set


def _event_message(attrs: Mapping[str, Any]) -> str | None:
    content = _maybe_json(attrs.get("content", attrs.get("message")))
    if isinstance(content, dict):
        return _message_text(content)
    texts = _parts_text(content)
    return "\n".join(texts) if texts else None


def _system_instructions(value: Any) -> str | None:
    value = _maybe_json(value)
    if isinstance(value, dict):
        value = [value]
    texts = _parts_text(value) if isinstance(value, (list, str)) else []
    if isinstance(value, list) and not texts:  # a list of messages rather than parts
        texts = [t for m in value if isinstance(m, dict) and (t := _message_text(m))]
    return "\n".join(texts) if texts else None


def _documents(value: Any) -> list[dict[str, Any]] | None:
    docs = _maybe_json(value)
    if isinstance(docs, dict):
        docs = [docs]
    if not isinstance(docs, list):
        return None
    out = []
    for doc in docs:
        if isinstance(doc, str):
            out.append({"text": doc})
            continue
        if not isinstance(doc, dict):
            continue
        text = doc.get("content", doc.get("text"))
        if not isinstance(text, str):
            continue  # a document reported without its text (e.g. only {id, score}) gives no context
        item: dict[str, Any] = {"text": text}
        if isinstance(doc.get("id"), (str, int)) and not isinstance(doc.get("id"), bool):
            item["id"] = str(doc["id"])
        if isinstance(doc.get("source"), str):
            item["source"] = doc["source"]
        score = doc.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            item["score"] = float(score)
        if isinstance(doc.get("metadata"), dict):
            item["metadata"] = doc["metadata"]
        out.append(item)
    return out or None


def decode_and_map(body: bytes, content_type: str) -> OtlpBatch:
    """:func:`decode_request` then :func:`spans_to_events`."""
    return spans_to_events(decode_request(body, content_type))


# -- responses ------------------------------------------------------------------------------------


def _summary(batch: OtlpBatch) -> str:
    n = len(batch.rejected)
    shown = "; ".join(f"{where}: {reason}" for where, reason in batch.rejected[:_MAX_SUMMARY])
    more = f"; and {n - _MAX_SUMMARY} more" if n > _MAX_SUMMARY else ""
    return f"{n} span{'s' if n != 1 else ''} rejected: {shown}{more}"


def encode_response(batch: OtlpBatch, content_type: str) -> bytes:
    """``ExportTraceServiceResponse``, with ``partial_success`` if any span was rejected."""
    response = ExportTraceServiceResponse()
    if batch.rejected:
        response.partial_success.rejected_spans = len(batch.rejected)
        response.partial_success.error_message = _summary(batch)
    if response_media_type(content_type) == JSON:
        return orjson.dumps(json_format.MessageToDict(response))
    return response.SerializeToString()


# -- files ----------------------------------------------------------------------------------------


def _lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, too_long); a too-long line is drained, not kept."""
    lineno = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) <= limit or line.endswith(b"\n"):
            yield lineno, line, False
            continue
        head = line[:1024]
        while line and not line.endswith(b"\n"):
            line = stream.readline(1 << 16)
        yield lineno, head, True


def read_otlp_json(stream: BinaryIO, *, source: str, max_record_bytes: int) -> Iterator[Accepted | Rejected]:
    """Read an OTLP/JSON file: one ExportTraceServiceRequest document (pretty-printed or not), or
    JSON Lines of them as the collector's file exporter writes. Yields an :class:`Accepted` per
    mapped event (``line`` is the line its request starts on) and a :class:`Rejected` per bad
    request or span; the quarantined ``raw`` of a bad span is a one-span request, so it can be
    fixed and ingested again. A request may be up to 64 times ``max_record_bytes``; memory stays
    bounded by that.
    """
    limit = max_record_bytes * _REQUEST_LIMIT_FACTOR
    lines = _lines(stream, limit)
    head: list[tuple[int, bytes, bool]] = []

    def next_nonblank() -> tuple[int, bytes, bool] | None:
        for item in lines:
            head.append(item)
            if item[2] or item[1].strip():
                return item
        return None

    first = next_nonblank()
    if first is None:
        return
    if first[2] or _parses(first[1]):  # one request per line
        yield from _read_requests(itertools.chain(head, lines), source, limit)
        return
    second = next_nonblank()
    if second is not None and (second[2] or _parses(second[1])):  # JSON Lines with a bad first line
        yield from _read_requests(itertools.chain(head, lines), source, limit)
        return
    # One document over several lines: read it whole, up to the limit.
    parts = [item[1] for item in head]
    size = sum(map(len, parts))
    over = size > limit
    for _, raw, too_long in lines:
        size += len(raw)
        over = over or too_long or size > limit
        if not over:
            parts.append(raw)
    if over:
        yield Rejected(source, first[0], f"OTLP/JSON document is over the size limit of {limit} bytes",
                       b"".join(parts)[:1024])
        return
    yield from _requests_of(first[0], b"".join(parts), source)


def _parses(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def _read_requests(lines: Any, source: str, limit: int) -> Iterator[Accepted | Rejected]:
    for lineno, raw, too_long in lines:
        if too_long:
            yield Rejected(source, lineno, f"OTLP/JSON request is over the size limit of {limit} bytes", raw)
        elif raw.strip():
            yield from _requests_of(lineno, raw, source)


def _requests_of(lineno: int, raw: bytes, source: str) -> Iterator[Accepted | Rejected]:
    try:
        request = decode_request(raw, JSON)
    except PayloadError as exc:
        yield Rejected(source, lineno, str(exc), raw.rstrip(b"\r\n"))
        return
    mapped = _map_request(request)
    for record in mapped.batch.records:
        yield Accepted(lineno, record)
    for (where, reason), s in zip(mapped.batch.rejected, mapped.rejected_spans, strict=True):
        yield Rejected(source, lineno, f"{where}: {reason}", _one_span_request(request, s))


def _one_span_request(request: ExportTraceServiceRequest, s: _Span) -> bytes:
    """The request cut down to one span (with its resource and scope), as OTLP/JSON."""
    rs = request.resource_spans[s.i]
    ss = rs.scope_spans[s.j]
    single = ExportTraceServiceRequest()
    out_rs = single.resource_spans.add()
    out_rs.resource.CopyFrom(rs.resource)
    out_rs.schema_url = rs.schema_url
    out_ss = out_rs.scope_spans.add()
    out_ss.scope.CopyFrom(ss.scope)
    out_ss.schema_url = ss.schema_url
    out_ss.spans.add().CopyFrom(s.span)
    return orjson.dumps(_to_otlp_json(single))
