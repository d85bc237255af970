"""Grounding (hallucination) checker: behaviour on hand-made cases, and a quality floor per source on
the real human-labelled data in ../shared/data/hallucination (skipped only if that data is absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hotwash.detect.grounding import DEFAULT_THRESHOLD, GroundingResult, check_grounding, feature_dict

DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEV = DATA_DIR / "hallucination" / "dev.jsonl"
CLOSED = DATA_DIR / "hallucination" / "closed_book_dev.jsonl"

POLICY = (
    "The Pro plan costs $9.99 per month and includes 50 GB of storage. "
    "Refunds are issued to the original payment method within five working days."
)


def test_unsupported_price_is_flagged_and_quoted() -> None:
    r = check_grounding("The Pro plan costs $12.99 per month.", [POLICY])
    assert r.judgeable
    assert r.flagged
    assert r.score is not None and r.score >= DEFAULT_THRESHOLD
    assert "$12.99" in r.unsupported


def test_supported_statement_and_paraphrase_not_flagged() -> None:
    same = check_grounding("The Pro plan costs $9.99 per month.", [POLICY])
    assert not same.flagged and same.unsupported == []
    para = check_grounding("Refunds go to the original payment method within five working days.", [POLICY])
    assert para.judgeable and not para.flagged, para
    assert para.score is not None and para.score < DEFAULT_THRESHOLD


def test_unsupported_spans_returned() -> None:
    r = check_grounding(
        "The Pro plan costs $9.99 per month and includes unlimited video streaming from Netflix.",
        [POLICY],
    )
    assert r.flagged
    joined = " ".join(r.unsupported)
    assert "Netflix" in joined and "streaming" in joined
    assert "costs" not in joined  # supported words are not reported
    assert all(len(s) <= 80 for s in r.unsupported)


def test_unsupported_number_word_quote_and_citation() -> None:
    assert check_grounding("Refunds take seven working days.", [POLICY]).flagged
    q = check_grounding('Support said "refunds are instant for everyone".', [POLICY])
    assert q.flagged and any("instant" in s for s in q.unsupported)
    c = check_grounding("See https://example.com/refunds for the policy.", [POLICY])
    assert c.flagged and any(s.startswith("https://example.com") for s in c.unsupported)


def test_several_docs_are_pooled() -> None:
    docs = ["The Pro plan costs $9.99 per month.", "It includes 50 GB of storage."]
    r = check_grounding("The Pro plan costs $9.99 and includes 50 GB of storage.", docs)
    assert not r.flagged and r.unsupported == []


def test_no_context_is_not_judgeable() -> None:
    for ctx in ([], [""], ["   "]):
        r = check_grounding("Paris is the capital of France.", ctx)
        assert isinstance(r, GroundingResult)
        assert r.judgeable is False and r.score is None and r.flagged is False
        assert r.unsupported == [] and "context" in r.reason


def test_empty_output_and_reason_text() -> None:
    r = check_grounding("", [POLICY])
    assert r.judgeable and not r.flagged
    f = check_grounding("The Pro plan costs $12.99 per month.", [POLICY])
    assert f.reason and f.reason.endswith(".")


needs_data = pytest.mark.skipif(not DEV.exists(), reason=f"labelled hallucination data not found at {DEV}")


def _balanced_accuracy(y: list[int], p: list[int]) -> float:
    tp = sum(a and b for a, b in zip(y, p, strict=True))
    tn = sum((not a) and (not b) for a, b in zip(y, p, strict=True))
    pos = sum(y)
    return (tp / pos + tn / (len(y) - pos)) / 2


@needs_data
def test_quality_floor_per_source_on_real_data() -> None:
    """Shipped weights on the dev data (in-sample; bench/grounding_quality.py reports out-of-fold:
    BEGIN 0.889, FaithBench 0.662). Floors sit above the strongest tuned word-novelty baseline
    (BEGIN 0.868, FaithBench 0.606) and below the in-sample scores (0.900, 0.695)."""
    recs = [json.loads(line) for line in DEV.open(encoding="utf-8") if line.strip()]
    by: dict[str, tuple[list[int], list[int]]] = {}
    for r in recs:
        src = "FaithBench" if "faithbench" in r["source"].lower() else "BEGIN"
        res = check_grounding(r["response"], [r["context"]], question=r.get("question"))
        assert res.judgeable
        ys, ps = by.setdefault(src, ([], []))
        ys.append(1 if r["label"] == "hallucinated" else 0)
        ps.append(1 if res.flagged else 0)
    assert set(by) == {"BEGIN", "FaithBench"}
    assert _balanced_accuracy(*by["BEGIN"]) >= 0.88
    assert _balanced_accuracy(*by["FaithBench"]) >= 0.65


@pytest.mark.skipif(not CLOSED.exists(), reason=f"closed-book data not found at {CLOSED}")
def test_closed_book_answers_are_not_judged() -> None:
    recs = [json.loads(line) for line in CLOSED.open(encoding="utf-8") if line.strip()]
    assert len(recs) > 100
    for r in recs:
        res = check_grounding(r["response"], [r["context"]] if r["context"] else [])
        assert res.judgeable is False and res.score is None and not res.flagged


def test_list_markers_and_ordinals_are_not_number_claims() -> None:
    listed = check_grounding("1. The Pro plan costs $9.99 per month.\n2. It includes 50 GB of storage.", [POLICY])
    assert not listed.flagged and listed.unsupported == [], listed
    # "second" is a word, not the number 2 (it was flagged as an unsupported number before)
    second = check_grounding(
        "Refunds for the second payment are issued to the original payment method within five working days.", [POLICY]
    )
    assert not second.flagged and second.score is not None and second.score < 0.5, second
    # the same digits mid-sentence are still a claim
    mid = check_grounding("The Pro plan costs $9.99 per month for 2 users.", [POLICY])
    assert mid.flagged and any(s.startswith("2") for s in mid.unsupported)
    colon = check_grounding("Storage on the Pro plan: 75.", [POLICY])
    assert colon.flagged and "75" in colon.unsupported


def test_quotes_match_word_for_word_modulo_punctuation() -> None:
    # punctuation inside the quote marks does not make a supported quotation unsupported
    ok = check_grounding('The policy says "refunds are issued to the original payment method," in short.', [POLICY])
    assert not any("refunds" in s for s in ok.unsupported), ok
    assert not ok.flagged
    # the same words in another order are not the quotation
    swapped = check_grounding('The policy says "the original payment method issues refunds".', [POLICY])
    assert swapped.flagged and any(s.startswith('"the original payment') for s in swapped.unsupported)
    # the stretch between two quotations is not a third one
    two = check_grounding('It says "Pro plan" and "50 GB of storage".', [POLICY])
    assert not two.flagged and two.unsupported == [], two


# a few sentences restating POLICY, as a summary would
SUMMARY = (
    "The Pro plan costs $9.99 per month and includes 50 GB of storage. Refunds are issued to the "
    "original payment method within five working days, so the policy sets out two things."
)


def test_output_without_a_user_turn_is_judged_as_a_document() -> None:
    assert feature_dict(SUMMARY, [POLICY])["long"] == 1.0  # no question: a summary/report
    assert feature_dict(SUMMARY, [POLICY], question="What does the Pro plan include?")["long"] == 0.0
    assert feature_dict("The Pro plan costs $9.99 per month.", [POLICY])["long"] == 0.0  # too short for one


def test_spelled_out_counts_are_soft_in_documents_but_numbers_are_not() -> None:
    # "two things" counts what the summary lists: not a hard claim in a document
    doc = check_grounding(SUMMARY, [POLICY])
    assert not doc.flagged and "two" in doc.unsupported, doc
    # digits the context lacks still are
    price = check_grounding(SUMMARY.replace("$9.99", "$12.99"), [POLICY])
    assert price.flagged and "$12.99" in price.unsupported
    # and so is another spelled-out number for what the context counts ("five working days")
    days = check_grounding(SUMMARY.replace("five working", "seven working"), [POLICY])
    assert days.flagged and "seven" in days.unsupported
