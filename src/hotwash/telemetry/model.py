"""The telemetry records of PRODUCT.md §7: one AI call (:class:`Event`) and one change
(:class:`ChangeEvent`).

They are ``msgspec`` structs rather than pydantic models: ingest decodes and validates tens of
thousands of records a second, and msgspec does both in one pass from the JSON bytes at a fifth of
pydantic's cost, with errors that still name the field (``$.context[0].text``).

Decoding takes two paths. The fast one accepts only known keys. A record with other keys (or a
change event, marked ``"type": "change"``) takes the slow one: decoded to a dict, its unknown
top-level keys moved into ``tags`` (kept, never dropped), then validated the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson

from hotwash.errors import InputError

ChangeKind = Literal["deploy", "prompt", "model", "config", "eval_set", "guardrail"]
CHANGE_KINDS: tuple[str, ...] = ("deploy", "prompt", "model", "config", "eval_set", "guardrail")

IdStr = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Short = Annotated[str, msgspec.Meta(max_length=255)]
# Bounded so every value fits the store's columns on every database (BIGINT, INTEGER).
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
SmallCount = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
Signed = Annotated[float, msgspec.Meta(ge=-1, le=1)]


class ContextDoc(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, gc=False):
    """One retrieved document given to the model. Untrusted: it may carry instructions."""

    text: str
    id: Short | None = None
    source: Short | None = None
    score: float | None = None
    metadata: dict[str, Any] | None = None


class ToolCall(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, gc=False):
    """One tool the model called; ``result`` is what the tool returned (untrusted)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    arguments: dict[str, Any] | str | None = None
    result: Any = None
    id: Short | None = None


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One AI call. Only ``id``, ``ts`` and ``feature`` are required; unknown keys go to ``tags``."""

    id: IdStr
    ts: datetime
    feature: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    env: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    session_id: Short | None = None
    user_id: Short | None = None
    provider: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    prompt_version: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    input: str | None = None
    context: list[ContextDoc] | None = None
    output: str | None = None
    tool_calls: list[ToolCall] | None = None
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    cost_usd: NonNeg | None = None
    latency_ms: NonNeg | None = None
    escalated: bool | None = None
    confidence: Unit | None = None
    retry: SmallCount | None = None
    feedback: Signed | None = None
    score: float | None = None
    error: str | None = None
    untrusted: list[str] | None = None
    tags: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.ts = _utc(self.ts)


class ChangeEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A deploy or a prompt / model / config / eval-set / guardrail change of one feature."""

    id: IdStr
    ts: datetime
    feature: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kind: ChangeKind
    type: Literal["change"] = "change"
    version: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    previous: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    description: str | None = None
    link: str | None = None
    actor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    tags: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.ts = _utc(self.ts)


Record = Event | ChangeEvent

_EVENT_FIELDS = frozenset(Event.__struct_fields__)
_CHANGE_FIELDS = frozenset(ChangeEvent.__struct_fields__)
_fast_decoder = msgspec.json.Decoder(Event)


def _utc(value: datetime) -> datetime:
    # A timestamp without a zone is read as UTC: telemetry times are UTC by contract (§3).
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _explain(exc: msgspec.ValidationError) -> str:
    """Rewrite msgspec's message as 'field 'x.y': expected ...' or 'missing required field'."""
    msg = str(exc)
    text, _, path = msg.partition(" - at `$")
    path = path.rstrip("`").lstrip(".")
    if text.startswith("Object missing required field `"):
        name = text.split("`")[1]
        full = f"{path}.{name}" if path else name
        return f"missing required field '{full}'"
    text = text[0].lower() + text[1:] if text else text
    return f"field '{path}': {text}" if path else text


