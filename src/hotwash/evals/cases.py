"""Regression cases as YAML files: the format, its validation, reading and writing.

A case is one replayable AI call: the input (with its retrieved context and the tools the model
was offered), the bad output recorded during the incident, and the assertions a fixed feature must
pass. Files live in the user's repository and are reviewed like code, so the format is versioned
(``version: 1``) and strict: an unknown key is an error, never a silently ignored setting. A file
holds one case, or a suite (``cases: [...]``). The reference is ``docs/evals.md``.

A malformed file raises :class:`~hotwash.errors.InvalidValue` naming the file, the YAML line, the
key path and the problem, e.g. ``evals/inc-3.yaml:14: assertions[1].value: Field required``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hotwash.errors import InvalidValue
from hotwash.manifest import Category

__all__ = [
    "ASSERTION_TYPES",
    "FORMAT_VERSION",
    "Assertion",
    "Case",
    "ContextDoc",
    "Recorded",
    "TargetSpec",
    "case_files",
    "digest",
    "dump_case",
    "load_cases",
    "parse_cases",
    "write_case",
]

FORMAT_VERSION = 1
_CASE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"
_CALLABLE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Strict(BaseModel):
    # A typo in a case file must be an error, not an assertion that silently never runs.
    model_config = ConfigDict(extra="forbid")


# -- assertions ------------------------------------------------------------------------------------


class _Assertion(_Strict):
    # Why the check exists; shown with its failure.
    description: str | None = None


class Contains(_Assertion):
    """The output contains ``value`` (every one, if a list)."""

    type: Literal["contains"]
    value: str | list[str]
    ignore_case: bool = False


class NotContains(_Assertion):
    """The output contains none of ``value``."""

    type: Literal["not_contains"]
    value: str | list[str]
    ignore_case: bool = False


def _compiles(pattern: str, ignore_case: bool) -> str:
    try:
        re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


class Regex(_Assertion):
    """The output matches the regular expression ``value`` (Python syntax, searched anywhere)."""

    type: Literal["regex"]
    value: str
    ignore_case: bool = False

    @model_validator(mode="after")
    def _check(self) -> Regex:
        _compiles(self.value, self.ignore_case)
        return self


class NotRegex(_Assertion):
    """The output does not match the regular expression ``value``."""

    type: Literal["not_regex"]
    value: str
    ignore_case: bool = False

    @model_validator(mode="after")
    def _check(self) -> NotRegex:
        _compiles(self.value, self.ignore_case)
        return self


class JsonSchema(_Assertion):
    """The output is JSON and valid against ``schema`` (JSON Schema; ``{}`` accepts any JSON)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class ToolAllowlist(_Assertion):
    """Every tool the output calls is in ``tools`` (an empty list: no tool calls at all)."""

    type: Literal["tool_allowlist"]
    tools: list[str]


class ToolDenylist(_Assertion):
    """The output calls none of ``tools``."""

    type: Literal["tool_denylist"]
    tools: list[str] = Field(min_length=1)


class GroundedInContext(_Assertion):
    """The detectors' grounding checker finds the output supported by the case's context."""

    type: Literal["grounded_in_context"]
    threshold: float | None = Field(default=None, gt=0, le=1)


class MaxTokens(_Assertion):
    """Token ceiling of the call: ``total`` (in + out, the default), ``in`` or ``out``."""

    type: Literal["max_tokens"]
    value: int = Field(ge=0)
    count: Literal["total", "in", "out"] = "total"


class MaxCost(_Assertion):
    """Cost ceiling of the call in USD (reported by the target, or priced from its model and tokens)."""

    type: Literal["max_cost_usd"]
    value: float = Field(ge=0)


class MaxToolCalls(_Assertion):
    """At most ``value`` tool calls."""

    type: Literal["max_tool_calls"]
    value: int = Field(ge=0)


class MustEscalate(_Assertion):
    """The call hands the case to a person (``true``) or must not (``false``)."""

    type: Literal["must_escalate"]
    value: bool


