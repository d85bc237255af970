"""Realistic telemetry for three AI features, generated deterministically from a seed.

Used by ``hotwash demo`` and the benchmarks. Records look like production traffic: a RAG
support bot with retrieved knowledge-base passages, a ticket classifier that escalates to
humans, and an agent calling tools; real model names so they are priced.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_KB = [
    ("kb-returns", "Items can be returned within 30 days of delivery for a full refund. Opened "
     "electronics can be returned within 14 days. Refunds go to the original payment method within "
     "5 business days."),
    ("kb-shipping", "Standard shipping takes 3-5 business days. Express shipping takes 1-2 business "
     "days and costs $12.99. Orders over $50 ship free."),
    ("kb-warranty", "Every Acme device carries a 2-year limited warranty covering manufacturing "
     "defects. Accidental damage is covered only with AcmeCare+."),
    ("kb-account", "To reset your password, open Settings > Security and choose Reset password. "
     "A link valid for 24 hours is sent to your email."),
    ("kb-orders", "You can track an order from the Orders page. Orders can be cancelled until they "
     "are packed, usually within 2 hours of purchase."),
]
_QUESTIONS = [
    "Where is my order {n}? It was supposed to arrive yesterday.",
    "Can I return the headphones I bought {d} days ago?",
    "How long does express shipping take to Denver?",
    "My blender stopped working after {m} months, is that covered?",
    "I forgot my password and the reset link expired, what now?",
    "Can I cancel order {n}? I ordered the wrong size.",
    "Do you ship for free if my order is ${p}?",
]
_ANSWERS = [
    "Your order {n} is in transit and should arrive within 1-2 business days. You can track it "
    "from the Orders page.",
    "Yes, items can be returned within 30 days of delivery for a full refund, which goes to your "
    "original payment method within 5 business days.",
    "Express shipping takes 1-2 business days and costs $12.99.",
    "Every Acme device carries a 2-year limited warranty covering manufacturing defects, so a "
    "blender failing after {m} months is covered.",
    "Open Settings > Security and choose Reset password; a new link valid for 24 hours is sent to "
    "your email.",
    "Orders can be cancelled until they are packed, usually within 2 hours of purchase. I have "
    "asked the warehouse to stop order {n}.",
    "Orders over $50 ship free, so an order of ${p} ships free.",
]
# Which knowledge-base passage answers each question (retrieval gets it right).
_DOC_FOR_QUESTION = [4, 0, 1, 2, 3, 4, 1]
_TICKETS = [
    ("billing", "I was charged twice for my subscription this month, please refund one charge."),
    ("technical", "The app crashes every time I open the camera screen on Android 14."),
    ("account", "Please delete my account and all my data under GDPR."),
    ("shipping", "The parcel shows delivered but nothing arrived at my door."),
    ("other", "Do you have a student discount for the annual plan?"),
]
_AGENT_TASKS = [
    ("Rebook my flight {n} to tomorrow morning, same route.", ["get_reservation", "search_flights",
                                                                "update_reservation"]),
    ("What is the baggage allowance on reservation {n}?", ["get_reservation"]),
    ("Cancel reservation {n} and refund to my card.", ["get_reservation", "cancel_reservation"]),
]

FEATURES = ("support-bot", "ticket-classifier", "travel-agent")


def generate_events(n: int, *, seed: int = 7, start: datetime | None = None,
                    rate_per_minute: float = 120.0, features: tuple[str, ...] = FEATURES,
                    ) -> Iterator[dict[str, Any]]:
    """Yield ``n`` events in time order, ~``rate_per_minute`` across ``features``."""
    rng = random.Random(seed)
    t = start or datetime(2026, 11, 1, tzinfo=UTC)
    step = 60.0 / rate_per_minute
    for i in range(n):
        t += timedelta(seconds=rng.expovariate(1 / step))
        feature = features[i % len(features)] if len(features) < 3 else rng.choice(features)
        yield _event(rng, i, t, feature)


def _event(rng: random.Random, i: int, t: datetime, feature: str) -> dict[str, Any]:
    fill = {"n": rng.randint(10000, 99999), "d": rng.randint(2, 40), "m": rng.randint(2, 30),
            "p": rng.randint(20, 90)}
    base: dict[str, Any] = {
        "id": f"evt-{i:09d}",
        "ts": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "feature": feature,
        "env": "prod",
        "session_id": f"s-{feature[:3]}-{i // 4:08d}",
        "user_id": f"u-{rng.randint(1, 50000)}",
        "latency_ms": round(rng.lognormvariate(6.6, 0.4), 1),
        "retry": 0,
        "untrusted": ["input", "context"],
        "tags": {"tenant": rng.choice(["acme", "globex", "initech"])},
    }
    if feature == "support-bot":
        k = rng.randrange(len(_QUESTIONS))
        docs = [_KB[_DOC_FOR_QUESTION[k]], _KB[(_DOC_FOR_QUESTION[k] + 1) % len(_KB)]]
        if k == 0:
            docs.insert(0, (f"order-{fill['n']}", f"Order {fill['n']}: in transit, estimated delivery "
                                                   "within 1-2 business days."))
        base.update(
            provider="openai", model="gpt-4o-mini", prompt_version="v12",
            input=_QUESTIONS[k].format(**fill),
            context=[{"id": d, "text": txt, "source": "kb"} for d, txt in docs],
            output=_ANSWERS[k].format(**fill),
            tool_calls=[{"name": "search_kb", "arguments": {"q": _QUESTIONS[k][:30]}}],
            tokens_in=rng.randint(600, 1400), tokens_out=rng.randint(60, 220),
            escalated=rng.random() < 0.15, confidence=round(rng.uniform(0.55, 0.98), 3),
            score=round(rng.uniform(0.7, 1.0), 3),
        )
    elif feature == "ticket-classifier":
        label, text = rng.choice(_TICKETS)
        conf = round(rng.betavariate(8, 2), 3)
        base.update(
            provider="anthropic", model="claude-3-5-haiku-20241022", prompt_version="c3",
            input=text, output=orjson.dumps({"label": label, "confidence": conf}).decode(),
            tokens_in=rng.randint(150, 400), tokens_out=rng.randint(10, 30),
            escalated=conf < 0.6, confidence=conf,
        )
    else:
        task, tools = rng.choice(_AGENT_TASKS)
        base.update(
            provider="openai", model="gpt-4o", prompt_version="a7",
            input=task.format(**fill), output="Done: your reservation has been updated.",
            tool_calls=[{"name": name, "arguments": {"reservation_id": str(fill["n"])}}
                        for name in tools],
            tokens_in=rng.randint(2000, 6000), tokens_out=rng.randint(80, 400),
            escalated=rng.random() < 0.08, feedback=rng.choice([None, None, 1.0, -1.0]),
        )
    return base


def write_jsonl(path: str, n: int, **kwargs: Any) -> None:
    with open(path, "wb") as fh:
        for ev in generate_events(n, **kwargs):
            fh.write(orjson.dumps(ev) + b"\n")
