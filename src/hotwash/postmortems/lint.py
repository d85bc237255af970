"""The blameless linter: find sentences that make a person the cause, and suggest a systems framing.

``lint(text, people=...)`` reads a postmortem (Markdown, or any prose) and returns one :class:`Finding`
per offending sentence (from the first rule, in the order below, that matches it): the line, the
sentence quoted, the rule, why it reads as blame, and a rewrite that names the system instead. Findings
never block anything: a reviewer may accept one, and :attr:`Finding.key` (the rule plus the sentence,
normalised: case, spacing, emphasis) keeps that acceptance valid while the rest of the document is
edited. Rewording the sentence itself makes it a new finding.

The rules (:data:`RULES`):

``person-as-cause``
    A person is the subject of a failure verb: "Ana forgot to renew the certificate", "the on-call
    engineer missed the page", "he broke the build", "Sam introduced a regression", "the change was
    overlooked by Priya".
``person-blamed-action``
    A person is the subject of an ordinary action verb (deployed, pushed, ran, deleted, merged,
    approved...) that the same clause turns into the failure: "Bob deployed a bad config", "an engineer
    accidentally ran the script", "Ana pushed the prompt without an eval", "Bob merged a change that broke
    checkout", "Alex pushed v42, which caused the hallucinations". Credit is not blame: "Ana deployed the
    fix", "Ana deployed the revert of the change that caused the outage", "Kim set the throttle without
    waiting for approval, which stopped the spike" are not flagged.
``possessive-blame``
    A person owns the failure: "Ana's mistake", "his fault", "Bob's PR broke the router", "the PR by Sam
    introduced a regression", "the fault of the on-call engineer".
``person-root-cause``
    The root cause is a person: "The root cause was the engineer who ran the migration".
``human-error``
    "human error", "operator error", "user error" (not "user error rate"), "PEBKAC": a label that ends
    the inquiry where it should begin.
``counterfactual``
    Hindsight about what someone failed to do: "should have" / "shouldn't have" / "ought to have"
    followed by a past participle ("we should have tested", "this should have been caught in review"), and
    "could have been avoided/prevented". Decided and not flagged: a recommendation about the system ("we
    should have a monitor for X", "critical pods should have priority"); a value ("should have been 2x");
    what a system was expected to do ("the model should have refused", "the upgrade should not have caused
    this", "the alert should have been routed to Slack"), unless people are the subject ("we should have
    caught this"); and a question put to the review ("Reflect whether it should have been announced",
    a sentence ending in "?").
``blame-language``
    Words that judge a person's care or character: careless, negligent, sloppy, lazy, reckless,
    fat-fingered, "didn't bother", "his fault", "to blame", "be more careful", "without being aware".
    "Blameless", "git blame", "nobody is to blame", "negligible", "lazy loading", "fault tolerance" and
    "root cause" are not flagged.

Who counts as a person: the names passed in ``people`` (participants' handles and names, matched
without case), ``@handles``, "he" / "she" / "I", role nouns ("the engineer", "an operator", "the
on-call", "someone"; "a person", "the human" only with an article; not "the SRE team", "a dev container",
"operator error"), and capitalised first names from a small built-in list of common first names
(:data:`FIRST_NAMES`, written for this module; names that are also words or software, like Will, May,
Grace, Ruby, Travis, Cassandra, Hugo, Claude, are left out). A name right after a preposition or a verb
of contact ("we paged Ana", "thanks to Sam") is an object, not a subject. "We" and "the team" are not
treated as a person: collective first person is how blameless reports describe the organisation's own
system.

Not read: the front matter, fenced code, inline code, block quotes, URLs and link targets, HTML, and
quoted speech ("..." and “...”), so a log line or a customer's words are never linted.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache

__all__ = ["FIRST_NAMES", "RULES", "RULE_IDS", "Finding", "Rule", "finding_key", "lint", "normalize_quote",
           "person_mentions", "unaccepted"]


@dataclass(frozen=True)
class Finding:
    """One sentence that reads as blame. ``line`` is 1-based, in the text given to :func:`lint`."""

    line: int
    quote: str
    rule: str
    why: str
    suggestion: str

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the document: the rule plus the sentence, normalised."""
        return finding_key(self.rule, self.quote)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "key": self.key}


def normalize_quote(quote: str) -> str:
    """Lower case, Markdown emphasis and punctuation at the ends removed, whitespace collapsed."""
    text = re.sub(r"[*_`~]", "", quote).casefold()
    return " ".join(text.split()).strip(" .,;:!?-—–\"'“”‘’()[]")


def finding_key(rule: str, quote: str) -> str:
    """The key a reviewer's acceptance is stored under (:attr:`Finding.key`)."""
    digest = hashlib.sha256(normalize_quote(quote).encode()).hexdigest()[:16]
    return f"{rule}:{digest}"


def unaccepted(findings: Iterable[Finding], accepted: Iterable[str | Mapping[str, object]]) -> list[Finding]:
    """The findings a reviewer has not accepted. ``accepted`` holds keys, or records with ``key`` or with
    ``rule`` and ``quote`` (the shape stored on a postmortem: ``{rule, quote, by, at}``)."""
    keys: set[str] = set()
    for item in accepted:
        if isinstance(item, str):
            keys.add(item)
        elif item.get("key"):
            keys.add(str(item["key"]))
        else:
            keys.add(finding_key(str(item.get("rule", "")), str(item.get("quote", ""))))
    return [f for f in findings if f.key not in keys]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- who is a person -----------------------------------------------------------------------------

