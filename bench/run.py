"""Run every hotwash benchmark and print one summary: target against measured, PASS or FAIL.

1. ``ingest_bench`` — JSONL ingest, hotwash's CLI against the raw limit (orjson + executemany
   into the same SQLite schema), plus PostgreSQL.
2. ``otlp_bench`` — OTLP GenAI spans to queryable events, hotwash against Arize Phoenix, and
   hotwash's OTLP rate against the raw limit measured in step 1.
3. ``rss_bench`` — peak RSS of ``hotwash ingest -`` on 5M events against 1M, from a pipe.

Nothing is written to RESULTS.md automatically: copy the summary there with the command line,
the date and the machine.

    .venv/bin/python bench/run.py            # the full run, ~30 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # small N: a smoke run of a few minutes
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest_bench
import otlp_bench
import rss_bench

Row = tuple[str, str, str, str]  # (what, target, measured, verdict)


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N everywhere: a smoke run")
    ap.add_argument("--no-phoenix", action="store_true", help="skip the Phoenix comparison")
    ap.add_argument("--only", choices=["ingest", "otlp", "rss"], action="append",
                    help="run only these benchmarks (repeatable)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    only = set(args.only or ["ingest", "otlp", "rss"])
    quick = ["--quick"] if args.quick else []
    started = time.perf_counter()
    print(f"hotwash benchmarks {'(quick) ' if args.quick else ''}{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {ingest_bench.machine()}\n", flush=True)
    rows: list[Row] = []

    raw_limit = None
    if "ingest" in only:
        print("== 1. JSONL ingest ==", flush=True)
        ing = ingest_bench.main(quick)
        raw_limit = ing.raw_rate
        rows.append((f"JSONL ingest, {ing.n:,} events: hotwash CLI / raw limit", ">= 50 %",
                     f"{ing.cli_rate:,.0f} / {ing.raw_rate:,.0f} ev/s = {ing.ratio:.0%}", _verdict(ing.ratio >= 0.5)))
        rows.append(("  ... projected from CPU times on an idle machine", "-", f"{ing.projected_ratio:.0%}", "-"))
        rows.append(("  in-process ingest_streams (checks in workers / storage only)", "-",
                     f"{ing.inproc_rate:,.0f} / {ing.nochecks_rate:,.0f} ev/s", "-"))
        if ing.pg_n:
            rows.append((f"JSONL ingest into PostgreSQL, {ing.pg_n:,} events", "-", f"{ing.pg_rate:,.0f} ev/s", "-"))
        print()

    if "otlp" in only:
        print("== 2. OTLP spans -> queryable ==", flush=True)
        otlp_args = quick + (["--no-phoenix"] if args.no_phoenix else [])
        if raw_limit:
            otlp_args += ["--raw-limit", str(raw_limit)]
        ot = otlp_bench.main(otlp_args)
        if ot.phoenix:
            rows.append((f"OTLP, {ot.small.spans:,} spans: hotwash vs {ot.phoenix.system}", "-",
                         f"{ot.small.spans_rate:,.0f} vs {ot.phoenix.spans_rate:,.0f} spans/s "
                         f"= {ot.small.spans_rate / ot.phoenix.spans_rate:,.0f}x", "-"))
        rows.append((f"OTLP, {ot.large.spans:,} spans: hotwash events/s / raw limit", ">= 50 %",
                     f"{ot.large.events_rate:,.0f} / {ot.raw_limit:,.0f} ev/s = {ot.of_raw:.0%} "
                     f"({ot.large.spans_rate:,.0f} spans/s)", _verdict(ot.of_raw >= otlp_bench.TARGET_OF_RAW)))
        print()

    if "rss" in only:
        print("== 3. peak RSS of ingest from a pipe ==", flush=True)
        small, large = rss_bench.main(quick)
        ratio = large.peak_mb / small.peak_mb
        rows.append((f"peak RSS, {large.n:,} vs {small.n:,} events", f"< {rss_bench.TARGET_MB} MB, "
                     f"ratio <= {rss_bench.FLAT_RATIO}", f"{large.peak_mb:.0f} vs {small.peak_mb:.0f} MB, "
                     f"ratio {ratio:.2f}",
                     _verdict(large.peak_mb < rss_bench.TARGET_MB and ratio <= rss_bench.FLAT_RATIO)))
        print()

    widths = [max(len(r[i]) for r in [("benchmark", "target", "measured", "result"), *rows]) for i in range(4)]
    print(f"== summary ({(time.perf_counter() - started) / 60:.1f} min, load average now "
          f"{ingest_bench.load()}) ==")
    for r in [("benchmark", "target", "measured", "result"), *rows]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    failed = any(r[3] == "FAIL" for r in rows)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
