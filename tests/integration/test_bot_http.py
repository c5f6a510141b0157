"""The real aiohttp app from `app.build_app(settings)`, driven over HTTP like Teams drives it.

Replies go to a Connector stub (the activities' `serviceUrl`); every card the bot sends is
checked with `validate_card`.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography.hazmat.primitives.asymmetric import rsa

import app as app_module
from bot import server as bot_server
from dialogs import home
from procurement.store.database import Store
from procurement.store.tables import ConversationRef, Installation, User
from settings import Settings
from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub, card_texts
from tests.integration.bot_harness import AppServer

TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"
KARI = "7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
OLA = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
BOT_ID = "28:bot-app-id"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
FAKE_APP_ID = "3f6c2a9e-1b4d-4e8f-9a7c-2d5e6f708192"

_ids = itertools.count(1)

WELCOME_BUTTONS_NB = ["Ny behovsmelding", "Mine behovsmeldinger", "Mine kontrakter", "Meld avvik"]
WELCOME_BUTTONS_EN = ["New needs report", "My needs reports", "My contracts", "Report deviation"]


# -- activities as Teams sends them ----------------------------------------------------------


def teams_activity(
    service_url: str,
    kind: str = "message",
    *,
    text: str | None = None,
    conversation: str = "a:kari-personal",
    user: str = KARI,
    user_name: str = "Kari Nordmann",
    tenant: str = TENANT,
    conversation_type: str = "personal",
    locale: str = "nb-NO",
    **extra: Any,
) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": kind,
        "id": f"f:{next(_ids)}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "localTimestamp": "2026-11-28T11:00:00.000+01:00",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:{user}", "name": user_name, "aadObjectId": user},
        "conversation": {"id": conversation, "conversationType": conversation_type, "tenantId": tenant},
        "recipient": {"id": BOT_ID, "name": "Innkjøpsassistenten"},
        "locale": locale,
        "channelData": {"tenant": {"id": tenant}},
    }
    if text is not None:
        activity["text"] = text
        activity["textFormat"] = "plain"
    activity.update(extra)
    return activity


def execute(service_url: str, verb: Any, data: Any = None, **kw: Any) -> dict[str, Any]:
    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data or {}}, "trigger": "manual"}
    return teams_activity(service_url, "invoke", name="adaptiveCard/action", value=value, **kw)


# -- the bot under test ------------------------------------------------------------------


class Bot:
    """The app on a TestServer; `post(activity)` → (status, json body or None)."""

    def __init__(self, client: TestClient, stub: ConnectorStub) -> None:
        self.client = client
        self.stub = stub
        self.app = client.server.app  # type: ignore[attr-defined]

    @property
    def store(self) -> Store:
        store: Store = self.app[app_module.RUNTIME].store
        return store

    async def post(self, activity: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = activity if isinstance(activity, str | bytes) else json.dumps(activity)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        resp = await self.client.post("/api/messages", data=data, headers=hdrs)
        raw = await resp.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return resp.status, body

    async def say(self, text: str, **kw: Any) -> list[dict[str, Any]]:
        """Send a message; return the cards delivered to its conversation because of it."""
        conversation = kw.get("conversation", "a:kari-personal")
        before = len(self.stub.cards(conversation))
        status, _ = await self.post(teams_activity(self.stub.url, text=text, **kw))
        assert status in (200, 201, 202), status
        cards = self.stub.cards(conversation)[before:]
        for card in cards:
            validate_card(card)
        return cards

    async def invoke(self, verb: Any, data: Any = None, **kw: Any) -> tuple[int, Any]:
        status, body = await self.post(execute(self.stub.url, verb, data, **kw))
        if isinstance(body, dict) and isinstance(body.get("value"), dict) and body.get("type") == CARD_TYPE:
            validate_card(body["value"])
        return status, body

    async def rows(self, table: Any) -> list[Any]:
        async with self.store.session() as session:
            return list(await session.scalars(sa.select(table)))


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(serve_app: AppServer, stub: ConnectorStub) -> BotFactory:
    """`await start_bot(settings)` → a running Bot; stopped (and its store closed) after."""

    async def start(settings: Settings) -> Bot:
        return Bot(await serve_app(settings), stub)

    return start


@pytest.fixture
async def bot(start_bot: BotFactory, make_settings: Callable[..., Settings]) -> Bot:
    """Local mode (no app id), SQLite under tmp_path, no background workers."""
    return await start_bot(make_settings())


def texts_of(card: dict[str, Any]) -> str:
    return "\n".join(card_texts(card))


def buttons(card: dict[str, Any]) -> list[str]:
    return [a.get("title", "") for a in card.get("actions", [])]


def assert_welcome(card: dict[str, Any], lang: str) -> None:
    if lang == "nb":
        assert "Innkjøpsassistenten" in texts_of(card)
        assert buttons(card) == WELCOME_BUTTONS_NB
        assert "Procurement assistant" not in texts_of(card)
    else:
        assert "Procurement assistant" in texts_of(card)
        assert buttons(card) == WELCOME_BUTTONS_EN


# -- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["hjelp", "help", "Hjelp!", "  meny  ", "hei"])
async def test_help_commands_answer_with_the_welcome_card(bot: Bot, command: str) -> None:
    cards = await bot.say(command)
    assert len(cards) == 1
    assert_welcome(cards[0], "nb")
    assert cards[0]["version"] == "1.5"


async def test_unknown_text_gets_the_help_card(bot: Bot) -> None:
    cards = await bot.say("hva er klokka?")
    assert len(cards) == 1
    assert_welcome(cards[0], "nb")


async def test_playground_locale_en_us_still_gets_norwegian_by_default(bot: Bot) -> None:
    cards = await bot.say("hello", locale="en-US")
    assert_welcome(cards[0], "nb")


async def test_language_switch_is_remembered_per_user(bot: Bot) -> None:
    cards = await bot.say("language english")
    assert len(cards) == 2
    assert "Language changed" in texts_of(cards[0])
    assert_welcome(cards[1], "en")

    assert_welcome((await bot.say("hjelp"))[0], "en")
    # Another user in another chat is not affected.
    other = await bot.say("hjelp", user=OLA, user_name="Ola", conversation="a:ola-personal")
    assert_welcome(other[0], "nb")

    cards = await bot.say("språk norsk")
    assert "Språk endret" in texts_of(cards[0])
    assert_welcome(cards[1], "nb")
    assert_welcome((await bot.say("help"))[0], "nb")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_language_and_state_survive_a_restart(
    kind: str,
    start_bot: BotFactory,
    make_settings: Callable[..., Settings],
    new_database: Callable[[str], Awaitable[str]],
    stub: ConnectorStub,
) -> None:
    url = await new_database(kind)
    settings = make_settings(DATABASE_URL=url)
    first = await start_bot(settings)
    await first.say("language english")
    await first.client.close()  # the first instance stops (on_shutdown closes its store)

    second = await start_bot(settings)
    cards = await second.say("hjelp")
    assert_welcome(cards[0], "en")
    # (The SDK's turn state goes through SqlStorage; its restart test is in test_store.py.)


async def test_deviation_command_opens_the_form(bot: Bot) -> None:
    cards = await bot.say("meld avvik")
    text = texts_of(cards[0])
    assert "Meld avvik" in text and "Steg 1 av 3: Hva og hvor" in text
    assert "kommer snart" not in text.lower()


async def test_too_long_message_gets_a_notice(bot: Bot) -> None:
    cards = await bot.say("x" * 20_000)
    assert len(cards) == 1
    text = texts_of(cards[0])
    # Headed by what it is, not "Ukjent handling"; the count and the limit as people read them.
    assert "Ukjent handling" not in text
    assert "Meldingen er for lang (20 000 tegn). Skriv kortere, høyst 10 000 tegn." in text
    assert cards[0]["body"][0]["text"] == "Meldingen er for lang"
    assert "x" * 100 not in bot.stub.everything_sent()


@pytest.mark.parametrize(
    "text",
    ["${x}", '{"a":', "**fet** _kursiv_ [lenke](http://x) <at>Kari</at>", "{{ t }} {0} {ref}", "\u0000\u202e"],
)
async def test_hostile_messages_get_a_valid_card(bot: Bot, text: str) -> None:
    cards = await bot.say(text, conversation=f"a:hostile-{abs(hash(text))}")
    assert len(cards) == 1  # say() validated it


async def test_every_message_upserts_user_and_conversation(bot: Bot) -> None:
    await bot.say("hei", user_name="Kari")
    await bot.say("hei", user_name="Kari Nordmann")
    users = await bot.rows(User)
    refs = await bot.rows(ConversationRef)
    assert [(u.aad_object_id, u.name) for u in users] == [(KARI, "Kari Nordmann")]
    assert users[0].personal_conversation_id == "a:kari-personal"
    assert users[0].last_seen >= users[0].first_seen
    assert len(refs) == 1
    ref = refs[0]
    assert (ref.conversation_id, ref.service_url, ref.tenant_id, ref.user_aad_id) == (
        "a:kari-personal",
        bot.stub.url,
        TENANT,
        KARI,
    )
    assert ref.reference["conversation"]["id"] == "a:kari-personal"
    assert ref.reference["serviceUrl"] == bot.stub.url

    # An invoke and a conversationUpdate are inbound activities too.
    await bot.invoke("home.help", user=OLA, user_name="Ola", conversation="a:ola-personal")
    assert {u.aad_object_id for u in await bot.rows(User)} == {KARI, OLA}
    assert {r.conversation_id for r in await bot.rows(ConversationRef)} == {"a:kari-personal", "a:ola-personal"}


# -- Action.Execute and other invokes ------------------------------------------------------


async def test_execute_help_answers_with_a_card(bot: Bot) -> None:
    status, body = await bot.invoke("home.help")
    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == CARD_TYPE
    assert_welcome(body["value"], "nb")


async def test_unknown_verb_gets_a_norwegian_card_not_501(bot: Bot) -> None:
    status, body = await bot.invoke("nope.never")
    assert status == 200
    assert body["statusCode"] == 200
    assert "Ukjent handling" in texts_of(body["value"])


@pytest.mark.parametrize(
    "value",
    [
        "just a string",
        [1, 2, 3],
        {},
        {"action": "x"},
        {"action": {"verb": 42}},
        None,
        {"action": {"type": "Action.Execute", "verb": "home.help", "data": "not a dict"}},
    ],
)
async def test_malformed_invoke_values_get_a_card(bot: Bot, value: Any) -> None:
    activity = teams_activity(bot.stub.url, "invoke", name="adaptiveCard/action", value=value)
    status, body = await bot.post(activity)
    assert status == 200, body
    assert body["statusCode"] == 200
    validate_card(body["value"])


@pytest.mark.parametrize("name", ["composeExtension/query", "task/fetch", "something/else"])
async def test_unknown_invoke_names_are_answered(bot: Bot, name: str, caplog: pytest.LogCaptureFixture) -> None:
    # Not 501 (Teams: "Unable to reach app") and not the error card: an empty success, logged,
    # and nothing posted to the conversation.
    caplog.set_level(logging.INFO)
    status, body = await bot.post(teams_activity(bot.stub.url, "invoke", name=name, value={}))
    assert (status, body) == (200, {})
    assert bot.stub.requests == []
    assert any("unhandled invoke" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_search_invoke_for_unknown_dataset_answers_empty(bot: Bot) -> None:
    value = {"queryText": "abc", "queryOptions": {"skip": 0, "top": 15}, "dataset": "no.such"}
    status, body = await bot.post(teams_activity(bot.stub.url, "invoke", name="application/search", value=value))
    assert status == 200
    assert body["value"] == {"results": []}


async def test_deviation_button_opens_the_form(bot: Bot) -> None:
    status, body = await bot.invoke("deviation.open")
    assert status == 200
    text = texts_of(body["value"])
    assert "Steg 1 av 3: Hva og hvor" in text and "Kommer snart" not in text


async def test_action_submit_fallback_uses_the_same_verbs(bot: Bot) -> None:
    activity = teams_activity(bot.stub.url, value={"verb": "home.help"})
    status, _ = await bot.post(activity)
    assert status in (200, 202)
    cards = bot.stub.cards("a:kari-personal")
    assert len(cards) == 1
    validate_card(cards[0])
    assert_welcome(cards[0], "nb")


# -- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize("body", ["{not json", "", "\u00ff\u00fe"])
async def test_malformed_json_is_400(bot: Bot, body: str) -> None:
    status, _ = await bot.post(body.encode("latin-1"))
    assert status == 400


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        '"text"',
        "42",
        "null",
        '{"foo": 1}',
        '{"type": "message"}',
        '{"type": "message", "conversation": {"id": 5}, "from": "x"}',
        '{"type": ["message"], "conversation": {"id": "a:1"}}',
    ],
)
async def test_a_body_that_is_not_an_activity_is_400(bot: Bot, body: str) -> None:
    status, _ = await bot.post(body)
    assert status == 400, status
    assert bot.stub.requests == []


async def test_activity_without_service_url_is_not_a_500(bot: Bot) -> None:
    activity = teams_activity(bot.stub.url, text="hei")
    del activity["serviceUrl"]
    status, _ = await bot.post(activity)
    assert status < 500, status


# -- tenants, installs ------------------------------------------------------------------------


async def test_foreign_tenant_is_ignored_and_logged(
    start_bot: BotFactory, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(make_settings(ALLOWED_TENANT_ID=TENANT.upper()))
    caplog.set_level(logging.WARNING)
    status, _ = await bot.post(teams_activity(bot.stub.url, text="hjelp", tenant=OTHER_TENANT))
    assert status in (200, 202)
    assert bot.stub.requests == []
    assert any("ignored" in r.getMessage() and OTHER_TENANT in r.getMessage() for r in caplog.records)
    assert await bot.rows(User) == [] and await bot.rows(ConversationRef) == []

    # An invoke from the foreign tenant gets no card either.
    status, body = await bot.post(execute(bot.stub.url, "home.help", tenant=OTHER_TENANT))
    assert (status, body) == (403, None)  # refused, and nothing about the bot in the answer
    assert bot.stub.requests == []

    # The configured tenant (compared case-insensitively) is served.
    cards = await bot.say("hjelp")
    assert_welcome(cards[0], "nb")


async def test_install_greets_and_is_recorded(bot: Bot) -> None:
    url = bot.stub.url
    update = teams_activity(url, "conversationUpdate", membersAdded=[{"id": BOT_ID}])
    status, _ = await bot.post(update)
    assert status in (200, 202)
    cards = bot.stub.cards("a:kari-personal")
    assert len(cards) == 1
    validate_card(cards[0])
    assert_welcome(cards[0], "nb")

    status, _ = await bot.post(teams_activity(url, "installationUpdate", action="add"))
    assert status in (200, 202)
    rows = await bot.rows(Installation)
    assert [(r.conversation_id, r.action, r.actor_aad_id) for r in rows] == [("a:kari-personal", "add", KARI)]
    assert (await bot.rows(ConversationRef))[0].installed is True

    status, _ = await bot.post(teams_activity(url, "installationUpdate", action="remove"))
    assert status in (200, 202)
    rows = await bot.rows(Installation)
    assert [r.action for r in rows] == ["add", "remove"]
    assert (await bot.rows(ConversationRef))[0].installed is False
    assert len(bot.stub.cards("a:kari-personal")) == 1  # nothing sent on uninstall


async def test_someone_else_joining_a_group_chat_is_not_greeted(bot: Bot) -> None:
    update = teams_activity(
        bot.stub.url,
        "conversationUpdate",
        conversation="19:group@thread.v2",
        conversation_type="groupChat",
        membersAdded=[{"id": "29:someone-else"}],
    )
    status, _ = await bot.post(update)
    assert status in (200, 202)
    assert bot.stub.requests == []


# -- errors never leak ---------------------------------------------------------------------


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret detail xyz")


async def test_handler_error_shows_a_reference_not_the_exception(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(home, "help_reply", _boom)
    caplog.set_level(logging.ERROR)
    status, _ = await bot.post(teams_activity(bot.stub.url, text="hjelp"))
    assert status in (200, 202)
    cards = bot.stub.cards("a:kari-personal")
    assert len(cards) == 1
    validate_card(cards[0])
    text = texts_of(cards[0])
    assert "Noe gikk galt" in text
    ref = _reference_in(text)
    sent = bot.stub.everything_sent()
    assert "secret detail xyz" not in sent and "Traceback" not in sent and "RuntimeError" not in sent
    assert "secret detail xyz" in caplog.text and ref in caplog.text


async def test_invoke_error_answers_200_with_an_error_card(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(home, "help_reply", _boom)
    caplog.set_level(logging.ERROR)
    status, body = await bot.invoke("home.help")
    assert status == 200, body
    assert body["statusCode"] == 200
    text = texts_of(body["value"])
    assert "Noe gikk galt" in text
    ref = _reference_in(text)
    assert "secret detail xyz" not in json.dumps(body) and "secret detail xyz" not in bot.stub.everything_sent()
    assert "secret detail xyz" in caplog.text and ref in caplog.text


async def test_connector_failure_on_reply_becomes_the_friendly_card(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.stub.fail("a:kari-personal", 500, times=1)
    caplog.set_level(logging.ERROR)
    status, _ = await bot.post(teams_activity(bot.stub.url, text="hjelp"))
    assert status in (200, 202)
    cards = bot.stub.cards("a:kari-personal")
    assert len(cards) == 1
    validate_card(cards[0])
    assert "Noe gikk galt" in texts_of(cards[0])
    delivered = json.dumps(bot.stub.activities("a:kari-personal"), ensure_ascii=False)
    assert "InternalServerError" not in delivered and "Traceback" not in delivered
    assert _reference_in(texts_of(cards[0])) in caplog.text


def _reference_in(text: str) -> str:
    import re

    found = re.search(r"referansen ([0-9A-F]{8})", text)
    assert found, text
    return found.group(1)


# -- security --------------------------------------------------------------------------------


@pytest.fixture
async def secured_bot(start_bot: BotFactory, make_settings: Callable[..., Settings]) -> Bot:
    conn = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
    return await start_bot(
        make_settings(
            **{
                conn + "CLIENTID": FAKE_APP_ID,
                conn + "CLIENTSECRET": "not-a-real-secret",
                conn + "TENANTID": TENANT,
                conn + "AUTHTYPE": "ClientSecret",
                "HOST": "127.0.0.1",
            }
        )
    )


@pytest.mark.parametrize(
    "authorization", [None, "Bearer garbage", "Bearer ", "Basic a2FyaTpwYXNz", "garbage", "Bearer a.b.c"]
)
async def test_configured_app_refuses_requests_without_a_valid_jwt(secured_bot: Bot, authorization: str | None) -> None:
    assert not secured_bot.app[app_module.RUNTIME].settings.local_mode
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, _ = await secured_bot.post(teams_activity(secured_bot.stub.url, text="hjelp"), headers)
    assert status == 401
    assert secured_bot.stub.requests == []
    assert await secured_bot.rows(User) == []


class _FakeJwks:
    """Stands in for the JWKS download: always hands out `key`."""

    def __init__(self, key: Any) -> None:
        self.key = key

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> Any:
        return jwt.PyJWK.from_dict(
            {
                **jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True),
                "kid": header.get("kid", "k1"),
                "alg": "RS256",
                "use": "sig",
            }
        )


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://api.botframework.com",
        "aud": FAKE_APP_ID,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "serviceurl": "https://smba.trafficmanager.net/emea/",
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


async def test_forged_tokens_are_refused(secured_bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signature and audience are checked: a token signed with another key, for another
    app, or expired is refused (the JWKS download is replaced by the trusted key)."""
    from microsoft_agents.hosting.core.authorization.jwt import jwt_token_validator

    trusted = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setattr(jwt_token_validator.JwtTokenValidator, "_jwk_client_manager", _FakeJwks(trusted))
    now = int(time.time())
    for token in (
        _token(attacker),  # wrong signature
        _token(trusted, aud="00000000-0000-0000-0000-000000000000"),  # another app
        _token(trusted, exp=now - 3600, iat=now - 7200, nbf=now - 7200),  # expired (beyond leeway)
    ):
        status, _ = await secured_bot.post(
            teams_activity(secured_bot.stub.url, text="hjelp"), {"Authorization": f"Bearer {token}"}
        )
        assert status == 401
    assert secured_bot.stub.requests == []


