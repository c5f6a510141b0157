"""The Agents SDK application: one SDK route per activity kind, dispatching to `Router`.

Every turn: ignore foreign tenants, record the sender and conversation (for proactive
messages later), resolve the actor on the server, then run the matching route. Failures
become a friendly Norwegian card with a reference id; the details go to the log only.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    InvokeResponse,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    ChannelServiceAdapter,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.app import ApplicationOptions
from microsoft_agents.hosting.core.authorization import Connections
from microsoft_agents.hosting.core.storage import Storage

from bot.conversations import Seen
from cards.render import render_card
from cards.strings import text
from dialogs import home
from dialogs.base import Reply, as_dict
from dialogs.services import Services
from procurement.access import Actor, ConversationType, NotAllowed, NotFound, Role

from .access import RoleResolver
from .router import Router

log = logging.getLogger(__name__)

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_TEXT = 10_000
ACTOR_KEY = "innkjop.actor"


def _grouped(n: int) -> str:
    """20000 → "20 000" (grouped as people read a count, the same in nb and en)."""
    return f"{n:,}".replace(",", " ")


def card_attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=CARD_TYPE, content=card)


def card_activity(card: dict[str, Any], **fields: Any) -> Activity:
    return Activity(type=ActivityTypes.message, attachments=[card_attachment(card)], **fields)


def _channel_data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    if data is None:
        return {}
    if isinstance(data, dict):
        return data
    dumped = data.model_dump(by_alias=True, exclude_none=True) if hasattr(data, "model_dump") else {}
    return dumped if isinstance(dumped, dict) else {}


def tenant_of(activity: Activity) -> str:
    conv = activity.conversation
    tenant = getattr(conv, "tenant_id", None) if conv else None
    if not tenant:
        tenant = (_channel_data(activity).get("tenant") or {}).get("id")
    return str(tenant or "").lower()


def seen_from(activity: Activity) -> Seen:
    sender = activity.from_property
    conv = activity.conversation
    team = (_channel_data(activity).get("team") or {}).get("id")
    ref = activity.get_conversation_reference().model_dump(mode="json", by_alias=True, exclude_none=True)
    return Seen(
        aad_id=str(getattr(sender, "aad_object_id", None) or "").lower(),
        name=str(getattr(sender, "name", None) or ""),
        teams_user_id=str(getattr(sender, "id", None) or ""),
        tenant_id=tenant_of(activity),
        conversation_id=str(conv.id) if conv else "",
        conversation_type=str(getattr(conv, "conversation_type", None) or "personal"),
        service_url=str(activity.service_url or ""),
        channel_id=str(activity.channel_id or "msteams"),
        team_id=str(team) if team else None,
        reference=ref,
    )


class ProcurementAgent:
    """Builds the AgentApplication and holds what its routes need."""

    def __init__(
        self,
        *,
        services: Services,
        router: Router,
        roles: RoleResolver,
        storage: Storage,
        connection_manager: Connections,
        tenant_filter: str = "",
        bot_app_id: str = "",
        on_turn_done: Callable[[], None] | None = None,
    ) -> None:
        self.services = services
        self.router = router
        self.roles = roles
        self.tenant_filter = tenant_filter.lower()
        self.on_turn_done = on_turn_done
        self.app: AgentApplication[TurnState] = AgentApplication[TurnState](
            ApplicationOptions(storage=storage, bot_app_id=bot_app_id, start_typing_timer=False),
            connection_manager=connection_manager,
        )
        self._register()

    # -- wiring --------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.before_turn(self._before_turn)
        app.activity(ActivityTypes.message)(self._on_message)
        app.activity(ActivityTypes.conversation_update)(self._on_conversation_update)
        app.activity(ActivityTypes.installation_update)(self._on_installation_update)
        app.invoke("adaptiveCard/action")(self._on_card_action)
        app.invoke("application/search")(self._on_search)
        for name in self.router.invokes:
            app.invoke(name)(self._on_named_invoke)
        app.invoke()(self._on_other_invoke)
        app.error(self._on_error)
        if self.on_turn_done is not None:
            app.after_turn(self._after_turn)

    async def _after_turn(self, context: TurnContext, state: TurnState) -> bool:
        # A turn may have queued side effects: wake the outbox instead of waiting for its poll.
        if self.on_turn_done is not None:
            self.on_turn_done()
        return True

    # -- before every turn ---------------------------------------------------------------

    async def _before_turn(self, context: TurnContext, state: TurnState) -> bool:
        activity = context.activity
        tenant = tenant_of(activity)
        if self.tenant_filter and tenant != self.tenant_filter:
            log.warning(
                "ignored activity %s from foreign tenant %r (conversation %s)",
                activity.type,
                tenant,
                getattr(activity.conversation, "id", "?"),
            )
            if activity.type == ActivityTypes.invoke:
                await self._send_invoke(context, 403, None)
            return False
        seen = seen_from(activity)
        lang = None
        if seen.conversation_id and seen.service_url:
            lang = await self.services.people.seen(seen)
        roles = frozenset({Role.PROCUREMENT}) if await self.roles.is_procurement(seen.aad_id) else frozenset()
        actor = Actor(
            aad_id=seen.aad_id,
            name=seen.name,
            roles=roles,
            lang=lang or self.services.default_language,
            tenant_id=seen.tenant_id,
            conversation_id=seen.conversation_id,
            conversation_type=_conversation_type(seen.conversation_type),
            activity_id=str(activity.id or ""),
        )
        context.turn_state[ACTOR_KEY] = actor
        return True

    @staticmethod
    def actor(context: TurnContext) -> Actor:
        actor = context.turn_state[ACTOR_KEY]
        assert isinstance(actor, Actor)
        return actor

    # -- messages ------------------------------------------------------------------------

    async def _on_message(self, context: TurnContext, state: TurnState) -> None:
        actor = self.actor(context)
        activity = context.activity
        value = activity.value
        if isinstance(value, dict) and not activity.text:
            # Action.Submit fallback (older clients): same verbs as Action.Execute.
            reply = await self._dispatch_verb(context, str(value.get("verb") or ""), as_dict(value))
            await self._send_reply(context, reply)
            return
        files = _file_attachments(activity)
        if files and self.router.attachment_handlers:
            for attachment_handler in self.router.attachment_handlers:
                handled = await self._guarded_optional(context, attachment_handler(self.services, actor, files))
                if handled is not None:
                    await self._send_reply(context, handled)
                    return
        message = activity.text or ""
        if len(message) > MAX_TEXT:
            body = text(actor.lang, "too_long_message", length=_grouped(len(message)), limit=_grouped(MAX_TEXT))
            await self._send_reply(context, home.notice(actor.lang, "too_long_title", body))
            return
        found = self.router.match_text(message)
        if found:
            handler, match = found
        else:
            assert self.router.fallback_text is not None
            handler, match = self.router.fallback_text, _EMPTY_MATCH
        reply = await self._guarded(context, handler(self.services, actor, match))
        await self._send_reply(context, reply)

    async def _guarded(self, context: TurnContext, work: Awaitable[Reply]) -> Reply:
        """Run a dialog; a refusal from the service becomes an answer that reveals nothing."""
        actor = self.actor(context)
        try:
            return await work
        except NotAllowed as refused:
            if refused.personal_only:
                bot_id = context.activity.recipient.id if context.activity.recipient else ""
                return home.personal_only_reply(actor, bot_id or "")
            # Verbs refused by role are the innkjøpere's; refusals by relation raise NotFound.
            return home.not_allowed_reply(actor, "role_procurement")
        except NotFound:
            return home.not_found_reply(actor)

    async def _guarded_optional(self, context: TurnContext, work: Awaitable[Reply | None]) -> Reply | None:
        async def run() -> Reply:
            return await work or _NOTHING

        reply = await self._guarded(context, run())
        return None if reply is _NOTHING else reply

    async def _send_reply(self, context: TurnContext, reply: Reply) -> None:
        if reply.text:
            await context.send_activity(Activity(type=ActivityTypes.message, text=reply.text))
        cards = ([reply.card] if reply.card else []) + reply.followups
        for card in cards:
            await context.send_activity(card_activity(card))

    # -- card actions ----------------------------------------------------------------------

    async def _dispatch_verb(self, context: TurnContext, verb: str, data: dict[str, Any]) -> Reply:
        actor = self.actor(context)
        handler = self.router.verbs.get(verb)
        if handler is None:
            log.info("unknown verb %r from %s", verb[:100], actor.aad_id)
            return home.unknown_action_reply(actor)
        return await self._guarded(context, handler(self.services, actor, data))

    async def _on_card_action(self, context: TurnContext, state: TurnState) -> None:
        actor = self.actor(context)
        value = as_dict(context.activity.value)
        action = as_dict(value.get("action"))
        verb = action.get("verb")
        data = as_dict(action.get("data"))
        reply = await self._dispatch_verb(context, verb if isinstance(verb, str) else "", data)
        card = reply.card or home.help_reply(actor).card
        assert card is not None
        if reply.update_for_all and context.activity.reply_to_id:
            # The invoke response updates the card for the presser; editing the message
            # updates it for everyone else at once. The action is committed already and the
            # outbox repeats the edit, so a throttled or failed edit here must not turn the
            # presser's answer into an error.
            try:
                await context.update_activity(
                    Activity(
                        type=ActivityTypes.message,
                        id=context.activity.reply_to_id,
                        conversation=context.activity.conversation,
                        attachments=[card_attachment(card)],
                    )
                )
            except Exception as err:
                log.warning("in-turn card update failed (the outbox retries it): %s", err)
        await self._send_invoke(
            context,
            200,
            AdaptiveCardInvokeResponse(status_code=200, type=CARD_TYPE, value=card).model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
        )
        for extra in reply.followups:
            await context.send_activity(card_activity(extra))

    async def _on_search(self, context: TurnContext, state: TurnState) -> None:
        actor = self.actor(context)
        value = as_dict(context.activity.value)
        dataset = str(value.get("dataset") or "")
        query = str(value.get("queryText") or "")[:200]
        options = as_dict(value.get("queryOptions"))
        top = options.get("top")
        limit = top if isinstance(top, int) and 0 < top <= 50 else 15
        handler = self.router.searches.get(dataset)
        results: list[dict[str, str]] = []
        if handler is not None:
            try:
                results = await handler(self.services, actor, query, limit)
            except (NotAllowed, NotFound):
                results = []
        await self._send_invoke(
            context,
            200,
            {
                "statusCode": 200,
                "type": "application/vnd.microsoft.search.searchResponse",
                "value": {"results": results},
            },
        )

    async def _on_named_invoke(self, context: TurnContext, state: TurnState) -> None:
        """An invoke a route module registered by name (a message action's dialog): the
        handler's answer is the invoke response; a refusal shows the refusal card there."""
        actor = self.actor(context)
        handler = self.router.invokes[str(context.activity.name or "")]
        work = handler(self.services, actor, as_dict(context.activity.value))
        body: dict[str, Any] = {}

        async def run() -> Reply:
            body.update(await work)
            return _NOTHING

        reply = await self._guarded(context, run())
        if reply is not _NOTHING and reply.card is not None:  # refused: the refusal in the dialog
            task = {"title": text(actor.lang, "error_title"), "card": {"contentType": CARD_TYPE, "content": reply.card}}
            body = {"task": {"type": "continue", "value": task}}
        await self._send_invoke(context, 200, body)

    async def _on_other_invoke(self, context: TurnContext, state: TurnState) -> None:
        # Teams shows "Unable to reach app" on 501; answer every invoke we don't handle.
        log.info("unhandled invoke %r", context.activity.name)
        await self._send_invoke(context, 200, {})

    @staticmethod
    async def _send_invoke(context: TurnContext, status: int, body: Any) -> None:
        await context.send_activity(
            Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))
        )

    # -- installs and membership -------------------------------------------------------

    async def _on_conversation_update(self, context: TurnContext, state: TurnState) -> None:
        activity = context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        actor = self.actor(context)
        added = activity.members_added or []
        # Installs and uninstalls are recorded from installationUpdate, which Teams sends
        # for every install; conversationUpdate only greets.
        if not (any(m.id == bot_id for m in added) or (added and actor.in_personal_chat)):
            return
        # The personal welcome only in a personal chat; a channel or group chat gets what
        # belongs there (nothing personal is posted where others read along).
        if actor.in_personal_chat:
            await context.send_activity(card_activity(home.welcome_card(actor.lang)))
        elif any(m.id == bot_id for m in added):
            await context.send_activity(card_activity(home.channel_welcome_card(actor.lang)))

    async def _on_installation_update(self, context: TurnContext, state: TurnState) -> None:
        actor = self.actor(context)
        action = str(context.activity.action or "")
        if action.startswith("add"):
            await self.services.people.record_installation(actor.conversation_id, "add", actor.aad_id)
        elif action.startswith("remove"):
            await self.services.people.record_installation(actor.conversation_id, "remove", actor.aad_id)

    # -- errors ---------------------------------------------------------------------------

    async def _on_error(self, context: TurnContext, err: Exception) -> None:
        await send_friendly_error(context, err)


