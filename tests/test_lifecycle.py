"""The playbook's transition table, and random walks through it: pure, then against the store on
both databases (guards, milestones, versions, nothing written by a refused step)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotwash.errors import IllegalTransition
from hotwash.incidents import lifecycle, service
from hotwash.incidents.lifecycle import EVENTS, OPEN_STATES, STATES, allowed, transition
from hotwash.manifest import Manifest, parse_manifest
from hotwash.store import Store
from hotwash.store.tables import actions, proofs

PATH = list(zip(STATES, ("contain", "communicate", "diagnose", "mitigate", "postmortem", "verify", "close"),
                strict=False))


def test_the_happy_path_visits_every_state_in_order() -> None:
    state = "detected"
    seen = [state]
    for event in ("contain", "communicate", "diagnose", "mitigate", "postmortem", "verify", "close"):
        t = transition(state, event)
        assert t.milestones == (f"{t.state}_at",)
        assert any(e.kind == "timeline" for e in t.effects)
        state = t.state
        seen.append(state)
    assert seen == list(STATES)


def test_contain_is_allowed_from_every_open_state_and_only_the_first_moves() -> None:
    assert transition("detected", "contain").state == "contained"
    for state in OPEN_STATES[1:]:
        t = transition(state, "contain")
        assert t.state == state
        assert [e.kind for e in t.effects] == ["flag", "milestone"]  # the flag change is the record
        assert t.milestones == ("contained_at",)


def test_guards_are_data() -> None:
    assert transition("postmortem", "verify").guards == ("proofs",)
    assert transition("verified", "close").guards == ("actions_resolved",)
    assert transition("diagnosed", "mitigate").guards == ()


def test_illegal_transition_names_the_allowed_steps() -> None:
    with pytest.raises(IllegalTransition) as info:
        transition("mitigated", "verify")
    exc = info.value
    assert (exc.state, exc.event, exc.allowed) == ("mitigated", "verify", ["contain", "postmortem"])
    assert "cannot verify an incident that is mitigated" in str(exc)
    assert "allowed now: contain, postmortem" in str(exc)
    with pytest.raises(IllegalTransition, match="closed; nothing more") as info:
        transition("closed", "contain")
    assert info.value.allowed == []
    with pytest.raises(IllegalTransition, match="unknown playbook step 'resolve'"):
        transition("detected", "resolve")
    with pytest.raises(ValueError, match="unknown incident state"):
        transition("open", "contain")


def test_allowed_lists_follow_the_table() -> None:
    assert allowed("detected") == ["contain", "communicate"]
    assert allowed("contained") == ["contain", "communicate"]
    assert allowed("communicated") == ["contain", "diagnose"]
    assert allowed("verified") == ["contain", "close"]
    assert allowed("closed") == []
    for state in STATES:
        for event in EVENTS:
            assert ((state, event) in lifecycle.TABLE) == (event in allowed(state))


@given(st.lists(st.sampled_from(EVENTS), max_size=40))
def test_random_walks_over_the_pure_table(events: list[str]) -> None:
    state = "detected"
    reached = {"detected"}
    for event in events:
        if state == "closed":
            with pytest.raises(IllegalTransition):
                transition(state, event)
            continue
        assert "contain" in allowed(state)  # containment is always one action away while open
        try:
            t = transition(state, event)
        except IllegalTransition as exc:
            assert exc.allowed == allowed(state) and event not in exc.allowed
            continue
        # States only move forward along the playbook.
        assert STATES.index(t.state) >= STATES.index(state)
        if t.state != state:
            assert f"{t.state}_at" in t.milestones
        state = t.state
        reached.add(state)
    assert state in reached


# -- random walks against the store ---------------------------------------------------------------
MOVES = (*EVENTS, "add_proofs", "break_proof", "add_action", "resolve_actions", "note")
_clock = itertools.count()
T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
MANIFEST = parse_manifest("features:\n  bot:\n    containment: {fallback: human}\n")


def _tick() -> datetime:
    return T0 + timedelta(seconds=next(_clock))


def _timeline_len(store: Store, number: int) -> int:
    return len(store.list_timeline(number))


def _take(store: Store, manifest: Manifest, number: int, event: str, now: datetime) -> dict[str, Any]:
    if event == "contain":
        return service.contain(store, manifest, number, mode="human", actor="resp", now=now)
    if event == "mitigate":
        return service.mitigate(store, manifest, number, description="revert", link="prompt:v11", actor="resp",
                                now=now)
    return service.step(store, manifest, number, event, actor="resp", now=now)


def _side_move(store: Store, number: int, move: str, now: datetime) -> None:
    with store.transaction() as conn:
        if move in ("add_proofs", "break_proof"):
            ok = move == "add_proofs"
            for kind in ("regression", "monitor") if ok else ("monitor",):
                conn.execute(proofs.insert().values(incident_id=number, kind=kind, ok=ok, data={}, created_at=now))
        elif move == "add_action":
            conn.execute(actions.insert().values(incident_id=number, title="add a regression case", kind="monitoring",
                                                 owner="ana", due_at=now, status="open", created_at=now,
                                                 updated_at=now))
        elif move == "resolve_actions":
            conn.execute(actions.update().where(actions.c.incident_id == number).values(status="done"))


def _proofs_ok(store: Store, number: int) -> bool:
    status = store.newest_proof_status(number)
    return status.get("regression") is True and status.get("monitor") is True


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.sampled_from(MOVES), min_size=1, max_size=16))
def test_random_walks_keep_the_invariants(store: Store, moves: list[str]) -> None:
    inc = service.open_incident(store, MANIFEST, title="walk", category="drift", severity="SEV3", features=["bot"],
                                actor="t", now=_tick())
    number = inc["number"]
    row = store.incident_row(number)
    assert row is not None and row["status"] == "detected" and row["version"] == 1
    first_reached: dict[str, datetime] = {"detected": row["detected_at"]}
    first_contained: datetime | None = None
    for move in moves:
        now = _tick()
        before = store.incident_row(number)
        assert before is not None
        if move not in EVENTS:
            if move == "note":
                service.add_note(store, number, text="n", actor="t", now=now)
                after = store.incident_row(number)
                assert after is not None and after["version"] == before["version"] + 1
            else:
                _side_move(store, number, move, now)
            continue
        state = before["status"]
        n_entries = _timeline_len(store, number)
        expected_ok = move in allowed(state)
        if move == "verify" and expected_ok:
            expected_ok = _proofs_ok(store, number)
        if move == "close" and expected_ok:
            expected_ok = not store.open_action_rows(number)
        if state in OPEN_STATES:
            assert "contain" in allowed(state)
        try:
            _take(store, MANIFEST, number, move, now)
        except IllegalTransition as exc:
            assert not expected_ok, f"{move} refused in {state}: {exc}"
            assert exc.state == state and move not in exc.allowed
            # A refused step leaves the incident and its timeline exactly as they were.
            assert store.incident_row(number) == before
            assert _timeline_len(store, number) == n_entries
            continue
        assert expected_ok, f"{move} accepted in {state}"
        after = store.incident_row(number)
        assert after is not None
        assert after["version"] == before["version"] + 1
        assert after["status"] == transition(state, move).state
        if move == "contain" and first_contained is None:
            first_contained = now
        if after["status"] not in first_reached:
            first_reached[after["status"]] = now
        # Milestones are stamped once, when first reached, and never move afterwards.
        for s in STATES[1:]:
            column = f"{s}_at"
            want = first_contained if s == "contained" else first_reached.get(s)
            assert after[column] == want, (column, after[column], want)
    final = store.incident_row(number)
    assert final is not None
    if final["status"] == "closed":
        for event in EVENTS:  # closed is terminal
            with pytest.raises(IllegalTransition):
                _take(store, MANIFEST, number, event, _tick())
        assert store.incident_row(number) == final
    # The states reached, in the order reached, follow the playbook; so do their times.
    reached = sorted(first_reached, key=STATES.index)
    times = [first_reached[s] for s in reached]
    assert times == sorted(times)
