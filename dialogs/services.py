"""The domain services a dialog may call, passed in by the composition root (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from procurement.people import People
from procurement.store import Store


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    store: Store
    people: People
    default_language: str = "nb"
    clock: Callable[[], datetime] = field(default=_now)
