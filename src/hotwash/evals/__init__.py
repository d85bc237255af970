"""Regression evals born from incidents: case files, assertions, targets, the runner and its reports.

    cases = load_cases(["evals/"])
    run = run_cases(cases, CallableTarget("myapp.bot:answer"), concurrency=4, timeout=30, retries=2)
    print(junit_xml(run))

:func:`evaluate_case` checks one case's assertions on a given :class:`TargetOutput` (pure), and
:func:`recorded_output` is the output a case recorded: together they say whether a case catches
the failure it was born from.
"""

from hotwash.evals.assertions import AssertionResult, CaseResult, evaluate_case
from hotwash.evals.cases import ASSERTION_TYPES, FORMAT_VERSION, Case, dump_case, load_cases, parse_cases, write_case
from hotwash.evals.from_incident import Proposal, add_from_incident, propose_cases
from hotwash.evals.promptfoo import export_promptfoo, promptfoo_config
from hotwash.evals.report import junit_xml, run_json
from hotwash.evals.runner import RunResult, run_cases
from hotwash.evals.targets import (
    CallableTarget,
    FakeTarget,
    OpenAITarget,
    RecordedTarget,
    Target,
    TargetError,
    TargetOutput,
    recorded_output,
    target_for,
)

__all__ = [
    "ASSERTION_TYPES",
    "FORMAT_VERSION",
    "AssertionResult",
    "CallableTarget",
    "Case",
    "CaseResult",
    "FakeTarget",
    "OpenAITarget",
    "Proposal",
    "RecordedTarget",
    "RunResult",
    "Target",
    "TargetError",
    "TargetOutput",
    "add_from_incident",
    "dump_case",
    "evaluate_case",
    "export_promptfoo",
    "junit_xml",
    "load_cases",
    "parse_cases",
    "promptfoo_config",
    "propose_cases",
    "recorded_output",
    "run_cases",
    "run_json",
    "target_for",
    "write_case",
]
