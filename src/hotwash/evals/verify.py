"""The verify step's two proofs (``hotwash verify INC-3``), computed from stored data and kept.

Proof 1, ``regression``: each regression case of the incident (indexed by ``hotwash eval add
--from``) FAILS on the bad output it recorded, so it really catches the failure, and PASSES on the
current target (``--target``, else the case's own ``target:``). Where no target is configured it
must pass on recorded healthy outputs of the same feature from before the incident (calls without
a finding of the incident's category), so that the case is not simply always failing. Healthy
traffic has its own noise (a fifth of tickets go to people on a normal day), so a majority of those
outputs must pass.

Proof 2, ``monitor``: the incident's stored monitors (``hotwash monitor add --from``), replayed by
the monitor engine over the incident's stored telemetry, fire; the lead time is how much earlier
than the real detection (positive: earlier), and false alarms are their signals on the quiet days
before the incident. It holds when every monitor fires and none raised a false alarm.

Each run stores one row per proof (table ``proofs``); the incident moves to ``verified`` only from
``postmortem`` and only when both newest proofs are ok (the playbook checks that guard itself).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hotwash.errors import HotwashError
from hotwash.evals.assertions import evaluate_case
from hotwash.evals.cases import Case, case_dict, digest, parse_cases
from hotwash.evals.monitor_from_incident import (
    DEFAULT_AFTER,
    DEFAULT_QUIET_DAYS,
    incident_windows,
    replay,
    stored_rule,
)
from hotwash.evals.runner import run_cases
from hotwash.evals.targets import Target, TargetOutput, recorded_output
from hotwash.manifest import Manifest
from hotwash.store import Store

__all__ = ["HEALTHY_SAMPLE", "monitor_proof", "regression_proof", "run_verify"]

# How many healthy pre-incident outputs a case is checked on when there is no target.
HEALTHY_SAMPLE = 20


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None


# ---------------------------------------------------------------------------------------- proof 1
def _load_case(row: Mapping[str, Any]) -> tuple[Case | None, str | None, bool]:
    """(case, problem, modified) for one row of the case index."""
    path = Path(row["path"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{path}: cannot read the case file: {exc.strerror or exc}", False
    modified = digest(data) != row["digest"]
    try:
        cases = parse_cases(data.decode("utf-8"), source=str(path), path=path)
    except UnicodeDecodeError as exc:
        return None, f"{path}: not UTF-8 text: {exc}", modified
    except HotwashError as exc:
        return None, str(exc), modified
    case = next((c for c in cases if c.id == row["id"]), None)
    if case is None:
        return None, f"{path}: no case with id {row['id']!r} in the file any more", modified
    return case, None, modified


def _healthy_events(store: Store, feature: str, category: str, before: datetime, limit: int) -> list[dict[str, Any]]:
    """The newest calls of ``feature`` before ``before`` with an output and no finding of ``category``."""
    found: deque[dict[str, Any]] = deque(maxlen=limit)
    for span in (timedelta(hours=6), timedelta(days=DEFAULT_QUIET_DAYS)):
        found.clear()
        it = store.iter_events(feature=feature, since=before - span, until=before)
        try:
            for ev in itertools.islice(it, 200_000):
                if ev.get("output") is None and not ev.get("tool_calls"):
                    continue
                if any(f.get("category") == category for f in ev.get("findings") or ()):
                    continue
                found.append(ev)
        finally:
            getattr(it, "close", lambda: None)()
        if len(found) >= limit:
            break
    return list(found)


def _as_healthy_case(case: Case, event: Mapping[str, Any]) -> Case | None:
    """The case asked the healthy call's own question (its input and context), or None if the
    case's assertions cannot judge that call (e.g. grounding without any context)."""
    raw = case_dict(case)
    raw.pop("recorded", None)
    raw.pop("target", None)
    raw["input"] = event.get("input")
    raw["context"] = [{"id": d.get("id") or f"doc-{i}", "text": d["text"]}
                      for i, d in enumerate(event.get("context") or ())
                      if isinstance(d, Mapping) and isinstance(d.get("text"), str)]
    try:
        return Case.model_validate(raw)
    except ValidationError:
        return None


