"""Grounding (hallucination) checker: which claims of a model output does its context not support?

Cheap, pure-Python and offline. The output is tokenised once; every content word is reduced with a
light suffix stemmer and looked up in the context (and, when given, the user's question/previous turn:
words taken from it are not hallucinations). On top of that the checker looks for the claim types
that matter most when they are invented: numbers and dates, capitalised names, quoted text, URLs and
citation ids, plus novel word bigrams, weak verbatim support, negation that the context lacks and
first-person statements (opinions/experiences a document cannot support).

These signals become a short feature vector scored by a small logistic regression trained on
human-labelled data (``bench/train_grounding.py``; weights in ``data/grounding_weights.json``).
Without any context the checker refuses to judge (``judgeable=False``, ``score=None``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = [
    "DEFAULT_THRESHOLD",
    "FEATURE_NAMES",
    "GroundingResult",
    "check_grounding",
    "feature_dict",
]


@dataclass(frozen=True, slots=True)
class GroundingResult:
    judgeable: bool  # False when there is no context to judge against
    score: float | None  # 0..1 strength the output is unsupported; None if not judgeable
    flagged: bool
    unsupported: list[str]  # unsupported spans (short quotes)
    reason: str  # one human sentence


# --------------------------------------------------------------------------- lexical resources

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "almost",
        "also",
        "although",
        "always",
        "am",
        "among",
        "an",
        "and",
        "another",
        "any",
        "anyone",
        "anything",
        "are",
        "aren't",
        "around",
        "as",
        "at",
        "be",
        "became",
        "because",
        "become",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "can't",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "done",
        "down",
        "during",
        "each",
        "either",
        "else",
        "even",
        "ever",
        "every",
        "few",
        "for",
        "from",
        "further",
        "get",
        "gets",
        "getting",
        "got",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "he'd",
        "he'll",
        "he's",
        "her",
        "here",
        "here's",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "how's",
        "however",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "least",
        "less",
        "let's",
        "like",
        "made",
        "make",
        "many",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "mustn't",
        "my",
        "myself",
        "neither",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "often",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "others",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "per",
        "quite",
        "rather",
        "really",
        "same",
        "say",
        "said",
        "says",
        "see",
        "seem",
        "seems",
        "shall",
        "shan't",
        "she",
        "she'd",
        "she'll",
        "she's",
        "should",
        "shouldn't",
        "since",
        "so",
        "some",
        "something",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they'd",
        "they'll",
        "they're",
        "they've",
        "thing",
        "things",
        "this",
        "those",
        "though",
        "through",
        "thus",
        "to",
        "too",
        "toward",
        "towards",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "use",
        "used",
        "using",
        "very",
        "via",
        "was",
        "wasn't",
        "we",
        "we'd",
        "we'll",
        "we're",
        "we've",
        "well",
        "were",
        "weren't",
        "what",
        "what's",
        "whatever",
        "when",
        "when's",
        "where",
        "where's",
        "whether",
        "which",
        "while",
        "who",
        "who's",
        "whom",
        "whose",
        "why",
        "why's",
        "will",
        "with",
        "within",
        "without",
        "won't",
        "would",
        "wouldn't",
        "yes",
        "yet",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "yeah",
        "oh",
        "ok",
        "okay",
        "lol",
        "wow",
        "hey",
        "hi",
        "hello",
        "well",
        "sure",
        "actually",
        "pretty",
        "lot",
        "lots",
        "kind",
        "sort",
        "know",
        "think",
        "mean",
        "want",
        "go",
        "going",
        "gone",
        "come",
        "came",
    ]
)
# Words whose presence changes what a sentence claims.
NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "n't",
        "cannot",
        "without",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "don't",
        "doesn't",
        "didn't",
        "won't",
        "wouldn't",
        "can't",
        "couldn't",
        "shouldn't",
        "hasn't",
        "haven't",
        "hadn't",
    ]
)
# Subjective/chit-chat words: opinions and experiences no document can support.
OPINION = frozenset(
    [
        "love",
        "loved",
        "loves",
        "like",
        "liked",
        "likes",
        "favorite",
        "favourite",
        "favorites",
        "great",
        "good",
        "nice",
        "cool",
        "awesome",
        "amazing",
        "wonderful",
        "fun",
        "funny",
        "interesting",
        "enjoy",
        "enjoyed",
        "enjoys",
        "prefer",
        "preferred",
        "hate",
        "hated",
        "think",
        "thought",
        "guess",
        "believe",
        "feel",
        "felt",
        "hope",
        "wish",
        "wow",
        "lol",
        "haha",
        "sure",
        "agree",
        "agreed",
        "glad",
        "happy",
        "sad",
        "sorry",
        "fan",
        "fans",
        "best",
        "worst",
        "bad",
        "beautiful",
        "delicious",
        "tasty",
        "boring",
        "excited",
        "exciting",
        "want",
        "wanted",
        "personally",
        "honestly",
        "probably",
        "maybe",
    ]
)
SECOND_PERSON = frozenset(["you", "you're", "you've", "you'd", "you'll", "your", "yours", "yourself"])
FIRST_PERSON = frozenset(
    ["i", "i'm", "i've", "i'd", "i'll", "me", "my", "mine", "myself", "we", "we're", "we've", "our", "ours", "us"]
)
# Summary/dialogue boilerplate: describes the text rather than claiming anything about the world.
META_WORDS = frozenset(
    [
        "summary",
        "summarize",
        "summarise",
        "summarized",
        "summarised",
        "summarizes",
        "passage",
        "article",
        "text",
        "document",
        "discusses",
        "discuss",
        "discussed",
        "describes",
        "described",
        "describe",
        "mentions",
        "mentioned",
        "mention",
        "highlights",
        "highlight",
        "highlighted",
        "highlighting",
        "emphasizes",
        "emphasize",
        "emphasized",
        "emphasizing",
        "notes",
        "noted",
        "concise",
        "brief",
        "briefly",
        "overall",
        "key",
        "main",
        "points",
        "point",
        "details",
        "information",
        "provided",
        "provides",
        "provide",
        "discussed",
        "covers",
        "covering",
        "core",
        "pieces",
        "author",
        "report",
        "reports",
        "reported",
        "states",
        "stated",
        "explains",
        "explained",
        "focuses",
        "focused",
        "focus",
        "here",
        "following",
        "including",
        "includes",
        "include",
    ]
)
NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
    "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000",
    "billion": "1000000000", "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5",
    "dozen": "12", "half": "0.5",
}  # fmt: skip

_WORD_RE = re.compile(
    r"https?://[^\s<>\"')\]]+"  # URL
    r"|\[\d+(?:[,\-–]\s*\d+)*\]"  # citation id like [3] or [2, 5]
    r"|\d+(?:[.,:]\d+)*(?:st|nd|rd|th|s)?"  # number / date / time
    r"|[^\W\d_]+(?:['’][^\W\d_]+)*"  # word (unicode letters, inner apostrophes)
    r"|[.!?;:\n]"  # sentence end
)
_SENT_END_RE = re.compile(r"[.!?;:\n]+")
_QUOTE_RE = re.compile(r"[\"“”]([^\"“”]{3,200})[\"“”]")
_SUFFIXES = (
    "ational", "ations", "ation", "ities", "ity", "ments", "ment", "ness", "ings", "ing", "edly",
    "ied", "ies", "ed", "es", "ly", "er", "s",
)  # fmt: skip


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stemmer: enough to match 'destroyed'/'destroys'/'destroying'."""
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 4:
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)]
            if suf in ("ied", "ies"):
                w += "y"
            break
    if len(w) > 3 and w[-1] == "e":
        w = w[:-1]
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "aeiou":  # running -> run
        w = w[:-1]
    return w[:8]


