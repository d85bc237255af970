"""Reports of a run: a Rich console table, a JSON document, JUnit XML for CI."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from hotwash.evals.runner import RunResult

__all__ = ["junit_xml", "run_json", "summary_line", "table", "write_junit"]

_STYLE = {"passed": "[green]PASS[/]", "failed": "[red]FAIL[/]", "error": "[red]ERROR[/]"}
# Characters XML 1.0 cannot carry at all (outputs are arbitrary model text).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def table(run: RunResult, *, title: str | None = None) -> Table:
    """One row per case: verdict, time, attempts and why it did not pass. Case text is escaped:
    outputs and ids come from telemetry and files, not from us."""
    t = Table(title=title or f"hotwash eval · {escape(run.target)}", show_lines=False)
    t.add_column("case", overflow="fold")
    t.add_column("result")
    t.add_column("time", justify="right")
    t.add_column("tries", justify="right")
    t.add_column("why", overflow="fold")
    for r in run.results:
        why = r.error if r.error else "\n".join(a.message for a in r.failures)
        t.add_row(escape(r.case_id), _STYLE[r.status], f"{r.duration_s:.2f}s", str(r.attempts), escape(why))
    return t


def summary_line(run: RunResult) -> str:
    parts = [f"{run.passed} passed", f"{run.failed} failed"]
    if run.errors:
        parts.append(f"{run.errors} could not run")
    verdict = "[green]ok[/]" if run.ok else "[red]FAILED[/]"
    return f"{verdict}: {' · '.join(parts)} of {len(run.results)} in {run.duration_s:.2f}s"


def run_json(run: RunResult) -> dict[str, Any]:
    return run.to_dict()


def _x(text: str | None) -> str:
    return _NOT_XML.sub("\ufffd", text or "")


def junit_xml(run: RunResult, *, suite: str = "hotwash eval") -> str:
    """JUnit XML: one ``testcase`` per case; a failed assertion is a ``failure``, a target that could
    not answer an ``error``; the output goes to ``system-out``."""
    root = ET.Element("testsuites", name="hotwash", tests=str(len(run.results)), failures=str(run.failed),
                      errors=str(run.errors), time=f"{run.duration_s:.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(run.results)), failures=str(run.failed),
                       errors=str(run.errors), skipped="0", time=f"{run.duration_s:.3f}",
                       timestamp=run.started_at.strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(ts, "properties")
    ET.SubElement(props, "property", name="target", value=_x(run.target))
    for r in run.results:
        attrs = {"classname": f"hotwash.eval.{_x(r.feature or 'cases')}", "name": _x(r.case_id),
                 "time": f"{r.duration_s:.3f}"}
        if r.path:
            attrs["file"] = _x(r.path)
        tc = ET.SubElement(ts, "testcase", attrs)
        if r.status == "error":
            el = ET.SubElement(tc, "error", message=_x(r.error), type="TargetError")
            el.text = _x(r.error)
        elif r.status == "failed":
            failures = r.failures
            el = ET.SubElement(tc, "failure", message=_x(failures[0].message), type=failures[0].type)
            el.text = _x("\n".join(f"{a.type}: {a.message}" for a in failures))
        if r.output is not None:
            out = ET.SubElement(tc, "system-out")
            calls = ", ".join(r.output.tool_names)
            out.text = _x((r.output.output or "") + (f"\n[tool calls: {calls}]" if calls else ""))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(run), encoding="utf-8")
