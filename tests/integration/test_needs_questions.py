"""«Be om mer informasjon» through the real HTTP app (issue 9.2), on SQLite and PostgreSQL:
the question is required, reaches the submitter's chat as a card she can answer, her answer
appears on the intake card for everyone, the report is back in the queue and can be decided
again; she may edit the report (same ref). Only she may answer or edit, and others learn
nothing. The outbox is driven by hand (`bot.drain()`), as in test_needs_reports.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from procurement.store.tables import Draft, NeedsReport, NeedsReportExchange, OutboxItem
from tests.connector_stub import adaptive_cards
from tests.integration.bot_harness import (
    INGRID,
    INTAKE,
    KARI,
    KARI_CHAT,
    OLA,
    Bot,
    actions_of,
    inputs_of,
    message_after,
    texts_of,
    valid_inputs,
    verbs_of,
)

QUESTION = "Hva er verdigrunnlaget? Oppgi dagens kostnader per år."
ANSWER = "Vi bruker i dag 430 000 kr i året på transport, tre år gir 1,3 mill."
DECISIONS = ["needs_report.approve", "needs_report.request_info", "needs_report.reject"]
NOT_FOUND = "Jeg finner ikke noe med den referansen"


async def _posted(bot: Bot, **overrides: Any) -> str:
    ref = await bot.submit_valid(**overrides)
    await bot.drain()
    assert (await bot.report(ref)).intake_activity_id
    return ref


async def _exchanges(bot: Bot, ref: str) -> list[NeedsReportExchange]:
    report = await bot.report(ref)
    rows = await bot.rows(NeedsReportExchange, NeedsReportExchange.needs_report_id == report.id)
    return sorted(rows, key=lambda r: r.id)


def _last_intake_update(bot: Bot) -> dict[str, Any]:
    update = [u for u in bot.stub.updates if u.conversation_id == INTAKE][-1]
    [card] = adaptive_cards(update.activity)
    return card


def _action(card: dict[str, Any], verb: str) -> dict[str, Any]:
    for action in actions_of(card):
        if action.get("verb") == verb:
            return action
    raise AssertionError(f"no {verb} in {verbs_of(card)}")


def _all_actions(node: Any) -> list[dict[str, Any]]:
    """Every Action.Execute anywhere in a card (the list puts them in ActionSets)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            found.append(node)
        for value in node.values():
            found += _all_actions(value)
    elif isinstance(node, list):
        for value in node:
            found += _all_actions(value)
    return found


async def _ask(bot: Bot, ref: str, question: str = QUESTION) -> dict[str, Any]:
    """Ingrid asks; the outbox delivers; returns the question card in Kari's chat."""
    card = await bot.decide("needs_report.request_info", ref, note=question)
    assert "Mer informasjon etterspurt av Ingrid Innkjøper" in texts_of(card), texts_of(card)
    before = len(bot.stub.cards(KARI_CHAT))
    await bot.drain()
    [asked] = bot.stub.cards(KARI_CHAT)[before:]
    return asked


async def _press(bot: Bot, action: dict[str, Any], user: str = KARI, **inputs: Any) -> dict[str, Any]:
    """Press a button of a card in the user's personal chat, with the card's inputs."""
    data = {**action["data"], **inputs}
    return await bot.invoke(action["verb"], data, user=user)


# -- the question is required ----------------------------------------------------------------


async def test_request_info_without_a_question_gives_the_card_back_with_a_message(bot: Bot) -> None:
    ref = await _posted(bot)
    audit_before = len(await bot.audit())
    for note in ("", "   \n  "):
        card = await bot.decide("needs_report.request_info", ref, note=note)
        message = message_after(card, "decision_note")
        assert message is not None and "Skriv spørsmålet til melderen" in message, texts_of(card)
        # The same intake card, still open, for the presser only.
        assert verbs_of(card) == DECISIONS
        assert "Venter på behandling" in texts_of(card)
    # Too long: refused, and what she typed is kept up to the field's limit.
    long = "Hvorfor? " * 300
    card = await bot.decide("needs_report.request_info", ref, note=long)
    assert "for lang" in (message_after(card, "decision_note") or "")
    assert long.strip().startswith(inputs_of(card)["decision_note"]["value"])
    assert len(inputs_of(card)["decision_note"]["value"]) == 2000

    report = await bot.report(ref)
    assert report.status == "submitted" and report.decided_by_aad_id is None
    assert len(await bot.audit()) == audit_before
    assert await _exchanges(bot, ref) == []
    assert bot.stub.updates == []  # the others' card is untouched
    assert await bot.drain() == 0
    # Approve and reject still need no comment.
    card = await bot.decide("needs_report.reject", ref, note="")
    assert "Avvist av Ingrid Innkjøper" in texts_of(card)