# Common first names, written for this linter (not downloaded). Left out on purpose: names that are
# also ordinary words or months (Will, May, June, Mark, Bill, Grant, Chase, Max, Rose...), and names of
# software an incident report mentions (Ruby, Ada, Travis, Cassandra, Aurora, Athena, Phoenix, Claude,
# Alexa, Devin, Jarvis...), which would turn "Travis failed" into blame of a person.
FIRST_NAMES: frozenset[str] = _words("""
Aaron Abby Abdul Abigail Adam Adrian Ahmed Aisha Alan Albert Alberto Alejandro Alex Alexander Alexandra Alexis
Alfred Ali Alice Alicia Alison Allison Amanda Amir Amit Amy Ana Anders Andrea Andreas Andrei Andrew Andy
Angela Anil Anita Anja Ann Anna Anne Annie Anthony Anton Antonio Anya Arjun Arthur Arun Ashley Astrid Audrey
Ben Benjamin Bernard Beth Bethany Bianca Bjorn Blake Bob Bobby Brad Bradley Brandon Brenda Brian Bruce
Bryan Caitlin Carl Carla Carlos Carmen Caroline Carolyn Casey Catherine Cathy Cecilia Charles Charlie
Charlotte Chen Chloe Chris Christian Christina Christine Christopher Claire Clara Colin Connor Craig Cristina
Cynthia Dan Daniel Daniela Danielle Danny Daria Darius David Debbie Deborah Deepak Denise Dennis Derek Diana
Diane Diego Dimitri Dmitri Dominic Donald Donna Doug Douglas Dylan Edward Elena Eli Elias Elijah Elizabeth
Ella Ellen Emily Emil Emma Enrique Eric Erik Erika Erin Ethan Eva Evan Fatima Felix Fernando Fiona
Francesca Francesco Francis Frederik Gabriel Gabriela Gary Gaurav Georg George Gerald Gina Giovanni Giulia
Gloria Gordon Greg Gregory Gustavo Hailey Hannah Hans Harold Harry Hassan Heidi Helen Helena Henrik Henry
Hiroshi Ian Igor Ingrid Irene Isaac Isabel Isabella Ivan Jacob Jake James Jamie Jan Jane Janet Janice
Jason Javier Jean Jeff Jeffrey Jennifer Jenny Jeremy Jerry Jesse Jessica Jesus Jill Jim Jimmy Joan Joanna Joe
Joel Johan Johannes John Johnny Jon Jonas Jonathan Jorge Jose Joseph Josh Joshua Juan Judith Judy Julia Julian
Julie Justin Kai Karen Karin Karl Kate Katherine Kathleen Kathy Katie Kayla Keith Kelly Ken Kenji Kenneth
Kevin Kim Kirsten Klaus Kumar Kyle Lars Laura Lauren Laurent Leah Lena Leo Leon Leonardo Liam Linda Lisa Liu
Logan Lorenzo Louis Louise Lucas Lucia Luis Luke Lukas Magnus Maja Manuel Marco Marcus Margaret Maria Marie
Marina Mario Marion Marta Martha Martin Mary Mason Mateo Matt Matthew Matthias Maya Megan Mehmet Melissa Mia
Michael Michelle Miguel Mike Mikhail Mohammed Mohamed Monica Morgan Nadia Nancy Naomi Natalia Natalie
Nathan Neha Nicholas Nicole Niels Nikhil Nikolai Nina Noah Nora Olga Oliver Olivia Omar Oscar Owen Pablo
Pamela Patricia Patrick Paul Paula Pedro Peter Philip Phillip Pierre Pooja Priya Rachel Rahul Raj Rajesh Ralph
Ramon Raphael Rebecca Ricardo Richard Rick Rita Robert Roberto Robin Roger Rohan Ronald Rosa Rosie Ruth Ryan
Sabrina Sally Sam Samantha Samuel Sandra Sanjay Sara Sarah Scott Sebastian Sergei Sergio Shannon Sharon Shawn
Sheila Simon Sofia Sophia Sophie Stefan Stephanie Stephen Steve Steven Sunil Susan Suresh Svetlana Tanya
Teresa Theo Thomas Tim Timothy Tina Tobias Todd Tom Tommy Tony Tyler Valentina Vanessa Victor Victoria Vikram
Vincent Viktor Wei Wendy William Xavier Yuki Yusuf Zach Zachary Zoe Søren Jörg Jürgen Björn Zoë Chloé
""")

# Roles that name a person even without an article ("Engineer reports the issue").
_ROLE = (r"(?:engineers?|developers?|operators?|on-?call(?:\s+(?:engineers?|persons?|people))?|sres?|"
         r"admins?|administrators?|interns?|contractors?|team\s+members?|employees?|reviewers?|"
         r"release\s+managers?|responders?|staff\s+members?|new\s+hires?|(?:junior|senior)\s+"
         r"(?:engineers?|developers?))")
