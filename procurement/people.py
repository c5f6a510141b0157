"""Users, their language and the conversation references used for proactive messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from .db import ConversationRef, Installation, User, utcnow
from .store import Store


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


class People:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def seen(self, s: Seen) -> str | None:
        """Upsert sender and conversation reference; returns the user's chosen language."""
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
                update = {
                    k: v for k, v in user_values.items() if k not in ("aad_object_id", "first_seen")
                }
                if personal:
                    user_values["personal_conversation_id"] = s.conversation_id
                    update["personal_conversation_id"] = s.conversation_id
                    update["unreachable_reason"] = None
                await session.execute(
                    ins(User)
                    .values(**user_values)
                    .on_conflict_do_update(index_elements=["aad_object_id"], set_=update)
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
            if not s.aad_id:
                return None
            lang = await session.scalar(
                sa.select(User.language).where(User.aad_object_id == s.aad_id)
            )
            return lang

    async def set_language(self, aad_id: str, lang: str) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(User).where(User.aad_object_id == aad_id).values(language=lang)
            )

    async def language_of(self, aad_id: str) -> str | None:
        async with self.store.session() as session:
            return await session.scalar(
                sa.select(User.language).where(User.aad_object_id == aad_id)
            )

    async def record_installation(
        self, conversation_id: str, action: str, actor_aad_id: str
    ) -> None:
        async with self.store.session() as session:
            session.add(
                Installation(
                    conversation_id=conversation_id, action=action, actor_aad_id=actor_aad_id
                )
            )
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