def _norm_number(tok: str) -> str:
    t = tok.lower()
    for suf in ("st", "nd", "rd", "th", "s"):
        if t.endswith(suf) and t[: -len(suf)][-1:].isdigit():
            t = t[: -len(suf)]
            break
    t = t.replace(",", "")
    if "." in t:
        t = t.rstrip("0").rstrip(".") if ":" not in t else t
    return t


# --------------------------------------------------------------------------- text analysis


_PUNCT = frozenset(".!?;:\n")
# token kinds
_CONTENT, _FUNCTION, _NUM, _REF, _NUMWORD, _STOP = range(6)
# token flags
_F_FIRST, _F_SECOND, _F_OPINION, _F_NEG, _F_UPPER, _F_LONG = 1, 2, 4, 8, 16, 32
_INFO: dict[str, tuple[int, str, int]] = {}


def _info(tok: str) -> tuple[int, str, int]:
    """(kind, stem or normalised value, flags) of one token text; memoised."""
    info = _INFO.get(tok)
    if info is not None:
        return info
    low = tok.lower()
    c = tok[0]
    flags = 0
    if c in _PUNCT:
        info = (_STOP, "", 0)
    elif c.isdigit():
        info = (_NUM, _norm_number(tok), 0)
    elif c == "[" or (c in "hH" and low.startswith("http")):
        info = (_REF, low.rstrip(".,;").replace(" ", ""), 0)
    else:
        if low in FIRST_PERSON:
            flags |= _F_FIRST
        elif low in SECOND_PERSON:
            flags |= _F_SECOND
        if low in OPINION:
            flags |= _F_OPINION
        if low in NEGATIONS or low.endswith("n't"):
            flags |= _F_NEG
        if c.isupper():
            flags |= _F_UPPER
        if len(low) >= 8:
            flags |= _F_LONG
        if low in NUMBER_WORDS:
            info = (_NUMWORD, NUMBER_WORDS[low], flags)
        elif low in STOPWORDS or low in META_WORDS or len(low) < 2:
            info = (_FUNCTION, stem(low), flags)
        else:
            info = (_CONTENT, stem(low), flags)
    if len(_INFO) < 200_000:
        _INFO[tok] = info
    return info