# Words that name a person only with an article: "a person", "the human" (not "person ingestion").
_ROLE_WITH_ARTICLE = r"(?:persons?|humans?|individuals?|devs?)"
# After a role word, these make it a thing: "the SRE team", "a dev container", "developer guide".
_NOT_A_PERSON_AFTER = (r"(?!\s+(?:teams?|groups?|channels?|containers?|workloads?|databases?|environments?|clusters?|"
                       r"accounts?|tasks?|guides?|portal|docs?|documentation|ingestion|access|rotas?|rotation|"
                       r"schedules?|tooling|tools?|experience|productivity|machines?|laptops?|credentials|tokens?|"
                       r"roles?|permissions?|mode|builds?|branch(?:es)?|instances?|namespaces?|errors?|mistakes?|"
                       r"slips?))")
_DETERMINER = r"(?:the|an?|one|another|our|their|some|that|this|a\s+single)"
# Words allowed between the subject and its verb ("Ana had then", "the engineer apparently").
_AUX = (r"(?:had|has|have|was|were|did|then|also|just|simply|again|apparently|unfortunately|actually|probably|"
        r"already|mistakenly|accidentally|inadvertently|unintentionally|carelessly|wrongly|incorrectly|"
        r"erroneously|hastily|blindly|recklessly|unknowingly|unwittingly)")
_ADVERB_OF_FAILURE = (r"(?:accidentally|mistakenly|inadvertently|unintentionally|carelessly|wrongly|incorrectly|"
                      r"erroneously|hastily|blindly|recklessly|unknowingly|unwittingly)")

# Inherent failure verbs: with a person as the subject, the sentence says the person caused the failure.
_FAILURE_VERB = (
    r"(?:forgot|forgets|forgotten|forget|broke|breaks|broken|missed|misses|miss|caused|causes|neglected|"
    r"overlooked|ignored|ignores|failed(?!\s+over)|fails(?!\s+over)|fail(?!\s+over)|screwed\s+up|messed\s+up|"
    r"botched|fumbled|blundered|mixed\s+up|misconfigured|misread|misunderstood|mistyped|typoed|"
    r"fat[- ]?fingered|mistook|"
    r"made\s+(?:an?|the|this|that)\s+(?:\w+\s+)?(?:mistake|error|typo|slip|bad\s+call)|"
    r"introduced\s+(?:an?|the|this)\s+(?:\w+\s+)?(?:bug|regression|outage|error)|"
    r"(?:didn['’]t|did\s+not|hadn['’]t|had\s+not|never)\s+(?:check|checked|test|tested|verify|verified|validate|"
    r"validated|notice|noticed|follow|followed|read|review|reviewed|wait|ask|escalate|communicate|update|"
    r"realize|realise|realized|realised|consider|considered|think|bother|catch|caught|run|ran)|"
    r"(?:was|were)\s+(?:careless|negligent|responsible\s+for\s+(?:the|this)\s+(?:outage|incident|failure|"
    r"breakage|downtime|error)|not\s+paying\s+attention|not\s+careful))\b"
)
# Ordinary verbs that become blame when the same clause makes the action a failure.
_ACTION_VERB = (
    r"(?:deployed|deploys|pushed|pushes|force[- ]pushed|merged|merges|ran|runs|executed|executes|applied|"
    r"applies|changed|changes|deleted|deletes|removed|removes|dropped|drops|released|releases|shipped|ships|"
    r"rolled\s+out|committed|commits|configured|set|upgraded|upgrades|updated|updates|modified|edited|"
    r"disabled|enabled|turned\s+(?:off|on)|approved|approves|restarted|rebooted|killed|promoted|wrote|added|"
    r"replaced|switched|triggered|started|launched|scaled|truncated|overwrote|overwrites|wiped|published|"
    r"rotated|revoked|copied|uploaded|exposed|leaked|checked\s+in|typed|entered)\b"
)
_FAILURE_NOUN = (r"(?:outages?|errors?|failures?|downtime|incidents?|crash(?:es)?|data\s+loss|breakage|disruption|"
                 r"degradation|regressions?|bugs?|5\d\d|5xx|leaks?|exposure|hallucinations?|injections?|"
                 r"(?:wrong|bad|ungrounded)\s+answers?|cost\s+spikes?|overspend|loops?)")
# Anywhere in the clause: how the action was done, or what it led to.
_MANNER = re.compile(
    rf"\b(?:{_ADVERB_OF_FAILURE}|by\s+(?:mistake|accident|error)|in\s+error|"
    r"without\s+(?:(?:any|a|an|the|first|proper|prior|running|doing|enough|sufficient|adequate|further|peer|code|"
    r"its|their|an?\s+eval)\s+){0,2}(?:testing|tests?|review(?:ing|s)?|approval|checking|checks?|evals?|canary|"
    r"asking|telling|notice|warning|verifying|verification|validation|permission)|"
    r"(?:which|that|and|,)\s+(?:then\s+|also\s+|immediately\s+)?(?:broke|took\s+down|brought\s+down|crashed|"
    r"corrupted|wiped)|breaking|taking\s+down|bringing\s+down|crashing|corrupting|"
    r"(?:caused|causing|led\s+to|leading\s+to|resulted\s+in|resulting\s+in|triggered|triggering|introduced|"
    rf"introducing)\s+(?:[\w-]+\s+){{0,4}}?{_FAILURE_NOUN})\b",
    re.IGNORECASE,
)
# Right after the verb: the object is described as bad ("deployed a bad config", "ran an untested migration").
_BAD_OBJECT = re.compile(
    r"\s+(?:[\w-]+\s+){0,2}?(?:bad|broken|buggy|faulty|wrong|incorrect|untested|unreviewed|unvetted|flawed|"
    r"erroneous|bogus|malformed|invalid)\b",
    re.IGNORECASE,
)
_BLAME_NOUN = (r"(?:mistake|error(?!\s+(?:rates?|messages?|codes?|budgets?|logs?|handling))|fault|oversight|typo|"
               r"slip|negligence|carelessness|failure|blunder|screw-?up)")
