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

import functools
import itertools
import json
import math
import operator
import re
import warnings
from collections.abc import Iterable
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
    "billion": "1000000000",
}  # fmt: skip

_WORD_RE = re.compile(
    r"https?://[^\s<>\"')\]]+"  # URL
    r"|\[\d+(?:[,\-–]\s*\d+)*\]"  # citation id like [3] or [2, 5]
    r"|\d+(?:[.,:]\d+)*(?:st|nd|rd|th|s)?"  # number / date / time
    r"|[^\W\d_]+(?:['’][^\W\d_]+)*"  # word (unicode letters, inner apostrophes)
    r"|[.!?;:\n]"  # sentence end
)
_SENT_END_RE = re.compile(r"[.!?;:\n]+")
QUOTE_MAX_WORDS = 15  # longer "quotations" are mostly an output wrapped in quote marks
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
        info = (_STOP, "\n" if c == "\n" else "", 0)
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


_Info = tuple[int, str, int]
_NL_INFO: _Info = (_STOP, "\n", 0)
# whitespace-separated piece of text -> (the _info of each _WORD_RE token in it, the stems of its
# non-stop tokens). Tokens never span whitespace (a citation id like "[2, 5]" can: texts with "["
# are tokenised whole), and "\n" is a token of its own, so a text's tokens are its pieces' tokens in
# order, with a "\n" between lines.
_PIECES: dict[str, tuple[tuple[_Info, ...], tuple[str, ...]]] = {}


def _piece(w: str) -> tuple[tuple[_Info, ...], tuple[str, ...]]:
    if w.isdigit() and w.isascii():  # a plain number, its own value
        return ((_NUM, w, 0),), (w,)
    infos = tuple(_INFO.get(t) or _info(t) for t in _WORD_RE.findall(w))
    r = infos, tuple(i[1] for i in infos if i[0] != _STOP)
    if len(_PIECES) < 200_000 and sum(map(str.isdigit, w)) < 4:  # ids, dates, amounts are seldom seen twice
        _PIECES[w] = r
    return r


def _pieces(text: str) -> list[tuple[tuple[_Info, ...], tuple[str, ...]]]:
    get = _PIECES.get
    if "\n" not in text:
        words = text.split()
        parts = list(map(get, words))
        if None in parts:
            i = parts.index(None)
            while True:
                parts[i] = _piece(words[i])
                try:
                    i = parts.index(None, i + 1)
                except ValueError:
                    break
        return parts
    parts = []
    for i, line in enumerate(text.split("\n")):
        if i:
            parts.append(((_NL_INFO,), ()))
        for w in line.split():
            p = get(w)
            parts.append(p if p is not None else _piece(w))
    return parts


_INFOS_OF = operator.itemgetter(0)
_STEMS_OF = operator.itemgetter(1)


def _token_infos(text: str) -> list[_Info]:
    """``[_info(t) for t in _WORD_RE.findall(text)]``, from memoised whitespace-separated pieces."""
    if "[" in text:
        return [_INFO.get(t) or _info(t) for t in _WORD_RE.findall(text)]
    return list(itertools.chain.from_iterable(map(_INFOS_OF, _pieces(text))))


