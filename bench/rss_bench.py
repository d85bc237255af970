"""Peak memory of ``hotwash ingest -``: 5,000,000 events against 1,000,000, in the same run.

Each ingest reads JSONL from a pipe, written by a generator subprocess (``hotwash.demo.sample``,
realistic events with text), so no multi-GB file is needed. The peak resident set size of the
ingest process itself is ``VmHWM`` of ``/proc/<pid>/status`` (its high-water mark since it
exec'd), read every 0.2 s while it runs together with ``VmRSS`` for the curve over time.
(``ru_maxrss`` from ``wait4`` is not used: Linux carries it across ``exec`` from the forked
copy of this benchmark process, so it would report the parent's size.)

Why: ingest streams (one line, one batch in memory), so its peak must not grow with the input.
Target: peak < 500 MB for 5M events, and flat: peak(5M) / peak(1M) <= 1.2.

    .venv/bin/python bench/rss_bench.py            # 5,000,000 vs 1,000,000 events
    .venv/bin/python bench/rss_bench.py --quick    # 500,000 vs 100,000 events
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ingest_bench import HOTWASH, WORK, fresh_sqlite, hotwash_env, machine, remove_sqlite

TARGET_MB = 500
FLAT_RATIO = 1.2

# The generator: writes n events as JSONL to stdout, in chunks.
GENERATOR = """
import sys, orjson
from hotwash.demo.sample import generate_events
out = sys.stdout.buffer
buf = []
for ev in generate_events(int(sys.argv[1]), seed=11):
    buf.append(orjson.dumps(ev))
    if len(buf) == 2000:
        buf.append(b"")
        out.write(b"\\n".join(buf))
        buf = []
if buf:
    buf.append(b"")
    out.write(b"\\n".join(buf))
out.flush()
"""


@dataclass
class RssResult:
    n: int
    peak_mb: float
    seconds: float
    accepted: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, RSS MB)

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _status_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MB, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    if len(values) < 2:  # a zombie has no memory lines
        return None
    return values["VmRSS"], values["VmHWM"]


def ingest_from_pipe(n: int) -> RssResult:
    """Run generator | hotwash ingest - --json into a fresh SQLite store; measure the ingest process."""
    url, db = fresh_sqlite(f"rss-{n}")
    home = WORK / f"home-rss-{n}"
    shutil.rmtree(home, ignore_errors=True)
    gen = subprocess.Popen([sys.executable, "-c", GENERATOR, str(n)], stdout=subprocess.PIPE)
    ingest = None
    try:
        t0 = time.perf_counter()
        ingest = subprocess.Popen([HOTWASH, "ingest", "-", "--json"], stdin=gen.stdout, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=hotwash_env(url, home), cwd=WORK)
        assert gen.stdout is not None
        gen.stdout.close()  # the ingest process holds the read end now
        samples: list[tuple[float, float]] = []
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            last = 0.0
            while not done.wait(0.2):
                mb = _status_mb(ingest.pid)
                if mb is None:
                    continue
                peak[0] = max(peak[0], mb[1])
                now = time.perf_counter() - t0
                if now - last >= 1.0:
                    samples.append((now, mb[0]))
                    last = now

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # Read the (small) outputs in threads so the child never blocks on a full pipe.
        outs: dict[str, bytes] = {}
        readers = [threading.Thread(target=lambda k=k, s=s: outs.__setitem__(k, s.read()))
                   for k, s in (("out", ingest.stdout), ("err", ingest.stderr))]
        for r in readers:
            r.start()
        _, status, _ = os.wait4(ingest.pid, 0)
        elapsed = time.perf_counter() - t0
        ingest.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        for r in readers:
            r.join()
        if gen.wait(timeout=60) != 0 or ingest.returncode != 0:
            raise RuntimeError(f"ingest failed ({ingest.returncode}): {outs.get('err', b'').decode()[-2000:]}")
        accepted = orjson.loads(outs["out"].strip().splitlines()[-1])["accepted"]
        if accepted != n:
            raise RuntimeError(f"hotwash accepted {accepted} of {n}")
        return RssResult(n, peak[0], elapsed, accepted, samples)
    finally:
        for p in (ingest, gen):
            if p is not None and p.returncode is None and p.poll() is None:
                p.kill()
                p.wait()
        remove_sqlite(db)
        shutil.rmtree(home, ignore_errors=True)


def _curve(res: RssResult, points: int = 6) -> str:
    if not res.samples:
        return "-"
    step = max(len(res.samples) // points, 1)
    picked = [*res.samples[::step][:points], res.samples[-1]]
    return ", ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in picked)


def run(small: int, large: int) -> tuple[RssResult, RssResult]:
    results = []
    for n in (small, large):
        res = ingest_from_pipe(n)
        print(f"  {n:>10,} events: peak RSS {res.peak_mb:6.1f} MB, {res.rate:,.0f} events/s "
              f"({res.seconds:.0f} s); RSS MB over time: {_curve(res)}", flush=True)
        results.append(res)
    return results[0], results[1]


def report(small: RssResult, large: RssResult) -> None:
    ratio = large.peak_mb / small.peak_mb
    ok = large.peak_mb < TARGET_MB and ratio <= FLAT_RATIO
    print("\nPeak RSS of `hotwash ingest -` from a pipe:")
    print(f"  {small.n:>10,} events  {small.peak_mb:6.1f} MB")
    print(f"  {large.n:>10,} events  {large.peak_mb:6.1f} MB   ratio {ratio:.2f} "
          f"(target < {TARGET_MB} MB and ratio <= {FLAT_RATIO}: {'PASS' if ok else 'FAIL'})")


def main(argv: list[str] | None = None) -> tuple[RssResult, RssResult]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 vs 500,000 events: a smoke run")
    ap.add_argument("--small", type=int, help="events of the comparison run (default 1,000,000)")
    ap.add_argument("--large", type=int, help="events of the large run (default 5,000,000)")
    args = ap.parse_args(argv)
    small = args.small or (100_000 if args.quick else 1_000_000)
    large = args.large or (500_000 if args.quick else 5_000_000)
    print(f"rss_bench: {machine()}", flush=True)
    res = run(small, large)
    report(*res)
    return res


if __name__ == "__main__":
    main()
