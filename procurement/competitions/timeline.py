"""A competition's timeline, worked back from the needs report's wished start date.

    strategy approved → konkurransegrunnlag ready → announced → tender deadline
      → award decision → contract signed (after the standstill) → contract start

Each phase lasts at least its period (`procedure.Procedure.periods`, calendar days as the
regulation counts them, § 7-6). Working back, every milestone but the contract start is moved
to the closest working day *before* (procurement/shared/calendar.py), which only lengthens the
phases, so a legal minimum is never cut. The standstill runs from the day after the award
notice, so the contract is signed no earlier than notice + standstill + 1 day.

When the wished start is too close — the strategy would have to be approved before today —
the timeline says so plainly and is drawn back from the earliest start that fits instead.
Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from procurement.competitions.procedure import Procedure
from procurement.shared.calendar import previous_working_day
from procurement.shared.dates import format_date

MILESTONES = (
    "strategy_approved",
    "documents_ready",
    "announced",
    "tender_deadline",
    "award",
    "contract_signed",
    "contract_start",
)

_LABELS: dict[str, dict[str, str]] = {
    "strategy_approved": {"nb": "Konkurransestrategien godkjent", "en": "Competition strategy approved"},
    "documents_ready": {"nb": "Konkurransegrunnlaget klart", "en": "Tender documents ready"},
    "announced": {"nb": "Kunngjøring", "en": "Announcement"},
    "tender_deadline": {"nb": "Tilbudsfrist", "en": "Tender deadline"},
    "award": {"nb": "Tildelingsbeslutning (meddelelse)", "en": "Award decision (notice)"},
    "contract_signed": {"nb": "Kontrakt signert", "en": "Contract signed"},
    "contract_start": {"nb": "Kontraktsstart", "en": "Contract start"},
}


def _kind(minimum: bool, lang: str) -> str:
    if lang == "nb":
        return "lovens minstefrist" if minimum else "kommunens standard"
    return "legal minimum" if minimum else "the municipality's default"


def _days(n: int, lang: str) -> str:
    if lang == "nb":
        return "1 dag" if n == 1 else f"{n} dager"
    return "1 day" if n == 1 else f"{n} days"


@dataclass(frozen=True)
class Milestone:
    key: str
    on: date
    label: Mapping[str, str]
    note: Mapping[str, str]

    @property
    def date_text(self) -> str:
        return format_date(self.on)


@dataclass(frozen=True)
class Timeline:
    wished_start: date
    today: date
    feasible: bool
    start: date  # the start the milestones lead to: the wished one, or the earliest that fits
    milestones: tuple[Milestone, ...]
    message: Mapping[str, str]
    electronic: bool

    def get(self, key: str) -> Milestone:
        return next(m for m in self.milestones if m.key == key)

    @property
    def slack_days(self) -> int:
        """Days between today and the latest date the strategy can be approved (negative: too late)."""
        return (self.get("strategy_approved").on - self.today).days


def _back(d: date, days: int) -> date:
    return previous_working_day(d - timedelta(days=days))


def _standstill_gap(procedure: Procedure) -> int:
    days = procedure.periods["standstill"].days
    return days + 1 if days else 0


def _dates_back(start: date, procedure: Procedure, electronic: bool) -> dict[str, date]:
    p = procedure.periods
    out = {"contract_start": start}
    out["contract_signed"] = _back(start, p["mobilisation"].days)
    out["award"] = _back(out["contract_signed"], _standstill_gap(procedure))
    out["tender_deadline"] = _back(out["award"], p["evaluation"].days)
    out["announced"] = _back(out["tender_deadline"], procedure.tender_period(electronic).days)
    out["documents_ready"] = _back(out["announced"], p["publication"].days)
    out["strategy_approved"] = _back(out["documents_ready"], p["preparation"].days)
    return out


def lead_days(procedure: Procedure, electronic: bool = True) -> int:
    """The phases' total in calendar days, before working-day adjustment."""
    p = procedure.periods
    return (
        p["preparation"].days
        + p["publication"].days
        + procedure.tender_period(electronic).days
        + p["evaluation"].days
        + _standstill_gap(procedure)
        + p["mobilisation"].days
    )


def earliest_start(procedure: Procedure, today: date, electronic: bool = True) -> date:
    """The first start date whose back-worked strategy approval is not before `today`.

    The approval date grows with the start date (every step is monotone), so from an estimate
    a short walk finds the first start that fits."""
    candidate = today + timedelta(days=lead_days(procedure, electronic))
    while _dates_back(candidate, procedure, electronic)["strategy_approved"] < today:
        candidate += timedelta(days=1)
    while _dates_back(candidate - timedelta(days=1), procedure, electronic)["strategy_approved"] >= today:
        candidate -= timedelta(days=1)
    return candidate


