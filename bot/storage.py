"""Agents SDK `Storage` on our database, so turn and conversation state survive restarts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from microsoft_agents.hosting.core.storage import Storage, StoreItem
from microsoft_agents.hosting.core.storage.storage import StoreItemT

from bot.conversations import _insert
from procurement.store.database import Store
from procurement.store.tables import BotState, utcnow


class SqlStorage(Storage):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def read(
        self, keys: list[str], *, target_cls: type[StoreItemT] | None = None, **kwargs: Any
    ) -> dict[str, StoreItemT]:
        if not keys:
            return {}
        if target_cls is None:
            raise ValueError("SqlStorage.read needs target_cls")
        # A plain read, no ORM unit of work: it runs twice on every turn.
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(BotState.key, BotState.data).where(BotState.key.in_(keys))
            )
            return {key: target_cls.from_json_to_store_item(data) for key, data in rows}  # type: ignore[misc]

    async def write(self, changes: dict[str, StoreItem]) -> None:
        if not changes:
            return
        now = utcnow()
        async with self.store.session() as session:
            ins = _insert(session)
            for key, item in changes.items():
                data = item.store_item_to_json()
                await session.execute(
                    ins(BotState)
                    .values(key=key, data=data, updated_at=now)
                    .on_conflict_do_update(
                        index_elements=["key"], set_={"data": data, "updated_at": now}
                    )
                )

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        async with self.store.session() as session:
            await session.execute(sa.delete(BotState).where(BotState.key.in_(keys)))