_ARTIFACT = (r"(?:change|changes|commit|PR|pull\s+request|deploy|deployment|push|merge|script|config|configuration|"
             r"command|code|patch|edit|update|migration|query|prompt|release)")
_CONSEQUENCE = (r"(?:broke|breaks|caused|causes|took\s+down|brought\s+down|triggered|introduced|crashed|corrupted|"
                r"deleted|wiped|disabled|removed)")

# Words right before a name that make it not the subject ("we paged Ana", "thanks to Sam").
_NOT_SUBJECT_BEFORE = _words("""
to for with by from of at on in about than like via cc thanks thank ask asked told tell pinged paged called
emailed messaged contacted notified alerted escalated assigned the a an dear hi hello including except unlike
between among per
""")

_PARTICIPLE_IRREGULAR = _words("""
been had done known seen caught taken given written run gone made found built sent put set kept told thought
brought understood spotted noticed chosen driven shown begun broken forgotten held read heard left lost meant
met paid rung said sold shut spent split spread stood struck stuck swept taught torn thrown won withdrawn
woken worn got gotten
""")
# -ed words that are usually adjectives before a noun: "should have limited access" is a recommendation,
# "should have limited the blast radius" is hindsight.
_ED_ADJECTIVES = _words("""
limited dedicated automated detailed isolated advanced distributed integrated extended improved increased
reduced enhanced updated separated structured unified centralized centralised standardized standardised
defined established expected required related specialized specialised customized customised scheduled managed
shared based restricted documented versioned pinned signed encrypted tested named labelled labeled tagged
""")
# After a participle, these show it is used as a verb (it has an object or an adverbial).
_VERB_FOLLOWERS = _words("""
the a an this that these those it them its their our his her my your for to on in with before after earlier
sooner first up out down about against by at all both each every any some more
""")
_ADVERB = (r"(?:just|simply|really|probably|also|ideally|definitely|already|first|properly|instead|rather|"
           r"actually|certainly|obviously|clearly|maybe|perhaps|likely|all|both|never|not)")
_EVIDENT = _words("""
obvious clear apparent evident careful aware able
""")

_HUMAN_ERROR = re.compile(
    r"\b(?:(?:human|operator|manual|personnel|pilot)\s+(?:errors?|mistakes?|slips?)|"
    r"user\s+error(?!s?\s+(?:rate|rates|count|counts|message|messages|page|pages|code|codes|handling|"
    r"responses?|events?|metrics?))|pebkac|picnic\s+error|layer\s+8\s+(?:issue|error|problem)|id-?10-?t)\b",
    re.IGNORECASE,
)
_BLAME_WORDS = re.compile(
    r"\b(?:careless(?:ly|ness)?|negligen(?:t|tly|ce)|slopp(?:y|ily|iness)|laziness|"
    r"lazy(?!\s*[- ]?(?:load|loading|loaded|evaluation|eval|init|initiali[sz]ation|import|imports|"
    r"instantiation|fetch|fetching|compil))|"
    r"incompeten(?:t|ce)|reckless(?:ly|ness)?|irresponsib(?:le|ly|ility)|stupid(?:ity)?|idiot(?:ic|s)?|"
    r"fat[- ]?finger(?:ed|ing|s)?|(?:didn['’]?t|did\s+not|never)\s+(?:even\s+)?bother(?:ed)?|"
    r"(?:his|her|my|your)\s+(?:own\s+)?fault|"
    r"(?:was|were|is|are)\s+to\s+blame|blam(?:e|ed|es|ing)|"
    r"not\s+paying\s+attention|paid\s+no\s+attention|asleep\s+at\s+the\s+wheel|dropped\s+the\s+ball|"
    r"(?:be|being)\s+more\s+careful|wasn['’]?t\s+careful|not\s+careful\s+enough|no\s+excuse|"
    r"without\s+(?:being\s+)?(?:fully\s+|really\s+)?aware)\b",
    re.IGNORECASE,
)
_NOT_BLAME = re.compile(
    r"\b(?:blameless(?:ly|ness)?|blame[- ]?free|git\s+blame|"
    r"(?:no\s*one|nobody|no\s+(?:one\s+)?(?:person|individual|team))\s+(?:is|was|are|were)\s+(?:to\s+)?(?:be\s+)?"
    r"blamed?|without\s+(?:assigning\s+|any\s+)?blame|no\s+blame|avoid(?:s|ing)?\s+blam(?:e|ing)|"
    r"(?:isn['’]t|is\s+not|wasn['’]t|was\s+not|not)\s+(?:about\s+)?(?:to\s+)?(?:assigning\s+|assign\s+)?blam(?:e|ing))\b",
    re.IGNORECASE,
)


