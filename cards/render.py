"""The one card renderer: Jinja2 templates whose every `{{ value }}` is emitted as JSON.

Templates in `templates/*.json.j2` write values only as `{{ expr }}` outside quotes; the
environment's `finalize` turns each into a JSON literal, so quotes, braces, `${...}`,
newlines and emoji in user text can never break the card's JSON.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .strings import STRINGS, text

TEMPLATES = Path(__file__).parent / "templates"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_CARD_BYTES = 80_000


def _finalize(value: Any) -> Markup:
    # Markup is output the template built itself (a macro's JSON); anything else is a
    # value and becomes a JSON literal. Autoescape is on only so macro output arrives as
    # Markup; no HTML escaping happens because finalize always returns Markup.
    if isinstance(value, Markup):
        return value
    return Markup(json.dumps(value, ensure_ascii=False))


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        finalize=_finalize,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env


def template_names() -> list[str]:
    return sorted(p.name.removesuffix(".json.j2") for p in TEMPLATES.glob("*.json.j2"))


def render_card(name: str, lang: str, **context: Any) -> dict[str, Any]:
    """Render template `name` in language `lang` into an Adaptive Card dict."""
    strings = STRINGS.get(lang, STRINGS["nb"])
    tpl = _env().get_template(f"{name}.json.j2")
    rendered = tpl.render(
        t=strings, lang=lang, token=context.pop("token", None) or new_token(), **context
    )
    card: dict[str, Any] = json.loads(rendered)
    card.setdefault("$schema", CARD_SCHEMA)
    card.setdefault("type", "AdaptiveCard")
    card.setdefault("version", "1.5")
    card.setdefault("lang", lang)
    size = len(json.dumps(card, ensure_ascii=False).encode())
    if size > MAX_CARD_BYTES:
        raise ValueError(f"card {name} is {size} bytes, over Teams' limit")
    return card


def new_token() -> str:
    """A card instance id: a submit carries it so a retried submit is recognised."""
    return uuid.uuid4().hex


def message_card(lang: str, title_key: str, body: str, **fmt: Any) -> dict[str, Any]:
    """A small card with a heading and a paragraph, for short notices."""
    return render_card("notice", lang, title=text(lang, title_key, **fmt), body=body)
