"""The user guide is checked against the code, so it cannot rot: the CLI reference is generated
from the commands, every manifest key and setting is documented, the README's commands exist."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from hotwash.docs.cli_reference import render
from hotwash.manifest import Manifest
from hotwash.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for sub in _models_in(field.annotation):
            keys |= _keys(sub, seen)
    return keys


def test_cli_reference_is_generated_from_the_code() -> None:
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/cli.md is stale: run `python -m hotwash.docs.cli_reference > docs/cli.md`"


def test_every_manifest_key_is_documented() -> None:
    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # examples do not count as documentation
    documented = {word for span in re.findall(r"`([^`]+)`", text) for word in re.findall(r"[a-z_]+", span)}
    missing = sorted(_keys(Manifest) - documented)
    assert not missing, f"manifest keys missing from docs/manifest.md: {missing}"


def test_every_setting_is_documented() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    missing = [f"HOTWASH_{name.upper()}" for name in Settings.model_fields if f"HOTWASH_{name.upper()}" not in text]
    assert not missing, f"settings missing from docs/: {missing}"


def test_readme_commands_exist_and_docs_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", readme, flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"README runs `make {target}`; Makefile lacks it"
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for link in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).exists(), f"{page.name} links to missing {link}"