class _Patterns:
    """The person-dependent patterns, compiled once per set of participants."""

    def __init__(self, people: tuple[str, ...]) -> None:
        names = sorted(FIRST_NAMES, key=len, reverse=True)
        first = r"(?-i:(?:" + "|".join(re.escape(n) for n in names) + r")(?:\s+[A-Z][a-z'’-]+)?)"
        given = "".join("|" + re.escape(p) for p in sorted(set(people), key=len, reverse=True))
        person = (rf"(?P<who>@[A-Za-z0-9][\w.-]*[A-Za-z0-9]|(?-i:I)|he|she|someone|somebody|"
                  rf"(?:{_DETERMINER}\s+)?{_ROLE}|{_DETERMINER}\s+{_ROLE_WITH_ARTICLE}{given}|{first})")
        who = rf"(?<![\w@.’'&;-]){person}(?![\w'’@-]){_NOT_A_PERSON_AFTER}"
        # Possessive owners: a person followed by 's, or his / her / my.
        owner = rf"(?:(?<![\w@.’'&;-]){person}['’]s|(?<![\w'’])(?P<pron>his|her|my))"
        flags = re.IGNORECASE
        self.person = re.compile(who, flags)
        self.as_cause = re.compile(rf"{who}(?:\s+{_AUX})*\s+(?P<verb>{_FAILURE_VERB})", flags)
        self.as_cause_passive = re.compile(
            r"\b(?P<verb>broken|caused|missed|overlooked|forgotten|ignored|neglected|misconfigured)\s+by\s+"
            + who.replace("(?<![\\w@.’'&;-])", ""), flags)
        self.action = re.compile(rf"{who}(?P<adv>(?:\s+{_AUX})*)\s+(?P<verb>{_ACTION_VERB})", flags)
        self.action_passive = re.compile(rf"\b(?:was|were|got)\s+(?P<verb>{_ACTION_VERB})\s+by\s+"
                                         + who.replace("(?<![\\w@.’'&;-])", ""), flags)
        self.owned_failure = re.compile(rf"{owner}\s+(?:own\s+|\w+\s+)?(?P<noun>{_BLAME_NOUN})\b", flags)
        self.owned_artifact = re.compile(rf"{owner}\s+(?:[\w-]+\s+)?(?P<noun>{_ARTIFACT})\b(?:\s+[\w#./()-]+){{0,4}}?"
                                         rf"\s+(?P<verb>{_CONSEQUENCE})\b", flags)
        self.made_by = re.compile(rf"\b(?P<noun>{_ARTIFACT})\s+(?:made\s+|written\s+|pushed\s+)?by\s+"
                                  + who.replace("(?<![\\w@.’'&;-])", "")
                                  + rf"(?:\s+[\w#./()-]+){{0,4}}?\s+(?P<verb>{_CONSEQUENCE})\b", flags)
        self.fault_of = re.compile(rf"\bfault\s+of\s+{who}", flags)
        self.root_cause = re.compile(
            rf"\broot\s+cause\s*(?:was|is|:|=|-|—|–)\s*(?:that\s+)?(?:{who}|(?P<human>humans?|people|a\s+person|"
            r"human\s+(?:error|action|judg(?:e)?ment)))(?![\w'’])", flags)


# -- rules ---------------------------------------------------------------------------------------

Hit = tuple[int, str, dict[str, str]]


@dataclass(frozen=True)
class Rule:
    """A blame pattern: ``find(sentence, patterns)`` yields (offset, matched text, details) for each match;
    ``why`` and ``suggest`` turn a match into words for the reviewer."""

    id: str
    why: str
    find: Callable[[str, _Patterns], Iterator[Hit]]
    suggest: Callable[[dict[str, str]], str]


def _subject_ok(sentence: str, start: int, who: str = "") -> bool:
    """Whether a person named at ``start`` can be the subject (not the object of a preposition or verb)."""
    before = re.findall(r"[\w'’/]+", sentence[max(0, start - 30):start])
    if not before:
        return True
    if who == "I" and before[-1][:1].isupper():
        return False  # "Phase I", "Type I": a numeral, not a person
    return before[-1].casefold() not in _NOT_SUBJECT_BEFORE


# Cheap tests that a sentence can match at all, before the patterns that try a person at every position.
_HAS_FAILURE_VERB = re.compile(r"\b" + _FAILURE_VERB, re.IGNORECASE)
_HAS_ACTION_VERB = re.compile(r"\b" + _ACTION_VERB, re.IGNORECASE)
_HAS_OWNER = re.compile(r"\w['’]s\b|\b(?:his|her|my|by|fault)\b", re.IGNORECASE)


def _person_as_cause(sentence: str, p: _Patterns) -> Iterator[Hit]:
    if not _HAS_FAILURE_VERB.search(sentence):
        return
    for m in p.as_cause.finditer(sentence):
        if _subject_ok(sentence, m.start("who"), m["who"]):
            yield m.start(), m[0], {"who": m["who"], "verb": m["verb"]}
    for m in p.as_cause_passive.finditer(sentence):
        yield m.start(), m[0], {"who": m["who"], "verb": m["verb"]}