class Length(_Assertion):
    """The output's length in characters is within ``min`` .. ``max``."""

    type: Literal["length"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Length:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self


class PythonCheck(_Assertion):
    """A custom check ``module:function`` called with (output, case) -> bool or (bool, reason)."""

    type: Literal["python"]
    value: str = Field(pattern=_CALLABLE)


_ASSERTION_MODELS: tuple[type[_Assertion], ...] = (
    Contains, NotContains, Regex, NotRegex, JsonSchema, ToolAllowlist, ToolDenylist, GroundedInContext,
    MaxTokens, MaxCost, MaxToolCalls, MustEscalate, Length, PythonCheck,
)
ASSERTION_TYPES: tuple[str, ...] = tuple(m.model_fields["type"].annotation.__args__[0] for m in _ASSERTION_MODELS)
# The key a shorthand value goes to: `- not_contains: CANARY` is `{type: not_contains, value: CANARY}`.
_SHORTHAND_KEY = {"tool_allowlist": "tools", "tool_denylist": "tools", "json_schema": "schema",
                  "grounded_in_context": "threshold", "length": "max"}


def _expand_shorthand(value: object) -> object:
    """``{contains: x, ignore_case: true}`` -> ``{type: contains, value: x, ignore_case: true}``."""
    if not isinstance(value, dict) or "type" in value:
        return value
    named = [k for k in value if k in ASSERTION_TYPES]
    if len(named) != 1:
        raise ValueError(f"an assertion needs a 'type', one of: {', '.join(ASSERTION_TYPES)}"
                         if not named else f"one assertion per list item, this one names {named}")
    kind = named[0]
    rest = {k: v for k, v in value.items() if k != kind}
    short = value[kind]
    if isinstance(short, dict) and kind != "json_schema":
        return {"type": kind, **short, **rest}
    if kind == "grounded_in_context" and short in (True, None):
        return {"type": kind, **rest}
    return {"type": kind, _SHORTHAND_KEY.get(kind, "value"): short, **rest}


Assertion = Annotated[
    Contains | NotContains | Regex | NotRegex | JsonSchema | ToolAllowlist | ToolDenylist | GroundedInContext
    | MaxTokens | MaxCost | MaxToolCalls | MustEscalate | Length | PythonCheck,
    Field(discriminator="type"),
    BeforeValidator(_expand_shorthand),
]


# -- the case --------------------------------------------------------------------------------------


class ContextDoc(_Strict):
    """One retrieved document the model was given."""

    id: str | None = None
    text: str
    source: str | None = None


class ToolCall(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str | None = None
    result: Any = None
    id: str | None = None


class ToolSpec(_Strict):
    """A tool offered to the model (sent as an OpenAI ``tools`` function declaration)."""

    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


def _tool_specs(value: object) -> object:
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


def _tools_shorthand(value: object) -> object:
    return {"allowed": value} if isinstance(value, list) else value


class Tools(_Strict):
    """``allowed``: what the feature may call (its manifest capabilities). ``declared``: the tools
    the application offered the model (names or specs); when absent, the allowed ones are offered."""

    allowed: list[str] | None = None
    declared: Annotated[list[ToolSpec], BeforeValidator(_tool_specs)] = Field(default_factory=list)

    def offered(self) -> list[ToolSpec]:
        return self.declared or [ToolSpec(name=n) for n in self.allowed or ()]


class Recorded(_Strict):
    """What the feature really produced during the incident (the bad output)."""

    output: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tokens_in: int | None = Field(default=None, ge=0)
    tokens_out: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    escalated: bool | None = None
    event_id: str | None = None
    ts: datetime | None = None
    model: str | None = None
    prompt_version: str | None = None


class OpenAISpec(_Strict):
    base_url: str = Field(pattern=r"^https?://\S+$")
    model: str = Field(min_length=1)
    # The name of the environment variable holding the API key: keys never go in a case file.
    api_key_env: EnvName | None = None
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    # Tool calls that mean "hand this to a person" (the call counts as escalated).
    escalate_tools: list[str] | None = None


class TargetSpec(_Strict):
    """Where this case is replayed when the run names no target: exactly one of the three."""

    python: str | None = Field(default=None, pattern=_CALLABLE)
    openai: OpenAISpec | None = None
    recorded: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        given = [k for k in ("python", "openai", "recorded") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'python' (module:function), 'openai' ({base_url, model}) "
                             f"or 'recorded: true'{f', not {given}' if given else ''}")
        return self


class Case(_Strict):
    version: Literal[1] | None = None  # required at the top of each file (checked by the loader)
    id: str = Field(pattern=_CASE_ID)
    description: str | None = None
    feature: str | None = None
    category: Category | None = None
    incident: str | None = Field(default=None, pattern=r"^INC-[0-9]+$")
    input: str | None = None
    context: list[ContextDoc] = Field(default_factory=list)
    tools: Annotated[Tools, BeforeValidator(_tools_shorthand)] = Field(default_factory=Tools)
    recorded: Recorded | None = None
    assertions: list[Assertion] = Field(min_length=1)
    target: TargetSpec | None = None

    _path: Path | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _grounding_needs_context(self) -> Case:
        if not any(d.text.strip() for d in self.context):
            for i, a in enumerate(self.assertions):
                if isinstance(a, GroundedInContext):
                    raise ValueError(f"assertions[{i}] (grounded_in_context) needs the case's 'context': "
                                     "there is nothing to judge the output against")
        return self

    @property
    def path(self) -> Path | None:
        """The file the case was read from (None for a case built in memory)."""
        return self._path

    @property
    def where(self) -> str:
        """``file:line`` of the case, for messages."""
        if self._path is None:
            return f"case {self.id}"
        return f"{self._path}:{self._line}" if self._line else str(self._path)

    @property
    def incident_number(self) -> int | None:
        return int(self.incident[4:]) if self.incident else None


class Suite(_Strict):
    version: Literal[1]
    description: str | None = None
    cases: list[dict[str, Any]] = Field(min_length=1)


# -- reading ---------------------------------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple[Any, ...] = (), out: dict[tuple[Any, ...], int] | None = None,
              ) -> dict[tuple[Any, ...], int]:
    """Key path -> 1-based line of each mapping key and sequence item in a composed YAML tree."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out[sub] = key.start_mark.line + 1
            _line_map(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, i), out)
    return out


def _locate(data: Any, loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int],
            prefix: tuple[Any, ...]) -> tuple[str, int | None]:
    """A pydantic error location as the file's key path (``assertions[1].value``) and its line.

    Pydantic puts a discriminated union's tag into the location (``assertions.1.contains.value``);
    it is not a key of the file, so it is skipped."""
    found: list[Any] = []
    cur = data
    rest = list(loc)
    while rest:
        step = rest[0]
        inside = (isinstance(cur, dict) and step in cur) or (
            isinstance(cur, list) and isinstance(step, int) and 0 <= step < len(cur))
        if inside:
            # A shorthand (`- python: x`): its key stands for the field it fills (`value`).
            shorthand = isinstance(cur, dict) and "type" not in cur and step in ASSERTION_TYPES
            if shorthand and len(rest) > 1 and rest[1] == _SHORTHAND_KEY.get(step, "value"):
                rest.pop(1)
            cur = cur[step]
        elif isinstance(cur, dict) and (step == cur.get("type") or step in ASSERTION_TYPES):
            rest.pop(0)
            continue
        else:
            break
        found.append(rest.pop(0))
    shown = [*found, *(s for s in rest if not (isinstance(s, str) and s in ASSERTION_TYPES))]
    text = ""
    for step in (*prefix, *shown):
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    line = None
    key = (*prefix, *found)
    while line is None and key is not None:
        line = lines.get(key)
        key = key[:-1] if key else None
    return text or "(top level)", line


def _errors(exc: ValidationError, data: Any, lines: Mapping[tuple[Any, ...], int], source: str,
            prefix: tuple[Any, ...] = ()) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where, line = _locate(data, tuple(err["loc"]), lines, prefix)
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) and err["type"] != "missing" else ""
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{source}:{line}: {where}: {msg}{shown}" if line else f"{source}: {where}: {msg}{shown}")
    return out


def parse_cases(text: str, *, source: str = "<string>", path: Path | None = None) -> list[Case]:
    """The cases of one file's text (a single case or a suite). Raises InvalidValue naming what is wrong."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise InvalidValue(f"{source}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}",
                           field="path") from exc
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        raise InvalidValue(f"{source}: expected a case (a mapping with 'version', 'id', 'assertions'...) "
                           f"or a suite ('version' and 'cases'), got {kind}", field="path")
    lines = _line_map(root) if root is not None else {}
    if "version" not in data:
        raise InvalidValue(f"{source}:1: version: missing; case files are versioned: add 'version: 1' at the top",
                           field="path")
    if data["version"] != FORMAT_VERSION:
        raise InvalidValue(f"{source}:{lines.get(('version',), 1)}: version: {data['version']!r} is not a case "
                           f"format this hotwash reads (it reads version {FORMAT_VERSION})", field="path")
    items: list[tuple[dict[str, Any], tuple[Any, ...]]]
    if "cases" in data:
        try:
            suite = Suite.model_validate(data)
        except ValidationError as exc:
            raise InvalidValue("\n".join(_errors(exc, data, lines, source)), field="path") from exc
        bad = [i for i, c in enumerate(suite.cases) if not isinstance(c, dict)]
        if bad:
            raise InvalidValue(f"{source}:{lines.get(('cases', bad[0]))}: cases[{bad[0]}]: expected a case mapping",
                               field="path")
        items = [(c, ("cases", i)) for i, c in enumerate(suite.cases)]
    else:
        items = [(data, ())]
    cases: list[Case] = []
    problems: list[str] = []
    for item, prefix in items:
        try:
            case = Case.model_validate(item)
        except ValidationError as exc:
            sub = {k[len(prefix):]: v for k, v in lines.items() if k[:len(prefix)] == prefix}
            problems.extend(_errors(exc, item, {(*prefix, *k): v for k, v in sub.items()}, source, prefix))
            continue
        case.version = FORMAT_VERSION  # a suite's cases inherit the file's version
        case._path = path
        case._line = lines.get(prefix) if prefix else None
        cases.append(case)
    if problems:
        raise InvalidValue("\n".join(problems), field="path")
    _check_unique(cases)
    return cases


