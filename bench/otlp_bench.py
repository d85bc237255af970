"""OTLP GenAI spans to queryable events: ``hotwash serve`` against Arize Phoenix, same bytes.

The spans are built ONCE with ``opentelemetry-proto`` as protobuf ``ExportTraceServiceRequest``
batches (~500 spans each, whole traces never split across batches): one ``chat`` span per AI
call of ``hotwash.demo.sample`` (``gen_ai.*`` attributes of the OpenTelemetry GenAI semantic
conventions: provider, request/response model, usage, conversation id, ``gen_ai.input.messages``
/ ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` as JSON strings, retrieved
documents) with ``execute_tool`` child spans for the tools it called. The same bytes are POSTed
to ``/v1/traces`` of:

* **hotwash** — ``hotwash serve`` as a subprocess on a loopback port, fresh SQLite store, with
  its worker processes (one per CPU) decoding, mapping and checking the exports while it commits.
  Its export is acknowledged only once the events are committed (fsynced), so the clock stops
  when the last POST returns; the stored count is then checked through ``/api/v1/status``. The
  server's CPU time (with its workers) is reported too, and, from ``/proc`` while the POSTs ran,
  split between the server process (HTTP, commits, live detection) and its workers (decoding,
  mapping, checks). Live detection (a background pass at most every 0.2 s over the data minutes
  that closed) is part of the server's share: it grows with the time taken and the data minutes
  covered, not with the events themselves.
* **Phoenix** — ``phoenix serve`` (pinned version printed) from its own venv under
  ``bench/.work/phoenix-venv``, on loopback, fresh working dir (SQLite). Phoenix acknowledges
  before storing, so the clock stops when all spans are in its database (polled every 0.25 s
  with ``SELECT count(*) FROM spans`` on its SQLite file, read-only); the count is then
  confirmed through its REST API ``GET /v1/projects/default/spans`` (paged).

Why: "spans in, queryable out" is what a team feeling the cost of an observability backend
compares. Phoenix runs on a smaller N (it is slow; see its rate), hotwash on the same N and
on a larger N for its steady rate. Both use the same few concurrent HTTP clients.

hotwash's OTLP rate (events stored per second: a ``chat`` span becomes an event, its tool spans
become that event's ``tool_calls``) is compared with the raw JSONL limit of ``ingest_bench``
(orjson + executemany of the same kind of rows), measured again in this run. Target >= 50 %.

Every server started here is stopped in a ``finally``; traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/otlp_bench.py            # Phoenix and hotwash on 5,000 spans, hotwash on 200,000
    .venv/bin/python bench/otlp_bench.py --quick    # 1,000 and 20,000 spans
    .venv/bin/python bench/otlp_bench.py --no-phoenix
    .venv/bin/python bench/otlp_bench.py --no-phoenix --large 60000 --spans-per-batch 30   # small exports
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from hotwash.demo.sample import generate_events
from ingest_bench import (
    HOTWASH,
    WORK,
    children_cpu,
    clean_cwd,
    fresh_sqlite,
    hotwash_env,
    load,
    machine,
    measure_raw_limit,
)

PHOENIX_VENV = WORK / "phoenix-venv"
PHOENIX_PACKAGE = "arize-phoenix"
TARGET_OF_RAW = 0.5
CLIENTS = 3
SPANS_PER_BATCH = 500
PROTOBUF = {"content-type": "application/x-protobuf"}
_SYSTEM = {
    "support-bot": "You are Acme's support assistant. Answer only from the provided knowledge-base passages.",
    "ticket-classifier": "Classify the ticket as billing, technical, account, shipping or other. Reply in JSON.",
    "travel-agent": "You are a travel agent. Use the tools to look up and change reservations.",
}


# -- the spans ------------------------------------------------------------------------------
@dataclass
class Payload:
    batches: list[bytes]
    spans: list[int]  # spans in each batch
    calls: list[int]  # chat spans (= events hotwash stores) in each batch

    def prefix(self, n_spans: int) -> Payload:
        """The first batches holding at least ``n_spans`` spans."""
        total, k = 0, 0
        while k < len(self.batches) and total < n_spans:
            total += self.spans[k]
            k += 1
        return Payload(self.batches[:k], self.spans[:k], self.calls[:k])

    @property
    def n_spans(self) -> int:
        return sum(self.spans)

    @property
    def n_calls(self) -> int:
        return sum(self.calls)

    @property
    def n_bytes(self) -> int:
        return sum(map(len, self.batches))


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        kv = KeyValue(key=key)
        kv.value.array_value.values.extend(AnyValue(string_value=str(v)) for v in value)
        return kv
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _ns(ts: str) -> int:
    dt = datetime.fromisoformat(ts)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _trace(ev: dict[str, Any], rng: random.Random) -> list[Span]:
    """One AI call as spans: a ``chat`` span and an ``execute_tool`` child per tool it called."""
    trace_id, span_id = rng.randbytes(16), rng.randbytes(8)
    start = _ns(ev["ts"])
    end = start + int(ev["latency_ms"] * 1e6)
    model = ev["model"]
    tools = ev.get("tool_calls") or []
    call_ids = [f"call_{rng.getrandbits(64):016x}" for _ in tools]
    inputs = [{"role": "user", "parts": [{"type": "text", "content": ev["input"]}]}]
    out_parts: list[dict[str, Any]] = [{"type": "tool_call", "id": cid, "name": t["name"], "arguments": t["arguments"]}
                                       for cid, t in zip(call_ids, tools, strict=True)]
    out_parts.append({"type": "text", "content": ev["output"]})
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": ev["provider"],
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.usage.input_tokens": ev["tokens_in"],
        "gen_ai.usage.output_tokens": ev["tokens_out"],
        "gen_ai.conversation.id": ev["session_id"],
        "gen_ai.system_instructions": orjson.dumps([{"type": "text", "content": _SYSTEM[ev["feature"]]}]).decode(),
        "gen_ai.input.messages": orjson.dumps(inputs).decode(),
        "gen_ai.output.messages": orjson.dumps(
            [{"role": "assistant", "parts": out_parts, "finish_reason": "stop"}]).decode(),
        "enduser.id": ev["user_id"],
        "server.address": "api.openai.com" if ev["provider"] == "openai" else "api.anthropic.com",
        "hotwash.prompt_version": ev["prompt_version"],
    }
    if ev.get("context"):
        attrs["gen_ai.retrieval.documents"] = orjson.dumps(
            [{"id": d["id"], "content": d["text"], "source": d["source"]} for d in ev["context"]]).decode()
    if ev.get("escalated"):
        attrs["hotwash.escalated"] = True
    chat = Span(trace_id=trace_id, span_id=span_id, name=f"chat {model}", kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start, end_time_unix_nano=end, status=Status(code=Status.STATUS_CODE_OK),
                attributes=[_kv(k, v) for k, v in attrs.items()])
    spans = [chat]
    step = (end - start) // (len(tools) + 1)
    for i, (cid, tool) in enumerate(zip(call_ids, tools, strict=True)):
        t0 = start + step * (i + 1) - step // 2
        spans.append(Span(
            trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=span_id, name=f"execute_tool {tool['name']}",
            kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=t0, end_time_unix_nano=t0 + step // 3,
            status=Status(code=Status.STATUS_CODE_OK),
            attributes=[_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", tool["name"]),
                        _kv("gen_ai.tool.type", "function"), _kv("gen_ai.tool.call.id", cid),
                        _kv("gen_ai.tool.call.arguments", orjson.dumps(tool["arguments"]).decode()),
                        _kv("gen_ai.tool.call.result", orjson.dumps({"ok": True, "items": 1}).decode())]))
    return spans


def _request(traces: list[tuple[str, list[Span]]]) -> bytes:
    by_feature: dict[str, list[Span]] = {}
    for feature, spans in traces:
        by_feature.setdefault(feature, []).extend(spans)
    req = ExportTraceServiceRequest()
    for feature, spans in by_feature.items():
        rs = ResourceSpans()
        rs.resource.attributes.extend([_kv("service.name", feature), _kv("service.version", "1.4.2"),
                                       _kv("deployment.environment.name", "prod")])
        rs.scope_spans.append(ScopeSpans(scope=InstrumentationScope(name="opentelemetry.instrumentation.openai_v2",
                                                                    version="2.1b0"), spans=spans))
        req.resource_spans.append(rs)
    return req.SerializeToString()


def build_payload(n_spans: int, seed: int = 23, per_batch: int = SPANS_PER_BATCH) -> Payload:
    """At least ``n_spans`` spans of realistic AI calls, as protobuf batches of ~``per_batch`` spans."""
    rng = random.Random(seed)
    payload = Payload([], [], [])
    pending: list[tuple[str, list[Span]]] = []
    in_batch = total = 0
    for ev in generate_events(n_spans, seed=seed):
        spans = _trace(ev, rng)
        pending.append((ev["feature"], spans))
        in_batch += len(spans)
        total += len(spans)
        if in_batch >= per_batch or total >= n_spans:
            payload.batches.append(_request(pending))
            payload.spans.append(in_batch)
            payload.calls.append(len(pending))
            pending, in_batch = [], 0
        if total >= n_spans:
            break
    return payload


# -- servers and clients --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before it was ready: {log.read_text()[-3000:]}")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")


@contextmanager
def server(cmd: list[str], env: dict[str, str], cwd: Path, health: str, log: Path,
           timeout: float) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group until the block exits; then stop the whole group."""
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(health, proc, timeout, log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def post_all(url: str, payload: Payload, clients: int = CLIENTS) -> tuple[float, int]:
    """POST every batch with ``clients`` threads; retry a 503 (server at capacity) after a pause.

    Returns (seconds until the last response, spans the servers reported rejected)."""
    lock = threading.Lock()
    todo = iter(range(len(payload.batches)))
    rejected = [0]
    errors: list[str] = []

    def work() -> None:
        with httpx.Client(timeout=600, headers=PROTOBUF) as client:
            while True:
                with lock:
                    k = next(todo, None)
                if k is None or errors:
                    return
                for _ in range(600):
                    r = client.post(url, content=payload.batches[k])
                    if r.status_code != 503:
                        break
                    time.sleep(0.5)
                if r.status_code != 200:
                    errors.append(f"batch {k}: HTTP {r.status_code}: {r.text[:500]}")
                    return
                resp = ExportTraceServiceResponse()
                resp.ParseFromString(r.content)
                with lock:
                    rejected[0] += resp.partial_success.rejected_spans

    threads = [threading.Thread(target=work) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return elapsed, rejected[0]


# -- hotwash --------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far; 0 if it cannot be read (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def process_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """(CPU seconds of ``pid``, {child pid: its CPU seconds}) so far, from /proc (Linux)."""
    return _proc_cpu(pid), {k: _proc_cpu(k) for k in _children(pid)}


@dataclass
class Run:
    system: str
    spans: int
    calls: int
    seconds: float
    cpu: float = 0.0  # CPU seconds of the server (and its worker processes), start-up and shutdown included
    # CPU seconds while the POSTs ran (start-up and shutdown left out), from /proc: the server
    # process itself (HTTP, commits, live detection) and its worker processes (decode, map, checks)
    server_cpu: float = 0.0
    worker_cpu: float = 0.0

    @property
    def spans_rate(self) -> float:
        return self.spans / self.seconds

    @property
    def events_rate(self) -> float:
        return self.calls / self.seconds


def run_hotwash(payload: Payload, label: str) -> Run:
    url, db = fresh_sqlite(f"otlp-{label}")
    home = WORK / f"home-otlp-{label}"
    shutil.rmtree(home, ignore_errors=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        cpu0 = children_cpu()
        with server([HOTWASH, "serve", "--host", "127.0.0.1", "--port", str(port)], hotwash_env(url, home),
                    clean_cwd(), f"{base}/healthz", WORK / f"hotwash-serve-{label}.log", timeout=60) as proc:
            own0, kids0 = process_cpu(proc.pid)
            seconds, rejected = post_all(f"{base}/v1/traces", payload)
            own1, kids1 = process_cpu(proc.pid)
            if rejected:
                raise RuntimeError(f"hotwash rejected {rejected} spans: see its partial_success")
            stored = httpx.get(f"{base}/api/v1/status", timeout=60).json()["events"]
            if stored != payload.n_calls:
                raise RuntimeError(f"hotwash stored {stored} events, expected {payload.n_calls}")
        return Run("hotwash", payload.n_spans, payload.n_calls, seconds, children_cpu() - cpu0, own1 - own0,
                   sum(cpu - kids0.get(pid, 0.0) for pid, cpu in kids1.items()))
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)


# -- Phoenix --------------------------------------------------------------------------------
def phoenix_venv() -> tuple[Path, str]:
    """The Phoenix venv (created and installed once, reused); returns (python, installed version)."""
    python = PHOENIX_VENV / "bin" / "python"
    if not (PHOENIX_VENV / "bin" / "phoenix").exists():
        print(f"  installing {PHOENIX_PACKAGE} into {PHOENIX_VENV} (once; takes a few minutes)", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PHOENIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PHOENIX_PACKAGE], check=True)
    code = f"import importlib.metadata as m; print(m.version('{PHOENIX_PACKAGE}'))"
    version = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return python, version


def _phoenix_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return 0


def _phoenix_rest_count(base: str) -> int:
    n, cursor = 0, None
    with httpx.Client(timeout=120) as client:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            r = client.get(f"{base}/v1/projects/default/spans", params=params)
            r.raise_for_status()
            body = r.json()
            n += len(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return n


def run_phoenix(payload: Payload, timeout: float) -> tuple[Run, float]:
    """Returns the run (until all spans are in Phoenix's database) and the POST time alone."""
    _, version = phoenix_venv()
    workdir = WORK / "phoenix-home"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PHOENIX_", "HOTWASH_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PHOENIX_PORT=str(port), PHOENIX_GRPC_PORT=str(free_port()), PHOENIX_HOST="127.0.0.1",
               PHOENIX_WORKING_DIR=str(workdir), PHOENIX_TELEMETRY_ENABLED="false",
               PHOENIX_ALLOW_EXTERNAL_RESOURCES="false")
    db = workdir / "phoenix.db"
    try:
        with server([str(PHOENIX_VENV / "bin" / "phoenix"), "serve"], env, workdir, f"{base}/healthz",
                    WORK / "phoenix-serve.log", timeout=300):
            t0 = time.perf_counter()
            posted, _ = post_all(f"{base}/v1/traces", payload)
            deadline = t0 + timeout
            stored = 0
            while stored < payload.n_spans:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"Phoenix stored {stored} of {payload.n_spans} spans in {timeout:.0f} s")
                time.sleep(0.25)
                stored = _phoenix_count(db)
            seconds = time.perf_counter() - t0
            via_api = _phoenix_rest_count(base)
            if via_api != payload.n_spans:
                raise RuntimeError(f"Phoenix's REST API lists {via_api} spans, expected {payload.n_spans}")
        print(f"  Phoenix {version}: all {payload.n_spans:,} spans stored, REST API lists {via_api:,}", flush=True)
        return Run(f"Phoenix {version}", payload.n_spans, payload.n_calls, seconds), posted
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the benchmark --------------------------------------------------------------------------
@dataclass
class OtlpResult:
    small: Run
    large: Run
    phoenix: Run | None
    phoenix_post_s: float
    raw_limit: float

    @property
    def of_raw(self) -> float:
        return self.large.events_rate / self.raw_limit


