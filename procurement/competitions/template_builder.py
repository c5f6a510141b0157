"""Builds the shipped Word templates for the konkurransestrategi, and checks edited ones.

    python -m procurement.competitions.template_builder            # rewrite templates/*.docx
    python -m procurement.competitions.template_builder --check F  # render F with a sample report

The templates are ordinary Word documents with docxtpl tags (`{{ need.title }}`, `{%p for … %}`
paragraphs, `{%tr for … %}` table rows); the municipality may edit them in Word
(docs/strategy-template.md says how without breaking the tags). Headings use Word's own
styles (Title, Heading 1, Heading 2, List Bullet) so the document has a navigable outline.
Every tag is written as one run, so Word and docxtpl see it whole.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from procurement.competitions.strategy import (
    TEMPLATE_NAMES,
    TEMPLATES_DIR,
    StrategyTemplateError,
    build_strategy,
    render_strategy_docx,
)
from procurement.needs.record import NeedsReport

# Fixed so that rebuilding gives the same document parts (a test compares them).
_BUILT = datetime(2026, 1, 1)

_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Konkurransestrategi",
        "h_need": "1. Behovet",
        "h_description": "Behovsbeskrivelse",
        "h_value": "2. Verdi og grunnlag",
        "value_amount": "Anslått verdi (eks. mva., hele perioden inkludert opsjoner): ",
        "value_basis": "Grunnlag for verdien: ",
        "h_rules": "3. Hva regelverket og anskaffelsesstrategien krever",
        "source": "Kilde: ",
        "h_procedure": "4. Foreslått prosedyre",
        "announce": "Kunngjøring: ",
        "suggested": "Forslag: ",
        "h_options": "Prosedyrer å vurdere",
        "chosen_procedure": "Valgt prosedyre og begrunnelse: ",
        "h_lots": "5. Delkontrakter og tilgang for små og mellomstore bedrifter",
        "lots_decision": "Beslutning om oppdeling og begrunnelse: ",
        "h_climate": "6. Klima og miljø",
        "climate_decision": "Valgt vekting av klima og miljø, eller unntaket som brukes, med begrunnelse: ",
        "h_labour": "7. Lønns- og arbeidsvilkår, seriøsitet og lærlinger",
        "labour_decision": "Plan for kontroller i avtaleperioden: ",
        "h_dialogue": "8. Markedsdialog og innovasjon",
        "dialogue_decision": "Planlagt dialog (dialogmøte, forespørsel om informasjon …): ",
        "h_risks": "9. Risiko",
        "risk_decision": "Tiltak: ",
        "h_timeline": "10. Tidsplan",
        "col_milestone": "Milepæl",
        "col_date": "Dato",
        "col_note": "Merknad",
        "h_faggruppe": "11. Faggruppe",
        "contact": "Innkjøpskontakt: ",
        "no_members": "Ingen foreslått ennå.",
        "h_approval": "12. Godkjenning",
        "approved_by": "Godkjent av (innkjøper): ",
        "approved_on": "Dato: ",
        "author": "Innkjøpsseksjonen",
    },
    "en": {
        "title": "Competition strategy",
        "h_need": "1. The need",
        "h_description": "Description of the need",
        "h_value": "2. Value and its basis",
        "value_amount": "Estimated value (excl. VAT, whole period including options): ",
        "value_basis": "Basis for the value: ",
        "h_rules": "3. What the rules and the procurement strategy require",
        "source": "Source: ",
        "h_procedure": "4. Suggested procedure",
        "announce": "Announcement: ",
        "suggested": "Suggestion: ",
        "h_options": "Procedures to consider",
        "chosen_procedure": "Chosen procedure and reasons: ",
        "h_lots": "5. Lots and access for small and medium-sized enterprises",
        "lots_decision": "Decision on lots and reasons: ",
        "h_climate": "6. Climate and environment",
        "climate_decision": "Chosen weighting of climate and environment, or the exception used, with reasons: ",
        "h_labour": "7. Wage and working conditions, serious-employer requirements and apprentices",
        "labour_decision": "Plan for checks during the contract period: ",
        "h_dialogue": "8. Market dialogue and innovation",
        "dialogue_decision": "Planned dialogue (dialogue meeting, request for information …): ",
        "h_risks": "9. Risks",
        "risk_decision": "Measures: ",
        "h_timeline": "10. Timeline",
        "col_milestone": "Milestone",
        "col_date": "Date",
        "col_note": "Note",
        "h_faggruppe": "11. Expert group",
        "contact": "Procurement contact: ",
        "no_members": "None proposed yet.",
        "h_approval": "12. Approval",
        "approved_by": "Approved by (procurement officer): ",
        "approved_on": "Date: ",
        "author": "Innkjøpsseksjonen",
    },
}


def _preserve(paragraph: Paragraph) -> Paragraph:
    # Values may start or end with spaces after a line break; keep them.
    for t in paragraph._p.iter(qn("w:t")):
        t.set(qn("xml:space"), "preserve")
    return paragraph


def _para(
    target: DocumentObject | _Cell, text: str, style: str | None = None, *, italic: bool = False, bold: bool = False
) -> Paragraph:
    paragraph = target.add_paragraph(style=style)
    run = paragraph.add_run(text)
    run.italic = italic or None
    run.bold = bold or None
    return _preserve(paragraph)


def _labelled(doc: DocumentObject, label: str, tag: str) -> Paragraph:
    paragraph = doc.add_paragraph()
    paragraph.add_run(label).bold = True
    paragraph.add_run(tag)
    return _preserve(paragraph)


def _points(doc: DocumentObject, name: str, source_label: str) -> None:
    """A `{%p for %}` loop over a list of points: the text as a bullet, its source beneath."""
    _para(doc, f"{{%p for x in {name} %}}")
    _para(doc, "{{ x.text }}", "List Bullet")
    source = _para(
        doc, f"{{% if x.severity %}}{{{{ x.severity }}}} · {{% endif %}}{source_label}{{{{ x.source }}}}", italic=True
    )
    source.paragraph_format.left_indent = Pt(18)
    _para(doc, "{%p endfor %}")


def _loop_table(doc: DocumentObject, loop: str, cells: Sequence[str], header: Sequence[str] | None = None) -> None:
    """A table whose rows repeat with `{%tr for %}`: [header,] for-row, data row, endfor-row."""
    rows = (1 if header else 0) + 3
    table = doc.add_table(rows=rows, cols=len(cells))
    table.style = "Table Grid"
    index = 0
    if header:
        for cell, text in zip(table.rows[0].cells, header, strict=True):
            cell.paragraphs[0].add_run(text).bold = True
        index = 1
    table.rows[index].cells[0].paragraphs[0].add_run(f"{{%tr for {loop} %}}")
    for cell, text in zip(table.rows[index + 1].cells, cells, strict=True):
        cell.paragraphs[0].add_run(text)
        _preserve(cell.paragraphs[0])
    table.rows[index + 2].cells[0].paragraphs[0].add_run("{%tr endfor %}")


def build_template(lang: str) -> DocumentObject:
    t = _TEXT[lang]
    doc = Document()
    props = doc.core_properties
    props.author = t["author"]
    props.last_modified_by = t["author"]
    props.title = t["title"]
    props.revision = 1
    props.created = _BUILT
    props.modified = _BUILT
    props.language = "nb-NO" if lang == "nb" else "en-GB"

    doc.add_heading(t["title"], level=0)
    _para(doc, "{{ competition_ref }} – {{ need.title }}", "Subtitle")
    _para(doc, "{{ draft_notice }}", italic=True)

    doc.add_heading(t["h_need"], level=1)
    _loop_table(doc, "f in need.facts", ("{{ f.label }}", "{{ f.value }}"))
    doc.add_heading(t["h_description"], level=2)
    _para(doc, "{{ need.description }}")

    doc.add_heading(t["h_value"], level=1)
    _labelled(doc, t["value_amount"], "{{ value.amount }}")
    _labelled(doc, t["value_basis"], "{{ value.basis }}")
    _para(doc, "{{ value.position }}")

    doc.add_heading(t["h_rules"], level=1)
    _points(doc, "consequences", t["source"])

    doc.add_heading(t["h_procedure"], level=1)
    _para(doc, "{{ procedure.summary }}")
    _labelled(doc, t["announce"], "{{ procedure.announce }}")
    _labelled(doc, t["suggested"], "{{ procedure.suggested }}")
    doc.add_heading(t["h_options"], level=2)
    _para(doc, "{%p for o in procedure.options %}")
    _para(doc, "{{ o.text }}{% if o.severity %} ({{ o.severity }}){% endif %}", "List Bullet")
    _para(doc, "{%p endfor %}")
    _para(doc, t["source"] + "{{ procedure.source }}", italic=True)
    _para(doc, "{{ procedure.advice }}", italic=True)
    _labelled(doc, t["chosen_procedure"], "")

    for heading, name, decision in (
        ("h_lots", "lots", "lots_decision"),
        ("h_climate", "climate", "climate_decision"),
        ("h_labour", "labour", "labour_decision"),
        ("h_dialogue", "dialogue", "dialogue_decision"),
        ("h_risks", "risks", "risk_decision"),
    ):
        doc.add_heading(t[heading], level=1)
        _points(doc, name, t["source"])
        _labelled(doc, t[decision], "")

    doc.add_heading(t["h_timeline"], level=1)
    _para(doc, "{{ timeline.message }}")
    _loop_table(
        doc,
        "r in timeline.rows",
        ("{{ r.milestone }}", "{{ r.date }}", "{{ r.note }}"),
        header=(t["col_milestone"], t["col_date"], t["col_note"]),
    )

    doc.add_heading(t["h_faggruppe"], level=1)
    _labelled(doc, t["contact"], "{{ faggruppe.contact }}")
    _para(doc, "{%p if faggruppe.members %}")
    _para(doc, "{%p for m in faggruppe.members %}")
    _para(doc, "{{ m }}", "List Bullet")
    _para(doc, "{%p endfor %}")
    _para(doc, "{%p else %}")
    _para(doc, t["no_members"], italic=True)
    _para(doc, "{%p endif %}")
    _points(doc, "faggruppe.notes", t["source"])

    doc.add_heading(t["h_approval"], level=1)
    _labelled(doc, t["approved_by"], "")
    _labelled(doc, t["approved_on"], "")
    return doc


def write_templates(directory: Path = TEMPLATES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lang, name in TEMPLATE_NAMES.items():
        path = directory / name
        build_template(lang).save(str(path))
        written.append(path)
    return written


def sample_report() -> NeedsReport:
    """A report with every field filled, for checking a template (not real data)."""
    data = {
        "title": "Trygghetsalarmer for hjemmeboende",
        "need": "Hjemmeboende med behov for hjelp skal kunne varsle døgnet rundt.\n"
        "Løsningen må virke uten fasttelefon.",
        "service_area": "helse_mestring",
        "estimated_value": 3_400_000,
        "value_basis": "Dagens avtale: 850 000 kr i året, 4 år inkludert opsjoner.",
        "category": "services",
        "cpv": "85312000",
        "agreement_type": "framework",
        "start_date": "2027-09-01",
        "duration_months": 24,
        "option_months": 24,
        "replaces_contract": "AV-2021-0042",
        "budget_secured": True,
        "faggruppe": ["Kari Nordmann", "Øyvind Ås"],
        "risk_notes": "Personvern og drift døgnet rundt.",
        "innovation": True,
    }
    return NeedsReport(
        ref="BM-2026-0001",
        status="approved",
        submitter_aad_id="00000000-0000-0000-0000-000000000001",
        submitter_name="Åse Ødegård",
        title=str(data["title"]),
        service_area=str(data["service_area"]),
        category=str(data["category"]),
        estimated_value=3_400_000,
        data=data,
        assessment={},
        created_at=datetime(2026, 10, 1, 9, 0),
    )


def check_template(path: Path, today: date = date(2026, 10, 1)) -> str | None:
    """None when `path` renders with the sample report; otherwise what is wrong."""
    for lang in TEMPLATE_NAMES:
        content = build_strategy(sample_report(), competition_ref="K-2026-0001", today=today, lang=lang)
        try:
            render_strategy_docx(content, path)
        except StrategyTemplateError as exc:
            return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", type=Path, help="render this template with a sample report and report errors")
    args = parser.parse_args(argv)
    if args.check:
        problem = check_template(args.check)
        if problem:
            print(f"{args.check}: {problem}", file=sys.stderr)
            return 1
        print(f"{args.check}: OK")
        return 0
    for path in write_templates():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
