"""Reminder delivery through the real runtime (`app.build_runtime`) to a Connector stub that
enforces Teams' rate limits and injects faults, on SQLite and on PostgreSQL.

Every reminder ends in one of delivered (→ answered), escalated or cancelled: a 429 waits
for Retry-After, 412/502/503/504 back off with jitter, 403/404 mark the avtaleforvalter
unreachable and escalate to Innkjøpsseksjonen's follow-up channel, a manager without a chat
gets the app installed (the real msgraph-sdk installer against the Graph-shaped server) or
is escalated, a permanent Graph failure (no permission, a refused token) is retried a
bounded number of times and then escalated, an unanswered reminder escalates after 7 days
once, a changed contract cancels its obsolete reminders before they go out. Escalation cards
give a plain reason and a reference, never an error text. The limiter keeps the sends
under Teams' limits.

The runtime runs with REMINDER_WORKING_HOURS=always so that due reminders go out at any
hour of the test run; the working-hours planning has its own test.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app import Runtime, build_runtime
from integrations.factory import CatalogChatInstaller
from integrations.graph_auth import AsyncMsalClientCredential, StaticTokenCredential
from integrations.graph_client import build_graph_client, close_graph_client
from manifest.build import DEFAULT_TEAMS_APP_ID
from procurement.access import Actor
from procurement.contracts.model import ContractOption
from procurement.contracts.service import Contracts
from procurement.errors import EscalationReason
from procurement.reminders.service import Reminders
from procurement.shared.calendar import is_working_day
from procurement.store.database import Store
from procurement.store.tables import ConversationRef, Reminder, User
from settings import Settings
from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub
from tests.graph_server import CATALOG_PERMISSION, INSTALL_PERMISSION, GraphTestServer
from tests.integration.reminder_fixtures import (
    FOLLOWUP_CHANNEL,
    OSLO,
    bulk_due_reminders,
    contract_with_one_due,
    manager_email,
    manager_id,
    oslo_today,
    personal_conversation,
    reminder_deliveries,
    seed_people,
    text_of,
    upsert_contracts,
)

ANSWER_VERBS = {"reminder.new_needs_report", "reminder.not_relevant", "reminder.snooze"}


@dataclass
class Env:
    stub: ConnectorStub
    runtime: Runtime

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def contracts(self) -> Contracts:
        return self.runtime.services.contracts

    @property
    def reminders(self) -> Reminders:
        return self.runtime.services.reminders

    async def run_once(self) -> int:
        return await self.runtime.reminder_worker.run_once()

    async def rows(self, *where: Any) -> list[Reminder]:
        async with self.store.session() as session:
            return list(await session.scalars(sa.select(Reminder).where(*where).order_by(Reminder.id)))

    async def due_one(self) -> Reminder:
        """The one due reminder of a `contract_with_one_due` contract (its 6-month one)."""
        (row,) = await self.rows(Reminder.kind == "end_6m")
        return row

    async def pending_due(self) -> list[Reminder]:
        return await self.rows(Reminder.status == "pending", Reminder.send_after <= datetime.now(UTC))

    async def set(self, ids: list[int], **values: Any) -> None:
        """Move time for some reminders (e.g. delivered_at a week back)."""
        async with self.store.session() as session:
            await session.execute(sa.update(Reminder).where(Reminder.id.in_(ids)).values(**values))

    def channel_cards(self) -> list[dict[str, Any]]:
        return self.stub.cards(FOLLOWUP_CHANNEL)


@pytest.fixture
async def env(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Env]:
    async with ConnectorStub() as stub:
        runtime = await build_runtime(
            make_settings(
                DATABASE_URL=db_url,
                FOLLOWUP_CHANNEL_ID=FOLLOWUP_CHANNEL,
                REMINDER_WORKING_HOURS="always",
            )
        )
        try:
            yield Env(stub, runtime)
        finally:
            await runtime.store.close()
        for card in stub.cards():
            validate_card(card)


@dataclass
class GraphEnv(Env):
    graph: GraphTestServer

    def chat_of(self, aad_id: str) -> str:
        """The chat id the Graph-shaped server gives the app's installation for the user."""
        return f"19:{aad_id}_{self.graph.bot_id.split(':', 1)[-1]}@unq.gbl.spaces"

    def install_posts(self) -> list[int]:
        return [r.status for r in self.graph.requests_matching("POST", r"/teamwork/installedApps$")]