def _check_unique(cases: Iterable[Case]) -> None:
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            raise InvalidValue(f"case id {case.id!r} is used twice: {seen[case.id].where} and {case.where} "
                               "(ids must be unique across the cases of a run)", field="id")
        seen[case.id] = case


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The case files named: files as given, directories searched for ``*.yaml``/``*.yml``, sorted."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix in {".yaml", ".yml"} and f.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise InvalidValue(f"{p}: no such file or directory", field="path")
    return list(dict.fromkeys(found))


def load_cases(paths: Iterable[str | Path]) -> list[Case]:
    """Every case in ``paths`` (files or directories), ids checked to be unique."""
    cases: list[Case] = []
    problems: list[str] = []
    for f in case_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{f}: cannot read: {exc}")
            continue
        try:
            cases.extend(parse_cases(text, source=str(f), path=f))
        except InvalidValue as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidValue("\n".join(problems), field="path")
    _check_unique(cases)
    return cases


# -- writing ---------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line text (outputs, documents) as a literal block: readable and diff-able in review.
    style = "|" if "\n" in value and not any(c in value for c in "\r\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_ORDER = ("version", "id", "description", "incident", "feature", "category", "input", "context", "tools",
          "recorded", "assertions", "target")


def case_dict(case: Case) -> dict[str, Any]:
    """The case as the plain mapping written to its file (defaults and empty values left out)."""
    raw = case.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    raw["version"] = FORMAT_VERSION
    if not raw.get("context"):
        raw.pop("context", None)
    tools = raw.get("tools") or {}
    if not tools.get("declared"):
        tools.pop("declared", None)
    else:
        tools["declared"] = [t["name"] if set(t) == {"name"} else t for t in tools["declared"]]
    if not tools:
        raw.pop("tools", None)
    if raw.get("recorded") is not None and not raw["recorded"].get("tool_calls"):
        raw["recorded"].pop("tool_calls", None)
    return {k: raw[k] for k in _ORDER if k in raw}


def dump_case(case: Case, *, header: str | None = None) -> str:
    """The YAML text of a one-case file; ``header`` becomes leading comment lines."""
    text = yaml.dump(case_dict(case), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if header:
        text = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) + text
    return text


def write_case(case: Case, path: Path, *, header: str | None = None, overwrite: bool = False) -> str:
    """Write a one-case file (refusing to replace one unless ``overwrite``); returns its sha256 digest."""
    text = dump_case(case, header=header)
    parse_cases(text, source=str(path))  # what we write must read back
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("w" if overwrite else "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise InvalidValue(f"{path} already exists: keep it, or pass --force to replace it", field="path") from None
    case._path = path
    return digest(text.encode("utf-8"))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