def _on_healthy(store: Store, case: Case, feature: str, category: str, before: datetime) -> dict[str, Any]:
    judged, failures = 0, []
    passed = 0
    for ev in _healthy_events(store, feature, category, before, HEALTHY_SAMPLE):
        variant = _as_healthy_case(case, ev)
        if variant is None:
            continue
        judged += 1
        result = evaluate_case(variant, TargetOutput.from_event(ev))
        if result.passed:
            passed += 1
        elif len(failures) < 3:
            failures.append({"event": ev["id"], "reason": result.reason})
    ok = judged > 0 and passed * 2 > judged
    if judged == 0:
        why = (f"no healthy output of {feature} before the incident could be judged by this case: configure a "
               "target (--target module:function) to prove it passes")
    else:
        why = f"passes on {passed} of {judged} healthy outputs of {feature} from before the incident"
    return {"ok": ok, "passed": passed, "judged": judged, "failures": failures, "reason": why}


def regression_proof(store: Store, manifest: Manifest, incident: Mapping[str, Any], *,
                     target: Target | None = None, timeout: float = 30.0, retries: int = 1) -> dict[str, Any]:
    """Proof 1 for ``incident`` (its public dict). ``target`` overrides each case's own ``target:``."""
    ref = incident["id"]
    rows = store.list_eval_cases(incident_id=incident["number"])
    if not rows:
        return {"ok": False, "cases": [], "reason": f"{ref} has no regression case: write one with "
                                                    f"`hotwash eval add --from {ref}`"}
    entries: list[dict[str, Any]] = []
    loaded: list[tuple[dict[str, Any], Case]] = []
    for row in rows:
        entry: dict[str, Any] = {"id": row["id"], "path": row["path"], "fails_on_recorded": False,
                                 "passes_on_target": False, "target": None, "details": {}}
        entries.append(entry)
        case, problem, modified = _load_case(row)
        entry["details"]["modified_since_indexed"] = modified
        if case is None:
            entry["details"]["error"] = problem
            continue
        try:
            bad = evaluate_case(case, recorded_output(case))
        except HotwashError as exc:  # no recorded output in the file
            entry["details"]["recorded"] = {"status": "error", "reason": str(exc)}
        else:
            entry["fails_on_recorded"] = bad.status == "failed"
            entry["details"]["recorded"] = {
                "status": bad.status,
                "reason": bad.reason if bad.status == "failed" else
                "every assertion passes on the recorded bad output: the case does not catch the failure"}
        loaded.append((entry, case))
    # Cases with a real target (the run's, else their own), replayed concurrently by the runner.
    own = [(e, c) for e, c in loaded if target is not None or (c.target is not None and not c.target.recorded)]
    if own:
        run = run_cases([c for _, c in own], target, timeout=timeout, retries=retries)
        for (entry, _), res in zip(own, run.results, strict=True):
            entry["target"] = res.target
            entry["passes_on_target"] = res.passed
            entry["details"]["target"] = {"status": res.status, "reason": res.reason or None}
    try:
        start: datetime | None = incident_windows(store, incident).start
        no_start = ""
    except HotwashError as exc:  # no telemetry at all
        start, no_start = None, str(exc)
    for entry, case in loaded:
        if entry["target"] is not None:
            continue
        feature = case.feature or incident["feature"]
        entry["target"] = f"healthy outputs of {feature} before {ref}"
        if start is None:
            entry["details"]["healthy"] = {"ok": False, "reason": no_start}
            continue
        healthy = _on_healthy(store, case, feature, case.category or incident["category"], start)
        entry["passes_on_target"] = healthy["ok"]
        entry["details"]["healthy"] = healthy
    for entry in entries:
        entry["ok"] = bool(entry["fails_on_recorded"] and entry["passes_on_target"])
    return {"ok": all(e["ok"] for e in entries), "cases": entries}