# -- the loop: ask, answer, decide again -------------------------------------------------------


async def test_question_answer_and_decide_again(bot: Bot) -> None:
    ref = await _posted(bot)
    intake_id = (await bot.report(ref)).intake_activity_id

    card = await bot.decide("needs_report.request_info", ref, note=QUESTION)
    text = texts_of(card)
    assert "Mer informasjon etterspurt av Ingrid Innkjøper" in text and QUESTION in text
    assert "Ikke besvart ennå" in text
    assert verbs_of(card) == DECISIONS  # still open
    assert inputs_of(card)["decision_note"]["value"] == ""  # ready for the next note
    report = await bot.report(ref)
    assert report.status == "info_requested" and report.decided_by_aad_id == INGRID
    [asked] = await _exchanges(bot, ref)
    assert (asked.question, asked.asked_by_aad_id, asked.answer) == (QUESTION, INGRID, None)
    assert [o.kind for o in await bot.outbox() if o.status == "pending"] == [
        "needs_report.ask_submitter",
        "needs_report.refresh_intake",
    ]
    # Everyone's intake card shows the question at once (edited in place).
    [update] = bot.stub.updates
    assert update.activity_id == intake_id and QUESTION in texts_of(_last_intake_update(bot))

    # -- Kari gets the question in her chat, once ----------------------------------------
    before = len(bot.stub.cards(KARI_CHAT))
    assert await bot.drain() == 2
    [question_card] = bot.stub.cards(KARI_CHAT)[before:]
    q_text = texts_of(question_card)
    assert f"Spørsmål om behovsmelding {ref}" in q_text
    assert QUESTION in q_text and "Ingrid Innkjøper" in q_text and "Transport av hjelpemidler" in q_text
    assert "answer" in inputs_of(question_card)
    assert verbs_of(question_card) == ["needs_report.answer", "needs_report.edit", "needs_report.mine"]
    send = _action(question_card, "needs_report.answer")
    assert send["data"]["ref"] == ref and send["data"]["exchange"] == asked.id
    assert await bot.drain() == 0
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1

    # -- an empty answer is refused at the field --------------------------------------------
    refused = await _press(bot, send, answer="  ")
    assert "Skriv svaret ditt" in (message_after(refused, "answer") or ""), texts_of(refused)
    assert (await bot.report(ref)).status == "info_requested"

    # -- her answer: back in the queue, on the intake card for everyone -----------------------
    done = await _press(bot, send, answer=ANSWER)
    d_text = texts_of(done)
    assert "Svaret er sendt til Innkjøpsseksjonen" in d_text and ANSWER in d_text
    assert "answer" not in inputs_of(done) and "needs_report.answer" not in verbs_of(done)
    report = await bot.report(ref)
    assert report.status == "answered"
    [answered] = await _exchanges(bot, ref)
    assert answered.answer == ANSWER and answered.answered_by_name == "Kari Nordmann"
    updates_before = len(bot.stub.updates)
    assert await bot.drain() == 1
    assert len(bot.stub.updates) == updates_before + 1
    intake = _last_intake_update(bot)
    i_text = texts_of(intake)
    assert "Besvart – venter på vurdering" in i_text and QUESTION in i_text and ANSWER in i_text
    assert "Svar fra Kari Nordmann" in i_text
    assert verbs_of(intake) == DECISIONS

    # -- the same answer twice is one exchange; another answer is not taken --------------------
    audit_before = len(await bot.audit(ref))
    again = await _press(bot, send, answer=ANSWER)
    assert "allerede sendt" in texts_of(again)
    other = await _press(bot, send, answer="Noe helt annet.")
    assert "var allerede besvart" in texts_of(other) and "Noe helt annet." in texts_of(other)
    assert [e.answer for e in await _exchanges(bot, ref)] == [ANSWER]
    assert len(await bot.audit(ref)) == audit_before
    assert await bot.drain() == 0

    # -- a refresh shows the same; the innkjøper asks again with a new question -----------------
    refreshed = await bot.invoke(
        "needs_report.refresh",
        {"verb": "needs_report.refresh", "ref": ref},
        user=INGRID,
        conversation=INTAKE,
        conversation_type="channel",
    )
    assert ANSWER in texts_of(refreshed) and "Besvart – venter på vurdering" in texts_of(refreshed)
    second_q = "Er budsjettet vedtatt av kommunestyret?"
    second_card = await _ask(bot, ref, second_q)
    assert second_q in texts_of(second_card) and QUESTION not in texts_of(second_card)
    assert (await bot.report(ref)).status == "info_requested"
    second = _action(second_card, "needs_report.answer")
    assert second["data"]["exchange"] != send["data"]["exchange"]
    await _press(bot, second, answer="Ja, i desember.")
    assert (await bot.report(ref)).status == "answered"

    # -- and decides -------------------------------------------------------------------------
    approved = await bot.decide("needs_report.approve", ref, note="Takk for svarene.")
    a_text = texts_of(approved)
    assert "Godkjent av Ingrid Innkjøper" in a_text and ANSWER in a_text and "Ja, i desember." in a_text
    assert actions_of(approved) == []
    assert (await bot.report(ref)).status == "approved"
    entries = await bot.audit(ref)
    assert [e.action for e in entries] == [
        "needs_report.submitted",
        "needs_report.info_requested",
        "needs_report.answered",
        "needs_report.info_requested",
        "needs_report.answered",
        "needs_report.approved",
    ]
    asked_entry, answered_entry = entries[1], entries[2]
    assert asked_entry.actor_aad_id == INGRID and asked_entry.details["question"] == QUESTION
    assert answered_entry.actor_aad_id == KARI and answered_entry.details["answer"] == ANSWER
    assert answered_entry.details["exchange"] == asked.id
    # The same answer pressed again after the decision: already sent, nothing new.
    late = await _press(bot, second, answer="Ja, i desember.")
    assert "allerede sendt" in texts_of(late)


