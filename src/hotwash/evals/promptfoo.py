"""Export regression cases to promptfoo's configuration format, for teams that already run promptfoo.

The file follows promptfoo's documented ``promptfooconfig.yaml``: ``prompts`` (one chat-format
prompt: optional system prompt, the retrieved documents, then the input), ``providers`` and
``tests`` (one per case, with ``vars``, ``assert`` and ``metadata``). Assertions with a promptfoo
equivalent become it (``contains``/``icontains``/``contains-all``, ``not-contains``, ``regex``,
``not-regex``, ``is-json`` with the schema, ``cost``); the others become a ``python`` assertion
that calls :func:`promptfoo_assert`, i.e. hotwash's own check, so the verdict is the same in both
tools (this needs hotwash installed in the Python that promptfoo runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import TypeAdapter

from hotwash.evals.cases import Assertion, Case, Contains, JsonSchema, MaxCost, NotContains, NotRegex, Regex
from hotwash.evals.targets import DEFAULT_ESCALATE_TOOLS, TargetOutput

__all__ = ["PROMPT", "export_promptfoo", "openai_provider", "promptfoo_assert", "promptfoo_config"]

# Nunjucks: `dump` JSON-encodes a value, so any input text stays valid chat JSON.
PROMPT = (
    '[{% if system %}{"role": "system", "content": {{ system | dump }}}, {% endif %}'
    '{% if documents %}{"role": "user", "content": {{ documents | dump }}}, {% endif %}'
    '{"role": "user", "content": {{ input | dump }}}]'
)

_CHECK = ("import json\nfrom hotwash.evals.promptfoo import promptfoo_assert\n"
          "return promptfoo_assert(json.loads({spec!r}), output, context)\n")


def _documents(case: Case) -> str:
    docs = [d for d in case.context if d.text.strip()]
    if not docs:
        return ""
    return "Documents:\n\n" + "\n\n".join(f"[{d.id or i}] {d.text}" for i, d in enumerate(docs))


def _python(a: Any) -> dict[str, Any]:
    spec = json.dumps(a.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True)
    return {"type": "python", "value": _CHECK.format(spec=spec)}


def _assertion(a: Any) -> dict[str, Any]:
    """One hotwash assertion as a promptfoo assertion."""
    if isinstance(a, Contains | NotContains):
        values = [a.value] if isinstance(a.value, str) else a.value
        base = ("i" if a.ignore_case else "") + "contains"
        if isinstance(a, Contains):
            kind = base if len(values) == 1 else f"{base}-all"
        else:
            kind = f"not-{base}" if len(values) == 1 else f"not-{base}-any"
        return {"type": kind, "value": values[0] if len(values) == 1 else values}
    if isinstance(a, Regex | NotRegex) and not a.ignore_case:
        # promptfoo compiles `value` as a JavaScript RegExp; patterns needing Python syntax or flags
        # go through the python check below.
        return {"type": "regex" if isinstance(a, Regex) else "not-regex", "value": a.value}
    if isinstance(a, JsonSchema):
        return {"type": "is-json", **({"value": a.json_schema} if a.json_schema else {})}
    if isinstance(a, MaxCost):
        return {"type": "cost", "threshold": a.value}
    return _python(a)


def _test(case: Case) -> dict[str, Any]:
    test: dict[str, Any] = {"description": case.description or case.id}
    variables: dict[str, Any] = {"input": case.input or "", "case_id": case.id}
    if case.context:
        variables["documents"] = _documents(case)
        variables["context_docs"] = [d.model_dump(exclude_none=True) for d in case.context]
    test["vars"] = variables
    test["assert"] = [_assertion(a) for a in case.assertions]
    meta = {"hotwash_case": case.id, "incident": case.incident, "feature": case.feature, "category": case.category}
    test["metadata"] = {k: v for k, v in meta.items() if v is not None}
    return test


def promptfoo_config(cases: Iterable[Case], *, provider: str | Mapping[str, Any] | None = None,
                     system: str | None = None, description: str | None = None) -> dict[str, Any]:
    """The promptfoo configuration as a mapping. ``provider``: a promptfoo provider id or object;
    default: the first case's own ``openai`` target, else ``openai:chat:gpt-4o-mini``."""
    cases = list(cases)
    if provider is None:
        spec = next((c.target.openai for c in cases if c.target and c.target.openai), None)
        provider = openai_provider(spec.base_url, spec.model, spec.api_key_env, cases) if spec else \
            "openai:chat:gpt-4o-mini"
    config: dict[str, Any] = {
        "description": description or f"hotwash regression cases ({len(cases)})",
        "prompts": [PROMPT],
        "providers": [provider],
    }
    if system:
        config["defaultTest"] = {"vars": {"system": system}}
    config["tests"] = [_test(c) for c in cases]
    return config


