"""The demo's team works the detected incidents through the playbook, as people would.

Four people look after three AI features: ana leads the support bot (RAG), ben the travel agent
(tools), chidi the ticket classifier; dana communicates. The weeks of simulated traffic are
replayed in time order: each stored signal arrives at its detection time and goes through the
incident policy (:func:`hotwash.incidents.service.on_signals`, which also auto-contains what the
manifest says); each incident it opens gets its story (:data:`STORIES`) played at plausible times
after detection: the lead takes it and contains it, dana posts status updates, the lead diagnoses
(the questions come pre-filled from telemetry; one answer is written by hand), mitigates with a
link, drafts the postmortem; regression cases and a monitor are derived from the incident and
verified; postmortems are filled in, reviewed, published and read; actions are done, deferred or
left open; one incident is closed.

Every step goes through the services the CLI, API and UI use; nothing writes rows directly. Each
step is dated in the simulated past (``now=``), never later than the real ``now``.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hotwash.actions import service as actions
from hotwash.containment import flags
from hotwash.errors import HotwashError
from hotwash.evals import monitor_from_incident
from hotwash.evals.from_incident import add_from_incident
from hotwash.evals.verify import run_verify
from hotwash.incidents import communicate, diagnose
from hotwash.incidents import service as incidents
from hotwash.manifest import Manifest
from hotwash.postmortems import service as postmortems
from hotwash.postmortems.markdown import Action, Postmortem, parse, render
from hotwash.store import Store

__all__ = ["LEADS", "PEOPLE", "STORIES", "Story", "run_playbook"]

PEOPLE = ("ana", "ben", "chidi", "dana")
LEADS = {"support-bot": "ana", "travel-agent": "ben", "ticket-classifier": "chidi"}
COMMUNICATOR = "dana"
# Who reviews and publishes the postmortems of each feature (someone outside its team).
REVIEWERS = {"support-bot": "ben", "travel-agent": "ana", "ticket-classifier": "dana"}
EVALS_DIR = Path("evals")
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Story:
    """How the team handles one incident.

    ``fate``: how far the postmortem gets: ``closed`` (published, actions resolved, incident
    closed), ``published``, ``in_review`` or ``draft``. ``verify``: derive regression cases and a
    monitor and run the verify step. ``mode`` None: the manifest auto-contains it.
    """

    mode: str | None
    reason: str  # why this containment (on the flag and the timeline)
    cause: str  # what the diagnosis found, in a line
    mitigation: str
    link: str
    root_cause: str
    contributing: str
    lessons: str
    fate: str = "draft"
    verify: bool = False
    params: Mapping[str, Any] | None = None
    contain_after: timedelta = 10 * MIN
    customer_update: bool = False
    diagnosis: tuple[str, str] | None = None  # (question, a person's answer)
    keep_contained: bool = False  # the flag stays in the containment mode (the fix is still out)
    author: str | None = None  # default: the lead
    overdue_action: str | None = None  # the kind of the action left open past its due date


STORIES: dict[tuple[str, int], Story] = {
    ("runaway_cost", 1): Story(
        mode=None, fate="closed", verify=True,
        reason="auto-containment",
        cause="a session retried an empty flight search in a loop, with no cap on calls per session",
        mitigation="Cap the agent at 25 model calls per session and end a session after three empty flight "
                   "searches",
        link="https://github.com/acme/travel-agent/pull/482",
        root_cause="The agent runtime had no limit on model calls per session: when a flight search came back "
                   "empty the agent retried the same search, and nothing stopped a session that kept calling "
                   "the model.",
        contributing="The daily budget only warns once the day's spend is over it, and the eval set had no case "
                     "with an empty search result.",
        lessons="An agent needs a per-session budget enforced by the runtime, not only a daily budget on a "
                "dashboard. An empty tool result is a normal input and belongs in the eval set.",
    ),
    ("hallucination", 1): Story(
        mode="human", fate="published", verify=True, customer_update=True, contain_after=9 * MIN,
        overdue_action="documentation",
        reason="route support questions to the human agents while answers are unsupported",
        cause="partial retrieval during the index rebuild; the prompt allows answers without a source",
        mitigation="Serve answers from the previous index snapshot while the retrieval index rebuilds, and "
                   "answer 'I don't know' when no passage supports the claim",
        link="https://github.com/acme/support-bot/pull/1204",
        root_cause="During the retrieval index rebuild, searches returned partial context, and the prompt let "
                   "the model answer from memory when no retrieved passage supported the claim.",
        contributing="The index rebuild ran during business hours, and the grounding check samples answers, so "
                     "the first unsupported answers reached customers before the rate crossed its threshold.",
        lessons="Grounding has to be enforced when the context is missing: an empty or partial retrieval "
                "should lead to a hand-off, not to an answer.",
    ),
    ("prompt_injection", 1): Story(
        mode="disabled", fate="in_review", verify=True, customer_update=True, contain_after=4 * MIN,
        author="dana",
        reason="injected instructions were followed, with an off-manifest tool call",
        cause="hidden instructions in a poisoned help-centre article and a forum post were followed",
        mitigation="Remove the poisoned help-centre article and forum post, and pass retrieved text to the "
                   "model as quoted data",
        link="https://github.com/acme/support-bot/pull/1211",
        root_cause="Retrieved help-centre and forum text reached the prompt with the authority of the system "
                   "prompt, so hidden instructions in a poisoned article were followed, including a tool call "
                   "outside the manifest.",
        contributing="Community forum posts were indexed without review, and the tool allowlist lived in the "
                     "prompt rather than in the runtime.",
        lessons="Everything retrieved is untrusted input, and capabilities are enforced in code, outside the "
                "model.",
    ),
    ("escalation_overload", 1): Story(
        mode="rollback", fate="published", verify=True, customer_update=True, contain_after=13 * MIN,
        params={"model": "claude-3-5-haiku-20241022", "prompt_version": "c3"},
        reason="pin the previous model: the new one sends most tickets to triage",
        diagnosis=("rate_by_version",
                   "Confirmed with the triage leads: the jump starts with the switch to claude-3-haiku at 13:30; "
                   "the c3 prompt did not change. The new model reports lower confidence on the same tickets, "
                   "so the 0.7 threshold tuned for claude-3-5-haiku sends most of them to people."),
        cause="the claude-3-haiku switch lowered confidence below the escalation threshold",
        mitigation="Keep claude-3-5-haiku for triage and require an escalation-rate eval before a model switch",
        link="https://github.com/acme/ticket-triage/pull/311",
        root_cause="The switch to claude-3-haiku changed the confidence distribution, and the escalation "
                   "threshold calibrated for the previous model sent most tickets to the human triage queue.",
        contributing="The model switch shipped without an eval of the escalation rate, and the triage queue has "
                     "no alert on its own depth.",
        lessons="A model switch changes calibration: a confidence threshold belongs to the model it was tuned "
                "on.",
    ),
    ("scope_creep", 1): Story(
        mode="disabled", fate="draft", contain_after=21 * MIN,
        reason="the agent calls payment and email tools the manifest does not declare",
        cause="the tools-2 config enabled payment and email tools outside the manifest",
        mitigation="Turn the payments and email tools off in the agent runtime until the manifest and evals "
                   "cover them",
        link="https://github.com/acme/travel-agent/pull/489",
        root_cause="The tools-2 runtime config enabled payment and email tools without a matching manifest or "
                   "eval-set update.",
        contributing="Config changes do not go through the eval gate that prompt changes go through.",
        lessons="Tool availability is part of a feature's contract and needs the same review as its prompt.",
    ),
    ("runaway_cost", 2): Story(
        mode=None, fate="draft", verify=False,
        reason="auto-containment",
        cause="the cfg-8 memory change re-sends the whole conversation on every turn",
        mitigation="Limit retrieval top_k to 5 and summarise the conversation after 10 turns instead of "
                   "re-sending it",
        link="https://github.com/acme/travel-agent/pull/497",
        root_cause="The cfg-8 memory change re-sent the whole conversation and every tool result on each turn, "
                   "so tokens per call grew with the length of the session.",
        contributing="The cost review of config changes looks at the average call, not at long sessions.",
        lessons="Context size is a cost control: it needs a ceiling like calls per session do.",
    ),
    ("drift", 1): Story(
        mode="rollback", fate="draft", verify=False, contain_after=9 * HOUR + 40 * MIN, keep_contained=True,
        params={"prompt_version": "v12"},
        reason="answers grew longer and less accurate since the v13 prompt",
        cause="the v13 prompt rewrite made answers longer and less accurate",
        mitigation="Revert the support-bot prompt to v12; v13 goes back through the eval suite with length and "
                   "accuracy checks",
        link="prompt:v12",
        root_cause="The v13 rewrite asked for friendlier, more thorough answers; they grew much longer and less "
                   "accurate, and the eval set did not measure either on current traffic.",
        contributing="The eval set was refreshed in September and has no length or accuracy check.",
        lessons="A prompt change for tone is a quality change too, and the eval set must measure what users "
                "notice.",
    ),
}

_DEFAULT_MODE = {"hallucination": "human", "prompt_injection": "disabled", "escalation_overload": "rollback",
                 "scope_creep": "disabled", "runaway_cost": "throttle", "drift": "rollback"}


def _story(category: str, occurrence: int, feature: str, manifest: Manifest) -> Story:
    """The scripted story, or for an incident the script does not know a plain one (drafted only)."""
    known = STORIES.get((category, occurrence))
    if known is not None:
        return known
    spec = manifest.features.get(feature)
    mode = _DEFAULT_MODE.get(category, "human")
    if mode == "rollback" and (spec is None or spec.containment.rollback_to is None):
        mode = "human"
    if mode == "throttle" and (spec is None or spec.containment.throttle_rps is None):
        mode = "human"
    what = category.replace("_", " ")
    return Story(mode=mode, reason=f"{what} on {feature}", cause=f"{what} on {feature}", fate="draft",
                 mitigation=f"Fix the {what} of {feature}", link=f"https://github.com/acme/{feature}/pulls",
                 root_cause=f"The {feature} feature had no guardrail against {what}.",
                 contributing="To be discussed in the review.", lessons="To be discussed in the review.")


@dataclass
class _Case:
    """One incident as the team works it."""

    number: int
    ref: str
    category: str
    feature: str
    lead: str
    story: Story
    failure_end: datetime | None  # when the injected failure stopped, if the demo knows it
    notes: list[str] = field(default_factory=list)


class _Team:
    def __init__(self, store: Store, manifest: Manifest, *, failures: Sequence[Any], now: datetime,
                 on_step: Callable[[int, int, str], None] | None) -> None:
        self.store = store
        self.manifest = manifest
        self.failures = list(failures)
        self.now = now
        self.on_step = on_step
        self.queue: list[tuple[datetime, int, str, Callable[[datetime], None]]] = []
        self.seq = itertools.count()
        self.done = 0
        self.cases: dict[int, _Case] = {}
        self.seen: dict[str, int] = {}
        self.problems: list[str] = []

    # -- the clock ---------------------------------------------------------------------------
    def at(self, when: datetime, label: str, fn: Callable[[datetime], None]) -> None:
        heapq.heappush(self.queue, (min(when, self.now), next(self.seq), label, fn))

    def run(self) -> None:
        total = 0
        while self.queue:
            when, _, label, fn = heapq.heappop(self.queue)
            try:
                fn(when)
            except HotwashError as exc:  # the demo goes on; the summary lists what did not work
                self.problems.append(f"{label}: {exc}")
            self.done += 1
            total = max(total, self.done + len(self.queue))
            if self.on_step is not None:
                self.on_step(self.done, total, label)

    # -- detection ---------------------------------------------------------------------------
    def signal(self, sig: Mapping[str, Any], ts: datetime) -> None:
        for inc in incidents.on_signals(self.store, self.manifest, [sig["id"]], now=ts):
            if inc["opened"]:
                self.opened(inc, ts)

    def _failure_end(self, inc: Mapping[str, Any]) -> datetime | None:
        for f in self.failures:
            if f.category == inc["category"] and f.feature == inc["feature"] and f.onset <= inc["detected_at"] \
                    and (f.end is None or inc["started_at"] is None or inc["started_at"] < f.end):
                return f.end
        return None

    def opened(self, inc: Mapping[str, Any], ts: datetime) -> None:
        self.seen[inc["category"]] = occurrence = self.seen.get(inc["category"], 0) + 1
        story = _story(inc["category"], occurrence, inc["feature"], self.manifest)
        lead = LEADS.get(inc["feature"], COMMUNICATOR)
        case = _Case(number=inc["number"], ref=inc["id"], category=inc["category"], feature=inc["feature"],
                     lead=lead, story=story, failure_end=self._failure_end(inc))
        self.cases[case.number] = case
        self.plan(case, ts)

    # -- the story of one incident -------------------------------------------------------------
    def plan(self, c: _Case, t: datetime) -> None:
        s = c.story
        ref = c.ref
        self.at(t + 2 * MIN, f"{ref} assign", lambda ts: self.assign(c, ts))
        contained = t + s.contain_after
        if s.mode is not None:
            self.at(contained, f"{ref} contain", lambda ts: self.contain(c, ts))
        else:
            contained = t
        self.at(contained + 8 * MIN, f"{ref} status update", lambda ts: self.update(c, ts, "internal"))
        if s.customer_update:
            self.at(contained + 15 * MIN, f"{ref} customer update", lambda ts: self.update(c, ts, "customer"))
        diagnosed = contained + 75 * MIN
        if s.diagnosis is not None:
            self.at(diagnosed - 10 * MIN, f"{ref} diagnosis answer", lambda ts: self.answer(c, ts))
        self.at(diagnosed, f"{ref} diagnose", lambda ts: self.diagnose(c, ts))
        mitigated = max(diagnosed + 90 * MIN, c.failure_end + 10 * MIN if c.failure_end else diagnosed + 4 * HOUR)
        self.at(mitigated, f"{ref} mitigate", lambda ts: self.mitigate(c, ts))
        drafted = mitigated + 18 * HOUR
        self.at(drafted, f"{ref} postmortem draft", lambda ts: self.draft(c, ts))
        if s.verify:
            self.at(drafted + 2 * HOUR, f"{ref} regression cases", lambda ts: self.cases_from(c, ts))
            self.at(drafted + 2 * HOUR + 20 * MIN, f"{ref} monitor", lambda ts: self.monitor_from(c, ts))
            self.at(drafted + 3 * HOUR, f"{ref} verify", lambda ts: self.verify(c, ts))
        if s.fate == "draft":
            self.at(drafted + 5 * HOUR, f"{ref} plan actions", lambda ts: self.edit(c, ts, fill=False))
            return
        self.at(drafted + DAY, f"{ref} postmortem written", lambda ts: self.edit(c, ts, fill=True))
        self.at(drafted + DAY + HOUR, f"{ref} postmortem submitted", lambda ts: self.submit(c, ts))
        if s.fate == "in_review":
            return
        published = drafted + 2 * DAY
        self.at(published, f"{ref} postmortem published", lambda ts: self.publish(c, ts))
        readers = [p for p in PEOPLE if p not in (c.lead, REVIEWERS.get(c.feature))][:2]
        for i, person in enumerate(readers):
            self.at(published + (3 + 20 * i) * HOUR, f"{ref} read by {person}",
                    lambda ts, p=person: self.read(c, ts, p))
        if s.fate == "closed":
            self.at(published + DAY, f"{ref} actions resolved", lambda ts: self.resolve_actions(c, ts))
            self.at(published + DAY + HOUR, f"{ref} close", lambda ts: self.close(c, ts))

    # -- the steps -------------------------------------------------------------------------------
    def assign(self, c: _Case, ts: datetime) -> None:
        incidents.assign(self.store, c.number, actor=c.lead, lead=c.lead,
                         participants=[(COMMUNICATOR, "communicator")], now=ts)

    def contain(self, c: _Case, ts: datetime) -> None:
        s = c.story
        assert s.mode is not None
        incidents.contain(self.store, self.manifest, c.number, mode=s.mode, actor=c.lead, params=s.params,
                          reason=s.reason, now=ts)

    def update(self, c: _Case, ts: datetime, audience: str) -> None:
        communicate.post_status_update(self.store, self.manifest, c.number, audience=audience, actor=COMMUNICATOR,
                                       now=ts)

    def answer(self, c: _Case, ts: datetime) -> None:
        assert c.story.diagnosis is not None
        question, text = c.story.diagnosis
        diagnose.answer(self.store, c.number, question, text, actor=c.lead, now=ts)

    def diagnose(self, c: _Case, ts: datetime) -> None:
        answered = [a for a in diagnose.get_answers(self.store, c.number) if a["answer"]]
        incidents.step(self.store, self.manifest, c.number, "diagnose", actor=c.lead, now=ts,
                       text=f"{len(answered)} diagnostic question(s) answered; cause: {c.story.cause}")

    def mitigate(self, c: _Case, ts: datetime) -> None:
        s = c.story
        incidents.mitigate(self.store, self.manifest, c.number, description=s.mitigation, link=s.link,
                           actor=c.lead, now=ts)
        if not s.keep_contained:
            flags.set_mode(self.store, self.manifest, c.feature, "enabled", actor=c.lead, incident_id=c.number,
                           reason=f"mitigation shipped ({s.link})", now=ts + 5 * MIN)

    def draft(self, c: _Case, ts: datetime) -> None:
        postmortems.draft(self.store, self.manifest, c.number, actor=c.story.author or c.lead, now=ts)

    def cases_from(self, c: _Case, ts: datetime) -> None:
        written = add_from_incident(self.store, self.manifest, c.number, directory=EVALS_DIR, now=ts)
        if not written:
            raise HotwashError(f"no regression case could be derived from {c.ref}")
        self.action_done(c, "regression_case", ts)

    def monitor_from(self, c: _Case, ts: datetime) -> None:
        inc = incidents.get_incident(self.store, c.number, now=ts)
        proposal = monitor_from_incident.propose(self.store, self.manifest, inc)
        monitor_from_incident.store_proposal(self.store, self.manifest, proposal, incident_id=c.number,
                                             actor=c.lead, now=ts)
        self.action_done(c, "monitoring", ts)

    def verify(self, c: _Case, ts: datetime) -> None:
        result = run_verify(self.store, self.manifest, c.number, actor=c.lead, now=ts)
        if not result["verified"]:
            why = [result[k].get("reason") or f"{k} proof fails" for k in ("regression", "monitor")
                   if not result[k]["ok"]]
            c.notes.append(f"not verified: {'; '.join(why)}")

    def edit(self, c: _Case, ts: datetime, *, fill: bool) -> None:
        """The author plans the actions (owners, due dates) and, with ``fill``, writes what the draft
        left to people: the root cause, the contributing factors, the lessons."""
        pm = postmortems.get_postmortem(self.store, c.number, now=ts)
        doc = parse(pm["markdown"])
        s = c.story
        sections = dict(doc.sections)
        if fill:
            sections["Root cause"] = _replace_todo(sections.get("Root cause", ""), s.root_cause)
            sections["Contributing factors"] = _replace_todo(sections.get("Contributing factors", ""), s.contributing)
            sections["Lessons learned"] = _replace_todo(sections.get("Lessons learned", ""), s.lessons)
        planned = _plan_day(ts, self.now)
        rows = []
        for a in doc.actions:
            owner, due = a.owner, a.due
            if a.kind == "documentation":
                owner = COMMUNICATOR  # dana keeps the runbooks
            if a.status == "open" and a.kind != s.overdue_action:
                due = planned
            rows.append(Action(kind=a.kind, action=a.action, owner=owner, due=due, status=a.status, link=a.link))
        new = Postmortem(meta=doc.meta, sections=sections, timeline=doc.timeline, actions=tuple(rows))
        postmortems.update_markdown(self.store, c.number, markdown=render(new), expected_version=pm["version"],
                                    actor=s.author or c.lead, now=ts)

    def submit(self, c: _Case, ts: datetime) -> None:
        postmortems.submit(self.store, c.number, actor=c.story.author or c.lead, now=ts)

    def publish(self, c: _Case, ts: datetime) -> None:
        reviewer = REVIEWERS.get(c.feature, COMMUNICATOR)
        report = postmortems.review(self.store, c.number)
        for f in report["findings"]:  # the reviewer reads each finding; the wording quoted from telemetry stays
            if not f["accepted"]:
                postmortems.accept_finding(self.store, c.number, f["key"], actor=reviewer, now=ts)
        postmortems.publish(self.store, self.manifest, c.number, actor=reviewer, now=ts + MIN)
        postmortems.record_read(self.store, c.number, person=reviewer, now=ts + MIN)

    def read(self, c: _Case, ts: datetime, person: str) -> None:
        postmortems.record_read(self.store, c.number, person=person, now=ts)

    def action_done(self, c: _Case, kind: str, ts: datetime) -> None:
        for a in actions.list_actions(self.store, incident=c.number, status="open", now=ts):
            if a["kind"] == kind:
                actions.done_action(self.store, a["id"], actor=c.lead, now=ts)

    def resolve_actions(self, c: _Case, ts: datetime) -> None:
        for a in actions.list_actions(self.store, incident=c.number, status="open", now=ts):
            if a["kind"] == "documentation":
                actions.defer_action(self.store, a["id"], actor=a["owner"], now=ts,
                                     reason="the runbooks move to the new on-call wiki next sprint; until then the "
                                            "containment steps are in this postmortem")
            else:
                actions.done_action(self.store, a["id"], actor=a["owner"], now=ts)

    def close(self, c: _Case, ts: datetime) -> None:
        incidents.close(self.store, self.manifest, c.number, actor=c.lead, now=ts,
                        text="verified, actions done or deferred")


def _replace_todo(text: str, replacement: str) -> str:
    """The section with its ``TODO:`` placeholder line(s) replaced by ``replacement`` (once)."""
    out, replaced = [], False
    for line in text.split("\n"):
        if re.match(r"^\s*(?:[-*+]\s+)?[*_]*TODO:", line, re.IGNORECASE):
            if not replaced:
                out.append(replacement)
                replaced = True
            continue
        out.append(line)
    if not replaced:
        out += ["", replacement] if text.strip() else [replacement]
    return "\n".join(out).strip()


def _plan_day(ts: datetime, now: datetime) -> date:
    """When the team plans an open action for: two weeks out, and not before next week (the demo's
    weeks end in the recent past; actions it plans are still ahead)."""
    return max(ts + 14 * DAY, now + 7 * DAY).date()


# -- the whole run -------------------------------------------------------------------------------
def run_playbook(store: Store, manifest: Manifest, *, failures: Sequence[Any] = (), now: datetime | None = None,
                 on_step: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Replay the stored signals in time order through the incident policy and work every incident
    that opens. Returns ``{"incidents": [...], "verified": n, "postmortems": {...}, "actions": {...},
    "insights": {...}, "people": [...], "problems": [...]}``."""
    from hotwash.insights import compute

    now = now or datetime.now(UTC)
    team = _Team(store, manifest, failures=failures, now=now, on_step=on_step)
    for sig in sorted(store.list_signals(), key=lambda s: (s["detected_at"], s["id"])):
        team.at(sig["detected_at"], f"signal {sig['id']} ({sig['monitor']})",
                lambda ts, sig=sig: team.signal(sig, ts))
    team.run()

    rows = []
    for inc in sorted(incidents.list_incidents(store), key=lambda i: i["number"]):
        rows.append(_incident_row(store, inc, team.cases.get(inc["number"]), now))
    pms = postmortems.list_postmortems(store, now=now)
    acts = actions.list_actions(store, now=now)
    return {
        "incidents": rows,
        "verified": sum(1 for r in rows if r["verified_at"] is not None),
        "postmortems": {st: sum(1 for p in pms if p["status"] == st) for st in ("draft", "in_review", "published")},
        "actions": {"total": len(acts), "open": sum(1 for a in acts if a["status"] == "open"),
                    "overdue": sum(1 for a in acts if a["overdue"]),
                    "done": sum(1 for a in acts if a["status"] == "done"),
                    "deferred": sum(1 for a in acts if a["status"] == "deferred")},
        "insights": compute(store, now=now),
        "people": list(PEOPLE),
        "problems": team.problems,
    }


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    return (later - earlier).total_seconds() if later and earlier else None