async def test_same_question_pressed_twice_is_one_question(bot: Bot) -> None:
    ref = await _posted(bot)
    await bot.decide("needs_report.request_info", ref, note=QUESTION)
    again = await bot.decide("needs_report.request_info", ref, note=QUESTION)
    assert "allerede sendt til Kari Nordmann" in texts_of(again)
    assert "Allerede behandlet" not in texts_of(again)
    assert len(await _exchanges(bot, ref)) == 1
    asks = [o for o in await bot.outbox() if o.kind == "needs_report.ask_submitter"]
    assert len(asks) == 1
    before = len(bot.stub.cards(KARI_CHAT))
    await bot.drain()
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1
    # A different question while the first is unanswered is a second question; she gets both,
    # and the report is back in the queue only when both are answered.
    await bot.decide("needs_report.request_info", ref, note="Og når må leveransen starte?")
    await bot.drain()
    cards = bot.stub.cards(KARI_CHAT)[before:]
    assert len(cards) == 2
    first, second = (_action(c, "needs_report.answer") for c in cards)
    partly = await _press(bot, first, answer=ANSWER)
    assert "Ubesvarte spørsmål om behovsmeldingen: 1" in texts_of(partly)
    assert (await bot.report(ref)).status == "info_requested"
    await _press(bot, second, answer="1. mars.")
    assert (await bot.report(ref)).status == "answered"


async def test_answer_after_a_decision_is_not_taken(bot: Bot) -> None:
    ref = await _posted(bot)
    send = _action(await _ask(bot, ref), "needs_report.answer")
    await bot.decide("needs_report.reject", ref, note="Dekkes av rammeavtale.")
    card = await _press(bot, send, answer=ANSWER)
    text = texts_of(card)
    assert "allerede behandlet (Avvist)" in text and ANSWER in text
    assert "needs_report.answer" not in verbs_of(card) and "needs_report.edit" not in verbs_of(card)
    assert [e.answer for e in await _exchanges(bot, ref)] == [None]
    assert (await bot.report(ref)).status == "rejected"


# -- access ------------------------------------------------------------------------------------