def _notes(procedure: Procedure, electronic: bool) -> dict[str, dict[str, str]]:
    p = procedure.periods
    tender = procedure.tender_period(electronic)
    standstill = p["standstill"]
    notes: dict[str, dict[str, str]] = {}
    for lang in ("nb", "en"):
        nb = lang == "nb"

        def span(period_key: str, lang: str = lang) -> str:
            period = tender if period_key == "tender" else p[period_key]
            return f"{_days(period.days, lang)} ({_kind(period.is_minimum, lang)})"

        tender_extra = ""
        if electronic and tender.id == "tender_electronic":
            tender_extra = (
                f"; {_days(p['tender'].days, lang)} uten elektronisk innlevering"
                if nb
                else f"; {_days(p['tender'].days, lang)} without electronic submission"
            )
        if standstill.days:
            stand = (
                f"Karensperiode {span('standstill')} fra dagen etter meddelelsen"
                if nb
                else f"Standstill period {span('standstill')} from the day after the notice"
            )
        else:
            stand = "Ingen karensperiode" if nb else "No standstill period"
        text = {
            "strategy_approved": (
                f"Så arbeider faggruppen med konkurransegrunnlaget: {span('preparation')}"
                if nb
                else f"The expert group then prepares the tender documents: {span('preparation')}"
            ),
            "documents_ready": (
                f"Kravspesifikasjon, kriterier og kontrakt; kvalitetssikring og publisering {span('publication')}"
                if nb
                else f"Specification, criteria and contract; review and publication {span('publication')}"
            ),
            "announced": (
                f"{procedure.announce[lang]} Tilbudsfrist {span('tender')}{tender_extra}"
                if nb
                else f"{procedure.announce[lang]} Tender period {span('tender')}{tender_extra}"
            ),
            "tender_deadline": (
                f"Evaluering av tilbudene {span('evaluation')}" if nb else f"Evaluation of offers {span('evaluation')}"
            ),
            "award": stand,
            "contract_signed": (
                f"Oppstart og overlevering {span('mobilisation')}"
                if nb
                else f"Mobilisation and handover {span('mobilisation')}"
            ),
        }
        for key, value in text.items():
            notes.setdefault(key, {})[lang] = value
    return notes


def _message(
    procedure: Procedure, wished: date, today: date, feasible: bool, start: date, approved: date
) -> dict[str, str]:
    part = procedure.part
    if feasible:
        days = (approved - today).days
        return {
            "nb": (
                f"Tidsplanen regner bakover fra ønsket oppstart {format_date(wished)} med fristene for "
                f"{part['nb']}. Konkurransestrategien må være godkjent senest {format_date(approved)} "
                f"({_days(days, 'nb')} fra {format_date(today)})."
            ),
            "en": (
                f"The timeline works back from the wished start {format_date(wished)} with the periods for "
                f"{part['en']}. The competition strategy must be approved by {format_date(approved)} "
                f"({_days(days, 'en')} from {format_date(today)})."
            ),
        }
    return {
        "nb": (
            f"Ønsket oppstart {format_date(wished)} er for tidlig: med fristene for {part['nb']} måtte "
            f"konkurransestrategien vært godkjent {format_date(approved)}, før i dag ({format_date(today)}). "
            f"Tidligste realistiske oppstart er {format_date(start)}, og tidsplanen under regner fra den datoen."
        ),
        "en": (
            f"The wished start {format_date(wished)} is too early: with the periods for {part['en']} the "
            f"competition strategy would have had to be approved on {format_date(approved)}, before today "
            f"({format_date(today)}). The earliest realistic start is {format_date(start)}, and the timeline "
            f"below works from that date."
        ),
    }


def plan_timeline(wished_start: date, procedure: Procedure, today: date, *, electronic: bool = True) -> Timeline:
    """The milestones back from `wished_start`, or from the earliest start that fits after `today`.

    `electronic`: tenders are received electronically (KGV), which shortens Part III's minimum
    tender period where the data has a `tender_electronic` entry."""
    wished_dates = _dates_back(wished_start, procedure, electronic)
    feasible = wished_dates["strategy_approved"] >= today
    start = wished_start if feasible else earliest_start(procedure, today, electronic)
    dates = wished_dates if feasible else _dates_back(start, procedure, electronic)
    notes = _notes(procedure, electronic)
    notes["contract_start"] = (
        {"nb": "Ønsket oppstart", "en": "Wished start"}
        if feasible
        else {
            "nb": f"Tidligste realistiske oppstart (ønsket: {format_date(wished_start)})",
            "en": f"Earliest realistic start (wished: {format_date(wished_start)})",
        }
    )
    milestones = tuple(Milestone(key, dates[key], dict(_LABELS[key]), notes[key]) for key in MILESTONES)
    message = _message(procedure, wished_start, today, feasible, start, wished_dates["strategy_approved"])
    return Timeline(wished_start, today, feasible, start, milestones, message, electronic)