async def test_healthz_needs_no_token(secured_bot: Bot) -> None:
    resp = await secured_bot.client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["local_mode"] is False


async def test_local_mode_healthz(bot: Bot) -> None:
    resp = await bot.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["local_mode"] is True


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("127.8.9.10", True),
        ("10.1.2.3", False),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        (None, False),
        ("localhost", False),
    ],
)
def test_is_loopback(remote: str | None, expected: bool) -> None:
    assert bot_server._is_loopback(remote) is expected


async def test_local_mode_refuses_non_loopback_remote(bot: Bot) -> None:
    web_app: web.Application = bot.app
    middleware = web_app.middlewares[0]
    called: list[bool] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        called.append(True)
        return web.Response(status=202)

    for remote, path, expected in (
        ("10.1.2.3", "/api/messages", 403),
        ("127.0.0.1", "/api/messages", 202),
        ("10.1.2.3", "/healthz", 202),
    ):
        request = make_mocked_request("POST", path, app=web_app, transport=_Transport(remote))
        response = await middleware(request, handler)
        assert response.status == expected, (remote, path)
    assert len(called) == 2


class _Transport:
    """Enough of an asyncio transport for `request.remote`."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return (self.peer, 50000)
        return default

    def is_closing(self) -> bool:
        return False


def _non_loopback_ipv4() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


async def test_local_mode_refuses_a_real_non_loopback_client(
    make_settings: Callable[..., Settings], stub: ConnectorStub
) -> None:
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address (the middleware test covers it)")
    # Settings refuse a non-loopback HOST in local mode; the server here binds wide anyway, as a
    # proxy or tunnel in front of the bot would make it reachable, to check the request guard.
    web_app = await app_module.build_app(make_settings())
    client = TestClient(TestServer(web_app, host=address))
    await client.start_server()
    try:
        resp = await client.post("/api/messages", json=teams_activity(stub.url, text="hjelp"))
        assert resp.status == 403
        assert stub.requests == []
        health = await client.get("/healthz")
        assert health.status == 200
    finally:
        await client.close()


# -- the Connector stub itself ------------------------------------------------------------


async def _post(session: Any, stub: ConnectorStub, cid: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with session.post(
        f"{stub.url}v3/conversations/{cid}/activities", json=body or {"type": "message", "text": "x"}
    ) as resp:
        return resp.status, resp.headers.get("Retry-After")


async def test_stub_enforces_teams_rate_limits() -> None:
    import aiohttp

    async with ConnectorStub() as stub, aiohttp.ClientSession() as session:
        results = [await _post(session, stub, "a:busy") for _ in range(10)]
        assert [s for s, _ in results] == [201] * 7 + [429] * 3
        assert all(ra is not None and int(ra) >= 1 for s, ra in results if s == 429)
        assert stub.deliveries("a:busy") == 7 and len(stub.refused(429)) == 3
        assert (await _post(session, stub, "a:quiet"))[0] == 201  # per conversation

    # Per app: 50 per second over all conversations.
    async with ConnectorStub() as stub, aiohttp.ClientSession() as session:
        statuses = [(await _post(session, stub, f"a:c{i}"))[0] for i in range(60)]
        assert statuses.count(201) == 50 and statuses.count(429) == 10
        assert sum(stub.delivery_counts().values()) == 50


async def test_stub_sliding_windows() -> None:
    """The same windows scaled down 20x (7/50 ms, 8/100 ms) to keep the test fast."""
    import asyncio

    import aiohttp

    limits = ((7, 0.05), (8, 0.1), (60, 1.5), (1800, 180.0))
    async with ConnectorStub(conversation_limits=limits) as stub, aiohttp.ClientSession() as session:
        assert [(await _post(session, stub, "a:w"))[0] for _ in range(7)] == [201] * 7
        await asyncio.sleep(0.06)  # the 1st window has passed, the 2nd has not: one more fits
        assert [(await _post(session, stub, "a:w"))[0] for _ in range(2)] == [201, 429]
        await asyncio.sleep(0.11)
        assert (await _post(session, stub, "a:w"))[0] == 201


async def test_stub_fault_injection_block_update_create_and_delay() -> None:
    import aiohttp

    async with ConnectorStub(delay=0.0) as stub, aiohttp.ClientSession() as session:
        stub.fail("a:x", 503, times=2, retry_after=3)
        stub.fail(None, 502)
        assert await _post(session, stub, "a:x") == (503, "3")
        assert await _post(session, stub, "a:x") == (503, "3")
        assert (await _post(session, stub, "a:y"))[0] == 502  # None matches any conversation
        assert (await _post(session, stub, "a:x"))[0] == 201
        for status in (403, 404, 412, 429):
            stub.fail("a:z", status)
            assert (await _post(session, stub, "a:z"))[0] == status
        assert stub.deliveries("a:z") == 0

        stub.block("a:blocked")
        for _ in range(3):
            async with session.post(f"{stub.url}v3/conversations/a:blocked/activities", json={"type": "message"}) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "ConversationBlockedByUser"
        stub.unblock("a:blocked")
        assert (await _post(session, stub, "a:blocked"))[0] == 201

        async with session.post(f"{stub.url}v3/conversations/a:x/activities/stub-1", json={"type": "message"}) as r:
            assert r.status == 201 and (await r.json())["id"]
        async with session.put(
            f"{stub.url}v3/conversations/a:x/activities/stub-1", json={"type": "message", "text": "v2"}
        ) as r:
            assert r.status == 200 and (await r.json()) == {"id": "stub-1"}
        assert [(u.conversation_id, u.activity_id, u.activity["text"]) for u in stub.updates] == [
            ("a:x", "stub-1", "v2")
        ]
        async with session.post(
            f"{stub.url}v3/conversations", json={"isGroup": False, "members": [{"id": "29:k"}]}
        ) as r:
            assert r.status == 201 and (await r.json())["id"].startswith("a:")
        assert stub.created[0]["members"] == [{"id": "29:k"}]

        marked = {"type": "message", "channelData": {"idempotencyKey": "k1"}}
        await _post(session, stub, "a:dup", marked)
        await _post(session, stub, "a:dup", marked)
        assert stub.duplicates("a:dup") == {"k1": 2}

        stub.delay = 0.05
        started = time.monotonic()
        await _post(session, stub, "a:slow")
        assert time.monotonic() - started >= 0.05


async def test_stub_without_limits_takes_every_post_in_order_and_concurrently() -> None:
    """What the benchmarks rely on, without timing the stub's own speed (which measures the
    machine): with rate limits off no post is refused, each is delivered once and in order
    per conversation, and clients are served at the same time, not one after another."""
    import asyncio

    import aiohttp

    async with ConnectorStub(rate_limits=False) as stub, aiohttp.ClientSession() as session:
        n, workers = 600, 10

        async def worker(w: int) -> None:
            for i in range(n // workers):
                status, _ = await _post(session, stub, f"a:load-{w}", {"type": "message", "text": str(i)})
                assert status == 201

        await asyncio.gather(*(worker(w) for w in range(workers)))
        assert sum(stub.delivery_counts().values()) == n and stub.refused() == []
        for w in range(workers):
            assert stub.texts(f"a:load-{w}") == [str(i) for i in range(n // workers)]

        # Ten posts that each take 0.3 s: together about 0.3 s; one after another 3 s.
        stub.delay = 0.3
        started = time.monotonic()
        answers = await asyncio.gather(*(_post(session, stub, f"a:slow-{w}") for w in range(workers)))
        assert [status for status, _ in answers] == [201] * workers
        assert time.monotonic() - started < 1.5
