"""Outbox handlers of competition rooms: the provisioning job, the approver's card updated in place,
the welcome, the evaluation cards and their summary.

The job (`ProvisionRoom`) is one outbox effect that does the next incomplete steps, recording each
one in the database right after it succeeds (`Competitions.complete_step`): a crash after a step
resumes after it, a crash inside one repeats it, and every step looks up before it creates (the
`RoomProvisioner` contract), so nothing is made twice. A `TransientError` reschedules the row,
except that the files folder is waited for only until the deadline stored with the room (about
15 minutes); then, and on a `PermanentError`, the step is marked failed with a reason code and
the status card offers a retry (a new effect). Posts record their message ids before the next
post, so a retried welcome never reaches anyone twice.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from dialogs import competition_room as cr_dialog
from dialogs import needs_report as nr_dialog
from dialogs.services import Services
from procurement.competitions.composition import asks_for_representatives, compose_room, faggruppe_names
from procurement.competitions.effects import PostEvaluationSummary, ProvisionRoom, RefreshRoomStatus, SendEvaluation
from procurement.competitions.record import TAB_NAME, RoomView, Step, next_step
from procurement.competitions.service import RoomJob
from procurement.competitions.strategy import StrategyError, StrategyTemplateError, build_strategy, render_for
from procurement.errors import IntegrationError, PermanentError, TransientError, Unreachable
from procurement.ports import (
    ROOM_FOLDERS,
    MembershipType,
    Person,
    RoomChannel,
    RoomFile,
    RoomFolder,
    RoomMember,
    RoomProvisioner,
    competition_channel_name,
)
from procurement.store.outbox import Handlers, SentMessages
from procurement.store.tables import utcnow

from .proactive import ProactiveSender

log = logging.getLogger(__name__)

FILES_FOLDER_WAIT = timedelta(minutes=15)


class StepFailed(Exception):
    """A step that must not be tried again by itself (a person must act): its reason code."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _why(err: PermanentError) -> str:
    if err.code == "membershipType":
        return "channel_conflict"
    if err.why in ("permission_missing", "sign_in_failed"):
        return err.why
    return "failed"


