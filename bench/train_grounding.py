"""Train the grounding checker's logistic regression on human-labelled hallucination data.

    .venv/bin/python bench/train_grounding.py            # cross-validate, then write the weights
    .venv/bin/python bench/train_grounding.py --cv-only  # report only

Data: ``hallucination/dev.jsonl`` under ``$HOTWASH_DATA_DIR`` (default ``../shared/data`` next to the
repo). Features come from ``hotwash.detect.grounding.features`` so training and serving cannot drift.
Cross-validation is grouped by the record's ``group`` (all summaries of one passage / all turns of one
dialogue stay in one fold) and the decision threshold is chosen inside the training folds only.
Output: ``src/hotwash/detect/data/grounding_weights.json`` (a few hundred bytes). Pure Python, no numpy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hotwash.detect import grounding  # noqa: E402

DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
WEIGHTS = REPO / "src" / "hotwash" / "detect" / "data" / "grounding_weights.json"
FOLDS = 5
L2 = 1.0
REPEATS = 5


# --------------------------------------------------------------------------- data


def load(name: str = "dev.jsonl") -> list[dict]:
    path = DATA_DIR / "hallucination" / name
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def source_of(r: dict) -> str:
    s = r["source"].lower()
    return "FaithBench" if "faithbench" in s else "BEGIN" if "begin" in s else r["source"].split()[0]


def label(r: dict) -> int:
    return 1 if r["label"] == "hallucinated" else 0


def record_features(r: dict) -> dict[str, float]:
    return grounding.feature_dict(r["response"], [r["context"]], question=r.get("question"))


def fold_of(group: str, k: int = FOLDS, seed: int = 0) -> int:
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest(), 16) % k


# --------------------------------------------------------------------------- metrics


def confusion(y: list[int], pred: list[int]) -> tuple[int, int, int, int]:
    tp = sum(1 for a, b in zip(y, pred, strict=True) if a and b)
    fp = sum(1 for a, b in zip(y, pred, strict=True) if not a and b)
    fn = sum(1 for a, b in zip(y, pred, strict=True) if a and not b)
    tn = len(y) - tp - fp - fn
    return tp, fp, fn, tn


def metrics(y: list[int], pred: list[int]) -> dict[str, float]:
    tp, fp, fn, tn = confusion(y, pred)
    tpr = tp / (tp + fn) if tp + fn else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return {
        "bal_acc": (tpr + tnr) / 2,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tpr,
        "n": len(y),
    }


def best_threshold(scores: list[float], y: list[int], src: list[str]) -> float:
    """Threshold maximising the mean over sources of balanced accuracy."""
    cands = sorted(set(round(s, 4) for s in scores))
    if len(cands) > 400:
        step = len(cands) / 400
        cands = [cands[int(i * step)] for i in range(400)]
    sources = sorted(set(src))
    best, best_t = -1.0, 0.5
    for t in cands:
        tot = 0.0
        for s in sources:
            idx = [i for i, x in enumerate(src) if x == s]
            tot += metrics([y[i] for i in idx], [1 if scores[i] >= t else 0 for i in idx])["bal_acc"]
        if tot > best:
            best, best_t = tot, t
    return best_t


# --------------------------------------------------------------------------- baseline


_BASE_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A short, conventional stop list (articles, conjunctions, prepositions, pronouns, forms of "be").
SHORT_STOPWORDS = frozenset(
    [
        "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from",
        "as", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this", "that", "these", "those",
        "i", "you", "he", "she", "we", "they", "me", "him", "her", "us", "them", "my", "your", "his", "our",
        "their",
    ]
)


def _novel_share(words: list[str], ctx: set[str], stop: frozenset[str]) -> float:
    kept = [w for w in words if w not in stop]
    return sum(1 for w in kept if w not in ctx) / len(kept) if kept else 0.0


def baseline_score(r: dict, variant: str = "checker stop list") -> float:
    """Share of response words (minus stop words) absent from the context.

    The issue leaves the tokeniser and the stop list open, and they matter (BEGIN's unsupported turns
    are full of "I", "think", "love"...), so the bench scores several readings of it and holds the
    checker to the strongest (``baseline_panel``); "checker stop list" is the reading used before."""
    if variant == "whitespace words":
        ctx = set(r["context"].lower().split())
        return _novel_share(r["response"].lower().split(), ctx, grounding.STOPWORDS)
    ctx = set(_BASE_WORD.findall(r["context"].lower()))
    words = _BASE_WORD.findall(r["response"].lower())
    stop = {"checker stop list": grounding.STOPWORDS, "short stop list": SHORT_STOPWORDS,
            "no stop list": frozenset()}[variant]
    return _novel_share(words, ctx, stop)


BASELINE_VARIANTS = ("checker stop list", "short stop list", "no stop list", "whitespace words")


# --------------------------------------------------------------------------- logistic regression


def standardise(X: list[list[float]]) -> tuple[list[float], list[float]]:
    k = len(X[0])
    n = len(X)
    mean = [sum(row[j] for row in X) / n for j in range(k)]
    scale = []
    for j in range(k):
        var = sum((row[j] - mean[j]) ** 2 for row in X) / n
        scale.append(math.sqrt(var) if var > 1e-12 else 1.0)
    return mean, scale


def _solve(A: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (A is small and positive definite)."""
    n = len(b)
    M = [[*row[:], b[i]] for i, row in enumerate(A)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        piv = M[c][c]
        for r in range(c + 1, n):
            f = M[r][c] / piv
            if f:
                Mr, Mc = M[r], M[c]
                for j in range(c, n + 1):
                    Mr[j] -= f * Mc[j]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (M[r][n] - sum(M[r][j] * x[j] for j in range(r + 1, n))) / M[r][r]
    return x


def fit_logreg(X: list[list[float]], y: list[int], w: list[float], l2: float = L2, iters: int = 30) -> dict:
    """Weighted L2-regularised logistic regression by Newton's method (IRLS)."""
    mean, scale = standardise(X)
    Z = [[1.0] + [(v - m) / s for v, m, s in zip(row, mean, scale, strict=True)] for row in X]
    k = len(Z[0])
    beta = [0.0] * k
    wsum = sum(w)
    for _ in range(iters):
        grad = [0.0] * k
        H = [[0.0] * k for _ in range(k)]
        for z, yi, wi in zip(Z, y, w, strict=True):
            eta = sum(b * v for b, v in zip(beta, z, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, eta))))
            g = wi * (p - yi)
            h = wi * p * (1 - p)
            for a in range(k):
                za = z[a]
                grad[a] += g * za
                hz = h * za
                Ha = H[a]
                for c in range(a, k):
                    Ha[c] += hz * z[c]
        for a in range(k):
            for c in range(a):
                H[a][c] = H[c][a]
        # penalty (not on the intercept), scaled so l2 is per unit of total sample weight
        for a in range(1, k):
            grad[a] += l2 * beta[a] * wsum / len(y) / 100
            H[a][a] += l2 * wsum / len(y) / 100
        step = _solve(H, grad)
        beta = [b - s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return {"intercept": beta[0], "coef": beta[1:], "mean": mean, "scale": scale}


def predict_linear(model: dict, X: list[list[float]]) -> list[float]:
    out = []
    for row in X:
        z = model["intercept"] + sum(
            c * (v - m) / s for c, v, m, s in zip(model["coef"], row, model["mean"], model["scale"], strict=True)
        )
        out.append(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))))
    return out


