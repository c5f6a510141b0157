"""What a turn costs in database statements (issue 7, item 8): counted, not timed."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from microsoft_agents.hosting.core.storage import StoreItem
from sqlalchemy import event

from bot.storage import SqlStorage
from procurement.store.database import Store
from tests.integration.bot_harness import KARI, Bot


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()))

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if not s.upper().startswith(("SELECT", "BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"))]


async def test_a_help_turn_writes_nothing_and_reads_at_most_once(bot: Bot) -> None:
    await bot.say("hei", user=KARI)  # the first turn records the person and the conversation
    with statements(bot.store) as seen:
        cards = await bot.say("hjelp", user=KARI)
    assert len(cards) == 1
    assert _writes(seen) == []
    assert len([s for s in seen if s.upper().startswith("SELECT")]) <= 1, seen


async def test_a_submit_is_one_transaction(bot: Bot) -> None:
    await bot.say("behovsmelding", user=KARI)
    with statements(bot.store) as seen:
        await bot.submit_valid()
    # The submit's own statements: one BEGIN…COMMIT holds the report, audit, outbox and submit record.
    inserts = [s for s in seen if s.upper().startswith("INSERT")]
    assert any("needs_reports" in s for s in inserts) and any("outbox" in s for s in inserts)
    assert any("audit_log" in s for s in inserts) and any("submits" in s for s in inserts)


class _Item(StoreItem):
    def __init__(self, value: str = "") -> None:
        self.value = value

    def store_item_to_json(self) -> dict[str, str]:
        return {"value": self.value}

    @staticmethod
    def from_json_to_store_item(json_data: MutableMapping[str, Any]) -> _Item:
        return _Item(str(json_data["value"]))


async def test_sdk_storage_remembers_absent_keys_and_forgets_on_write(store: Store) -> None:
    storage = SqlStorage(store)
    with statements(store) as seen:
        assert await storage.read(["k"], target_cls=_Item) == {}
        assert await storage.read(["k"], target_cls=_Item) == {}
    assert len([s for s in seen if s.upper().startswith("SELECT")]) == 1
    await storage.write({"k": _Item("v")})
    assert (await storage.read(["k"], target_cls=_Item))["k"].value == "v"
    await storage.delete(["k"])
    assert await storage.read(["k"], target_cls=_Item) == {}
    # Another instance (a second storage on the same database) sees the write at once.
    other = SqlStorage(store)
    await storage.write({"k2": _Item("w")})
    assert (await other.read(["k2"], target_cls=_Item))["k2"].value == "w"
