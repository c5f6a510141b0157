"""The SharePoint registers as configuration: which lists, which columns, and a record's row.

The column set of each list is data (`rules_data/lists.json`), so the municipality can add a
column or move one to the restricted site without a code change. Each column has a stable
internal name (what Graph and the CSV code address), a Norwegian display name, a type and the
record value it shows (`source`, see `rows.py`). A `restricted` column goes only to the
restricted site's list: the open list never receives prices, internal notes or deviation
details, and without a restricted site they are written nowhere.

`build_fields` turns a record's values into the list item's fields as Graph takes them;
`differences` compares what we would write with what a list holds, by column type, so a
number SharePoint hands back as ``1300000.0`` or a date it hands back in UTC is not a change.

`RegisterLists` is the port the Graph adapter (`integrations/sharepoint_lists.py`) and the
local CSV adapter (`integrations/local_adapters.LocalListMirror`) implement, one per site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from procurement.shared.calendar import OSLO

ColumnType = Literal["text", "note", "number", "currency", "date", "dateTime", "choice", "boolean"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
Site = Literal["open", "restricted"]
SITES: tuple[Site, ...] = ("open", "restricted")

DEFAULT_LISTS_PATH = Path(__file__).resolve().parent / "rules_data" / "lists.json"
TEXT_MAX = 255  # SharePoint's single line of text
NOTE_MAX = 10_000  # multiple lines hold 63 999; a register row needs far less
# SharePoint internal names: a letter first, then letters, digits or _, at most 32 characters.
_INTERNAL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# SharePoint's own columns: never created by us (Title exists on every generic list).
BUILT_IN_COLUMNS = frozenset({"Title"})


class ListConfigError(ValueError):
    """The list configuration file is not usable (the message names the list and column)."""


@dataclass(frozen=True)
class Column:
    name: str
    display: str
    type: ColumnType
    source: str
    restricted: bool = False
    indexed: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, label shown)

    def label(self, value: str) -> str:
        """The choice label for a stored value; an unknown value is shown as it is."""
        return dict(self.choices).get(value, value)


@dataclass(frozen=True)
class ListSpec:
    """One register list as one site holds it."""

    entity: str
    title: str
    description: str
    key: str  # internal name of the reference column (indexed, filtered on)
    columns: tuple[Column, ...]
    restricted: bool = False  # the restricted site's copy (all columns)

    def for_site(self, site: Site) -> ListSpec:
        """The list as `site` holds it: the restricted site gets every column, the open one the
        columns not marked restricted."""
        if site == "restricted":
            return ListSpec(self.entity, self.title, self.description, self.key, self.columns, restricted=True)
        open_columns = tuple(c for c in self.columns if not c.restricted)
        return ListSpec(self.entity, self.title, self.description, self.key, open_columns, restricted=False)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def key_column(self) -> Column:
        return self.column(self.key)


@dataclass(frozen=True)
class ListConfig:
    valid_from: date
    lists: Mapping[str, ListSpec] = field(default_factory=dict)  # by entity

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(self.lists)


def _column(entity: str, raw: Mapping[str, Any]) -> Column:
    where = f"{entity}.{raw.get('name', '?')}"
    name = str(raw.get("name") or "")
    if not _INTERNAL_NAME.match(name):
        raise ListConfigError(f"{where}: internal name must be a letter then letters, digits or _ (≤ 32)")
    kind = raw.get("type")
    if kind not in COLUMN_TYPES:
        raise ListConfigError(f"{where}: type must be one of {', '.join(COLUMN_TYPES)}, got {kind!r}")
    display = str(raw.get("display") or "").strip()
    source = str(raw.get("source") or "").strip()
    if not display or not source:
        raise ListConfigError(f"{where}: display and source are required")
    choices_raw = raw.get("choices") or {}
    if not isinstance(choices_raw, dict) or (choices_raw and kind != "choice"):
        raise ListConfigError(f"{where}: choices must be an object, and only on a choice column")
    if kind == "choice" and not choices_raw:
        raise ListConfigError(f"{where}: a choice column needs its choices")
    choices = tuple((str(k), str(v)) for k, v in choices_raw.items())
    return Column(
        name=name,
        display=display,
        type=kind,
        source=source,
        restricted=bool(raw.get("restricted", False)),
        indexed=bool(raw.get("indexed", False)),
        choices=choices,
    )


def parse_list_config(data: Mapping[str, Any]) -> ListConfig:
    """The configuration from the JSON file's content, checked (`ListConfigError` says what is wrong)."""
    try:
        valid_from = date.fromisoformat(str(data["valid_from"]))
        raw_lists = data["lists"]
    except (KeyError, ValueError) as err:
        raise ListConfigError(f"lists configuration needs valid_from (a date) and lists: {err}") from None
    lists: dict[str, ListSpec] = {}
    titles: set[str] = set()
    for entity, raw in dict(raw_lists).items():
        title = str(raw.get("title") or "").strip()
        if not title or title.casefold() in titles:
            raise ListConfigError(f"{entity}: a title is required, and unique")
        titles.add(title.casefold())
        columns = tuple(_column(entity, c) for c in raw.get("columns") or [])
        names = [c.name.casefold() for c in columns]
        if len(set(names)) != len(names):
            raise ListConfigError(f"{entity}: two columns with one internal name")
        key = str(raw.get("key") or "")
        spec = ListSpec(entity, title, str(raw.get("description") or ""), key, columns)
        try:
            key_column = spec.key_column
        except KeyError:
            raise ListConfigError(f"{entity}: key column {key!r} is not among the columns") from None
        if key_column.type != "text" or not key_column.indexed or key_column.restricted:
            # The lost-item lookup filters on it: it must be text, indexed, and on both sites.
            raise ListConfigError(f"{entity}: key column {key!r} must be text, indexed and not restricted")
        if key_column.source != "ref":
            raise ListConfigError(f"{entity}: key column {key!r} must show the record's ref")
        lists[str(entity)] = spec
    return ListConfig(valid_from=valid_from, lists=lists)


