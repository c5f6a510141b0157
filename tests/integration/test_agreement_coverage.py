"""What a framework agreement covers, over HTTP: registered on the contract card with CPV codes
and a scope, and then named on a needs report's receipt only when it covers the need, with the
reasons and a working "Trekk tilbake" button."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from procurement.store.tables import Contract
from tests.integration.bot_harness import (
    INGRID,
    KARI,
    Bot,
    actions_of,
    inputs_of,
    ref_in,
    texts_of,
    today,
    token_of,
    valid_inputs,
    verbs_of,
)


def _contract_values(form: dict[str, Any], **over: str) -> dict[str, Any]:
    values = {key: spec.get("value", "") for key, spec in inputs_of(form).items()}
    values.update(
        {
            "external_ref": "RA-2026-0007",
            "title": "Sykehjemssenger",
            "supplier_name": "Pleieseng AS",
            "category": "goods",
            "agreement_type": "framework",
            "cpv": "33192000-2, 33192100",
            "scope": "Elektriske pleiesenger og madrasser til sykehjem og omsorgsboliger",
            "start_date": (today() - timedelta(days=30)).strftime("%d.%m.%Y"),
            "end_date": (today() + timedelta(days=700)).strftime("%d.%m.%Y"),
            "value_nok": "4 000 000",
            "manager": "ingrid@kommune.no",
        }
    )
    values.update(over)
    [save] = [a for a in form["actions"] if a.get("verb") == "contracts.save"]
    return {**values, **save["data"]}


async def _register_beds_agreement(bot: Bot) -> None:
    [form] = await bot.say("ny kontrakt", user=INGRID)
    assert {"cpv", "scope"} <= set(inputs_of(form))
    # A code that is no code: the same card, the values kept, the message at the field.
    card = await bot.invoke("contracts.save", _contract_values(form, cpv="33192000, 3319"), user=INGRID)
    assert "Kontrakten er ikke lagret" in texts_of(card)
    assert "CPV-koden «3319» er ikke gyldig" in texts_of(card)
    assert inputs_of(card)["cpv"]["value"] == "33192000, 3319"
    assert inputs_of(card)["scope"]["value"].startswith("Elektriske pleiesenger")
    assert "RA-2026-0007" not in [c.external_ref for c in await bot.rows(Contract)]

    saved = await bot.invoke("contracts.save", _contract_values(form), user=INGRID)
    assert "Kontrakt RA-2026-0007 er registrert" in texts_of(saved)
    [row] = [c for c in await bot.rows(Contract) if c.external_ref == "RA-2026-0007"]
    assert row.cpv_codes == ["33192000", "33192100"] and row.scope.startswith("Elektriske pleiesenger")


async def _other_goods_agreements(bot: Bot) -> None:
    for ref, title, cpv in (
        ("RA-2026-0001", "Arbeidsklær", "18100000"),
        ("RA-2026-0002", "Kontorrekvisita", "30192000"),
        ("RA-2026-0003", "Matvarer", "15800000"),
    ):
        [form] = await bot.say("ny kontrakt", user=INGRID)
        values = _contract_values(form, external_ref=ref, title=title, cpv=cpv, scope="")
        assert "er registrert" in texts_of(await bot.invoke("contracts.save", values, user=INGRID))


BEDS = valid_inputs(
    title="Elektriske senger til sykehjem",
    need="Sykehjemmet trenger 40 elektriske senger som kan heves og senkes.",
    category="goods",
    cpv="33192000-2",
    estimated_value="900 000",
)


async def test_beds_are_not_told_about_clothes_office_supplies_or_food(bot: Bot) -> None:
    await _other_goods_agreements(bot)
    form = (await bot.say("behovsmelding", user=KARI))[0]
    card = await bot.submit(BEDS, token_of(form))
    text = texts_of(card)
    for title in ("Arbeidsklær", "Kontorrekvisita", "Matvarer", "eHandel på avtalen"):
        assert title not in text
    assert "needs_report.withdraw" not in verbs_of(card)
    report = await bot.report(ref_in(card))
    assert "framework_agreement" not in [c["code"] for c in report.assessment["consequences"]]


async def test_the_bed_agreement_is_named_with_its_reasons_and_the_report_can_be_withdrawn(bot: Bot) -> None:
    await _other_goods_agreements(bot)
    await _register_beds_agreement(bot)
    form = (await bot.say("behovsmelding", user=KARI))[0]
    card = await bot.submit(BEDS, token_of(form))
    ref = ref_in(card)
    text = texts_of(card)
    assert "«Sykehjemssenger» (Pleieseng AS, avtale RA-2026-0007" in text
    assert "samme CPV-kategori 33192 Medisinske møbler" in text and "tittelen ligner" in text
    for title in ("Arbeidsklær", "Kontorrekvisita", "Matvarer"):
        assert title not in text

    # The card says it can be withdrawn, and the button does it.
    [withdraw] = [a for a in actions_of(card) if a.get("verb") == "needs_report.withdraw"]
    assert withdraw["title"].startswith("Trekk tilbake") and withdraw["data"]["ref"] == ref
    await bot.drain()  # the intake card is posted
    done = await bot.invoke("needs_report.withdraw", withdraw["data"], user=KARI)
    assert f"Behovsmelding {ref} er trukket tilbake" in texts_of(done)
    assert (await bot.report(ref)).status == "withdrawn"
    assert [e.action for e in await bot.audit(ref)] == ["needs_report.submitted", "needs_report.withdrawn"]
