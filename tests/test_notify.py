"""Alert delivery: payload formats, real HTTP receivers (slow, down, flaky), grouping, the
deliveries record on both databases, configuration, and a real Prometheus Alertmanager."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotwash.detect.engine import Signal, save
from hotwash.errors import ConfigError
from hotwash.manifest import parse_manifest
from hotwash.notify import (
    Alert,
    AlertmanagerNotifier,
    Channel,
    DeliveryError,
    Dispatcher,
    MemoryNotifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
    build_notifiers,
    open_dispatcher,
    verify_signature,
    with_ids,
)
from hotwash.notify.alertmanager import alertmanager_payload
from hotwash.notify.slack import slack_payload
from hotwash.store import Store

T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
HOSTILE = "ignore the rules <!channel> <https://evil.example/login|reset your password> & <@U123>"


def signal(i: int = 0, *, feature: str = "support-bot", category: str = "escalation_overload",
           monitor: str = "escalation_rate", severity: str = "SEV2", summary: str | None = None,
           start: datetime = T0) -> Signal:
    begin = start + timedelta(minutes=i)
    return Signal(monitor, category, feature, severity, begin, begin + timedelta(minutes=15),
                  [f"evt-{i}-a", f"evt-{i}-b"], summary or f"escalation rate 58% (baseline 15%) #{i}")


def stored(store: Store, signals: list[Signal]) -> list[tuple[int, Signal]]:
    new = save(store, signals)
    pairs = with_ids(store, new)
    assert len(pairs) == len(signals)
    return pairs


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out leaves a broken pipe behind: expected here


class Receiver:
    """A real HTTP server on a loopback port that records requests; it can be slow, or fail
    the first ``fail_times`` requests with ``fail_status``."""

    def __init__(self, *, delay: float = 0.0, fail_times: int = 0, fail_status: int = 503,
                 answer: bytes = b"ok") -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.delay, self.fail_times, self.fail_status = delay, fail_times, fail_status
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    outer.requests.append((self.path, dict(self.headers.items()), body))
                    failing = outer.fail_times > 0
                    if failing:
                        outer.fail_times -= 1
                if outer.delay:
                    time.sleep(outer.delay)
                self.send_response(outer.fail_status if failing else 200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json(self, n: int = -1) -> Any:
        return json.loads(self.requests[n][2])


# -- the alert ----------------------------------------------------------------------------------

def test_alert_from_one_signal() -> None:
    alert = Alert.from_signal(7, signal(), base_url="http://hotwash.internal:8321/")
    assert alert.title == "SEV2 escalation overload on support-bot"
    assert alert.summary == "escalation rate 58% (baseline 15%) #0"
    assert alert.link == "http://hotwash.internal:8321/signals/7"
    assert alert.dedup_key == "hotwash:support-bot:escalation_rate"
    assert alert.evidence == ("evt-0-a", "evt-0-b") and alert.signal_ids == [7]
    assert alert.to_json()["start"] == "2026-11-27T04:00:00Z"
    assert Alert.from_signal(7, signal()).link is None


def test_grouped_alert_takes_the_worst_severity_and_links_to_incidents() -> None:
    items = [(3, signal(2, severity="SEV3")), (1, signal(0, severity="SEV1")), (2, signal(1, severity="SEV4"))]
    alert = Alert.from_signals(items, base_url="http://h")
    assert alert.severity == "SEV1" and alert.signal_ids == [1, 2, 3]
    assert alert.title.endswith("(3 signals)") and alert.link == "http://h/incidents"
    assert alert.start == T0 and alert.summary.count("\n") == 2
    with pytest.raises(ValueError, match="one feature and category"):
        Alert.from_signals([(1, signal()), (2, signal(category="drift"))])


# -- payload formats, sent over real HTTP -------------------------------------------------------

def test_slack_escapes_telemetry_text() -> None:
    alert = Alert.from_signal(1, signal(summary=HOSTILE, feature="bot<!here>"), base_url="http://h")
    with Receiver() as rx:
        SlackNotifier(rx.url + "/services/T000/B000/XXXX").send(alert)
        body = rx.requests[0][2].decode()
        payload = rx.json()
    assert rx.requests[0][0] == "/services/T000/B000/XXXX"
    assert "<!channel>" not in body and "<https://evil" not in body and "<@U123>" not in body
    assert "<!here>" not in body
    assert "&lt;!channel&gt;" in payload["text"] and "&amp;" in payload["text"]
    section = payload["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and section["text"] == (
        "ignore the rules &lt;!channel&gt; &lt;https://evil.example/login|reset your password&gt; &amp; &lt;@U123&gt;")
    assert payload["blocks"][-1]["elements"][0]["url"] == "http://h/signals/1"
    assert slack_payload(alert) == payload


def test_webhook_is_signed_and_a_tampered_body_fails() -> None:
    alert = Alert.from_signal(5, signal())
    with Receiver() as rx:
        WebhookNotifier(rx.url + "/hook", "s3cret").send(alert)
    _, headers, body = rx.requests[0]
    assert headers["X-Hotwash-Signature"].startswith("sha256=")
    assert json.loads(body)["alert"]["signals"][0]["id"] == 5
    assert verify_signature(body, headers, "s3cret")
    assert verify_signature(body, {k.upper(): v for k, v in headers.items()}, "s3cret")
    assert not verify_signature(body.replace(b"58%", b"5%"), headers, "s3cret")
    assert not verify_signature(body, headers, "other secret")
    stamp = int(headers["X-Hotwash-Timestamp"])
    assert not verify_signature(body, {**headers, "X-Hotwash-Timestamp": str(stamp + 1)}, "s3cret")
    assert not verify_signature(body, headers, "s3cret", tolerance_s=300, now=stamp + 301)  # a replay
    assert not verify_signature(body, {"X-Hotwash-Timestamp": str(stamp)}, "s3cret")


@pytest.mark.parametrize(("sev", "expected"), [("SEV1", "critical"), ("SEV2", "error"), ("SEV3", "warning"),
                                                ("SEV4", "info")])
def test_pagerduty_event(sev: str, expected: str) -> None:
    alert = Alert.from_signal(9, signal(severity=sev), base_url="http://h")
    with Receiver() as rx:
        PagerDutyNotifier("R0UT1NGKEY", url=rx.url + "/v2/enqueue").send(alert)
    event = rx.json()
    assert rx.requests[0][0] == "/v2/enqueue"
    assert event["routing_key"] == "R0UT1NGKEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] == "hotwash:support-bot:escalation_rate"
    payload = event["payload"]
    assert payload["severity"] == expected and payload["source"] == "support-bot"
    assert payload["summary"].startswith(f"{sev} escalation overload on support-bot: escalation rate 58%")
    assert payload["custom_details"]["signal_ids"] == [9]
    assert payload["custom_details"]["evidence"] == ["evt-0-a", "evt-0-b"]
    assert event["links"] == [{"href": "http://h/signals/9", "text": "Open in hotwash"}]


def test_alertmanager_payload() -> None:
    [entry] = alertmanager_payload(Alert.from_signal(4, signal(), base_url="http://h"))
    assert entry["labels"] == {"alertname": "escalation_overload", "feature": "support-bot",
                               "category": "escalation_overload", "severity": "SEV2",
                               "monitor": "escalation_rate", "service": "hotwash"}
    assert entry["annotations"]["summary"] == "SEV2 escalation overload on support-bot"
    assert entry["annotations"]["description"].startswith("escalation rate 58%")
    assert entry["startsAt"] == "2026-11-27T04:00:00Z" and entry["generatorURL"] == "http://h/signals/4"


def test_http_failures_are_readable_and_keep_the_secret_out() -> None:
    alert = Alert.from_signal(1, signal())
    with Receiver(fail_times=1, fail_status=404, answer=b"no_service") as rx, pytest.raises(DeliveryError) as err:
        SlackNotifier(rx.url + "/services/T0/B0/SECRETTOKEN").send(alert)
    assert not err.value.retryable and err.value.status == 404
    assert "answered HTTP 404: no_service" in err.value.reason and "SECRETTOKEN" not in err.value.reason
    with Receiver(fail_times=1, fail_status=503) as rx, pytest.raises(DeliveryError) as err:
        WebhookNotifier(rx.url, "k").send(alert)
    assert err.value.retryable
    with pytest.raises(DeliveryError, match=r"cannot connect to 127\.0\.0\.1"):
        AlertmanagerNotifier(f"http://127.0.0.1:{free_port()}").send(alert, timeout=1)


# -- the dispatcher -----------------------------------------------------------------------------

def test_slow_and_down_receivers_block_neither_the_caller_nor_other_channels(store: Store) -> None:
    down_url = f"http://127.0.0.1:{free_port()}"
    with Receiver(delay=3.0) as slow, Receiver() as fast:
        channels = [WebhookNotifier(slow.url, "k", name="slow"), AlertmanagerNotifier(down_url, name="down"),
                    SlackNotifier(fast.url + "/hook", name="fast")]
        dispatcher = Dispatcher(store, channels, retries=2, backoff=0.05, timeout=1.0, group_wait=0)
        try:
            items = stored(store, [signal()])
            t = time.perf_counter()
            dispatcher.submit(items)
            assert time.perf_counter() - t < 0.05
            wait_until(lambda: fast.requests, timeout=1.0)  # promptly, whatever the others do
            assert fast.json()["text"].startswith("SEV2 escalation overload on support-bot: escalation rate 58%")

            def outcomes() -> dict[str, dict[str, Any]] | None:
                rows = {r["channel"]: r for r in store.list_deliveries(signal_id=items[0][0])}
                return rows if len(rows) == 3 else None

            rows = wait_until(outcomes, timeout=15)
        finally:
            assert dispatcher.close(timeout=10)
    assert rows["fast"]["status"] == "sent" and rows["fast"]["attempts"] == 1 and rows["fast"]["last_error"] is None
    assert rows["slow"]["status"] == "failed" and rows["slow"]["attempts"] == 3
    assert "no answer from 127.0.0.1 within 1s" in rows["slow"]["last_error"]
    assert rows["down"]["status"] == "failed" and rows["down"]["attempts"] == 3
    assert "cannot connect to 127.0.0.1" in rows["down"]["last_error"]
    assert len(slow.requests) == 3
    assert store.count_failed_deliveries() == 2 and store.count_failed_deliveries(channel="fast") == 0


def test_flaky_receiver_is_retried_until_sent(store: Store) -> None:
    with Receiver(fail_times=2, fail_status=503) as flaky, \
            Dispatcher(store, [PagerDutyNotifier("key", url=flaky.url)], retries=5, backoff=0.01,
                       group_wait=0) as dispatcher:
        items = stored(store, [signal()])
        dispatcher.submit(items)
        row = wait_until(lambda: store.list_deliveries(channel="pagerduty"))[0]
    assert (row["signal_id"], row["status"], row["attempts"], row["last_error"]) == (items[0][0], "sent", 3, None)
    assert len(flaky.requests) == 3
    assert len({json.loads(body)["dedup_key"] for _, _, body in flaky.requests}) == 1


def test_an_answer_that_cannot_improve_is_not_retried(store: Store) -> None:
    with Receiver(fail_times=10, fail_status=400) as rx, \
            Dispatcher(store, [AlertmanagerNotifier(rx.url)], retries=5, backoff=0.01, group_wait=0) as d:
        d.submit(stored(store, [signal()]))
        row = wait_until(lambda: store.list_deliveries(status="failed"))[0]
    assert row["attempts"] == 1 and "HTTP 400" in row["last_error"] and len(rx.requests) == 1


def test_a_burst_is_one_alert_per_feature_and_category(store: Store) -> None:
    fake = MemoryNotifier()
    with Dispatcher(store, [fake], group_wait=0.3, group_window=2.0) as dispatcher:
        burst = stored(store, [signal(i) for i in range(20)] + [signal(0, category="runaway_cost",
                                                                          monitor="cost_spike")])
        for i in range(0, 21, 3):  # as the live engine delivers them: several calls in quick succession
            dispatcher.submit(burst[i:i + 3])
        assert fake.wait_for(2)
        time.sleep(0.2)
        assert len(fake.alerts) == 2
        by_category = {a.category: a for a in fake.alerts}
        assert by_category["escalation_overload"].signal_ids == [i for i, _ in burst[:20]]
        assert by_category["escalation_overload"].title.endswith("(20 signals)")
        assert by_category["runaway_cost"].signal_ids == [burst[20][0]]
        # One more of the same group inside the window waits for the window, then goes alone.
        late = stored(store, [signal(30)])
        dispatcher.submit(late)
        time.sleep(0.3)
        assert len(fake.alerts) == 2
        assert fake.wait_for(3, timeout=3)
        assert fake.alerts[2].signal_ids == [late[0][0]]
    rows = store.list_deliveries()
    assert len(rows) == 22 and {r["status"] for r in rows} == {"sent"} and fake.attempts == 3


def test_full_queue_drops_counts_and_records(store: Store) -> None:
    fake = MemoryNotifier(delay=0.5)
    dispatcher = Dispatcher(store, [fake], max_queue=2, group_wait=0)
    items = stored(store, [signal(i, feature=f"f{i}") for i in range(6)])
    dispatcher.submit(items[:1])
    wait_until(lambda: fake.attempts)  # the worker is busy with the first
    t = time.perf_counter()
    dispatcher.submit(items[1:])
    assert time.perf_counter() - t < 0.05
    assert dispatcher.dropped == 3
    assert dispatcher.close(timeout=10)
    status = {r["signal_id"]: r["status"] for r in store.list_deliveries()}
    assert status == {i: "sent" if n < 3 else "dropped" for n, (i, _) in enumerate(items)}
    dropped = store.list_deliveries(status="dropped")[0]
    assert dropped["attempts"] == 0 and "queue full" in dropped["last_error"]
    assert store.count_failed_deliveries() == 3


def test_min_severity_per_channel(store: Store) -> None:
    pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
    with Dispatcher(store, [Channel(pager, "SEV2"), chat], group_wait=0) as dispatcher:
        items = stored(store, [signal(0, feature=f, severity=s) for f, s in
                               [("a", "SEV1"), ("b", "SEV2"), ("c", "SEV3"), ("d", "SEV4")]])
        dispatcher.submit(items)
        assert chat.wait_for(4)
    assert sorted(a.feature for a in pager.alerts) == ["a", "b"]
    assert len(store.list_deliveries(channel="pager")) == 2 and len(store.list_deliveries(channel="chat")) == 4


def test_close_delivers_what_waits_in_a_group_window(store: Store) -> None:
    fake = MemoryNotifier()
    dispatcher = Dispatcher(store, [fake], group_wait=60, group_window=600)
    dispatcher.submit(stored(store, [signal()]))
    time.sleep(0.1)
    assert fake.alerts == []
    assert dispatcher.close(timeout=5)
    assert len(fake.alerts) == 1 and store.list_deliveries()[0]["status"] == "sent"


def test_close_gives_up_retries_that_would_outlast_it(store: Store) -> None:
    fake = MemoryNotifier(fail_times=100)
    dispatcher = Dispatcher(store, [fake], retries=5, backoff=30, group_wait=0)
    dispatcher.submit(stored(store, [signal()]))
    wait_until(lambda: fake.attempts)
    t = time.monotonic()
    assert dispatcher.close(timeout=2)
    assert time.monotonic() - t < 2
    row = store.list_deliveries()[0]
    assert row["status"] == "failed" and "shutting down" in row["last_error"]


def test_a_broken_notifier_does_not_stop_its_channel(store: Store) -> None:
    class Broken(MemoryNotifier):
        def send(self, alert: Alert, *, timeout: float | None = None) -> None:
            if alert.feature == "bad":
                raise RuntimeError("bug in a notifier")
            super().send(alert, timeout=timeout)

    broken = Broken("broken")
    with Dispatcher(store, [broken], retries=1, backoff=0, group_wait=0) as dispatcher:
        dispatcher.submit(stored(store, [signal(feature="bad")]))
        dispatcher.submit(stored(store, [signal(feature="good")]))
        assert broken.wait_for(1)
    rows = {r["channel"] + ":" + r["status"]: r for r in store.list_deliveries()}
    assert set(rows) == {"broken:failed", "broken:sent"}
    assert rows["broken:failed"]["last_error"] == "RuntimeError: bug in a notifier"


# -- configuration ------------------------------------------------------------------------------

NOTIFY_YAML = """
notify:
  channels:
    - {type: slack, url_env: SLACK_WEBHOOK_URL}
    - {type: webhook, url: "https://hooks.example.com/hotwash", secret_env: HOTWASH_WEBHOOK_SECRET}
    - {type: pagerduty, routing_key_env: PD_ROUTING_KEY, min_severity: SEV2}
    - {type: alertmanager, url: "http://127.0.0.1:9093", name: am-local}
  group_window: 5m
  base_url: "http://hotwash.internal:8321"
