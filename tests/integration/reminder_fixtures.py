"""Helpers for the reminder delivery tests and benchmark: people with stored conversation
references pointing at a Connector stub, contracts with due reminders, and reading back
which reminder each card on the stub belongs to.

Small volumes go through the product's own `Contracts.upsert_contract` (so the planning
rules are the real ones); big volumes are bulk-inserted rows (`bulk_due_reminders`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from procurement.contracts.model import ContractData, ContractOption
from procurement.contracts.service import Contracts
from procurement.shared.calendar import OSLO
from procurement.store.database import Store
from procurement.store.tables import Contract, ConversationRef, Reminder, User
from tests.cardcheck import shown_card
from tests.connector_stub import ConnectorStub, adaptive_cards, card_texts

TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"
BOT_ID = "28:bot-app-id"
FOLLOWUP_CHANNEL = "19:oppfolging-innkjop@thread.tacv2"
PROCUREMENT_TEAM = "19:innkjop-team@thread.tacv2"
CHUNK = 2_000


def manager_id(i: int) -> str:
    """A stable Entra object id for the i-th test manager."""
    return str(uuid.UUID(int=(0x5EED << 96) | i))


def manager_email(i: int) -> str:
    return f"forvalter{i}@kommune.example.no"


def personal_conversation(aad_id: str) -> str:
    return f"a:personal-{aad_id}"


def reference_for(
    service_url: str,
    conversation_id: str,
    *,
    aad_id: str | None = None,
    conversation_type: str = "personal",
) -> dict[str, Any]:
    """A stored conversation reference as `Activity.get_conversation_reference()` dumps it."""
    conversation: dict[str, Any] = {
        "id": conversation_id,
        "conversationType": conversation_type,
        "tenantId": TENANT,
    }
    if conversation_type == "channel":
        conversation["isGroup"] = True
    ref: dict[str, Any] = {
        "bot": {"id": BOT_ID, "name": "Innkjøpsassistenten"},
        "conversation": conversation,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "locale": "nb-NO",
    }
    if aad_id:
        ref["user"] = {
            "id": f"29:{aad_id}",
            "name": f"Forvalter {aad_id[-4:]}",
            "aadObjectId": aad_id,
        }
    return ref


def contract_row(
    external_ref: str,
    *,
    supplier_name: str,
    title: str,
    category: str,
    start_date: date,
    end_date: date,
    manager_aad_id: str,
    manager_email: str,
    now: datetime,
) -> dict[str, Any]:
    """A `contracts` row for a bulk insert: the fields the seeders vary, the rest empty or defaults."""
    return {
        "external_ref": external_ref,
        "supplier_name": supplier_name,
        "supplier_org_no": "",
        "title": title,
        "category": category,
        "start_date": start_date,
        "end_date": end_date,
        "value_nok": 0,
        "agreement_type": "single",
        "manager_aad_id": manager_aad_id,
        "manager_email": manager_email,
        "risk_level": "medium",
        "archive_case_no": "",
        "internal_notes": "",
        "options": [],
        "controls": [],
        "reminder_overrides": {},
        "fingerprint": "",
        "source": "bench",
        "created_at": now,
        "updated_at": now,
    }


async def _insert_chunked(store: Store, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with store.session() as session:
            await session.execute(sa.insert(table), list(rows[start : start + CHUNK]))


async def seed_people(store: Store, service_url: str, aad_ids: Iterable[str], *, channel: bool = True) -> None:
    """Users with a personal chat with the bot (installed), plus the follow-up channel."""
    now = datetime.now(UTC)
    ids = list(aad_ids)
    users = [
        {
            "aad_object_id": a,
            "name": f"Forvalter {a[-4:]}",
            "teams_user_id": f"29:{a}",
            "tenant_id": TENANT,
            "personal_conversation_id": personal_conversation(a),
            "first_seen": now,
            "last_seen": now,
        }
        for a in ids
    ]
    refs = [
        {
            "conversation_id": personal_conversation(a),
            "conversation_type": "personal",
            "service_url": service_url,
            "channel_id": "msteams",
            "tenant_id": TENANT,
            "team_id": None,
            "user_aad_id": a,
            "reference": reference_for(service_url, personal_conversation(a), aad_id=a),
            "installed": True,
            "updated_at": now,
        }
        for a in ids
    ]
    if channel:
        refs.append(
            {
                "conversation_id": FOLLOWUP_CHANNEL,
                "conversation_type": "channel",
                "service_url": service_url,
                "channel_id": "msteams",
                "tenant_id": TENANT,
                "team_id": PROCUREMENT_TEAM,
                "user_aad_id": None,
                "reference": reference_for(service_url, FOLLOWUP_CHANNEL, conversation_type="channel"),
                "installed": True,
                "updated_at": now - timedelta(days=1),
            }
        )
    await _insert_chunked(store, User, users)
    await _insert_chunked(store, ConversationRef, refs)


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def contract_with_one_due(
    ref: str,
    manager: int,
    today: date | None = None,
    *,
    options: Sequence[ContractOption] = (),
    end_in_days: int = 100,
) -> ContractData:
    """A contract ending `end_in_days` from today: its 6-month reminder is overdue (so due
    now; the 12-month one collapses into it), its 3-month reminder lies ahead."""
    today = today or oslo_today()
    return ContractData(
        external_ref=ref,
        supplier_name=f"Leverandør {ref} AS",
        title=f"Avtale {ref}",
        category="services",
        start_date=today - timedelta(days=700),
        end_date=today + timedelta(days=end_in_days),
        options=tuple(options),
        manager_email=manager_email(manager),
        manager_aad_id=manager_id(manager),
        supplier_org_no="974760673",
        value_nok=1_000_000,
    )


async def upsert_contracts(contracts: Contracts, items: Iterable[ContractData]) -> None:
    for data in items:
        await contracts.upsert_contract(data, source="test")


async def bulk_due_reminders(
    store: Store,
    count: int,
    managers: Sequence[str],
    *,
    send_after: datetime | None = None,
    prefix: str = "B",
) -> list[int]:
    """`count` contracts, each with one due reminder (send_after in the past), managers
    round-robin. Returns the reminder ids. Inserted as rows: fast for thousands."""
    now = datetime.now(UTC)
    send_after = send_after or now - timedelta(minutes=1)
    today = oslo_today()
    contracts = [
        contract_row(
            f"{prefix}-{i:07d}",
            supplier_name=f"Leverandør {i} AS",
            title=f"Avtale {i}",
            category="services",
            start_date=today - timedelta(days=700),
            end_date=today + timedelta(days=100),
            manager_aad_id=managers[i % len(managers)],
            manager_email=f"m{i % len(managers)}@kommune.example.no",
            now=now,
        )
        for i in range(count)
    ]
    await _insert_chunked(store, Contract, contracts)
    async with store.session() as session:
        ids: dict[str, int] = {
            ref: cid
            for ref, cid in (
                await session.execute(
                    sa.select(Contract.external_ref, Contract.id).where(Contract.external_ref.like(f"{prefix}-%"))
                )
            ).tuples()
        }
    reminders = [
        {
            "contract_id": ids[str(c["external_ref"])],
            "subject_key": f"{c['external_ref']}:end_6m:-:{c['end_date']}",
            "kind": "end_6m",
            "due_date": today - timedelta(days=80),
            "target_date": c["end_date"],
            "status": "pending",
            "send_after": send_after,
            "attempts": 0,
            "recipient_aad_id": c["manager_aad_id"],
            "created_at": now,
        }
        for c in contracts
    ]
    await _insert_chunked(store, Reminder, reminders)
    async with store.session() as session:
        return list(
            await session.scalars(
                sa.select(Reminder.id)
                .join(Contract, Contract.id == Reminder.contract_id)
                .where(Contract.external_ref.like(f"{prefix}-%"))
                .order_by(Reminder.id)
            )
        )


# -- reading the stub ---------------------------------------------------------------------


def reminder_ids_of(card: Any) -> set[int]:
    """The reminder ids in a card's Action.Execute data (`{"reminders": [id, …], "verb": …}`;
    one card carries every reminder of its contract that went out with it)."""
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if node.get("type") == "Action.Execute" and isinstance(data, dict):
                if "reminder" in data:
                    found.add(int(data["reminder"]))
                found.update(int(i) for i in data.get("reminders") or [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def deliveries_per_reminder(activities: Iterable[dict[str, Any]]) -> Counter[int]:
    """How many delivered activities carried each reminder's card."""
    counts: Counter[int] = Counter()
    for activity in activities:
        for card in adaptive_cards(activity):
            for rid in reminder_ids_of(card):
                counts[rid] += 1
    return counts