def _clause_after(sentence: str, end: int) -> str:
    """The rest of the clause after a verb: up to a break that starts a new thought."""
    rest = re.split(r";|\s[—–-]\s|\b(?:but|so|while|however|although|though|whereas|until|after|before|once|then)\b",
                    sentence[end:], maxsplit=1)[0]
    return rest[:200]


_REMEDY = re.compile(r"\b(?:revert(?:ed|ing)?|rollback|roll\s+back|rolled\s+back|fix|fixes|fixed|hotfix|patch|"
                    r"mitigation|workaround|remedy|cleanup\s+of|repair)\b", re.IGNORECASE)


def _person_blamed_action(sentence: str, p: _Patterns) -> Iterator[Hit]:
    if not _HAS_ACTION_VERB.search(sentence):
        return
    for m in p.action.finditer(sentence):
        if not _subject_ok(sentence, m.start("who"), m["who"]):
            continue
        clause = _clause_after(sentence, m.end())
        qualifier = _MANNER.search(m["adv"] + " " + clause) or _BAD_OBJECT.match(clause)
        # "Ana deployed the revert of the change that caused the outage": the failure belongs to the
        # earlier change, and the person's action is the remedy.
        if qualifier and not _REMEDY.search(clause[:max(0, qualifier.start() - len(m["adv"]) - 1)]):
            yield m.start(), m[0], {"who": m["who"], "verb": m["verb"], "qualifier": qualifier[0].strip()}
    for m in p.action_passive.finditer(sentence):
        qualifier = _MANNER.search(sentence) or _BAD_OBJECT.search(sentence[:m.start()])
        if qualifier:
            yield m.start(), m[0], {"who": m["who"], "verb": m["verb"], "qualifier": qualifier[0].strip()}


def _possessive_blame(sentence: str, p: _Patterns) -> Iterator[Hit]:
    if not _HAS_OWNER.search(sentence):
        return
    for pattern in (p.owned_failure, p.owned_artifact):
        for m in pattern.finditer(sentence):
            yield m.start(), m[0], {"who": m["who"] or m["pron"], "noun": m["noun"]}
    for m in p.made_by.finditer(sentence):
        yield m.start(), m[0], {"who": m["who"], "noun": m["noun"], "verb": m["verb"]}
    for m in p.fault_of.finditer(sentence):
        yield m.start(), m[0], {"who": m["who"], "noun": "fault"}


def _person_root_cause(sentence: str, p: _Patterns) -> Iterator[Hit]:
    if "root" not in sentence.casefold():
        return
    for m in p.root_cause.finditer(sentence):
        yield m.start(), m[0], {"who": m["who"] or m["human"]}


def _human_error(sentence: str, p: _Patterns) -> Iterator[Hit]:
    for m in _HUMAN_ERROR.finditer(sentence):
        yield m.start(), m[0], {}


_COUNTERFACTUAL = re.compile(
    rf"\b(?:should(?:\s+not|n['’]t)?\s+have|should['’]ve|ought\s+(?:not\s+)?to\s+have)(?:\s+{_ADVERB})*"
    rf"\s+(?P<word>[A-Za-z'’-]+)(?:\s+{_ADVERB})*(?:\s+(?P<next>[A-Za-z'’-]+))?",
    re.IGNORECASE,
)
# "The upgrade should not have caused this", "the pod should have restarted": what the system was expected
# to do, not what a person failed to do.
_SYSTEM_BEHAVIOUR = _words("""
worked succeeded returned restarted recovered failed fired alerted retried scaled caused affected impacted
happened mattered completed rejected blocked matched triggered continued stopped started propagated synced
expired resolved passed loaded shown displayed appeared arrived reached received timed rolled refused flagged
detected answered cited handled routed filtered denied paged notified logged caught escalated
""")
# Passives that describe what a system does to a thing ("the alert should have been routed to Slack");
# other passives ("should have been caught in review") hide a person who was expected to act.
_SYSTEM_PASSIVE = _words("""
routed triggered fired sent delivered rejected blocked filtered retried restarted scaled rotated logged recorded
cached evicted throttled flagged raised refused returned propagated synced applied
""")
# "Reflect whether the change should have been announced": a question for the review, not a verdict.
_REFLECTION = re.compile(r"\b(?:whether|(?:reflect|consider|discuss|decide|ask|evaluate|investigate|review|"
                         r"question|check|clarify|understand)(?:\s+on)?\s+if)\b", re.IGNORECASE)
_AVOIDABLE = re.compile(r"\bcould\s+(?:easily\s+)?have\s+been\s+(?:avoided|prevented|caught)\b", re.IGNORECASE)


def _is_participle(word: str, following: str) -> bool:
    if word in _PARTICIPLE_IRREGULAR:
        return True
    if not (word.endswith("ed") and len(word) > 4):
        return False
    # "should have limited access" (a recommendation) vs "should have limited the damage" (hindsight).
    return word not in _ED_ADJECTIVES or not following or following in _VERB_FOLLOWERS


def _people_subject(before: str, p: _Patterns) -> bool:
    """Whether the clause before "should have" has people as its subject ("we", "the team", a person)."""
    clause = re.split(r"[,;:]", before)[-1]
    return bool(re.search(r"\b(?:we|i|you|they|team|someone|somebody|nobody|no\s+one)\b", clause, re.IGNORECASE)
                or p.person.search(clause))


