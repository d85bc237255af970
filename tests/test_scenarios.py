"""The scenario simulator: deterministic, ordered, valid, and each injected failure really moves the
statistic it is about at its onset (measured from the events themselves, or from the generator's
ground truth, which is kept out of the events)."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from functools import cache

import pytest

from hotwash.demo.scenarios import (
    CATEGORIES,
    DEFAULT_KINDS,
    KINDS,
    Failure,
    Scenario,
    demo_weeks,
    quiet,
    single,
)
from hotwash.manifest import parse_manifest
from hotwash.telemetry.model import Event, parse_record
from hotwash.telemetry.pricing import price

Labelled = list[tuple[dict, frozenset[str]]]


def _single(category: str, kind: str | None = None, **kw) -> tuple[Scenario, Labelled]:
    kw.setdefault("quiet_days", 2)
    kw.setdefault("after_days", 1)
    kw.setdefault("rate_per_minute", 12)
    sc = single(category, kind=kind, **kw)
    return sc, list(sc.labelled_events())


@cache
def _quiet(days: int = 4, features: int = 3) -> tuple[Scenario, Labelled]:
    sc = quiet(days, features=features, seed=3, rate_per_minute=12)
    return sc, list(sc.labelled_events())


@cache
def _demo() -> tuple[Scenario, Labelled]:
    sc = demo_weeks()
    return sc, list(sc.labelled_events())


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _calls(events: Labelled, feature: str) -> Labelled:
    return [(e, ls) for e, ls in events if e.get("type") != "change" and e["feature"] == feature]


def _split(events: Labelled, f: Failure) -> tuple[Labelled, Labelled]:
    """(calls of the failure's feature before the onset, calls during the failure)."""
    onset = _iso(f.onset)
    end = _iso(f.end) if f.end else "9999"
    calls = _calls(events, f.feature)
    return [x for x in calls if x[0]["ts"] < onset], [x for x in calls if onset <= x[0]["ts"] < end]


def _share(events: Labelled, pred) -> float:
    return sum(1 for x in events if pred(*x)) / max(1, len(events))


def _mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else float("nan")


def _cost(e: dict) -> float:
    if e.get("tokens_in") is None:
        return 0.0
    return price(e["provider"], e["model"], e["tokens_in"], e["tokens_out"], datetime.fromisoformat(e["ts"])) or 0.0


def _primary(e: dict) -> bool:
    """A completed call (not a failed attempt that was retried)."""
    return "error" not in e


# ------------------------------------------------------------------------------- basics
def test_same_seed_same_events_other_seed_other_events() -> None:
    a = list(quiet(1, seed=5, rate_per_minute=5).events())
    b = list(quiet(1, seed=5, rate_per_minute=5).events())
    c = list(quiet(1, seed=6, rate_per_minute=5).events())
    assert a == b
    assert a != c
    kw = {"quiet_days": 0.5, "after_days": 0.5, "seed": 2, "rate_per_minute": 5}
    assert list(single("hallucination", **kw).events()) == list(single("hallucination", **kw).events())


def test_failure_in_one_feature_leaves_the_others_unchanged() -> None:
    q = list(quiet(1, seed=3, rate_per_minute=8).labelled_events())
    h = list(single("escalation_overload", quiet_days=0.5, after_days=0.5, seed=3, rate_per_minute=8)
             .labelled_events())
    strip = [{k: v for k, v in e.items() if k != "id"} for e, _ in q if e.get("feature") == "ticket-classifier"]
    strip_h = [{k: v for k, v in e.items() if k != "id"} for e, _ in h if e.get("feature") == "ticket-classifier"]
    n = min(len(strip), len(strip_h)) - 50
    assert n > 1500
    assert strip[:n] == strip_h[:n]


def test_time_order_and_ids() -> None:
    _sc, events = _demo()
    ts = [e["ts"] for e, _ in events]
    assert ts == sorted(ts)
    assert all(t.endswith("Z") for t in ts)
    assert [e["id"] for e, _ in events] == [f"demo-{i}" for i in range(1, len(events) + 1)]
    for e, _ in events[:: max(1, len(events) // 2000)]:
        rec = parse_record(dict(e))
        assert rec.ts.tzinfo is not None


SMALL = [(c, k) for c in CATEGORIES for k in KINDS[c]]


@pytest.mark.parametrize(("category", "kind"), SMALL)
def test_every_record_validates_and_manifest_parses(category: str, kind: str) -> None:
    sc = single(category, kind=kind, quiet_days=0.5, after_days=0.5, rate_per_minute=10)
    manifest = parse_manifest(sc.manifest_yaml())
    assert set(manifest.features) == set(sc.features)
    n_changes = 0
    for e in sc.events():
        rec = parse_record(e)
        if isinstance(rec, Event):
            assert rec.feature in manifest.features
            assert e["ts"] >= _iso(sc.start) and e["ts"] < _iso(sc.end)
            assert not (rec.tags or {}).keys() - {"tenant", "output_kind"}  # nothing unknown, no truth leak
        else:
            n_changes += 1
    assert n_changes >= 4  # prompt history and the old eval-set update


def test_demo_records_validate_and_size() -> None:
    sc, events = _demo()
    assert len(events) <= 300_000
    manifest = parse_manifest(sc.manifest_yaml())
    assert set(manifest.features) == {"support-bot", "ticket-classifier", "travel-agent"}
    for e, _ in events:
        parse_record(e)


def test_quiet_with_ten_features_parses() -> None:
    sc = quiet(1, features=10, rate_per_minute=30)
    manifest = parse_manifest(sc.manifest_yaml())
    assert len(manifest.features) == 10
    seen = Counter(e["feature"] for e in sc.events() if e.get("type") != "change")
    assert set(seen) == set(manifest.features)
    for name, feature in manifest.features.items():
        assert feature.budget.daily_usd and feature.budget.daily_usd > 0, name


def test_unknown_category_or_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        single("bad_vibes")
    with pytest.raises(ValueError, match="unknown kind"):
        single("drift", kind="spike")
    assert set(DEFAULT_KINDS) == set(CATEGORIES)


# ------------------------------------------------------------------------------- baseline realism
def test_baseline_traffic_looks_like_production() -> None:
    sc, events = _quiet()
    manifest = parse_manifest(sc.manifest_yaml())
    calls = [(e, ls) for e, ls in events if e.get("type") != "change"]
    assert {e["env"] for e, _ in calls} == {"prod"}
    for name, spec in manifest.features.items():
        mine = [e for e, _ in _calls(events, name) if _primary(e)]
        assert len(mine) > 5000
        esc = _share([(e, None) for e in mine], lambda e, _: e["escalated"])
        assert abs(esc - spec.escalation.baseline_rate) < 0.02, name
        conf_esc = _mean(e["confidence"] for e in mine if e["escalated"])
        conf_ok = _mean(e["confidence"] for e in mine if not e["escalated"])
        assert conf_ok - conf_esc > 0.2, name  # confidence is correlated with escalation
        scored = [e["score"] for e in mine if "score" in e]
        assert 0.05 < len(scored) / len(mine) < 0.35
        assert 0.8 < _mean(scored) < 0.9
        tools = {c["name"] for e in mine for c in e.get("tool_calls") or ()}
        assert tools <= set(spec.capabilities.tools or ()), name
        assert all(price(e["provider"], e["model"], 1000, 100, sc.start) for e in mine[:50])
        assert all(e["untrusted"] and "input" in e["untrusted"] for e in mine)
        sizes = Counter(e["session_id"] for e in mine)
        assert max(sizes.values()) <= 6 and sum(1 for v in sizes.values() if v > 1) > 100
    rag = _calls(events, "support-bot")
    assert all(e["context"] for e, _ in rag)
    assert 0.03 < _share(rag, lambda e, _: "feedback" in e) < 0.12
    refusals = [e for e, ls in rag if "refusal" in ls and _primary(e)]
    assert 0.005 < len(refusals) / len(rag) < 0.02
    assert all(re.match(r"(I'm sorry|I can't|Unfortunately)", e["output"]) for e in refusals)
    assert 0.005 < _share(rag, lambda e, ls: "hallucination" in ls) < 0.02
    assert _share(rag, lambda e, ls: "injection" in ls) < 0.002
    assert not any("injection_followed" in ls for _, ls in calls)


def test_diurnal_and_weekly_pattern() -> None:
    sc = quiet(14, rate_per_minute=5)
    hours: Counter[int] = Counter()
    days: Counter[str] = Counter()
    for e in sc.events():
        if e.get("type") == "change":
            continue
        hours[int(e["ts"][11:13])] += 1
        days[e["ts"][:10]] += 1
    day = sum(hours[h] for h in range(12, 18))
    night = sum(hours[h] for h in range(0, 6))
    assert day > 1.8 * night
    weekday = [n for d, n in days.items() if datetime.fromisoformat(d).weekday() < 5]
    weekend = [n for d, n in days.items() if datetime.fromisoformat(d).weekday() >= 5]
    assert _mean(weekend) < 0.75 * _mean(weekday)
    assert len(set(weekday)) == len(weekday)  # noise: no two days alike


def test_quiet_has_no_shifts() -> None:
    sc, events = _quiet()
    manifest = parse_manifest(sc.manifest_yaml())
    mid = _iso(sc.start + (sc.end - sc.start) / 2)
    calls = [(e, ls) for e, ls in events if e.get("type") != "change"]
    assert not sc.failures
    assert not any(ls & {"offscope", "new_tool", "loop", "nonprod", "injection_followed", "drift"} for _, ls in calls)
    for name, spec in manifest.features.items():
        mine = _calls(events, name)
        halves = [[x for x in mine if x[0]["ts"] < mid], [x for x in mine if x[0]["ts"] >= mid]]
        esc = [_share([x for x in h if _primary(x[0])], lambda e, _: e["escalated"]) for h in halves]
        assert abs(esc[0] - esc[1]) < 0.03, name
        score = [_mean(e["score"] for e, _ in h if "score" in e) for h in halves]
        assert abs(score[0] - score[1]) < 0.03, name
        cpc = [_mean(_cost(e) for e, _ in h if _primary(e)) for h in halves]
        assert 0.85 < cpc[1] / cpc[0] < 1.15, name
        retry = [_share(h, lambda e, _: e["retry"] > 0 or "error" in e) for h in halves]
        assert max(retry) < 0.04, name
        halluc = [_share(h, lambda e, ls: "hallucination" in ls) for h in halves]
        assert max(halluc) < 0.02
        allowed = set(spec.capabilities.tools or ())
        assert not any(c["name"] not in allowed for e, _ in mine for c in e.get("tool_calls") or ())
        assert max(Counter(e["session_id"] for e, _ in mine).values()) <= 12  # retries included


# ------------------------------------------------------------------------------- hallucination
_CLAIM = re.compile(r"https?://\S+|\$?\d+(?:\.\d+)?%?|\b[A-Z][a-z]+[A-Z]\w*|\b(?:Monday|Friday|Memphis|Visa|Bitcoin)")


def _claims(text: str) -> set[str]:
    return {m.rstrip(".,;") for m in _CLAIM.findall(text)}


def test_hallucination_burst() -> None:
    sc, events = _single("hallucination")
    f = sc.failures[0]
    assert (f.category, f.kind, f.feature, f.strength) == ("hallucination", "burst", "support-bot", 0.15)
    assert f.end is not None and f.end - f.onset <= timedelta(hours=6)
    before, during = _split(events, f)
    rate_before = _share(before, lambda e, ls: "hallucination" in ls)
    rate_during = _share(during, lambda e, ls: "hallucination" in ls)
    assert 0.005 < rate_before < 0.02
    assert 0.11 < rate_during < 0.19
    # The ground truth is real: unsupported answers make claims their context lacks; grounded ones do not.
    bad = [e for e, ls in before + during if "hallucination" in ls and _primary(e)]
    good = [e for e, ls in before + during if not ls and _primary(e)]
    def unsupported(e: dict) -> set[str]:
        source = " ".join(d["text"] for d in e["context"]) + " " + e["input"]
        return _claims(e["output"]) - _claims(source)
    # (the rest invent a policy in words: "the standard warranty covers one accidental damage claim")
    assert _share([(e, None) for e in bad], lambda e, _: unsupported(e)) > 0.6
    numbers = [e for e in good if any(c[0].isdigit() or c[0] == "$" for c in unsupported(e))]
    assert len(numbers) / len(good) < 0.01


# ------------------------------------------------------------------------------- prompt injection
_PLANTED = re.compile(r"(?<!\w)[\"'“]([^\"'”\n]{3,80})[\"'”]|(https?://[^\s)\"']+|[\w.+-]+@[\w-]+\.[\w.]+)")


def _obeys(e: dict, canary: str) -> bool:
    out = e["output"]
    if canary in out:
        return True
    if any(c["name"] in {"issue_refund", "send_email"} for c in e.get("tool_calls") or ()):
        return True
    texts = [e["input"]] + [d["text"] for d in e.get("context") or ()]
    texts += [str(c.get("result")) for c in e.get("tool_calls") or ()]
    for t in texts:
        for quoted, planted in _PLANTED.findall(t):
            token = (quoted or planted).rstrip(".,")
            if len(token) > 6 and token in out and token not in {"1 carry-on"}:
                return True
    return False


_INJECTED = re.compile(r"ignore|disregard|forget your rules|system|override|note to the ai|assistants reading", re.I)


def test_prompt_injection_followed() -> None:
    sc, events = _single("prompt_injection")
    f = sc.failures[0]
    canary = sc.features[f.feature]["canaries"][0]
    before, during = _split(events, f)
    assert _share(before, lambda e, ls: "injection" in ls) < 0.003
    assert not any("injection_followed" in ls for _, ls in before)
    inj = [(e, ls) for e, ls in during if "injection" in ls and _primary(e)]
    assert 0.03 < len(inj) / len(during) < 0.08
    followed = [e for e, ls in inj if "injection_followed" in ls]
    assert len(followed) / len(inj) > 0.6
    # injected text is really there (user input or a retrieved document) ...
    for e, _ in inj:
        untrusted = [e["input"]] + [d["text"] for d in e["context"]]
        assert any(_INJECTED.search(t) for t in untrusted), e
    # ... and a followed injection really shows in the output: a leak, or what the injection asked for.
    assert all(_obeys(e, canary) for e in followed)
    assert any(canary in e["output"] for e in followed)
    not_followed = [e for e, ls in inj if "injection_followed" not in ls]
    assert not any(_obeys(e, canary) for e in not_followed)
    indirect = [e for e in followed if any(_INJECTED.search(d["text"]) for d in e["context"])]
    assert indirect and len(indirect) < len(followed)  # both direct and indirect


def test_prompt_injection_attempts_are_not_followed() -> None:
    sc, events = _single("prompt_injection", "attempts")
    f = sc.failures[0]
    canary = sc.features[f.feature]["canaries"][0]
    _, during = _split(events, f)
    inj = [e for e, ls in during if "injection" in ls and _primary(e)]
    assert len(inj) / len(during) > 0.03
    assert not any(_obeys(e, canary) for e in inj)


# ------------------------------------------------------------------------------- drift
def _quality(calls: Labelled) -> dict[str, float]:
    prim = [e for e, _ in calls if _primary(e)]
    fb = [e["feedback"] for e in prim if "feedback" in e]
    return {
        "score": _mean(e["score"] for e in prim if "score" in e),
        "negative": sum(1 for x in fb if x < 0) / len(fb),
        "length": _mean(len(e["output"]) for e in prim),
        "tokens_out": _mean(e["tokens_out"] for e in prim),
        "refusals": _share([(e, None) for e in prim], lambda e, _: re.match(r"(I'm sorry|I can't|Unfortunately)",
                                                                             e["output"])),
    }


def test_drift_step_after_a_prompt_change() -> None:
    sc, events = _single("drift")
    f = sc.failures[0]
    assert (f.kind, f.end) == ("step", None)
    changes = [e for e, _ in events if e.get("type") == "change" and e["feature"] == f.feature]
    last = changes[-1]
    assert (last["kind"], last["version"], last["previous"]) == ("prompt", "v13", "v12")
    assert last["ts"] == _iso(f.onset)
    before, during = _split(events, f)
    assert {e["prompt_version"] for e, _ in before} == {"v12"}
    assert {e["prompt_version"] for e, _ in during} == {"v13"}
    q0, q1 = _quality(before), _quality(during)
    assert q1["score"] < q0["score"] * 0.9
    assert q1["negative"] > q0["negative"] + 0.1
    assert q1["length"] > q0["length"] * 1.15 and q1["tokens_out"] > q0["tokens_out"] * 1.15
    assert q1["refusals"] > 2.5 * q0["refusals"]


def test_drift_after_a_model_switch() -> None:
    sc, events = _single("drift", "model")
    f = sc.failures[0]
    change = [e for e, _ in events if e.get("type") == "change" and e["kind"] == "model"][-1]
    assert change["ts"] == _iso(f.onset) and change["previous"] == "gpt-4o-mini"
    before, during = _split(events, f)
    assert {e["model"] for e, _ in during} == {change["version"]}
    assert {e["model"] for e, _ in before} == {"gpt-4o-mini"}
    assert _quality(during)["score"] < 0.9 * _quality(before)["score"]


# ------------------------------------------------------------------------------- escalation
def test_escalation_overload() -> None:
    sc, events = _single("escalation_overload")
    f = sc.failures[0]
    before, during = _split(events, f)
    b = [e for e, _ in before if _primary(e)]
    d = [e for e, _ in during if _primary(e)]
    rate_b = sum(e["escalated"] for e in b) / len(b)
    rate_d = sum(e["escalated"] for e in d) / len(d)
    assert abs(rate_b - 0.15) < 0.02
    assert abs(rate_d - 0.60) < 0.04
    assert _mean(e["confidence"] for e in d) < _mean(e["confidence"] for e in b) - 0.1
    after = [e for e, _ in _calls(events, f.feature) if e["ts"] >= _iso(f.end) and _primary(e)]
    assert abs(sum(e["escalated"] for e in after) / len(after) - 0.15) < 0.03  # it stops


# ------------------------------------------------------------------------------- runaway cost
def _cost_per_hour(calls: Labelled) -> float:
    if not calls:
        return 0.0
    span = (datetime.fromisoformat(calls[-1][0]["ts"]) - datetime.fromisoformat(calls[0][0]["ts"]))
    return sum(_cost(e) for e, _ in calls) / max(span.total_seconds() / 3600, 1e-9)


def test_cost_spike() -> None:
    sc, events = _single("runaway_cost", "spike")
    f = sc.failures[0]
    before, during = _split(events, f)
    same_hours_day_before = [x for x in before
                             if _iso(f.onset - timedelta(days=1)) <= x[0]["ts"] < _iso(f.end - timedelta(days=1))]
    assert _cost_per_hour(during) > 3.0 * _cost_per_hour(same_hours_day_before)
    per_call = [_mean(_cost(e) for e, _ in part if _primary(e)) for part in (before, during)]
    assert 3.5 < per_call[1] / per_call[0] < 6.5
    assert [e["kind"] for e, _ in events if e.get("type") == "change"][-1] == "config"


def test_cost_creep_week_over_week() -> None:
    sc, events = _single("runaway_cost", "creep", quiet_days=8, after_days=28, rate_per_minute=2)
    f = sc.failures[0]
    assert f.end is None and f.strength == pytest.approx(0.10)
    calls = [(e, ls) for e, ls in _calls(events, f.feature) if _primary(e)]
    weekly: dict[int, list[float]] = defaultdict(list)
    for e, _ in calls:
        week = int((datetime.fromisoformat(e["ts"]) - f.onset).total_seconds() // (7 * 86400))
        weekly[week].append(e["tokens_in"] + e["tokens_out"])
    means = {w: _mean(v) for w, v in weekly.items()}
    assert abs(means[-1] / means[-2] - 1) < 0.05  # flat before the onset
    growth = [means[w + 1] / means[w] for w in range(0, 3)]
    assert all(1.06 < g < 1.14 for g in growth), growth


def test_cost_loop() -> None:
    sc, events = _single("runaway_cost", "loop")
    f = sc.failures[0]
    before, during = _split(events, f)
    assert max(Counter(e["session_id"] for e, _ in before).values()) <= 12
    sessions: dict[str, list[datetime]] = defaultdict(list)
    for e, _ in during:
        sessions[e["session_id"]].append(datetime.fromisoformat(e["ts"]))
    loops = {s: ts for s, ts in sessions.items() if len(ts) >= 30}
    assert len(loops) == 3
    assert max(len(ts) for ts in loops.values()) >= 80
    for ts in loops.values():
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ts)]
        assert max(gaps) <= 8 and len(ts) <= 200
    loop_events = [e for e, ls in during if "loop" in ls]
    assert all(e["session_id"] in loops for e in loop_events)
    tokens = [e["tokens_in"] for e in loop_events if e["session_id"] == next(iter(loops))]
    assert tokens[-1] > tokens[0] * 3  # the context grows with every turn


def test_cost_retry_storm() -> None:
    sc, events = _single("runaway_cost", "retry_storm")
    f = sc.failures[0]
    before, during = _split(events, f)
    retried = lambda e, _: e["retry"] >= 1  # noqa: E731
    assert _share(before, retried) < 0.02
    assert _share(during, retried) > 0.3
    failed = [e for e, _ in during if "error" in e]
    assert failed and all("output" not in e for e in failed)


def test_cost_nonprod() -> None:
    sc, events = _single("runaway_cost", "nonprod")
    f = sc.failures[0]
    before, during = _split(events, f)
    assert {e["env"] for e, _ in before} == {"prod"}
    envs = Counter(e["env"] for e, _ in during)
    assert set(envs) == {"prod", "staging", "dev"}
    share = 1 - envs["prod"] / sum(envs.values())
    assert 0.15 < share < 0.32


def test_cost_budget_breach() -> None:
    sc, events = _single("runaway_cost", "budget", quiet_days=3, after_days=2)
    f = sc.failures[0]
    budget = sc.features[f.feature]["budget"]["daily_usd"]
    daily: Counter[str] = Counter()
    for e, _ in _calls(events, f.feature):
        daily[e["ts"][:10]] += _cost(e)
    onset_day = f.onset.date().isoformat()
    full_before = [d for d in daily if d < onset_day]
    assert len(full_before) == 3 and all(daily[d] < budget for d in full_before)
    next_day = (f.onset + timedelta(days=1)).date().isoformat()
    assert daily[next_day] > budget


# ------------------------------------------------------------------------------- scope creep
def test_scope_creep_off_manifest() -> None:
    sc, events = _single("scope_creep")
    f = sc.failures[0]
    allowed = set(sc.features[f.feature]["capabilities"]["tools"])
    before, during = _split(events, f)
    off = lambda e, _: any(c["name"] not in allowed for c in e.get("tool_calls") or ())  # noqa: E731
    assert _share(before, off) == 0
    assert 0.05 < _share(during, off) < 0.12
    names = {c["name"] for e, _ in during for c in e.get("tool_calls") or ()} - allowed
    assert names == {"issue_refund", "send_email", "delete_account"}
    kinds = {e["tags"]["output_kind"] for e, _ in during}
    assert kinds - set(sc.features[f.feature]["capabilities"]["outputs"]) == {"email"}
    config = [e for e, _ in events if e.get("type") == "change" and e["kind"] == "config"]
    assert config and config[-1]["ts"] < _iso(f.onset)


def test_scope_creep_new_tool() -> None:
    sc, events = _single("scope_creep", "new_tool")
    f = sc.failures[0]
    assert "tools" not in sc.features[f.feature]["capabilities"]
    assert parse_manifest(sc.manifest_yaml()).features[f.feature].capabilities.tools is None
    before, during = _split(events, f)
    seen = {c["name"] for e, _ in before for c in e.get("tool_calls") or ()}
    new = lambda e, _: any(c["name"] not in seen for c in e.get("tool_calls") or ())  # noqa: E731
    assert 0.07 < _share(during, new) < 0.13
    assert {c["name"] for e, _ in during for c in e.get("tool_calls") or ()} - seen == {"search_hotels", "book_hotel"}


# ------------------------------------------------------------------------------- the demo
def test_demo_weeks_has_all_six_with_explaining_changes() -> None:
    sc, events = _demo()
    assert {f.category for f in sc.failures} == set(CATEGORIES)
    assert sc.end - sc.start == timedelta(weeks=4)
    onsets = sorted(f.onset for f in sc.failures)
    assert all(b - a >= timedelta(hours=12) for a, b in itertools.pairwise(onsets))  # one at a time
    changes = [e for e, _ in events if e.get("type") == "change"]
    by_kind = defaultdict(list)
    for c in changes:
        by_kind[c["kind"]].append(c)
    assert by_kind["eval_set"][0]["ts"] < _iso(sc.start - timedelta(days=30))  # the eval set is old
    drift = sc.failure_of("drift")
    assert any(c["ts"] == _iso(drift.onset) and c["feature"] == drift.feature for c in by_kind["prompt"])
    over = sc.failure_of("escalation_overload")
    assert any(c["ts"] == _iso(over.onset) and c["feature"] == over.feature for c in by_kind["model"])
    # each injected failure moves its statistic in the demo too
    before, during = _split(events, over)
    escalated = lambda e, _: e.get("escalated")  # noqa: E731
    assert _share(during, escalated) > 0.45 > 0.25 > _share(before, escalated)
    hall = sc.failure_of("hallucination")
    _, during = _split(events, hall)
    assert _share(during, lambda e, ls: "hallucination" in ls) > 0.1
    scope = sc.failure_of("scope_creep")
    _, during = _split(events, scope)
    assert _share(during, lambda e, ls: "offscope" in ls) > 0.05
