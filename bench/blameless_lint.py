"""The blameless linter on real postmortems (``../shared/data/postmortems/dev.jsonl``). One command:

    .venv/bin/python bench/blameless_lint.py [--sample N] [--mentions]

Prints:
  * findings per document (mean, median, max, documents with at least one), per rule, and lint time;
  * a sample of findings (all of them when there are at most N);
  * the sentences that name a person (first name, pronoun, role, @handle): the near misses the person
    rules must leave alone, and how many of them were flagged (``--mentions`` lists them);
  * the verdicts recorded by hand in ``bench/blameless_lint_sample.md`` (one row per finding, keyed by
    ``Finding.key``): how many judged findings are false alarms, and which current findings have no
    verdict yet (re-judge after changing a rule).

The data set lives beside the repository (set HOTWASH_DATA_DIR to move it); its licences forbid copying
it into the repository, so only keys, line numbers and short quotes are recorded here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from hotwash.postmortems.lint import RULE_IDS, lint, person_mentions

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", ROOT.parent / "shared" / "data"))
VERDICTS = ROOT / "bench" / "blameless_lint_sample.md"


def load_documents() -> list[dict]:
    path = DATA_DIR / "postmortems" / "dev.jsonl"
    if not path.exists():
        sys.exit(f"no postmortems at {path}: put ../shared/data beside the repository or set HOTWASH_DATA_DIR")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_verdicts() -> dict[str, str]:
    """key -> 'true' (a real blame sentence) or 'false' (a false alarm), from the Markdown table."""
    if not VERDICTS.exists():
        return {}
    out = {}
    for line in VERDICTS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        keys = [c.strip("`") for c in cells if re.fullmatch(r"`?[a-z-]+:[0-9a-f]{16}`?", c)]
        verdict = next((c.lower() for c in cells if c.lower() in ("true", "false")), None)
        if keys and verdict:
            out[keys[0]] = verdict
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=40, help="findings to print (default 40)")
    parser.add_argument("--mentions", action="store_true", help="list every sentence that names a person")
    args = parser.parse_args()

    docs = load_documents()
    lint(docs[0]["text"])  # compile the patterns outside the timing
    per_doc: list[int] = []
    findings: list[tuple[str, object]] = []
    started = time.perf_counter()
    for doc in docs:
        found = lint(doc["text"])
        per_doc.append(len(found))
        findings += [(doc["id"], f) for f in found]
    elapsed = time.perf_counter() - started
    chars = sum(len(d["text"]) for d in docs)

    print(f"documents: {len(docs)} ({chars:,} characters) from {DATA_DIR / 'postmortems' / 'dev.jsonl'}")
    print(f"findings: {len(findings)}; per document mean {statistics.mean(per_doc):.2f}, median "
          f"{statistics.median(per_doc):g}, max {max(per_doc)}; documents with >= 1: "
          f"{sum(1 for n in per_doc if n)} of {len(docs)}")
    by_rule = Counter(f.rule for _, f in findings)
    print("by rule: " + ", ".join(f"{rule} {by_rule.get(rule, 0)}" for rule in RULE_IDS))
    print(f"lint time: {elapsed * 1000 / len(docs):.1f} ms per document ({elapsed:.2f} s in all)")

    sample = findings if len(findings) <= args.sample else random.Random(5).sample(findings, args.sample)
    print(f"\nsample of findings ({len(sample)} of {len(findings)}):")
    for doc_id, f in sample:
        print(f"  {doc_id}:{f.line} [{f.rule}] {f.key}\n    {f.quote[:200]}\n    why: {f.why[:160]}")

    mentions = [(d["id"], m) for d in docs for m in person_mentions(d["text"])]
    flagged_lines = {(doc_id, f.line) for doc_id, f in findings}
    flagged = [(doc_id, m) for doc_id, m in mentions if (doc_id, m[0]) in flagged_lines]
    print(f"\nsentences naming a person: {len(mentions)} in {len({d for d, _ in mentions})} documents; "
          f"flagged: {len(flagged)}")
    if args.mentions:
        for doc_id, (line, quote, who) in mentions:
            mark = "FLAGGED" if (doc_id, line) in flagged_lines else "-"
            print(f"  {doc_id}:{line} {who!r} {mark}: {quote[:140]}")

    verdicts = load_verdicts()
    judged = [(d, f) for d, f in findings if f.key in verdicts]
    false_alarms = [(d, f) for d, f in judged if verdicts[f.key] == "false"]
    unjudged = [(d, f) for d, f in findings if f.key not in verdicts]
    print(f"\nverdicts in {VERDICTS.relative_to(ROOT)}: {len(judged)} of {len(findings)} findings judged; "
          f"false alarms {len(false_alarms)}"
          + (f" ({len(false_alarms) / len(judged):.0%})" if judged else ""))
    for doc_id, f in false_alarms:
        print(f"  false alarm: {doc_id}:{f.line} [{f.rule}] {f.quote[:120]}")
    for doc_id, f in unjudged:
        print(f"  not judged yet: {doc_id}:{f.line} [{f.rule}] {f.key} {f.quote[:120]}")


if __name__ == "__main__":
    main()