def _counterfactual(sentence: str, p: _Patterns) -> Iterator[Hit]:
    if sentence.rstrip().endswith("?"):
        return # a question to discuss is not a verdict
    for m in _COUNTERFACTUAL.finditer(sentence):
        word, following = m["word"].casefold(), (m["next"] or "").casefold()
        verb = following if word == "been" else word
        if _REFLECTION.search(sentence[:m.start()]):
            continue
        system = _SYSTEM_PASSIVE if word == "been" else _SYSTEM_BEHAVIOUR
        if verb in system and not _people_subject(sentence[:m.start()], p):
            continue
        if word == "been":
            hit = following in _EVIDENT or (bool(following) and _is_participle(following, ""))
        else:
            hit = _is_participle(word, following)
        if hit:
            yield m.start(), m[0], {"phrase": m[0]}
    for m in _AVOIDABLE.finditer(sentence):
        yield m.start(), m[0], {"phrase": m[0]}


def _blame_language(sentence: str, p: _Patterns) -> Iterator[Hit]:
    excused = [m.span() for m in _NOT_BLAME.finditer(sentence)]
    for m in _BLAME_WORDS.finditer(sentence):
        if not any(a <= m.start() < b for a, b in excused):
            yield m.start(), m[0], {"word": m[0]}


def _verb_family(verb: str) -> str:
    v = verb.casefold()
    if re.match(r"(deploy|push|force|merg|releas|ship|roll|commit|promot|publish|approv|launch)", v):
        return "deploy"
    if re.match(r"(forg|miss|overlook|ignor|neglect|didn|did|had|never|fail|fumbl|misread|misunder|was|were)", v):
        return "missed"
    if re.match(r"(delet|remov|drop|ran|run|execut|appl|truncat|overwr|wip|kill|restart|reboot|scal|typ|enter|"
                r"mistyp|fat)", v):
        return "command"
    return "change"


_SUGGESTIONS = {
    "deploy": "Describe the path the change took, not who took it: \"Our deploy process did not require an "
              "eval pass before promote, so the change reached production untested.\"",
    "missed": "Describe what made it easy to miss: \"The renewal was a manual calendar step, and nothing alerted "
              "when it lapsed.\"",
    "command": "Describe what let the command do damage: \"The production context was the default, and nothing "
               "asked for confirmation before a destructive command.\"",
    "change": "Name the mechanism instead of the person: \"The configuration change removed the citation "
              "requirement, and no check compares the prompt against its eval set.\"",
}


def _suggest_person(d: dict[str, str]) -> str:
    return _SUGGESTIONS[_verb_family(d.get("verb", ""))]


RULES: tuple[Rule, ...] = (
    Rule("person-as-cause",
         "names a person as the cause of the failure; a blameless report asks what in the system made the action "
         "possible and likely",
         _person_as_cause, _suggest_person),
    Rule("person-blamed-action",
         "makes a person's action the failure; the same action is safe when the system checks it",
         _person_blamed_action, _suggest_person),
    Rule("possessive-blame",
         "gives the failure an owner; describe the change and the gap that let it through",
         _possessive_blame,
         lambda d: "Refer to the change, not its author: \"The change to the retrieval config (PR #123) dropped "
                   "the source filter; review did not include an eval run.\""),
    Rule("person-root-cause",
         "a person is never the root cause; the root cause is what made the error possible and undetected",
         _person_root_cause,
         lambda d: "State the root cause as a property of the system: \"The migration ran against production "
                   "because the tool defaulted to it and had no dry-run step.\""),
    Rule("human-error",
         "'human error' ends the inquiry where it should begin: what made the error easy to make and hard to see?",
         _human_error,
         lambda d: "Describe the conditions: \"The runbook step and the production command look the same, and "
                   "nothing distinguishes the production context.\""),
    Rule("counterfactual",
         "hindsight: says what someone should have done instead of what happened and why it made sense at the time",
         _counterfactual,
         lambda d: "Say what happened and why: \"The test suite ran against an empty state, so the migration path "
                   "was not exercised.\" Put the improvement in an action."),
    Rule("blame-language",
         "judges a person's care or character; describe the conditions and the missing safeguard instead",
         _blame_language,
         lambda d: "Describe the gap in the system: \"The command accepted a production target without "
                   "confirmation, and the dashboard did not show which environment was selected.\""),
)
RULE_IDS: tuple[str, ...] = tuple(r.id for r in RULES)


# -- reading the text ----------------------------------------------------------------------------

_ABBREVIATIONS = _words("""
e.g i.e etc vs approx mr mrs ms dr no nr fig inc ltd jr sr st eg ie cf al ca est min max avg sec hr hrs resp
""")
# Lines that start a new block even without a blank line before them: list items, table rows, headings,
# and timeline-style lines that start with a time or a date.
_BLOCK_START = re.compile(r"\s*(?:[-+*]\s|\d+[.)]\s|\||#{1,6}\s|\d{1,2}:\d{2}\b|\d{4}-\d{2}-\d{2}\b)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_MASKED_SPANS = re.compile(
    "|".join((
        r"<!--.*?-->", # HTML comments
        r"<%.*?%>", # templating (erb)
        r"`+[^`\n]*`+", # inline code
        r"\]\([^)\s]*\)", # link targets
        r"https?://\S+|www\.\S+", # bare URLs
        r"<[^>\n]{1,200}>", # HTML tags and autolinks
        r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”|(?<!\w)‘[^’\n]{1,300}’", # quoted speech
    )),
    re.DOTALL,
)
_MARKERS = re.compile(r"[*_~#\[\]]+|^[ \t]*(?:[-+*]|\d+[.)])[ \t]", re.MULTILINE)


