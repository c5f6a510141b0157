"""Competition rooms: queued with the approval, provisioned step by step by the outbox, shown to
innkjøpere and the room's members, retried by an innkjøper, evaluated at the end.

Every user action and every recorded step is one unit of work: the change, its audit entry
(`competition.*`, entity "competition", the K-ref) and its effects commit together. The room
job (`bot/room_effects.py`) acts as the system and records each step right after it succeeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import SYSTEM, Actor, NotFound, Relation
from procurement.competitions.access import POLICY
from procurement.competitions.composition import Candidate
from procurement.competitions.effects import PostEvaluationSummary, ProvisionRoom, RefreshRoomStatus, SendEvaluation
from procurement.competitions.record import (
    IN_ROOM,
    EvaluationEntry,
    EvaluationResult,
    EvaluationSummary,
    RoomInfo,
    RoomMemberView,
    RoomView,
    Step,
    can_retry,
    failed_step,
    failure_code,
    initial_steps,
    next_step,
    reset_failed,
    room_status,
    summarise,
    validate_evaluation,
    with_done,
    with_failed,
)
from procurement.errors import TransientError
from procurement.needs.record import NeedsReport
from procurement.ports import MembersResult
from procurement.shared.records import from_attributes
from procurement.store.database import Store
from procurement.store.tables import (
    Competition,
    CompetitionEvaluation,
    CompetitionRoom,
    CompetitionRoomMember,
    utcnow,
)
from procurement.store.tables import NeedsReport as NeedsReportRow
from procurement.store.unit_of_work import UnitOfWork

RUN_LEASE = timedelta(minutes=5)


def _report(row: NeedsReportRow) -> NeedsReport:
    # As procurement.needs.service.to_record (which imports this module to queue rooms).
    return from_attributes(
        NeedsReport,
        row,
        data=dict(row.data or {}),
        assessment=dict(row.assessment or {}),
        edited_fields=tuple(row.edited_fields or ()),
        exchanges=(),
    )


@dataclass(frozen=True)
class RoomJob:
    """What the room job needs to do its next step, as recorded so far."""

    ref: str
    title: str
    report: NeedsReport
    steps: dict[str, str]
    results: dict[str, Any]
    owner_aad_id: str
    owner_name: str
    lang: str
    attempt: int
    files_deadline: datetime | None
    members: tuple[RoomMemberView, ...]


@dataclass(frozen=True)
class RetryOutcome:
    room: RoomView
    retried: bool


@dataclass(frozen=True)
class EvaluateOutcome:
    room: RoomView
    result: EvaluationResult
    recorded: bool = False
    repeated: bool = False
    summarised: bool = False


# -- called by other workflows inside their unit of work --------------------------------------------


async def queue_room(uow: UnitOfWork, competition: Competition, *, conversation_id: str, activity_id: str) -> None:
    """The room of a competition just created by an approval, queued in the same transaction.
    `conversation_id`/`activity_id`: the approver's card, updated in place as the steps complete."""
    session = uow.session
    await session.flush()  # the competition's id
    session.add(
        CompetitionRoom(
            competition_id=competition.id,
            ref=competition.ref,
            status="pending",
            steps=initial_steps(),
            results={},
            owner_aad_id=uow.actor.aad_id,
            requested_by_aad_id=uow.actor.aad_id,
            lang=uow.actor.lang if uow.actor.lang in ("nb", "en") else "nb",
            status_conversation_id=conversation_id or None,
            status_activity_id=activity_id or None,
        )
    )
    # No audit entry of its own: the room is part of "competition.created", audited by the caller.
    uow.emit(ProvisionRoom(competition.ref, 1))


