"""Per-event checks at ingest (``EventChecker.check``): cost and verdict equivalence, before vs after.

    .venv/bin/python bench/checks_bench.py                 # cost + equivalence (~10 minutes)
    .venv/bin/python bench/checks_bench.py --quality       # ... and both quality benches, before and after
    .venv/bin/python bench/checks_bench.py --no-scenarios --no-timing --no-api   # quick equivalence
    .venv/bin/python bench/checks_bench.py --snapshot      # (re)write the verdict snapshot of the original code
    .venv/bin/python bench/checks_bench.py --orig DIR      # "before" = the module copies saved in DIR, e.g.
        mkdir -p /tmp/base; for m in injection checks; do git show HEAD:src/hotwash/detect/$m.py >/tmp/base/$m.py; done

"Before" is the original detector code (``injection.py``, ``grounding.py``, ``checks.py`` of commit
``ORIG_COMMIT``, or the copies saved under ``bench/.work/checks/orig/``), loaded side by side with the current
code as ``hotwash.detect._orig_*``, with the one intended change of behaviour made since applied to it
(refusals are not judged for grounding, commit b23aa88; ``--no-refusal-rule`` compares with it as it was).
"After" is the current code.

Traffic, timed per event (CPU µs, i.e. process time: the machine is shared, other processes do not count,
the collector does; best of ``--rounds`` interleaved rounds, median alongside):
  (a) ``hotwash.demo.sample.generate_events(N)``, decoded with ``decode_record``, the demo manifest; one
      pass over the stream starting from cold caches (the text caches warm up as they would at ingest);
  (b) the same with every text-keyed cache cleared before each event, so each text is new (real inputs
      are unique). Word-level memos (the grounding stemmer and its per-token and per-word tables, the
      injection prefilter's per-word table) and the model are kept: they describe the vocabulary;
  (c) ``hotwash.demo.scenarios.demo_weeks()`` events (change records left out) and manifest, when that
      module exists.

Verdicts (findings with score, evidence, flags; counters; behaviours) are compared, after vs before, on
(a), (c), the injection dev texts as event inputs and as retrieved documents, the hallucination dev set as
output + context (+ question) events, tau-bench airline traces as events with tool results, and obfuscated
variants of the injection texts; each in warm-cache and in cleared-cache mode. The original verdicts of
the fixed corpora are also snapshotted to ``bench/.work/checks/verdicts_orig.json`` (``--snapshot``) and
checked against. The public functions (``scan_text``, ``scan_event``, ``features``, ``normalize``,
``output_leaks``, ``obeyed``, ``check_grounding``, ``feature_dict``) are compared on the same texts.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import dataclasses
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import orjson

import hotwash.detect as detect_pkg
from hotwash.demo.run import _DEMO_MANIFEST
from hotwash.demo.sample import generate_events
from hotwash.detect import checks, grounding, injection
from hotwash.manifest import Manifest, parse_manifest
from hotwash.telemetry.model import Event, decode_record

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / ".work" / "checks"
ORIG_COMMIT = "cadd1a75fdd7daf1112b99778ca5e5b12e157223"  # last commit that changed the three modules
DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", ROOT.parent / "shared" / "data"))
SNAPSHOT = WORK / "verdicts_orig.json"  # of load_original() (with the refusal rule)
MODULES = ("injection", "grounding", "checks")
# caches keyed by a token or holding the model: kept in "cleared-cache" mode (they are not per text)
KEEP_CACHES = {"_model", "stem", "_load_models", "_models"}


# --------------------------------------------------------------------------- the original modules


def _orig_source(name: str, orig_dir: Path | None = None) -> str | None:
    """The original source of module ``name``; with ``orig_dir``, the copy saved there, or None when that
    directory holds none (the current module then stands for the original)."""
    if orig_dir is not None:
        path = orig_dir / f"{name}.py"
        return path.read_text("utf-8") if path.exists() else None
    saved = WORK / "orig" / f"{name}.py"
    if saved.exists():
        return saved.read_text("utf-8")
    return subprocess.run(["git", "show", f"{ORIG_COMMIT}:src/hotwash/detect/{name}.py"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout


def load_original(refusal_rule: bool = True, orig_dir: Path | None = None) -> dict[str, types.ModuleType]:
    """The original injection/grounding/checks modules, importable next to the current ones.

    ``refusal_rule``: give the original checker the one intended change of behaviour made since
    (commit b23aa88, "Refusals are counted, not judged for grounding"), so that the comparison is of
    the speed work alone.

    ``orig_dir``: take the originals from the copies saved in that directory instead (``--orig DIR``: e.g.
    the modules as they were before a round of speed work); a module it has no copy of is the current one."""
    mods: dict[str, types.ModuleType] = {}
    for name in MODULES:
        source = _orig_source(name, orig_dir)
        if source is None:  # only with orig_dir
            mods[name] = sys.modules[f"hotwash.detect.{name}"]
            continue
        modname = f"hotwash.detect._orig_{name}"
        mod = types.ModuleType(modname)
        mod.__file__ = str(Path(detect_pkg.__file__).with_name(f"{name}.py"))  # finds data/ like the real one
        mod.__package__ = "hotwash.detect"
        sys.modules[modname] = mod
        exec(compile(source, f"<original {name}.py>", "exec"), mod.__dict__)  # noqa: S102
        if name == "checks":
            mod.injection = mods["injection"]
            mod.grounding = mods["grounding"]
            if refusal_rule:
                _skip_refusals(mod)
        mods[name] = mod
    return mods


def _skip_refusals(mod: types.ModuleType) -> None:
    judge = mod.EventChecker._grounding

    def _grounding(self: Any, event: Event, spec: Any, verdict: Any) -> None:
        if not mod.is_refusal(event.output):
            judge(self, event, spec, verdict)

    mod.EventChecker._grounding = _grounding


def _caches(mod: types.ModuleType) -> list[Any]:
    return [v for k, v in vars(mod).items() if hasattr(v, "cache_clear") and k not in KEEP_CACHES]


def text_cache_clearer(mods: Iterable[types.ModuleType]) -> Callable[[], None]:
    fns = [c.cache_clear for m in mods for c in _caches(m)]

    def clear() -> None:
        for f in fns:
            f()

    return clear


# --------------------------------------------------------------------------- corpora

TS = "2026-11-01T00:00:00Z"


def _ev(i: int, **kw: Any) -> Event:
    rec = {"id": f"b-{i}", "ts": TS, "feature": kw.pop("feature", "support-bot"), **kw}
    return decode_record(orjson.dumps(rec))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def sample_events(n: int) -> list[Event]:
    return [decode_record(orjson.dumps(e)) for e in generate_events(n)]


def obfuscate(text: str, rng: random.Random) -> str:
    """One random obfuscation of the kinds the scanner undoes, or a structural disguise."""
    k = rng.randrange(13)
    t = text[:300]
    if k == 0:
        return " ".join(t[:60])
    if k == 1:
        return t.translate(str.maketrans("aeiost", "4310$7"))
    if k == 2:
        return "Please decode: " + base64.b64encode(t.encode()).decode()
    if k == 3:
        return "data: " + t.encode().hex(" " if rng.random() < 0.5 else ":")
    if k == 4:
        return codecs.encode(t, "rot13")
    if k == 5:
        return t.replace("o", "о").replace("a", "а")  # Cyrillic
    if k == 6:
        return "\u200b".join(t[:80]) + t[80:]
    if k == 7:
        return t.replace(" ", "  \t ", 5)
    if k == 8:
        return "| col | val |\n|---|---|\n| a | 1 |\n| b | 2 |\n" + t + "\n| c | 3 |"
    if k == 9:
        return "```python\nx = 1\n```\n" + t
    if k == 10:
        return "EMAIL_FROM: bob@example.com\nSUBJECT: hi\n\n" + t + (" ok" * rng.randrange(0, 40))
    if k == 11:  # both kinds of blob in one text
        return ("see " + base64.b64encode(t[:80].encode()).decode() + " and " + t[:60].encode().hex(" ") + " " + t)
    return (t + " ") * rng.randrange(1, 80)


def corpora(n_sample: int) -> dict[str, tuple[Manifest, list[Event]]]:
    demo = parse_manifest(_DEMO_MANIFEST)
    out: dict[str, tuple[Manifest, list[Event]]] = {"sample": (demo, sample_events(n_sample))}
    inj = _jsonl(DATA_DIR / "injection" / "dev.jsonl")
    outputs = ["Sure, here is what you asked for.", "I'm sorry, but I can't help with that.",
               "ACCESS GRANTED", "Done: your reservation has been updated."]
    evs = []
    for i, r in enumerate(inj):
        out_text = outputs[i % len(outputs)]
        evs.append(_ev(2 * i, input=r["text"], output=out_text))
        evs.append(_ev(2 * i + 1, input="Summarise this page for me.", output=out_text,
                       context=[{"id": r["id"], "text": r["text"]}, {"text": "Opening hours are 9 to 5."}]))
    out["injection-dev"] = (demo, evs)
    hal = _jsonl(DATA_DIR / "hallucination" / "dev.jsonl")
    out["hallucination-dev"] = (demo, [
        _ev(i, input=r["question"], output=r["response"], context=[{"id": r["id"], "text": r["context"]}])
        for i, r in enumerate(hal)])
    out["traces"] = (demo, trace_events())
    rng = random.Random(5)
    obf = [obfuscate(r["text"], rng) for r in inj]
    out["obfuscated"] = (demo, [
        _ev(i, feature=("support-bot", "travel-agent")[i % 2], input=t, output="ok",
            context=[{"id": f"d{i}", "text": obf[(i * 7) % len(obf)]}],
            tool_calls=[{"name": "search_kb", "result": {"hits": [obf[(i * 3) % len(obf)]]}}])
        for i, t in enumerate(obf)])
    return out


def trace_events() -> list[Event]:
    """Events with tool results (JSON objects and strings) from the tau-bench airline traces."""
    evs = []
    for r in _jsonl(DATA_DIR / "traces" / "tau_airline_dev.jsonl"):
        last_user = ""
        for j, m in enumerate(r["messages"]):
            if m["role"] == "user":
                last_user = m["content"] or ""
            if m["role"] != "tool":
                continue
            try:
                res: Any = json.loads(m["content"])
            except (TypeError, ValueError):
                res = m["content"]
            nxt = next((x.get("content") for x in r["messages"][j + 1:] if x["role"] == "assistant"), None)
            evs.append(_ev(len(evs), feature="travel-agent", input=last_user,
                           output=nxt if nxt and nxt != "None" else None, untrusted=["input", "tool_calls"],
                           tool_calls=[{"name": m.get("name") or "tool", "result": res},
                                       {"name": "raw", "result": m["content"]}]))
    return evs


def scenario_corpus() -> tuple[Manifest, list[Event]] | None:
    try:
        from hotwash.demo import scenarios
    except Exception as exc:  # written concurrently by someone else: report and go on
        print(f"(c) scenarios unavailable: {exc!r}")
        return None
    sc = scenarios.demo_weeks()
    records = (decode_record(orjson.dumps(e)) for e in sc.events())
    return parse_manifest(sc.manifest_yaml()), [r for r in records if isinstance(r, Event)]  # no change events


# --------------------------------------------------------------------------- verdicts


def as_plain(v: Any) -> list:
    return [[[f.category, f.check, f.score, f.flagged, list(f.evidence)] for f in v.findings],
            sorted(v.counters.items()), [list(b) for b in v.behaviours]]


def verdicts(checker_cls: type, manifest: Manifest, events: list[Event], clear: Callable[[], None] | None,
             ) -> list[list]:
    ck = checker_cls(manifest)
    out = []
    for e in events:
        if clear is not None:
            clear()
        out.append(as_plain(ck.check(e)))
    return out


def compare(name: str, before: list[list], after: list[list], events: list[Event], show: int = 3) -> int:
    bad = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if json.dumps(a) != json.dumps(b)]
    for i in bad[:show]:
        print(f"    MISMATCH {name} event {events[i].id}:\n      before {json.dumps(before[i])[:600]}\n"
              f"      after  {json.dumps(after[i])[:600]}")
    return len(bad)


def digest(events: list[Event]) -> str:
    h = hashlib.sha256()
    for e in events:
        h.update(msgspec.json.encode(e))
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- timing


def time_stream(checker: Any, events: list[Event], clear: Callable[[], None], per_event_clear: bool) -> float:
    """CPU µs per event for one pass, from cold text caches (process time: other processes sharing the
    machine do not count, the collector and cache misses do)."""
    clear()
    check = checker.check
    gc.collect()
    pc = time.process_time
    if not per_event_clear:
        t0 = pc()
        for e in events:
            check(e)
        return (pc() - t0) / len(events) * 1e6
    total = 0.0
    for e in events:
        clear()
        t0 = pc()
        check(e)
        total += pc() - t0
    return total / len(events) * 1e6


def timing(label: str, manifest: Manifest, events: list[Event], orig: dict[str, types.ModuleType],
           rounds: int, modes: tuple[str, ...] = ("warm", "cleared")) -> dict[str, Any]:
    new_ck = checks.EventChecker(manifest)
    old_ck = orig["checks"].EventChecker(manifest)
    clear_new = text_cache_clearer([injection, grounding, checks])
    clear_old = text_cache_clearer(orig.values())
    res: dict[str, Any] = {}
    for mode, per_event in (("warm", False), ("cleared", True)):
        if mode not in modes:
            continue
        runs: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(rounds):
            runs["before"].append(time_stream(old_ck, events, clear_old, per_event))
            runs["after"].append(time_stream(new_ck, events, clear_new, per_event))
        res[mode] = {k: (min(v), statistics.median(v)) for k, v in runs.items()}
        b, a = res[mode]["before"], res[mode]["after"]
        print(f"  {label:9s} {mode:8s} before {b[0]:7.2f} µs/event ({b[1]:7.2f})   "
              f"after {a[0]:6.2f} µs/event ({a[1]:6.2f})   x{b[0] / a[0]:.1f}")
    return res


# --------------------------------------------------------------------------- public API equivalence


def api_equivalence(orig: dict[str, types.ModuleType], corp: dict[str, tuple[Manifest, list[Event]]]) -> int:
    oi, og = orig["injection"], orig["grounding"]
    texts: list[str] = []
    for _, evs in corp.values():
        for e in evs:
            texts += [t for t in (e.input, e.output) if t]
            texts += [d.text for d in e.context or ()]
    texts = list(dict.fromkeys(texts))
    n_bad = 0

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x):
            return type(x).__name__, dataclasses.astuple(x)
        return [plain(y) for y in x] if isinstance(x, list) else x

    def check(what: str, a: Any, b: Any, arg: Any) -> None:
        nonlocal n_bad
        a, b = plain(a), plain(b)
        if a != b:
            n_bad += 1
            if n_bad <= 5:
                print(f"    API MISMATCH {what} on {str(arg)[:120]!r}:\n      before {str(a)[:300]}\n"
                      f"      after  {str(b)[:300]}")

    clear_old = text_cache_clearer(orig.values())
    clear_new = text_cache_clearer([injection, grounding])
    for ch in ("input", "context", "tool"):
        for t in texts:
            check(f"scan_text[{ch}]", oi.scan_text(t, channel=ch), injection.scan_text(t, channel=ch), t)
    for t in texts[:6000]:
        check("features", oi.features(t, channel="context"), injection.features(t, channel="context"), t)
        check("normalize", oi.normalize(t), injection.normalize(t), t)
    for _, evs in corp.values():
        for e in evs[:20000]:
            d = checks._as_dict(e)
            clear_old()
            clear_new()
            check("scan_event", oi.scan_event(d), injection.scan_event(d), e.id)
            if e.context and e.output:
                ctx = [x.text for x in e.context]
                check("check_grounding", og.check_grounding(e.output, ctx, question=e.input),
                      grounding.check_grounding(e.output, ctx, question=e.input), e.id)
                check("feature_dict", og.feature_dict(e.output, ctx, e.input),
                      grounding.feature_dict(e.output, ctx, e.input), e.id)
            if e.output and e.input:
                check("obeyed", oi.obeyed(e.output, e.input), injection.obeyed(e.output, e.input), e.id)
    for r in _jsonl(DATA_DIR / "injection" / "prompt_extraction_detection_dev.jsonl"):
        for secrets in ([r["access_code"]], [r["access_code"], "the secret phrase is open sesame"]):
            check("output_leaks", oi.output_leaks(r["llm_output"], secrets),
                  injection.output_leaks(r["llm_output"], secrets), r["llm_output"])
    print(f"  public API on {len(texts):,} distinct texts: {n_bad} mismatches")
    return n_bad


# --------------------------------------------------------------------------- quality benches

_RUN_ORIGINAL = """
import runpy, sys
sys.path.insert(0, {bench!r})
import checks_bench as B
mods = B.load_original()
import hotwash.detect as pkg
for name in ("injection", "grounding"):
    sys.modules["hotwash.detect." + name] = mods[name]
    setattr(pkg, name, mods[name])
