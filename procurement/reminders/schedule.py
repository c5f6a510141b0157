"""Which reminders a contract needs, and how to bring stored reminders in line after a change.

Reminder kinds and their default offsets (before the target date they warn about):

| kind                | target                    | default offset |
|---------------------|---------------------------|----------------|
| ``new_competition`` | end date                  | 12 months      |
| ``end_6m``          | end date                  | 6 months       |
| ``end_3m``          | end date                  | 3 months       |
| ``option_notice_3m``| each option's notice date | 3 months       |
| ``option_notice_1m``| each option's notice date | 1 month        |
| ``control``         | each planned control      | 14 days        |

A contract's ``reminder_overrides`` replaces an offset per kind (``{"end_6m": "4m"}``)
or switches a kind off (``{"end_3m": None}``).

Rules of ``derive_schedule``:

* Month arithmetic clamps to the month's length (31 May − 3 months = 28/29 Feb), then
  days are subtracted; a due date that falls on a weekend or a Norwegian public holiday
  moves to the previous working day (never later than the target).
* A reminder whose **target** is before ``today`` is omitted: the deadline has passed.
* A reminder whose **due date** is before ``today`` while its target is today or later
  is still included: it is overdue and should go out now (the sender decides the send
  time, e.g. the next working hour). ``collapse_overdue=True`` keeps only the latest of
  several overdue reminders for the same target (useful when a contract is first
  registered close to its end); the default keeps them all.
* Options: exercised (``True``) or declined (``False``) options get no reminders; a
  declined option ends the chain, so later options get none either.

Idempotency: every reminder has a ``subject_key``
``"{external_ref}:{kind}:{which}:{target ISO date}"`` where ``which`` is ``-`` for the
end date, the option number for options, and the control's ``kind`` code (with ``#2``,
``#3`` … for several controls of one kind on one date) for controls. The control's
kind rather than its list index is used so that adding or removing another control
does not change the keys (and re-send) the remaining controls' reminders. A key is the
same as long as what is warned about is the same; when an end date moves, the target
changes and so does the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Generic, NamedTuple, Protocol, TypeVar

from procurement.contracts.model import ContractData, Offset, ReminderKind, parse_offset
from procurement.shared.calendar import add_months, previous_working_day
from procurement.shared.text import fold

ESCALATE_AFTER = timedelta(days=7)
"""A delivered reminder without an answer after this long goes to Innkjøpsseksjonen."""
SNOOZE = timedelta(days=7)
""""Snooze" brings a reminder back after this long."""

PENDING = "pending"
CANCELLED = "cancelled"
CANCELLABLE_STATUSES: frozenset[str] = frozenset({PENDING})


DEFAULT_OFFSETS: Mapping[ReminderKind, Offset] = MappingProxyType(
    {
        ReminderKind.NEW_COMPETITION: Offset(months=12),
        ReminderKind.OPTION_NOTICE_3M: Offset(months=3),
        ReminderKind.OPTION_NOTICE_1M: Offset(months=1),
        ReminderKind.END_6M: Offset(months=6),
        ReminderKind.END_3M: Offset(months=3),
        ReminderKind.CONTROL: Offset(days=14),
    }
)

_END_KINDS = (ReminderKind.NEW_COMPETITION, ReminderKind.END_6M, ReminderKind.END_3M)
_OPTION_KINDS = (ReminderKind.OPTION_NOTICE_3M, ReminderKind.OPTION_NOTICE_1M)
_KIND_ORDER = {k: i for i, k in enumerate(ReminderKind)}


@dataclass(frozen=True)
class PlannedReminder:
    kind: ReminderKind
    due_date: date
    subject_key: str
    target_date: date
    option_number: int | None = None
    control_index: int | None = None


def offset_for(contract: ContractData, kind: ReminderKind) -> Offset | None:
    """The contract's offset for ``kind`` (its override, else the default); None = off."""
    overrides = contract.reminder_overrides
    if kind.value in overrides:
        return parse_offset(overrides[kind.value])
    return DEFAULT_OFFSETS[kind]


def due_date_for(target: date, offset: Offset) -> date:
    """``target`` − ``offset`` (months clamped, then days), moved back to a working day."""
    return previous_working_day(add_months(target, -offset.months) - timedelta(days=offset.days))


def _slug(text: str) -> str:
    """A key-safe form of a control's kind: ``"Lønnskontroll mnd 6"`` → ``"lonnskontroll-mnd-6"``.

    (Kinds are the ASCII codes of ``importing.values.control_kind``; folding only guards the key.)
    """
    slug = re.sub(r"[^a-z0-9_\-]+", "-", fold(text.strip())).strip("-")
    return slug[:40].rstrip("-") or "control"


