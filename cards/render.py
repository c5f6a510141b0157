"""The one card renderer: Jinja2 templates whose every `{{ value }}` is emitted as JSON.

Templates in `templates/*.json.j2` write values only as `{{ expr }}` outside quotes; the
environment's `finalize` turns each into a JSON literal, so quotes, braces, `${...}`,
newlines and emoji in user text can never break the card's JSON.

Teams reads a markdown subset in a TextBlock's `text` and a FactSet fact's `title` and
`value` (bold, italic, lists, links; its web client also raw HTML such as `<img>`). No
catalog string uses markdown, so after rendering every one of those strings is escaped
(`escape_markdown`): whatever a user typed is shown as the text it is, in every card, and
no dialog can forget it. Everything else is left as it is: input values and labels (Teams
draws labels as plain text runs), choice and toggle titles (plain text in Teams), action
titles, data, verbs and urls.
"""

from __future__ import annotations

import json
import re
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


# A block marker is markdown only at the start of a line (after any indentation).
_LINE_START = frozenset("#+-=")
_LINE_END = re.compile(r"(\r\n|\r|\n)")
_ORDERED = re.compile(r"\d{1,9}[.)](?=[ \t]|$)")
# Inside a line: escaped wherever they stand, the characters of emphasis, code, strikethrough,
# links and images, raw HTML and autolinks, entity references, tables and blockquotes, and the
# backslash itself; "(" after "]" (a link's target); "{{" (the
# card's date function); "//"; a scheme's colon (a letter before, something after); a dot
# inside a host name (a letter or digit before, a letter after).
_INLINE = re.compile(
    r"[\\*_`~\[\]<>&|]|(?<=\])\(|\{(?=\{)|(?<=\{)\{|/(?=/)|(?<=[A-Za-z]):(?=\S)|(?<=[^\W_])\.(?=[^\W\d_])"
)
# Anything that might need an escape; a string without one is returned as it is.
_MAYBE = re.compile(r"[\\*_`~\[\]<>&|#+=()\-{}/:.]|^[ \t]|[\r\n]|\d")


def escape_markdown(text: str) -> str:
    """`text` written so that Teams' markdown subset shows it literally.

    Backslash escapes (CommonMark: a backslash before ASCII punctuation shows that
    character), only where a character could start markup, so the text reads the same in a
    client that shows a backslash it does not understand. Bare links are broken too: `://`,
    a scheme's colon and a dot inside a host name get an escape, so neither a GFM autolink
    nor a linkifier sees an address. Leading indentation, which markdown never shows but would
    turn into a code block (where escapes stop working), is dropped.
    """
    if not _MAYBE.search(text):
        return text  # the common case: nothing that could start markup (measured: a card has ~50 strings)
    out: list[str] = []
    for part in _LINE_END.split(text):
        if _LINE_END.fullmatch(part):
            out.append(part)
            continue
        line = part.lstrip(" \t")
        ordered = _ORDERED.match(line)
        if ordered:
            at = ordered.end() - 1
            out.append(line[:at] + "\\" + line[at])
            line = line[at + 1 :]
        elif line[:1] and line[0] in _LINE_START:
            out.append("\\" + line[0])
            line = line[1:]
        # The characters before the cut are digits or a block marker, which none of the
        # look-behinds below match: escaping the rest alone gives the same text.
        out.append(_INLINE.sub(r"\\\g<0>", line))
    return "".join(out)


def _escape_shown_text(node: Any) -> None:
    """Escape, in place, every string of the card that Teams renders as markdown."""
    if isinstance(node, list):
        for item in node:
            _escape_shown_text(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TextBlock" and isinstance(node.get("text"), str):
        node["text"] = escape_markdown(node["text"])
    if kind == "FactSet" and isinstance(node.get("facts"), list):
        for fact in node["facts"]:
            for key in ("title", "value"):
                if isinstance(fact, dict) and isinstance(fact.get(key), str):
                    fact[key] = escape_markdown(fact[key])
    for key, value in node.items():
        if key != "data":  # action payloads go back to the bot as they are
            _escape_shown_text(value)


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
    rendered = tpl.render(t=strings, lang=lang, token=context.pop("token", None) or new_token(), **context)
    card: dict[str, Any] = json.loads(rendered)
    _escape_shown_text(card)
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
