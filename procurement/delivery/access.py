"""Who may see the outbox's state and retry a job (printed in docs/access.md; a test compares)."""

from __future__ import annotations

from procurement.access import Policy, Role, rule

POLICY = Policy(
    "outbox",
    {
        "status": rule(
            Role.PROCUREMENT,
            personal_only=True,
            note='"status utsending": waiting, failing and dead jobs with the records they are for',
        ),
        "retry": rule(
            Role.PROCUREMENT,
            note="a failing or dead job back to pending, attempts reset (also from the channel's alert)",
        ),
    },
)
