"""The contract register on a real database: import, re-import, card save, access, replanning."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from app import open_contract_register
from procurement.access import Actor, Role
from procurement.contracts import import_cli as contract_import_cli
from procurement.contracts.form import validate_contract_form
from procurement.contracts.service import Contracts
from procurement.store.database import Store
from procurement.store.tables import Contract, Reminder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _import(url: str, path: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = contract_import_cli.main(
        [str(path), "--database-url", url], out=out, err=io.StringIO(), open_store=open_contract_register
    )
    return code, out.getvalue()


async def test_import_then_reimport_changes_nothing(db_url: str) -> None:
    # The command runs its own event loop, as it does from a shell: run it off this loop.
    code, out = await asyncio.to_thread(_import, db_url, FIXTURES / "contracts_export.csv")
    assert code == 1  # the fixture has bad rows, reported per row
    assert "Opprettet: 4" in out and "Rad " in out
    code, out = await asyncio.to_thread(_import, db_url, FIXTURES / "contracts_export.csv")
    assert "Opprettet: 0" in out and "Oppdatert: 0" in out and "Uendret: 4" in out
    store = Store(db_url)
    try:
        async with store.session() as session:
            assert await session.scalar(sa.select(sa.func.count()).select_from(Contract)) == 4
            kinds = set(await session.scalars(sa.select(Reminder.kind)))
        assert kinds, "an import plans the contracts' reminders"
    finally:
        await store.close()


def _form(**over: str) -> dict[str, str]:
    base = {
        "external_ref": "KAV-2027-0001",
        "title": "Skyss av elever",
        "supplier_name": "Buss AS",
        "supplier_org_no": "974760673",
        "category": "services",
        "agreement_type": "framework",
        "start_date": "01.01.2027",
        "end_date": "31.12.2028",
        "options": "1+1",
        "option_notice": "30.09.2028",
        "value_nok": "2,5 mill",
        "manager": "siri.johansen@kommune.example.no",
        "risk_level": "high",
        "controls": "30.06.2027 Lønnskontroll",
        "archive_case_no": "26/01234",
        "internal_notes": "Pris 123 kr/km",
    }
    base.update(over)
    return base


async def test_card_save_plans_reminders_and_replans_on_change(store: Store) -> None:
    clock = lambda: datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # noqa: E731
    contracts = Contracts(store, clock)
    result = validate_contract_form(_form(), date(2026, 11, 28))
    assert result.value is not None, result.errors
    assert await contracts.upsert_contract(result.value, source="card") == "created"
    assert await contracts.upsert_contract(result.value, source="card") == "unchanged"
    async with store.session() as session:
        pending = {r.subject_key: r for r in await session.scalars(sa.select(Reminder))}
    assert any(":option_notice_3m:" in k for k in pending), sorted(pending)
    assert all(r.send_after.astimezone(UTC).weekday() < 5 for r in pending.values())

    # The options are dropped: their pending reminders are cancelled, never sent.
    changed = validate_contract_form(_form(options="", option_notice=""), date(2026, 11, 28)).value
    assert changed is not None
    assert await contracts.upsert_contract(changed, source="card") == "updated"
    async with store.session() as session:
        rows = list(await session.scalars(sa.select(Reminder).where(Reminder.kind.like("option%"))))
    assert rows and all(r.status == "cancelled" for r in rows)


async def test_prices_and_notes_only_for_entitled(store: Store) -> None:
    contracts = Contracts(store)
    data = validate_contract_form(_form(manager="00000000-0000-4000-8000-0000000000a4"), date(2026, 11, 28)).value
    assert data is not None
    await contracts.upsert_contract(data)
    ref = "KAV-2027-0001"
    public = await contracts.view_for(Actor(aad_id="00000000-0000-4000-8000-0000000000a6", name="Nina"), ref)
    assert public.value_nok is None and public.internal_notes is None and public.options == []
    manager_id = "00000000-0000-4000-8000-0000000000a4"
    manager = await contracts.view_for(Actor(aad_id=manager_id, name="Siri"), ref)
    assert manager.value_nok == 2_500_000 and manager.internal_notes == "Pris 123 kr/km"
    buyer = await contracts.view_for(Actor(aad_id="x", name="Ingrid", roles=frozenset({Role.PROCUREMENT})), ref)
    assert buyer.value_nok == 2_500_000
    # Not even the manager or an innkjøper sees prices where others read along.
    for who in (manager_id, "x"):
        roles = frozenset({Role.PROCUREMENT}) if who == "x" else frozenset()
        shared = await contracts.view_for(Actor(aad_id=who, name="A", roles=roles, conversation_type="channel"), ref)
        assert shared.value_nok is None and shared.internal_notes is None and shared.controls == []


def test_form_errors_are_at_the_fields() -> None:
    result = validate_contract_form(
        _form(end_date="31.02.2028", value_nok="1.300", manager="ikke en adresse", options="12"),
        date(2026, 11, 28),
    )
    assert result.value is None
    assert {"end_date", "value_nok", "manager", "options"} <= set(result.errors)
    assert all(set(m) == {"nb", "en"} for m in result.errors.values())
