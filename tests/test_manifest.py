from __future__ import annotations

from pathlib import Path

import pytest

from hotwash.errors import ConfigError
from hotwash.manifest import STARTER_MANIFEST, load_manifest, parse_manifest, write_starter_manifest


def test_starter_manifest_is_valid_and_matches_the_contract() -> None:
    m = parse_manifest(STARTER_MANIFEST)
    bot = m.features["support-bot"]
    assert bot.capabilities.tools == ["search_kb", "lookup_order"]
    assert bot.grounding == "required"
    assert bot.escalation.baseline_rate == 0.15
    assert bot.budget.daily_usd == 200 and bot.budget.weekly_growth_max == 0.10
    assert bot.containment.fallback == "human"
    assert bot.containment.rollback_to is not None and bot.containment.rollback_to.prompt_version == "v11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("features:\n  bot:\n    escalation: {baseline_rate: 2}\n", "features.bot.escalation.baseline_rate"),
        ("features:\n  bot:\n    capabilites: {tools: []}\n", "features.bot.capabilites: Extra inputs"),
        ("features:\n  bot:\n    containment: {fallback: panic}\n", "features.bot.containment.fallback"),
        ("features:\n  bot:\n    budget: {daily_usd: -3}\n", "features.bot.budget.daily_usd"),
        ("features: [1, 2]\n", "features: Input should be a valid dictionary"),
        ("- just\n- a list\n", "expected a mapping"),
        ("features:\n  bot: {owner: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_invalid_manifest_names_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_manifest(text, source="m.yaml")
    assert expected in str(info.value) and str(info.value).startswith("m.yaml")


def test_missing_manifest_is_empty_and_starter_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "hotwash.yaml"
    assert load_manifest(path).features == {}
    assert write_starter_manifest(path) is True
    path.write_text("features: {}\n")
    assert write_starter_manifest(path) is False
    assert path.read_text() == "features: {}\n"
