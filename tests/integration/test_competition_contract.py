"""From an approved needs report to a signed contract in the register (issue 4, item 1):
"kontrakt signert K-…" opens the contract form prefilled from the competition; saving it
registers the contract, plans its reminders and marks the competition signed, once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from procurement.store.tables import Competition, Contract, Reminder
from tests.integration.bot_harness import INGRID, INTAKE, OLA, Bot, inputs_of, texts_of, valid_inputs


async def _approved_competition(bot: Bot) -> str:
    ref = await bot.submit_valid()
    await bot.drain()
    await bot.decide("needs_report.approve", ref)
    competition = (await bot.report(ref)).competition_ref
    assert competition
    return competition


def _signed_values(form: dict[str, Any], **over: str) -> dict[str, Any]:
    values = {key: spec.get("value", "") for key, spec in inputs_of(form).items()}
    values.update(
        {
            "external_ref": "KAV-2026-0042",
            "supplier_name": "Transport & Co AS",
            "supplier_org_no": "974 760 673",
            "manager": "ingrid@kommune.no",
        }
    )
    # The option's notice deadline is in the signed contract, not in the needs report.
    end = datetime.strptime(values["end_date"], "%d.%m.%Y").date()
    values["option_notice"] = (end - timedelta(days=90)).strftime("%d.%m.%Y")
    values.update(over)
    return values


def _save_data(form: dict[str, Any]) -> dict[str, Any]:
    """The data of the form's save button (what Teams sends back with the inputs)."""
    [save] = [a for a in form["actions"] if a.get("verb") == "contracts.save"]
    return dict(save["data"])


async def test_signed_contract_from_a_competition(bot: Bot) -> None:
    competition = await _approved_competition(bot)
    [form] = await bot.say(f"kontrakt signert {competition.lower()}", user=INGRID)
    text = texts_of(form)
    assert f"Fra konkurranse {competition}" in text
    inputs = inputs_of(form)
    # Prefilled from the needs report: title, category, type, value, period, options.
    assert inputs["title"]["value"] == "Transport av hjelpemidler"
    assert inputs["category"]["value"] == "services"
    assert inputs["agreement_type"]["value"] == "single"
    assert inputs["value_nok"]["value"] == "1 300 000"  # as money is typed, not raw digits
    # What the need was for becomes the agreement's scope (coverage matching reads it).
    assert inputs["scope"]["value"] and inputs["scope"]["value"] in valid_inputs()["need"]
    assert inputs["options"]["value"] == "12 mnd"
    assert inputs["start_date"]["value"] and inputs["end_date"]["value"]
    assert _save_data(form)["competition"] == competition

    data = {**_signed_values(form), **_save_data(form)}
    saved = await bot.invoke("contracts.save", data, user=INGRID)
    assert "Kontrakt KAV-2026-0042 er registrert" in texts_of(saved)
    assert f"Konkurranse {competition} er markert som signert" in texts_of(saved)

    [contract] = await bot.rows(Contract)
    assert contract.source == "competition" and contract.value_nok == 1_300_000
    [comp] = await bot.rows(Competition)
    assert (comp.status, comp.contract_ref) == ("signed", "KAV-2026-0042") and comp.signed_at
    assert await bot.rows(Reminder)  # its reminders are planned like any other contract's
    assert "competition.signed" in [e.action for e in await bot.audit(competition)]

    # The same save again (a retry) changes nothing; another contract for it is refused.
    again = await bot.invoke("contracts.save", data, user=INGRID)
    assert "uendret" in texts_of(again)
    other = await bot.invoke("contracts.save", {**data, "external_ref": "KAV-2026-0043"}, user=INGRID)
    assert "allerede knyttet til kontrakt KAV-2026-0042" in texts_of(other)
    # … as the same form, with what was typed.
    assert inputs_of(other)["external_ref"]["value"] == "KAV-2026-0043"
    assert inputs_of(other)["supplier_name"]["value"] == "Transport & Co AS"
    assert [c.external_ref for c in await bot.rows(Contract)] == ["KAV-2026-0042"]
    [form_again] = await bot.say(f"kontrakt signert {competition}", user=INGRID)
    assert "allerede knyttet til kontrakt KAV-2026-0042" in texts_of(form_again)


async def test_invalid_values_keep_the_competition_and_the_users_values(bot: Bot) -> None:
    competition = await _approved_competition(bot)
    [form] = await bot.say(f"ny kontrakt {competition}", user=INGRID)
    data = {**_signed_values(form, end_date="31.02.2027", supplier_name='Transport "${x}" AS'), **_save_data(form)}
    card = await bot.invoke("contracts.save", data, user=INGRID)
    assert "Kontrakten er ikke lagret" in texts_of(card)
    assert f"Fra konkurranse {competition}" in texts_of(card)
    assert inputs_of(card)["supplier_name"]["value"] == 'Transport "${x}" AS'
    assert _save_data(card)["competition"] == competition
    assert await bot.rows(Contract) == []
    [comp] = await bot.rows(Competition)
    assert comp.contract_ref is None


async def test_only_innkjopere_and_only_real_competitions(bot: Bot) -> None:
    competition = await _approved_competition(bot)
    [refused] = await bot.say(f"kontrakt signert {competition}", user=OLA)
    assert "Ikke tilgang" in texts_of(refused)
    [form] = await bot.say(f"kontrakt signert {competition}", user=INGRID)
    data = {**_signed_values(form), **_save_data(form)}
    card = await bot.invoke("contracts.save", data, user=OLA)
    assert "Ikke tilgang" in texts_of(card)
    [missing] = await bot.say("kontrakt signert K-1999-0001", user=INGRID)
    assert "Det finnes ingen konkurranse K-1999-0001" in texts_of(missing)
    # Card data naming a competition that doesn't exist is checked on the server too.
    forged = await bot.invoke(
        "contracts.save", {**data, "competition": "K-1999-0002", "token": uuid.uuid4().hex}, user=INGRID
    )
    assert "Det finnes ingen konkurranse K-1999-0002" in texts_of(forged)
    async with bot.store.session() as session:
        assert (await session.scalar(sa.select(sa.func.count()).select_from(Contract))) == 0
    assert INTAKE  # the report went through the intake channel as usual