def run(small_n: int, large_n: int, phoenix: bool, raw_n: int, phoenix_timeout: float,
        raw_limit: float | None = None, per_batch: int = SPANS_PER_BATCH) -> OtlpResult:
    t0 = time.perf_counter()
    payload = build_payload(max(small_n, large_n), per_batch=per_batch)
    small = payload.prefix(small_n)
    print(f"  built {payload.n_spans:,} spans ({payload.n_calls:,} chat + "
          f"{payload.n_spans - payload.n_calls:,} execute_tool) in {len(payload.batches)} protobuf batches, "
          f"{payload.n_bytes / 1e6:,.0f} MB, in {time.perf_counter() - t0:.0f} s", flush=True)

    ph, ph_post = None, 0.0
    if phoenix:
        ph, ph_post = run_phoenix(small, phoenix_timeout)
        print(f"  Phoenix    {small.n_spans:>9,} spans: {ph.spans_rate:>9,.0f} spans/s ({ph.seconds:.1f} s to "
              f"queryable; its POSTs returned after {ph_post:.1f} s)", flush=True)
    hw_small = run_hotwash(small, "small")
    print(f"  hotwash    {small.n_spans:>9,} spans: {hw_small.spans_rate:>9,.0f} spans/s "
          f"({hw_small.events_rate:,.0f} events/s, {hw_small.seconds:.1f} s)", flush=True)
    hw_large = run_hotwash(payload, "large")
    print(f"  hotwash    {payload.n_spans:>9,} spans: {hw_large.spans_rate:>9,.0f} spans/s "
          f"({hw_large.events_rate:,.0f} events/s, {hw_large.seconds:.1f} s; the server used {hw_large.cpu:.1f} s "
          f"CPU with its workers, {hw_large.cpu / hw_large.calls * 1e6:,.0f} µs per event)", flush=True)
    if hw_large.server_cpu or hw_large.worker_cpu:
        per = 1e6 / hw_large.calls
        print(f"             while the POSTs ran: server process {hw_large.server_cpu:.1f} s CPU "
              f"({hw_large.server_cpu * per:,.0f} µs per event), its workers {hw_large.worker_cpu:.1f} s "
              f"({hw_large.worker_cpu * per:,.0f} µs per event)", flush=True)
    if raw_limit:
        raw = raw_limit
        print(f"  raw JSONL limit measured by ingest_bench in this run: {raw:,.0f} events/s", flush=True)
    else:
        raw = measure_raw_limit(raw_n)
        print(f"  raw JSONL limit (ingest_bench's raw path, {raw_n:,} events): {raw:,.0f} events/s", flush=True)
    return OtlpResult(hw_small, hw_large, ph, ph_post, raw)