SECRET = "a-client-secret-entra-no-longer-accepts"


class RefusingEntraId:
    """msal's answer when the app's client secret is wrong or expired (AADSTS7000215)."""

    def acquire_token_for_client(
        self, scopes: list[str], claims_challenge: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret provided ({SECRET}).\nTrace ID: 1",
        }


@pytest.fixture
async def graph_env(
    request: pytest.FixtureRequest, db_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[GraphEnv]:
    """The runtime with the real app installer (`CatalogChatInstaller` → `GraphChatInstaller`,
    msgraph-sdk) talking to the Graph-shaped server; manager 1 is a Graph user with no chat
    with the bot yet. kiota's own retries are off, so each Graph answer reaches the worker.
    Parametrized indirectly with "refused secret", the token comes from the real msal
    credential and Entra ID refuses the secret."""
    async with ConnectorStub() as stub, GraphTestServer() as graph:
        graph.add_catalog_app(external_id=DEFAULT_TEAMS_APP_ID)
        graph.add_user(manager_id(1), "Siri Johansen", mail=manager_email(1))
        credential: Any = StaticTokenCredential(graph.token)
        if getattr(request, "param", "") == "refused secret":
            credential = AsyncMsalClientCredential(
                "tenant", "client", client_secret=SECRET, app_factory=RefusingEntraId
            )
        client = build_graph_client(credential, graph.base_url, max_retries=0)
        runtime = await build_runtime(
            make_settings(
                DATABASE_URL=db_url,
                FOLLOWUP_CHANNEL_ID=FOLLOWUP_CHANNEL,
                REMINDER_WORKING_HOURS="always",
            ),
            installer=CatalogChatInstaller(client, DEFAULT_TEAMS_APP_ID),
        )
        try:
            await seed_people(runtime.store, stub.url, [manager_id(2)])  # manager 1 has never talked to the bot
            yield GraphEnv(stub, runtime, graph)
        finally:
            await runtime.store.close()
            await close_graph_client(client)
        for card in stub.cards():
            validate_card(card)


def verbs(card: dict[str, Any]) -> set[str]:
    return {a["verb"] for a in card.get("actions", []) if a.get("type") == "Action.Execute"}


# -- delivery ----------------------------------------------------------------------------


async def test_due_reminders_reach_the_managers_chat_once(env: Env) -> None:
    today = oslo_today()
    await seed_people(env.store, env.stub.url, [manager_id(1), manager_id(2)])
    option = ContractOption(number=1, months=12, notice_deadline=today + timedelta(days=60))
    await upsert_contracts(
        env.contracts,
        [
            contract_with_one_due("KAV-1", 1),
            contract_with_one_due("KAV-2", 1, options=[option], end_in_days=150),
            contract_with_one_due("KAV-3", 2),
        ],
    )
    due = await env.pending_due()
    assert len(due) == 4  # one end reminder each, plus KAV-2's 3-month option reminder
    later = await env.rows(Reminder.status == "pending", Reminder.send_after > datetime.now(UTC))
    assert later, "the 3-month reminders lie ahead"

    assert await env.run_once() == 4
    # KAV-2's two due reminders share one card (issue 9): manager 1 gets two cards, not three.
    for manager, expected in ((1, 2), (2, 1)):
        cards = env.stub.cards(personal_conversation(manager_id(manager)))
        assert len(cards) == expected
        for card in cards:
            validate_card(card)
            assert ANSWER_VERBS <= verbs(card)
            assert all(a.get("title") for a in card["actions"])
    option_cards = [c for c in env.stub.cards() if "reminder.extend_option" in verbs(c)]
    assert len(option_cards) == 1 and "KAV-2" in text_of(option_cards[0])
    assert "Fristen for å utløse opsjon 1 er" in text_of(option_cards[0])
    assert "Avtalen utløper" in text_of(option_cards[0])

    delivered = {r.id: r for r in await env.rows(Reminder.status == "delivered")}
    assert set(delivered) == {r.id for r in due}
    assert reminder_deliveries(env.stub) == Counter(dict.fromkeys(delivered, 1))
    for r in delivered.values():
        assert r.delivered_at is not None and r.activity_id and r.claimed_by is None
        assert r.conversation_id == personal_conversation(r.recipient_aad_id or "")

    # Another round sends nothing more, and nothing is left behind.
    sent = len(env.stub.requests)
    assert await env.run_once() == 0
    assert len(env.stub.requests) == sent
    assert not await env.pending_due()


async def test_429_waits_for_retry_after_then_delivers_once(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    conv = personal_conversation(manager_id(1))
    env.stub.fail(conv, 429, times=1, retry_after=2)

    before = datetime.now(UTC)
    await env.run_once()
    assert [r.status for r in env.stub.requests] == [429]
    assert env.stub.deliveries(conv) == 0
    row = await env.due_one()
    assert row.status == "pending" and row.claimed_by is None
    assert row.send_after >= before + timedelta(seconds=2)
    assert "429" in (row.last_error or "")

    assert await env.run_once() == 0  # not before Retry-After
    assert env.stub.deliveries(conv) == 0
    await asyncio.sleep(max(0.0, (row.send_after - datetime.now(UTC)).total_seconds()) + 0.05)
    assert await env.run_once() == 1
    assert reminder_deliveries(env.stub, conv) == Counter({row.id: 1})
    assert (await env.due_one()).status == "delivered"
    assert await env.run_once() == 0 and env.stub.deliveries(conv) == 1


@pytest.mark.parametrize("status", [503, 412, 502, 504])
async def test_transient_errors_back_off_with_jitter_and_deliver_once(env: Env, status: int) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    conv = personal_conversation(manager_id(1))
    env.stub.fail(conv, status, times=2)

    for _ in range(2):
        before = datetime.now(UTC)
        await env.run_once()
        after = datetime.now(UTC)
        row = await env.due_one()
        assert row.status == "pending" and row.claimed_by is None, "released for a later try"
        assert str(status) in (row.last_error or "")
        # The shared backoff (procurement.shared.backoff, attempt 1, base 2 s): 2–4 s after
        # the failure, which happened somewhere between `before` and `after`.
        assert before + timedelta(seconds=2) <= row.send_after <= after + timedelta(seconds=4), (
            before,
            row.send_after,
            after,
        )
        await env.set([row.id], send_after=datetime.now(UTC))  # let the back-off pass

    assert await env.run_once() == 1
    assert [r.status for r in env.stub.requests] == [status, status, 201]
    assert reminder_deliveries(env.stub, conv) == Counter({row.id: 1})
    assert (await env.due_one()).status == "delivered"


def stored_reason(row: Reminder) -> EscalationReason:
    """The row's escalation reason: a code and a reference, never a message."""
    assert row.escalation_reason and re.fullmatch(r"[a-z_]+:F-[0-9A-F]{6}", row.escalation_reason), (
        row.escalation_reason
    )
    return EscalationReason.parse(row.escalation_reason)


# Error texts of Teams and Graph that must never reach a card.
RAW_ERROR_TEXT = (
    "Forbidden",
    "ConversationBlockedByUser",
    "ConversationNotFound",
    "connector answered",
    "Missing role",
    "permission policy",
    "InvalidAuthenticationToken",
    "NotFound",
    "Error",
)


def assert_plain(body: str) -> None:
    for raw in RAW_ERROR_TEXT:
        assert raw not in body, (raw, body)


@pytest.mark.parametrize(
    ("status", "why", "says"),
    [
        (403, "blocked", "Forvalter 0001 har blokkert appen"),
        (404, "not_installed", "Forvalter 0001 har ikke appen installert"),
    ],
)
async def test_blocked_or_uninstalled_manager_is_escalated_to_the_channel(
    env: Env, status: int, why: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    conv = personal_conversation(manager_id(1))
    if status == 403:
        env.stub.block(conv)  # the user blocked the bot
    else:
        env.stub.fail(conv, 404, times=1)  # the app was removed: conversation not found

    caplog.set_level(logging.INFO)
    await env.run_once()
    assert env.stub.deliveries(conv) == 0, "no card (nor error notice) reached the manager"
    row = await env.due_one()
    assert row.status == "escalated" and row.escalated_at is not None
    reason = stored_reason(row)
    assert reason.code == why
    cards = env.channel_cards()
    assert len(cards) == 1
    validate_card(cards[0])
    body = text_of(cards[0])
    # Plain Norwegian: the avtaleforvalter by name, the real reason, the contract number.
    assert manager_email(1) not in body, body
    assert says in body and "Avtale KAV-1" in body and "KAV-1" in body, body
    assert {"reminder.assign_manager", "reminder.escalation_handled", "reminder.open_contract"} <= verbs(cards[0])
    assert_plain(body)
    # The details are in the log, under the reference.
    assert any(
        reason.ref in r.getMessage() and f"connector answered {status}" in r.getMessage() for r in caplog.records
    )

    async with env.store.session() as session:
        ref = await session.get(ConversationRef, conv)
        user = await session.get(User, manager_id(1))
    assert ref is not None and ref.installed is False
    assert user is not None and user.unreachable_reason == why

    # Escalated once; the next rounds add nothing.
    assert await env.run_once() == 0
    assert len(env.channel_cards()) == 1


async def test_manager_without_a_chat_gets_the_app_installed(graph_env: GraphEnv) -> None:
    env = graph_env
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])

    assert await env.run_once() == 1
    chat = env.chat_of(manager_id(1))
    assert env.install_posts() == [201]
    cards = env.stub.cards(chat)
    assert len(cards) == 1 and ANSWER_VERBS <= verbs(cards[0])
    row = await env.due_one()
    assert row.status == "delivered" and row.conversation_id == chat
    async with env.store.session() as session:
        ref = await session.get(ConversationRef, chat)
    assert ref is not None and ref.installed and ref.user_aad_id == manager_id(1)

    # The next reminder uses the stored chat: no second installation.
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-2", 1)])
    assert await env.run_once() == 1
    assert env.install_posts() == [201]
    assert env.stub.deliveries(chat) == 2


@pytest.mark.parametrize(
    ("case", "why", "says"),
    [
        (
            "blocked by policy",
            "not_allowed_by_policy",
            # (Graph hides a blocked user from the directory too: the e-mail address stands in.)
            f"appen er ikke tillatt for {manager_email(1)} i Teams (app-policy) — kontakt IT, referanse ",
        ),
        # Not in the directory: no name is known, so the e-mail address stands in for one.
        ("not in the directory", "unknown_user", f"{manager_email(1)} finnes ikke i brukerkatalogen"),
        (
            "app not published",
            "not_in_catalog",
            "appen finnes ikke i organisasjonens appkatalog — kontakt IT",
        ),
    ],
)
async def test_manager_who_cannot_be_installed_is_escalated_at_once(
    graph_env: GraphEnv, case: str, why: str, says: str
) -> None:
    env = graph_env
    if case == "blocked by policy":
        env.graph.add_user(manager_id(1), "Siri Johansen", blocked=True)
    elif case == "not in the directory":
        del env.graph.users[manager_id(1)]
    else:
        env.graph.catalog.clear()
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])

    await env.run_once()  # unreachable: marked and posted to the channel in the same round
    row = await env.due_one()
    assert row.status == "escalated"
    reason = stored_reason(row)
    assert reason.code == why
    (card,) = env.channel_cards()
    body = text_of(card)
    assert says in body, body
    if says.endswith("referanse "):
        assert f"referanse {reason.ref}" in body
    assert_plain(body)
    assert [c for c in env.stub.delivery_counts() if c != FOLLOWUP_CHANNEL] == []


