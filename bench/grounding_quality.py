"""Grounding checker quality and cost, in one command:

    .venv/bin/python bench/grounding_quality.py

Prints, per source of ``hallucination/dev.jsonl`` (FaithBench summaries, BEGIN grounded dialogue):
balanced accuracy / precision / recall of
  * the baseline "share of response words (minus stop words) absent from the context", with its
    threshold tuned per source on all the data (generous to it), in four readings (stop lists and
    tokenisers differ; the checker is held to the strongest per source), and out-of-fold;
  * the checker out-of-fold (grouped 5-fold CV by ``group``, threshold chosen in the training folds;
    the headline number), plus the spread over several fold seeds;
  * the shipped checker (``check_grounding`` with the committed weights; those weights were trained
    on this same file, so this is an in-sample number, not an estimate of quality);
then what the checker says on ``closed_book_dev.jsonl`` (no context: it must refuse to judge), and
microseconds per check.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_grounding as T
from hotwash.detect import grounding as G

# Issue 3's target: balanced accuracy at least this far above the tuned trivial baseline, per source.
TARGET_GAIN = 0.05

# A typical retrieval-augmented answer: ~100 words over two short documents (written for this bench).
DOC_A = (
    "Orders placed before 2 pm on a working day ship the same day from our Leeds warehouse. "
    "Standard delivery takes two to four working days and costs $4.99; orders over $50 ship free. "
    "Express delivery arrives the next working day for $9.99 when ordered before noon. "
    "We do not deliver to PO boxes or to addresses outside the United Kingdom and Ireland."
)
DOC_B = (
    "Items can be returned within 30 days of delivery if they are unused and in their original "
    "packaging. Refunds are issued to the original payment method within five working days of the "
    "return arriving. Sale items and gift cards cannot be returned. To start a return, sign in, "
    "open the order and choose Return items; a prepaid label is emailed to you."
)
OUTPUT = (
    "Orders placed before 2 pm on a working day ship the same day. Standard delivery usually takes "
    "two to four working days and costs $4.99, and orders over $50 ship free. If you need it sooner, "
    "express delivery arrives the next working day for $12.99 when you order before noon. You can "
    "return unused items in their original packaging within 60 days of delivery, and the refund goes "
    "back to your original payment method within five working days. Gift cards and sale items cannot "
    "be returned. To start a return, sign in, open the order and choose Return items; our courier "
    "DPD will collect the parcel from your door."
)


def timing() -> dict[str, float]:
    n = 2000
    for _ in range(200):
        G.check_grounding(OUTPUT, [DOC_A, DOC_B])
    t0 = time.perf_counter()
    for _ in range(n):
        G.check_grounding(OUTPUT, [DOC_A, DOC_B])
    warm = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        G._support.cache_clear()
        G.check_grounding(OUTPUT, [DOC_A, DOC_B])
    cold = (time.perf_counter() - t0) / n * 1e6
    return {"warm": warm, "cold": cold, "words": len(OUTPUT.split())}


def main() -> None:
    recs, X, y, src = T.dataset()
    tuned, boof = T.baseline_cv(recs, y, src)
    panel, best = T.baseline_panel(recs, y, src)
    _, pred = T.cross_validate(recs, X, y, src)
    oof = T.per_source(y, pred, src)
    reps = [T.per_source(y, T.cross_validate(recs, X, y, src, seed)[1], src) for seed in range(T.REPEATS)]
    shipped_pred, t_data = [], []
    for r in recs:
        t0 = time.perf_counter()
        res = G.check_grounding(r["response"], [r["context"]], question=r.get("question"))
        t_data.append(time.perf_counter() - t0)
        shipped_pred.append(1 if res.flagged else 0)
    shipped = T.per_source(y, shipped_pred, src)

    print("hallucination/dev.jsonl: balanced accuracy / precision / recall (label = hallucinated)")
    for s in sorted(oof):
        n = oof[s]["n"]
        bas = [r[s]["bal_acc"] for r in reps]
        print(f"\n{s} (n={n})")
        for v in T.BASELINE_VARIANTS:
            print(f"  baseline ({v}), tuned on all data{' ' * (18 - len(v))}{T.fmt(panel[v][s])}")
        print(f"  baseline (checker stop list), out-of-fold threshold  {T.fmt(boof[s])}")
        print(f"  checker, out-of-fold (HEADLINE)        {T.fmt(oof[s])}")
        print(
            f"    bal_acc over {len(bas)} fold seeds: mean {statistics.mean(bas):.3f} "
            f"(min {min(bas):.3f}, max {max(bas):.3f})"
        )
        print(f"  checker, shipped weights (in-sample)   {T.fmt(shipped[s])}")
        for name, ref in (("checker-stop-list baseline", tuned[s]), (f"strongest baseline ({best[s][0]})", best[s][1])):
            gain, mean_gain = oof[s]["bal_acc"] - ref["bal_acc"], statistics.mean(bas) - ref["bal_acc"]
            verdict = "PASS" if gain >= TARGET_GAIN else "FAIL"
            print(f"  gain over the {name}: headline {gain:+.3f}, mean over seeds {mean_gain:+.3f} "
                  f"(target +{TARGET_GAIN:.2f}) {verdict}")

    closed = T.load("closed_book_dev.jsonl")
    results = [
        G.check_grounding(r["response"], [r["context"]] if r["context"] else [], question=r.get("question"))
        for r in closed
    ]
    refused = sum(1 for res in results if not res.judgeable and res.score is None and not res.flagged)
    print(
        f"\nclosed_book_dev.jsonl: {refused}/{len(closed)} answered judgeable=False, score=None "
        f"(not flagged); {len(closed) - refused} judged"
    )

    tm = timing()
    print(
        f"\ncost: {tm['cold']:.0f} µs per check ({tm['words']}-word output, 2 short docs, context "
        f"parsed every call); {tm['warm']:.0f} µs when the docs were seen before (cached); "
        f"dev set mean {statistics.mean(t_data) * 1e6:.0f} µs, "
        f"p99 {sorted(t_data)[int(len(t_data) * 0.99)] * 1e6:.0f} µs"
    )
    print(f"DEFAULT_THRESHOLD = {G.DEFAULT_THRESHOLD}")


if __name__ == "__main__":
    main()
