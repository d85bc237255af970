"""Cost of a call from its provider, model and tokens, with the maintained ``genai-prices`` data.

``genai-prices`` takes ~60 µs per call (Decimal arithmetic over its price tables), too slow for
the ingest path at tens of thousands of events per second. Prices of most models are linear in
tokens, so the model's price entry is looked up once per (provider, model, day) and the cost is
computed from its per-million-token rates; a tiered or otherwise non-linear price falls back to
``genai-prices`` itself for each call. An unknown model is *unpriced*: stored as such and
counted, never priced at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price

# Provider names in telemetry (OpenTelemetry's gen_ai.provider.name values, SDK names) mapped to
# genai-prices provider ids where they differ.
_PROVIDER_ALIASES = {
    "azure.ai.openai": "azure",
    "azure_openai": "azure",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}


@dataclass(frozen=True, slots=True)
class _Rate:
    input_per_token: float | None  # None: not linear, ask genai-prices each time
    output_per_token: float | None


def _linear(price: object) -> float | None:
    return float(price) / 1_000_000 if isinstance(price, Decimal | int | float) else None


@lru_cache(maxsize=4096)
def _rate(provider: str | None, model: str, day: date) -> _Rate | None:
    when = datetime(day.year, day.month, day.day, 12)
    try:
        found = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model,
                           provider_id=provider, genai_request_timestamp=when)
    except LookupError:
        return None
    mp = found.model_price
    inp, out = _linear(mp.input_mtok or 0), _linear(mp.output_mtok or 0)
    if inp is None or out is None:
        return _Rate(None, None)
    return _Rate(inp, out)


def price(provider: str | None, model: str | None, tokens_in: int | None,
          tokens_out: int | None, ts: datetime) -> float | None:
    """The call's cost in USD, or None if the model is unknown to the price data."""
    if not model or (tokens_in is None and tokens_out is None):
        return None
    prov = _PROVIDER_ALIASES.get(provider.lower(), provider.lower()) if provider else None
    rate = _rate(prov, model, ts.date())
    if rate is None and prov is not None:
        rate = _rate(None, model, ts.date())  # provider unknown to the data: match by model
        prov = None
    if rate is None:
        return None
    tin, tout = tokens_in or 0, tokens_out or 0
    if rate.input_per_token is None or rate.output_per_token is None:
        result = calc_price(Usage(input_tokens=tin, output_tokens=tout), model_ref=model,
                            provider_id=prov, genai_request_timestamp=ts.replace(tzinfo=None))
        return float(result.total_price)
    return tin * rate.input_per_token + tout * rate.output_per_token
