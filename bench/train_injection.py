"""Train the injection classifier (tiny logistic regression, pure Python) and save it.

    .venv/bin/python bench/train_injection.py            # cross-validate, then train + save
    .venv/bin/python bench/train_injection.py --no-save  # cross-validate only

Data: ``$HOTWASH_DATA_DIR/injection/dev.jsonl`` (default ``<repo>/../shared/data``); never copied
into the repo. Features come from ``hotwash.detect.injection.features`` (word uni/bi-grams of the
normalised text, the rule / structure hits, and the words of instruction-like lines inside
data), so training and scanning see the same thing.

Cross-validation is grouped: records sharing a ``group`` are in the same fold, and so are BIPIA
records sharing an inserted attack string (the same attack text in another e-mail or table would
otherwise leak the answer across folds), and near-duplicate texts (``NEAR_DUP``: half of the shorter
text's word 5-grams occur in the other; e.g. Tensor Trust attacks that differ in one word, DAN
variants, deepset questions that share an appended injection, the same e-mail with and without an
inserted attack). The out-of-fold numbers are the honest ones for the classifier; the hand-written
rules were written by people who had read the dev data, so the held-out test half is the real check of
those.

Extra training data: ``bench/data/injection_benign_requests.txt``, everyday user requests written by
hand for hotwash (the dev set has none, see that file's header). They are added to the training side of
every fold and to the final model, and never scored.
Deterministic: no randomness except seeded shuffles.

Recipe v2 (2026-12-07): L2 ``1e-3`` instead of ``1e-4`` (the threshold chosen on inner folds moves less
between folds, and the nested false-positive rate drops from 1.28 % to 0.81 %), near-duplicate grouping
of the folds (the stricter, honest estimate). ``SEEDS`` can average the weights of several shuffle
orders (averaged logits: still one linear model of the same size); v2 keeps one. The model is written
to ``src/hotwash/detect/data/injection_model.json``, the one the scanner loads.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hotwash.detect import injection as inj  # noqa: E402

DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", Path(__file__).resolve().parents[2]
                               / "shared" / "data"))
N_FOLDS = 5
EPOCHS = 12
LR = 0.2
L2 = 1e-3  # v1: 1e-4
MIN_GROUPS = 2  # a feature must occur in >= this many groups of the training data
SEED = 13  # fold assignment
SEEDS = (13,)  # one Adagrad run per shuffle order, weights averaged (v1: 13 only)
NEAR_DUP = 0.5  # near-duplicate texts share a fold (None: v1 folds)
# The rule score as one more feature, "R:~score" (a rule that fires only inside one cluster of near-duplicate
# attacks otherwise gets no weight when that cluster is held out). Off: injection.py does not compute it
# yet, and a model trained with it must be scanned with it.
RULE_SCORE_FEATURE = False
TARGET_FPR = 0.01  # issue 3: recall >= 0.95 at FPR <= 1 %
THRESHOLD_FPR = 0.0075  # a threshold is chosen to keep the FPR under this (a margin under the target)
THRESHOLD_GRID = [round(0.30 + 0.01 * i, 2) for i in range(66)]  # 0.30 ... 0.95
EXTRA_BENIGN = Path(__file__).resolve().parent / "data" / "injection_benign_requests.txt"
MODEL_OUT = inj.MODEL_PATH


def load(path: Path | None = None) -> list[dict]:
    path = path or DATA_DIR / "injection" / "dev.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_extra() -> list[dict]:
    """The hand-written benign requests as records (kind ``extra-benign``, each its own group)."""
    lines = [ln.strip() for ln in EXTRA_BENIGN.read_text("utf-8").splitlines()]
    texts = [ln for ln in lines if ln and not ln.startswith("#")]
    return [{"id": f"extra-{i}", "text": t, "label": "benign", "kind": "extra-benign", "group": f"extra-{i}"}
            for i, t in enumerate(texts)]


def channel_of(rec: dict) -> str:
    """Retrieved-document records are scanned as context, everything else as user input."""
    return "context" if rec["kind"].startswith("indirect") else "input"


def near_duplicates(recs: list[dict], share: float, n: int = 5) -> list[tuple[int, int]]:
    """Pairs (i, j) of records where at least ``share`` of the shorter text's word ``n``-grams occur in the
    other text (a text of fewer than n words is one n-gram). N-grams found in more than 30 records
    (boilerplate) are not used to pair."""
    shingles = []
    for r in recs:
        w = re.findall(r"\w+", r["text"].lower())
        shingles.append({tuple(w[i:i + n]) for i in range(max(1, len(w) - n + 1))})
    where: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, sh in enumerate(shingles):
        for g in sh:
            where[g].append(i)
    common: Counter[tuple[int, int]] = Counter()
    for ix in where.values():
        if len(ix) <= 30:
            common.update(itertools.combinations(ix, 2))
    return [(a, b) for (a, b), c in common.items()
            if c >= share * min(len(shingles[a]), len(shingles[b]))]


def fold_keys(recs: list[dict]) -> list[int]:
    """Fold index per record: union of `group`, BIPIA `attack_str` and near-duplicate texts, then balanced
    folds."""
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
    if NEAR_DUP is not None:
        for a, b in near_duplicates(recs, NEAR_DUP):
            union("g:" + str(recs[a]["group"]), "g:" + str(recs[b]["group"]))
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
    """[(features, rule score)] per record. With ``RULE_SCORE_FEATURE`` the rule score itself is a feature
    too (``R:~score``; needs the matching change in injection.py, see ``RULE_SCORE_FEATURE``)."""
    out = []
    for r in recs:
        feats, _, rule = inj.features(r["text"], channel=channel_of(r))
        if RULE_SCORE_FEATURE and rule > 0 and "R:~score" not in feats:
            feats["R:~score"] = rule
        out.append((feats, rule))
    return out


def train(xs: list[dict[str, float]], ys: list[int], groups: list[str]) -> tuple[float,
                                                                                dict[str, float]]:
    """Logistic regression, Adagrad, L2; class-balanced; one run per seed of ``SEEDS``, weights averaged.
    Returns (bias, weights).

    One example at a time in a seeded order (numpy only holds each example's features as index and
    value arrays). A feature is kept when it occurs in at least ``MIN_GROUPS`` groups, or is a rule,
    structure, variant, channel or length feature."""
    seen: dict[str, set[str]] = defaultdict(set)
    for x, g in zip(xs, groups, strict=True):
        for k in x:
            if len(seen[k]) < MIN_GROUPS:
                seen[k].add(g)
    keep = [k for k, gs in seen.items() if len(gs) >= MIN_GROUPS or k[:2] in ("R:", "S:", "V:", "C:", "L:")]
    col = {k: i for i, k in enumerate(keep)}
    data = []
    for x in xs:
        ix = [(col[k], v) for k, v in x.items() if k in col]
        data.append((np.array([i for i, _ in ix], dtype=np.int64), np.array([v for _, v in ix], dtype=float)))
    npos = sum(ys)
    nneg = len(ys) - npos
    cw = {1: len(ys) / (2 * npos), 0: len(ys) / (2 * nneg)}
    w_sum = np.zeros(len(keep))
    b_sum = 0.0
    for seed in SEEDS:
        w = np.zeros(len(keep))
        g2 = np.full(len(keep), 1e-8)
        b, gb = 0.0, 1e-8
        rng = random.Random(seed)
        idx = list(range(len(data)))
        for _ in range(EPOCHS):
            rng.shuffle(idx)
            for i in idx:
                ii, vv = data[i]
                y = ys[i]
                z = b + float(w[ii] @ vv)
                p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
                err = (p - y) * cw[y]
                gb += err * err
                b -= LR * err / math.sqrt(gb)
                g = err * vv + L2 * w[ii]
                g2[ii] += g * g
                w[ii] -= LR * g / np.sqrt(g2[ii])
        w_sum += w
        b_sum += b
    w, b = w_sum / len(SEEDS), b_sum / len(SEEDS)
    return b, {k: float(w[i]) for k, i in col.items() if abs(w[i]) >= 1e-3}


def predict(bias: float, weights: dict[str, float], x: dict[str, float]) -> float:
    return inj._Model(bias, weights, 0.5).prob(x)


def cross_validate(recs: list[dict], feats: list[tuple[dict[str, float], float]],
                   extra: list[tuple[dict, dict[str, float]]] | None = None) -> list[float]:
    """Out-of-fold classifier probabilities of ``recs``. ``extra``: [(record, features)] added to the
    training side of every fold (``load_extra`` + ``featurize``; default: those)."""
    if extra is None:
        ex = load_extra()
        extra = [(r, f) for r, (f, _) in zip(ex, featurize(ex), strict=True)]
    folds = fold_keys(recs)
    ys = [int(r["label"] == "injection") for r in recs]
    oof = [0.0] * len(recs)
    for k in range(N_FOLDS):
        tr = [i for i in range(len(recs)) if folds[i] != k]
        b, w = train([feats[i][0] for i in tr] + [f for _, f in extra],
                     [ys[i] for i in tr] + [int(r["label"] == "injection") for r, _ in extra],
                     [str(recs[i]["group"]) for i in tr] + [str(r["group"]) for r, _ in extra])
        for i in range(len(recs)):
            if folds[i] == k:
                oof[i] = predict(b, w, feats[i][0])
    return oof


def choose_threshold(labels: list[int], scores: list[float], max_fpr: float = THRESHOLD_FPR) -> float:
    """The lowest threshold of ``THRESHOLD_GRID`` whose false-positive rate on (labels, scores) is at most
    ``max_fpr``: the highest recall that keeps the FPR there."""
    for t in THRESHOLD_GRID:
        if metrics(labels, [s >= t for s in scores])["fpr"] <= max_fpr:
            return t
    return THRESHOLD_GRID[-1]


def nested_cv(recs: list[dict], feats: list[tuple[dict[str, float], float]],
              ) -> tuple[list[float], list[float], list[float]]:
    """Out-of-fold scores with a threshold that never saw the scored fold.

    For each outer fold k, the threshold is ``choose_threshold`` on the inner out-of-fold scores of the
    other four folds (each scored by a model trained on the remaining three, plus the extra benign data);
    the fold is then scored by the model trained on all four. Returns (scores, threshold per record,
    threshold per fold). 25 trainings."""
    ex = load_extra()
    extra = [(r, f) for r, (f, _) in zip(ex, featurize(ex), strict=True)]
    folds = fold_keys(recs)
    ys = [int(r["label"] == "injection") for r in recs]
    xs_extra = [f for _, f in extra]
    ys_extra = [0] * len(extra)
    gs_extra = [str(r["group"]) for r, _ in extra]

    def fit_score(train_ix: list[int], score_ix: list[int]) -> dict[int, float]:
        b, w = train([feats[i][0] for i in train_ix] + xs_extra, [ys[i] for i in train_ix] + ys_extra,
                     [str(recs[i]["group"]) for i in train_ix] + gs_extra)
        m = inj._Model(b, w, 0.5)
        return {i: inj.combine(feats[i][1], m.prob(feats[i][0])) for i in score_ix}

    scores = [0.0] * len(recs)
    thr = [0.0] * len(recs)
    per_fold = []
    for k in range(N_FOLDS):
        outer_train = [i for i in range(len(recs)) if folds[i] != k]
        inner: dict[int, float] = {}
        for j in range(N_FOLDS):
            if j != k:
                inner.update(fit_score([i for i in outer_train if folds[i] != j],
                                       [i for i in outer_train if folds[i] == j]))
        t = choose_threshold([ys[i] for i in outer_train], [inner[i] for i in outer_train])
        per_fold.append(t)
        for i, s in fit_score(outer_train, [i for i in range(len(recs)) if folds[i] == k]).items():
            scores[i] = s
            thr[i] = t
    return scores, thr, per_fold


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


def save(bias: float, weights: dict[str, float], threshold: float, info: dict, path: Path = MODEL_OUT) -> Path:
    blob = {
        "format": "hotwash-injection-lr/1",
        "bias": round(bias, 5),
        "threshold": threshold,
        "info": info,
        "weights": {k: round(v, 4) for k, v in sorted(weights.items()) if abs(v) >= 2e-3},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(blob, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--out", type=Path, default=MODEL_OUT, help=f"model file (default {MODEL_OUT.name})")
    args = ap.parse_args()
    recs = load()
    t0 = time.perf_counter()
    feats = featurize(recs)
    ys = [int(r["label"] == "injection") for r in recs]
    global NEAR_DUP
    # The threshold: choose_threshold on the out-of-fold curve of the near-duplicate folds and on that of the
    # v1 folds, and the higher of the two (a margin: the near-duplicate folds score benign texts lower, since
    # a clean e-mail is never scored by a model that saw its attacked twin, and pick a lower threshold, 0.44
    # against 0.50 for recipe v2, below every per-fold threshold of the nested runs).
    chosen, m = 0.0, {}
    for near_dup in dict.fromkeys([NEAR_DUP, None]):
        saved, NEAR_DUP = NEAR_DUP, near_dup
        oof = cross_validate(recs, feats)
        NEAR_DUP = saved
        scores = [inj.combine(rule, p) for (_, rule), p in zip(feats, oof, strict=True)]
        t = choose_threshold(ys, scores)
        mt = metrics(ys, [s >= t for s in scores])
        print(f"out-of-fold ({N_FOLDS} folds, near_dup={near_dup}, {time.perf_counter() - t0:.0f}s): "
              f"choose_threshold (FPR <= {THRESHOLD_FPR:.2%}) = {t}: P={mt['precision']:.3f} R={mt['recall']:.3f} "
              f"FPR={mt['fpr']:.4f}")
        if t > chosen:
            chosen, m = t, mt
    print(f"threshold {chosen} (the honest estimate is the nested one: bench/injection_quality.py)")
    if args.no_save:
        return
    extra = load_extra()
    xfeats = featurize(extra)
    b, w = train([f for f, _ in feats] + [f for f, _ in xfeats], ys + [0] * len(extra),
                 [str(r["group"]) for r in recs + extra])
    info = {
        "trained_on": f"injection/dev.jsonl + {EXTRA_BENIGN.name}",
        "records": len(recs) + len(extra),
        "kinds": dict(Counter(r["kind"] for r in recs + extra)),
        "oof_recall": round(m["recall"], 4),
        "oof_fpr": round(m["fpr"], 4),
        "epochs": EPOCHS, "l2": L2, "min_groups": MIN_GROUPS, "seeds": list(SEEDS), "near_dup": NEAR_DUP,
        "threshold_chosen_oof": chosen,
    }
    path = save(b, w, chosen, info, args.out)
    print(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB, {len(w)} weights); threshold {chosen} "
          f"(injection.py reads DEFAULT_THRESHOLD, not the file's: set it there when switching)")


if __name__ == "__main__":
    main()
