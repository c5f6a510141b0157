"""User-facing strings, one catalog per language: `cards/locales/<lang>.json`, plus one file
per workflow and language, `cards/locales/<lang>/<workflow>.json`, merged into it (a key may
be defined once).

Norwegian bokmål (`nb`) is the default and the reference; English (`en`) holds the same
keys (a unit test checks it, and that every key a template or dialog uses exists).
Catalogs are plain JSON so a translator edits them without touching code; they are loaded
once at import. `text()` formats with `str.format`, so user values passed as arguments are
never interpreted as format directives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).parent / "locales"
LANGUAGES: tuple[str, ...] = ("nb", "en")
DEFAULT_LANGUAGE = "nb"


def catalog_files(lang: str) -> list[Path]:
    """The language's main catalog, then its workflow catalogs in name order."""
    return [LOCALES / f"{lang}.json", *sorted((LOCALES / lang).glob("*.json"))]


def _load(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalog_files(lang):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"catalog {path.name} must map keys to strings")
        twice = merged.keys() & data.keys()
        if twice:
            raise ValueError(f"catalog {lang}/{path.name} defines keys already defined: {sorted(twice)[:5]}")
        merged.update(data)
    return merged


STRINGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}
NB = STRINGS["nb"]
EN = STRINGS["en"]


def text(lang: str, key: str, **fmt: Any) -> str:
    table = STRINGS.get(lang, NB)
    template = table.get(key) or NB[key]
    return template.format(**fmt) if fmt else template
