"""Who may answer a reminder and follow up an escalation (printed in docs/access.md; a test compares)."""

from __future__ import annotations

from procurement.access import Policy, Relation, Role, rule

POLICY = Policy(
    "reminders",
    {
        "answer": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            Relation.RECIPIENT,
            note="extend option, new needs report, not relevant, snooze",
        ),
        "follow_up": rule(
            Role.PROCUREMENT,
            note="escalation card in the follow-up channel: assign another avtaleforvalter, mark handled, open",
        ),
    },
)