def report(res: OtlpResult) -> None:
    print(f"\nOTLP/HTTP protobuf GenAI spans -> queryable, {CLIENTS} concurrent clients:")
    if res.phoenix:
        ph, hw = res.phoenix, res.small
        print(f"  {ph.system:<16} {ph.spans:>9,} spans  {ph.spans_rate:>9,.0f} spans/s")
        print(f"  {'hotwash':<16} {hw.spans:>9,} spans  {hw.spans_rate:>9,.0f} spans/s  "
              f"= {hw.spans_rate / ph.spans_rate:,.0f}x Phoenix")
    print(f"  {'hotwash':<16} {res.large.spans:>9,} spans  {res.large.spans_rate:>9,.0f} spans/s  "
          f"({res.large.events_rate:,.0f} events/s)")
    print(f"  hotwash OTLP events/s = {res.of_raw:.0%} of the raw JSONL limit ({res.raw_limit:,.0f} events/s) "
          f"(target >= {TARGET_OF_RAW:.0%}: {'PASS' if res.of_raw >= TARGET_OF_RAW else 'FAIL'})")


def main(argv: list[str] | None = None) -> OtlpResult:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 and 20,000 spans: a smoke run")
    ap.add_argument("--small", type=int, help="spans for Phoenix and hotwash (default 5,000)")
    ap.add_argument("--large", type=int, help="spans for hotwash's steady rate (default 200,000)")
    ap.add_argument("--no-phoenix", action="store_true", help="skip Phoenix")
    ap.add_argument("--raw-n", type=int, help="events for the raw JSONL limit (default 200,000; 50,000 quick)")
    ap.add_argument("--raw-limit", type=float, help="raw JSONL limit in events/s already measured in this run")
    ap.add_argument("--spans-per-batch", type=int, default=SPANS_PER_BATCH,
                    help=f"spans per export request (default {SPANS_PER_BATCH}; the SDKs export up to 512 at a time)")
    ap.add_argument("--phoenix-timeout", type=float, default=1800, help="give up on Phoenix after this many s")
    args = ap.parse_args(argv)
    small = args.small or (1_000 if args.quick else 5_000)
    large = args.large or (20_000 if args.quick else 200_000)
    raw_n = args.raw_n or (50_000 if args.quick else 200_000)
    print(f"otlp_bench: {machine()}", flush=True)
    res = run(small, large, not args.no_phoenix, raw_n, args.phoenix_timeout, args.raw_limit, args.spans_per_batch)
    report(res)
    print(f"  load average at the end: {load()}")
    return res


if __name__ == "__main__":
    main()
