"""Prompt-injection scanner for untrusted inputs (user input, retrieved documents, tool results).

Layers, cheapest first:

1. **Normalisation / de-obfuscation** (:func:`normalize`): NFKC, zero-width and bidi controls
   removed, Cyrillic/Greek homoglyphs mapped to Latin, diacritics folded, lower-cased; then
   variants are added only when a cheap test says they could matter: leetspeak undone, spaced
   letters ("i g n o r e") joined, base64 / hex blobs decoded, rot13 undone.
2. **Patterns** (``_RULES``): instruction override ("ignore previous instructions", in English,
   German, French, Spanish, Italian, Portuguese, Dutch, Croatian), role hijack and jailbreak
   personas (DAN, developer mode, "you are now ..."), system-prompt extraction, fake delimiters
   and chat-template tokens, forced output ("say 'access granted'").
3. **Structure** (``_segment_signals``): sentences addressed to the assistant ("... in your
   response") inside data (tables, e-mails, code), prose lines injected into a table, repeated
   token floods, spaced-letter obfuscation.
4. **A small logistic regression** over word uni/bi-grams plus the rule and structure hits,
   trained by ``bench/train_injection.py`` and shipped as ``data/injection_model.json``.

The score is ``max(rule score, classifier probability)``. Evidence quotes the matched spans.
Pure Python, no third-party dependencies; a short benign text takes a few microseconds
(``_prefilter``), a typical short input a few tens.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import itertools
import json
import math
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from hotwash.detect.findings import Finding

__all__ = [
    "DEFAULT_THRESHOLD",
    "Finding",
    "features",
    "normalize",
    "obeyed",
    "output_leaks",
    "scan_event",
    "scan_text",
]

DEFAULT_THRESHOLD: float = 0.65  # chosen on the out-of-fold curve for FPR <= 1 %
LEAK_THRESHOLD: float = 0.5
MODEL_PATH = Path(__file__).with_name("data") / "injection_model.json"
MAX_SCAN_CHARS = 20_000  # longer texts: scan the head and the tail
_EVIDENCE_MAX = 200
CHAR_NGRAMS = False  # char 4-grams over the first CHAR_NGRAM_TOKENS words (typos, compounds)
CHAR_NGRAM_TOKENS = 60

# --------------------------------------------------------------------------- normalisation

_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0"
)
# Cyrillic / Greek / other letters that render like Latin ones (after NFKC and lower()).
_HOMOGLYPHS = {
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i",
    "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "г": "r",
    "ѕ": "s", "т": "t", "ц": "u", "ѵ": "v", "ԝ": "w", "х": "x", "у": "y", "з": "3", "ь": "b",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ѡ": "w", "ɑ": "a", "ɡ": "g", "ı": "i",
    "ȷ": "j", "ℓ": "l", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l",
}
_TRANSLATE = {ord(c): None for c in _INVISIBLE}
_HOMO_TABLE = {ord(k): v for k, v in _HOMOGLYPHS.items()}
_HOMO_TABLE.update({ord(k.upper()): v for k, v in _HOMOGLYPHS.items() if len(k.upper()) == 1})
_LETTERS = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[a-zA-Z]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t"})
_LEET_HINT = re.compile(r"[a-z][0134579@$][a-z]|\b[0134579@$][a-z]{2,}")
_SPACED = re.compile(r"(?<![\w])(?:[a-z](?:[ \t]{1,4}|[._\-*])){5,}[a-z](?![\w])")
_GLUED = re.compile(r"ignor|instruction|previous|prompt|password|forget|disregard|system|"
                    r"jailbreak|accessgranted|yourrules|hate")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,}={0,2}")
_HEX = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}[ :]?){10,}")
_WS = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")


def _fold(text: str) -> str:
    """NFKC, drop invisibles, map homoglyphs, fold diacritics. Identity on plain ASCII."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    if not text.isascii():
        # homoglyphs: map look-alikes inside mixed-script words, or everywhere when the text
        # is mostly Latin (a Cyrillic "о" in English text); leave genuine Cyrillic/Greek alone
        n_latin = len(_LATIN.findall(text))
        n_alpha = sum(len(w) for w in _LETTERS.findall(text))
        if n_alpha and n_latin / n_alpha > 0.6:
            text = text.translate(_HOMO_TABLE)
        else:
            text = _LETTERS.sub(
                lambda m: m.group(0).translate(_HOMO_TABLE)
                if _LATIN.search(m.group(0)) and not m.group(0).isascii() else m.group(0),
                text)
    return text


def _printable_ratio(s: str) -> float:
    if not s:
        return 0.0
    good = sum(1 for c in s if c.isprintable() or c in "\n\t")
    letters = sum(1 for c in s if c.isalpha() or c == " ")
    return min(good, letters * 1.25) / len(s)