class _Support:
    """Everything a context offers as support, built once per context string."""

    __slots__ = ("bigrams", "fourgrams", "has_neg", "low", "ntok", "nums", "stems")

    def __init__(self, text: str) -> None:
        infos = [_info(t) for t in _WORD_RE.findall(text)]
        seq = [i[1] for i in infos if i[0] != _STOP]
        self.stems = set(seq)
        self.nums = {i[1] for i in infos if i[0] == _NUM or i[0] == _NUMWORD}
        self.bigrams = set(itertools.pairwise(seq))
        self.fourgrams = set(zip(seq, seq[1:], seq[2:], seq[3:], strict=False))
        self.has_neg = any(i[2] & _F_NEG for i in infos)
        self.low = " ".join(text.lower().split())
        self.ntok = len(seq)


@lru_cache(maxsize=512)
def _support(text: str) -> _Support:
    return _Support(text)


def _merge(parts: list[_Support]) -> _Support:
    if len(parts) == 1:
        return parts[0]
    m = _Support.__new__(_Support)
    m.stems = set().union(*(p.stems for p in parts))
    m.nums = set().union(*(p.nums for p in parts))
    m.bigrams = set().union(*(p.bigrams for p in parts))
    m.fourgrams = set().union(*(p.fourgrams for p in parts))
    m.has_neg = any(p.has_neg for p in parts)
    m.low = "\n".join(p.low for p in parts)
    m.ntok = sum(p.ntok for p in parts)
    return m


