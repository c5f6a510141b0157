"""The needs-report bot harness for integration tests: activities as Teams sends them, and a
`Bot` that drives `app.build_app(settings)` on an aiohttp TestServer with a Connector stub.

The fixtures using it (`start_bot`, `bot`, `sqlite_bot`) are in conftest.py.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

import app as app_module
from procurement.shared.calendar import OSLO
from procurement.store.tables import (
    AuditEntry,
    NeedsReport,
    OutboxItem,
)
from settings import Settings
from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub, card_texts
from tests.needs_forms import FORM_FIELDS as FORM_FIELDS  # re-exported: the harness tests assert the card against it

TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"
KARI = "7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"  # melder (submitter)
OLA = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"  # another employee, not an innkjøper
INGRID = "c0ffee00-1234-4abc-8def-0123456789ab"  # innkjøper
KARI_CHAT = "a:kari-personal"
OLA_CHAT = "a:ola-personal"
INGRID_CHAT = "a:ingrid-personal"
INTAKE = "19:innkjop-intake@thread.tacv2"
BOT_ID = "28:bot-app-id"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


USERS = {
    KARI: ("Kari Nordmann", KARI_CHAT),
    OLA: ("Ola Hansen", OLA_CHAT),
    INGRID: ("Ingrid Innkjøper", INGRID_CHAT),
}

_ids = itertools.count(1)


def today() -> date:
    return datetime.now(OSLO).date()


def year() -> int:
    return today().year


def valid_inputs(**overrides: Any) -> dict[str, Any]:
    """What the form's inputs send for a complete, valid report (all values as text, as Teams does)."""
    values: dict[str, Any] = {
        "title": "Transport av hjelpemidler",
        "need": "Hjemmetjenesten må få hjelpemidler levert og hentet hos brukerne innen to virkedager.",
        "service_area": "helse_mestring",
        "estimated_value": "1 300 000",
        "value_basis": "Dagens utgifter til transport, tre år.",
        "category": "services",
        "cpv": "",
        "agreement_type": "single",
        "start_date": (today() + timedelta(days=90)).isoformat(),
        "duration_months": "24",
        "option_months": "12",
        "replaces_contract": "",
        "budget_secured": "true",
        "faggruppe": "Per Pleier, Siri Sykepleier",
        "risk_notes": "",
        "innovation": "false",
    }
    values.update(overrides)
    return values


# -- activities as Teams sends them ----------------------------------------------------------


def activity(
    service_url: str,
    kind: str = "message",
    *,
    user: str = KARI,
    conversation: str | None = None,
    conversation_type: str = "personal",
    **extra: Any,
) -> dict[str, Any]:
    name, chat = USERS[user]
    conv: dict[str, Any] = {"id": conversation or chat, "conversationType": conversation_type, "tenantId": TENANT}
    if conversation_type == "channel":
        conv["isGroup"] = True
    act: dict[str, Any] = {
        "type": kind,
        "id": f"f:{uuid.uuid4().hex[:12]}-{next(_ids)}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:{user}", "name": name, "aadObjectId": user},
        "conversation": conv,
        "recipient": {"id": BOT_ID, "name": "Innkjøpsassistenten"},
        "locale": "nb-NO",
        "channelData": {"tenant": {"id": TENANT}},
    }
    act.update(extra)
    return act


def execute_activity(service_url: str, verb: Any, data: Any, **kw: Any) -> dict[str, Any]:
    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
    return activity(service_url, "invoke", name="adaptiveCard/action", value=value, **kw)


def texts_of(card: dict[str, Any]) -> str:
    return "\n".join(card_texts(card))