class _Support:
    """Everything a context offers as support, built once per context string (parts on first use)."""

    __slots__ = ("_bigrams", "_counted", "_fourgrams", "_has_neg", "_infos", "_joined", "_low", "_nums", "_parts",
                 "_quads_asked", "ntok", "seq", "stems", "text")

    def __init__(self, text: str) -> None:
        if "[" in text:
            infos = [_INFO.get(t) or _info(t) for t in _WORD_RE.findall(text)]
            seq = [i[1] for i in infos if i[0] != _STOP]
            parts = None
        else:  # the token infos are only read for numbers, negation and counts: built on first use
            parts = _pieces(text)
            infos = None
            seq = list(itertools.chain.from_iterable(map(_STEMS_OF, parts)))
        self.text = text
        self._infos: list[_Info] | None = infos
        self._parts = parts
        self.seq = seq
        self.stems = set(seq)
        self.ntok = len(seq)
        self._bigrams: set[tuple[str, str]] | None = None
        self._fourgrams: set[tuple[tuple[str, str], tuple[str, str]]] | None = None
        self._nums: set[str] | None = None
        self._counted: set[str] | None = None
        self._has_neg: bool | None = None
        self._low: str | None = None
        self._joined: str | None = None
        self._quads_asked = False

    @property
    def infos(self) -> list[_Info]:
        if self._infos is None:
            self._infos = list(itertools.chain.from_iterable(map(_INFOS_OF, self._parts)))
            self._parts = None
        return self._infos

    @property
    def bigrams(self) -> set[tuple[str, str]]:
        if self._bigrams is None:
            self._bigrams = set(itertools.pairwise(self.seq))
        return self._bigrams

    @property
    def fourgrams(self) -> set[tuple[tuple[str, str], tuple[str, str]]]:
        """The 4-grams (a, b, c, d), each as its two bigrams ((a, b), (c, d))."""
        if self._fourgrams is None:
            bigrams = list(itertools.pairwise(self.seq))
            self._fourgrams = set(zip(bigrams, bigrams[2:]))  # noqa: B905 - two shorter on purpose
        return self._fourgrams

    @property
    def nums(self) -> set[str]:
        if self._nums is None:
            self._nums = {i[1] for i in self.infos if i[0] == _NUM or i[0] == _NUMWORD}
        return self._nums

    @property
    def has_neg(self) -> bool:
        if self._has_neg is None:
            self._has_neg = any(i[2] & _F_NEG for i in self.infos)
        return self._has_neg

    @property
    def low(self) -> str:
        if self._low is None:
            self._low = " ".join(self.text.lower().split())
        return self._low

    # membership of the output's items, the same answers as the union of several contexts would give
    def stems_among(self, stems: set[str]) -> set[str]:
        return stems & self.stems

    def has_run(self, run: list[str]) -> bool:
        """Whether the stems ``run`` occur in this order, contiguously."""
        if not set(run) <= self.stems:
            return False
        if self._joined is None:
            self._joined = " " + " ".join(self.seq) + " "
        return " " + " ".join(run) + " " in self._joined

    def has_num(self, v: str) -> bool:
        return v in self.stems and v in self.nums  # a number's value is among the stems too

    def quads_among(self, seq: list[str], quads: list, hits: list[bool]) -> Iterable[int]:
        """The positions i of the output's 4-grams ``quads`` (of its stems ``seq``) that are 4-grams of
        this context; ``hits`` says which of the output's bigrams are this context's. Asked the first
        time, the candidates (their three bigrams here) are looked up in the joined stems (no 4-gram set
        to build: each context is mostly asked once); asked again, the 4-grams are pooled in a set."""
        if self._fourgrams is not None or self._quads_asked:
            return itertools.compress(range(len(quads)), map(self.fourgrams.__contains__, quads))
        self._quads_asked = True
        if self._joined is None:
            self._joined = " " + " ".join(self.seq) + " "
        joined = self._joined
        return [i for i in range(len(quads)) if hits[i] and hits[i + 1] and hits[i + 2]
                and " " + " ".join(seq[i : i + 4]) + " " in joined]

    def counts_of(self, st: str) -> bool:
        """Whether the stem ``st`` follows a number in this context ("five working days": "work")."""
        if self._counted is None:
            self._counted = {b for (ka, _, _), (kb, b, _) in itertools.pairwise(i for i in self.infos if i[0] != _STOP)
                             if ka in (_NUM, _NUMWORD) and kb == _CONTENT}
        return st in self._counted

    def views(self) -> list[_Support]:
        return [self]


@lru_cache(maxsize=512)
def _support(text: str) -> _Support:
    return _Support(text)