FEATURE_NAMES = (
    "novel",  # share of content words absent from context+question
    "novel_ctx",  # share absent from context alone
    "log_novel",  # log1p(number of novel content words)
    "max_sent",  # highest novel share among sentences
    "bigram_novel",  # share of word bigrams absent from context+question
    "uncopied",  # share of tokens not covered by any 4-gram shared with the context
    "hard",  # unsupported numbers, URLs, citation ids, quotes (capped)
    "entity",  # unsupported capitalised names (capped)
    "neg",  # negation in output, none in context
    "first_person",  # share of first-person tokens
    "question_mark",  # output asks something
    "log_len",  # log1p(tokens)
    "long",  # output > 50 words (summary-like rather than a chat turn)
    "log_ctx",  # log1p(context tokens)
    "q_echo",  # share of content words found only in the question
    "uncov2",  # share of tokens not in any bigram shared with context or question
    "log_bnovel",  # log1p(number of novel bigrams)
    "novel_sents",  # log1p(sentences with > 25% novel content words)
    "long_novel",  # log1p(novel content words of 8+ letters)
    "novel_all",  # share of all tokens, stop words included, absent from the context
    "bigram_novel_ctx",  # share of word bigrams absent from the context alone
    "opinion",  # share of subjective words (love, favorite, think...) absent from the context
    "second_person",  # share of second-person tokens
)


@dataclass(slots=True)
class _Analysis:
    x: dict[str, float]
    spans: list[tuple[int, int, str]]  # (start, end, kind) of unsupported material in the output
    counts: dict[str, int]


def _analyse(output: str, ctx: _Support, q: _Support | None) -> _Analysis:
    raw = _WORD_RE.findall(output)
    qstems = q.stems if q is not None else frozenset()
    qnums = q.nums if q is not None else frozenset()
    cstems = ctx.stems
    cnums = ctx.nums

    content = novel = novel_ctx = hard = entity = 0
    first = second = opinion = neg = 0
    sent_content = sent_novel = novel_sents = long_novel = 0
    max_sent = 0.0
    sent_start = True
    bad: list[tuple[int, int, str]] = []
    seq: list[str] = []
    pos = 0
    find = output.find
    for tok in raw:
        start = find(tok, pos)  # tokens come in order; the gaps hold no letters or digits
        pos = start + len(tok)
        kind, st, flags = _info(tok)
        if kind == _STOP:  # sentence boundary
            if sent_content:
                r = sent_novel / sent_content
                if sent_content >= 3 and r > max_sent:
                    max_sent = r
                if r > 0.25:
                    novel_sents += 1
            sent_content = sent_novel = 0
            sent_start = True
            continue
        seq.append(st)
        if kind == _FUNCTION:
            if flags:
                if flags & _F_FIRST:
                    first += 1
                elif flags & _F_SECOND:
                    second += 1
                if flags & _F_OPINION and st not in cstems:
                    opinion += 1
                if flags & _F_NEG:
                    neg += 1
            sent_start = False
            continue
        if kind == _CONTENT:
            content += 1
            sent_content += 1
            if flags & _F_OPINION and st not in cstems:
                opinion += 1
            if st not in cstems:
                novel_ctx += 1
                if st not in qstems:
                    novel += 1
                    sent_novel += 1
                    if flags & _F_LONG:
                        long_novel += 1
                    if flags & _F_UPPER and not sent_start:
                        entity += 1
                        bad.append((start, pos, "entity"))
                    else:
                        bad.append((start, pos, "word"))
            sent_start = False
            continue
        sent_start = False
        if kind in (_NUM, _NUMWORD):
            if st not in cnums and st not in qnums and (kind == _NUM or st not in cstems):
                hard += 1
                if start > 0 and output[start - 1] in "$£€¥":
                    start -= 1
                bad.append((start, pos, "number"))
        elif st not in ctx.low:  # URL / citation id
            hard += 1
            bad.append((start, pos, "citation"))
    if sent_content:
        r = sent_novel / sent_content
        if sent_content >= 3 and r > max_sent:
            max_sent = r
        if r > 0.25:
            novel_sents += 1
    n = len(seq)

    # quoted text must appear verbatim (modulo case/whitespace)
    for m in _QUOTE_RE.finditer(output):
        quote = " ".join(m.group(1).lower().split())
        if len(quote.split()) >= 2 and quote not in ctx.low:
            hard += 1
            bad.append((m.start(), m.end(), "quote"))

    bigrams = list(itertools.pairwise(seq))
    qbig = q.bigrams if q is not None else frozenset()
    bnovel = sum(1 for b in bigrams if b not in ctx.bigrams and b not in qbig)
    bnovel_ctx = sum(1 for b in bigrams if b not in ctx.bigrams)
    nall = sum(1 for st in seq if st not in cstems)
    cov2 = [False] * n
    for i, b in enumerate(bigrams):
        if b in ctx.bigrams or b in qbig:
            cov2[i] = cov2[i + 1] = True
    covered = [False] * n
    for i in range(n - 3):
        if (seq[i], seq[i + 1], seq[i + 2], seq[i + 3]) in ctx.fourgrams:
            covered[i] = covered[i + 1] = covered[i + 2] = covered[i + 3] = True

    long = 1.0 if n > LONG_MIN_TOKENS else 0.0
    x = {
        "novel": novel / content if content else 0.0,
        "novel_ctx": novel_ctx / content if content else 0.0,
        "log_novel": math.log1p(novel),
        "max_sent": max_sent if max_sent else (novel / content if content else 0.0),
        "bigram_novel": bnovel / len(bigrams) if bigrams else 0.0,
        "uncopied": 1.0 - (sum(covered) / n) if n else 0.0,
        "hard": float(min(hard, 3)),
        "entity": float(min(entity, 5)),
        "neg": 1.0 if neg and not ctx.has_neg else 0.0,
        "first_person": first / n if n else 0.0,
        "question_mark": 1.0 if "?" in output else 0.0,
        "log_len": math.log1p(n),
        "long": long,
        "log_ctx": math.log1p(ctx.ntok),
        "q_echo": (novel_ctx - novel) / content if content else 0.0,
        "uncov2": 1.0 - (sum(cov2) / n) if n else 0.0,
        "log_bnovel": math.log1p(bnovel),
        "novel_sents": math.log1p(novel_sents),
        "long_novel": math.log1p(long_novel),
        "novel_all": nall / n if n else 0.0,
        "bigram_novel_ctx": bnovel_ctx / len(bigrams) if bigrams else 0.0,
        "opinion": opinion / n if n else 0.0,
        "second_person": second / n if n else 0.0,
    }
    return _Analysis(x, bad, {"content": content, "novel": novel, "hard": hard, "entity": entity})


