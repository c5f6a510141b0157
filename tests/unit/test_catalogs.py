"""The string catalogs (cards/locales/*.json): same keys in every language, and every key
the code or a template asks for exists (issue 7, item 5)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from cards.strings import LANGUAGES, STRINGS, catalog_files

ROOT = Path(__file__).resolve().parents[2]
CODE = [p for d in ("dialogs", "bot", "cards") for p in (ROOT / d).rglob("*.py")]
TEMPLATES = list((ROOT / "cards" / "templates").glob("*.j2"))
# Calls whose argument at this position is a catalog key.
KEY_ARGS = {"text": 1, "notice": 1, "not_allowed_reply": 1, "message_card": 1}


def _keys_in_code() -> tuple[set[str], set[str]]:
    """Literal keys, and prefixes of keys built with an f-string (f"nr_status_{s}")."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if isinstance(node.func, ast.Attribute) and name == "text":
                continue  # router.text(...) takes command patterns, not keys
            pos = KEY_ARGS.get(str(name))
            if pos is None or len(node.args) <= pos:
                continue
            arg = node.args[pos]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                keys.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                prefixes.add(str(arg.values[0].value))
    return keys, prefixes


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    reference = STRINGS["nb"]
    for lang in LANGUAGES:
        assert STRINGS[lang].keys() == reference.keys(), lang
        for key, value in STRINGS[lang].items():
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f}
            expected = {f for _, f, _, _ in string.Formatter().parse(reference[key]) if f}
            assert fields == expected, (lang, key)
            assert value.strip(), (lang, key)


def test_every_key_the_code_uses_exists() -> None:
    keys, prefixes = _keys_in_code()
    assert len(keys) > 50, "the scan found too few keys: has the code changed its helpers?"
    missing = sorted(k for k in keys if k not in STRINGS["nb"])
    assert missing == []
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in STRINGS["nb"]), prefix


def test_every_key_a_template_uses_exists() -> None:
    used = set()
    for path in TEMPLATES:
        used |= set(re.findall(r"\bt\.([a-z][a-z0-9_]*)", path.read_text(encoding="utf-8")))
    assert used, "no t.<key> found in the templates"
    assert sorted(k for k in used if k not in STRINGS["nb"]) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_files_are_plain_json_objects(lang: str) -> None:
    for path in catalog_files(lang):
        raw = path.read_text(encoding="utf-8")
        assert raw.endswith("\n") and raw.lstrip().startswith("{"), path


def test_every_language_has_the_same_workflow_catalogs() -> None:
    names = {lang: [p.name for p in catalog_files(lang)[1:]] for lang in LANGUAGES}
    assert all(n == names["nb"] for n in names.values()), names
