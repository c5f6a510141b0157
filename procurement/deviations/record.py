"""A sent deviation report as the domain sees it, its history, and its status machine.

    reported ──▶ received ──▶ in_progress ──▶ sanction_assessed ──▶ closed
    (meldt)      (mottatt)    (under behandling) (sanksjon vurdert)  (lukket)
        │            │            │  ▲ new remedy deadline               ▲
        │            │            └──┘                                   │
        └────────────┴────────────┴──────────── close (justification) ───┘

Forward one step at a time, by the contract's avtaleforvalter or an innkjøper
(`access.POLICY`). "Under behandling" needs a remedy deadline (today or later) and how the
supplier is told: a formal notice (a PDF the avtaleforvalter sends; it never names the
reporter) or already told otherwise (the note says how). While under behandling the
deadline may be moved. "Sanksjon vurdert" records the assessment in the note. A report can
be closed from any open status — a duplicate or a mistaken report need not pass every step —
but only with a written justification, which is what the archive keeps. Closed is final.

`plan_transition` decides a `deviation.status` press without changing anything: apply it,
a repeat of the change just made (a double tap: nothing happens), or refused with errors at
the card's fields. `apply_transition` returns the changed record with its history entry.
Each change tells the reporter in plain words (`ReporterMessage`: a catalog key and its
values; the effect handler renders it in the reporter's language when it sends).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from procurement.deviations.fields import MAX_NOTE
from procurement.shared.dates import format_date, read_date
from procurement.shared.text import clean_text

Messages = dict[str, str]

STATUSES: tuple[str, ...] = ("reported", "received", "in_progress", "sanction_assessed", "closed")
OPEN_STATUSES: tuple[str, ...] = STATUSES[:-1]
FINAL_STATUSES: tuple[str, ...] = ("closed",)
# The one step forward from each open status.
NEXT_STATUS: dict[str, str] = {
    "reported": "received",
    "received": "in_progress",
    "in_progress": "sanction_assessed",
    "sanction_assessed": "closed",
}
SUPPLIER_NOTICE_CHOICES: tuple[str, ...] = ("formal_notice", "already_notified")
MAX_REMEDY_DAYS = 366  # a remedy deadline further ahead is most likely a typo in the year

REF_PREFIX = "AV"
_REF_RE = re.compile(r"^AV-(\d{4})-(\d{4,6})$")


def _msg(nb: str, en: str) -> Messages:
    return {"nb": nb, "en": en}


# -- references -----------------------------------------------------------------------------------


def format_ref(year: int, number: int) -> str:
    """AV-2026-0042 (the store's counter allocates `number` per year)."""
    return f"{REF_PREFIX}-{year:04d}-{number:04d}"


def parse_ref(text: object) -> str | None:
    """A reference as typed ("av-2026-42", " AV-2026-0042 ") in its canonical form, or None.
    A refresh or a typed command with anything else finds nothing."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    candidate = re.sub(r"\s+", "", text).upper()
    m = re.match(r"^AV-(\d{4})-(\d{1,6})$", candidate)
    if not m or int(m.group(2)) == 0:
        return None
    canonical = format_ref(int(m.group(1)), int(m.group(2)))
    return canonical if _REF_RE.match(canonical) else None


# -- the record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAttachment:
    stored_name: str
    original_name: str
    kind: str
    content_type: str
    size: int


@dataclass(frozen=True)
class SourceMessage:
    """The Teams message a report was started from (the message action)."""

    author_name: str
    link: str
    sent_at: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One status change, append-only: who, when, from and to, and what they wrote."""

    at: datetime
    actor_aad_id: str
    actor_name: str
    from_status: str
    to_status: str
    note: str = ""
    remedy_deadline: date | None = None
    supplier_notice: str | None = None


@dataclass(frozen=True)
class DeviationReport:
    ref: str
    status: str
    reporter_aad_id: str
    reporter_name: str
    category: str
    severity: str
    description: str
    occurred_on: date
    created_at: datetime
    supplier_name: str  # from the contract, or as typed when the contract was not found
    contract_ref: str | None = None  # None: the supplier was typed
    contract_title: str | None = None
    manager_aad_ids: tuple[str, ...] = ()  # the contract's avtaleforvalter(s)
    reporting_unit: str = ""
    location: str = ""
    financial_impact: int | None = None
    breached_clause: str | None = None
    attachments: tuple[StoredAttachment, ...] = ()
    source: SourceMessage | None = None
    remedy_deadline: date | None = None
    supplier_notice: str | None = None  # formal_notice | already_notified
    assessment: str | None = None  # the note of "sanksjon vurdert"
    closed_at: datetime | None = None
    closing_justification: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    notice_id: str | None = None  # the formal notice to the supplier, once made (AV-2026-0042-V1)
    updated_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def routed_to_follow_up_channel(self) -> bool:
        """No avtaleforvalter to send it to: Innkjøpsseksjonen's follow-up channel gets it."""
        return not self.manager_aad_ids

    def remedy_overdue(self, today: date) -> bool:
        """The supplier's remedy deadline has passed while the report is still under behandling."""
        return self.status == "in_progress" and self.remedy_deadline is not None and self.remedy_deadline < today

    def days_to_closure(self) -> float | None:
        if self.closed_at is None:
            return None
        return (self.closed_at - self.created_at) / timedelta(days=1)


# -- transitions ----------------------------------------------------------------------------------


def allowed_targets(status: str) -> tuple[str, ...]:
    """The statuses a report in `status` may move to (what the card offers)."""
    if status not in OPEN_STATUSES:
        return ()
    targets = [NEXT_STATUS[status]]
    if status == "in_progress":
        targets.insert(0, "in_progress")  # a new remedy deadline
    if "closed" not in targets:
        targets.append("closed")
    return tuple(targets)


def can_transition(status: str, target: str) -> bool:
    return target in allowed_targets(status)


@dataclass(frozen=True)
class ReporterMessage:
    """What the reporter is told, as a catalog key (`dv_notify_<...>`) and its values."""

    key: str
    params: dict[str, str]


Outcome = Literal["apply", "repeated", "refused"]


@dataclass(frozen=True)
class TransitionPlan:
    outcome: Outcome
    target: str
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    note: str = ""
    remedy_deadline: date | None = None
    supplier_notice: str | None = None
    moves_deadline: bool = False  # already under behandling: only the deadline changes

    @property
    def produces_supplier_notice(self) -> bool:
        """Moving to under behandling with a formal notice: the PDF for the avtaleforvalter (once;
        a moved deadline is told to the supplier by the avtaleforvalter, not by a new notice)."""
        return (
            self.outcome == "apply"
            and self.target == "in_progress"
            and self.supplier_notice == "formal_notice"
            and not self.moves_deadline
        )


_CLOSED = _msg(
    "Avviket er lukket, og statusen kan ikke endres lenger.",
    "The deviation is closed, and its status can no longer be changed.",
)
_NOT_ALLOWED_TARGET = _msg(
    "Den statusen kan ikke velges nå. Velg neste steg, eller lukk avviket med en begrunnelse.",
    "That status cannot be chosen now. Choose the next step, or close the deviation with a justification.",
)
_UNKNOWN_STATUS = _msg("Velg en status i listen.", "Choose a status in the list.")
_DEADLINE_REQUIRED = _msg(
    "Velg fristen leverandøren har til å rette avviket.",
    "Choose the deadline the supplier has to remedy the deviation.",
)
_DEADLINE_BAD = _msg(
    "Velg en gyldig dato for fristen, for eksempel 01.09.2026.",
    "Choose a valid date for the deadline, e.g. 01.09.2026.",
)
_NOTICE_REQUIRED = _msg(
    "Velg hvordan leverandøren varsles: et formelt varsel (PDF) du sender, eller at leverandøren alt er varslet.",
    "Choose how the supplier is notified: a formal notice (PDF) you send, or that the supplier has been told.",
)
_HOW_NOTIFIED = _msg(
    "Skriv i notatet hvordan og når leverandøren ble varslet.",
    "Write in the note how and when the supplier was notified.",
)
_ASSESSMENT_REQUIRED = _msg(
    "Skriv vurderingen i notatet: hvilken sanksjon, eller hvorfor ingen.",
    "Write the assessment in the note: which sanction, or why none.",
)
_JUSTIFICATION_REQUIRED = _msg(
    "Skriv begrunnelsen for å lukke avviket. Den arkiveres med saken.",
    "Write the justification for closing the deviation. It is archived with the case.",
)
_SAME_DEADLINE = _msg(
    "Fristen er den samme som før. Velg en ny frist for å flytte den.",
    "The deadline is the same as before. Choose a new deadline to move it.",
)


def _deadline(value: object, today: date, errors: dict[str, Messages]) -> date | None:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        day: date | None = value
    elif isinstance(value, str) and value.strip():
        day = read_date(value.strip()[:40])[0]
    elif value is None or isinstance(value, str):
        errors["remedy_deadline"] = _DEADLINE_REQUIRED
        return None
    else:
        day = None
    if day is None:
        errors["remedy_deadline"] = _DEADLINE_BAD
        return None
    if day < today:
        errors["remedy_deadline"] = _msg(
            f"Fristen kan ikke være tilbake i tid. Velg i dag ({format_date(today)}) eller senere.",
            f"The deadline cannot be in the past. Choose today ({format_date(today)}) or later.",
        )
        return None
    if day > today + timedelta(days=MAX_REMEDY_DAYS):
        errors["remedy_deadline"] = _msg(
            "Fristen er mer enn ett år fram i tid. Sjekk årstallet.",
            "The deadline is more than a year ahead. Check the year.",
        )
        return None
    return day


def _note(value: object, errors: dict[str, Messages]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors["note"] = _msg("Ugyldig verdi. Skriv inn tekst.", "Invalid value. Please enter text.")
        return ""
    text = clean_text(value).strip()
    if len(text) > MAX_NOTE:
        errors["note"] = _msg(
            f"Notatet er for langt: {len(text)} tegn. Skriv høyst {MAX_NOTE} tegn.",
            f"The note is too long: {len(text)} characters. Write at most {MAX_NOTE}.",
        )
        return text[:MAX_NOTE]
    return text


def plan_transition(
    report: DeviationReport,
    target: object,
    *,
    note: object = None,
    remedy_deadline: object = None,
    supplier_notice: object = None,
    today: date,
) -> TransitionPlan:
    """Decide a status change (never raises). Who may ask is access's question, not this one."""
    errors: dict[str, Messages] = {}
    wanted = target.strip() if isinstance(target, str) else ""
    text = _note(note, errors)
    if wanted not in STATUSES:
        return TransitionPlan("refused", wanted, {"status": _UNKNOWN_STATUS, **errors}, text)
    last = report.history[-1] if report.history else None
    # A double tap or a retried invoke: the change that was just made, asked for again.
    if (
        last is not None
        and last.to_status == wanted == report.status
        and last.note == text
        and (wanted != "in_progress" or _same_date(remedy_deadline, last.remedy_deadline))
    ):
        return TransitionPlan("repeated", wanted, {}, text, report.remedy_deadline, report.supplier_notice)
    if not report.is_open:
        return TransitionPlan("refused", wanted, {"status": _CLOSED}, text)
    if not can_transition(report.status, wanted):
        return TransitionPlan("refused", wanted, {"status": _NOT_ALLOWED_TARGET, **errors}, text)

    deadline: date | None = None
    notice: str | None = None
    if wanted == "in_progress":
        deadline = _deadline(remedy_deadline, today, errors)
        if report.status == "in_progress":
            notice = report.supplier_notice  # moving the deadline: the supplier was told already
            if deadline is not None and deadline == report.remedy_deadline:
                errors["remedy_deadline"] = _SAME_DEADLINE
        else:
            chosen = supplier_notice.strip() if isinstance(supplier_notice, str) else ""
            if chosen not in SUPPLIER_NOTICE_CHOICES:
                errors["supplier_notice"] = _NOTICE_REQUIRED
            else:
                notice = chosen
                if chosen == "already_notified" and not text and "note" not in errors:
                    errors["note"] = _HOW_NOTIFIED
    elif wanted == "sanction_assessed" and not text and "note" not in errors:
        errors["note"] = _ASSESSMENT_REQUIRED
    elif wanted == "closed" and not text and "note" not in errors:
        errors["note"] = _JUSTIFICATION_REQUIRED
    moves = wanted == report.status == "in_progress"
    if errors:
        return TransitionPlan("refused", wanted, errors, text, deadline, notice, moves)
    return TransitionPlan("apply", wanted, {}, text, deadline, notice, moves)


def _same_date(value: object, other: date | None) -> bool:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value == other
    if isinstance(value, str):
        return read_date(value.strip()[:40])[0] == other
    return other is None


def apply_transition(
    report: DeviationReport, plan: TransitionPlan, *, actor_aad_id: str, actor_name: str, now: datetime
) -> DeviationReport:
    """The record after an applied plan, with its history entry."""
    if plan.outcome != "apply":
        raise ValueError(f"cannot apply a {plan.outcome} transition")
    entry = HistoryEntry(
        at=now,
        actor_aad_id=actor_aad_id,
        actor_name=actor_name,
        from_status=report.status,
        to_status=plan.target,
        note=plan.note,
        remedy_deadline=plan.remedy_deadline,
        supplier_notice=plan.supplier_notice if plan.target == "in_progress" else None,
    )
    after = dataclasses.replace(report, status=plan.target, history=(*report.history, entry))
    if plan.target == "in_progress":
        return dataclasses.replace(after, remedy_deadline=plan.remedy_deadline, supplier_notice=plan.supplier_notice)
    if plan.target == "sanction_assessed":
        return dataclasses.replace(after, assessment=plan.note)
    if plan.target == "closed":
        return dataclasses.replace(after, closed_at=now, closing_justification=plan.note)
    return after


def reporter_message(before: DeviationReport, after: DeviationReport) -> ReporterMessage:
    """What the reporter is told about a change, in plain words. The reporter's own report:
    status and deadline are hers to know; internal assessment notes are not sent, the closing
    justification is (it is why her report is closed)."""
    params = {"ref": after.ref, "supplier": after.supplier_name}
    if after.status == "received":
        return ReporterMessage("dv_notify_received", params)
    if after.status == "in_progress":
        deadline = format_date(after.remedy_deadline) if after.remedy_deadline else ""
        key = "dv_notify_deadline_moved" if before.status == "in_progress" else "dv_notify_in_progress"
        return ReporterMessage(key, {**params, "deadline": deadline})
    if after.status == "sanction_assessed":
        return ReporterMessage("dv_notify_sanction_assessed", params)
    if after.status == "closed":
        return ReporterMessage("dv_notify_closed", {**params, "justification": after.closing_justification or ""})
    return ReporterMessage("dv_notify_reported", params)
