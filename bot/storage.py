"""Agents SDK `Storage` on our database, so turn and conversation state survive restarts.

The SDK reads three keys every turn (conversation state, user state, sign-in state); the
product keeps its own data in its tables and stores nothing there, so those keys almost never
exist. A key read as absent is remembered as absent for `ABSENT_SECONDS` (forgotten at once
when this instance writes it), so a plain turn reads nothing here: measured in
docs/benchmarks.md. A key another instance writes is seen here within that window.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from microsoft_agents.hosting.core.storage import Storage, StoreItem
from microsoft_agents.hosting.core.storage.storage import StoreItemT

from bot.conversations import _insert
from procurement.store.database import Store
from procurement.store.tables import BotState, utcnow

ABSENT_SECONDS = 60.0


class SqlStorage(Storage):
    def __init__(self, store: Store, *, absent_seconds: float = ABSENT_SECONDS) -> None:
        self.store = store
        self.absent_seconds = absent_seconds
        self._absent: dict[str, float] = {}
        # A write during a read must not be undone by that read's "absent".
        self._writes = 0

    def _known_absent(self, key: str, now: float) -> bool:
        at = self._absent.get(key)
        return at is not None and now - at < self.absent_seconds

    async def read(
        self, keys: list[str], *, target_cls: type[StoreItemT] | None = None, **kwargs: Any
    ) -> dict[str, StoreItemT]:
        if not keys:
            return {}
        if target_cls is None:
            raise ValueError("SqlStorage.read needs target_cls")
        now = time.monotonic()
        wanted = [k for k in keys if not self._known_absent(k, now)]
        if not wanted:
            return {}
        writes_before = self._writes
        # A plain read, no ORM unit of work.
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(sa.select(BotState.key, BotState.data).where(BotState.key.in_(wanted)))
            found: dict[str, StoreItemT] = {
                key: target_cls.from_json_to_store_item(data)  # type: ignore[misc]
                for key, data in rows
            }
        if len(self._absent) > 100_000:
            self._absent.clear()
        if self._writes == writes_before:
            for key in wanted:
                if key not in found:
                    self._absent[key] = now
        return found

    async def write(self, changes: dict[str, StoreItem]) -> None:
        if not changes:
            return
        self._writes += 1
        for key in changes:
            self._absent.pop(key, None)
        now = utcnow()
        async with self.store.session() as session:
            ins = _insert(session)
            for key, item in changes.items():
                data = item.store_item_to_json()
                await session.execute(
                    ins(BotState)
                    .values(key=key, data=data, updated_at=now)
                    .on_conflict_do_update(index_elements=["key"], set_={"data": data, "updated_at": now})
                )

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        now = time.monotonic()
        for key in keys:
            self._absent[key] = now
        async with self.store.session() as session:
            await session.execute(sa.delete(BotState).where(BotState.key.in_(keys)))
