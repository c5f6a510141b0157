"""Proactive messages: send or update a card in a stored conversation, within Teams' limits.

The Connector's answers in the one error vocabulary (`procurement.errors`): 429 and
412/502/503/504 or a network error → `TransientError` (with the Retry-After); 403 → the
user blocked the bot, 404 → the app was removed (`Unreachable`); 401 and other 4xx →
`PermanentError`. No stored conversation → `Unreachable("no_reference")`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from microsoft_agents.activity import Activity, ActivityTypes, Attachment, ConversationReference
from microsoft_agents.hosting.core import ChannelServiceAdapter, TurnContext
from microsoft_agents.hosting.core.authorization import ClaimsIdentity

from bot.conversations import People
from procurement.errors import PermanentError, TransientError, Unreachable
from procurement.ports import ChatInstaller

from .agent import card_attachment
from .rate_limit import SendLimiter

log = logging.getLogger(__name__)

RETRYABLE = {412, 429, 502, 503, 504}


class ProactiveSender:
    def __init__(
        self,
        adapter: ChannelServiceAdapter,
        people: People,
        *,
        app_id: str,
        local_mode: bool,
        limiter: SendLimiter | None = None,
        installer: ChatInstaller | None = None,
    ) -> None:
        self.adapter = adapter
        self.people = people
        self.app_id = app_id
        self.local_mode = local_mode
        self.limiter = limiter or SendLimiter()
        self.installer = installer

    async def _continue(self, reference: dict[str, Any], work: Any) -> Any:
        conv_ref = ConversationReference.model_validate(reference)
        continuation = conv_ref.get_continuation_activity()
        result: dict[str, Any] = {}

        async def callback(context: TurnContext) -> None:
            # The SDK hands callback errors to on_turn_error and returns normally; keep the
            # error so the outbox sees the 429/403 (and no error card goes to the user).
            try:
                result["value"] = await work(context)
            except Exception as err:
                result["error"] = err

        try:
            if self.local_mode:
                # Anonymous local mode: empty claims, or the SDK tries MSAL and fails.
                await self.adapter.continue_conversation_with_claims(ClaimsIdentity({}), continuation, callback)
            else:
                await self.adapter.continue_conversation(self.app_id, continuation, callback)
            if "error" in result:
                raise result["error"]
        except aiohttp.ClientResponseError as err:
            what = f"connector answered {err.status}"
            if err.status in RETRYABLE:
                raise TransientError(what, _retry_after(err), status=err.status) from err
            if err.status == 403:
                raise Unreachable(what, why="blocked", status=403) from err
            if err.status == 404:
                raise Unreachable(what, why="not_installed", status=404) from err
            raise PermanentError(what, status=err.status) from err
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise TransientError(f"connector unreachable: {type(err).__name__}") from err
        return result.get("value")

    async def _reference(self, conversation_id: str, channel: bool) -> dict[str, Any]:
        ref = await self.people.reference(conversation_id)
        if ref is not None and ref.installed:
            return ref.reference
        if channel and ref is None:
            # A team channel we have not seen a message in: Teams accepts posts to a channel
            # by its id, through the service URL of the same tenant.
            template = await self.people.any_reference(conversation_type="channel") or await self.people.any_reference()
            if template is not None:
                reference = dict(template.reference)
                reference["conversation"] = {
                    "id": conversation_id,
                    "conversationType": "channel",
                    "isGroup": True,
                    "tenantId": template.tenant_id,
                }
                reference.pop("user", None)
                return reference
        raise Unreachable(f"no usable reference for conversation {conversation_id}", why="no_reference")

    async def send_card(self, conversation_id: str, card: dict[str, Any], *, channel: bool = False) -> str:
        """Post a card in a conversation; returns the new message id."""
        reference = await self._reference(conversation_id, channel)
        await self.limiter.acquire(conversation_id)

        async def work(context: TurnContext) -> str:
            response = await context.send_activity(
                Activity(type=ActivityTypes.message, attachments=[card_attachment(card)])
            )
            return str(getattr(response, "id", "") or "")

        return str(await self._continue(reference, work))

    async def update_card(self, conversation_id: str, activity_id: str, card: dict[str, Any]) -> None:
        reference = await self._reference(conversation_id, channel=True)
        await self.limiter.acquire(conversation_id)

        async def work(context: TurnContext) -> None:
            await context.update_activity(
                Activity(
                    type=ActivityTypes.message,
                    id=activity_id,
                    conversation=context.activity.conversation,
                    attachments=[card_attachment(card)],
                )
            )

        await self._continue(reference, work)

    async def personal_conversation(self, aad_id: str) -> str:
        """The user's personal chat with the bot; installs the app for them if needed."""
        ref = await self.people.personal_reference(aad_id)
        if ref is not None:
            return ref.conversation_id
        if self.installer is None:
            raise Unreachable("no personal chat with the user and no Graph installer", why="not_installed")
        chat_id = await self.installer.ensure_personal_chat(aad_id)
        template = await self.people.any_reference()
        if template is None:
            raise Unreachable("no known service URL to reach the installed chat", why="no_reference")
        reference = dict(template.reference)
        reference["conversation"] = {
            "id": chat_id,
            "conversationType": "personal",
            "tenantId": template.tenant_id,
        }
        # The Teams user id (29:…) is not known until the user writes; posting to a chat needs
        # only the conversation, and the SDK refuses an empty user id.
        reference.pop("user", None)
        await self.people.add_reference(chat_id, template.service_url, template.tenant_id, aad_id, reference)
        return chat_id

    async def send_to_user(self, aad_id: str, card: dict[str, Any]) -> tuple[str, str]:
        conversation_id = await self.personal_conversation(aad_id)
        try:
            activity_id = await self.send_card(conversation_id, card)
        except Unreachable as gone:
            await self.people.mark_unreachable(aad_id, conversation_id, gone.why)
            raise
        return conversation_id, activity_id

    async def send_attachment_to_user(self, aad_id: str, attachment: Attachment) -> tuple[str, str]:
        """A Teams file card (consent or info, not an Adaptive Card) in the user's personal chat."""
        conversation_id = await self.personal_conversation(aad_id)

        async def work(context: TurnContext) -> str:
            response = await context.send_activity(Activity(type=ActivityTypes.message, attachments=[attachment]))
            return str(getattr(response, "id", "") or "")

        try:
            reference = await self._reference(conversation_id, channel=False)
            await self.limiter.acquire(conversation_id)
            activity_id = str(await self._continue(reference, work))
        except Unreachable as gone:
            await self.people.mark_unreachable(aad_id, conversation_id, gone.why)
            raise
        return conversation_id, activity_id


def _retry_after(err: aiohttp.ClientResponseError) -> float | None:
    raw = err.headers.get("Retry-After") if err.headers else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