async def request_evaluation(uow: UnitOfWork, ref: str) -> bool:
    """The competition's contract is signed: its room members get the evaluation card (once)."""
    result = await uow.session.execute(
        sa.update(CompetitionRoom)
        .where(CompetitionRoom.ref == ref, CompetitionRoom.evaluation_requested_at.is_(None))
        .values(evaluation_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False  # no room, or asked already
    uow.audit("competition.evaluation_requested", "competition", ref)
    uow.emit(SendEvaluation(ref))
    return True


# -- reading ---------------------------------------------------------------------------------------


async def _room_row(session: AsyncSession, ref: str, *, lock: bool = False) -> CompetitionRoom | None:
    query = sa.select(CompetitionRoom).where(CompetitionRoom.ref == ref)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def _member_views(session: AsyncSession, room_id: int) -> tuple[RoomMemberView, ...]:
    rows = await session.scalars(
        sa.select(CompetitionRoomMember)
        .where(CompetitionRoomMember.room_id == room_id)
        .order_by(CompetitionRoomMember.id)
        .execution_options(populate_existing=True)
    )
    return tuple(
        RoomMemberView(key=r.key, aad_id=r.aad_id, name=r.name, source=r.source, role=r.role, state=r.state, why=r.why)
        for r in rows
    )


async def _view(session: AsyncSession, room: CompetitionRoom) -> RoomView:
    found = (
        await session.execute(
            sa.select(Competition.title, NeedsReportRow.ref)
            .join(NeedsReportRow, NeedsReportRow.id == Competition.needs_report_id)
            .where(Competition.id == room.competition_id)
        )
    ).first()
    title, needs_ref = (found[0], found[1]) if found else ("", "")
    evaluations = await session.scalar(
        sa.select(sa.func.count())
        .select_from(CompetitionEvaluation)
        .where(CompetitionEvaluation.competition_id == room.competition_id)
    )
    results = dict(room.results or {})
    channel = results.get("channel") or {}
    document = results.get("strategy") or {}
    return RoomView(
        ref=room.ref,
        title=title,
        needs_ref=needs_ref,
        status=room_status(room.steps or {}),
        steps=dict(room.steps or {}) or initial_steps(),
        failed_step=room.failed_step,
        failure=room.failure,
        membership_type=room.membership_type,
        channel_name=room.channel_name or str(channel.get("display_name") or ""),
        channel_url=str(channel.get("web_url") or ""),
        document_name=str(document.get("name") or ""),
        document_url=str(document.get("web_url") or ""),
        attempt=room.attempt,
        members=await _member_views(session, room.id),
        owner_aad_id=room.owner_aad_id,
        evaluations=int(evaluations or 0),
        evaluation_requested=room.evaluation_requested_at is not None,
        evaluation_summarised_at=room.evaluation_summarised_at,
    )


def _relations(actor: Actor, view: RoomView) -> set[Relation]:
    return {Relation.ROOM_MEMBER} if actor.aad_id and actor.aad_id.lower() in view.member_ids else set()


class Competitions:
    def __init__(
        self, store: Store, *, clock: Callable[[], datetime] = utcnow, run_lease: timedelta = RUN_LEASE
    ) -> None:
        self.store = store
        self.clock = clock
        self.run_lease = run_lease

    # -- for other workflows and the outbox (acting as the system) ------------------------------

    async def load(self, ref: str) -> RoomView | None:
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            return await _view(session, room) if room is not None else None

    async def room(self, ref: str) -> RoomInfo | None:
        """The room's channel, files folder and members (None until its channel exists)."""
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None:
                return None
            view = await _view(session, room)
        results = dict(room.results or {})
        channel = results.get("channel") or {}
        if not channel.get("channel_id"):
            return None
        files = (results.get("folders") or {}).get("root") or {}
        return RoomInfo(
            ref=ref,
            team_id=str(channel.get("team_id") or ""),
            channel_id=str(channel.get("channel_id") or ""),
            web_url=str(channel.get("web_url") or ""),
            drive_id=str(files.get("drive_id") or ""),
            item_id=str(files.get("item_id") or ""),
            member_aad_ids=view.member_ids,
        )

    async def members(self, ref: str) -> set[str]:
        """The AAD ids of everyone in the room (empty for an unknown ref)."""
        view = await self.load(ref)
        return set(view.member_ids) if view is not None else set()

    # -- the room job ------------------------------------------------------------------------

    async def begin_run(self, ref: str, attempt: int) -> RoomJob | None:
        """The room's state for a run of attempt `attempt`, holding the room's lease; None when
        there is nothing to do (ready, failed until retried, or a later attempt superseded this
        one). Another runner holding the lease → `TransientError` (try again shortly)."""
        now = self.clock()
        async with self.store.unit_of_work(SYSTEM) as uow:
            session = uow.session
            room = await _room_row(session, ref)
            if room is None or room.attempt != attempt or next_step(room.steps or {}) is None:
                return None
            taken = await session.execute(
                sa.update(CompetitionRoom)
                .where(
                    CompetitionRoom.id == room.id,
                    sa.or_(CompetitionRoom.lease_until.is_(None), CompetitionRoom.lease_until < now),
                )
                .values(lease_until=now + self.run_lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise TransientError(f"room {ref} is being provisioned by another run", retry_after=30.0)
            return await self._job(session, room)

    async def _job(self, session: AsyncSession, room: CompetitionRoom) -> RoomJob:
        found = (
            await session.execute(
                sa.select(Competition, NeedsReportRow)
                .join(NeedsReportRow, NeedsReportRow.id == Competition.needs_report_id)
                .where(Competition.id == room.competition_id)
            )
        ).first()
        if found is None:
            raise NotFound(room.ref)
        competition, report_row = found
        return RoomJob(
            ref=room.ref,
            title=competition.title,
            report=_report(report_row),
            steps=dict(room.steps or {}),
            results=dict(room.results or {}),
            owner_aad_id=room.owner_aad_id,
            owner_name=report_row.decided_by_name or "",
            lang=room.lang,
            attempt=room.attempt,
            files_deadline=room.files_deadline,
            members=await _member_views(session, room.id),
        )

    async def end_run(self, ref: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(CompetitionRoom).where(CompetitionRoom.ref == ref).values(lease_until=None)
            )

    async def job(self, ref: str) -> RoomJob:
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None:
                raise NotFound(ref)
            return await self._job(session, room)

    async def complete_step(
        self, ref: str, step: Step, result: Mapping[str, Any], *, details: Mapping[str, Any] | None = None
    ) -> RoomJob:
        """Record a step that succeeded (its result is what the next steps and a resumed run use)."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            session = uow.session
            room = await _room_row(session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            now = self.clock()
            room.steps = with_done(room.steps or {}, step)
            room.results = {**dict(room.results or {}), step: dict(result)}
            room.version += 1
            room.updated_at = now
            if step == "channel":
                room.team_id = str(result.get("team_id") or "")[:200]
                room.channel_name = str(result.get("display_name") or "")[:100]
                room.membership_type = str(result.get("membership_type") or room.membership_type)[:16]
            uow.audit("competition.room_step", "competition", ref, {"step": step, **dict(details or {})})
            if step == "strategy":
                uow.audit("competition.strategy_drafted", "competition", ref, {"document": result.get("name")})
            if room_status(room.steps) == "ready":
                room.status = "ready"
                room.ready_at = now
                uow.audit("competition.room_ready", "competition", ref, {"attempt": room.attempt})
                uow.emit(RefreshRoomStatus(ref, room.version))
            return await self._job(session, room)

    async def fail_step(self, ref: str, step: Step, why: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            room = await _room_row(uow.session, ref, lock=True)
            if room is None:
                return
            code = failure_code(why)
            room.steps = with_failed(room.steps or {}, step)
            room.status = "failed"
            room.failed_step = step
            room.failure = code
            room.version += 1
            room.updated_at = self.clock()
            uow.audit("competition.room_failed", "competition", ref, {"step": step, "why": code})
            uow.emit(RefreshRoomStatus(ref, room.version))

    async def files_deadline(self, ref: str, wait: timedelta) -> datetime:
        """When the wait for the files folder ends: set by the first try, kept across reschedules."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            room = await _room_row(uow.session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            if room.files_deadline is None:
                room.files_deadline = self.clock() + wait
            return room.files_deadline

    async def save_members(self, ref: str, candidates: Sequence[Candidate]) -> tuple[RoomMemberView, ...]:
        """Everyone who belongs in the room, recorded before they are added (a resumed run sees
        who was added already; someone added keeps that state)."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            session = uow.session
            room = await _room_row(session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            existing = {
                r.key: r
                for r in await session.scalars(
                    sa.select(CompetitionRoomMember).where(CompetitionRoomMember.room_id == room.id)
                )
            }
            for c in candidates:
                row = existing.get(c.key)
                if row is None:
                    session.add(
                        CompetitionRoomMember(
                            room_id=room.id,
                            key=c.key[:200],
                            aad_id=c.aad_id,
                            name=c.name[:200],
                            source=c.source,
                            role=c.role,
                            state="pending" if c.resolved else "unresolved",
                            why=None if c.resolved else "unresolved",
                        )
                    )
                else:
                    row.role = "owner" if c.role == "owner" else row.role
                    row.name = row.name or c.name[:200]
            await session.flush()
            return await _member_views(session, room.id)

    async def record_members(self, ref: str, result: MembersResult) -> tuple[RoomMemberView, ...]:
        async with self.store.unit_of_work(SYSTEM) as uow:
            session = uow.session
            room = await _room_row(session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            states: dict[str, tuple[str, str | None]] = {a.lower(): ("added", None) for a in result.added}
            states.update({a.lower(): ("present", None) for a in result.present})
            states.update({p.aad_id.lower(): ("failed", p.why) for p in result.failed})
            rows = await session.scalars(
                sa.select(CompetitionRoomMember).where(CompetitionRoomMember.room_id == room.id)
            )
            for row in rows:
                if row.aad_id and row.aad_id.lower() in states:
                    row.state, row.why = states[row.aad_id.lower()]
            await session.flush()
            return await _member_views(session, room.id)

    async def record_welcome(self, ref: str, key: str, conversation_id: str, activity_id: str) -> None:
        """The welcome a member got in her personal chat, recorded right after the post."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            room = await _room_row(uow.session, ref)
            if room is None:
                return
            await uow.session.execute(
                sa.update(CompetitionRoomMember)
                .where(CompetitionRoomMember.room_id == room.id, CompetitionRoomMember.key == key)
                .values(
                    welcome_conversation_id=conversation_id[:400], welcome_activity_id=(activity_id or "sent")[:200]
                )
            )

    async def welcomed(self, ref: str) -> dict[str, str]:
        """Member key → the welcome's message id, for those who got it in their personal chat."""
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None:
                return {}
            rows = await session.execute(
                sa.select(CompetitionRoomMember.key, CompetitionRoomMember.welcome_activity_id).where(
                    CompetitionRoomMember.room_id == room.id, CompetitionRoomMember.welcome_activity_id.is_not(None)
                )
            )
            return {r.key: str(r.welcome_activity_id) for r in rows}

    async def record_partial(self, ref: str, step: Step, result: Mapping[str, Any]) -> None:
        """Part of a step's result, kept before the step is done (the welcome posted in the channel:
        a resumed run must not post it again)."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            room = await _room_row(uow.session, ref, lock=True)
            if room is None:
                return
            partial = dict((room.results or {}).get(f"{step}_partial") or {})
            partial.update(dict(result))
            room.results = {**dict(room.results or {}), f"{step}_partial": partial}

    async def status_message(self, ref: str) -> tuple[str, str] | None:
        """The approver's card (conversation, message id), when the approval gave one."""
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None or not (room.status_conversation_id and room.status_activity_id):
                return None
            return room.status_conversation_id, room.status_activity_id

    async def version(self, ref: str) -> int:
        async with self.store.session() as session:
            value = await session.scalar(sa.select(CompetitionRoom.version).where(CompetitionRoom.ref == ref))
            return int(value or 0)

    # -- people ------------------------------------------------------------------------------

    async def status(self, actor: Actor, ref: str) -> RoomView:
        """The room for innkjøpere and its members; `NotFound` for everyone else alike."""
        view = await self.load(ref)
        if view is None or not POLICY.granted(actor, "view_room", _relations(actor, view)):
            raise NotFound(ref)
        return view

    async def retry(self, actor: Actor, ref: str) -> RetryOutcome:
        """Run the failed step again (innkjøpere): a new job, from the failed step on."""
        POLICY.check(actor, "retry_room")
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            room = await _room_row(session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            if not can_retry(room.steps or {}):
                return RetryOutcome(await _view(session, room), False)
            step = failed_step(room.steps or {})
            attempt = room.attempt
            # Compare-and-set on the attempt: a double press retries once (SQLite ignores FOR UPDATE).
            changed = await session.execute(
                sa.update(CompetitionRoom)
                .where(CompetitionRoom.id == room.id, CompetitionRoom.attempt == attempt)
                .values(
                    attempt=attempt + 1,
                    steps=reset_failed(room.steps or {}),
                    status="pending",
                    failed_step=None,
                    failure=None,
                    files_deadline=None if step == "folders" else room.files_deadline,
                    version=room.version + 1,
                    updated_at=self.clock(),
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                room = await _room_row(session, ref)
                assert room is not None
                return RetryOutcome(await _view(session, room), False)
            uow.audit("competition.room_retried", "competition", ref, {"step": step, "attempt": attempt + 1})
            uow.emit(ProvisionRoom(ref, attempt + 1))
            uow.emit(RefreshRoomStatus(ref, room.version + 1))
            room = await _room_row(session, ref)
            assert room is not None
            return RetryOutcome(await _view(session, room), True)

    # -- evaluation -------------------------------------------------------------------------------

    async def evaluation_recipients(self, ref: str) -> list[tuple[str, str, str | None]]:
        """(key, AAD id, evaluation message id) of everyone in the room."""
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None:
                return []
            rows = await session.scalars(
                sa.select(CompetitionRoomMember)
                .where(CompetitionRoomMember.room_id == room.id, CompetitionRoomMember.aad_id.is_not(None))
                .order_by(CompetitionRoomMember.id)
            )
            return [
                (r.key, str(r.aad_id), r.evaluation_activity_id)
                for r in rows
                if r.state in IN_ROOM or r.source == "owner"
            ]

    async def record_evaluation_sent(self, ref: str, key: str, activity_id: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            room = await _room_row(uow.session, ref)
            if room is None:
                return
            await uow.session.execute(
                sa.update(CompetitionRoomMember)
                .where(CompetitionRoomMember.room_id == room.id, CompetitionRoomMember.key == key)
                .values(evaluation_activity_id=(activity_id or "sent")[:200])
            )

    async def my_evaluation(self, actor: Actor, ref: str) -> tuple[RoomView, dict[str, str] | None]:
        """The card for a member: the room, and her answers when she gave them."""
        view = await self.load(ref)
        if view is None or not POLICY.granted(actor, "evaluate", _relations(actor, view)):
            raise NotFound(ref)
        async with self.store.session() as session:
            row = await session.scalar(
                sa.select(CompetitionEvaluation)
                .join(Competition, Competition.id == CompetitionEvaluation.competition_id)
                .where(Competition.ref == ref, CompetitionEvaluation.aad_id == actor.aad_id.lower())
            )
            return view, (dict(row.answers) if row is not None else None)

    async def evaluate(self, actor: Actor, ref: str, raw: Mapping[str, Any]) -> EvaluateOutcome:
        """A member's answers: stored with the competition (a second send changes them); when
        everyone in the room has answered, the summary goes to Innkjøpsseksjonen."""
        view = await self.load(ref)
        if view is None or not POLICY.granted(actor, "evaluate", _relations(actor, view)):
            raise NotFound(ref)
        result = validate_evaluation(raw)
        if result.errors or result.answers is None:
            return EvaluateOutcome(view, result)
        answers = dataclasses.asdict(result.answers)
        aad_id = actor.aad_id.lower()
        try:
            async with self.store.unit_of_work(actor) as uow:
                session = uow.session
                room = await _room_row(session, ref, lock=True)
                if room is None:
                    raise NotFound(ref)
                row = await session.scalar(
                    sa.select(CompetitionEvaluation).where(
                        CompetitionEvaluation.competition_id == room.competition_id,
                        CompetitionEvaluation.aad_id == aad_id,
                    )
                )
                if row is not None and dict(row.answers) == answers:
                    return EvaluateOutcome(await _view(session, room), result, repeated=True)
                if row is None:
                    session.add(
                        CompetitionEvaluation(
                            competition_id=room.competition_id, aad_id=aad_id, name=actor.name[:200], answers=answers
                        )
                    )
                else:
                    row.answers = answers
                    row.submitted_at = self.clock()
                await session.flush()
                uow.audit("competition.evaluation_answered", "competition", ref, answers)
                summarised = await self._summarise_when_complete(uow, room)
                return EvaluateOutcome(await _view(session, room), result, recorded=True, summarised=summarised)
        except IntegrityError:
            # A double press at the same moment: the first answer stands.
            again = await self.load(ref)
            assert again is not None
            return EvaluateOutcome(again, result, repeated=True)

    async def _summarise_when_complete(self, uow: UnitOfWork, room: CompetitionRoom) -> bool:
        if room.evaluation_summarised_at is not None:
            return False
        invited = {aad for _key, aad, _sent in await self._recipients_in(uow.session, room)}
        answered = set(
            await uow.session.scalars(
                sa.select(CompetitionEvaluation.aad_id).where(
                    CompetitionEvaluation.competition_id == room.competition_id
                )
            )
        )
        if not invited or not invited <= answered:
            return False
        return await self._summarise(uow, room, len(answered))

    async def _recipients_in(self, session: AsyncSession, room: CompetitionRoom) -> list[tuple[str, str, str | None]]:
        rows = await session.scalars(
            sa.select(CompetitionRoomMember).where(
                CompetitionRoomMember.room_id == room.id, CompetitionRoomMember.aad_id.is_not(None)
            )
        )
        return [(r.key, str(r.aad_id).lower(), r.evaluation_activity_id) for r in rows if r.state in IN_ROOM]

    async def _summarise(self, uow: UnitOfWork, room: CompetitionRoom, count: int) -> bool:
        changed = await uow.session.execute(
            sa.update(CompetitionRoom)
            .where(CompetitionRoom.id == room.id, CompetitionRoom.evaluation_summarised_at.is_(None))
            .values(evaluation_summarised_at=self.clock())
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        uow.audit("competition.evaluation_summarised", "competition", room.ref, {"answers": count})
        uow.emit(PostEvaluationSummary(room.ref))
        return True

    async def summarise_now(self, actor: Actor, ref: str) -> bool:
        """An innkjøper wants the summary before everyone has answered."""
        POLICY.check(actor, "evaluation_summary")
        async with self.store.unit_of_work(actor) as uow:
            room = await _room_row(uow.session, ref, lock=True)
            if room is None:
                raise NotFound(ref)
            count = await uow.session.scalar(
                sa.select(sa.func.count())
                .select_from(CompetitionEvaluation)
                .where(CompetitionEvaluation.competition_id == room.competition_id)
            )
            if not count:
                return False
            return await self._summarise(uow, room, int(count))

    async def summary(self, ref: str) -> tuple[RoomView, EvaluationSummary] | None:
        async with self.store.session() as session:
            room = await _room_row(session, ref)
            if room is None:
                return None
            view = await _view(session, room)
            rows = await session.scalars(
                sa.select(CompetitionEvaluation).where(CompetitionEvaluation.competition_id == room.competition_id)
            )
            entries = [EvaluationEntry(r.name, dict(r.answers), r.submitted_at) for r in rows]
            invited = len(await self._recipients_in(session, room))
        return view, summarise(entries, invited)

    async def evaluation_summary(self, actor: Actor, ref: str) -> tuple[RoomView, EvaluationSummary]:
        POLICY.check(actor, "evaluation_summary")
        found = await self.summary(ref)
        if found is None:
            raise NotFound(ref)
        return found
