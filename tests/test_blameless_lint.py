"""The blameless linter: one test per rule (removing a rule fails its test), near misses that must stay
quiet, what is never read (quotes, code, front matter), accepted findings that survive edits, and the
linter on real postmortems from ../shared/data."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA_DIR
from hotwash.postmortems.lint import RULE_IDS, RULES, Finding, finding_key, lint, person_mentions, unaccepted

POSTMORTEMS = DATA_DIR / "postmortems" / "dev.jsonl"
needs_data = pytest.mark.skipif(not POSTMORTEMS.exists() and not os.environ.get("CI"),
                                reason=f"shared data not found at {POSTMORTEMS}")


def rules_of(text: str, people: tuple[str, ...] = ()) -> list[str]:
    return [f.rule for f in lint(text, people=people)]


def test_the_rules_are_all_there():
    assert RULE_IDS == ("person-as-cause", "person-blamed-action", "possessive-blame", "person-root-cause",
                        "human-error", "counterfactual", "blame-language")
    assert all(r.why and r.suggest({}) for r in RULES)


# Every rule, several phrasings. If a rule were removed these sentences would not carry its id.
@pytest.mark.parametrize(("rule", "sentence"), [
    ("person-as-cause", "Ana forgot to renew the certificate."),
    ("person-as-cause", "The on-call engineer missed the page."),
    ("person-as-cause", "He broke the build on Friday."),
    ("person-as-cause", "The reviewer didn't check the prompt diff."),
    ("person-as-cause", "The change was overlooked by Priya."),
    ("person-as-cause", "@bob.smith ignored the grounding alert for an hour."),
    ("person-as-cause", "I made a mistake in the rollout order."),
    ("person-as-cause", "An engineer failed to follow the runbook."),
    ("person-as-cause", "The operator was careless with the flags."),
    ("person-blamed-action", "Bob deployed a bad config to production."),
    ("person-blamed-action", "An engineer accidentally ran the cleanup script against prod."),
    ("person-blamed-action", "Ana pushed the prompt without an eval."),
    ("person-blamed-action", "Bob merged a change that broke checkout."),
    ("person-blamed-action", "Someone enabled the tool by mistake."),
    ("person-blamed-action", "Then Sam accidentally deleted the index."),
    ("person-blamed-action", "Carlos shipped an untested model, causing the outage."),
    ("person-blamed-action", "The bad prompt was deployed by Ana."),
    ("person-blamed-action", "Alex pushed prompt v42, which removed the citations and caused the hallucinations."),
    ("person-blamed-action", "The reviewer approved the change without running the evals."),
    ("possessive-blame", "Ana's mistake took the bot down."),
    ("possessive-blame", "Bob's PR broke the router."),
    ("possessive-blame", "It was the engineer's oversight."),
    ("possessive-blame", "The outage was the fault of the on-call engineer."),
    ("possessive-blame", "That was my error."),
    ("possessive-blame", "The PR by Sam introduced a regression in retrieval."),
    ("person-root-cause", "The root cause was the engineer who ran the migration."),
    ("person-root-cause", "Root cause: human judgement."),
    ("human-error", "This was human error."),
    ("human-error", "The incident was caused by operator error during the rollout."),
    ("human-error", "Classic PEBKAC."),
    ("counterfactual", "We should have tested against existing state."),
    ("counterfactual", "This should have been caught in review."),
    ("counterfactual", "The risk should've been obvious."),
    ("counterfactual", "We shouldn't have rushed the release."),
    ("counterfactual", "We should have limited the blast radius sooner."),
    ("counterfactual", "The outage could have been avoided."),
    ("counterfactual", "The on-call should have escalated sooner."),
    ("blame-language", "The rollout was careless."),
    ("blame-language", "Nobody bothered to look, it was sloppy work."),
    ("blame-language", "It was negligent to skip the eval."),
    ("blame-language", "Someone was fat-fingering the flag values."),
    ("blame-language", "The team is to blame for this."),
    ("blame-language", "Going forward we must be more careful with prompts."),
    ("blame-language", "Without being fully aware of the cluster context, the plan was applied to live."),
])
def test_each_rule_finds_its_sentences(rule, sentence):
    findings = lint(sentence)
    assert [f.rule for f in findings] == [rule], findings
    f = findings[0]
    assert f.line == 1 and f.quote == sentence
    assert f.why and f.suggestion and f.suggestion != sentence


@pytest.mark.parametrize("sentence", [
    # a system, not a person, is the subject
    "The deploy broke the checkout page.",
    "The model ignored the system prompt.",
    "The retriever missed two of the three sources.",
    "Travis failed to build the image.",
    "Cassandra failed to compact the table.",
    # a person acting, not failing
    "Ana deployed the fix at 10:00.",
    "Ana deployed a revert of the change that caused the outage.",
    "We paged Ana, who restarted the pods.",
    "Thanks to Sam, who noticed the spike.",
    "17:40 - Mike attempted to revoke the token - unsuccessful",
    "Ana failed over the database.",
    "Bob set the throttle to 5 rps.",
    "Kim set the throttle to 2 rps without waiting for approval, which stopped the cost spike.",
    "Maria ran the regression suite, which caught two failing cases.",
    "Our on-call rotation paged Ana at 09:14; she contained the feature within 17 minutes.",
    "The attacker caused the model to call the refund tool.",
    "Owner: @lucasheriques",
    "Rosie Brigham had access to see the token as she has owner rights.",
    "Phase I failed to converge.",
    # recommendations, expectations and questions, not hindsight
    "We should have a monitor for refusals.",
    "Critical pods should have priority.",
    "The team should have limited access to production.",
    "Our overcommit should've been just 2x.",
    "The upgrade should not have caused the issue.",
    "The pod should have restarted on its own.",
    "The model should have refused the request.",
    "The monitor should have caught the spike.",
    "The alert should have been routed to Slack.",
    "Reflect whether the ALB change should have been announced to the teams.",
    "Should the change have been announced earlier?",
    # words that look like blame
    "This is a blameless postmortem; nobody is to blame.",
    "Run git blame on the file.",
    "Impact on users was negligible.",
    "Fault occurs 2020-08-04 13:30.",
    "Lazy loading of the module failed.",
    "The user error rate rose to 4%.",
    "The root cause was a missing citation check.",
    "We wrongly assumed the chart set resource limits.",
    "Personal tokens in shared vaults are a risk.",
    "The dev container ran out of memory and caused the outage.",
    "Person ingestion caused saturation of the writer database.",
])
def test_near_misses_stay_quiet(sentence):
    assert lint(sentence) == []


def test_participants_are_persons_whatever_their_case():
    assert rules_of("ana.lopez forgot to rotate the key.") == []  # not a known first name...
    # ...but a participant
    assert rules_of("ana.lopez forgot to rotate the key.", people=("ana.lopez",)) == ["person-as-cause"]
    assert rules_of("ZED broke the index.", people=("zed",)) == ["person-as-cause"]


def test_quotes_code_links_and_front_matter_are_not_read():
    text = "\n".join([
        "---",
        "title: Ana forgot the cert",
        "---",
        'The customer wrote "the engineer forgot my refund" in the ticket.',
        "> Bob broke it, said the customer.",
        "The log said `operator error: careless input` at 09:14.",
        "See [the runbook](https://example.com/human-error-was-careless).",
        "```",
        "Ana deployed a bad config",
        "```",
        "Bob deployed a bad config.",
    ])
    findings = lint(text)
    assert [(f.line, f.rule) for f in findings] == [(11, "person-blamed-action")]


def test_line_numbers_quotes_and_one_finding_per_sentence():
    text = ("## Root cause\n\nThe prompt lost its citation rule. It was his fault,\nand careless.\n\n"
            "| 09:14 | Ana forgot |\n")
    findings = lint(text)
    assert [(f.line, f.rule, f.quote) for f in findings] == [
        (3, "possessive-blame", "It was his fault, and careless."),
        (6, "person-as-cause", "Ana forgot"),
    ]


def test_finding_dict_and_key():
    f = lint("Ana forgot to renew the certificate.")[0]
    d = f.to_dict()
    assert set(d) == {"line", "quote", "rule", "why", "suggestion", "key"}
    assert d["key"] == f.key == finding_key("person-as-cause", "Ana forgot to renew the certificate.")
    assert f.key.startswith("person-as-cause:")


def test_an_accepted_finding_survives_edits_elsewhere():
    text = "## Summary\n\nAll fine.\n\n## Root cause\n\nThe engineer forgot to renew the cert.\n"
    finding = lint(text)[0]
    accepted = [{"rule": finding.rule, "quote": finding.quote, "by": "lead", "at": "2026-11-27T10:00:00Z"}]
    edited = "## Summary\n\nAll fine. More words.\n\nA new paragraph.\n\n## Root cause\n\nThe  engineer forgot to " \
             "**renew** the cert\n"
    later = lint(edited)
    assert later[0].line != finding.line and later[0].key == finding.key  # moved, re-wrapped, emphasis added
    assert unaccepted(later, accepted) == []
    assert unaccepted(later, [finding.key]) == []
    assert unaccepted(later, [{"key": finding.key}]) == []
    reworded = lint("## Root cause\n\nThe engineer forgot to renew both certs.\n")
    assert unaccepted(reworded, accepted) == reworded  # a different sentence is a new finding
    other_rule = Finding(line=1, quote=finding.quote, rule="blame-language", why="", suggestion="")
    assert unaccepted([other_rule], accepted) == [other_rule]


def test_suggestions_fit_the_verb():
    deploy = lint("Bob deployed a bad config to production.")[0].suggestion
    missed = lint("The on-call engineer missed the page.")[0].suggestion
    command = lint("An engineer accidentally ran the cleanup script against prod.")[0].suggestion
    assert "Our deploy process did not require an eval pass before promote" in deploy
    assert "made it easy to miss" in missed
    assert "confirmation before a destructive command" in command


# -- real postmortems ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_docs() -> dict[str, str]:
    if not POSTMORTEMS.exists():
        pytest.fail(f"the shared data set is missing at {POSTMORTEMS}")  # only reached in CI (see needs_data)
    with POSTMORTEMS.open(encoding="utf-8") as f:
        return {(r := json.loads(line))["id"]: r["text"] for line in f if line.strip()}


@needs_data
def test_real_hindsight_sentences_are_found(real_docs):
    found = lint(real_docs["persistenceone-e9f73af9ad"])
    assert [(f.line, f.rule) for f in found] == [(28, "counterfactual")]
    assert "should have tested against existing validator set" in found[0].quote
    assert [(f.line, f.rule) for f in lint(real_docs["dfds-172af97b7e"])] == [(29, "counterfactual")]
    assert [(f.line, f.rule) for f in lint(real_docs["ministryofjustice-2d7bedf4aa"])] == [(26, "blame-language")]


@needs_data
def test_real_documents_that_name_people_raise_no_false_alarm(real_docs):
    # The MoJ credential-leak timeline names four people (token owner, responders); 2i2c's report
    # narrates two engineers step by step; PostHog's names owners by @handle. None blames anyone.
    for doc_id in ("ministryofjustice-87ecb1b86c", "2i2c-org-ec926dfc7a", "posthog-c54268dd23", "2i2c-org-f935415635"):
        named = person_mentions(real_docs[doc_id])
        assert len(named) >= 4, doc_id
        assert lint(real_docs[doc_id]) == [], doc_id
    people = {who for _, _, who in person_mentions(real_docs["ministryofjustice-87ecb1b86c"])}
    assert {"Mike", "Rosie Brigham", "Julia"} <= people


@needs_data
def test_findings_across_the_data_set_stay_rare(real_docs):
    per_doc = [len(lint(text)) for text in real_docs.values()]
    assert len(per_doc) == 46
    assert sum(per_doc) <= 10 and max(per_doc) <= 2  # published, reviewed postmortems are mostly blameless


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(
    st.text(max_size=60),
    st.sampled_from(["Ana forgot the cert.", "```", "> quoted", '"Bob broke it"', "| 09:14 | Sam missed it |",
                     "---", "- He broke it", "e.g. the engineer", "should have been caught", "\r\n", "`code`"])),
    max_size=12))
def test_lint_handles_any_text(parts):
    text = "\n".join(parts)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for f in lint(text, people=("ana", "zed")):
        assert 1 <= f.line <= len(lines)
        assert f.rule in RULE_IDS and f.quote and f.key.startswith(f.rule + ":")
