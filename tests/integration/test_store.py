"""The store on real databases (SQLite and PostgreSQL, via the `db_url` / `store` fixtures):
migrations, reference numbers, the SDK storage, people and conversation references,
audit log and outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from microsoft_agents.activity import Activity, ChannelAccount, ConversationAccount
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.storage import StoreItem
from sqlalchemy.exc import IntegrityError

from bot.conversations import People, Seen
from bot.storage import SqlStorage
from procurement.access import Actor
from procurement.store.database import Store
from procurement.store.effects import Effect
from procurement.store.tables import (
    AuditEntry,
    Base,
    BotState,
    ConversationRef,
    Counter,
    Installation,
    OutboxItem,
    User,
)
from procurement.store.unit_of_work import Audited

NewDatabase = Callable[[str], Awaitable[str]]
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _schema(store: Store) -> dict[str, list[str]]:
    def inspect(conn: sa.Connection) -> dict[str, list[str]]:
        insp = sa.inspect(conn)
        return {t: sorted(c["name"] for c in insp.get_columns(t)) for t in sorted(insp.get_table_names())}

    async with store.engine.connect() as conn:
        return await conn.run_sync(inspect)


# -- migrations ------------------------------------------------------------------------------


async def test_migrations_create_every_table_and_a_second_run_is_a_noop(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(db_url)
    try:
        await store.migrate()
        schema = await _schema(store)
        assert set(Base.metadata.tables) <= set(schema), set(Base.metadata.tables) - set(schema)
        for name, table in Base.metadata.tables.items():
            assert sorted(c.name for c in table.columns) == schema[name], name
        async with store.engine.connect() as conn:
            versions = list(await conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
        assert len(versions) == 1

        caplog.clear()
        caplog.set_level(logging.INFO, logger="alembic")
        await store.migrate()
        assert not [r for r in caplog.records if "Running upgrade" in r.getMessage()]
        assert await _schema(store) == schema
        async with store.engine.connect() as conn:
            assert list(await conn.scalars(sa.text("SELECT version_num FROM alembic_version"))) == versions
    finally:
        await store.close()


async def test_migration_keeps_data(store: Store) -> None:
    people = People(store)
    await people.seen(_seen())
    await store.migrate()
    assert (await people.user("aad-kari")) is not None


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_migrations_on_one_database(kind: str, new_database: NewDatabase) -> None:
    """Instances starting at once: the advisory lock (PostgreSQL) or the lock file (SQLite)
    lets one migrate and the others find the schema at head."""
    url = await new_database(kind)
    stores = [Store(url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.migrate() for s in stores))
        async with stores[0].engine.connect() as conn:
            versions = list(await conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
        assert len(versions) == 1
        assert set(Base.metadata.tables) <= set(await _schema(stores[1]))
    finally:
        for s in stores:
            await s.close()


async def test_healthy_and_dialect(store: Store, db_url: str) -> None:
    assert await store.healthy()
    assert store.dialect == ("sqlite" if db_url.startswith("sqlite") else "postgresql")


# -- reference numbers ------------------------------------------------------------------------


KARI = Actor(aad_id="aad-kari", name="Kari", activity_id="f:1")


@dataclass(frozen=True)
class _Post(Effect):
    kind: ClassVar[str] = "test.post"
    key: str
    ref: str = ""

    @property
    def idempotency_key(self) -> str:
        return self.key


async def _number(store: Store, prefix: str = "BM", year: int = 2026) -> str:
    async with store.unit_of_work(KARI) as uow:
        return await uow.next_reference(prefix, year)


async def test_next_number_counts_per_prefix_and_year(store: Store) -> None:
    assert [await _number(store) for _ in range(3)] == ["BM-2026-0001", "BM-2026-0002", "BM-2026-0003"]
    assert await _number(store, "K") == "K-2026-0001"
    assert await _number(store, "BM", 2027) == "BM-2027-0001"
    assert await _number(store) == "BM-2026-0004"


async def test_next_number_is_returned_when_the_transaction_fails(store: Store) -> None:
    assert await _number(store) == "BM-2026-0001"
    with pytest.raises(RuntimeError):
        async with store.unit_of_work(KARI) as uow:
            assert await uow.next_reference("BM", 2026) == "BM-2026-0002"
            raise RuntimeError("the user action failed")
    assert await _number(store) == "BM-2026-0002"  # no gap


async def test_next_number_has_no_duplicates_under_concurrency(store: Store) -> None:
    await _number(store)  # the year's counter exists
    numbers = await asyncio.gather(*(_number(store) for _ in range(20)))
    assert len(set(numbers)) == 20
    assert sorted(numbers) == [f"BM-2026-{n:04d}" for n in range(2, 22)]


async def test_first_number_of_a_year_under_concurrency(store: Store) -> None:
    """20 sessions ask for the first number of a new year at the same moment."""
    numbers = await asyncio.gather(*(_number(store, "BM", 2030) for _ in range(20)), return_exceptions=True)
    errors = [n for n in numbers if isinstance(n, BaseException)]
    assert not errors, f"{len(errors)} of 20 failed, e.g. {errors[0]!r}"
    assert sorted(numbers) == [f"BM-2030-{n:04d}" for n in range(1, 21)]  # type: ignore[type-var]


# -- SDK storage (conversation and user state) ---------------------------------------------


class Note(StoreItem):
    def __init__(self, text: str, count: int = 0) -> None:
        self.text = text
        self.count = count

    def store_item_to_json(self) -> dict[str, Any]:
        return {"text": self.text, "count": self.count}

    @staticmethod
    def from_json_to_store_item(json_data: Any) -> Note:
        return Note(json_data["text"], json_data.get("count", 0))


async def test_sql_storage_round_trip(store: Store) -> None:
    storage = SqlStorage(store)
    key = "msteams/conversations/a:1Xyz-æøå/" + "k" * 200
    assert await storage.read([key], target_cls=Note) == {}
    await storage.write({key: Note('første «hei» "x" {y} 🚀', 1), "other": Note("b")})
    got = await storage.read([key, "other", "missing"], target_cls=Note)
    assert set(got) == {key, "other"}
    assert (got[key].text, got[key].count) == ('første «hei» "x" {y} 🚀', 1)

    await storage.write({key: Note("second", 2)})  # overwrite, not a second row
    got = await storage.read([key], target_cls=Note)
    assert (got[key].text, got[key].count) == ("second", 2)
    async with store.session() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(BotState)) == 2

    await storage.delete([key, "never-written"])
    left = await storage.read([key, "other"], target_cls=Note)
    assert {k: v.store_item_to_json() for k, v in left.items()} == {"other": {"text": "b", "count": 0}}
    assert await storage.read([], target_cls=Note) == {}
    await storage.write({})
    await storage.delete([])
    with pytest.raises(ValueError):
        await storage.read(["other"])


def _turn(conversation: str = "a:kari-personal", user: str = "29:kari") -> TurnContext:
    activity = Activity(
        type="message",
        channel_id="msteams",  # type: ignore[arg-type]
        text="hei",
        from_property=ChannelAccount(id=user, name="Kari", aad_object_id="aad-kari"),
        recipient=ChannelAccount(id="28:bot"),
        conversation=ConversationAccount(id=conversation, conversation_type="personal"),
        service_url="http://127.0.0.1:1/",
    )
    return TurnContext(object(), activity)


async def _load_state(ctx: TurnContext, storage: SqlStorage) -> TurnState:
    # As AgentApplication does it (TurnState.load fills the instance and returns None).
    state = TurnState()
    await state.load(ctx, storage)
    return state


async def test_sdk_turn_state_survives_a_restart(db_url: str) -> None:
    first = Store(db_url)
    await first.migrate()
    try:
        storage = SqlStorage(first)
        ctx = _turn()
        state = await _load_state(ctx, storage)
        state.conversation.set_value("dialog", {"step": 2, "draft": "«Skolebuss» {x}"})  # type: ignore[arg-type]
        state.user.set_value("prefs", {"lang": "en"})  # type: ignore[arg-type]
        await state.save(ctx)
    finally:
        await first.close()

    second = Store(db_url)  # a new process on the same database
    await second.migrate()
    try:
        storage = SqlStorage(second)
        ctx = _turn()
        state = await _load_state(ctx, storage)
        assert state.conversation.get_value("dialog") == {"step": 2, "draft": "«Skolebuss» {x}"}
        assert state.user.get_value("prefs") == {"lang": "en"}
        # Another conversation has its own state.
        other = _turn("a:ola-personal", "29:ola")
        other_state = await _load_state(other, storage)
        assert other_state.conversation.get_value("dialog") is None

        # Deleting the conversation state removes it from the database.
        await state.conversation.delete(ctx)
        async with second.session() as session:
            keys = set(await session.scalars(sa.select(BotState.key)))
        assert keys == {"msteams/users/29:kari"}, keys
    finally:
        await second.close()


# -- people and conversation references --------------------------------------------------


def _seen(**over: Any) -> Seen:
    values: dict[str, Any] = {
        "aad_id": "aad-kari",
        "name": "Kari",
        "teams_user_id": "29:kari",
        "tenant_id": "tenant-1",
        "conversation_id": "a:kari-personal",
        "conversation_type": "personal",
        "service_url": "https://smba.trafficmanager.net/emea/",
        "channel_id": "msteams",
        "team_id": None,
        "reference": {"conversation": {"id": "a:kari-personal"}, "serviceUrl": "https://smba.trafficmanager.net/emea/"},
    }
    values.update(over)
    return Seen(**values)


async def _all(store: Store, table: Any) -> list[Any]:
    async with store.session() as session:
        return list(await session.scalars(sa.select(table)))


async def test_seen_upserts_user_and_reference(store: Store) -> None:
    people = People(store)
    assert await people.seen(_seen()) is None  # no language chosen yet
    users = await _all(store, User)
    first_seen, last_seen = users[0].first_seen, users[0].last_seen
    await asyncio.sleep(0.01)
    assert await people.seen(_seen(name="Kari Nordmann", service_url="https://smba.example/new/")) is None
    users = await _all(store, User)
    refs = await _all(store, ConversationRef)
    assert len(users) == 1 and len(refs) == 1
    user, ref = users[0], refs[0]
    assert user.name == "Kari Nordmann"
    assert user.first_seen == first_seen and user.last_seen > last_seen
    assert user.personal_conversation_id == "a:kari-personal"
    assert ref.service_url == "https://smba.example/new/" and ref.user_aad_id == "aad-kari"
    assert ref.installed is True
    assert (await people.personal_reference("aad-kari")).conversation_id == "a:kari-personal"  # type: ignore[union-attr]

    # A channel conversation: a reference without a personal owner; the user row stays one.
    await people.seen(_seen(conversation_id="19:chan@thread.tacv2", conversation_type="channel", team_id="team-1"))
    by_id = {r.conversation_id: r for r in await _all(store, ConversationRef)}
    assert by_id["19:chan@thread.tacv2"].user_aad_id is None and by_id["19:chan@thread.tacv2"].team_id == "team-1"
    assert len(await _all(store, User)) == 1
    assert (await people.user("aad-kari")).personal_conversation_id == "a:kari-personal"  # type: ignore[union-attr]

    # No AAD id (e.g. an anonymous test client): the reference is still kept, no user row.
    assert await people.seen(_seen(aad_id="", conversation_id="a:anon")) is None
    assert len(await _all(store, User)) == 1
    assert "a:anon" in {r.conversation_id for r in await _all(store, ConversationRef)}


async def test_seen_skips_an_unchanged_write_but_not_the_language(store: Store) -> None:
    people = People(store)
    await people.seen(_seen())
    last_seen = (await _all(store, User))[0].last_seen
    await people.set_language("aad-kari", "en")
    await asyncio.sleep(0.01)
    assert await people.seen(_seen()) == "en"  # the language is read every turn
    assert (await _all(store, User))[0].last_seen == last_seen  # nothing changed: no write

    # Blocked in between (a proactive send got 403): the next message marks the chat reachable.
    await people.mark_unreachable("aad-kari", "a:kari-personal")
    assert (await people.reference("a:kari-personal")).installed is False  # type: ignore[union-attr]
    await people.seen(_seen())
    assert (await people.reference("a:kari-personal")).installed is True  # type: ignore[union-attr]
    assert (await _all(store, User))[0].last_seen > last_seen

    # After the refresh interval the row is written again.
    fresh = People(store, seen_refresh_seconds=0)
    before = (await _all(store, User))[0].last_seen
    await asyncio.sleep(0.01)
    await fresh.seen(_seen())
    assert (await _all(store, User))[0].last_seen > before


async def test_seen_truncates_long_names(store: Store) -> None:
    people = People(store)
    await people.seen(_seen(name="N" * 1000))
    assert len((await people.user("aad-kari")).name) == 200  # type: ignore[union-attr]


async def test_language_is_remembered(store: Store) -> None:
    people = People(store)
    await people.seen(_seen())
    await people.set_language("aad-kari", "en")
    assert await people.language_of("aad-kari") == "en"
    assert await people.seen(_seen()) == "en"  # the next activity carries it
    await people.set_language("aad-kari", "nb")
    assert await people.seen(_seen()) == "nb"
    assert await people.language_of("nobody") is None


async def test_installations_are_appended_and_toggle_installed(store: Store) -> None:
    people = People(store)
    await people.seen(_seen())
    await people.record_installation("a:kari-personal", "add", "aad-kari")
    await people.record_installation("a:kari-personal", "remove", "aad-kari")
    rows = await _all(store, Installation)
    assert [(r.conversation_id, r.action, r.actor_aad_id) for r in rows] == [
        ("a:kari-personal", "add", "aad-kari"),
        ("a:kari-personal", "remove", "aad-kari"),
    ]
    assert (await people.reference("a:kari-personal")).installed is False  # type: ignore[union-attr]
    assert await people.personal_reference("aad-kari") is None  # not reachable while uninstalled

    await people.record_installation("a:kari-personal", "add", "aad-kari")
    assert (await people.reference("a:kari-personal")).installed is True  # type: ignore[union-attr]
    assert len(await _all(store, Installation)) == 3
    # A message after a reinstall also marks the reference installed.
    await people.record_installation("a:kari-personal", "remove", "aad-kari")
    await people.seen(_seen())
    assert (await people.reference("a:kari-personal")).installed is True  # type: ignore[union-attr]


# -- audit log and outbox ------------------------------------------------------------------


async def test_audit_entries_append(store: Store) -> None:
    for action in ("created", "approved"):
        async with store.unit_of_work(KARI) as uow:
            uow.audit(action, "needs_report", "BM-2026-0001", {"note": "«ok» {x}"})
    rows = sorted(await _all(store, AuditEntry), key=lambda r: r.id)
    assert [r.action for r in rows] == ["created", "approved"]
    assert rows[0].details == {"note": "«ok» {x}"} and rows[0].at.tzinfo is not None
    assert (rows[0].actor_aad_id, rows[0].actor_name, rows[0].activity_id) == ("aad-kari", "Kari", "f:1")
    assert rows[0].at <= rows[1].at


async def test_audit_is_rolled_back_with_the_action(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.unit_of_work(KARI) as uow:
            uow.audit("x", "e", "1")
            await uow.session.flush()
            raise RuntimeError("failed")
    assert await _all(store, AuditEntry) == []


async def test_enqueue_rejects_a_duplicate_idempotency_key(store: Store) -> None:
    async with store.unit_of_work(KARI) as uow:
        uow.emit(_Post("needs_report:BM-2026-0001:intake", "BM-2026-0001"))

    # The same key again in one transaction with other work: the whole transaction fails.
    with pytest.raises(IntegrityError):
        async with store.unit_of_work(KARI) as uow:
            uow.session.add(Counter(name="BM-2031", value=5))
            uow.emit(_Post("other-key"))
            uow.emit(_Post("needs_report:BM-2026-0001:intake", "again"))
            await uow.session.flush()
    rows = await _all(store, OutboxItem)
    assert [(r.idempotency_key, r.payload, r.status) for r in rows] == [
        (
            "needs_report:BM-2026-0001:intake",
            {"key": "needs_report:BM-2026-0001:intake", "ref": "BM-2026-0001"},
            "pending",
        )
    ]
    async with store.session() as session:
        assert await session.get(Counter, "BM-2031") is None

    # Two keys in one transaction that collide with each other.
    with pytest.raises(IntegrityError):
        async with store.unit_of_work(KARI) as uow:
            uow.emit(_Post("dup"))
            uow.emit(_Post("dup"))
    assert len(await _all(store, OutboxItem)) == 1


async def test_audit_hooks_add_their_effects_to_the_same_transaction(store: Store) -> None:
    """A hook sees every audit entry and its effects commit, or roll back, with the change."""
    seen: list[Audited] = []

    def mirror(entry: Audited) -> list[Effect]:
        seen.append(entry)
        return [_Post(f"mirror:{entry.entity}:{entry.entity_id}:{entry.action}", entry.entity_id)]

    store.audit_hooks.append(mirror)
    try:
        async with store.unit_of_work(KARI) as uow:
            uow.audit("needs_report.submitted", "needs_report", "BM-2026-0001", {"title": "Stoler"})
            uow.audit("contract.created", "contract", "AVT-1")
        # The same change audited again (a retried step): its effect is on its way already, so
        # neither a second row nor a failed transaction.
        async with store.unit_of_work(KARI) as uow:
            uow.audit("contract.created", "contract", "AVT-1")
            uow.audit("contract.created", "contract", "AVT-1")
        with pytest.raises(RuntimeError):
            async with store.unit_of_work(KARI) as uow:
                uow.audit("needs_report.withdrawn", "needs_report", "BM-2026-0001")
                raise RuntimeError("the action failed")
    finally:
        store.audit_hooks.remove(mirror)
    assert [(e.action, e.entity, e.entity_id, e.details) for e in seen] == [
        ("needs_report.submitted", "needs_report", "BM-2026-0001", {"title": "Stoler"}),
        ("contract.created", "contract", "AVT-1", {}),
        ("contract.created", "contract", "AVT-1", {}),
        ("contract.created", "contract", "AVT-1", {}),
        ("needs_report.withdrawn", "needs_report", "BM-2026-0001", {}),
    ]
    rows = await _all(store, OutboxItem)
    assert sorted(r.idempotency_key for r in rows) == [
        "mirror:contract:AVT-1:contract.created",
        "mirror:needs_report:BM-2026-0001:needs_report.submitted",
    ]