def _mask(text: str) -> str:
    """``text`` with everything that is not prose written by the authors turned into spaces (newlines
    kept, table pipes kept as sentence breaks), so an offset into the mask is an offset into ``text``."""
    chars = list(text)

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "

    lines = text.split("\n")
    offsets = [0]
    for line in lines[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    if lines and lines[0].strip() == "---": # front matter
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            blank(0, offsets[end] + len(lines[end]))
    fence: str | None = None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence is not None or m or line.lstrip().startswith(">"): # code and block quotes
            blank(offsets[i], offsets[i] + len(line))
        if fence is not None:
            if m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not line[m.end():].strip():
                fence = None
        elif m:
            fence = m[1]
    for m in _MASKED_SPANS.finditer("".join(chars)):
        blank(*m.span())
    for m in _MARKERS.finditer("".join(chars)):
        blank(*m.span())
    return "".join(chars)


def _blocks(text: str) -> Iterator[tuple[int, int]]:
    """Spans of paragraphs, list items, table rows and headings: sentences never cross them."""
    start: int | None = None
    pos = 0
    for line in text.split("\n"):
        if not line.strip() or _BLOCK_START.match(line):
            if start is not None:
                yield start, max(start, pos - 1)
            start = pos if line.strip() else None
        elif start is None:
            start = pos
        pos += len(line) + 1
    if start is not None:
        yield start, len(text)


def _sentences(masked: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    i = start
    for m in re.finditer(r"[.!?]+(?=\s|$)|\|", masked[start:end]):
        stop = start + m.end()
        if m[0] != "|":
            word = re.search(r"([\w.]+)$", masked[i:start + m.start()])
            if word and (word[1].casefold().strip(".") in _ABBREVIATIONS or (len(word[1]) == 1 and word[1].isalpha())):
                continue
            following = masked[stop:end].lstrip()
            if following and following[0].islower():
                continue
        yield i, stop
        i = stop
    if i < end:
        yield i, end


def _trim(masked: str, start: int, end: int) -> tuple[int, int]:
    while start < end and masked[start] in " \n\t|":
        start += 1
    while end > start and masked[end - 1] in " \n\t|":
        end -= 1
    return start, end


@lru_cache(maxsize=64)
def _patterns(people: tuple[str, ...]) -> _Patterns:
    return _Patterns(people)


def _read(text: str, people: Iterable[str]) -> tuple[_Patterns, list[tuple[int, str, str]]]:
    """The person patterns, and every sentence as (offset, masked sentence, quote)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    masked = _mask(text)
    patterns = _patterns(tuple(sorted({" ".join(p.split()) for p in people if p and p.strip()})))
    out: list[tuple[int, str, str]] = []
    for block_start, block_end in _blocks(text):
        for s_start, s_end in _sentences(masked, block_start, block_end):
            s_start, s_end = _trim(masked, s_start, s_end)
            sentence = masked[s_start:s_end]
            if re.search(r"[A-Za-z]{2}", sentence):
                quote = " ".join(text[s_start:s_end].split())
                out.append((s_start, sentence, quote if len(quote) <= 400 else quote[:397] + "..."))
    return patterns, out


def person_mentions(text: str, *, people: Iterable[str] = ()) -> list[tuple[int, str, str]]:
    """Sentences that name a person the way the person rules see one: (line, quote, who). What the
    linter must judge without a false alarm; the benchmark reads these."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    patterns, sentences = _read(text, people)
    out = []
    for start, sentence, quote in sentences:
        m = patterns.person.search(sentence)
        if m is not None and (m["who"] != "I" or _subject_ok(sentence, m.start(), "I")):
            out.append((_line_of(line_starts, start + m.start()), quote, m["who"]))
    return out


def lint(text: str, *, people: Iterable[str] = ()) -> list[Finding]:
    """Every sentence of ``text`` that makes a person the cause: one finding per sentence (its first
    matching rule), in document order. ``people``: names and handles of the incident's participants,
    always treated as persons whatever their case ("ana", "bob.smith", "Rosie Brigham")."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    patterns, sentences = _read(text, people)
    findings: list[Finding] = []
    for start, sentence, quote in sentences:
        # One finding per sentence, from the first rule that matches (the rules go from the most
        # specific to the most general), so a reviewer accepts a sentence once.
        for rule in RULES:
            hit = next(iter(rule.find(sentence, patterns)), None)
            if hit is not None:
                offset, matched, details = hit
                findings.append(Finding(line=_line_of(line_starts, start + offset), quote=quote, rule=rule.id,
                                        why=f"\"{' '.join(matched.split())}\" {rule.why}",
                                        suggestion=rule.suggest(details)))
                break
    return findings


def _line_of(line_starts: list[int], offset: int) -> int:
    return bisect_right(line_starts, offset)