def derive_schedule(contract: ContractData, today: date, *, collapse_overdue: bool = False) -> list[PlannedReminder]:
    """The reminders ``contract`` needs as of ``today``, sorted by due date (rules above).

    Raises ``ValueError`` if a reminder override cannot be read (validate first).
    """
    ref = contract.external_ref
    planned: list[PlannedReminder] = []

    def plan(
        kind: ReminderKind,
        target: date,
        which: str,
        *,
        option: int | None = None,
        control: int | None = None,
    ) -> None:
        if target < today:
            return
        offset = offset_for(contract, kind)
        if offset is None:
            return
        planned.append(
            PlannedReminder(
                kind=kind,
                due_date=min(due_date_for(target, offset), target),
                subject_key=f"{ref}:{kind.value}:{which}:{target.isoformat()}",
                target_date=target,
                option_number=option,
                control_index=control,
            )
        )

    for kind in _END_KINDS:
        plan(kind, contract.end_date, "-")

    for option in sorted(contract.options, key=lambda o: o.number):
        if option.exercised is False:
            break  # declined: this and every later option lapse
        if option.exercised is True:
            continue
        for kind in _OPTION_KINDS:
            plan(kind, option.notice_deadline, str(option.number), option=option.number)

    seen: dict[tuple[str, date], int] = {}
    for index, control in enumerate(contract.controls):
        slug = _slug(control.kind)
        n = seen[(slug, control.due)] = seen.get((slug, control.due), 0) + 1
        which = slug if n == 1 else f"{slug}#{n}"
        plan(ReminderKind.CONTROL, control.due, which, control=index)

    if collapse_overdue:
        planned = _collapse_overdue(planned, today)
    planned.sort(key=lambda p: (p.due_date, p.target_date, _KIND_ORDER[p.kind], p.subject_key))
    return planned


def _collapse_overdue(planned: list[PlannedReminder], today: date) -> list[PlannedReminder]:
    def group(p: PlannedReminder) -> tuple[object, ...]:
        if p.kind in _END_KINDS:
            return ("end", p.target_date)
        if p.kind in _OPTION_KINDS:
            return ("option", p.option_number, p.target_date)
        return ("control", p.subject_key)

    latest_overdue: dict[tuple[object, ...], PlannedReminder] = {}
    for p in planned:
        if p.due_date < today:
            best = latest_overdue.get(group(p))
            if best is None or p.due_date > best.due_date:
                latest_overdue[group(p)] = p
    return [p for p in planned if p.due_date >= today or latest_overdue[group(p)] is p]


# -- reconciliation ---------------------------------------------------------------------


class ExistingReminder(Protocol):
    """What ``reconcile`` needs of a stored reminder (an ORM row fits)."""

    @property
    def subject_key(self) -> str: ...

    @property
    def status(self) -> str: ...


E = TypeVar("E", bound=ExistingReminder)


class ReconcilePlan(NamedTuple, Generic[E]):
    to_create: list[PlannedReminder]
    """Keys never stored before: insert as pending."""
    to_cancel: list[E]
    """Stored, still pending, and no longer planned: mark cancelled."""
    to_revive: list[tuple[E, PlannedReminder]]
    """Stored as cancelled but planned again (e.g. an end date moved back): make pending
    again with the planned due date. Not in ``to_create`` because the key is taken."""
    to_reschedule: list[tuple[E, PlannedReminder]]
    """Stored, pending, planned again with another due date (an override changed):
    update the due date and send time. Only offered when the stored row has a ``due_date``."""
    unchanged: list[E]
    """Everything else that is stored: leave alone (delivered ones are never re-sent)."""


def plan_changes(existing: Iterable[E], new: Sequence[PlannedReminder]) -> ReconcilePlan[E]:
    """The full comparison of stored reminders with a freshly derived schedule."""
    stored = list(existing)
    by_key = {r.subject_key: r for r in stored}
    planned_by_key = {p.subject_key: p for p in new}
    to_create = [p for p in new if p.subject_key not in by_key]
    to_cancel: list[E] = []
    to_revive: list[tuple[E, PlannedReminder]] = []
    to_reschedule: list[tuple[E, PlannedReminder]] = []
    unchanged: list[E] = []
    for r in stored:
        p = planned_by_key.get(r.subject_key)
        if p is None:
            (to_cancel if r.status in CANCELLABLE_STATUSES else unchanged).append(r)
        elif r.status == CANCELLED:
            to_revive.append((r, p))
        elif r.status == PENDING and getattr(r, "due_date", None) not in (None, p.due_date):
            to_reschedule.append((r, p))
        else:
            unchanged.append(r)
    return ReconcilePlan(to_create, to_cancel, to_revive, to_reschedule, unchanged)


def reconcile(existing: Iterable[E], new: Sequence[PlannedReminder]) -> tuple[list[PlannedReminder], list[E]]:
    """``(to_create, to_cancel)``: new keys to insert, pending reminders to cancel.

    Keys present on both sides are left untouched, so nothing is sent twice. A stored
    reminder that is no longer planned is cancelled only while it is still pending; one
    already delivered, answered or escalated stays as it is. A planned key that is
    stored as *cancelled* is in neither list (inserting it again would clash with the
    unique key); use ``plan_changes(...).to_revive`` to bring it back.
    """
    result = plan_changes(existing, new)
    return result.to_create, result.to_cancel
