"""The draft konkurransestrategi: content from a needs report, the .docx from the Word template."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import docx
import pytest
from lxml import etree

from procurement.competitions.strategy import (
    TEMPLATE_NAMES,
    StrategyContent,
    StrategyError,
    StrategyTemplateError,
    build_strategy,
    clean_for_xml,
    document_name,
    render_strategy_docx,
    template_context,
    template_path,
)
from procurement.competitions.template_builder import build_template, check_template, sample_report
from procurement.needs.assessment import NeedsReportFacts, assess
from procurement.needs.record import NeedsReport

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 10, 1)
HEADINGS_NB = [
    "1. Behovet",
    "2. Verdi og grunnlag",
    "3. Hva regelverket og anskaffelsesstrategien krever",
    "4. Foreslått prosedyre",
    "5. Delkontrakter og tilgang for små og mellomstore bedrifter",
    "6. Klima og miljø",
    "7. Lønns- og arbeidsvilkår, seriøsitet og lærlinger",
    "8. Markedsdialog og innovasjon",
    "9. Risiko",
    "10. Tidsplan",
    "11. Faggruppe",
    "12. Godkjenning",
]


def report(**data: Any) -> NeedsReport:
    """A needs report as the service stores it: form data plus the assessment made at submission."""
    values: dict[str, Any] = {
        "title": "Renhold av skoler i Lillestrøm",
        "need": "Skolene trenger daglig renhold.\nOgså helgeutleie av gymsalene må dekkes.",
        "service_area": "oppvekst",
        "estimated_value": 3_400_000,
        "value_basis": "Dagens avtale koster 850 000 kr i året; 2 år + 2 års opsjon.",
        "category": "services",
        "cpv": "90910000",
        "agreement_type": "single",
        "start_date": "2027-09-01",
        "duration_months": 24,
        "option_months": 24,
        "replaces_contract": "AV-2022-0007",
        "budget_secured": True,
        "faggruppe": ["Kari Nordmann", "Øyvind Ås", "Åse Ødegård"],
        "risk_notes": "Arbeidslivskriminalitet i bransjen; nøkler og adgang til skolene.",
        "innovation": False,
    }
    values.update(data)
    facts = NeedsReportFacts(
        estimated_value=values["estimated_value"],
        category=values["category"],
        title=values["title"],
        need=values["need"],
        cpv=values["cpv"],
        risk_notes=values["risk_notes"],
        duration_months=values["duration_months"],
        option_months=values["option_months"],
        innovation=values["innovation"],
        faggruppe=tuple(values["faggruppe"]),
    )
    return NeedsReport(
        ref="BM-2026-0042",
        status="approved",
        submitter_aad_id="00000000-0000-0000-0000-00000000000a",
        submitter_name="Ingrid Bjørnstad",
        title=values["title"],
        service_area=values["service_area"],
        category=values["category"],
        estimated_value=values["estimated_value"],
        data=values,
        assessment=assess(facts, TODAY).to_dict(),
        created_at=datetime(2026, 9, 20, 10, 0),
    )


def content(r: NeedsReport | None = None, **kw: Any) -> StrategyContent:
    kw.setdefault("today", TODAY)
    return build_strategy(r or report(), competition_ref="K-2026-0042", **kw)


def open_docx(data: bytes) -> Any:
    return docx.Document(io.BytesIO(data))


def all_text(document: Any) -> str:
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


# -- the content ----------------------------------------------------------------------------------


def test_content_carries_the_report_and_every_consequence_with_its_source() -> None:
    r = report()
    c = content(r, service_area_label="Oppvekst")
    assert c.need.title == r.title and c.need.description == r.data["need"]
    assert c.value.amount == "3 400 000 kr" and c.value.basis == r.data["value_basis"]
    assert "EØS-terskelverdien (2 300 000 kr)" in c.value.position and c.value.position.endswith("Del III.")
    stored = r.assessment["consequences"]
    assert [(p.text, p.source) for p in c.consequences] == [(s["text"]["nb"], s["source"]) for s in stored]
    assert c.procedure.suggested == "Åpen anbudskonkurranse"
    assert c.faggruppe.members == ("Kari Nordmann", "Øyvind Ås", "Åse Ødegård")
    assert c.faggruppe.contact == "Ingrid Bjørnstad"
    facts = {f.label: f.value for f in c.need.facts}
    assert facts["Tjenesteområde"] == "Oppvekst" and facts["Ønsket oppstart"] == "01.09.2027"
    # cleaning: serious-employer requirements and wages in the labour section; the risk notes in risks
    assert {"Påkrevd"} == {p.severity for p in c.labour}
    assert any("renholdsregister" in p.text for p in c.labour)
    assert c.risks[0].text == r.data["risk_notes"] and c.risks[0].source == "Behovsmeldingen"
    assert any("30 %" in p.text for p in c.climate)
    assert c.document_name == "Konkurransestrategi K-2026-0042 (utkast).docx" == document_name("K-2026-0042")


def test_below_the_national_threshold_the_sections_still_say_something() -> None:
    r = report(estimated_value=600_000, category="goods", cpv=None, innovation=True, risk_notes="", faggruppe=[])
    c = content(r, faggruppe=None)
    assert c.procedure.part == "Del I"
    assert "gjelder fra nasjonal terskelverdi" in c.climate[0].text and "30 %" in c.climate[0].text
    assert c.labour and "Ingen særskilte krav" in c.labour[0].text
    assert c.lots[0].source == "Anskaffelsesstrategien Delmål 1, tiltak 3"
    assert c.dialogue[0].text.endswith("Ja.")
    assert c.faggruppe.members == ()


def test_a_report_without_a_stored_assessment_is_assessed_afresh() -> None:
    r = dataclasses.replace(report(), assessment={})
    c = content(r)
    assert c.consequences and any(p.source == "anskaffelsesforskriften § 7-9" for p in c.consequences)


def test_a_start_too_close_is_in_the_timeline_and_the_risks() -> None:
    c = content(report(start_date="2026-11-02"))
    assert not c.timeline.feasible
    assert c.timeline.message.startswith("Ønsket oppstart 02.11.2026 er for tidlig: ")
    assert any(p.text == c.timeline.message for p in c.risks)


def test_english_content() -> None:
    c = content(lang="en")
    assert c.value.amount == "NOK 3,400,000"
    assert c.procedure.part == "Part III"
    assert c.document_name == "Competition strategy K-2026-0042 (draft).docx"
    assert c.consequences[0].text == report().assessment["consequences"][0]["text"]["en"]


def test_a_report_without_a_start_date_is_refused() -> None:
    with pytest.raises(StrategyError):
        content(report(start_date="snart"))


# -- the document ---------------------------------------------------------------------------------


def test_rendered_docx_opens_and_holds_the_report() -> None:
    c = content()
    d = open_docx(render_strategy_docx(c))
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings == HEADINGS_NB
    assert d.paragraphs[0].style.name == "Title" and d.paragraphs[0].text == "Konkurransestrategi"
    text = all_text(d)
    r = report()
    for value in (r.title, r.data["need"], r.data["value_basis"], "3 400 000 kr", r.data["risk_notes"]):
        assert value in text, value
    for consequence in r.assessment["consequences"]:
        assert consequence["source"] in text
        assert consequence["text"]["nb"] in text
    for member in r.data["faggruppe"]:
        assert any(p.text == member and p.style.name == "List Bullet" for p in d.paragraphs)
    # the timeline table: header and one row per milestone, in order
    table = d.tables[-1]
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows[0] == ["Milepæl", "Dato", "Merknad"]
    assert [(row[0], row[1]) for row in rows[1:]] == [(t.milestone, t.date) for t in c.timeline.rows]
    assert rows[-1][:2] == ["Kontraktsstart", "01.09.2027"]
    # no tag is left behind
    assert "{{" not in text and "{%" not in text
    assert d.core_properties.identifier == "K-2026-0042"


def test_rendered_docx_is_a_valid_ooxml_package() -> None:
    data = render_strategy_docx(content())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        assert {"[Content_Types].xml", "word/document.xml", "_rels/.rels", "docProps/core.xml"} <= names
        for name in names:
            if name.endswith((".xml", ".rels")):
                etree.fromstring(z.read(name))  # strict: raises when not well-formed
        body = etree.fromstring(z.read("word/document.xml"))
    assert body.tag == "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}document"


def test_english_document_has_english_headings() -> None:
    d = open_docx(render_strategy_docx(content(lang="en")))
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings[0] == "1. The need" and headings[-1] == "12. Approval"
    assert "NOK 3,400,000" in all_text(d)


HOSTILE = (
    "{{ 7*7 }} {% for x in range(3) %}x{% endfor %} {_{ a }_} {_% b %_} {#c#} "
    "<w:p><w:r><w:t>inn</w:t></w:r></w:p> ]]> &amp; & \"sitat\" 'enkel' "
    "ÆØÅ æøå é ü 👍 ${x} %(y)s"
)


def test_hostile_input_survives_literally_and_is_never_template() -> None:
    long_need = ("Lang tekst med æøå. " * 6000).strip()  # ~120 000 characters
    r = report(
        title=HOSTILE,
        need=f"{HOSTILE}\nandre linje\tmed tab\n{long_need}",
        value_basis="Grunnlag <b>fet</b> & {{ value.amount }}",
        risk_notes="Kontroll\x00tegn\x07 og\x0c side\x1b skift\ufffe og \r\nCRLF",
        faggruppe=["{{ faggruppe.contact }}", "Ola <Nordmann> & Co"],
    )
    c = content(r)
    data = render_strategy_docx(c)
    d = open_docx(data)
    text = all_text(d)
    subtitle = next(p for p in d.paragraphs if p.style.name == "Subtitle")
    assert subtitle.text == f"K-2026-0042 – {HOSTILE}"  # {{ 7*7 }} shown, not evaluated
    assert d.tables[0].rows[0].cells[1].text == "BM-2026-0042"
    assert f"{HOSTILE}\nandre linje\tmed tab\n{long_need}" in text  # line break and tab kept
    assert "Grunnlag <b>fet</b> & {{ value.amount }}" in text
    assert "Kontrolltegn og side skift og \nCRLF" in text  # controls removed, CRLF a line break
    assert any(p.text == "{{ faggruppe.contact }}" for p in d.paragraphs)
    assert any(p.text == "Ola <Nordmann> & Co" for p in d.paragraphs)
    assert d.core_properties.subject == HOSTILE
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        etree.fromstring(z.read("word/document.xml"))


def test_clean_for_xml_keeps_text_and_drops_what_xml_cannot_hold() -> None:
    assert clean_for_xml("a\tb\nc\r\nd\re") == "a\tb\nc\nd\ne"
    assert clean_for_xml("x\x00\x01\x08\x0b\x0c\x1f\ud800\ufffe\uffffy") == "xy"
    assert clean_for_xml("æøå ÆØÅ € 👍") == "æøå ÆØÅ € 👍"


def test_context_values_are_escaped_data() -> None:
    ctx = template_context(content(report(title="A & B {{ x }}")))
    assert str(ctx["need"]["title"]) == "A &amp; B &#123;&#123; x &#125;&#125;"
    assert ctx["timeline"]["feasible"] is True
    assert isinstance(ctx["consequences"], list) and "source" in ctx["consequences"][0]


# -- the template -------------------------------------------------------------------------------


def _template_with(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_a_misspelt_field_or_a_broken_tag_fails_loudly() -> None:
    with pytest.raises(StrategyTemplateError, match="cannot be rendered"):
        render_strategy_docx(content(), _template_with("{{ need.titel }}"))
    with pytest.raises(StrategyTemplateError, match="cannot be rendered"):
        render_strategy_docx(content(), _template_with("{% for x in risks %}"))
    with pytest.raises(StrategyTemplateError, match="cannot be read"):
        render_strategy_docx(content(), b"not a docx")


def test_an_edited_template_cannot_reach_python_internals() -> None:
    probe = "{{ need.title.__class__.__mro__ }}"
    with pytest.raises(StrategyTemplateError):
        render_strategy_docx(content(), _template_with(probe))
    unsafe = "{{ cycler.__init__.__globals__.os.getcwd() }}"
    with pytest.raises(StrategyTemplateError):
        render_strategy_docx(content(), _template_with(unsafe))


def test_a_municipalitys_own_template_is_used(tmp_path: Path) -> None:
    path = tmp_path / "egen.docx"
    path.write_bytes(_template_with("Strategi for {{ competition_ref }}: {{ need.title }}"))
    d = open_docx(render_strategy_docx(content(), path))
    assert d.paragraphs[0].text == "Strategi for K-2026-0042: Renhold av skoler i Lillestrøm"
    assert check_template(path) is None
    bad = tmp_path / "feil.docx"
    bad.write_bytes(_template_with("{{ tidsplan }}"))
    problem = check_template(bad)
    assert problem is not None and "tidsplan" in problem


@pytest.mark.parametrize("lang", sorted(TEMPLATE_NAMES))
def test_shipped_template_is_what_the_builder_makes(lang: str) -> None:
    built = io.BytesIO()
    build_template(lang).save(built)
    with zipfile.ZipFile(built) as fresh, zipfile.ZipFile(template_path(lang)) as shipped:
        for part in ("word/document.xml", "word/styles.xml"):
            assert fresh.read(part) == shipped.read(part), (
                f"{part}: run python -m procurement.competitions.template_builder"
            )
    assert check_template(template_path(lang)) is None


def test_shipped_template_uses_word_styles_and_docxtpl_loops() -> None:
    with zipfile.ZipFile(template_path("nb")) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    for tag in ("{%p for x in consequences %}", "{%tr for r in timeline.rows %}", "{%tr for f in need.facts %}"):
        assert tag in xml
    assert 'w:val="Heading1"' in xml and 'w:val="Title"' in xml and 'w:val="ListBullet"' in xml
    assert sample_report().ref == "BM-2026-0001"


def test_the_template_documentation_names_every_field() -> None:
    doc = (ROOT / "docs" / "strategy-template.md").read_text(encoding="utf-8")
    ctx = template_context(content())

    def names(value: Any, prefix: str) -> set[str]:
        out = {prefix} if prefix else set()
        if isinstance(value, dict):
            for key, inner in value.items():
                out |= names(inner, f"{prefix}.{key}" if prefix else key)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for key in value[0]:
                out.add(f"{prefix}[].{key}")
        return out

    documented = set(re.findall(r"`([a-z_][a-z_.\[\]]*)`", doc))
    missing = sorted(n for n in names(ctx, "") if n not in documented)
    assert missing == []