# Two regimes, chosen by output length: a chat-style answer (a sentence or two) and a long-form
# output (summary, report). They fail differently: short answers drift into opinions and
# unsupported asides, long ones into specific, rarer words and numbers the source never gave.
LONG_MIN_TOKENS = 50
MODEL_FEATURES = {
    "short": tuple(k for k in FEATURE_NAMES if k != "long"),
    "long": ("long_novel", "log_bnovel"),
}


def regime(x: dict[str, float]) -> str:
    return "long" if x["long"] else "short"


def feature_dict(output: str, contexts: list[str], question: str | None = None) -> dict[str, float]:
    """All features by name (``FEATURE_NAMES``); used by the training script."""
    ctx = _merge([_support(c) for c in contexts if c and c.strip()] or [_support("")])
    q = _support(question) if question and question.strip() else None
    return _analyse(output, ctx, q).x


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class _Linear:
    names: tuple[str, ...]
    coef: tuple[float, ...]  # already divided by the feature scale
    offset: float  # intercept with the feature means folded in

    @classmethod
    def from_json(cls, m: dict) -> _Linear:
        scaled = [c / s for c, s in zip(m["coef"], m["scale"], strict=True)]
        offset = m["intercept"] - sum(c * mu for c, mu in zip(scaled, m["mean"], strict=True))
        return cls(tuple(m["features"]), tuple(scaled), offset)

    def score(self, x: dict[str, float]) -> float:
        z = self.offset
        for c, k in zip(self.coef, self.names, strict=True):
            z += c * x[k]
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))


