"""Domain records built from stored rows by field name."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def from_attributes(cls: type[T], source: object, **overrides: Any) -> T:
    """`cls(field=source.field, …)` for every dataclass field of `cls`, except `overrides`.

    The services turn ORM rows into frozen domain records with it, so a record's field list
    is written once, on the record."""
    assert dataclasses.is_dataclass(cls)
    values = {f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if f.name not in overrides}
    return cls(**values, **overrides)