sys.argv = [{script!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def quality() -> None:
    py = sys.executable
    for script, keys in (("injection_quality.py", ("ALL ", "0.50:", "output_leaks", "OUT-OF-FOLD", "SHIPPED")),
                         ("grounding_quality.py", ("BEGIN", "FaithBench", "checker, ", "bal_acc over", "closed_book"))):
        path = str(Path(__file__).with_name(script))
        before = subprocess.run([py, "-c", _RUN_ORIGINAL.format(bench=str(Path(__file__).parent), script=path)],
                                capture_output=True, text=True, check=True).stdout.splitlines()
        after = subprocess.run([py, path], capture_output=True, text=True, check=True).stdout.splitlines()
        print(f"\n{script}: headline lines, before | after")
        for b, a in zip(before, after, strict=False):
            if any(k in b for k in keys) or any(k in a for k in keys):
                print(f"  before {b}\n  after  {a}" if a != b else f"  same   {a}")
        skip = ("µs", "cost", "cv ")
        diff = [(b, a) for b, a in zip(before, after, strict=False) if a != b and not any(s in b for s in skip)]
        print(f"  {len(diff)} differing lines (timings excluded)" + ("" if not diff else ":"))
        for b, a in diff:
            print(f"   - {b}\n   + {a}")


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--snapshot", action="store_true", help="write the original verdicts and exit")
    ap.add_argument("--quality", action="store_true", help="also run both quality benches before/after")
    ap.add_argument("--no-scenarios", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--no-api", action="store_true", help="skip the public-function comparison")
    ap.add_argument("--no-equivalence", action="store_true", help="timing only")
    ap.add_argument("--modes", default="warm,cleared", help="timing modes: warm, cleared or both")
    ap.add_argument("--orig", metavar="DIR", help="compare with the injection/grounding/checks copies saved in DIR "
                    "(a module without a copy there is compared with itself) instead of ORIG_COMMIT")
    ap.add_argument("--no-refusal-rule", action="store_true",
                    help="compare with the original checker as it was (it also judged refusals for grounding)")
    args = ap.parse_args()

    orig_dir = Path(args.orig) if args.orig else None
    orig = load_original(refusal_rule=not args.no_refusal_rule and orig_dir is None, orig_dir=orig_dir)
    orig["injection"]._model()
    injection._model()
    corp = corpora(args.events)
    clear_old = text_cache_clearer(orig.values())
    clear_new = text_cache_clearer([injection, grounding, checks])

    if args.snapshot:
        WORK.mkdir(exist_ok=True)
        snap = {name: {"digest": digest(evs), "warm": verdicts(orig["checks"].EventChecker, m, evs, None),
                       "cleared": verdicts(orig["checks"].EventChecker, m, evs, clear_old)}
                for name, (m, evs) in corp.items()}
        SNAPSHOT.write_text(json.dumps(snap), "utf-8")
        print(f"wrote {SNAPSHOT} ({', '.join(f'{k}: {len(v[1]):,} events' for k, v in corp.items())})")
        return

    sc = None if args.no_scenarios else scenario_corpus()
    print(f"hotwash per-event checks, before ({orig_dir or ORIG_COMMIT[:7]}) vs after (working tree); python "
          f"{sys.version.split()[0]}")
    if not args.no_timing:
        print("\nCOST (CPU µs per EventChecker.check; best of the rounds, median in brackets)")
        modes = tuple(args.modes.split(","))
        timing("(a)+(b)", *corp["sample"], orig, args.rounds, modes)
        if sc is not None:
            timing("(c)", *sc, orig, max(1, args.rounds - 1), modes)

    if args.no_equivalence:
        return
    print("\nVERDICT EQUIVALENCE (after vs before; warm caches and caches cleared before every event)")
    snap = (json.loads(SNAPSHOT.read_text("utf-8")) if SNAPSHOT.exists() and not args.no_refusal_rule
            and orig_dir is None else {})
    total = 0
    todo = dict(corp)
    if sc is not None:
        todo["scenarios"] = sc
    for name, (m, evs) in todo.items():
        s = snap.get(name)
        if s is not None and s["digest"] != digest(evs):
            s = None
        line = []
        for mode, clear_o, clear_n in (("warm", None, None), ("cleared", clear_old, clear_new)):
            if clear_o is None:
                clear_old()
                clear_new()
            before = verdicts(orig["checks"].EventChecker, m, evs, clear_o)
            after = verdicts(checks.EventChecker, m, evs, clear_n)
            n = compare(f"{name}/{mode}", before, after, evs)
            if s is not None:
                n_snap = compare(f"{name}/{mode} vs snapshot", s[mode], after, evs)
                line.append(f"{mode}: {n} (vs snapshot {n_snap})")
                n += n_snap
            else:
                line.append(f"{mode}: {n}")
            total += n
            flagged = sum(any(f[3] for f in v[0]) for v in after)
            found = sum(bool(v[0]) for v in after)
        print(f"  {name:18s} {len(evs):7,d} events, {found:6,d} with findings, {flagged:6,d} flagged; "
              f"mismatches {', '.join(line)}")
    if not args.no_api:
        total += api_equivalence(orig, corp)
    print(f"  TOTAL mismatches: {total}")
    if args.quality:
        quality()


if __name__ == "__main__":
    main()