# ---------------------------------------------------------------------------------------- proof 2
def monitor_proof(store: Store, manifest: Manifest, incident: Mapping[str, Any], *,
                  quiet_days: float = DEFAULT_QUIET_DAYS, after: timedelta = DEFAULT_AFTER) -> dict[str, Any]:
    """Proof 2 for ``incident`` (its public dict): its stored monitors replayed over its telemetry."""
    ref = incident["id"]
    rows = store.list_stored_monitors(incident_id=incident["number"], enabled=True)
    empty: dict[str, Any] = {"ok": False, "monitors": [], "lead_time_s": None, "false_alarms": 0, "fired_at": None}
    if not rows:
        return {**empty, "reason": f"{ref} has no stored monitor: propose one with `hotwash monitor add --from {ref}`"}
    try:
        windows = incident_windows(store, incident, quiet_days=quiet_days, after=after)
    except HotwashError as exc:
        return {**empty, "reason": str(exc)}
    rules = [stored_rule(r) for r in rows]
    results = replay(store, manifest, rules, windows)
    monitors = []
    for rule in rules:
        res = results[rule.name]
        lead = res.lead_time_s(windows.detected)
        monitors.append({"name": rule.name, "rule": rule.model_dump(mode="json"), "fired": res.fired_at is not None,
                         "fired_at": _iso(res.fired_at), "lead_time_s": lead, "false_alarms": res.false_alarms,
                         "false_alarm_at": [_iso(t) for t in res.false_alarm_at[:20]], "summary": res.summary,
                         "evidence": res.evidence, "ok": res.fired_at is not None and res.false_alarms == 0})
    fired = [results[r.name].fired_at for r in rules if results[r.name].fired_at is not None]
    first = min(fired) if fired else None
    out = {"ok": all(m["ok"] for m in monitors), "monitors": monitors,
           "lead_time_s": (windows.detected - first).total_seconds() if first else None,
           "false_alarms": sum(m["false_alarms"] for m in monitors), "fired_at": _iso(first), **windows.to_json()}
    silent = [m["name"] for m in monitors if not m["fired"]]
    noisy = [m["name"] for m in monitors if m["false_alarms"]]
    if silent:
        out["reason"] = f"{', '.join(silent)} did not fire over the incident window"
    elif noisy:
        out["reason"] = f"{', '.join(noisy)} fired on the quiet days before the incident"
    return out


# ---------------------------------------------------------------------------------------- the step
def run_verify(store: Store, manifest: Manifest, ref: int | str, *, actor: str, target: Target | None = None,
               quiet_days: float = DEFAULT_QUIET_DAYS, timeout: float = 30.0, now: datetime | None = None
               ) -> dict[str, Any]:
    """Compute and store both proofs, note them on the timeline, and move the incident to
    ``verified`` if it is in ``postmortem`` and both hold. Any state may compute them."""
    from hotwash.incidents.service import get_incident, step

    incident = get_incident(store, ref)
    number = incident["number"]
    monitor = monitor_proof(store, manifest, incident, quiet_days=quiet_days)
    regression = regression_proof(store, manifest, incident, target=target, timeout=timeout)
    ts = now or datetime.now(UTC)
    store.save_proof(incident_id=number, kind="regression", ok=regression["ok"], data=regression, now=ts)
    store.save_proof(incident_id=number, kind="monitor", ok=monitor["ok"], data=monitor, now=ts)
    store.add_timeline(incident_id=number, ts=ts, actor=actor, kind="proof", text=summary(incident["id"], regression,
                                                                                         monitor),
                       data={"regression": regression["ok"], "monitor": monitor["ok"],
                             "lead_time_s": monitor["lead_time_s"], "false_alarms": monitor["false_alarms"]})
    status = incident["status"]
    if status == "postmortem" and regression["ok"] and monitor["ok"]:
        status = step(store, manifest, number, "verify", actor=actor, now=ts,
                      text="both proofs hold: the regression cases catch the failure and the new monitor "
                           "fires on the incident's data")["status"]
    return {"incident": incident["id"], "regression": regression, "monitor": monitor, "status": status,
            "verified": status == "verified"}


def summary(ref: str, regression: Mapping[str, Any], monitor: Mapping[str, Any]) -> str:
    """One line per proof, for the timeline and the console."""
    cases: Sequence[Mapping[str, Any]] = regression.get("cases") or []
    good = sum(1 for c in cases if c.get("ok"))
    reg = (f"regression proof {'holds' if regression['ok'] else 'FAILS'}: {good} of {len(cases)} case(s) fail on "
           "the recorded output and pass on the target" if cases else
           f"regression proof FAILS: {regression.get('reason', 'no case')}")
    if monitor.get("fired_at"):
        lead = monitor["lead_time_s"]
        when = f"{abs(lead) / 60:.0f} min {'earlier' if lead >= 0 else 'later'} than the real detection"
        mon = (f"monitor proof {'holds' if monitor['ok'] else 'FAILS'}: fires at {monitor['fired_at']}, {when}, "
               f"{monitor['false_alarms']} false alarm(s) on the quiet days")
    else:
        mon = f"monitor proof FAILS: {monitor.get('reason', 'no monitor fired')}"
    return f"{ref}: {reg}; {mon}"