async def test_only_the_submitter_may_answer_or_edit_and_others_learn_nothing(bot: Bot) -> None:
    ref = await _posted(bot)
    question_card = await _ask(bot, ref)
    send = _action(question_card, "needs_report.answer")
    edit = _action(question_card, "needs_report.edit")
    audit_before = len(await bot.audit())
    for user in (OLA, INGRID):  # another employee; an innkjøper (not hers to answer)
        for action, extra in ((send, {"answer": "Jeg svarer for henne."}), (edit, {})):
            card = await _press(bot, action, user=user, **extra)
            text = texts_of(card)
            assert NOT_FOUND in text, text
            assert QUESTION not in text and "Transport av hjelpemidler" not in text and verbs_of(card) == []
        card = await bot.invoke(
            "needs_report.update",
            {**valid_inputs(title="Kapret"), "verb": "needs_report.update", "ref": ref},
            user=user,
        )
        assert NOT_FOUND in texts_of(card)
        shown = await bot.invoke("needs_report.question", {"verb": "needs_report.question", "ref": ref}, user=user)
        assert NOT_FOUND in texts_of(shown)
    # A made-up exchange id, or another report's, is not found either.
    card = await _press(bot, {**send, "data": {**send["data"], "exchange": 999_999}}, answer=ANSWER)
    assert NOT_FOUND in texts_of(card)
    card = await _press(bot, {**send, "data": {**send["data"], "exchange": "x"}}, answer=ANSWER)
    assert NOT_FOUND in texts_of(card)
    # Kari herself, but in a channel: continue in the personal chat (nothing shown there).
    card = await bot.invoke(
        "needs_report.answer",
        {**send["data"], "verb": "needs_report.answer", "answer": ANSWER},
        user=KARI,
        conversation=INTAKE,
        conversation_type="channel",
    )
    assert "Fortsett i personlig chat" in texts_of(card) and QUESTION not in texts_of(card)
    assert [e.answer for e in await _exchanges(bot, ref)] == [None]
    report = await bot.report(ref)
    assert report.status == "info_requested" and report.title == "Transport av hjelpemidler"
    assert len(await bot.audit()) == audit_before


# -- editing the report ------------------------------------------------------------------------


async def test_edit_from_the_question_updates_the_same_report(bot: Bot) -> None:
    ref = await _posted(bot)
    question_card = await _ask(bot, ref)
    before_assessment = (await bot.report(ref)).assessment

    form = await _press(bot, _action(question_card, "needs_report.edit"))
    assert f"Endre behovsmelding {ref}" in texts_of(form)
    inputs = inputs_of(form)
    stored = valid_inputs()
    assert inputs["title"]["value"] == stored["title"]
    assert inputs["need"]["value"] == stored["need"]
    assert inputs["estimated_value"]["value"] == "1 300 000"
    assert inputs["start_date"]["value"] == stored["start_date"]
    assert inputs["duration_months"]["value"] == 24 and inputs["option_months"]["value"] == 12
    assert inputs["faggruppe"]["value"] == "Per Pleier, Siri Sykepleier"
    assert inputs["budget_secured"]["value"] == "true"
    assert verbs_of(form) == ["needs_report.update"]  # no draft: a draft is for a new report
    update = _action(form, "needs_report.update")
    assert update["data"]["ref"] == ref and update["data"]["token"]

    # A refused edit: the same edit form with the message at the field, nothing stored.
    bad = await _press(bot, update, **valid_inputs(title=""))
    assert "Skriv en kort tittel" in (message_after(bad, "title") or "")
    assert verbs_of(bad) == ["needs_report.update"] and _action(bad, "needs_report.update")["data"] == update["data"]
    assert await bot.rows(Draft) == []
    assert (await bot.report(ref)).title == "Transport av hjelpemidler"

    changed = valid_inputs(estimated_value="2 600 000", value_basis="Nye priser fra 2027, fire år.")
    summary = await _press(bot, update, **changed)
    s_text = texts_of(summary)
    assert f"Behovsmelding {ref} er oppdatert" in s_text
    assert "Endret: Anslått verdi, Verdigrunnlag" in s_text, s_text
    rows = await bot.rows(NeedsReport)
    assert len(rows) == 1
    report = rows[0]
    assert report.ref == ref and report.estimated_value == 2_600_000 and report.status == "info_requested"
    assert report.data["value_basis"] == "Nye priser fra 2027, fire år."
    assert report.edited_fields == ["estimated_value", "value_basis"] and report.edited_at is not None
    assert report.assessment != before_assessment  # 2.6 mill is over the EEA threshold
    [edited] = [e for e in await bot.audit(ref) if e.action == "needs_report.edited"]
    assert edited.actor_aad_id == KARI and edited.details["fields"] == ["estimated_value", "value_basis"]
    assert edited.details["before"]["estimated_value"] == 1_300_000
    assert edited.details["after"]["estimated_value"] == 2_600_000

    # Everyone's intake card shows the new value and that she edited it.
    assert await bot.drain() == 1
    intake = texts_of(_last_intake_update(bot))
    assert "2 600 000" in intake and "Endret av Kari Nordmann" in intake and "Verdigrunnlag" in intake

    # The same card sent again is one edit (its token); the question still waits for her answer.
    again = await _press(bot, update, **changed)
    assert "Endringene var allerede lagret" in texts_of(again)
    assert len([e for e in await bot.audit(ref) if e.action == "needs_report.edited"]) == 1
    assert await bot.drain() == 0
    # Nothing changed on a fresh edit card: said so, nothing recorded.
    form2 = await _press(bot, _action(question_card, "needs_report.edit"))
    same = await _press(bot, _action(form2, "needs_report.update"), **changed)
    assert "Du endret ingenting" in texts_of(same)
    assert len([e for e in await bot.audit(ref) if e.action == "needs_report.edited"]) == 1

    # After the decision the report cannot be edited.
    await bot.decide("needs_report.approve", ref)
    late = await _press(bot, _action(question_card, "needs_report.edit"))
    assert "kan ikke endres" in texts_of(late) and inputs_of(late) == {}
    form3_blocked = await _press(bot, update, **valid_inputs(title="For sent"))
    assert "kan ikke endres" in texts_of(form3_blocked) or "allerede lagret" in texts_of(form3_blocked)
    assert (await bot.report(ref)).title == "Transport av hjelpemidler"


