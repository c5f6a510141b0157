"""Who may do what with deviation reports (to be printed in docs/access.md; a test compares).

A deviation report is exempt from public access: only its reporter, the avtaleforvalter of
its contract and innkjøpere see it. Anyone else gets `NotFound` — the same answer as for a
reference that does not exist — so a guessed `AV-…` teaches nothing (`authorize`).
The reporter is the report's `Relation.SUBMITTER`.
"""

from __future__ import annotations

from collections.abc import Iterable

from procurement.access import ANYONE, Actor, NotAllowed, NotFound, Policy, Relation, Role, rule
from procurement.deviations.record import DeviationReport

POLICY = Policy(
    "deviation",
    {
        "open_form": rule(ANYONE, personal_only=True, note="the form and the saved steps are personal"),
        "save_step": rule(ANYONE, personal_only=True, note="`deviation.next` / `deviation.back`"),
        "attach": rule(ANYONE, personal_only=True, note="files and photos sent while her report is open"),
        "submit": rule(ANYONE, personal_only=True),
        "message_action": rule(
            ANYONE,
            note="“Meld avvik” on a message: the form in a dialog only its opener sees, also in a channel",
        ),
        "list_own": rule(ANYONE, personal_only=True, note="“mine avvik”: her own reports and their status"),
        "view": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            Relation.SUBMITTER,
            personal_only=True,
            note="the report's card, `deviation.refresh`; anyone else: not found",
        ),
        "view_in_follow_up_channel": rule(
            Role.PROCUREMENT, note="the actionable card in Innkjøpsseksjonen's follow-up channel only"
        ),
        "change_status": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            note="`deviation.status`; from the manager's card or the follow-up channel",
        ),
        "supplier_notice": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            personal_only=True,
            note="the formal notice PDF for the supplier; never names the reporter",
        ),
        "supplier_summary": rule(
            Role.PROCUREMENT,
            Relation.MANAGER,
            personal_only=True,
            note="“avvik for <leverandør>” and its CSV: manager of one of that supplier's contracts",
        ),
    },
)

# Verbs that show a report's content: refused ones answer NotFound, never NotAllowed.
_CONTENT_VERBS = frozenset({"view", "view_in_follow_up_channel"})


def relations(actor: Actor, report: DeviationReport) -> frozenset[Relation]:
    """How the actor relates to the report. An empty id (the system, a broken activity) is
    nobody's reporter or manager."""
    if not actor.aad_id:
        return frozenset()
    found: set[Relation] = set()
    if actor.aad_id == report.reporter_aad_id:
        found.add(Relation.SUBMITTER)
    if actor.aad_id in report.manager_aad_ids:
        found.add(Relation.MANAGER)
    return frozenset(found)


def can_see(actor: Actor, report: DeviationReport) -> bool:
    """Whether the actor may know the report exists at all (wherever she asks from)."""
    return POLICY.granted(actor, "view", relations(actor, report))


def authorize(actor: Actor, verb: str, report: DeviationReport | None) -> DeviationReport:
    """The report, if the actor may do `verb` with it. Raises `NotFound` when it is missing or
    the actor may not see it; `NotAllowed` when she sees it but may not do this (the reporter
    pressing a status button) or not here (`personal_only`)."""
    if report is None or not can_see(actor, report):
        raise NotFound(report.ref if report is not None else "")
    try:
        POLICY.check(actor, verb, relations(actor, report))
    except NotAllowed as refused:
        if verb in _CONTENT_VERBS and not refused.personal_only:
            raise NotFound(report.ref) from None
        raise
    return report


def supplier_relations(actor: Actor, manager_ids: Iterable[str]) -> frozenset[Relation]:
    """For a supplier summary: a manager of any of that supplier's contracts."""
    if actor.aad_id and actor.aad_id in set(manager_ids):
        return frozenset({Relation.MANAGER})
    return frozenset()
