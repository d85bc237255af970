"""The runner: replays cases against a target, concurrently, with timeouts and retries.

A target that cannot answer fails that case with the cause (``status: error``); it never stops the
run. Transient failures (timeouts, connection errors, HTTP 429/5xx) are retried with exponential
backoff, honouring a server's Retry-After.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hotwash.errors import HotwashError, InvalidValue
from hotwash.evals.assertions import CaseResult, evaluate_case
from hotwash.evals.cases import Case
from hotwash.evals.targets import RecordedTarget, Target, TargetError, TargetOutput, target_for

__all__ = ["RunResult", "run_cases"]

# The longest pause between two attempts, whatever a server's Retry-After asks for.
MAX_BACKOFF_S = 30.0


@dataclass(slots=True)
class RunResult:
    results: list[CaseResult]
    target: str
    duration_s: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def passed(self) -> int:
        return sum(r.status == "passed" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.results)

    @property
    def ok(self) -> bool:
        """Every case passed (an empty run is not a success: it proves nothing)."""
        return bool(self.results) and all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "target": self.target, "started_at": self.started_at,
                "duration_s": round(self.duration_s, 4), "total": len(self.results), "passed": self.passed,
                "failed": self.failed, "errors": self.errors, "cases": [r.to_dict() for r in self.results]}


def _with_deadline(target: Target, case: Case, timeout: float) -> TargetOutput:
    """Call the target in a daemon thread and stop waiting after ``timeout``: a Python target that
    hangs cannot be killed, but it no longer holds up the run (nor the interpreter's exit)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["out"] = target(case, timeout=timeout)
        except BaseException as exc:  # handed to the waiting thread
            box["exc"] = exc

    worker = threading.Thread(target=call, name=f"eval-{case.id}", daemon=True)
    worker.start()
    # A little grace, so that an HTTP target's own timeout (with its clearer message) fires first.
    worker.join(timeout + 0.25)
    if worker.is_alive():
        raise TargetError(f"{target.name} gave no answer within {timeout:g}s", retryable=True)
    if "exc" in box:
        raise box["exc"]
    out = box["out"]
    if not isinstance(out, TargetOutput):
        try:
            out = TargetOutput.coerce(out)
        except TypeError as exc:
            raise TargetError(f"{target.name} {exc}") from None
    return out


def _run_one(case: Case, target: Target, *, timeout: float, retries: int, backoff: float,
             sleep: Callable[[float], None]) -> CaseResult:
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            output = _with_deadline(target, case, timeout)
        except TargetError as exc:
            if exc.retryable and attempts <= retries:
                delay = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempts - 1)
                sleep(min(delay, MAX_BACKOFF_S))
                continue
            tries = f" (after {attempts} attempts)" if attempts > 1 else ""
            result = CaseResult(case_id=case.id, status="error", error=exc.reason + tries)
            break
        except Exception as exc:  # a target bug fails its case, not the run
            result = CaseResult(case_id=case.id, status="error",
                                error=f"{target.name} failed: {type(exc).__name__}: {exc}")
            break
        result = evaluate_case(case, output)
        break
    result.target = target.name
    result.attempts = attempts
    result.duration_s = time.monotonic() - started
    result.path = str(case.path) if case.path else None
    result.feature, result.category, result.incident = case.feature, case.category, case.incident
    return result


class _BrokenTarget:
    """Stands in for a case's own target that could not be built (e.g. its module does not import)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def __call__(self, case: Case, *, timeout: float) -> TargetOutput:
        raise TargetError(self.reason)


def run_cases(cases: Iterable[Case], target: Target | None = None, *, concurrency: int = 4, timeout: float = 30.0,
              retries: int = 2, backoff: float = 0.5, on_result: Callable[[CaseResult], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> RunResult:
    """Replay every case and check its assertions.

    ``target`` applies to every case; when None, each case uses its own ``target:`` key, else its
    recorded output. ``on_result`` is called (in the calling thread) as each case finishes.
    Results come back in the order of ``cases``."""
    cases = list(cases)
    if concurrency < 1:
        raise InvalidValue(f"concurrency must be at least 1, got {concurrency}", field="concurrency")
    if timeout <= 0:
        raise InvalidValue(f"timeout must be positive, got {timeout:g}", field="timeout")
    if retries < 0:
        raise InvalidValue(f"retries must be 0 or more, got {retries}", field="retries")
    own: dict[str, Target] = {}
    recorded = RecordedTarget()

    def target_of(case: Case) -> Target:
        if target is not None:
            return target
        if case.target is None:
            return recorded
        key = json.dumps(case.target.model_dump(mode="json"), sort_keys=True)
        if key not in own:
            try:
                own[key] = target_for(case.target)
            except HotwashError as exc:
                own[key] = _BrokenTarget(f"case target {key}", f"the case's target cannot be used: {exc}")
        return own[key]

    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    plan = [(case, target_of(case)) for case in cases]
    results: list[CaseResult | None] = [None] * len(plan)
    try:
        with ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(plan))),
                                thread_name_prefix="hotwash-eval") as pool:
            futures = {pool.submit(_run_one, case, tgt, timeout=timeout, retries=retries, backoff=backoff,
                                   sleep=sleep): i for i, (case, tgt) in enumerate(plan)}
            for fut in as_completed(futures):
                res = fut.result()
                results[futures[fut]] = res
                if on_result is not None:
                    on_result(res)
    finally:
        for t in own.values():
            close = getattr(t, "close", None)
            if close is not None:
                close()
    names = sorted({t.name for _, t in plan})
    label = target.name if target is not None else (", ".join(names) if names else "recorded")
    return RunResult(results=[r for r in results if r is not None], target=label,
                     duration_s=time.monotonic() - t0, started_at=started_at)
