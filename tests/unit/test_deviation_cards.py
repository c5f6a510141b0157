"""The deviation workflow's edges without I/O: a message action's message read as text and
source, Teams attachments read as files to fetch, the supplier notice PDF (never the
reporter), the reporter's plain-words notices, and the cards it draws."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader

from bot.routes.deviation_report import incoming_files
from dialogs import deviation_report as dialog
from procurement.deviations.notice import notice_document, notice_file_name, notice_pdf
from procurement.deviations.record import DeviationReport, HistoryEntry
from procurement.deviations.service import DraftView
from tests.cardcheck import validate_card
from tests.connector_stub import card_texts

REPORT = DeviationReport(
    ref="AV-2026-0042",
    status="in_progress",
    reporter_aad_id="reporter",
    reporter_name="Kari Melder",
    category="wage_conditions",
    severity="critical",
    description="Arbeiderne sier de ikke får overtidsbetalt.",
    occurred_on=date(2026, 6, 9),
    created_at=datetime(2026, 6, 9, 12, tzinfo=UTC),
    supplier_name="Bygg og Betong AS",
    contract_ref="KAV-2023-101",
    contract_title="Rehabilitering av Sletta skole",
    manager_aad_ids=("manager",),
    location="Sletta skole",
    breached_clause="Punkt 11 Lønns- og arbeidsvilkår",
    financial_impact=250000,
    remedy_deadline=date(2026, 7, 1),
    supplier_notice="formal_notice",
    history=(
        HistoryEntry(datetime(2026, 6, 10, 9, tzinfo=UTC), "manager", "Ola Forvalter", "reported", "received"),
        HistoryEntry(
            datetime(2026, 6, 11, 9, tzinfo=UTC),
            "manager",
            "Ola Forvalter",
            "received",
            "in_progress",
            remedy_deadline=date(2026, 7, 1),
            supplier_notice="formal_notice",
        ),
    ),
)


def text_of(card: dict[str, object]) -> str:
    return "\n".join(card_texts(card))


def test_the_message_is_read_as_text_and_source() -> None:
    payload = {
        "body": {"contentType": "html", "content": "<p>Bussen kom <b>45&nbsp;min</b> for sent.</p><p>Igjen!</p>"},
        "from": {"user": {"displayName": "Siri Johansen"}},
        "createdDateTime": "2026-09-01T08:15:00.000Z",
        "linkToMessage": "https://teams.microsoft.com/l/message/1",
    }
    assert dialog.message_text(payload) == "Bussen kom 45\xa0min for sent.\nIgjen!"
    source = dialog.message_source(payload)
    assert source is not None and source.author_name == "Siri Johansen"
    assert source.sent_at == datetime(2026, 9, 1, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload", [{}, {"body": "x"}, {"body": {"content": 7}}, {"from": [1]}, {"createdDateTime": 5}]
)
def test_a_broken_message_payload_is_no_message(payload: dict[str, object]) -> None:
    assert dialog.message_text(payload) == ""
    assert dialog.message_source(payload) is None


def test_teams_attachments_become_files_to_fetch() -> None:
    files = incoming_files(
        [
            {
                "contentType": "application/vnd.microsoft.teams.file.download.info",
                "name": "rapport.pdf",
                "content": {"downloadUrl": "https://x.sharepoint.com/d/1", "fileType": "pdf"},
            },
            {"contentType": "image/png", "contentUrl": "https://smba.trafficmanager.net/v3/attachments/1"},
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": {}},
        ]
    )
    assert [(f.offered.name, f.offered.declared_type, f.with_bot_token) for f in files] == [
        ("rapport.pdf", "pdf", False),  # pre-authenticated: no token
        ("bilde", "image/png", True),
    ]


def test_the_supplier_notice_names_the_contract_and_deadline_and_never_the_reporter() -> None:
    document = notice_document(REPORT, sent_at=datetime(2026, 6, 11, 9, tzinfo=UTC), sender="Ola Forvalter")
    facts = {f.label: f.value for f in document.facts}
    assert facts["Til"] == "Bygg og Betong AS"
    assert facts["Avtale"] == "KAV-2023-101 Rehabilitering av Sletta skole"
    assert facts["Frist for retting"] == "01.07.2026"
    assert facts["Avtalepunkt"] == "Punkt 11 Lønns- og arbeidsvilkår"
    pdf = notice_pdf(REPORT, sent_at=datetime(2026, 6, 11, 9, tzinfo=UTC), sender="Ola Forvalter")
    assert pdf.startswith(b"%PDF-")
    shown = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Varsel om avvik" in shown and "01.07.2026" in shown and "overtidsbetalt" in shown
    assert "Kari" not in shown and "Melder" not in shown
    assert notice_file_name(REPORT.ref) == "Varsel om avvik AV-2026-0042.pdf"
    # The same report gives the same bytes: a retried effect stores the same file.
    assert pdf == notice_pdf(REPORT, sent_at=datetime(2026, 6, 11, 9, tzinfo=UTC), sender="Ola Forvalter")


def test_the_reporter_is_told_in_plain_words_of_the_change_she_is_told_of() -> None:
    card = dialog.reporter_notice_card(REPORT, "nb", "received")
    assert "er mottatt" in text_of(card)
    moved = dialog.reporter_notice_card(REPORT, "nb", "deadline_moved")
    assert "flyttet til 01.07.2026" in text_of(moved)
    validate_card(card)


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_cards_are_valid_and_the_receipt_has_no_status_form(lang: str) -> None:
    report = dialog.report_card(REPORT, lang, refresh_user_ids=("29:m",))
    receipt = dialog.receipt_card(REPORT, lang, refresh_user_ids=("29:r",))
    for card in (report, receipt, dialog.alert_card(REPORT, lang), dialog.remedy_card(REPORT, lang, escalation=True)):
        validate_card(card)
    assert "Kari Melder" in text_of(report)
    assert "status" not in {i.get("id") for i in receipt["body"] if isinstance(i, dict)}
    assert "Kari Melder" not in text_of(dialog.alert_card(REPORT, lang))


@pytest.mark.parametrize("step", [1, 2, 3])
@pytest.mark.parametrize("dialog_mode", [False, True])
def test_every_step_of_the_form_is_one_card_with_big_buttons(step: int, dialog_mode: bool) -> None:
    draft = DraftView(draft_id="d1", step=step, values={"occurred_on": "2026-09-01", "severity": "low"})
    card = dialog.form_card("nb", draft, dialog=dialog_mode)
    validate_card(card)
    kinds = {a["type"] for a in card["actions"]}
    assert kinds == ({"Action.Submit"} if dialog_mode else {"Action.Execute"})
    assert all(a["data"]["draft_id"] == "d1" and a["data"]["step"] == step for a in card["actions"])
    assert "ColumnSet" not in str(card) and "Table" not in str(card)  # one column on a phone
