"""Users, their language and the conversation references used for proactive messages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.store.database import Store
from procurement.store.tables import ConversationRef, Installation, User, utcnow


@dataclass(frozen=True)
class Seen:
    """What one inbound activity tells us about its sender and conversation."""

    aad_id: str
    name: str
    teams_user_id: str
    tenant_id: str
    conversation_id: str
    conversation_type: str
    service_url: str
    channel_id: str
    team_id: str | None
    reference: dict[str, Any]


def _insert(session: AsyncSession) -> Any:
    bind = session.get_bind()
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


# A turn from the same person in the same conversation, with nothing changed, within this
# many seconds neither writes the user and reference rows again (that write took SQLite's
# write lock on every turn, docs/benchmarks.md) nor reads the language: it is remembered with
# the entry. A language changed through another instance reaches this one within the window.
SEEN_REFRESH_SECONDS = 60.0


class People:
    def __init__(self, store: Store, *, seen_refresh_seconds: float = SEEN_REFRESH_SECONDS) -> None:
        self.store = store
        self.seen_refresh_seconds = seen_refresh_seconds
        self._recorded: dict[tuple[str, str], tuple[float, tuple[Any, ...], str | None]] = {}

    def _forget(self, *, aad_id: str | None = None, conversation_id: str | None = None) -> None:
        for key in [k for k in self._recorded if k[0] == aad_id or k[1] == conversation_id]:
            del self._recorded[key]

    @staticmethod
    def _fingerprint(s: Seen) -> tuple[Any, ...]:
        """What the upsert writes, but the per-activity reference details."""
        return (s.name, s.teams_user_id, s.tenant_id, s.conversation_type, s.service_url, s.channel_id, s.team_id)

    def _recently_recorded(self, s: Seen) -> bool:
        entry = self._recorded.get((s.aad_id, s.conversation_id))
        return (
            entry is not None
            and entry[1] == self._fingerprint(s)
            and time.monotonic() - entry[0] < self.seen_refresh_seconds
        )

    def _remember(self, s: Seen, lang: str | None) -> None:
        if len(self._recorded) > 50_000:
            self._recorded.clear()
        self._recorded[(s.aad_id, s.conversation_id)] = (time.monotonic(), self._fingerprint(s), lang)

    async def seen(self, s: Seen) -> str | None:
        """Upsert sender and conversation reference; returns the user's chosen language."""
        if self._recently_recorded(s):
            return self._recorded[(s.aad_id, s.conversation_id)][2]
        now = utcnow()
        async with self.store.session() as session:
            ins = _insert(session)
            personal = s.conversation_type == "personal"
            if s.aad_id:
                user_values: dict[str, Any] = {
                    "aad_object_id": s.aad_id,
                    "name": s.name[:200],
                    "teams_user_id": s.teams_user_id[:200],
                    "tenant_id": s.tenant_id,
                    "last_seen": now,
                    "first_seen": now,
                }
                update = {k: v for k, v in user_values.items() if k not in ("aad_object_id", "first_seen")}
                if personal:
                    user_values["personal_conversation_id"] = s.conversation_id
                    update["personal_conversation_id"] = s.conversation_id
                    update["unreachable_reason"] = None
                await session.execute(
                    ins(User).values(**user_values).on_conflict_do_update(index_elements=["aad_object_id"], set_=update)
                )
            ref_values: dict[str, Any] = {
                "conversation_id": s.conversation_id,
                "conversation_type": s.conversation_type,
                "service_url": s.service_url,
                "channel_id": s.channel_id,
                "tenant_id": s.tenant_id,
                "team_id": s.team_id,
                "user_aad_id": s.aad_id if personal else None,
                "reference": s.reference,
                "installed": True,
                "updated_at": now,
            }
            await session.execute(
                ins(ConversationRef)
                .values(**ref_values)
                .on_conflict_do_update(
                    index_elements=["conversation_id"],
                    set_={k: v for k, v in ref_values.items() if k != "conversation_id"},
                )
            )
            lang = None
            if s.aad_id:
                lang = await session.scalar(sa.select(User.language).where(User.aad_object_id == s.aad_id))
        self._remember(s, lang)
        return lang

    async def set_language(self, aad_id: str, lang: str) -> None:
        for key, (at, fingerprint, _old) in list(self._recorded.items()):
            if key[0] == aad_id:
                self._recorded[key] = (at, fingerprint, lang)
        async with self.store.session() as session:
            await session.execute(sa.update(User).where(User.aad_object_id == aad_id).values(language=lang))

    async def language_of(self, aad_id: str) -> str | None:
        async with self.store.session() as session:
            return await session.scalar(sa.select(User.language).where(User.aad_object_id == aad_id))

    async def record_installation(self, conversation_id: str, action: str, actor_aad_id: str) -> None:
        self._forget(conversation_id=conversation_id)
        async with self.store.session() as session:
            session.add(Installation(conversation_id=conversation_id, action=action, actor_aad_id=actor_aad_id))
            await session.execute(
                sa.update(ConversationRef)
                .where(ConversationRef.conversation_id == conversation_id)
                .values(installed=action == "add", updated_at=utcnow())
            )

    async def reference(self, conversation_id: str) -> ConversationRef | None:
        async with self.store.session() as session:
            return await session.get(ConversationRef, conversation_id)

    async def personal_reference(self, aad_id: str) -> ConversationRef | None:
        async with self.store.session() as session:
            return await session.scalar(
                sa.select(ConversationRef)
                .where(
                    ConversationRef.user_aad_id == aad_id,
                    ConversationRef.conversation_type == "personal",
                    ConversationRef.installed.is_(True),
                )
                .order_by(ConversationRef.updated_at.desc())
                .limit(1)
            )

    async def user(self, aad_id: str) -> User | None:
        async with self.store.session() as session:
            return await session.get(User, aad_id)

    async def any_reference(self, conversation_type: str | None = None) -> ConversationRef | None:
        """A recent reference, for its service URL when reaching a chat we have not seen."""
        query = sa.select(ConversationRef).order_by(ConversationRef.updated_at.desc()).limit(1)
        if conversation_type:
            query = query.where(ConversationRef.conversation_type == conversation_type)
        async with self.store.session() as session:
            return await session.scalar(query)

    async def add_reference(
        self, conversation_id: str, service_url: str, tenant_id: str, aad_id: str, reference: dict[str, Any]
    ) -> None:
        async with self.store.session() as session:
            ins = _insert(session)
            values: dict[str, Any] = {
                "conversation_id": conversation_id,
                "conversation_type": "personal",
                "service_url": service_url,
                "channel_id": "msteams",
                "tenant_id": tenant_id,
                "user_aad_id": aad_id,
                "reference": reference,
                "installed": True,
                "updated_at": utcnow(),
            }
            await session.execute(ins(ConversationRef).values(**values).on_conflict_do_nothing())

    async def mark_unreachable(self, aad_id: str, conversation_id: str, reason: str = "blocked") -> None:
        # The next message from them must mark the chat reachable again at once.
        self._forget(aad_id=aad_id, conversation_id=conversation_id)
        async with self.store.session() as session:
            await session.execute(
                sa.update(ConversationRef)
                .where(ConversationRef.conversation_id == conversation_id)
                .values(installed=False, updated_at=utcnow())
            )
            await session.execute(
                sa.update(User).where(User.aad_object_id == aad_id).values(unreachable_reason=reason[:400])
            )

    async def teams_user_ids(self, aad_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Teams user ids (MRIs, "29:…") of the given people, for a card's refresh.userIds."""
        if not aad_ids:
            return ()
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(User.teams_user_id).where(User.aad_object_id.in_(aad_ids), User.teams_user_id != "")
            )
            return tuple(sorted(rows))