class _Union:
    """The pooled n-grams of several contexts, each kind built on first use."""

    __slots__ = ("_bigrams", "_fourgrams", "parts", "stems")

    def __init__(self, parts: list[_Support]) -> None:
        self.parts = parts
        self.stems = set().union(*(p.stems for p in parts))
        self._bigrams: set[tuple[str, str]] | None = None
        self._fourgrams: set[tuple[tuple[str, str], tuple[str, str]]] | None = None

    @property
    def bigrams(self) -> set[tuple[str, str]]:
        if self._bigrams is None:
            self._bigrams = set().union(*(p.bigrams for p in self.parts))
        return self._bigrams

    @property
    def fourgrams(self) -> set[tuple[tuple[str, str], tuple[str, str]]]:
        if self._fourgrams is None:
            self._fourgrams = set().union(*(p.fourgrams for p in self.parts))
        return self._fourgrams

    def quads_among(self, seq: list[str], quads: list, hits: list[bool]) -> Iterable[int]:
        return itertools.compress(range(len(quads)), map(self.fourgrams.__contains__, quads))


class _Merged:
    """Several contexts pooled: :class:`_Support`'s interface. Answered part by part the first time (no
    unions to build); a merged support that is asked again (it is cached) pools them once."""

    __slots__ = ("_asked", "_low", "_union", "ntok", "parts")

    def __init__(self, parts: list[_Support]) -> None:
        self.parts = parts
        self.ntok = sum(p.ntok for p in parts)
        self._low: str | None = None
        self._union: _Union | None = None
        self._asked = False

    def views(self) -> list[_Support] | list[_Union]:
        """Objects with ``stems``, ``bigrams`` and ``fourgrams`` whose union is this support's."""
        if self._union is not None:
            return [self._union]
        if self._asked:
            self._union = _Union(self.parts)
            return [self._union]
        self._asked = True
        return self.parts

    def stems_among(self, stems: set[str]) -> set[str]:
        return set().union(*(stems & v.stems for v in self.views()))

    def has_num(self, v: str) -> bool:
        return any(p.has_num(v) for p in self.parts)

    def counts_of(self, st: str) -> bool:
        return any(p.counts_of(st) for p in self.parts)

    def has_run(self, run: list[str]) -> bool:
        return any(p.has_run(run) for p in self.parts)

    @property
    def has_neg(self) -> bool:
        return any(p.has_neg for p in self.parts)

    @property
    def low(self) -> str:
        if self._low is None:
            self._low = "\n".join(p.low for p in self.parts)
        return self._low


def _merge(parts: list[_Support]) -> _Support | _Merged:
    if len(parts) == 1:
        return parts[0]
    return _Merged(parts)


@lru_cache(maxsize=256)
def _merged_support(docs: tuple[str, ...]) -> _Support | _Merged:
    """The pooled support of non-empty ``docs`` (the same documents are retrieved together again)."""
    return _merge([_support(c) for c in docs])