def _incident_row(store: Store, inc: Mapping[str, Any], case: _Case | None, now: datetime) -> dict[str, Any]:
    number = inc["number"]
    pm = store.get_postmortem(incident_id=number)
    acts = actions.list_actions(store, incident=number, now=now)
    containment = inc.get("containment") or None
    return {
        "id": inc["id"], "number": number, "title": inc["title"], "category": inc["category"],
        "feature": inc["feature"], "severity": inc["severity"], "status": inc["status"], "lead": inc["lead"],
        "containment": {"mode": containment["mode"], "by": containment["by"], "at": containment["at"]}
        if containment else None,
        "started_at": inc["started_at"], "detected_at": inc["detected_at"], "contained_at": inc["contained_at"],
        "mitigated_at": inc["mitigated_at"], "verified_at": inc["verified_at"], "closed_at": inc["closed_at"],
        "time_to_detect_s": _seconds(inc["detected_at"], inc["started_at"]),
        "time_to_contain_s": _seconds(inc["contained_at"], inc["detected_at"]),
        "signals": len(store.incident_signal_rows(number)),
        "mitigation": (inc.get("mitigation") or {}).get("link"),
        "postmortem": pm["status"] if pm else None,
        "postmortem_author": pm["author"] if pm else None,
        "proofs": store.newest_proof_status(number),
        "eval_cases": [r["path"] for r in store.list_eval_cases(incident_id=number)],
        "monitors": [m["name"] for m in store.list_stored_monitors(incident_id=number)],
        "actions": {"open": sum(1 for a in acts if a["status"] == "open"),
                    "overdue": sum(1 for a in acts if a["overdue"]),
                    "done": sum(1 for a in acts if a["status"] == "done"),
                    "deferred": sum(1 for a in acts if a["status"] == "deferred")},
        "notes": case.notes if case else [],
    }