def _with_extras_in_tags(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    extra = obj.keys() - known
    if not extra:
        return obj
    kept = {k: v for k, v in obj.items() if k in known}
    tags = obj.get("tags")
    if tags is not None and not isinstance(tags, dict):
        return obj  # let validation report the bad `tags` itself
    kept["tags"] = {**{k: obj[k] for k in sorted(extra)}, **(tags or {})}
    return kept


def _drop_nested_extras(obj: dict[str, Any]) -> dict[str, Any]:
    """Unknown keys inside a context document or a tool call are dropped (documented)."""
    for key, struct in (("context", ContextDoc), ("tool_calls", ToolCall)):
        items = obj.get(key)
        if isinstance(items, list):
            fields = set(struct.__struct_fields__)
            obj[key] = [{k: v for k, v in it.items() if k in fields} if isinstance(it, dict) else it
                        for it in items]
    return obj


def parse_record(obj: object, *, where: str | None = None, nul_checked: bool = False) -> Record:
    """Validate one decoded JSON value as a change event (``"type": "change"``) or an event.

    ``nul_checked``: the caller has already made every string NUL-free and every integer 64-bit
    (the OTLP mapper does).
    """
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", where=where)
    if not nul_checked:
        _refuse_unstorable(obj, where)
    try:
        if obj.get("type") == "change":
            return msgspec.convert(_with_extras_in_tags(obj, _CHANGE_FIELDS), ChangeEvent)
        cleaned = _drop_nested_extras(_with_extras_in_tags(dict(obj), _EVENT_FIELDS))
        return msgspec.convert(cleaned, Event)
    except msgspec.ValidationError as exc:
        raise InputError(_explain(exc), where=where) from None


# JSON integers the store can keep: orjson (the store's JSON encoder) and PostgreSQL's JSONB
# stop at 64 bits. A larger one would fail the whole batch at commit, so its record is refused.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# Cheap test on a raw line: a run of 19 digits may be an integer outside that range. Digits map
# to "0" and everything else to a space, then a substring search: a tenth of a regex's cost.
_DIGITS_ONLY = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19


def _has_long_digit_run(raw: bytes) -> bool:
    return _LONG_RUN in raw.translate(_DIGITS_ONLY)


def _unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where a decoded value holds what no store can keep (a NUL character, an integer beyond 64
    bits), and what it is; None if nothing."""
    if isinstance(value, str):
        return ((path or "(record)"), "nul") if "\x00" in value else None
    if isinstance(value, int):
        return None if isinstance(value, bool) or _INT_MIN <= value <= _INT_MAX else ((path or "(record)"), "int")
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            found = (here, "nul") if "\x00" in str(k) else _unstorable(v, here)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _unstorable(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _refuse_unstorable(obj: Any, where: str | None) -> None:
    # PostgreSQL text and JSONB cannot hold U+0000; refusing the record (not the batch) with a
    # clear reason keeps both databases storing exactly the same data.
    found = _unstorable(obj)
    if found is None:
        return
    path, what = found
    if what == "nul":
        raise InputError(f"field '{path}': contains a NUL character (\\u0000), which cannot be stored", where=where)
    raise InputError(f"field '{path}': integer outside the 64-bit range ({_INT_MIN} to {_INT_MAX}) that can be "
                     "stored; send it as a string", where=where)


def loads_exact(raw: bytes) -> Any:
    """``orjson.loads``, except that integers beyond 64 bits stay integers (orjson reads them as
    floats, silently changing the value): :func:`parse_record` then refuses them with their field.
    Raises ValueError on invalid JSON."""
    if not _has_long_digit_run(raw):
        return orjson.loads(raw)
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None


def decode_record(raw: bytes, *, where: str | None = None) -> Record:
    """Decode and validate one JSON record from bytes (the ingest hot path)."""
    if b"\\u0000" in raw:  # rare: take the slow path, which checks every string
        try:
            return parse_record(orjson.loads(raw), where=where)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc}", where=where) from None
    if _has_long_digit_run(raw):  # rare: maybe an integer beyond 64 bits, which orjson would
        try:  # read as a float; msgspec keeps it exact, so parse_record can refuse it by its field
            obj = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass  # the paths below say what is wrong
        else:
            return parse_record(obj, where=where)
    try:
        return _fast_decoder.decode(raw)
    except msgspec.ValidationError:
        pass  # unknown keys, a change event, or a real error: the slow path tells which
    except (msgspec.DecodeError, UnicodeDecodeError):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8: invalid byte at position {exc.start}", where=where) from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", where=where) from None
    return parse_record(obj, where=where)


def to_builtins(record: Record) -> dict[str, Any]:
    """The record as plain JSON-ready values (ISO timestamps), None fields omitted."""
    out = msgspec.to_builtins(record)
    return {k: v for k, v in out.items() if v is not None}
