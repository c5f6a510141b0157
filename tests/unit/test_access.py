"""The access policies: their semantics, and that docs/access.md prints exactly them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from procurement.access import ANYONE, Actor, NotAllowed, Policy, Relation, Role, access_table, rule
from procurement.policies import POLICIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "access.md"

POLICY = Policy(
    "demo",
    {
        "view": rule(Role.PROCUREMENT, Relation.SUBMITTER),
        "prices": rule(Role.PROCUREMENT, Relation.MANAGER, personal_only=True),
        "open": rule(ANYONE),
    },
)
KARI = Actor(aad_id="kari", name="Kari")
INGRID = Actor(aad_id="ingrid", name="Ingrid", roles=frozenset({Role.PROCUREMENT}))


def test_docs_table_is_the_policies() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- access-table:start -->\n(.*?)<!-- access-table:end -->", text, re.S)
    assert found, "docs/access.md lost its table markers"
    assert found.group(1).strip() == access_table(POLICIES).strip(), (
        "docs/access.md differs from the policies: regenerate with `python -m procurement.policies`"
    )


def test_every_verb_has_someone_and_verbs_are_unique() -> None:
    seen = set()
    for policy in POLICIES:
        for verb, granted in policy.rules.items():
            assert granted.grants, f"{policy.workflow}.{verb} grants nobody"
            assert (policy.workflow, verb) not in seen
            seen.add((policy.workflow, verb))


def test_roles_and_relations() -> None:
    assert POLICY.allows(INGRID, "view")
    assert not POLICY.allows(KARI, "view")
    assert POLICY.allows(KARI, "view", {Relation.SUBMITTER})
    assert not POLICY.allows(KARI, "view", {Relation.MANAGER})
    with pytest.raises(NotAllowed) as refused:
        POLICY.check(KARI, "view")
    assert not refused.value.personal_only


def test_anyone_means_a_known_person() -> None:
    assert POLICY.allows(KARI, "open")
    assert not POLICY.allows(Actor(aad_id="", name="anonymous"), "open")


@pytest.mark.parametrize("conversation", ["channel", "groupChat"])
def test_personal_only_content_stays_out_of_shared_conversations(conversation: str) -> None:
    shared = Actor(aad_id="ingrid", name="Ingrid", roles=frozenset({Role.PROCUREMENT}), conversation_type=conversation)  # type: ignore[arg-type]
    assert POLICY.granted(shared, "prices")  # the role holds …
    assert not POLICY.allows(shared, "prices")  # … but not here
    with pytest.raises(NotAllowed) as refused:
        POLICY.check(shared, "prices")
    assert refused.value.personal_only
    # Someone without the role is refused as such, not sent to the personal chat.
    with pytest.raises(NotAllowed) as refused:
        POLICY.check(Actor(aad_id="kari", name="Kari", conversation_type=conversation), "prices")  # type: ignore[arg-type]
    assert not refused.value.personal_only