class RoomEffects:
    def __init__(
        self,
        services: Services,
        sender: ProactiveSender,
        provisioner: RoomProvisioner,
        *,
        team_id: str,
        membership_type: MembershipType = "private",
        welcome_channel_id: str = "",
        bot_in_private_channels: bool = False,
        representatives: tuple[str, ...] = (),
        intake_channel_id: str = "",
        files_folder_wait: timedelta = FILES_FOLDER_WAIT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.s = services
        self.sender = sender
        self.rooms = provisioner
        self.team_id = team_id
        self.membership_type: MembershipType = membership_type
        self.welcome_channel_id = welcome_channel_id
        self.bot_in_private_channels = bot_in_private_channels
        self.representatives = representatives
        self.intake_channel_id = intake_channel_id
        self.files_folder_wait = files_folder_wait
        self.clock = clock
        self.sent = SentMessages(services.store)
        # Called after each recorded step (tests use it to stop the job there, as a crash would).
        self.after_step: Callable[[Step], Awaitable[None]] | None = None

    def handlers(self) -> Handlers:
        return {
            ProvisionRoom: self.provision,
            RefreshRoomStatus: self.refresh_status,
            SendEvaluation: self.send_evaluation,
            PostEvaluationSummary: self.post_summary,
        }

    # -- the job ---------------------------------------------------------------------------------

    async def provision(self, effect: ProvisionRoom) -> None:
        comps = self.s.competitions
        job = await comps.begin_run(effect.ref, effect.attempt)
        if job is None:
            return  # ready, failed until someone retries, or superseded by a retry
        try:
            await self.show_status(job.ref)
            while (step := next_step(job.steps)) is not None:
                try:
                    result, details = await self._run(step, job)
                except StepFailed as failed:
                    await comps.fail_step(job.ref, step, failed.why)
                    return
                except PermanentError as err:
                    log.error("room %s: step %s failed for good (%s): %s", job.ref, step, err.why, err.reason)
                    await comps.fail_step(job.ref, step, _why(err))
                    return
                job = await comps.complete_step(job.ref, step, result, details=details)
                if self.after_step is not None:
                    await self.after_step(step)
                await self.show_status(job.ref)
        finally:
            await comps.end_run(effect.ref)

    async def _run(self, step: Step, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        run = {
            "channel": self._channel,
            "members": self._members,
            "folders": self._folders,
            "strategy": self._strategy,
            "tab": self._tab,
            "welcome": self._welcome,
        }[step]
        return await run(job)

    async def _channel(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.team_id:
            log.error("room %s: ROOMS_TEAM_ID (or PROCUREMENT_TEAM_ID) is not set", job.ref)
            raise StepFailed("not_configured")
        name = competition_channel_name(job.ref, job.title)
        description = f"Konkurranse {job.ref}: {job.title}"[:1000]
        try:
            channel = await self.rooms.ensure_channel(
                self.team_id, name, description, job.owner_aad_id, self.membership_type
            )
        except PermanentError as err:
            if "can't join team" in err.reason:
                raise StepFailed("owner_not_in_team") from err
            raise
        return dataclasses.asdict(channel), {"channel": channel.display_name, "membershipType": channel.membership_type}

    async def _members(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        channel = RoomChannel(**job.results["channel"])
        report = job.report
        candidates = await compose_room(
            owner=Person(job.owner_aad_id, job.owner_name),
            submitter=Person(report.submitter_aad_id, report.submitter_name),
            data=report.data,
            directory=self.s.directory,
            representatives=self.representatives,
            include_representatives=asks_for_representatives([report.decision_note or ""]),
        )
        members = await self.s.competitions.save_members(job.ref, candidates)
        wanted = [RoomMember(m.aad_id, "owner" if m.role == "owner" else "member") for m in members if m.aad_id]
        result = await self.rooms.ensure_members(channel, wanted)
        await self.s.competitions.record_members(job.ref, result)
        unresolved = [m.name for m in members if not m.aad_id]
        summary = {
            "added": list(result.added),
            "present": list(result.present),
            "failed": [dataclasses.asdict(p) for p in result.failed],
            "unresolved": unresolved,
            "faggruppe": faggruppe_names(candidates),
        }
        return summary, {"added": len(result.added), "failed": len(result.failed), "unresolved": len(unresolved)}

    async def _folders(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        channel = RoomChannel(**job.results["channel"])
        deadline = await self.s.competitions.files_deadline(job.ref, self.files_folder_wait)
        try:
            root = await self.rooms.files_folder(channel)
        except TransientError:
            if self.clock() >= deadline:
                raise StepFailed("files_folder_timeout") from None
            raise  # the outbox tries again later; the deadline stays
        folders = await self.rooms.ensure_folders(root, ROOM_FOLDERS)
        result = {"root": dataclasses.asdict(root), "folders": [dataclasses.asdict(f) for f in folders]}
        return result, {"folders": len(folders)}

    async def _strategy(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        folders = [RoomFolder(**f) for f in job.results["folders"]["folders"]]
        faggruppe = list((job.results.get("members") or {}).get("faggruppe") or [])
        try:
            content = build_strategy(
                job.report,
                competition_ref=job.ref,
                today=self.s.today(),
                lang=job.lang,
                faggruppe=faggruppe or None,
            )
            name, document = render_for(content)
        except (StrategyError, StrategyTemplateError) as err:
            log.error("room %s: the strategy could not be drafted: %s", job.ref, err)
            raise StepFailed("strategy_failed") from err
        uploaded = await self.rooms.upload_file(folders[0], name, document)
        return dataclasses.asdict(uploaded), {"document": uploaded.name}

    async def _tab(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        channel = RoomChannel(**job.results["channel"])
        document = RoomFile(**job.results["strategy"])
        tab = await self.rooms.ensure_tab(channel, document, TAB_NAME.get(job.lang, TAB_NAME["nb"]))
        return dataclasses.asdict(tab), {"tab": tab.display_name}

    def _welcome_channel(self, channel: RoomChannel) -> str | None:
        """Where the welcome is posted for everyone, when the app can post there."""
        if self.sender.local_mode:
            return self.welcome_channel_id or None  # the Playground's channel for rooms
        if channel.membership_type == "standard" or self.bot_in_private_channels:
            return channel.channel_id
        return None  # bots in private channels are a preview: each member's personal chat instead

    async def _welcome(self, job: RoomJob) -> tuple[dict[str, Any], dict[str, Any]]:
        channel = RoomChannel(**job.results["channel"])
        view = await self.s.competitions.load(job.ref)
        assert view is not None
        faggruppe = [m.name for m in view.members if m.source in ("faggruppe", "representative") and m.in_room]
        partial = dict(job.results.get("welcome_partial") or {})
        target = self._welcome_channel(channel)
        if target and partial.get("channel_activity_id"):
            return {"where": "channel", "conversation_id": target, **partial}, {"where": "channel"}
        if target:
            card = cr_dialog.welcome_card(
                view, job.lang, owner_name=job.owner_name, faggruppe=faggruppe, personal=False
            )
            try:
                activity_id = await self.sender.send_card(target, card, channel=True)
            except (Unreachable, PermanentError) as err:
                log.warning(
                    "room %s: the welcome could not be posted in %s (%s); personal chats instead",
                    job.ref,
                    target,
                    err.why,
                )
            else:
                await self.s.competitions.record_partial(job.ref, "welcome", {"channel_activity_id": activity_id})
                return {"where": "channel", "conversation_id": target, "channel_activity_id": activity_id}, {
                    "where": "channel"
                }
        return await self._welcome_personally(job, view, faggruppe)

    async def _welcome_personally(
        self, job: RoomJob, view: RoomView, faggruppe: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        done = await self.s.competitions.welcomed(job.ref)
        sent, unreachable = 0, []
        for member in view.members:
            if not member.aad_id or not (member.in_room or member.source == "owner") or member.key in done:
                continue
            lang = await self.s.people.language_of(member.aad_id) or job.lang
            card = cr_dialog.welcome_card(view, lang, owner_name=job.owner_name, faggruppe=faggruppe, personal=True)
            try:
                conversation_id, activity_id = await self.sender.send_to_user(member.aad_id, card)
            except Unreachable as gone:
                log.warning("room %s: %s can't be reached for the welcome (%s)", job.ref, member.aad_id, gone.why)
                unreachable.append(member.name or member.aad_id)
                continue
            await self.s.competitions.record_welcome(job.ref, member.key, conversation_id, activity_id)
            sent += 1
        result = {"where": "personal", "sent": sent + len(done), "unreachable": unreachable}
        return result, {"where": "personal", "sent": sent + len(done)}

    # -- the approver's card -------------------------------------------------------------------

    async def show_status(self, ref: str) -> None:
        """The approver's card (the intake card) with the room's state: best effort inside the job,
        whose last state is drawn again by `RefreshRoomStatus` (retried)."""
        try:
            await self._draw_status(ref)
        except IntegrationError as err:
            log.info("room %s: status card not updated now (%s); the outbox draws it later", ref, err.summary())

    async def refresh_status(self, effect: RefreshRoomStatus) -> None:
        await self._draw_status(effect.ref)

    async def _draw_status(self, ref: str) -> None:
        where = await self.s.competitions.status_message(ref)
        view = await self.s.competitions.load(ref)
        if where is None or view is None or not view.needs_ref:
            return
        report = await self.s.needs.load(view.needs_ref)
        if report is None:
            return
        lang = self.s.default_language  # the intake card is shared by the whole section
        ids = await self.s.people.teams_user_ids(self.s.procurement_user_ids)
        card = nr_dialog.intake_card(report, lang, refresh_user_ids=ids)
        await self.sender.update_card(where[0], where[1], cr_dialog.with_room_status(card, view, lang))

    # -- the evaluation -----------------------------------------------------------------------------

    async def send_evaluation(self, effect: SendEvaluation) -> None:
        view = await self.s.competitions.load(effect.ref)
        if view is None:
            return
        for key, aad_id, sent in await self.s.competitions.evaluation_recipients(effect.ref):
            if sent:
                continue  # delivered by an earlier try of this row
            lang = await self.s.people.language_of(aad_id) or self.s.default_language
            try:
                _, activity_id = await self.sender.send_to_user(aad_id, cr_dialog.evaluation_card(view, lang))
            except Unreachable as gone:
                log.warning("evaluation %s: %s can't be reached (%s)", effect.ref, aad_id, gone.why)
                continue
            await self.s.competitions.record_evaluation_sent(effect.ref, key, activity_id)

    async def post_summary(self, effect: PostEvaluationSummary) -> None:
        if await self.sent.get(effect):
            return
        found = await self.s.competitions.summary(effect.ref)
        if found is None:
            return
        if not self.intake_channel_id:
            raise TransientError("no intake channel configured for the evaluation summary", retry_after=600)
        view, summary = found
        card = cr_dialog.summary_card(view, summary, self.s.default_language, can_send=False)
        activity_id = await self.sender.send_card(self.intake_channel_id, card, channel=True)
        await self.sent.record(effect, activity_id)
