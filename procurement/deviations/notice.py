"""The formal notice to the supplier (varsel om avvik) as PDF/A, in Norwegian.

It names the contract, the deviation, the breached clause, the remedy deadline and who at
the municipality sends it (the avtaleforvalter's section), and never the reporter: neither
her name, her unit nor the message she started from. The description is the reporter's own
words, which the avtaleforvalter reads before sending (the card says so).
"""

from __future__ import annotations

from datetime import datetime

from procurement.deviations.record import DeviationReport
from procurement.records.pdf import Fact, RecordDocument, Section, render_pdf
from procurement.shared.dates import format_date
from procurement.shared.money import format_nok

CATEGORY_NB: dict[str, str] = {
    "delivery": "Levering eller tid",
    "quality": "Kvalitet",
    "price_invoice": "Pris eller faktura",
    "wage_conditions": "Lønns- og arbeidsvilkår",
    "hms": "HMS (helse, miljø og sikkerhet)",
    "environment": "Miljø",
    "ethics": "Etikk og menneskerettigheter",
    "apprentices": "Lærlinger",
    "other": "Annet",
}


def notice_id(ref: str, number: int = 1) -> str:
    """AV-2026-0042-V1: the notice's own number (one per report, so V1)."""
    return f"{ref}-V{number}"


def notice_file_name(ref: str) -> str:
    return f"Varsel om avvik {ref}.pdf"


def notice_document(report: DeviationReport, *, sent_at: datetime, sender: str) -> RecordDocument:
    if report.remedy_deadline is None:
        raise ValueError("a supplier notice needs a remedy deadline")
    contract = report.contract_ref or "Ikke oppgitt"
    if report.contract_ref and report.contract_title:
        contract = f"{report.contract_ref} {report.contract_title}"
    facts = [
        Fact("Til", report.supplier_name),
        Fact("Avtale", contract),
        Fact("Vår referanse", report.ref),
        Fact("Gjelder", CATEGORY_NB.get(report.category, report.category)),
        Fact("Dato for avviket", format_date(report.occurred_on)),
    ]
    if report.location:
        facts.append(Fact("Sted", report.location))
    if report.breached_clause:
        facts.append(Fact("Avtalepunkt", report.breached_clause))
    if report.financial_impact is not None:
        facts.append(Fact("Økonomisk konsekvens", format_nok(report.financial_impact, "nb")))
    facts.append(Fact("Frist for retting", format_date(report.remedy_deadline)))
    clause = f" ({report.breached_clause})" if report.breached_clause else ""
    sections = (
        Section(
            "Varsel",
            (
                f"Kommunen har registrert et avvik fra avtalen{clause}. Vi ber om at forholdet rettes innen "
                f"{format_date(report.remedy_deadline)}, og at dere innen samme frist skriftlig redegjør for "
                "hva som er gjort for å rette avviket og hindre at det skjer igjen.",
                "Dersom avviket ikke rettes innen fristen, vil kommunen vurdere sanksjoner etter avtalen.",
            ),
        ),
        Section("Beskrivelse av avviket", (report.description,)),
        Section(
            "Kontakt",
            (f"Spørsmål om varselet rettes til avsenderen, med vår referanse {report.ref}.",),
        ),
    )
    return RecordDocument(
        kind="Varsel om avvik",
        title=f"Varsel om avvik – {report.supplier_name}",
        reference=notice_id(report.ref),
        created_at=sent_at,
        facts=tuple(facts),
        sections=sections,
        author=sender,
    )


def notice_pdf(report: DeviationReport, *, sent_at: datetime, sender: str) -> bytes:
    return render_pdf(notice_document(report, sent_at=sent_at, sender=sender))