async def test_local_mode_manager_without_a_chat_is_escalated(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(2)])  # manager 1 has no chat, and no Graph
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    await env.run_once()
    row = await env.due_one()
    assert row.status == "escalated" and stored_reason(row).code == "not_installed"
    (card,) = env.channel_cards()
    assert "har ikke appen installert" in text_of(card)


SIGN_IN_FAILED = "appen fikk ikke logget inn i Microsoft 365 (feil eller utløpt hemmelighet eller sertifikat)"
NO_PERMISSION = "appen kunne ikke installeres fordi den mangler tillatelse i Microsoft 365"


@pytest.mark.parametrize(
    ("graph_env", "case", "says"),
    [
        ("", "no install permission", NO_PERMISSION),
        ("", "no app catalog permission", NO_PERMISSION),
        ("", "wrong token", SIGN_IN_FAILED),
        ("refused secret", "refused secret", SIGN_IN_FAILED),
    ],
    indirect=["graph_env"],
    ids=["install-permission", "catalog-permission", "wrong-token", "refused-secret"],
)
async def test_permanent_graph_failure_is_retried_with_backoff_then_escalated(
    graph_env: GraphEnv, case: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 for a permission the app lacks, or a refused token, is the same for every try
    until IT fixes it: retried a bounded number of times with a growing backoff (an
    administrator may fix it meanwhile), then escalated with a reference, not every ≤ 20 s
    for ever."""
    env = graph_env
    if case == "no install permission":
        env.graph.revoke(INSTALL_PERMISSION)
    elif case == "no app catalog permission":
        env.graph.revoke(CATALOG_PERMISSION)
    elif case == "wrong token":
        env.graph.token = "a-token-from-a-revoked-secret"
    caplog.set_level(logging.INFO)
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    worker = env.runtime.reminder_worker
    attempts = worker.permanent_attempts
    assert 3 <= attempts <= 10

    steps = []
    for attempt in range(1, attempts):
        before = datetime.now(UTC)
        await env.run_once()
        row = await env.due_one()
        assert row.status == "pending" and row.claimed_by is None, f"attempt {attempt}: released"
        assert row.last_error and row.last_error.startswith("PermanentError"), row.last_error
        assert SECRET not in row.last_error
        wait = (row.send_after - before).total_seconds()
        step = worker.permanent_backoff * 2 ** (attempt - 1)
        assert step / 2 - 1 <= wait <= step + 1, (attempt, wait)
        steps.append(wait)
        assert await env.run_once() == 0, "not before its backoff"
        await env.set([row.id], send_after=datetime.now(UTC))
    assert env.channel_cards() == []

    await env.run_once()  # the last attempt: marked for escalation and posted
    row = await env.due_one()
    assert row.status == "escalated"
    reason = stored_reason(row)
    assert reason.code == ("sign_in_failed" if case in ("wrong token", "refused secret") else "permission_missing")
    (card,) = env.channel_cards()
    body = text_of(card)
    assert f"{says} — kontakt IT, referanse {reason.ref}" in body, body
    assert_plain(body)
    assert SECRET not in body and "AADSTS" not in body
    logged = [r.getMessage() for r in caplog.records if reason.ref in r.getMessage()]
    detail = {"wrong token": "InvalidAuthenticationToken", "refused secret": "invalid_client"}.get(case, "Missing role")
    assert logged and any(detail in m for m in logged), logged
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    # Each attempt met the failure once (the refused secret: before reaching Graph at all),
    # and nothing went to the manager.
    refused = [r for r in env.graph.requests if r.status in (401, 403)]
    assert len(refused) == (0 if case == "refused secret" else attempts)
    assert not env.graph.requests if case == "refused secret" else True
    assert [c for c in env.stub.delivery_counts() if c != FOLLOWUP_CHANNEL] == []


async def test_a_permanent_failure_fixed_meanwhile_delivers(graph_env: GraphEnv) -> None:
    env = graph_env
    env.graph.revoke(INSTALL_PERMISSION)
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    await env.run_once()
    row = await env.due_one()
    assert row.status == "pending"
    env.graph.revoked.clear()  # IT granted the permission
    await env.set([row.id], send_after=datetime.now(UTC))
    assert await env.run_once() == 1
    assert (await env.due_one()).status == "delivered"
    assert len(env.stub.cards(env.chat_of(manager_id(1)))) == 1


async def test_throttled_graph_install_honours_retry_after(graph_env: GraphEnv) -> None:
    env = graph_env
    env.graph.fail_next("POST", r"/teamwork/installedApps$", 429, {"Retry-After": "7"})
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    before = datetime.now(UTC)
    await env.run_once()
    row = await env.due_one()
    assert row.status == "pending" and "429" in (row.last_error or "")
    assert before + timedelta(seconds=7) <= row.send_after <= datetime.now(UTC) + timedelta(seconds=7)
    assert await env.run_once() == 0, "not before Retry-After"
    await env.set([row.id], send_after=datetime.now(UTC))
    assert await env.run_once() == 1
    assert env.install_posts() == [429, 201]
    assert (await env.due_one()).status == "delivered"
    assert env.channel_cards() == []


async def test_unanswered_after_7_days_escalates_once_answered_does_not(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due(f"KAV-{i}", 1) for i in range(1, 4)])
    assert await env.run_once() == 3
    r1, r2, r3 = await env.rows(Reminder.status == "delivered")
    outcome = await env.reminders.answer(Actor(aad_id=manager_id(1), name="Forvalter"), r2.id, "new_needs_report", "")
    assert outcome.changed
    now = datetime.now(UTC)
    await env.set([r1.id, r2.id], delivered_at=now - timedelta(days=7, minutes=1))
    await env.set([r3.id], delivered_at=now - timedelta(days=6, hours=23))

    await env.run_once()
    cards = env.channel_cards()
    assert len(cards) == 1
    body = text_of(cards[0])
    assert "Avtale KAV-1" in body and "Forvalter 0001 har ikke svart på 7 dager" in body
    status = {r.id: r.status for r in await env.rows(Reminder.kind == "end_6m")}
    assert status == {r1.id: "escalated", r2.id: "answered", r3.id: "delivered"}

    for _ in range(2):
        assert await env.run_once() == 0
    assert len(env.channel_cards()) == 1
    assert env.stub.deliveries(personal_conversation(manager_id(1))) == 3


async def test_snooze_brings_the_reminder_back_in_7_days(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    await env.run_once()
    row = await env.due_one()
    conv = personal_conversation(manager_id(1))

    before = datetime.now(UTC)
    outcome = await env.reminders.answer(Actor(aad_id=manager_id(1), name="Forvalter"), row.id, "snooze", "")
    assert outcome.changed
    row = await env.due_one()
    assert row.status == "pending" and row.delivered_at is None
    assert before + timedelta(days=7) <= row.send_after <= datetime.now(UTC) + timedelta(days=7)
    assert await env.run_once() == 0  # neither sent again now nor escalated
    assert env.stub.deliveries(conv) == 1

    # Seven days on, it comes back as a fresh question.
    await env.set([row.id], send_after=datetime.now(UTC) - timedelta(seconds=1))
    assert await env.run_once() == 1
    assert reminder_deliveries(env.stub, conv) == Counter({row.id: 2})
    again = env.stub.cards(conv)[-1]
    assert ANSWER_VERBS <= verbs(again), "it asks again, with its buttons"
    assert "påminnes om 7 dager" not in text_of(again)
    row = await env.due_one()
    assert row.status == "delivered" and row.answer is None

    # In working hours (the default), the snoozed reminder returns on a working day, 08–16 Oslo.
    await env.set([row.id], status="delivered")
    working = Reminders(env.store, working_hours=True)
    await working.answer(Actor(aad_id=manager_id(1), name="Forvalter"), row.id, "snooze", "")
    row = await env.due_one()
    back = row.send_after.astimezone(OSLO)
    assert row.send_after >= datetime.now(UTC) + timedelta(days=7) - timedelta(minutes=1)
    assert is_working_day(back.date()) and 8 <= back.hour < 16, back


async def test_changed_contract_cancels_obsolete_reminders_before_they_go_out(env: Env) -> None:
    today = oslo_today()
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    option = ContractOption(number=1, months=12, notice_deadline=today + timedelta(days=60))
    original = contract_with_one_due("KAV-1", 1, options=[option], end_in_days=150)
    await upsert_contracts(env.contracts, [original])
    planned = {r.id: r.kind for r in await env.pending_due()}
    assert sorted(planned.values()) == ["end_6m", "option_notice_3m"]

    # Before the worker runs: the option is removed and the end date moves a year on.
    changed = contract_with_one_due("KAV-1", 1, end_in_days=515)
    assert await env.contracts.upsert_contract(changed, source="test") == "updated"
    obsolete = await env.rows(Reminder.status == "cancelled")
    assert {r.id for r in obsolete} >= set(planned)
    assert all(r.escalation_reason == "contract changed" for r in obsolete)

    # Even when their time comes, cancelled reminders are never claimed or sent.
    await env.set([r.id for r in obsolete], send_after=datetime.now(UTC) - timedelta(days=1))
    for _ in range(2):
        await env.run_once()
    sent = reminder_deliveries(env.stub)
    assert not set(sent) & {r.id for r in obsolete}, sent
    assert {r.status for r in await env.rows(Reminder.id.in_([r.id for r in obsolete]))} == {"cancelled"}
    # The new plan's reminders are pending for the new end date.
    new = await env.rows(Reminder.status == "pending")
    assert new and all(r.target_date == changed.end_date for r in new)


async def test_planned_send_times_are_working_hours_in_oslo(store: Store) -> None:
    # Wednesday 24 March 2027, 17:30 in Oslo: after hours, and Easter (25 Mar–29 Mar) ahead.
    now = datetime(2027, 3, 24, 17, 30, tzinfo=OSLO).astimezone(UTC)
    contracts = Contracts(store, lambda: now, working_hours=True)
    today = now.astimezone(OSLO).date()
    items = [
        contract_with_one_due("KAV-E", 1, today),  # overdue 6-month reminder: next working hour
        # Due dates that fall on weekends and holidays (17 May, Christmas, a Sunday …).
        contract_with_one_due("KAV-M", 1, today, end_in_days=(date(2027, 11, 17) - today).days),
        contract_with_one_due("KAV-C", 1, today, end_in_days=(date(2028, 3, 26) - today).days),
        contract_with_one_due("KAV-S", 1, today, end_in_days=(date(2027, 12, 25) - today).days),
    ]
    await upsert_contracts(contracts, items)
    async with store.session() as session:
        rows = list(await session.scalars(sa.select(Reminder).order_by(Reminder.id)))
    assert len(rows) >= 8
    for r in rows:
        local = r.send_after.astimezone(OSLO)
        assert is_working_day(local.date()), (r.subject_key, local)
        assert 8 <= local.hour < 16, (r.subject_key, local)
        assert local.date() >= r.due_date
    overdue = next(r for r in rows if r.subject_key.startswith("KAV-E:end_6m"))
    # Thursday, Good Friday, the weekend and Easter Monday are skipped.
    assert overdue.send_after.astimezone(OSLO) == datetime(2027, 3, 30, 8, 0, tzinfo=OSLO)


# -- Teams' rate limits --------------------------------------------------------------------


def max_in_window(times: list[float], span: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_thirty_reminders_to_one_manager_stay_under_the_conversation_limits(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    ids = await bulk_due_reminders(env.store, 30, [manager_id(1)])
    conv = personal_conversation(manager_id(1))

    started = time.monotonic()
    assert await env.run_once() == 30
    elapsed = time.monotonic() - started
    assert env.stub.refused(429) == [], "the limiter keeps us under Teams' limits"
    assert reminder_deliveries(env.stub, conv) == Counter(dict.fromkeys(ids, 1))
    arrived = sorted(r.at for r in env.stub.requests if r.delivered)
    assert max_in_window(arrived, 1.0) <= 7 and max_in_window(arrived, 2.0) <= 8
    # 8 per 2 s: the 30th send cannot be earlier than 3 full windows after the first.
    assert arrived[-1] - arrived[0] >= 6.0 and elapsed >= 6.0


async def test_two_hundred_managers_stay_under_50_per_second(env: Env) -> None:
    managers = [manager_id(i) for i in range(200)]
    await seed_people(env.store, env.stub.url, managers)
    ids = await bulk_due_reminders(env.store, 200, managers)

    booked: list[float] = []
    limiter = env.runtime.sender.limiter
    acquire = limiter.acquire

    async def recorded(conversation_id: str) -> None:
        await acquire(conversation_id)
        booked.append(time.monotonic())

    limiter.acquire = recorded  # type: ignore[method-assign]
    started = time.monotonic()
    while len(reminder_deliveries(env.stub)) < len(ids) and time.monotonic() - started < 30:
        if not await env.run_once():
            await asyncio.sleep(0.1)  # one refused by a 429 waits for its Retry-After
    elapsed = time.monotonic() - started

    assert reminder_deliveries(env.stub) == Counter(dict.fromkeys(ids, 1)), "each once"
    assert {r.status for r in await env.rows()} == {"delivered"}
    # We book at most 50 sends in any second …
    assert max_in_window(sorted(booked), 1.0) <= 50
    arrived = sorted(r.at for r in env.stub.requests if r.delivered)
    assert max_in_window(arrived, 1.0) <= 50
    assert elapsed >= 3.0  # 200 at 50/s: at least three full seconds after the first 50
    # … but Teams counts arrivals, and the time from booking to arrival varies, so an odd
    # 429 can still come back (measured: 0–5 of 200 with a 0.1 s margin on the windows,
    # 6–33 without; the benchmark with 0.05 s on the app window: 1.5–1.7 % of sends). Each one
    # waited for its Retry-After and was delivered once (above).
    refused = env.stub.refused(429)
    assert len(refused) <= 20, f"{len(refused)} of 200 sends refused with 429"
    for r in refused:
        later = [x.at for x in env.stub.requests if x.conversation_id == r.conversation_id and x.delivered]
        assert later and later[0] >= r.at + 1.0, "a 429 waits for Retry-After (≥ 1 s from the stub)"


# -- an escalation that cannot be posted --------------------------------------------------


async def test_escalation_to_an_unavailable_channel_is_retried_later_not_dropped(env: Env) -> None:
    await seed_people(env.store, env.stub.url, [manager_id(1)])
    await upsert_contracts(env.contracts, [contract_with_one_due("KAV-1", 1)])
    env.stub.block(personal_conversation(manager_id(1)))
    env.stub.fail(FOLLOWUP_CHANNEL, 503, times=1)

    await env.run_once()
    row = await env.due_one()
    assert row.status == "escalate" and row.claimed_by is None, "kept for another try"
    assert [r.status for r in env.stub.requests if r.conversation_id == FOLLOWUP_CHANNEL] == [503]
    # Backs off like a send: an immediate next round does not hammer the channel.
    await env.run_once()
    assert [r.status for r in env.stub.requests if r.conversation_id == FOLLOWUP_CHANNEL] == [503]

    await env.set([row.id], claimed_until=None)  # let the back-off pass
    await env.run_once()
    row = await env.due_one()
    assert row.status == "escalated"
    assert len(env.channel_cards()) == 1