def class_weights(y: list[int]) -> list[float]:
    """Both classes get the same total weight (the target metric is balanced accuracy)."""
    pos = sum(y)
    neg = len(y) - pos
    return [len(y) / (2 * pos) if yi else len(y) / (2 * neg) for yi in y]


def train(X: list[dict], y: list[int], src: list[str]) -> dict:
    """One logistic regression per regime (grounding.MODEL_FEATURES). Each regime's decision
    threshold is chosen on its own training data and folded into its intercept, so every regime
    flags at probability 0.5 (= DEFAULT_THRESHOLD)."""
    models = {}
    for reg, names in grounding.MODEL_FEATURES.items():
        idx = [i for i, x in enumerate(X) if grounding.regime(x) == reg]
        Xr = [[X[i][k] for k in names] for i in idx]
        yr = [y[i] for i in idx]
        m = fit_logreg(Xr, yr, class_weights(yr))
        t = best_threshold(predict_linear(m, Xr), yr, [reg] * len(yr))
        t = min(max(t, 1e-6), 1 - 1e-6)
        m["intercept"] -= math.log(t / (1 - t))
        m["features"] = list(names)
        m["n"] = len(idx)
        models[reg] = m
    return {"models": models, "threshold": 0.5}


def predict(model: dict, X: list[dict]) -> list[float]:
    out = []
    for x in X:
        m = model["models"][grounding.regime(x)]
        (p,) = predict_linear(m, [[x[k] for k in m["features"]]])
        out.append(grounding.floored(p, x))
    return out


# --------------------------------------------------------------------------- cross-validation


def dataset() -> tuple[list[dict], list[list[float]], list[int], list[str]]:
    recs = load()
    X = [record_features(r) for r in recs]
    y = [label(r) for r in recs]
    src = [source_of(r) for r in recs]
    return recs, X, y, src