async def test_my_list_leads_back_to_an_open_question(bot: Bot) -> None:
    ref = await _posted(bot)
    await _ask(bot, ref)
    [listing] = await bot.say("mine behovsmeldinger")
    assert "Mer informasjon etterspurt" in texts_of(listing)
    [button] = [a for a in _all_actions(listing) if a.get("verb") == "needs_report.question"]
    assert button["data"]["ref"] == ref
    shown = await _press(bot, button)
    assert QUESTION in texts_of(shown) and "answer" in inputs_of(shown)
    await _press(bot, _action(shown, "needs_report.answer"), answer=ANSWER)
    [listing] = await bot.say("mine behovsmeldinger")
    assert "Besvart – venter på vurdering" in texts_of(listing)
    assert not [a for a in _all_actions(listing) if a.get("verb") == "needs_report.question"]


async def test_question_to_an_unreachable_submitter_is_kept_in_the_outbox(bot: Bot) -> None:
    """The question card is an outbox effect: a 503 from Teams is retried, never lost or doubled."""
    bot.runtime.outbox.base_backoff = 0.05
    ref = await _posted(bot)
    await bot.decide("needs_report.request_info", ref, note=QUESTION)
    bot.stub.fail(KARI_CHAT, 503, times=1)
    before = len(bot.stub.cards(KARI_CHAT))
    await bot.drain()
    items = [o for o in await bot.outbox() if o.kind == "needs_report.ask_submitter"]
    assert [o.status for o in items] in (["pending"], ["done"])
    for _ in range(40):
        if len(bot.stub.cards(KARI_CHAT)) > before:
            break
        await bot.runtime.outbox.run_once()
        await asyncio.sleep(0.05)
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1
    assert [o.status for o in await bot.rows(OutboxItem, OutboxItem.kind == "needs_report.ask_submitter")] == ["done"]


async def test_concurrent_double_tap_on_send_answer_is_one_answer(bot: Bot) -> None:
    ref = await _posted(bot)
    send = _action(await _ask(bot, ref), "needs_report.answer")
    cards = await asyncio.gather(*(_press(bot, send, answer=ANSWER) for _ in range(3)))
    texts = [texts_of(c) for c in cards]
    assert sum("Svaret er sendt til Innkjøpsseksjonen" in t for t in texts) == 1, texts
    assert all(ANSWER in t for t in texts)
    assert [e.answer for e in await _exchanges(bot, ref)] == [ANSWER]
    assert [e.action for e in await bot.audit(ref)].count("needs_report.answered") == 1
    assert (await bot.report(ref)).status == "answered"
