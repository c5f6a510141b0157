"""Who may do what with needs reports (printed in docs/access.md; a test compares)."""

from __future__ import annotations

from procurement.access import ANYONE, Policy, Relation, Role, rule

POLICY = Policy(
    "needs_report",
    {
        "open_form": rule(ANYONE, personal_only=True, note="the form and the saved draft are personal"),
        "save_draft": rule(ANYONE, personal_only=True),
        "submit": rule(ANYONE, personal_only=True),
        "list_own": rule(ANYONE, personal_only=True, note="values and draft titles are personal"),
        "view": rule(Role.PROCUREMENT, Relation.SUBMITTER, note="the intake card: need, value, risk, faggruppe"),
        "decide": rule(Role.PROCUREMENT, note="approve, reject, ask for more information (a question is required)"),
        "withdraw": rule(Relation.SUBMITTER),
        "answer": rule(
            Relation.SUBMITTER, personal_only=True, note="answer Innkjøpsseksjonen's question about her open report"
        ),
        "edit": rule(
            Relation.SUBMITTER,
            personal_only=True,
            note="open her open report's form prefilled and update it (same ref)",
        ),
    },
)
