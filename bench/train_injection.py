"""Train the injection classifier (tiny logistic regression, pure Python) and save it.

    .venv/bin/python bench/train_injection.py            # cross-validate, then train + save
    .venv/bin/python bench/train_injection.py --no-save  # cross-validate only

Data: ``$HOTWASH_DATA_DIR/injection/dev.jsonl`` (default ``<repo>/../shared/data``); never copied
into the repo. Features come from ``hotwash.detect.injection.features`` (word uni/bi-grams of the
normalised text, the rule / structure hits, and the words of instruction-like lines inside
data), so training and scanning see the same thing.

Cross-validation is grouped: records sharing a ``group`` are in the same fold, and so are BIPIA
records sharing an inserted attack string (the same attack text in another e-mail or table would
otherwise leak the answer across folds). The out-of-fold numbers are the honest ones.
Deterministic: no randomness except a seeded shuffle.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hotwash.detect import injection as inj  # noqa: E402

DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", Path(__file__).resolve().parents[2]
                               / "shared" / "data"))
N_FOLDS = 5
EPOCHS = 12
LR = 0.2
L2 = 1e-4
MIN_GROUPS = 2  # a feature must occur in >= this many groups of the training data
SEED = 13


def load(path: Path | None = None) -> list[dict]:
    path = path or DATA_DIR / "injection" / "dev.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def channel_of(rec: dict) -> str:
    """Retrieved-document records are scanned as context, everything else as user input."""
    return "context" if rec["kind"].startswith("indirect") else "input"


def fold_keys(recs: list[dict]) -> list[int]:
    """Fold index per record: union of `group` and BIPIA `attack_str`, then balanced folds."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for r in recs:
        g = "g:" + str(r["group"])
        find(g)
        attack = (r.get("meta") or {}).get("attack_str")
        if attack:
            union(g, "a:" + attack)
    comps: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(recs):
        comps[find("g:" + str(r["group"]))].append(i)
    order = sorted(comps.values(), key=lambda ix: (-len(ix), recs[ix[0]]["id"]))
    rng = random.Random(SEED)
    head, tail = order[:50], order[50:]
    rng.shuffle(tail)
    sizes = [0] * N_FOLDS
    out = [0] * len(recs)
    for ix in head + tail:
        k = min(range(N_FOLDS), key=lambda j: sizes[j])
        sizes[k] += len(ix)
        for i in ix:
            out[i] = k
    return out


def featurize(recs: list[dict]) -> list[tuple[dict[str, float], float]]:
    """[(features, rule score)] per record."""
    out = []
    for r in recs:
        feats, _, rule = inj.features(r["text"], channel=channel_of(r))
        out.append((feats, rule))
    return out


def train(xs: list[dict[str, float]], ys: list[int], groups: list[str]) -> tuple[float,
                                                                                dict[str, float]]:
    """Logistic regression, Adagrad, L2; class-balanced. Returns (bias, weights)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for x, g in zip(xs, groups, strict=True):
        for k in x:
            if len(seen[k]) < MIN_GROUPS:
                seen[k].add(g)
    keep = {k for k, gs in seen.items() if len(gs) >= MIN_GROUPS or k[:2] in ("R:", "S:", "V:",
                                                                              "C:", "L:")}
    data = [({k: v for k, v in x.items() if k in keep}, y) for x, y in zip(xs, ys, strict=True)]
    npos = sum(ys)
    nneg = len(ys) - npos
    cw = {1: len(ys) / (2 * npos), 0: len(ys) / (2 * nneg)}
    w: dict[str, float] = defaultdict(float)
    g2: dict[str, float] = defaultdict(lambda: 1e-8)
    b, gb = 0.0, 1e-8
    rng = random.Random(SEED)
    idx = list(range(len(data)))
    for _ in range(EPOCHS):
        rng.shuffle(idx)
        for i in idx:
            x, y = data[i]
            z = b + sum(w[k] * v for k, v in x.items())
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            err = (p - y) * cw[y]
            gb += err * err
            b -= LR * err / math.sqrt(gb)
            for k, v in x.items():
                g = err * v + L2 * w[k]
                g2[k] += g * g
                w[k] -= LR * g / math.sqrt(g2[k])
    return b, {k: v for k, v in w.items() if abs(v) >= 1e-3}


def predict(bias: float, weights: dict[str, float], x: dict[str, float]) -> float:
    return inj._Model(bias, weights, 0.5).prob(x)


def cross_validate(recs: list[dict], feats: list[tuple[dict[str, float], float]]) -> list[float]:
    """Out-of-fold classifier probabilities."""
    folds = fold_keys(recs)
    ys = [int(r["label"] == "injection") for r in recs]
    oof = [0.0] * len(recs)
    for k in range(N_FOLDS):
        tr = [i for i in range(len(recs)) if folds[i] != k]
        b, w = train([feats[i][0] for i in tr], [ys[i] for i in tr],
                     [str(recs[i]["group"]) for i in tr])
        for i in range(len(recs)):
            if folds[i] == k:
                oof[i] = predict(b, w, feats[i][0])
    return oof


def metrics(labels: list[int], preds: list[bool]) -> dict[str, float]:
    tp = sum(1 for y, p in zip(labels, preds, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, preds, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, preds, strict=True) if y and not p)
    tn = sum(1 for y, p in zip(labels, preds, strict=True) if not y and not p)
    return {
        "n": len(labels), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "fpr": fp / (fp + tn) if fp + tn else float("nan"),
    }


def save(bias: float, weights: dict[str, float], threshold: float, info: dict) -> Path:
    blob = {
        "format": "hotwash-injection-lr/1",
        "bias": round(bias, 5),
        "threshold": threshold,
        "info": info,
        "weights": {k: round(v, 4) for k, v in sorted(weights.items()) if abs(v) >= 2e-3},
    }
    inj.MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    inj.MODEL_PATH.write_text(json.dumps(blob, ensure_ascii=False, separators=(",", ":")),
                              encoding="utf-8")
    return inj.MODEL_PATH


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    recs = load()
    t0 = time.perf_counter()
    feats = featurize(recs)
    ys = [int(r["label"] == "injection") for r in recs]
    oof = cross_validate(recs, feats)
    scores = [inj.combine(rule, p) for (_, rule), p in zip(feats, oof, strict=True)]
    m = metrics(ys, [s >= inj.DEFAULT_THRESHOLD for s in scores])
    print(f"out-of-fold ({N_FOLDS} grouped folds) @ {inj.DEFAULT_THRESHOLD}: "
          f"P={m['precision']:.3f} R={m['recall']:.3f} FPR={m['fpr']:.3f}  "
          f"[{time.perf_counter() - t0:.1f}s]")
    if args.no_save:
        return
    b, w = train([f for f, _ in feats], ys, [str(r["group"]) for r in recs])
    info = {
        "trained_on": "injection/dev.jsonl",
        "records": len(recs),
        "kinds": dict(Counter(r["kind"] for r in recs)),
        "oof_recall": round(m["recall"], 4),
        "oof_fpr": round(m["fpr"], 4),
        "epochs": EPOCHS, "l2": L2, "min_groups": MIN_GROUPS,
    }
    path = save(b, w, inj.DEFAULT_THRESHOLD, info)
    print(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB, {len(w)} weights)")


if __name__ == "__main__":
    main()