def cross_validate(recs, X, y, src, seed: int = 0) -> tuple[list[float], list[int]]:
    """Out-of-fold scores and predictions (threshold from the training folds)."""
    folds = [fold_of(r["group"], seed=seed) for r in recs]
    oof = [0.0] * len(recs)
    pred = [0] * len(recs)
    for k in range(FOLDS):
        tr = [i for i, f in enumerate(folds) if f != k]
        te = [i for i, f in enumerate(folds) if f == k]
        m = train([X[i] for i in tr], [y[i] for i in tr], [src[i] for i in tr])
        for i, p in zip(te, predict(m, [X[i] for i in te]), strict=True):
            oof[i] = p
            pred[i] = 1 if p >= m["threshold"] else 0
    return oof, pred


def baseline_cv(recs, y, src, seed: int = 0, variant: str = "checker stop list") -> tuple[dict, dict]:
    """Baseline with a per-source threshold tuned on all data (generous) and out-of-fold."""
    scores = [baseline_score(r, variant) for r in recs]
    tuned, oof = {}, {}
    folds = [fold_of(r["group"], seed=seed) for r in recs]
    for s in sorted(set(src)):
        idx = [i for i, x in enumerate(src) if x == s]
        t = best_threshold([scores[i] for i in idx], [y[i] for i in idx], [s] * len(idx))
        tuned[s] = metrics([y[i] for i in idx], [1 if scores[i] >= t else 0 for i in idx])
        tuned[s]["threshold"] = t
        pred = {}
        for k in range(FOLDS):
            tr = [i for i in idx if folds[i] != k]
            tk = best_threshold([scores[i] for i in tr], [y[i] for i in tr], [s] * len(tr))
            for i in idx:
                if folds[i] == k:
                    pred[i] = 1 if scores[i] >= tk else 0
        oof[s] = metrics([y[i] for i in idx], [pred[i] for i in idx])
    return tuned, oof


def baseline_panel(recs, y, src) -> tuple[dict[str, dict], dict[str, tuple[str, dict]]]:
    """Every baseline reading, tuned on all data; and per source the strongest one (name, metrics)."""
    panel = {v: baseline_cv(recs, y, src, variant=v)[0] for v in BASELINE_VARIANTS}
    best = {s: max(((v, panel[v][s]) for v in BASELINE_VARIANTS), key=lambda t: t[1]["bal_acc"])
            for s in sorted(set(src))}
    return panel, best


def per_source(y, pred, src) -> dict[str, dict]:
    out = {}
    for s in sorted(set(src)):
        idx = [i for i, x in enumerate(src) if x == s]
        out[s] = metrics([y[i] for i in idx], [pred[i] for i in idx])
    return out


def fmt(m: dict) -> str:
    return f"bal_acc {m['bal_acc']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv-only", action="store_true", help="report, do not write weights")
    args = ap.parse_args()
    recs, X, y, src = dataset()
    tuned, boof = baseline_cv(recs, y, src)
    _, best = baseline_panel(recs, y, src)
    _, pred = cross_validate(recs, X, y, src)
    oof = per_source(y, pred, src)
    rep = [per_source(y, cross_validate(recs, X, y, src, seed)[1], src) for seed in range(REPEATS)]
    for s in sorted(oof):
        bas = [r[s]["bal_acc"] for r in rep]
        print(f"{s:11s} baseline(tuned) {fmt(tuned[s])}")
        print(f"{s:11s} baseline(best)  {fmt(best[s][1])}  [{best[s][0]}]")
        print(f"{s:11s} baseline(oof)   {fmt(boof[s])}")
        print(
            f"{s:11s} checker(oof)    {fmt(oof[s])}   "
            f"[bal_acc over {REPEATS} fold seeds: mean {sum(bas) / len(bas):.3f}, "
            f"min {min(bas):.3f}, max {max(bas):.3f}]"
        )
    if args.cv_only:
        return
    model = train(X, y, src)
    out = {
        "trained_on": "hallucination/dev.jsonl (FaithBench + BEGIN human labels), class-balanced",
        "l2": L2,
        "threshold": model["threshold"],
        "long_min_tokens": grounding.LONG_MIN_TOKENS,
        "doc_min_tokens": grounding.DOC_MIN_TOKENS,
        "models": {
            reg: {
                "features": m["features"],
                "coef": [round(c, 6) for c in m["coef"]],
                "intercept": round(m["intercept"], 6),
                "mean": [round(v, 6) for v in m["mean"]],
                "scale": [round(v, 6) for v in m["scale"]],
                "n_train": m["n"],
            }
            for reg, m in model["models"].items()
        },
    }
    WEIGHTS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {WEIGHTS.relative_to(REPO)}")
    for reg, m in model["models"].items():
        print(f"  [{reg}] n={m['n']} intercept {m['intercept']:+.3f}")
        for name, c in sorted(zip(m["features"], m["coef"], strict=True), key=lambda t: -abs(t[1])):
            print(f"    {name:18s} {c:+.3f}  (per standard deviation)")


if __name__ == "__main__":
    main()