def load_list_config(path: str | Path | None = None) -> ListConfig:
    source = Path(path) if path else DEFAULT_LISTS_PATH
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ListConfigError(f"{source}: {err}") from None
    return parse_list_config(data)


# -- a record's row ---------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    return value


def _text(value: object, limit: int, multiline: bool) -> str | None:
    text = str(value)
    if multiline:
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    else:
        text = " ".join(_CONTROL.sub(" ", text).split())  # one line, no control characters
    return text[:limit] or None


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None  # a flag in a number column is a configuration mistake, not 1/0
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        number = float(value)
        return int(number) if number.is_integer() else number
    try:
        number = float(str(value).replace(" ", "").replace(",", "."))
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def _flag(value: object) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    return str(value).strip().lower() in ("true", "1", "ja", "yes")


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(OSLO).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        return _as_date(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=OSLO).astimezone(UTC)
    try:
        return _as_datetime(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cell_value(column: Column, value: object) -> object:
    """The field value Graph takes for `value` in `column` (None clears the field)."""
    value = _plain(value)
    if value is None or value == "":
        return None
    kind = column.type
    if kind == "text":
        return _text(value, TEXT_MAX, multiline=False)
    if kind == "note":
        return _text(value, NOTE_MAX, multiline=True)
    if kind in ("number", "currency"):
        return _number(value)
    if kind == "boolean":
        return _flag(value)
    if kind == "date":
        # Midnight UTC is the same calendar day in Oslo (UTC+1/+2), where the site shows it.
        day = _as_date(value)
        return f"{day.isoformat()}T00:00:00Z" if day else None
    if kind == "dateTime":
        at = _as_datetime(value)
        return _utc_text(at) if at else None
    # choice
    return _text(column.label(str(value)), TEXT_MAX, multiline=False)


def build_fields(spec: ListSpec, values: Mapping[str, object]) -> dict[str, object]:
    """The list item's fields (by internal name) for a record's values (by source name)."""
    return {c.name: cell_value(c, values.get(c.source)) for c in spec.columns}


def comparable(column: Column, value: object) -> str:
    """`value` (as we write it, or as Graph or a CSV hands it back) in one canonical text."""
    value = _plain(value)
    if value is None or value == "":
        return ""
    kind = column.type
    if kind in ("number", "currency"):
        number = _number(value)
        return "" if number is None else repr(number)
    if kind == "boolean":
        return "true" if _flag(value) else "false"
    if kind == "date":
        day = _as_date(value)
        return day.isoformat() if day else str(value)
    if kind == "dateTime":
        at = _as_datetime(value)
        return _utc_text(at) if at else str(value)
    text = str(value)
    return text.replace("\r\n", "\n").strip() if kind == "note" else text


def differences(spec: ListSpec, wanted: Mapping[str, object], actual: Mapping[str, object]) -> list[str]:
    """The internal names of the columns whose value in `actual` is not what `wanted` holds."""
    return [c.name for c in spec.columns if comparable(c, wanted.get(c.name)) != comparable(c, actual.get(c.name))]


# -- the port ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListItemState:
    """A list item as the list holds it: its id and its fields by internal name."""

    item_id: str
    fields: Mapping[str, object]


class RegisterLists(Protocol):
    """One site's register lists. Every method raises `TransientError` (try again later) or
    `PermanentError` (a person must act), as every adapter does."""

    async def ensure_list(self, spec: ListSpec) -> None:
        """The list with every column of `spec`, created when missing; missing columns added
        (a column is never removed or retyped: people may have data in it)."""
        ...

    async def get_item(self, spec: ListSpec, item_id: str) -> ListItemState | None:
        """The item with this id, or None when it is gone."""
        ...

    async def find_item(self, spec: ListSpec, key: str) -> ListItemState | None:
        """The item whose key column holds `key` (the lowest id if there were several)."""
        ...

    async def create_item(self, spec: ListSpec, fields: Mapping[str, object]) -> str:
        """A new item; returns its id. Never retried inside: a retry after a lost answer would
        make a second item, so the caller looks up by key before it creates again."""
        ...

    async def update_item(self, spec: ListSpec, item_id: str, fields: Mapping[str, object]) -> bool:
        """Write `fields` into the item (None clears a field); False when the item is gone."""
        ...

    async def all_items(self, spec: ListSpec) -> list[ListItemState]:
        """Every item of the list (all pages)."""
        ...