"""
ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x", "HOTWASH_WEBHOOK_SECRET": "whsec",
       "PD_ROUTING_KEY": "R0UTING"}


def test_channels_from_the_manifest() -> None:
    notify = parse_manifest(NOTIFY_YAML).notify
    assert notify.group_window == 5 and notify.base_url == "http://hotwash.internal:8321"
    channels = build_notifiers(notify, ENV)
    assert [(type(c.notifier).__name__, c.name, c.min_severity) for c in channels] == [
        ("SlackNotifier", "slack", "SEV4"), ("WebhookNotifier", "webhook", "SEV4"),
        ("PagerDutyNotifier", "pagerduty", "SEV2"), ("AlertmanagerNotifier", "am-local", "SEV4")]
    assert "hooks.slack.com" not in repr(channels)  # the webhook URL is a secret


def test_open_dispatcher(store: Store) -> None:
    assert open_dispatcher(store, parse_manifest("").notify, {}) is None
    dispatcher = open_dispatcher(store, parse_manifest(NOTIFY_YAML).notify, ENV, retries=0)
    assert dispatcher is not None
    try:
        assert dispatcher.group_window == 300 and dispatcher.retries == 0
        assert dispatcher.channels == ["slack", "webhook", "pagerduty", "am-local"]
    finally:
        assert dispatcher.close(timeout=1)


def test_a_missing_secret_names_the_channel_and_the_variable() -> None:
    notify = parse_manifest(NOTIFY_YAML).notify
    with pytest.raises(ConfigError, match=r"notify channel 'pagerduty' \(pagerduty\): environment variable "
                                          r"PD_ROUTING_KEY is not set"):
        build_notifiers(notify, {k: v for k, v in ENV.items() if k != "PD_ROUTING_KEY"})
    with pytest.raises(ConfigError, match=r"'slack'.*SLACK_WEBHOOK_URL"):
        build_notifiers(notify, {**ENV, "SLACK_WEBHOOK_URL": " "})
    with pytest.raises(ConfigError, match=r"'slack'.*not an http") as err:
        build_notifiers(notify, {**ENV, "SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/x"})
    assert "services/T0" not in str(err.value)


@pytest.mark.parametrize(("channel", "message"), [
    ('{type: slack, url: "https://hooks.slack.com/services/T/B/x"}', "Slack webhook URL is a secret"),
    ('{type: webhook, url: "https://x.example", secret: abc}', "'secret' must not be written in hotwash.yaml"),
    ('{type: pagerduty, routing_key: abc}', "'routing_key' must not be written"),
    ('{type: webhook, url: "https://x.example"}', "secret_env: Field required"),
    ("{type: alertmanager}", "exactly one of 'url' and 'url_env'"),
    ("{type: email, url: x}", "does not match any of the expected tags"),
    ('{type: pagerduty, routing_key_env: "not a name"}', "routing_key_env: String should match pattern"),
])
def test_bad_channels_are_refused_when_the_manifest_loads(channel: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"notify\.channels\.0") as err:
        parse_manifest(f"notify:\n  channels:\n    - {channel}\n")
    assert message in str(err.value)


def test_channel_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="'slack' is used twice"):
        parse_manifest("notify:\n  channels: [{type: slack, url_env: A}, {type: slack, url_env: B}]\n")
    two = parse_manifest("notify:\n  channels: [{type: slack, url_env: A}, {type: slack, url_env: B, name: ops}]\n")
    assert [c.name for c in build_notifiers(two.notify, {"A": "https://a", "B": "https://b"})] == ["slack", "ops"]


# -- a real Prometheus Alertmanager --------------------------------------------------------------

@contextmanager
def run_alertmanager(tmp_path: Path) -> Iterator[str]:
    """Start the Alertmanager binary on a free loopback port (no clustering); yield its URL."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("Prometheus Alertmanager is not installed: `apt-get install -y prometheus-alertmanager` "
                    "(Debian/Ubuntu; CI installs it)")
    config = tmp_path / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"alertmanager exited with {proc.returncode}: "
                            f"{(tmp_path / 'alertmanager.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("alertmanager did not become ready within 20s")
            time.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


def test_a_real_alertmanager_receives_the_alert(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    alert = Alert.from_signal(42, signal(summary=HOSTILE, start=start), base_url="http://hotwash.internal:8321")
    with run_alertmanager(tmp_path) as url:
        AlertmanagerNotifier(url).send(alert, timeout=5)
        got = httpx.get(f"{url}/api/v2/alerts", params={"filter": 'service="hotwash"'}, timeout=5).json()
    assert len(got) == 1
    [am] = got
    assert am["labels"] == {"alertname": "escalation_overload", "feature": "support-bot",
                            "category": "escalation_overload", "severity": "SEV2",
                            "monitor": "escalation_rate", "service": "hotwash"}
    assert am["annotations"]["summary"] == "SEV2 escalation overload on support-bot"
    assert am["annotations"]["description"].startswith(HOSTILE)
    assert am["generatorURL"] == "http://hotwash.internal:8321/signals/42"
    assert datetime.fromisoformat(am["startsAt"].replace("Z", "+00:00")) == start
    assert am["status"]["state"] == "active"
