"""Who may do what with the contract register (printed in docs/access.md; a test compares)."""

from __future__ import annotations

from procurement.access import ANYONE, Policy, Relation, Role, rule

POLICY = Policy(
    "contracts",
    {
        "search": rule(ANYONE, note="supplier, title, period and next deadline are public"),
        "see_prices": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            personal_only=True,
            note="value, internal notes, archive case, options and controls (unntatt offentlighet)",
        ),
        "list_own": rule(ANYONE, personal_only=True, note="the contracts one manages"),
        "register": rule(Role.PROCUREMENT, personal_only=True, note="the contract form, also from a competition"),
    },
)