async def send_friendly_error(context: TurnContext, err: BaseException) -> None:
    """Log the details under a short reference; show the user only the reference."""
    ref = uuid.uuid4().hex[:8].upper()
    log.error("turn failed [ref %s] activity=%s", ref, _describe(context.activity), exc_info=err)
    actor = context.turn_state.get(ACTOR_KEY)
    lang = actor.lang if isinstance(actor, Actor) else "nb"
    card = render_card("notice", lang, title=text(lang, "error_title"), body=text(lang, "error_body", ref=ref))
    try:
        if context.activity.type == ActivityTypes.invoke:
            if not context.turn_state.get(ChannelServiceAdapter.INVOKE_RESPONSE_KEY):
                await ProcurementAgent._send_invoke(context, 200, {"statusCode": 200, "type": CARD_TYPE, "value": card})
        else:
            await context.send_activity(card_activity(card))
    except Exception:
        log.exception("could not tell the user about error ref %s", ref)


def _describe(activity: Activity) -> str:
    try:
        return json.dumps(
            {
                "type": activity.type,
                "name": activity.name,
                "id": activity.id,
                "conversation": getattr(activity.conversation, "id", None),
            }
        )
    except Exception:
        return "?"


_NOTHING = Reply()
# Attachments that are the message itself, not files sent with it.
_NOT_FILES = (CARD_TYPE, "text/html", "text/plain", "application/vnd.microsoft.card.")


def _file_attachments(activity: Activity) -> list[dict[str, Any]]:
    """The files and inline images of a message, as JSON (cards and the HTML copy left out)."""
    found = []
    for attachment in activity.attachments or []:
        data = attachment.model_dump(mode="json", by_alias=True, exclude_none=True)
        kind = str(data.get("contentType") or "")
        if kind and not kind.startswith(_NOT_FILES):
            found.append(data)
    return found[:50]


def _conversation_type(raw: str) -> ConversationType:
    if raw == "channel":
        return "channel"
    if raw == "groupChat":
        return "groupChat"
    return "personal"


def _empty_match() -> re.Match[str]:
    match = re.match("", "")
    assert match is not None
    return match


_EMPTY_MATCH = _empty_match()