def reminder_deliveries(stub: ConnectorStub, conversation_id: str | None = None) -> Counter[int]:
    return deliveries_per_reminder(stub.activities(conversation_id))


def text_of(card: dict[str, Any]) -> str:
    """Every string of the card as Teams shows it (markdown escapes read)."""
    return "\n".join(card_texts(shown_card(card)))


async def statuses(store: Store, ids: Iterable[int] | None = None) -> dict[int, str]:
    async with store.session() as session:
        stmt = sa.select(Reminder.id, Reminder.status)
        if ids is not None:
            stmt = stmt.where(Reminder.id.in_(list(ids)))
        return dict((await session.execute(stmt)).all())


# -- a whole register, for the due-query benchmark ----------------------------------------

REGISTER_KINDS = (
    "new_competition",
    "end_6m",
    "end_3m",
    "option_notice_3m",
    "option_notice_1m",
    "control",
)


async def bulk_register(
    store: Store,
    contracts: int,
    *,
    reminders_per_contract: int = 4,
    due_fraction: float = 0.01,
    managers: int = 2_000,
    seed: int = 4,
) -> dict[str, int]:
    """A register of `contracts` contracts with `reminders_per_contract` reminders each, spread
    like a register in steady state: most pending for a date up to three years ahead, some
    delivered/answered/escalated/cancelled in the past two years, and `due_fraction` of
    them pending with a send time in the past (due now). Returns the count per status."""
    import random

    rnd = random.Random(seed)
    now = datetime.now(UTC)
    today = oslo_today()
    chunk = 10_000
    counts: Counter[str] = Counter()
    for first in range(0, contracts, chunk):
        batch = range(first, min(contracts, first + chunk))
        rows: list[dict[str, Any]] = [
            contract_row(
                f"R-{i:07d}",
                supplier_name=f"Leverandør {i % 5000} AS",
                title=f"Avtale {i}",
                category=("goods", "services", "works")[i % 3],
                start_date=today - timedelta(days=rnd.randint(0, 1500)),
                end_date=today + timedelta(days=rnd.randint(-400, 1500)),
                manager_aad_id=manager_id(i % managers),
                manager_email=manager_email(i % managers),
                now=now,
            )
            for i in batch
        ]
        async with store.session() as session:
            await session.execute(sa.insert(Contract), rows)
            ids = dict(
                (
                    await session.execute(
                        sa.select(Contract.external_ref, Contract.id)
                        .where(Contract.id > 0)
                        .where(Contract.external_ref.in_([r["external_ref"] for r in rows]))
                    )
                ).all()
            )
            reminders = []
            for r in rows:
                for k in range(reminders_per_contract):
                    roll = rnd.random()
                    if roll < due_fraction:
                        status, at = (
                            "pending",
                            now - timedelta(minutes=rnd.randint(1, 60 * 24 * 30)),
                        )
                    elif roll < 0.62:
                        status, at = (
                            "pending",
                            now + timedelta(minutes=rnd.randint(60, 60 * 24 * 365 * 3)),
                        )
                    else:
                        status = rnd.choice(("delivered", "answered", "answered", "escalated", "cancelled"))
                        # Delivered and not answered for a week would have been escalated.
                        days = (1, 6) if status == "delivered" else (8, 730)
                        at = now - timedelta(minutes=rnd.randint(60 * 24 * days[0], 60 * 24 * days[1]))
                    counts[status if not (status == "pending" and at <= now) else "due"] += 1
                    reminders.append(
                        {
                            "contract_id": ids[str(r["external_ref"])],
                            "subject_key": f"{r['external_ref']}:{k}",
                            "kind": REGISTER_KINDS[k % len(REGISTER_KINDS)],
                            "due_date": at.date(),
                            "target_date": r["end_date"],
                            "status": status,
                            "send_after": at,
                            "attempts": 0,
                            "recipient_aad_id": r["manager_aad_id"],
                            "created_at": now,
                            "delivered_at": at if status in ("delivered", "answered", "escalated") else None,
                            "answer": "not_relevant" if status == "answered" else None,
                        }
                    )
            await session.execute(sa.insert(Reminder), reminders)
    return dict(counts)