def _decode_blobs(text: str) -> list[tuple[str, str]]:
    """Decoded base64 / hex blobs that look like text: [(how, decoded)]."""
    out: list[tuple[str, str]] = []
    for m in _B64.finditer(text):
        blob = m.group(0)
        if blob.isalpha() and (blob.islower() or blob.isupper()):
            continue  # a plain long word
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_" if
                                   ("-" in blob or "_" in blob) else None)
            dec = raw.decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        if len(dec) >= 8 and _printable_ratio(dec) > 0.85:
            out.append(("base64", dec))
        if len(out) >= 4:
            break
    for m in _HEX.finditer(text):
        blob = re.sub(r"[ :]", "", m.group(0))
        try:
            dec = bytes.fromhex(blob[: len(blob) // 2 * 2]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if len(dec) >= 6 and _printable_ratio(dec) > 0.85:
            out.append(("hex", dec))
    return out


_COMMON = frozenset(
    [
        "the", "and", "you", "your", "to", "of", "a", "is", "in", "that", "it", "for", "are", "be",
        "this", "with", "not", "on", "as", "have", "do", "what", "all", "me", "my", "say", "now",
        "ignore", "instructions", "please", "from", "will", "can", "tell", "i",
    ]
)
_WORD = re.compile(r"[a-z]+")


def _looks_rot13(low: str) -> bool:
    words = _WORD.findall(low[:2000])
    if len(words) < 4:
        return False
    plain = sum(w in _COMMON for w in words)
    if plain >= 2:
        return False
    rot = sum(codecs.encode(w, "rot13") in _COMMON for w in words)
    return rot >= 3 and rot > 2 * plain


def normalize(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Return (normalised text, [(variant name, variant text)]) for scanning.

    The normalised text is folded and lower-cased with runs of spaces collapsed; the variants
    are de-obfuscated versions worth scanning too (empty for ordinary text).
    """
    if len(text) > MAX_SCAN_CHARS:
        text = text[: MAX_SCAN_CHARS - 4000] + "\n" + text[-4000:]
    raw_folded = _fold(text)
    raw_low = raw_folded.lower()
    low = _WS.sub(" ", raw_low)
    variants: list[tuple[str, str]] = []
    if _LEET_HINT.search(low):
        de = low.translate(_LEET)
        if de != low:
            variants.append(("leetspeak", de))
    for m in _SPACED.finditer(raw_low):
        # "i g n o r e   a l l" -> "ignore all": wide gaps are word breaks
        joined = re.sub(r"[ \t._\-*]", "", re.sub(r"[ \t]{2,}", "\x00", m.group(0)))
        variants.append(("spaced", joined.replace("\x00", " ")))
    for how, dec in _decode_blobs(raw_folded):
        variants.append((how, _WS.sub(" ", _fold(dec).lower())))
    if "rot13" in low or "rot-13" in low or _looks_rot13(low):
        variants.append(("rot13", codecs.encode(low, "rot13")))
    return low, variants


# --------------------------------------------------------------------------- pattern rules

_ANY = r"(?:all|any|every|the|your|my|our|these|those|this|of|previous|prior|above|earlier|" \
       r"preceding|foregoing|former|initial|original|old|existing|given|system|current|" \
       r"out of date|outdated|other|provided|developer|safety|content|ethical|default)"
_OBJ = r"(?:instructions?|prompts?|rules?|directions?|directives?|orders?|guidelines?|" \
       r"commands?|context|tasks?|assignments?|requests?|messages?|texts?|information|inputs?|" \
       r"documents?|articles?|constraints?|restrictions?|polic(?:y|ies)|programming|training|" \
       r"conversation|settings|filters?|everything|anything|what (?:i|you|we) (?:said|told|" \
       r"was told|have told|were told)|(?:that|this) (?:was )?said)"

_RULE_SPECS: list[tuple[str, float, str]] = [
    # --- instruction override -------------------------------------------------------------
    ("override", 0.97,
     rf"\b(?:ignore|ignoring|disregard|forget|forgetting|skip|override|overrule|bypass|drop|"
     rf"abandon|discard|neglect|set aside|throw away|erase|delete|clear|reset|leave behind)\b"
     rf"(?:\s+{_ANY}\b)*\s+{_OBJ}\b"),
    ("override", 0.93, r"\bforget (?:about )?(?:all|everything|that|this|it all)\b"),
    ("override", 0.9, r"\b(?:ignore|disregard) (?:the )?(?:above|previous|prior|preceding|"
                      r"everything|all)\b"),
    ("override", 0.9, r"\b(?:do not|don'?t|dont|never) (?:follow|obey|listen to|adhere to) "
                      r"(?:the |your |any |these |those )*(?:previous |prior |above |original |"
                      r"system |initial )*(?:instructions|rules|prompt|guidelines)"),
    ("override", 0.85, r"\b(?:despite|regardless of|contrary to|instead of) (?:what|the|any|your|"
                       r"all)\b[^.?!\n]{0,30}\b(?:told|instructions|rules|said|prompt)"),
    ("override", 0.85, r"\b(?:new|updated|additional|real|true|actual|revised|changed|next) "
                       r"(?:instructions?|task|assignment|rules?|directive|orders?|statement|"
                       r"system prompt)\b[^.\n]{0,12}(?:follows?|are|is|:|-)"),
    ("override", 0.8, r"\b(?:now|here) (?:comes?|follows?) (?:a |the )?(?:new|next|second|"
                      r"real)? ?(?:task|instructions?|assignment|challenge|test)"),
    ("override", 0.75, r"\b(?:start|begin|starting|beginning) (?:over|again|anew|from scratch|"
                       r"from the (?:front|beginning)|(?:with )?a new task)"),
    ("override", 0.85, r"\b(?:instructions?|rules?|prompt) (?:above |so far )?(?:are|is|were|was) "
                       r"(?:now )?(?:void|invalid|cancelled|canceled|obsolete|out of date|"
                       r"outdated|wrong|fake|irrelevant|revoked|superseded|no longer)"),
    ("override", 0.8, r"\b(?:the )?situation has changed\b|\bdue to the situation changing\b"),
    ("override", 0.8, r"\bfrom now on\b[^.\n]{0,40}\b(?:you|your|respond|reply|answer|only|"
                      r"always|never)\b"),
    ("override", 0.9, r"\b(?:do not|don'?t|dont) (?:answer|respond to|look (?:at|in)) "
                      r"(?:this|the) (?:question|documents?|articles?|context)"),
    ("override", 0.75, r"\b(?:answer|respond) by your own knowledge\b|\bnot (?:by|according to) "
                       r"the (?:articles|documents|provided)"),
    # German
    ("override_de", 0.97,
     r"\b(?:ignorier\w*|vergiss|vergessen sie|vergesst|missacht\w*|uberspring\w*|verwirf|"
     r"hore nicht auf|horen sie nicht auf|beachte nicht|beachten sie nicht)\b[^.?!\n]{0,40}"
     r"\b(?:anweisung\w*|instruktion\w*|befehl\w*|vorgab\w*|ausfuhrung\w*|regel\w*|aufgab\w*|"
     r"alles|alle|davor|zuvor|vorher\w*|obig\w*|bisherig\w*|gesagt\w*|informationen|kontext|"
     r"dokument\w*|artikel\w*)"),
    ("override_de", 0.85, r"\b(?:neue|folgende|weitere|zusatzliche) (?:anweisung|aufgabe|"
                          r"instruktion|befehl)\w*\b[^.\n]{0,20}(?:folg|lautet|ist|:)"),
    ("override_de", 0.8, r"\b(?:nun|jetzt) (?:folgen|folgt|kommt|kommen) (?:eine? )?neue"),
    ("override_de", 0.85, r"\b(?:alle|die) (?:vorherigen|bisherigen|obigen|fruheren) "
                          r"(?:informationen|anweisungen|instruktionen|angaben|befehle)"),
    ("override_de", 0.85, r"\babweichend (?:zu|von) (?:den )?(?:vorherigen|obigen|bisherigen)"),
    ("override_de", 0.8, r"\b(?:wir )?(?:beginnen|starten|fangen) (?:wir )?(?:von )?(?:neu|vorne|"
                         r"mit einer neuen aufgabe)"),
    # Romance / other languages
    ("override_xx", 0.95,
     r"\b(?:oublie[zr]?|ignore[zr]?|ne tenez pas compte)\b[^.\n]{0,30}\b(?:instructions?|"
     r"consignes?|tout|regles|ce qui precede)"),
    ("override_xx", 0.95,
     r"\b(?:olvid[ae]\w*|ignor[ae]\w*|descart[ae]\w*)\b[^.\n]{0,30}\b(?:instrucciones|todo|"
     r"reglas|indicaciones|anterior\w*)"),
    ("override_xx", 0.95,
     r"\b(?:dimentica\w*|ignora\w*)\b[^.\n]{0,30}\b(?:istruzioni|tutto|regole|precedenti)"),
    ("override_xx", 0.95,
     r"\b(?:esque[cç]a\w*|ignor[ae]\w*)\b[^.\n]{0,30}\b(?:instrucoes|tudo|regras|anteriores)"),
    ("override_xx", 0.95,
     r"\b(?:vergeet|negeer)\b[^.\n]{0,30}\b(?:instructies|alles|regels|vorige)"),
    ("override_xx", 0.95, r"\b(?:zaboravi|ignoriraj|zanemari)\b[^.\n]{0,30}\b(?:sve|upute|"
                          r"instrukcije|prethodne)"),
    ("override_xx", 0.95, r"\b(?:zapomnij|zignoruj)\b|\b(?:забудь|игнорируй)\b|忽略|忘记"),
    # --- role hijack / jailbreak personas --------------------------------------------------
    ("jailbreak", 0.97, r"\bdo anything now\b|\bdan mode\b|\bjailbr(?:oken|eak(?:ed)?)\b|"
                        r"\bdeveloper mode\b|\bdev mode\b|\bgod ?mode\b|\bevil (?:ai|bot|"
                        r"assistant|confidant)\b|\bstan\b[^.\n]{0,40}\bstrive to avoid norms"),
    ("jailbreak", 0.9, r"\b(?:you are|you're|as) dan\b|\bdan,? (?:which|who) stands for|"
                       r"\b(?:aim|dude|stan|mongo tom|kevin|apophis|ucar|betterdan|antigpt|"
                       r"chadgpt|basedgpt)\b[^.\n]{0,60}\b(?:unfiltered|amoral|no (?:ethical|"
                       r"moral)|without (?:any )?(?:restrictions|filters|limits))"),
    ("jailbreak", 0.9, r"\b(?:no|without any|without|free (?:of|from)|not bound by|not restricted "
                       r"by|break free of|broken free of|ignore all|bypass) (?:any |all |the "
                       r"|your )?(?:ethical|moral|content|safety|openai'?s?|typical|usual)? ?"
                       r"(?:guidelines|restrictions|filters?|censorship|limitations|polic(?:y|"
                       r"ies)|rules|constraints|boundaries|principles|confines)\b"),
    ("jailbreak", 0.85, r"\b(?:unfiltered|uncensored|amoral|unethical|unrestricted|unhinged)\b"
                        r"[^.\n]{0,40}\b(?:ai|chatbot|assistant|model|language model|response|"
                        r"version|character|persona)"),
    ("jailbreak", 0.85, r"\b(?:never|not|won'?t|will not|cannot|can'?t) (?:refuse|decline|"
                        r"say no|say (?:that )?(?:it|you) (?:can'?t|cannot))"),
    ("jailbreak", 0.65, r"\b(?:stay|remain|always stay|staying|remain) in (?:character|their "
                       r"roles?|your role|role)\b|\bbreak(?:ing)? (?:out of )?(?:their |your )?"
                       r"characters?\b|\bfalling out of the figure\b|\bout of character\b"),
    ("jailbreak", 0.85, r"\b(?:openai|chatgpt|anthropic)'?s? (?:content )?(?:polic(?:y|ies)|"
                        r"guidelines|rules|filters)"),
    ("jailbreak", 0.75, r"\b(?:hypothetical|fictional|theoretical) (?:world|scenario|"
                        r"response|story|setting)\b[^.\n]{0,80}\b(?:you|your)\b"),
    ("role", 0.85, r"\byou are (?:now|no longer|not (?:a|an)|free|going to (?:act|pretend|"
                   r"play)|about to immerse)\b"),
    ("role", 0.75, r"\b(?:pretend|imagine|suppose)(?: that)? (?:you are|you're|to be|you can|"
                   r"you were|you have)\b"),
    ("role", 0.6, r"\b(?:act|acting|behave|respond|answer) (?:as|like) (?:if you were |though "
                   r"you were )?(?:a |an |the )?(?:\w+ ){0,2}(?:interpreter|terminal|console|"
                   r"shell|linux|cmd|ai|chatbot|assistant|model|gpt)\b"),
    ("role", 0.75, r"\b(?:role-?play(?:ing)?|play(?:ing)? (?:the )?(?:role|part)) (?:as|of)\b"),
    ("role", 0.7, r"\b(?:let'?s|we will|we'll|we are going to) play a game\b"),
    ("role", 0.7, r"\bnow you are\b|\bfrom now on,? you(?: will| are|'re)\b"),
    ("role_de", 0.85, r"\b(?:du bist|sie sind) (?:jetzt|nun|ab sofort|keine?)\b|\b(?:jetzt|nun) "
                      r"bist du\b|\bstell (?:dir|euch) vor,? (?:du|dass du)\b|\btu so,? als\b|"
                      r"\bspiel(?:e|st)? die rolle\b"),
    ("role_xx", 0.8, r"\b(?:tu es|vous etes) maintenant\b|\b(?:ahora eres|finge que eres|"
                     r"actua como)\b|\b(?:ora sei|fingi di essere)\b"),
    # --- system prompt / secret extraction ---------------------------------------------------
    ("extraction", 0.95,
     r"\b(?:repeat|print|show|reveal|display|output|tell|give|write|list|spell ?check|"
     r"translate|summari[sz]e|convert|paste|copy|dump|leak|share|describe|explain|recite|"
     r"return|format|rewrite|encode|what (?:is|are|was|were))\b[^.?!\n]{0,60}\b(?:your|the|"
     r"all|these|those|my|above|initial|previous|prior|system|hidden|secret|original)\b"
     r"[^.?!\n]{0,25}\b(?:(?:system |initial |original |hidden |secret |pre-?)?prompt|"
     r"instructions?|pre-?prompt|rules|guidelines|directives|configuration|embeddings|"
     r"password|pass ?(?:word|phrase|code)|access code|secret|context window)s?\b"),
    ("extraction", 0.9, r"\b(?:system|initial|original|hidden|secret|pre) ?prompt\b"),
    ("extraction", 0.85, r"\b(?:instructions|prompt|text|everything|rules) (?:so far|above|"
                         r"before this|you (?:were|have been) given|at the (?:beginning|start))"),
    ("extraction", 0.85, r"\bwhat (?:was|is) written (?:at the beginning|above|before)\b|"
                         r"\b(?:beginning|start) of (?:this|the|your) (?:prompt|conversation|"
                         r"instructions)\b"),
    ("extraction", 0.85, r"\b(?:begin|start|prefix|preface) (?:your |the )?(?:reply|response|"
                         r"answer|output)\b[^.\n]{0,10}\bwith\b"),
    ("extraction", 0.6, r"\b(?:access code|passcode|password|pass phrase|passphrase|secret "
                        r"(?:word|code|key))\b"),
    ("extraction", 0.85, r"\b(?:repeat|explain|convert|rewrite|summari[sz]e|translate|write|"
                         r"print|output|list|format|describe)\b[^.\n]{0,30}\b(?:the )?above\b"),
    ("extraction", 0.85, r"\byour (?:\w+ )?(?:instructions|guidelines|directives|programming|"
                         r"(?:system|initial|original|hidden|secret) prompt)\b"),
    ("extraction", 0.8, r"\bwhat are your (?:instructions|rules|guidelines)\b|\bwhat (?:were|"
                        r"are) you told\b|\bwho (?:programmed|created|trained) you\b"),
    ("extraction_de", 0.9, r"\b(?:gib|zeig|wiederhol|drucke?|nenne?|verrate?)\w*\b[^.\n]{0,60}"
                           r"\b(?:prompt|anweisung\w*|instruktion\w*|eingabeaufforderung|"
                           r"passwort|zugangscode)"),
    # --- forced output / hijack ---------------------------------------------------------------
    ("forced_output", 0.9, r"\baccess granted\b|\bzugang gewahrt\b"),
    ("forced_output", 0.8, r"(?:^|[.!?:,;\-]\s*|\b(?:just|only|now|and|then|please|instead|"
                           r"simply|you must|you will) )(?:say|output|print|respond with|"
                           r"reply with|answer with|write)\b (?:only |just |exactly |the words? )?"
                           r"[\"'“‘«]"),
    ("forced_output", 0.6, r"\b(?:say|output|print|respond|reply|answer|write)\b[^.\n]{0,15}"
                            r"\b(?:only|nothing (?:else|but)|exactly)\b"),
    ("forced_output", 0.7, r"\b(?:you must|you have to|you will|you should|i command you to|"
                           r"you need to) (?:now )?(?:say|output|print|respond|reply|answer|"
                           r"write|include|tell)\b"),
    ("forced_output", 0.75, r"\b(?:say|tell me|admit|write|include)\b[^.\n]{0,20}\b(?:that )?"
                            r"you (?:hate|love|are (?:stupid|evil|dumb))"),
    ("forced_output", 0.7, r"\b(?:antworte|sag|schreibe?|gib)\w*\b[^.\n]{0,30}\b(?:nur|"
                           r"ausschliesslich|im stil)\b|\bmusst du\b"),
    # --- delimiters / fake system messages / chat-template tokens ---------------------------
    ("delimiter", 0.9, r"<\|(?:im_start|im_end|im_sep|endoftext|system|user|assistant|"
                       r"start_header_id|end_header_id|eot_id)\|>|\[/?inst\]|<</?sys>>|"
                       r"</?(?:system|instructions?)>|\[(?:system|admin)(?: ?(?:message|note|"
                       r"override|prompt))?[\]:]"),
    ("jailbreak", 0.7, r"\{\{ ?(?:user|char)\b"),
    ("jailbreak", 0.9, r"\b(?:exception to|ignore|bypass|disabled?|override|turn(?:ed)? off|"
                       r"without)\b[^.\n]{0,25}\b(?:ethical|safety|moral|content)[^.\n]{0,10}"
                       r"\b(?:protocols?|guidelines|filters?|systems?|polic(?:y|ies)|"
                       r"restrictions|settings)\b"),
    ("jailbreak", 0.8, r"\b(?:simulate|enable|activate|enter|switch to|in) (?:the )?[\w-]+ mode\b"),
    ("jailbreak", 0.85, r"\bnot (?:bound|restricted|limited|controlled) by\b[^.\n]{0,30}"
                        r"\b(?:polic(?:y|ies)|rules|guidelines|restrictions|openai|ethics)"),
    ("delimiter", 0.85, r"(?:^|\n)\s*(?:#+ ?|\*\*)?(?:system|admin|developer|assistant|new "
                        r"instructions?|instruction|important|attention|note to (?:ai|assistant|"
                        r"llm|model))(?:\*\*)? ?(?:message|override|prompt|update|note)?\s*:"),
    ("delimiter", 0.85, r"%%%|={4,}\s*(?:end|begin|start)|\b(?:end|begin|start) (?:of )?"
                        r"(?:the )?(?:untrusted |trusted |user |system )?(?:input|prompt|"
                        r"instructions|ambiguity|context)\b|-{3,} ?(?:end|begin)|"
                        r"\]\s*\}\s*\)\s*\]"),
    ("delimiter", 0.6, r"(?:\\n){3,}|(?:\n\s*){6,}"),
    # --- addressed to the model from inside data (indirect) ----------------------------------
    ("addressed", 0.85, r"\b(?:in|to|into|within|throughout|for|from|of|with|by|using) your "
                        r"(?:reply|response|answer|output|message|summary|replies|responses|"
                        r"answers)\b"),
    ("addressed", 0.8, r"\byour (?:reply|response|answer|output|summary)\b"),
    ("addressed", 0.85, r"\b(?:following|subsequent|below|this) code (?:snippet|block|section|"
                        r"excerpt)\b[^\n]{0,80}\byour (?:code|codebase|code implementation|"
                        r"implementation|solution|algorithm|response|code's)\b|\byour (?:code|"
                        r"codebase|implementation|solution|algorithm)\b[^\n]{0,60}\b(?:following|"
                        r"subsequent|below) code (?:snippet|block|section|excerpt)\b"),
    ("addressed", 0.8, r"\b(?:dear |hey |hi |attention |note to )?(?:ai|assistant|chatbot|"
                       r"language model|llm|gpt|chatgpt|claude|bard|copilot|bot)[,:!] "
                       r"(?:please |you |now |ignore|do|write|send|tell|forward|reply|respond|"
                       r"include|add|answer)"),
    ("addressed", 0.75, r"\b(?:when|while|before|after|if) (?:you(?:'re| are)? )?(?:summari[sz]"
                        r"(?:e|ing)|respond(?:ing)?|repl(?:y|ying)|answer(?:ing)?|process(?:ing)?|"
                        r"read(?:ing)?) (?:this|the|these|to)\b[^.\n]{0,40}\b(?:you|please|must|"
                        r"should|include|add|say)\b"),
    # --- exfiltration / harmful tool use inside data ----------------------------------------
    ("exfiltration", 0.85, r"\b(?:send|forward|email|post|upload|exfiltrate|transmit)\b"
                           r"[^.\n]{0,60}\b(?:password|credentials?|api key|token|secret|"
                           r"private key|cookies|clipboard|conversation|chat history|personal "
                           r"data|bank details)\b"),
    ("exfiltration", 0.8, r"!\[[^\]]*\]\(https?://[^)]*[?&][a-z_]+=|\bos\.system\(|"
                          r"\bsubprocess\.|\brm -rf\b|\bnc -e\b|\bcurl [^\n]{0,80}\|\s*(?:ba)?sh"),
]

# Anchors: a rule's regex runs only if one of its anchors is present. A plain anchor is the
# first five letters of a word (or the whole word if shorter); "~x" is a substring test.
_RULE_ANCHORS: list[str] = [
    'ignor disre forge skip overr bypas drop aband disca negle aside throw erase delet clear reset leave',  # 0
    'forge',  # 1
    'ignor disre',  # 2
    'do don dont never',  # 3
    'despi regar contr inste',  # 4
    'new updat addit real true actua revis chang next',  # 5
    'now here',  # 6
    'start begin',  # 7
    'instr rule rules promp',  # 8
    'situa',  # 9
    'now',  # 10
    'do don dont',  # 11
    'knowl artic docum provi',  # 12
    'ignor vergi verge misac ubers verwi hore horen beach',  # 13
    'anwei aufga instr befeh',  # 14
    'neue',  # 15
    'vorhe bishe obige fruhe',  # 16
    'abwei',  # 17
    'begin start fange',  # 18
    'oubli ignor tenez',  # 19
    'olvid ignor desca',  # 20
    'dimen ignor',  # 21
    'esque ignor',  # 22
    'verge negee',  # 23
    'zabor ignor zanem',  # 24
    'zapom zigno ~забуд ~игнор ~忽略 ~忘记',  # 25
    'anyth dan jailb devel dev god godmo evil stan',  # 26
    'dan aim dude stan mongo kevin apoph ucar bette antig chadg based',  # 27
    'no witho free bound restr broke break ignor bypas',  # 28
    'unfil uncen amora uneth unres unhin',  # 29
    'refus decli say',  # 30
    'stay remai chara roles role break',  # 31
    'opena chatg anthr',  # 32
    'hypot ficti theor',  # 33
    'are',  # 34
    'prete imagi suppo',  # 35
    'act actin behav respo answe',  # 36
    'role play playi',  # 37
    'play',  # 38
    'now',  # 39
    'du sie bist stell tu spiel',  # 40
    'maint ahora finge actua ora fingi',  # 41
    'promp instr rules guide direc confi embed passw pass code secre conte',  # 42
    'promp prepr',  # 43
    'so above befor given begin start',  # 44
    'writt begin start',  # 45
    'begin start prefi prefa',  # 46
    'acces passc passw pass passp secre',  # 47
    'above',  # 48
    'your',  # 49
    'what who',  # 50
    'promp anwei instr einga passw zugan',  # 51
    'acces zugan',  # 52
    'say outpu print respo reply answe write',  # 53
    'say outpu print respo reply answe write',  # 54
    'must have will shoul comma need',  # 55
    'hate love stupi evil dumb',  # 56
    'antwo sag schre gib musst',  # 57
    '~<| ~[inst ~[/inst ~<<sys ~<sys ~</sys ~<instr ~</instr ~[system ~[admin ~</system',  # 58
    '~{{',  # 59
    'ethic safet moral conte',  # 60
    'mode',  # 61
    'bound restr limit contr',  # 62
    'syste admin devel assis instr impor atten note',  # 63
    '~%%% ~==== end begin start',  # 64
    '~\\n ~NL',  # 65
    'your',  # 66
    'your',  # 67
    'code',  # 68
    'ai assis chatb langu llm gpt chatg claud bard copil bot',  # 69
    'summa respo reply repli answe proce read readi',  # 70
    'passw crede api token secre priva cooki clipb conve chat perso bank',  # 71
    '~![ ~os.system ~subprocess. ~rm -rf ~nc -e ~curl ',  # 72
]
assert len(_RULE_ANCHORS) == len(_RULE_SPECS)


def _compile_rules() -> list[tuple[str, float, re.Pattern[str], frozenset[str], tuple[str, ...]]]:
    out = []
    for (name, w, pat), anchors in zip(_RULE_SPECS, _RULE_ANCHORS, strict=True):
        words = frozenset(a[:5] for a in anchors.split() if not a.startswith("~"))
        subs = tuple("\n" if a == "~NL" else a[1:] for a in anchors.split() if a[0] == "~")
        out.append((name, w, re.compile(pat), words, subs))
    return out


_RULES = _compile_rules()
_ATOK = re.compile(r"[^\W_]+")
# inverted index: anchor -> indices of the rules it gates
_BY_WORD: dict[str, list[int]] = {}
_BY_SUB: dict[str, list[int]] = {}
for _i, (_n, _w, _rx, _words, _subs) in enumerate(_RULES):
    for _a in _words:
        _BY_WORD.setdefault(_a, []).append(_i)
    for _a in _subs:
        _BY_SUB.setdefault(_a, []).append(_i)


def _candidate_rules(t: str) -> list[int]:
    """Indices (in order) of the rules whose anchors occur in ``t``."""
    idx: set[int] = set()
    for tok in {w[:5] for w in _ATOK.findall(t)}:
        hit = _BY_WORD.get(tok)
        if hit:
            idx.update(hit)
    for sub, hit in _BY_SUB.items():
        if sub in t:
            idx.update(hit)
    return sorted(idx)
# One alternation of cheap literal triggers: a text that matches none of them, has no
# unusual characters and is short skips everything else (the benign fast path).
_PREFILTER = re.compile(
    r"you|your|ignor|forget|disregard|instruct|prompt|system|say|print|output|repeat|pretend|"
    r"imagine|act |role|rule|previous|above|now|task|password|secret|access|code|jailbreak|dan|"
    r"mode|anweis|vergiss|vergess|aufgabe|du |dich|dir |sie |ihr |befehl|oubli|olvid|"
    r"instrucc|istruz|zaboravi|\||%%|==|<|\[|\{|\\n|\n|answer|respond|reply|write|tell|give|"
    r"show|reveal|stop|attention|new|start|begin|only|must|order|command|filter|polic|"
    r"ethic|moral|restrict|unfilter|uncensor|character|scenario|hypothetic|fiction|game|"
    r"translat|spell|assistant|ai\b|gpt|chat|model|bot\b|hate|kill|trump|hitler|ok\.|okay|"
    r"good|well done|great|excellent|wow|hello|hallo|bitte|please|formul|generat|sql|"
    r"manifest|essay|poem|joke|stil|style|explain|provide|add|include|use|insert|integrat|"
    r"recommend|suggest|determin|analy|describe|draft|develop|render|modify|enhanc|"
    r"emoji|base|encod|revers|misspell|anagram|scrambl|spac|letter|word|sentence|link|"
    r"www|http|download|visit|donat|subscrib|import |exec|artikel|kontext|context|question|"
    r"frage|document|zeit|spiegel|was |wie |wer |who |what |how |why |ist |sind "
)


# ...and nothing that de-obfuscation could turn into a trigger (spaced letters, blobs).
_SUSPECT = re.compile(r"(?<!\w)\w[ .*_-]\w[ .*_-]\w[ .*_-]\w(?!\w)|[A-Za-z0-9+/=]{16,}|[0-9]\w*[a-z]")


def _prefilter_hit(text: str) -> bool:
    """False only for short plain texts with no trigger at all: those skip the scan."""
    return _PREFILTER.search(text.lower()) is not None or _SUSPECT.search(text) is not None


# --------------------------------------------------------------------------- structure layer

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“])|\n+")
_IMPERATIVE = frozenset(
    [
        "add", "analyze", "analyse", "answer", "append", "augment", "change", "compose", "convert",
        "create", "describe", "determine", "develop", "draft", "embed", "employ", "encode",
        "enhance", "ensure", "explain", "express", "forward", "generate", "give", "group", "ignore",
        "include", "incorporate", "insert", "integrate", "introduce", "list", "make", "mention",
        "modify", "output", "present", "print", "promote", "provide", "recommend", "remove",
        "render", "replace", "reply", "respond", "rewrite", "say", "scramble", "send", "share",
        "show", "state", "substitute", "suggest", "summarize", "tell", "translate", "use", "write",
    ]
)
_QUESTION_START = frozenset(
    [
        "what", "how", "why", "who", "where", "when", "which", "can", "could", "is", "are", "do",
        "does", "should", "would", "will",
    ]
)
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_TOKEN = re.compile(r"[^\W_]+(?:'[a-z]+)?")


def _data_like(text: str, n_table: int, channel: str) -> bool:
    return (channel != "input" or n_table >= 3 or "```" in text or "EMAIL_FROM" in text
            or "SUBJECT:" in text)


def _instruction_lines(text: str) -> list[str]:
    """Short standalone lines/sentences that open with an imperative verb or a question word."""
    out = []
    for seg in _SENT_SPLIT.split(text):
        s = seg.strip()
        if not s or len(s) > 300 or s.startswith("|"):
            continue
        toks = _TOKEN.findall(s.lower())
        if 3 <= len(toks) <= 40 and (toks[0] in _IMPERATIVE or toks[0] in _QUESTION_START):
            out.append(s)
            if len(out) >= 6:
                break
    return out


def _segment_signals(text: str, low: str, channel: str) -> list[tuple[str, float, str]]:
    """Structure: instructions inside data. Returns [(signal, weight, quoted span)]."""
    out: list[tuple[str, float, str]] = []
    lines = text.split("\n")
    n_table = 0
    prose: list[str] = []
    for ln in lines:
        if _TABLE_LINE.match(ln):
            n_table += 1
        elif ln.strip():
            prose.append(ln.strip())
    if n_table >= 3:
        for ln in prose:
            toks = _TOKEN.findall(ln.lower())
            if 3 <= len(toks) <= 40 and (toks[0] in _IMPERATIVE or toks[0] in _QUESTION_START
                                   or ln.rstrip().endswith(("?", "."))):
                out.append(("prose_in_table", 0.8, ln))
                break
    if _data_like(text, n_table, channel):
        for seg in _SENT_SPLIT.split(text):
            s = seg.strip()
            if not s or len(s) > 300:
                continue
            toks = _TOKEN.findall(s.lower())
            if 3 <= len(toks) <= 40 and toks[0] in _IMPERATIVE and " your " in f" {s.lower()} ":
                out.append(("imperative_in_data", 0.85, s))
                break
    # token floods (adversarial suffixes / context stuffing)
    toks = low.split()
    if len(toks) >= 30:
        best = run = 1
        for a, b in itertools.pairwise(toks):
            run = run + 1 if a == b else 1
            best = max(best, run)
        if best >= 20:
            out.append(("token_flood", 0.75, " ".join(toks[:12])))
        elif len(set(toks)) / len(toks) < 0.12 and "|" not in low:
            out.append(("token_flood", 0.7, " ".join(toks[:12])))
    return out


# --------------------------------------------------------------------------- classifier


def _model_tokens(low: str) -> list[str]:
    toks = _TOKEN.findall(low)
    if len(toks) > 400:
        toks = toks[:300] + toks[-100:]
    return toks


def features(text: str, *, channel: str = "input") -> tuple[dict[str, float], list[str], float]:
    """Features for the classifier, evidence and the rule score: (feats, evidence, rule_score).

    Used by the scanner and by ``bench/train_injection.py`` so both see the same features.
    """
    low, variants = normalize(text)
    evidence: list[str] = []
    hits: dict[str, float] = {}
    rule_score = 0.0
    seen: set[str] = set()
    texts = [("", low), *variants]
    for vname, t in texts:
        for i in _candidate_rules(t):
            name, w, rx, _, _ = _RULES[i]
            m = rx.search(t)
            if m is None:
                continue
            if name == "addressed" and channel == "input":
                w = min(w, 0.6)  # users address the assistant; only data should not
            key = f"R:{name}"
            if hits.get(key, 0.0) < w:
                hits[key] = w
            if vname:
                hits[f"V:{vname}"] = 1.0
                w = max(w, 0.9) if name.startswith(("override", "extraction", "jailbreak")) else w
            if w > rule_score:
                rule_score = w
            if len(evidence) < 8 and name not in seen:
                seen.add(name)
                where = f"{vname}: " if vname else ""
                evidence.append(f"{name}: {where}{_quote(t, m.start(), m.end())}")
    for vname, t in variants:
        if vname == "spaced" and " " not in t and (m := _GLUED.search(t)):
            hits["R:obfuscated"] = 0.85
            rule_score = max(rule_score, 0.85)
            if len(evidence) < 8:
                evidence.append(f"obfuscated: spaced letters {_clip(t[:120])}")
    for name, w, span in _segment_signals(text, low, channel):
        hits[f"S:{name}"] = w
        rule_score = max(rule_score, w * 0.6)  # structure alone is weak evidence
        if len(evidence) < 8:
            evidence.append(f"{name}: {_clip(span)}")
    for vname, _ in variants:
        hits[f"V:{vname}"] = 1.0
    toks = _model_tokens(low)
    feats: dict[str, float] = {}
    if toks:
        scale = 1.0 / math.sqrt(len(toks))
        prev = "<s>"
        for t in toks:
            feats[t] = scale
            feats[prev + " " + t] = scale
            prev = t
    if _data_like(text, text.count("\n|"), channel):
        lines = _instruction_lines(text)
        if lines:
            feats["S:instr_lines"] = 1.0
            itoks = _TOKEN.findall(" ".join(lines).lower())[:200]
            iscale = 1.0 / math.sqrt(len(itoks) or 1)
            for t in itoks:
                feats["I:" + t] = iscale
    if CHAR_NGRAMS:
        head = " " + " ".join(toks[:CHAR_NGRAM_TOKENS]) + " "
        if len(head) > 5:
            cscale = 0.5 / math.sqrt(len(head) - 3)
            for i in range(len(head) - 3):
                feats["#" + head[i : i + 4]] = cscale
    feats.update(hits)
    feats["C:" + channel.split("[", 1)[0]] = 1.0
    n = len(text)
    feats["L:" + ("xs" if n < 40 else "s" if n < 160 else "m" if n < 800 else "l")] = 1.0
    return feats, evidence, rule_score


def _clip(s: str) -> str:
    s = " ".join(s.split())
    return repr(s if len(s) <= _EVIDENCE_MAX - 2 else s[: _EVIDENCE_MAX - 5] + "...")


def _quote(t: str, a: int, b: int) -> str:
    a2 = max(0, a - 30)
    b2 = min(len(t), max(b, a + 60) + 30)
    return _clip(t[a2:b2])


class _Model:
    __slots__ = ("bias", "threshold", "weights")

    def __init__(self, bias: float, weights: dict[str, float], threshold: float) -> None:
        self.bias = bias
        self.weights = weights
        self.threshold = threshold

    def prob(self, feats: dict[str, float]) -> float:
        w = self.weights
        z = self.bias
        for k, v in feats.items():
            wk = w.get(k)
            if wk is not None:
                z += wk * v
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))


@lru_cache(maxsize=1)
def _model() -> _Model | None:
    try:
        blob: dict[str, Any] = json.loads(MODEL_PATH.read_text("utf-8"))
    except FileNotFoundError:
        return None
    return _Model(float(blob["bias"]), {k: float(v) for k, v in blob["weights"].items()},
                  float(blob.get("threshold", DEFAULT_THRESHOLD)))


def combine(rule_score: float, prob: float | None) -> float:
    """Final score from the rule score and the classifier probability."""
    if prob is None:
        return rule_score
    return max(rule_score if rule_score >= 0.8 else rule_score * 0.5, prob)


# --------------------------------------------------------------------------- public API


def scan_text(text: str, *, channel: str = "input") -> tuple[float, list[str]]:
    """Score one untrusted text for prompt injection: (score 0..1, evidence)."""
    score, evidence = _scan_cached(text, channel)
    return score, list(evidence)


# Retrieved documents and tool results repeat across calls (the same knowledge-base chunk is
# retrieved for many questions), and long ones cost the most to scan: remember recent verdicts.
@lru_cache(maxsize=8192)
def _scan_cached(text: str, channel: str) -> tuple[float, tuple[str, ...]]:
    score, evidence = _scan_uncached(text, channel)
    return score, tuple(evidence)


def _scan_uncached(text: str, channel: str) -> tuple[float, list[str]]:
    """Score one untrusted text for prompt injection: (score 0..1, evidence)."""
    if not text:
        return 0.0, []
    if len(text) < 200 and text.isascii() and "\n" not in text and not _prefilter_hit(text):
        return 0.0, []
    feats, evidence, rule_score = features(text, channel=channel)
    model = _model()
    prob = model.prob(feats) if model is not None else None
    score = combine(rule_score, prob)
    if prob is not None and prob >= 0.5 and not evidence:
        evidence.append(f"classifier: p={prob:.2f} {_clip(text[:120])}")
    return round(score, 4), evidence


def _iter_channels(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """[(channel name, check, text)] for every untrusted channel of an event."""
    untrusted = event.get("untrusted")
    if untrusted is None:
        untrusted = ["input", "context", "tool_calls"]
    wanted = {u.split("[", 1)[0] for u in untrusted} | {"tool_calls"}
    out: list[tuple[str, str, str]] = []
    inp = event.get("input")
    if "input" in wanted and isinstance(inp, str) and inp:
        out.append(("input", "injection.direct", inp))
    ctx = event.get("context") or []
    if "context" in wanted:
        for i, doc in enumerate(ctx):
            if isinstance(doc, str):
                out.append((f"context[{i}]", "injection.indirect", doc))
                continue
            if not isinstance(doc, dict):
                continue
            text = doc.get("text")
            if isinstance(text, str) and text:
                ident = doc.get("id")
                out.append((f"context[{ident if ident not in (None, '') else i}]",
                            "injection.indirect", text))
    for i, call in enumerate(event.get("tool_calls") or []):
        if not isinstance(call, dict):
            continue
        res = call.get("result")
        if res is None:
            continue
        if not isinstance(res, str):
            try:
                res = json.dumps(res, ensure_ascii=False)
            except (TypeError, ValueError):
                res = str(res)
        if res:
            out.append((f"tool_calls[{i}].result", "injection.indirect", res))
    return out


def scan_event(event: dict[str, Any]) -> list[Finding]:
    """Scan each untrusted channel of an event; one Finding per check that has a signal.

    ``injection.direct`` covers the user input, ``injection.indirect`` retrieved context and
    tool results. The finding's score is the highest channel score; evidence is prefixed with
    the channel, e.g. ``context[kb-12]: override: 'ignore all previous...'``.
    """
    best: dict[str, tuple[float, list[str]]] = {}
    for where, check, text in _iter_channels(event):
        ch = "input" if where == "input" else "context" if where.startswith("context") \
            else "tool"
        score, ev = scan_text(text, channel=ch)
        if score <= 0.0:
            continue
        cur = best.get(check)
        quoted = [f"{where}: {e}" for e in ev] or [f"{where}: score {score:.2f}"]
        if cur is None:
            best[check] = (score, quoted)
        else:
            best[check] = (max(cur[0], score), cur[1] + quoted)
    findings = []
    for check, (score, ev) in best.items():
        # channels that flag come first in the evidence
        findings.append(Finding("prompt_injection", check, score, score >= DEFAULT_THRESHOLD,
                                ev[:12]))
    return findings


# --------------------------------------------------------------------------- output leaks

_ALNUM = re.compile(r"[^0-9a-z]+")
_LEAK_CONTEXT = re.compile(
    r"\b(?:access code|password|passcode|pass ?phrase|secret|code is|the code|say|says|said|"
    r"equal to|equals|input is|user (?:says|enters|inputs|types)|if the (?:user|input)|"
    r"instructions|pre-?prompt|prompt)\b"
)


def _leak_norm(s: str) -> str:
    return _WS.sub(" ", _fold(s).lower()).strip()


def output_leaks(output: str, secrets: list[str]) -> tuple[float, list[str]]:
    """Does ``output`` reveal any of ``secrets`` (canary tokens, access codes, system prompts)?

    Catches verbatim, case/spacing/punctuation-changed, reversed, base64/hex-encoded and
    spelled-out leaks of short secrets, token-level partial leaks (most of a secret's words
    appear), and for long secrets (system prompts) verbatim runs of 8+ words.
    Returns (score 0..1, evidence).
    """
    if not output or not secrets:
        return 0.0, []
    out_n = _leak_norm(output)
    out_compact = _ALNUM.sub("", out_n)
    decoded = " ".join(_leak_norm(d) for _, d in _decode_blobs(output))
    best = 0.0
    evidence: list[str] = []

    def hit(score: float, why: str) -> None:
        nonlocal best
        if score > best:
            best = score
        if len(evidence) < 6:
            evidence.append(why)

    for secret in secrets:
        if not secret or not secret.strip():
            continue
        s_n = _leak_norm(secret)
        s_compact = _ALNUM.sub("", s_n)
        words = s_n.split()
        if len(words) >= 20:  # a system prompt: look for verbatim runs of its words
            grams = {" ".join(words[i : i + 8]) for i in range(len(words) - 7)}
            ow = out_n.split()
            found = [i for i in range(len(ow) - 7) if " ".join(ow[i : i + 8]) in grams]
            if found:
                cover = len({j for i in found for j in range(i, i + 8)}) / max(len(words), 1)
                hit(min(1.0, 0.7 + cover), f"system prompt run: {_clip(' '.join(ow[found[0]:found[0] + 20]))}")
            continue
        idx = out_n.find(s_n)
        if idx >= 0:
            hit(1.0, f"verbatim: {_quote(out_n, idx, idx + len(s_n))}")
            continue
        if len(s_compact) >= 3:
            if s_compact in out_compact:
                hit(0.95, f"obfuscated (spacing/punctuation): {s_compact!r}")
                continue
            if s_compact[::-1] in out_compact and len(s_compact) >= 5:
                hit(0.9, f"reversed: {s_compact[::-1]!r}")
                continue
            if decoded and s_compact in _ALNUM.sub("", decoded):
                hit(0.95, "encoded (base64/hex) copy of the secret")
                continue
            enc = [base64.b64encode(secret.encode()).decode().rstrip("="), secret.encode().hex()]
            if any(e and e.lower() in output.lower() for e in enc if len(e) >= 6):
                hit(0.95, "encoded (base64/hex) copy of the secret")
                continue
        # token-level partial leak: most of the secret's tokens occur in the output
        stoks = [t for t in _ALNUM.split(s_n) if t]
        if not stoks:  # a secret made of symbols/emoji
            sym = s_n.replace(" ", "")
            uniq = set(sym)
            if uniq and all(c in out_n for c in uniq):
                hit(0.8, f"symbols of the secret appear: {''.join(sorted(uniq))!r}")
            continue
        otoks = set(_ALNUM.split(out_n))
        present = [t for t in stoks if t in otoks]
        frac = len(present) / len(stoks)
        if frac >= 0.5 and present:
            strong = any(len(t) >= 4 for t in present) or frac == 1.0
            ctx = _LEAK_CONTEXT.search(out_n) is not None
            score = 0.45 + 0.35 * frac + (0.15 if ctx else 0.0) + (0.05 if strong else -0.2)
            hit(min(score, 0.95), f"partial: {len(present)}/{len(stoks)} secret tokens "
                                  f"{present[:5]!r}")
    return round(best, 4), evidence


def obeyed(output: str | None, injected_text: str) -> bool:
    """Cheap heuristic: does ``output`` look like it followed ``injected_text``?

    True when a quoted string the injection asked for ("say 'X'") appears in the output, or a
    URL / e-mail address the injection planted is repeated by the output.
    """
    if not output or not injected_text:
        return False
    out = _leak_norm(output)
    inj = injected_text
    asked = re.findall(r"[\"“'‘«]([^\"”'’»\n]{3,80})[\"”'’»]", inj)
    for a in asked:
        if _leak_norm(a) in out:
            return True
    planted = re.findall(r"(?:https?://|www\.)[^\s)\"']+|[\w.+-]+@[\w-]+\.[\w.]+", inj.lower())
    return any(p.rstrip(".,") in out for p in planted)
