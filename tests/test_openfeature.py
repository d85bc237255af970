"""Applications reading flags: a real hotwash server, the built-in FlagClient and a real OpenFeature client."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.containment.client import FlagClient
from hotwash.containment.openfeature import HotwashProvider
from hotwash.settings import Settings, get_settings
from hotwash.store import Store
from hotwash.web import auth

MANIFEST = """\
version: 1
features:
  support-bot:
    containment: {rollback_to: {prompt_version: v11, model: gpt-4o-mini}}
  summarizer:
    containment: {default: human}
"""
CACHE = 5.0  # seconds; the fake clock below steps over it, so tests do not wait for it
VIEWER, RESPONDER = "tok-viewer", "tok-responder"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:  # the live_server fixture serves with these
    path = tmp_path / "hotwash.yaml"
    path.write_text(MANIFEST)
    return get_settings(home=tmp_path / ".hotwash", database_url=db_url, manifest=path)


@pytest.fixture
def with_tokens(store: Store) -> None:
    now = datetime.now(UTC)
    store.add_token(name="app", token_hash=auth.token_hash(VIEWER), role="viewer", now=now)
    store.add_token(name="oncall", token_hash=auth.token_hash(RESPONDER), role="responder", now=now)


@pytest.fixture(autouse=True)
def _no_providers_left() -> Iterator[None]:
    yield
    api.clear_providers()  # shuts the providers down (and their clients with them)


def openfeature_client(provider: HotwashProvider) -> OpenFeatureClient:
    domain = f"hotwash-test-{uuid.uuid4().hex[:8]}"  # a domain of its own: no global provider to clobber
    api.set_provider(provider, domain)
    return api.get_client(domain)


def put_flag(url: str, feature: str, body: dict) -> dict:
    r = httpx.put(f"{url}/api/v1/flags/{feature}", json=body, headers={"authorization": f"Bearer {RESPONDER}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_openfeature_client_follows_flips_within_the_cache_interval_and_survives_an_outage(
        live_server, with_tokens, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    flags = FlagClient(live_server.url, VIEWER, cache_seconds=CACHE, defaults=settings.manifest, clock=clock)
    client = openfeature_client(HotwashProvider(client=flags))

    first = client.get_string_details("support-bot", "disabled")
    assert (first.value, first.reason, first.variant) == ("enabled", Reason.STATIC, "enabled")
    assert first.flag_metadata["source"] == "default" and first.error_code is None
    assert client.get_boolean_value("support-bot", False) is True

    put_flag(live_server.url, "support-bot", {"mode": "human", "reason": "wrong refunds"})
    clock.advance(CACHE * 0.9)
    cached = client.get_string_details("support-bot", "disabled")
    assert (cached.value, cached.reason) == ("enabled", Reason.CACHED)  # not before the cache expires
    clock.advance(CACHE * 0.2)
    seen = client.get_string_details("support-bot", "disabled")
    assert (seen.value, seen.reason, seen.variant) == ("human", Reason.STATIC, "human")
    assert seen.flag_metadata["reason"] == "wrong refunds" and seen.flag_metadata["version"] == 1
    assert client.get_boolean_value("support-bot", True) is False

    # Unchanged on the server: revalidated with If-None-Match, answered 304.
    clock.advance(CACHE)
    assert client.get_string_value("support-bot", "disabled") == "human"
    assert flags.stats["not_modified"] == 1

    # A change through the CLI reaches the application the same way.
    monkeypatch.setenv("HOTWASH_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("HOTWASH_MANIFEST", str(settings.manifest))
    result = CliRunner().invoke(cli_app, ["flag", "set", "support-bot", "rollback", "--actor", "ana"])
    assert result.exit_code == 0, result.output
    clock.advance(CACHE)
    rolled = client.get_string_details("support-bot", "enabled")
    assert rolled.value == "rollback"
    assert orjson.loads(rolled.flag_metadata["params"]) == {"prompt_version": "v11", "model": "gpt-4o-mini"}
    whole = client.get_object_value("support-bot", {})
    assert (whole["mode"], whole["params"]["prompt_version"], whole["updated_by"]) == ("rollback", "v11", "ana")

    # hotwash goes away: the application keeps the last value it was sent.
    live_server.__exit__(None, None, None)
    caplog.set_level(logging.WARNING, logger="hotwash.containment")
    for _ in range(5):
        clock.advance(CACHE * 1.5)
        stale = client.get_string_details("support-bot", "enabled")
        assert (stale.value, stale.reason, stale.error_code) == ("rollback", Reason.STALE, None)
        assert "cannot reach hotwash" in stale.flag_metadata["error"]
        assert client.get_object_value("support-bot", {})["params"]["model"] == "gpt-4o-mini"
    warnings = [r for r in caplog.records if r.name == "hotwash.containment" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot reach hotwash" in warnings[0].getMessage()

    # A fresh application with hotwash down: the manifest's defaults, then the caller's default.
    fresh = openfeature_client(HotwashProvider(live_server.url, VIEWER, defaults=settings.manifest, timeout=0.5))
    start = time.monotonic()
    summarizer = fresh.get_string_details("summarizer", "enabled")
    assert (summarizer.value, summarizer.reason, summarizer.error_code) == ("human", Reason.DEFAULT, None)
    assert fresh.get_string_value("support-bot", "disabled") == "enabled"  # declared: default enabled
    unknown = fresh.get_string_details("never-declared", "disabled")
    assert (unknown.value, unknown.reason) == ("disabled", Reason.DEFAULT)
    assert fresh.get_boolean_value("summarizer", True) is False
    assert time.monotonic() - start < 5
    bare = FlagClient(live_server.url, cache_seconds=CACHE)
    assert bare.mode("never-declared") == "enabled" and bare.get("never-declared")["served"] == "fallback"
    flags.close()
    bare.close()


def test_flip_is_seen_in_real_time_within_the_cache_interval(live_server, with_tokens, settings: Settings) -> None:
    cache = 0.4
    flags = FlagClient(live_server.url, VIEWER, cache_seconds=cache, defaults=settings.manifest)
    client = openfeature_client(HotwashProvider(client=flags))
    assert client.get_string_value("summarizer", "enabled") == "human"
    put_flag(live_server.url, "summarizer", {"mode": "enabled"})
    flipped = time.monotonic()
    while client.get_string_value("summarizer", "human") != "enabled":
        assert time.monotonic() - flipped < cache + 2.0, "the flip was not seen within the cache interval"
        time.sleep(0.02)
    # Polled ~every 20 ms, yet asked hotwash about once per cache interval.
    assert flags.stats["requests"] <= 2 + (time.monotonic() - flipped) / cache
    flags.close()


def test_a_client_without_a_valid_token_serves_defaults_and_says_why(live_server, with_tokens,
                                                                      settings: Settings) -> None:
    for token in (None, "wrong"):
        flags = FlagClient(live_server.url, token, defaults=settings.manifest)
        flag = flags.get("summarizer")
        assert (flag["mode"], flag["served"]) == ("human", "default")
        assert "hotwash answered 401" in flag["error"]
        flags.close()
    put_flag(live_server.url, "summarizer", {"mode": "disabled"})
    with FlagClient(live_server.url, VIEWER) as flags:
        assert flags.mode("summarizer") == "disabled"


# -- the client on its own, against scripted answers ------------------------------------------
def flag_doc(mode: str, version: int = 1) -> dict:
    return {"feature": "bot", "mode": mode, "params": {}, "reason": None, "incident": None,
            "updated_at": "2026-11-27T04:00:00Z", "updated_by": "ana", "version": version, "source": "set"}


def test_concurrent_reads_of_an_expired_flag_ask_hotwash_once() -> None:
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        time.sleep(0.2)
        return httpx.Response(200, json=flag_doc("human"), headers={"etag": '"v1"'})

    flags = FlagClient("http://hotwash.test", transport=httpx.MockTransport(answer), cache_seconds=60)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(flags.mode("bot"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == ["human"] * 16
    assert calls == ["/api/v1/flags/bot"]


def test_errors_unreadable_answers_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    script = [httpx.Response(200, json=flag_doc("throttle"), headers={"etag": '"a"'}),
              httpx.Response(503, json={"detail": "store unavailable"}),
              httpx.Response(200, content=b"<html>proxy error</html>"),
              httpx.Response(200, json={"mode": "paused"}),
              httpx.Response(200, json=flag_doc("enabled", 2), headers={"etag": '"b"'})]
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return script[len(sent) - 1]

    caplog.set_level(logging.INFO, logger="hotwash.containment")
    flags = FlagClient("http://hotwash.test/", transport=httpx.MockTransport(answer), cache_seconds=1,
                       defaults={"bot": "disabled", "other": "nonsense"}, clock=clock)
    assert flags.get("bot")["served"] == "live"
    served = []
    for _ in range(3):
        clock.advance(1.5)
        flag = flags.get("bot")
        served.append((flag["mode"], flag["served"]))
    assert served == [("throttle", "stale")] * 3
    assert "answered 503" in caplog.text and "store unavailable" in caplog.text
    assert sent[1].headers["if-none-match"] == '"a"'
    clock.advance(1.5)
    assert (flags.mode("bot"), flags.get("bot")["served"]) == ("enabled", "cached")
    assert "answers again" in caplog.text
    assert flags.stats == {"requests": 5, "not_modified": 0, "failures": 3}
    # An invalid declared default is ignored (logged), never served.
    assert flags.declared_default("other") is None and "not a mode" in caplog.text


def test_reads_never_raise_and_answers_are_copies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "hotwash.yaml"
    broken.write_text("features: [not, a, mapping\n")
    flags = FlagClient("http://127.0.0.1:9", defaults=broken, timeout=0.2)  # nothing listens on port 9
    assert "cannot read the flag defaults" in caplog.text
    assert flags.mode("bot") == "enabled"

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    weird = FlagClient("http://hotwash.test", transport=httpx.MockTransport(explode))
    flag = weird.get("bot")
    assert (flag["mode"], flag["served"]) == ("enabled", "fallback") and "bug in a transport" in flag["error"]

    good = FlagClient("http://hotwash.test", cache_seconds=60, transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={**flag_doc("throttle"), "params": {"rate_per_s": 2}})))
    good.get("bot")["params"]["rate_per_s"] = 999
    assert good.get("bot")["params"] == {"rate_per_s": 2}

    provider = HotwashProvider(client=weird)
    client = openfeature_client(provider)
    number = client.get_integer_details("bot", 7)
    assert (number.value, number.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert client.get_string_value("bot", "human") == "human"  # nothing known: the caller's default