FEATURE_NAMES = (
    "novel",  # share of content words absent from context+question
    "novel_ctx",  # share absent from context alone
    "log_novel",  # log1p(number of novel content words)
    "max_sent",  # highest novel share among sentences
    "bigram_novel",  # share of word bigrams absent from context+question
    "uncopied",  # share of tokens not covered by any 4-gram shared with the context
    "hard",  # unsupported numbers, URLs, citation ids, quotes (capped)
    "hard_digits",  # the same without spelled-out counts ("two goals"); not a model input
    "entity",  # unsupported capitalised names (capped)
    "neg",  # negation in output, none in context
    "first_person",  # share of first-person tokens
    "question_mark",  # output asks something
    "log_len",  # log1p(tokens)
    "long",  # document-style output (see LONG_MIN_TOKENS); selects the model, not a model input
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
    bad: list[tuple[int, str]]  # (token index, kind) of unsupported tokens; see spans()
    quotes: list[tuple[int, int, str]]  # (start, end, "quote") of unsupported quotations
    counts: dict[str, int]
    output: str

    @property
    def spans(self) -> list[tuple[int, int, str]]:
        """(start, end, kind) of unsupported material in the output."""
        out = []
        if self.bad:
            output = self.output
            # the j-th token's span (a token's text is never found earlier: the gaps between tokens hold
            # nothing a token could start with, so this is where searching the token text from the end of
            # the previous one lands too)
            matches = list(itertools.islice(_WORD_RE.finditer(output), self.bad[-1][0] + 1))
            for j, kind in self.bad:
                start, end = matches[j].span()
                if kind == "number" and start > 0 and output[start - 1] in "$£€¥":
                    start -= 1
                out.append((start, end, kind))
        return out + self.quotes


_NOT_BIGRAM_FEATURES = frozenset(FEATURE_NAMES) - {"bigram_novel", "bigram_novel_ctx", "log_bnovel", "uncov2"}


def _analyse(output: str, ctx: _Support | _Merged, q: _Support | None, *, full: bool = True) -> _Analysis:
    """The features of ``output`` against its context (and question).

    ``full=False`` may leave out the n-gram features the model of the output's regime does not use
    (the context's 4-grams are then never built); every feature present has the same value.
    """
    if "[" in output:
        infos = [_INFO.get(t) or _info(t) for t in _WORD_RE.findall(output)]
        seq = [i[1] for i in infos if i[0] != _STOP]
    else:
        parts = _pieces(output)
        infos = list(itertools.chain.from_iterable(map(_INFOS_OF, parts)))
        seq = list(itertools.chain.from_iterable(map(_STEMS_OF, parts)))  # the stems of the non-stop tokens
    out_stems = set(seq)
    # the context as parts whose union it is: asked once per output, so that a merged context is pooled
    # only when another output asks it again
    views = ctx.views()
    # only the output's stems are ever looked up
    cstems = (out_stems & views[0].stems if len(views) == 1
              else set().union(*(out_stems & v.stems for v in views)))
    qstems = q.stems_among(out_stems) if q is not None else frozenset()

    content = novel = novel_ctx = hard = hard_words = entity = 0
    first = second = opinion = neg = 0
    sent_content = sent_novel = novel_sents = long_novel = 0
    max_sent = 0.0
    sent_start = True
    bad: list[tuple[int, str]] = []
    for j, (kind, st, flags) in enumerate(infos):
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
            if st not in cstems:
                if flags & _F_OPINION:
                    opinion += 1
                novel_ctx += 1
                if st not in qstems:
                    novel += 1
                    sent_novel += 1
                    if flags & _F_LONG:
                        long_novel += 1
                    if flags & _F_UPPER and not sent_start:
                        entity += 1
                        bad.append((j, "entity"))
                    else:
                        bad.append((j, "word"))
            sent_start = False
            continue
        if (kind == _NUM and len(st) <= 2 and (j == 0 or infos[j - 1][1] == "\n")
                and j + 1 < len(infos) and infos[j + 1][0] == _STOP):
            continue  # a list marker ("1." at the start of a line), not a claim
        sent_start = False
        if kind in (_NUM, _NUMWORD):
            if (not ctx.has_num(st) and (q is None or not q.has_num(st))
                    and (kind == _NUM or st not in cstems)):
                hard += 1
                if kind == _NUMWORD and not (j + 1 < len(infos) and infos[j + 1][0] == _CONTENT
                                             and ctx.counts_of(infos[j + 1][1])):
                    hard_words += 1  # a spelled-out count, not another number for what the context counts
                bad.append((j, "number"))
        elif st not in ctx.low:  # URL / citation id
            hard += 1
            bad.append((j, "citation"))
    if sent_content:
        r = sent_novel / sent_content
        if sent_content >= 3 and r > max_sent:
            max_sent = r
        if r > 0.25:
            novel_sents += 1
    n = len(seq)

    # a short quotation must appear in the context, word for word (modulo case and punctuation)
    quotes: list[tuple[int, int, str]] = []
    if '"' in output or "“" in output or "”" in output:
        for m in _QUOTE_RE.finditer(output):
            inner = m.group(1)
            if inner[0].isspace() or inner[-1].isspace():
                continue  # the stretch between two quotations, not one
            qseq = [i[1] for i in _token_infos(inner) if i[0] != _STOP]
            if 2 <= len(qseq) <= QUOTE_MAX_WORDS and not ctx.has_run(qseq):
                hard += 1
                quotes.append((m.start(), m.end(), "quote"))

    # document-style: a long output, or a few sentences written with no user turn (a summary, a report)
    long = 1.0 if n > LONG_MIN_TOKENS or (q is None and n > DOC_MIN_TOKENS) else 0.0
    need = _MODEL_USES["long" if long else "short"] if not full else _ALL_FEATURES
    nb = n - 1 if n > 1 else 0  # number of bigrams
    if (nb and not need <= _NOT_BIGRAM_FEATURES) or (n > 3 and "uncopied" in need):
        bnovel, bnovel_ctx, cov2, covered = _ngram_counts(seq, views, q, need)
    else:
        bnovel = bnovel_ctx = cov2 = covered = 0
    nall = n - sum(map(cstems.__contains__, seq))

    x = {
        "novel": novel / content if content else 0.0,
        "novel_ctx": novel_ctx / content if content else 0.0,
        "log_novel": math.log1p(novel),
        "max_sent": max_sent if max_sent else (novel / content if content else 0.0),
        "bigram_novel": bnovel / nb if nb else 0.0,
        "uncopied": 1.0 - (covered / n) if n else 0.0,
        "hard": float(min(hard, 3)),
        "hard_digits": float(min(hard - hard_words, 3)),
        "entity": float(min(entity, 5)),
        "neg": 1.0 if neg and not ctx.has_neg else 0.0,
        "first_person": first / n if n else 0.0,
        "question_mark": 1.0 if "?" in output else 0.0,
        "log_len": math.log1p(n),
        "long": long,
        "log_ctx": math.log1p(ctx.ntok),
        "q_echo": (novel_ctx - novel) / content if content else 0.0,
        "uncov2": 1.0 - (cov2 / n) if n else 0.0,
        "log_bnovel": math.log1p(bnovel),
        "novel_sents": math.log1p(novel_sents),
        "long_novel": math.log1p(long_novel),
        "novel_all": nall / n if n else 0.0,
        "bigram_novel_ctx": bnovel_ctx / nb if nb else 0.0,
        "opinion": opinion / n if n else 0.0,
        "second_person": second / n if n else 0.0,
    }
    return _Analysis(x, bad, quotes, {"content": content, "novel": novel, "hard": hard, "entity": entity}, output)


def _ngram_counts(seq: list[str], views: list[_Support] | list[_Union], q: _Support | None, need: frozenset[str],
                  ) -> tuple[int, int, int, int]:
    """(bigrams in neither context nor question, bigrams not in the context, tokens covered by a bigram
    of either, tokens covered by a 4-gram of one context) of the output's stem sequence ``seq``."""
    n = len(seq)
    nb = n - 1
    bigrams = list(itertools.pairwise(seq))
    hits = [list(map(v.bigrams.__contains__, bigrams)) for v in views]
    in_ctx = functools.reduce(lambda a, b: list(map(operator.or_, a, b)), hits)
    bnovel_ctx = in_ctx.count(False)
    ok = in_ctx
    if q is not None and bnovel_ctx:
        ok = list(map(operator.or_, in_ctx, map(q.bigrams.__contains__, bigrams)))
    bnovel = ok.count(False)
    cov2 = covered = 0
    if "uncov2" in need:
        at = list(itertools.compress(range(nb), ok))
        cov2 = len(set(at).union(map((1).__add__, at)))
    if n > 3 and "uncopied" in need:
        quads = list(zip(bigrams, bigrams[2:]))  # noqa: B905 - the 4-gram at i as its bigrams i and i + 2
        found: set[int] = set()
        for v, h in zip(views, hits, strict=True):
            if h.count(True) >= 3:  # a context's 4-gram has its three bigrams in that context
                found.update(v.quads_among(seq, quads, h))
        if found:
            covered = len(found.union(map((1).__add__, found), map((2).__add__, found), map((3).__add__, found)))
    return bnovel, bnovel_ctx, cov2, covered


# Two regimes: a chat-style answer (a sentence or two, replying to a user turn) and a document-style
# output (summary, report): longer than LONG_MIN_TOKENS, or longer than DOC_MIN_TOKENS when no user
# turn/question was given. They fail differently: short answers drift into opinions and unsupported
# asides, documents into specific, rarer words and numbers the source never gave.
LONG_MIN_TOKENS = 50
DOC_MIN_TOKENS = 20
MODEL_FEATURES = {
    "short": tuple(k for k in FEATURE_NAMES if k not in ("long", "hard_digits")),
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
        # offset + c1 * x1 + c2 * x2 ..., added in this order
        z = functools.reduce(operator.add, map(operator.mul, self.coef, map(x.__getitem__, self.names)), self.offset)
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
_ALL_FEATURES = frozenset(FEATURE_NAMES)
# what scoring an output of each regime reads: its model's features, "hard"/"hard_digits" (floor), "long" (regime)
_MODEL_USES = {name: frozenset(m.names) | {"hard", "hard_digits", "long"} for name, m in _MODELS.items()}


# A number, date, URL, citation id or quotation the context does not contain is a hard claim:
# flagged whatever the word-level evidence says. In a document-style output a spelled-out number
# ("two goals") is not, unless the context gives another number for the same thing ("seven working
# days" over "five working days"): summaries count what the source lists, and on FaithBench such
# counts say nothing about the label.
HARD_CLAIM_FLOOR = 0.75


def floored(p: float, x: dict[str, float]) -> float:
    """The model's probability ``p`` raised to HARD_CLAIM_FLOOR when the output makes a hard claim."""
    hard = x["hard_digits"] if x["long"] else x["hard"]
    return max(p, HARD_CLAIM_FLOOR) if hard > 0 else p


def _score(x: dict[str, float]) -> float:
    return floored(_MODELS[regime(x)].score(x), x)


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
    ctx = _merged_support(tuple(docs))
    q = _support(question) if question and question.strip() else None
    a = _analyse(output, ctx, q, full=False)
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


def _verdict(output: str, contexts: list[str], question: str | None, quote_from: float,
             ) -> tuple[float, bool, tuple[str, ...]] | None:
    """``check_grounding``'s (rounded score, flagged, unsupported) for the checks at ingest, without the
    reason; None when not judgeable. ``unsupported`` is left empty unless the output is flagged or its
    rounded score reaches ``quote_from`` (the caller drops it otherwise).

    Remembered per (output, contexts, question): answers repeat with their documents (the same FAQ
    answer to the same question over the same knowledge-base passages)."""
    return _verdict_cached(output, tuple(contexts), question, quote_from, DEFAULT_THRESHOLD)


@lru_cache(maxsize=4096)
def _verdict_cached(output: str, contexts: tuple[str, ...], question: str | None, quote_from: float,
                    threshold: float) -> tuple[float, bool, tuple[str, ...]] | None:
    docs = [c for c in contexts if c and c.strip()] if contexts else []
    if not docs:
        return None
    if not output or not output.strip():
        return 0.0, False, ()
    ctx = _merged_support(tuple(docs))
    q = _support(question) if question and question.strip() else None
    a = _analyse(output, ctx, q, full=False)
    score = _score(a.x)
    flagged = score >= threshold
    rounded = round(score, 4)
    return rounded, flagged, tuple(_spans(output, a.spans)) if flagged or rounded >= quote_from else ()
