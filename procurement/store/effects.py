"""Typed outbox effects: each side effect is a small frozen dataclass.

A workflow declares its effects in `<workflow>/effects.py`, each with a `kind` class
variable; the outbox stores the kind and the fields. The worker is given one handler per
effect *type* at construction and decodes a row by the kinds of those types, so a kind is
written once, on its class, and cannot be misspelt between writer and reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class Effect:
    """Base of every outbox effect."""

    kind: ClassVar[str]

    @property
    def idempotency_key(self) -> str:
        """Unique per effect to perform: a second emit with the same key is a no-op."""
        values = ":".join(str(getattr(self, f.name)) for f in dataclasses.fields(self))
        return f"{self.kind}:{values}"

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def kinds(types: Iterable[type[Effect]]) -> dict[str, type[Effect]]:
    """kind → type, refusing two types with one kind."""
    table: dict[str, type[Effect]] = {}
    for cls in types:
        if cls.kind in table:
            raise ValueError(f"effect kind {cls.kind} used by {table[cls.kind].__name__} and {cls.__name__}")
        table[cls.kind] = cls
    return table


def decode(table: dict[str, type[Effect]], kind: str, payload: dict[str, Any]) -> Effect:
    """The typed effect an outbox row holds (`LookupError` for a kind with no handler)."""
    cls = table.get(kind)
    if cls is None:
        raise LookupError(f"no handler for outbox kind {kind}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in payload.items() if k in names})