def inputs_of(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Input elements by id, anywhere in the card body."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input.") and "id" in node:
                found[node["id"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card.get("body", []))
    return found


def message_after(card: dict[str, Any], input_id: str) -> str | None:
    """The text of the element right after an input, in the body or the container holding it
    (the form folds optional fields into one): where the form shows its error."""

    def find(items: Any) -> tuple[bool, str | None]:
        if not isinstance(items, list):
            return False, None
        for i, element in enumerate(items):
            if not isinstance(element, dict):
                continue
            if element.get("id") == input_id:
                nxt = items[i + 1] if i + 1 < len(items) else None
                if isinstance(nxt, dict) and nxt.get("type") == "TextBlock" and nxt.get("color") == "Attention":
                    return True, str(nxt.get("text"))
                return True, None
            found, message = find(element.get("items"))
            if found:
                return found, message
        return False, None

    found, message = find(card.get("body", []))
    if not found:
        raise AssertionError(f"no input {input_id} in card")
    return message


def hidden_ids(card: dict[str, Any]) -> set[str]:
    """Ids of the elements a card shows folded away (`isVisible: false`)."""
    return {
        str(node["id"])
        for node in _nodes(card.get("body", []))
        if node.get("isVisible") is False and isinstance(node.get("id"), str)
    }


def visible_texts_of(card: dict[str, Any]) -> str:
    """Like `texts_of`, without what sits in folded (`isVisible: false`) elements."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node if not (isinstance(v, dict) and v.get("isVisible") is False)]
        return node

    return texts_of(strip(card))


def _nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    return list(card.get("actions") or [])


def verbs_of(card: dict[str, Any]) -> list[str]:
    return [a.get("verb", "") for a in actions_of(card)]


def token_of(card: dict[str, Any]) -> str:
    for action in actions_of(card):
        if action.get("verb") == "needs_report.submit":
            return str(action["data"]["token"])
    raise AssertionError("no submit action with a token")


# -- the bot under test ----------------------------------------------------------------------


class Bot:
    def __init__(self, client: TestClient, stub: ConnectorStub) -> None:
        self.client = client
        self.stub = stub
        self.app = client.server.app  # type: ignore[attr-defined]
        self.runtime = self.app[app_module.RUNTIME]
        self.store = self.runtime.store

    async def post(self, act: dict[str, Any]) -> tuple[int, Any]:
        resp = await self.client.post(
            "/api/messages", data=json.dumps(act), headers={"Content-Type": "application/json"}
        )
        raw = await resp.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return resp.status, body

    async def say(self, text: str, *, user: str = KARI) -> list[dict[str, Any]]:
        """A message in the user's personal chat; the cards it caused there."""
        chat = USERS[user][1]
        before = len(self.stub.cards(chat))
        status, _ = await self.post(activity(self.stub.url, text=text, textFormat="plain", user=user))
        assert status in (200, 201, 202), status
        cards = self.stub.cards(chat)[before:]
        for card in cards:
            validate_card(card)
        return cards

    async def invoke(self, verb: Any, data: Any, **kw: Any) -> dict[str, Any]:
        """An Action.Execute; returns the card of the invoke response (validated)."""
        status, body = await self.post(execute_activity(self.stub.url, verb, data, **kw))
        assert status == 200, (status, body)
        assert isinstance(body, dict) and body.get("statusCode") == 200, body
        assert body.get("type") == CARD_TYPE, body
        card = body["value"]
        validate_card(card)
        return card

    async def submit(self, values: dict[str, Any], token: str | None = None, *, user: str = KARI) -> dict[str, Any]:
        data = {**values, "verb": "needs_report.submit"}
        if token is not None:
            data["token"] = token
        return await self.invoke("needs_report.submit", data, user=user)

    async def decide(
        self, verb: str, ref: str, *, user: str = INGRID, note: str = "", reply_to: str | None = None
    ) -> dict[str, Any]:
        """Press a decision button on the intake card in the intake channel."""
        report = await self.report(ref)
        data = {"verb": verb, "ref": ref, "decision_note": note, "token": uuid.uuid4().hex}
        return await self.invoke(
            verb,
            data,
            user=user,
            conversation=INTAKE,
            conversation_type="channel",
            replyToId=reply_to if reply_to is not None else (report.intake_activity_id or "intake-msg"),
        )

    async def rows(self, table: Any, *where: Any) -> list[Any]:
        async with self.store.session() as session:
            return list(await session.scalars(sa.select(table).where(*where)))

    async def report(self, ref: str) -> NeedsReport:
        rows = await self.rows(NeedsReport, NeedsReport.ref == ref)
        assert len(rows) == 1, ref
        return rows[0]

    async def audit(self, entity_id: str | None = None) -> list[AuditEntry]:
        where = [AuditEntry.entity_id == entity_id] if entity_id else []
        async with self.store.session() as session:
            return list(await session.scalars(sa.select(AuditEntry).where(*where).order_by(AuditEntry.id)))

    async def drain(self, rounds: int = 5) -> int:
        """Run the outbox until nothing is due (at most `rounds` claims)."""
        total = 0
        for _ in range(rounds):
            n = await self.runtime.outbox.run_once()
            total += n
            if n == 0:
                break
        return total

    async def outbox(self) -> list[OutboxItem]:
        async with self.store.session() as session:
            return list(await session.scalars(sa.select(OutboxItem).order_by(OutboxItem.id)))

    async def submit_valid(self, *, user: str = KARI, **overrides: Any) -> str:
        """Submit valid values from a fresh card (new token); returns the new ref. (Opening the
        form by message is tested on its own; here it would spend the chat's send budget.)"""
        card = await self.submit(valid_inputs(**overrides), uuid.uuid4().hex, user=user)
        ref = ref_in(card)
        assert ref, texts_of(card)
        return ref


def ref_in(card: dict[str, Any]) -> str:
    for value in card_texts(card):
        for word in value.replace("«", " ").replace("»", " ").split():
            if word.startswith("BM-") and len(word) >= 12:
                return word.strip(".,:;")
    return ""


BotFactory = Callable[..., Awaitable[Bot]]
# The `serve_app` fixture (conftest.py): settings → a client of the running app.
AppServer = Callable[[Settings], Awaitable[TestClient]]