def openai_provider(base_url: str, model: str, api_key_env: str | None, cases: Iterable[Case]) -> dict[str, Any]:
    """promptfoo's OpenAI provider pointed at an OpenAI-compatible endpoint, offering the cases' tools."""
    config: dict[str, Any] = {"apiBaseUrl": base_url.rstrip("/").removesuffix("/chat/completions")}
    if api_key_env:
        config["apiKeyEnvar"] = api_key_env
    tools: dict[str, dict[str, Any]] = {}
    for case in cases:
        for t in case.tools.offered():
            tools.setdefault(t.name, {"type": "function", "function": {
                "name": t.name, **({"description": t.description} if t.description else {}),
                "parameters": t.parameters or {"type": "object", "properties": {}}}})
    if tools:
        config["tools"] = list(tools.values())
    return {"id": f"openai:chat:{model}", "config": config}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(c in value for c in "\r\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def export_promptfoo(cases: Iterable[Case], **kw: Any) -> str:
    """The promptfooconfig.yaml text for ``cases``."""
    config = promptfoo_config(cases, **kw)
    head = ("# yaml-language-server: $schema=https://promptfoo.dev/config-schema.json\n"
            "# Exported by `hotwash eval export --promptfoo`. Assertions without a promptfoo equivalent\n"
            "# run hotwash's own check through a python assertion (hotwash must be importable there).\n")
    return head + yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# -- the bridge promptfoo calls --------------------------------------------------------------------

_ASSERTION = TypeAdapter(Assertion)


def _output_from_promptfoo(output: Any, context: Mapping[str, Any]) -> TargetOutput:
    """promptfoo's ``output`` (text, or the tool calls of an OpenAI answer) and provider response
    as a TargetOutput."""
    calls: list[Any] = []
    text: str | None = None
    value = output
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and parsed and all(isinstance(c, dict) and ("function" in c or "name" in c)
                                                       for c in parsed):
            value = parsed
    if isinstance(value, list):
        calls = value
    elif isinstance(value, dict):
        calls = list(value.get("tool_calls") or [])
        text = value.get("content") if isinstance(value.get("content"), str) else None
    else:
        text = None if value is None else str(value)
    response = context.get("providerResponse") or {}
    usage = response.get("tokenUsage") or {}
    out = TargetOutput.coerce({"output": text, "tool_calls": calls})
    out.tokens_in = usage.get("prompt") if isinstance(usage.get("prompt"), int) else None
    out.tokens_out = usage.get("completion") if isinstance(usage.get("completion"), int) else None
    cost = response.get("cost")
    out.cost_usd = float(cost) if isinstance(cost, int | float) else None
    out.escalated = any(n in DEFAULT_ESCALATE_TOOLS for n in out.tool_names)
    return out


def promptfoo_assert(spec: Mapping[str, Any], output: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Run one hotwash assertion from inside promptfoo; returns promptfoo's GradingResult."""
    from hotwash.evals.assertions import check

    assertion = _ASSERTION.validate_python(dict(spec))
    variables = context.get("vars") or {}
    case = Case.model_validate({"id": str(variables.get("case_id") or "promptfoo"),
                                "input": variables.get("input"), "context": variables.get("context_docs") or [],
                                "assertions": [dict(spec)]})
    ok, reason = check(assertion, _output_from_promptfoo(output, context), case)
    return {"pass": ok, "score": 1.0 if ok else 0.0, "reason": reason}
