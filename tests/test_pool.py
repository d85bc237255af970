"""The per-event checks spread over worker processes give exactly the verdicts of the inline checker."""

from __future__ import annotations

import itertools

from hotwash.demo.scenarios import single
from hotwash.detect.checks import EventChecker
from hotwash.detect.pool import MIN_PARALLEL, ParallelChecker
from hotwash.manifest import parse_manifest
from hotwash.telemetry.model import Event, parse_record


def test_parallel_verdicts_equal_inline_verdicts() -> None:
    scenario = single("prompt_injection", quiet_days=0.5, seed=3)
    manifest = parse_manifest(scenario.manifest_yaml())
    records = (parse_record(obj) for obj in scenario.events())
    events = [r for r in itertools.islice(records, 6000) if isinstance(r, Event)]
    assert len(events) > 2 * MIN_PARALLEL
    inline = EventChecker(manifest).check_many(events)
    with ParallelChecker(manifest, workers=2) as pool:
        parallel = pool.check_many(events)
        assert pool._pool is not None, "a batch this size must go to the workers"
        small = pool.check_many(events[:10])
    assert parallel == inline
    assert small == inline[:10]
    # The sample holds real findings, so equality is not two empty lists agreeing.
    assert sum(bool(v.findings) for v in inline) > 50
    assert any(f.category == "prompt_injection" and f.flagged for v in inline for f in v.findings)
