"""Who sees and changes a deviation report: the reporter sees her own, the contract's
avtaleforvalter and innkjøpere see and change status, nobody else learns anything."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from procurement.access import SYSTEM, Actor, ConversationType, NotAllowed, NotFound, Relation, Role
from procurement.deviations.access import POLICY, authorize, can_see, relations, supplier_relations
from procurement.deviations.record import DeviationReport

REPORT = DeviationReport(
    ref="AV-2026-0007",
    status="received",
    reporter_aad_id="reporter",
    reporter_name="Kari Melder",
    category="wage_conditions",
    severity="critical",
    description="Arbeiderne sier de ikke får overtidsbetalt.",
    occurred_on=date(2026, 6, 9),
    created_at=datetime(2026, 6, 9, 12, tzinfo=UTC),
    supplier_name="Bygg og Betong AS",
    contract_ref="KAV-2023-101",
    manager_aad_ids=("manager", "manager-2"),
)


def actor(who: str, where: ConversationType = "personal", *, procurement: bool = False) -> Actor:
    roles = frozenset({Role.PROCUREMENT}) if procurement else frozenset()
    return Actor(aad_id=who, name=who, roles=roles, conversation_type=where)


REPORTER = actor("reporter")
MANAGER = actor("manager")
BUYER = actor("buyer", procurement=True)
STRANGER = actor("colleague")
OTHER_MANAGER = actor("manager-of-another-contract")

# verb → (reporter, manager, innkjøper, anyone else) in a personal chat
MATRIX: dict[str, tuple[bool, bool, bool, bool]] = {
    "open_form": (True, True, True, True),
    "save_step": (True, True, True, True),
    "attach": (True, True, True, True),
    "submit": (True, True, True, True),
    "message_action": (True, True, True, True),
    "list_own": (True, True, True, True),
    "view": (True, True, True, False),
    "view_in_follow_up_channel": (False, False, True, False),
    "change_status": (False, True, True, False),
    "supplier_notice": (False, True, True, False),
    "supplier_summary": (False, True, True, False),
}


def test_the_matrix_covers_every_verb() -> None:
    assert set(MATRIX) == set(POLICY.rules)


@pytest.mark.parametrize("verb", sorted(MATRIX))
def test_access_matrix_on_one_report(verb: str) -> None:
    for who, expected in zip((REPORTER, MANAGER, BUYER, STRANGER), MATRIX[verb], strict=True):
        assert POLICY.allows(who, verb, relations(who, REPORT)) is expected, (verb, who.aad_id)


def test_relations() -> None:
    assert relations(REPORTER, REPORT) == {Relation.SUBMITTER}
    assert relations(actor("manager-2"), REPORT) == {Relation.MANAGER}
    assert relations(STRANGER, REPORT) == frozenset()
    assert relations(BUYER, REPORT) == frozenset()


def test_an_empty_id_is_nobodys_reporter_or_manager() -> None:
    orphan = DeviationReport(**{**REPORT.__dict__, "reporter_aad_id": "", "manager_aad_ids": ("",)})
    assert relations(SYSTEM, orphan) == frozenset()
    assert not can_see(SYSTEM, orphan)
    assert not can_see(Actor(aad_id="", name="?"), orphan)


def test_the_three_who_see_it_get_it() -> None:
    for who in (REPORTER, MANAGER, BUYER):
        assert authorize(who, "view", REPORT) is REPORT


@pytest.mark.parametrize("who", [STRANGER, OTHER_MANAGER, SYSTEM])
@pytest.mark.parametrize("verb", ["view", "view_in_follow_up_channel", "change_status", "supplier_notice"])
def test_anyone_else_gets_not_found_as_for_a_missing_reference(who: Actor, verb: str) -> None:
    with pytest.raises(NotFound):
        authorize(who, verb, REPORT)
    with pytest.raises(NotFound):
        authorize(who, verb, None)


def test_a_guessed_reference_and_a_real_one_refuse_alike() -> None:
    def refusal(report: DeviationReport | None) -> str:
        try:
            authorize(STRANGER, "view", report)
        except NotFound as refused:
            return type(refused).__name__
        return "shown"

    assert refusal(REPORT) == refusal(None) == "NotFound"


def test_the_reporter_sees_but_may_not_change_status() -> None:
    with pytest.raises(NotAllowed) as refused:
        authorize(REPORTER, "change_status", REPORT)
    assert not refused.value.personal_only


@pytest.mark.parametrize("who", [MANAGER, BUYER])
def test_the_manager_and_an_innkjoper_change_status_also_from_a_channel_card(who: Actor) -> None:
    assert authorize(actor(who.aad_id, "channel", procurement=who is BUYER), "change_status", REPORT) is REPORT


def test_the_content_is_shown_only_in_a_personal_chat_except_the_follow_up_channel() -> None:
    with pytest.raises(NotAllowed) as refused:
        authorize(actor("reporter", "groupChat"), "view", REPORT)
    assert refused.value.personal_only  # "fortsett i personlig chat": she knows it exists
    assert authorize(actor("buyer", "channel", procurement=True), "view_in_follow_up_channel", REPORT) is REPORT
    with pytest.raises(NotFound):
        authorize(actor("manager", "channel"), "view_in_follow_up_channel", REPORT)


def test_the_message_action_works_from_a_channel_but_the_chat_form_is_personal() -> None:
    in_channel = actor("colleague", "channel")
    assert POLICY.allows(in_channel, "message_action")
    assert not POLICY.allows(in_channel, "submit")


def test_supplier_summary_is_for_innkjopere_and_that_suppliers_managers() -> None:
    managers = ["manager", "manager-2"]
    assert POLICY.allows(MANAGER, "supplier_summary", supplier_relations(MANAGER, managers))
    assert POLICY.allows(BUYER, "supplier_summary", supplier_relations(BUYER, managers))
    assert not POLICY.allows(OTHER_MANAGER, "supplier_summary", supplier_relations(OTHER_MANAGER, managers))
    assert not POLICY.allows(REPORTER, "supplier_summary", supplier_relations(REPORTER, managers))
    assert supplier_relations(SYSTEM, [""]) == frozenset()
