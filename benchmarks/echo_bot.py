"""A minimal echo bot on the same stack as the real bot (Agents SDK 1.9 + aiohttp).

Used to prove the Playground test harness (tests/e2e) and as a baseline for benchmarks.

    python benchmarks/echo_bot.py --port 3979

Local mode only: a SERVICE_CONNECTION with ANONYMOUS_ALLOWED, so requests without an
Authorization header are accepted. It binds to 127.0.0.1 by default.

Behaviour:
- message with text          -> "echo: <text>"   (mentions of the bot are stripped by the SDK)
- message with text "card"   -> an Adaptive Card with an Action.Execute and an Action.Submit
- message with text "update" -> "echo: update v1", then that message edited to "echo: update v2"
- message with a value       -> "echo: submit <value as JSON>"   (Action.Submit)
- invoke adaptiveCard/action -> the card replaced by one saying "echo: execute <verb> <data>"
- any other invoke           -> HTTP 200 with an empty body (never 501)
- conversationUpdate         -> "echo: conversationUpdate added=<ids> removed=<ids>"
- installationUpdate         -> "echo: installationUpdate <action>"
- GET /healthz               -> 200 "ok" (not behind the JWT check)

There is no typing timer, and the adapter's default turn-error handler (which would send
the exception text to the user) is replaced by one that logs and sends a fixed text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from typing import Any

from aiohttp import web
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    InvokeResponse,
)
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import (
    CloudAdapter,
    jwt_authorization_decorator,
    start_agent_process,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    Authorization,
    MemoryStorage,
    TurnContext,
    TurnState,
)

log = logging.getLogger("echo_bot")

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def echo_card(title: str) -> dict[str, Any]:
    """An Adaptive Card 1.5 with one input, an Action.Execute and an Action.Submit."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": title, "wrap": True, "weight": "Bolder"},
            {"type": "FactSet", "facts": [{"title": "Bot", "value": "echo"}]},
            {"type": "Input.Text", "id": "note", "label": "Note", "value": ""},
        ],
        "actions": [
            {
                "type": "Action.Execute",
                "title": "Execute",
                "verb": "echo.execute",
                "data": {"source": "card"},
            },
            {"type": "Action.Submit", "title": "Submit", "data": {"verb": "echo.submit"}},
        ],
    }


def build_app() -> web.Application:
    connection_manager = MsalConnectionManager(
        CONNECTIONS={"SERVICE_CONNECTION": {"SETTINGS": {"ANONYMOUS_ALLOWED": True}}}
    )
    storage = MemoryStorage()
    adapter = CloudAdapter(connection_manager=connection_manager)
    agent = AgentApplication[TurnState](
        storage=storage,
        authorization=Authorization(storage, connection_manager),
        start_typing_timer=False,
    )

    async def on_turn_error(context: TurnContext, error: Exception) -> None:
        log.error("turn failed: %r", error, exc_info=error)
        if context.activity.type == ActivityTypes.invoke:
            await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=500)))
        else:
            await context.send_activity("echo: error")

    adapter.on_turn_error = on_turn_error

    @agent.activity(ActivityTypes.message)
    async def on_message(context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        text = (activity.text or "").strip()
        if not text and activity.value is not None:
            await context.send_activity(
                f"echo: submit {json.dumps(activity.value, sort_keys=True, ensure_ascii=False)}"
            )
        elif text.lower() == "card":
            await context.send_activity(
                Activity(
                    type=ActivityTypes.message,
                    attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=echo_card("echo card"))],
                )
            )
        elif text.lower() == "update":
            sent = await context.send_activity("echo: update v1")
            if sent is not None and sent.id:
                await context.update_activity(Activity(type=ActivityTypes.message, id=sent.id, text="echo: update v2"))
        else:
            await context.send_activity(f"echo: {text}")

    @agent.adaptive_card.action_execute(re.compile(".*"))
    async def on_execute(context: TurnContext, _state: TurnState, data: Any) -> AdaptiveCardInvokeResponse:
        value = context.activity.value
        verb = value.get("action", {}).get("verb") if isinstance(value, dict) else None
        payload = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return AdaptiveCardInvokeResponse(
            status_code=200,
            type=CARD_CONTENT_TYPE,
            value=echo_card(f"echo: execute {verb} {payload}"),
        )

    @agent.invoke()
    async def on_other_invoke(context: TurnContext, _state: TurnState) -> None:
        await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200)))

    @agent.activity(ActivityTypes.conversation_update)
    async def on_conversation_update(context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        added = ",".join(m.id for m in activity.members_added or [])
        removed = ",".join(m.id for m in activity.members_removed or [])
        await context.send_activity(f"echo: conversationUpdate added={added} removed={removed}")

    @agent.activity(ActivityTypes.installation_update)
    async def on_installation_update(context: TurnContext, _state: TurnState) -> None:
        await context.send_activity(f"echo: installationUpdate {context.activity.action}")

    @jwt_authorization_decorator
    async def messages(request: web.Request) -> web.StreamResponse:
        response = await start_agent_process(request, agent, adapter)
        return response if response is not None else web.Response(status=202)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app["agent_configuration"] = connection_manager.get_default_connection_configuration()
    app["agent_app"] = agent
    app["adapter"] = adapter
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3978")))
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Logged on every turn in local mode (no app id); noise for benchmarks.
    logging.getLogger("microsoft_agents.hosting.core.connector.client.user_token_client").setLevel(logging.ERROR)
    web.run_app(build_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