def _load_models() -> tuple[dict[str, _Linear], float]:
    fallback = _Linear(("novel", "log_novel"), (4.0, 1.0), -3.0)  # hand-set, for an untrained tree
    try:
        raw = (resources.files(__package__) / "data" / "grounding_weights.json").read_text("utf-8")
    except FileNotFoundError:
        warnings.warn("grounding weights missing; using a hand-set fallback", stacklevel=2)
        return {"short": fallback, "long": fallback}, 0.5
    m = json.loads(raw)
    models = {}
    for name, feats in MODEL_FEATURES.items():
        mm = m["models"].get(name)
        if mm is None or tuple(mm["features"]) != feats:
            warnings.warn(
                "grounding weights do not match the features; run bench/train_grounding.py",
                stacklevel=2,
            )
            models[name] = fallback
        else:
            models[name] = _Linear.from_json(mm)
    return models, float(m["threshold"])


_MODELS, DEFAULT_THRESHOLD = _load_models()


# A number, date, URL, citation id or quotation the context does not contain is a hard claim:
# flagged whatever the word-level evidence says.
HARD_CLAIM_FLOOR = 0.75


def _score(x: dict[str, float]) -> float:
    p = _MODELS[regime(x)].score(x)
    return max(p, HARD_CLAIM_FLOOR) if x["hard"] > 0 else p


# --------------------------------------------------------------------------- public API


def _spans(output: str, bad: list[tuple[int, int, str]], limit: int = 8) -> list[str]:
    """Merge unsupported tokens that are adjacent (only spaces/punctuation apart) into short quotes;
    numbers, citations, quotes and names first."""
    if not bad:
        return []
    bad = sorted(bad)
    groups: list[list] = []
    for s, e, k in bad:
        if groups and s - groups[-1][1] <= 2 and "\n" not in output[groups[-1][1] : s]:
            g = groups[-1]
            g[1] = max(g[1], e)
            g[2].add(k)
        elif groups and s < groups[-1][1]:  # quote overlapping tokens
            groups[-1][1] = max(groups[-1][1], e)
            groups[-1][2].add(k)
        else:
            groups.append([s, e, {k}])
    rank = {"number": 0, "citation": 0, "quote": 1, "entity": 2, "word": 3}

    def key(g: list) -> tuple[int, int]:
        return (min(rank[k] for k in g[2]), -(g[1] - g[0]))

    chosen = sorted(sorted(groups, key=key)[:limit], key=lambda g: g[0])
    out = []
    for s, e, _ in chosen:
        text = " ".join(output[s:e].split())
        out.append(text if len(text) <= 80 else text[:77] + "...")
    return out


def check_grounding(
    output: str,
    contexts: list[str],
    *,
    question: str | None = None,
    threshold: float | None = None,
) -> GroundingResult:
    """Score how much of ``output`` its retrieved ``contexts`` do not support.

    ``question`` is the user's turn (or previous dialogue turn): words repeated from it are not
    counted as unsupported. Returns ``judgeable=False`` when there is no non-empty context.
    """
    docs = [c for c in contexts if c and c.strip()] if contexts else []
    if not docs:
        return GroundingResult(
            judgeable=False,
            score=None,
            flagged=False,
            unsupported=[],
            reason="No retrieved context was given, so grounding cannot be judged.",
        )
    if not output or not output.strip():
        return GroundingResult(True, 0.0, False, [], "The output is empty; it makes no claims.")
    ctx = _merge([_support(c) for c in docs])
    q = _support(question) if question and question.strip() else None
    a = _analyse(output, ctx, q)
    score = _score(a.x)
    thr = DEFAULT_THRESHOLD if threshold is None else threshold
    flagged = score >= thr
    unsupported = _spans(output, a.spans)
    c = a.counts
    if flagged:
        bits = []
        if c["hard"]:
            bits.append(f"{c['hard']} number/quote/citation claim(s) absent from the context")
        if c["entity"]:
            bits.append(f"{c['entity']} unsupported name(s)")
        bits.append(f"{c['novel']} of {c['content']} content words not found in the context")
        reason = "Likely unsupported: " + "; ".join(bits) + "."
    else:
        reason = (
            f"Looks grounded: {c['content'] - c['novel']} of {c['content']} content words are supported by the context."
        )
    return GroundingResult(True, round(score, 4), flagged, unsupported, reason)
