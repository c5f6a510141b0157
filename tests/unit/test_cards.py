"""Every card template, rendered in nb and en with normal and hostile values, is a valid
Adaptive Card 1.5 whose text is exactly what was put in — also when the value is markdown,
HTML, a link or a mention: Teams renders a markdown subset in TextBlocks and facts, and what
a user typed must show as the text it is (the renderer escapes it; `tests/cardcheck.py`
reads every such string as markdown and finds no markup).

SAMPLES is the registry of sample contexts: a new template must add its sample here
(`test_every_template_has_a_sample` fails otherwise). Each sample is a function of the
text to put in every free-text slot, returning one or more contexts (variants that take
the template's different branches).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.render import MAX_CARD_BYTES, TEMPLATES, escape_markdown, render_card, template_names
from cards.strings import EN, NB, STRINGS, text
from dialogs import home
from procurement.contracts.form import CONTRACT_FORM_FIELDS
from procurement.needs.fields import LIMITS, NEEDS_REPORT_FIELDS, SERVICE_AREAS
from tests.cardcheck import (
    card_problems,
    markdown_strings,
    plain,
    read_markdown,
    shown_card,
    shown_text,
    validate_card,
)
from tests.connector_stub import card_texts
from tests.unit.test_competition_cards import COMPETITION_SAMPLES

LANGS = ["nb", "en"]

Sample = Callable[[str, str], list[dict[str, Any]]]


def _t(lang: str, key: str) -> str:
    return STRINGS[lang][key]


def _facts(s: str) -> list[dict[str, str]]:
    return [{"title": "Referanse", "value": s}, {"title": s, "value": "BM-2026-0001"}]


def _contract_form(lang: str, s: str) -> list[dict[str, Any]]:
    choices = {"category": "services", "agreement_type": "framework", "risk_level": "high"}
    values = {k: choices.get(k, s) for k in CONTRACT_FORM_FIELDS}
    base = {
        "values": values,
        "labels": {k: f"{k} *" for k in CONTRACT_FORM_FIELDS},
        "token": s,
        "error_summary": s,
    }
    with_errors = dict(
        base, errors={"title": s, "category": s, "internal_notes": s}, origin=s, action_data={"competition": s}
    )
    empty = {"values": {}, "labels": base["labels"], "errors": {}, "token": None, "error_summary": ""}
    return [dict(base, errors={}), with_errors, empty]


def _contract_list(lang: str, s: str) -> list[dict[str, Any]]:
    items = [{"title": s, "facts": _facts(s)}, {"title": "Skyss", "facts": []}]
    actions = [{"title": s, "verb": "contracts.new", "data": {"q": s}}]
    return [
        {"heading": s, "intro": s, "empty": s, "items": items, "actions": actions},
        {"heading": s, "intro": None, "empty": s, "items": [], "actions": []},
    ]


def _needs_report_form(lang: str, s: str) -> list[dict[str, Any]]:
    choice = {
        "service_area": "oppvekst",
        "category": "goods",
        "agreement_type": "single",
        "budget_secured": "true",
        "innovation": "false",
        "start_date": "2027-01-15",
    }
    values = {k: choice.get(k, s) for k in NEEDS_REPORT_FIELDS}
    base: dict[str, Any] = {
        "values": values,
        "numbers": {"duration_months": 24, "option_months": None},
        "errors": {},
        "error_summary": s,
        "notice": None,
        "labels": {k: f"{k} *" for k in NEEDS_REPORT_FIELDS},
        "limits": LIMITS,
        "service_areas": [{"value": v, "title": text(lang, f"service_area_{v}")} for v in SERVICE_AREAS],
        "people_picker": False,
        "limits_hint": s,
        "details_title": s,
        "details_open": False,
        "token": s,
        "edit_ref": None,
        "form_title": s,
    }
    blank = dict(
        base, values={k: "" for k in NEEDS_REPORT_FIELDS}, numbers={"duration_months": None, "option_months": None}
    )
    return [
        base,
        dict(base, errors={k: s for k in NEEDS_REPORT_FIELDS}, notice=s, details_open=True),
        dict(base, edit_ref=s),
        dict(base, people_picker=True, values=dict(values, faggruppe="aad-1,aad-2")),
        blank,
    ]


def _consequences(s: str) -> list[dict[str, Any]]:
    return [
        {"label": s, "text": s, "style": "accent", "source": s, "code": "framework_agreement"},
        {"label": "Obs", "text": s, "style": "warning", "source": "", "code": None},
    ]


def _needs_report_intake(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "status_line": s,
        "status_color": "Warning",
        "facts": _facts(s),
        "need": s,
        "consequences": _consequences(s),
        "open": True,
        "decision_note": s,
        "decision_note_error": s,
        "exchanges": [
            {"asked": s, "question": s, "answered": s, "answer": s},
            {"asked": s, "question": s, "answered": s, "answer": ""},
        ],
        "edited_line": s,
        "notice": s,
        "ref": s,
        "refresh_user_ids": [s, "29:kari"],
    }
    return [
        base,
        dict(
            base,
            open=False,
            notice=None,
            refresh_user_ids=[],
            consequences=[],
            exchanges=[],
            edited_line="",
            decision_note_error="",
        ),
    ]


def _needs_report_question(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "intro": s,
        "question": s,
        "answer_shown": "",
        "answered_line": "",
        "notice": None,
        "can_answer": True,
        "can_edit": True,
        "answer": s,
        "answer_error": s,
        "answer_limit": 4000,
        "ref": s,
        "exchange_id": 7,
    }
    return [
        base,
        dict(base, answer_shown=s, answered_line=s, notice=s, can_answer=False, can_edit=False, answer_error=""),
    ]


def _needs_report_list(lang: str, s: str) -> list[dict[str, Any]]:
    return [
        {
            "items": [
                {"ref": "BM-2026-0001", "title": s, "line": s, "action": None},
                {
                    "ref": s,
                    "title": "x",
                    "line": "y",
                    "action": {"title": s, "verb": "needs_report.question", "data": {"ref": s}},
                },
            ],
            "draft_line": s,
        },
        {"items": [], "draft_line": None},
    ]


def _needs_report_summary(lang: str, s: str) -> list[dict[str, Any]]:
    actions = [
        {"title": s, "verb": "needs_report.withdraw", "data": {"ref": s}, "style": "destructive"},
        {"title": s, "verb": "needs_report.mine", "data": {}, "style": None},
    ]
    base = {"heading": s, "intro": s, "facts": _facts(s), "consequences": _consequences(s), "actions": actions}
    return [
        dict(base, more_consequences=_consequences(s), show_all=s),
        dict(base, more_consequences=[], show_all=s),
        {
            "heading": s,
            "intro": s,
            "facts": [],
            "consequences": [],
            "more_consequences": [],
            "show_all": s,
            "actions": [],
        },
    ]


def _notice(lang: str, s: str) -> list[dict[str, Any]]:
    return [
        {"title": s, "body": s},
        {"title": s, "body": s, "actions": [{"title": s, "verb": "home.help", "data": {"x": s}}]},
        {"title": s, "body": s, "actions": []},
    ]


def _records_picker(lang: str, s: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"title": s, "intro": s, "request_id": 7, "more": None, "error": None, "selected": ""}
    choices = [{"title": s, "value": "0"}, {"title": s, "value": "1"}]
    return [
        {**base, "choices": choices},
        {**base, "choices": choices, "error": s, "selected": "1", "more": s},
        {**base, "choices": []},
    ]


def _records_receipt(lang: str, s: str) -> list[dict[str, Any]]:
    line = {"name": s, "state": s, "color": "Good", "reference": s, "url": "https://contoso.sharepoint.com/a.pdf"}
    waiting = {"name": s, "state": s, "color": "Default", "reference": None, "url": None}
    base: dict[str, Any] = {"title": s, "summary": s, "request_id": 7}
    return [{**base, "lines": [line, waiting], "done": False}, {**base, "lines": [line], "done": True}]


def _reminder(lang: str, s: str) -> list[dict[str, Any]]:
    actions = [
        {"title": s, "verb": "reminder.extend_option", "data": {"reminder": 7}, "style": "positive"},
        {"title": s, "verb": "reminder.snooze", "data": {"reminder": 7}},
    ]
    base = {
        "heading": s,
        "lines": [s, s],
        "question": s,
        "facts": _facts(s),
        "answered_line": None,
        "notice": s,
        "open": True,
        "reason": s,
        "reason_error": s,
        "actions": actions,
    }
    return [base, dict(base, open=False, answered_line=s, notice=None, reason_error=None)]


def _escalation(lang: str, s: str) -> list[dict[str, Any]]:
    data = {"reminders": [7, 8], "contract": s}
    actions = [
        {"title": s, "verb": "reminder.assign_manager", "data": data},
        {"title": s, "verb": "reminder.escalation_handled", "data": data},
        {"title": s, "verb": "reminder.open_contract", "data": data},
    ]
    base = {
        "heading": s,
        "facts": _facts(s),
        "lines": [s, s],
        "status_line": None,
        "notice": s,
        "open": True,
        "people_picker": False,
        "manager": s,
        "manager_error": s,
        "actions": actions,
    }
    return [
        base,
        dict(base, people_picker=True, manager="", manager_error=None, notice=None),
        dict(base, open=False, status_line=s, notice=None, manager_error=None, actions=actions[2:]),
    ]


def _welcome(lang: str, s: str) -> list[dict[str, Any]]:
    actions = [{"title": s, "verb": verb, "data": {}} for _, verb in home.WELCOME_ACTIONS]
    return [{"actions": actions, "coming": [s, s]}, {"actions": actions, "coming": []}]


def _delivery_status(lang: str, s: str) -> list[dict[str, Any]]:
    retry = {"title": s, "verb": "outbox.retry", "data": {"id": 7}}
    jobs = [{"title": s, "facts": _facts(s), "retry": retry}, {"title": s, "facts": _facts(s), "retry": None}]
    actions = [{"title": s, "verb": "outbox.status", "data": {}}]
    base = {"heading": s, "summary": s, "shown_line": s, "notice": s, "notice_color": "Good", "jobs": jobs}
    return [
        dict(base, actions=actions),
        dict(base, shown_line=None, notice=None, jobs=[], actions=actions),
    ]


def _delivery_dead_letter(lang: str, s: str) -> list[dict[str, Any]]:
    actions = [{"title": s, "verb": "outbox.retry", "data": {"id": 7, "view": "alert"}, "style": "positive"}]
    base = {"heading": s, "intro": s, "facts": _facts(s), "status_line": None, "notice": None, "actions": actions}
    return [base, dict(base, intro=None, status_line=s, notice=s, actions=[])]


def _deviation_form(lang: str, s: str) -> list[dict[str, Any]]:
    values = {
        "contract": "KAV-1",
        "supplier_name": s,
        "category": "hms",
        "severity": "high",
        "description": s,
        "occurred_on": "2026-09-01",
        "location": s,
        "financial_impact": s,
        "breached_clause": s,
    }
    base = {
        "step": 1,
        "step_title": s,
        "values": values,
        "errors": {"contract": s, "description": s},
        "stray": s,
        "notice": s,
        "dialog": False,
        "draft_id": "d1",
        "contract_choices": [{"title": s, "value": "KAV-1"}, {"title": s, "value": "not_listed"}],
        "categories": [{"title": s, "value": "hms"}],
        "severities": [{"title": s, "value": "high", "help": s}],
        "limits": {"supplier_name": 200, "description": 4000, "location": 200, "breached_clause": 500},
        "source_line": s,
        "attachments": [{"name": s, "line": s, "stored": "a.png"}],
        "attachments_limits": s,
        "attachments_count": s,
        "summary": [{"title": s, "value": s}],
    }
    return [
        base,
        dict(base, step=2, dialog=True),
        dict(base, step=3, errors={"attachments": s}),
        dict(base, step=3, dialog=True, summary=[], attachments=[], notice=None, stray=""),
    ]


def _deviation_receipt(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "intro": s,
        "next_line": s,
        "facts": _facts(s),
        "attachments": s,
        "status_color": "Good",
        "ref": "AV-2026-0001",
        "refresh_user_ids": ["29:x"],
    }
    return [base, dict(base, attachments="", refresh_user_ids=[])]


def _deviation_report(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "severity_line": s,
        "critical": True,
        "status_line": s,
        "status_color": "Warning",
        "facts": _facts(s),
        "description": s,
        "source_line": s,
        "source_url": "https://teams.microsoft.com/l/message/1",
        "files": [{"name": s, "url": ""}],
        "history": [s, s],
        "open": True,
        "choices": [{"title": s, "value": "in_progress"}, {"title": s, "value": "closed"}],
        "status_value": "in_progress",
        "needs_deadline": True,
        "needs_notice": True,
        "note": s,
        "remedy_deadline": "2026-10-01",
        "supplier_notice": "formal_notice",
        "errors": {"status": s, "note": s, "remedy_deadline": s, "supplier_notice": s},
        "notice": s,
        "notice_hint": s,
        "closed_line": "",
        "ref": "AV-2026-0001",
        "refresh_user_ids": ["29:x"],
    }
    return [
        base,
        dict(base, open=False, source_url="", closed_line=s, errors={}, notice=None, files=[], history=[]),
        dict(base, needs_deadline=False, needs_notice=False, source_url="", severity_line=""),
    ]


def _deviation_attachments(lang: str, s: str) -> list[dict[str, Any]]:
    base = {"heading": s, "accepted": [s], "refused": [s], "kept": s, "count": s, "draft_id": "d1"}
    return [base, dict(base, refused=[], kept="")]


def _deviation_list(lang: str, s: str) -> list[dict[str, Any]]:
    items = [{"ref": "AV-2026-0001", "title": s, "line": s}]
    return [{"items": items, "draft_line": s}, {"items": [], "draft_line": None}]


def _deviation_summary(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "counts": s,
        "average": s,
        "by_category": [{"title": s, "value": "2"}],
        "by_severity": [{"title": s, "value": "1"}],
        "rows": [{"title": s, "line": s, "ref": "AV-2026-0001"}],
        "more": s,
        "supplier": s,
        "notice": s,
    }
    return [base, dict(base, rows=[], by_category=[], by_severity=[], more="", notice=None)]


SAMPLES: dict[str, Sample] = {
    **COMPETITION_SAMPLES,  # tests/unit/test_competition_cards.py
    "contract_form": _contract_form,
    "contract_list": _contract_list,
    "delivery_dead_letter": _delivery_dead_letter,
    "delivery_status": _delivery_status,
    "deviation_attachments": _deviation_attachments,
    "deviation_form": _deviation_form,
    "deviation_list": _deviation_list,
    "deviation_receipt": _deviation_receipt,
    "deviation_report": _deviation_report,
    "deviation_summary": _deviation_summary,
    "escalation": _escalation,
    "needs_report_form": _needs_report_form,
    "needs_report_intake": _needs_report_intake,
    "needs_report_list": _needs_report_list,
    "needs_report_question": _needs_report_question,
    "needs_report_summary": _needs_report_summary,
    "notice": _notice,
    "records_picker": _records_picker,
    "records_receipt": _records_receipt,
    "reminder": _reminder,
    "welcome": _welcome,
}

NORMAL = "Skyss av elever – Buss AS, Ålesund"
LARGE = "æ" * 50_000  # 100 kB of UTF-8 in every slot: over the card limit
HOSTILE = [
    '"',
    "\\",
    "{",
    "}",
    "${x}",
    "{{ t }}",
    "{% if x %}",
    "</script><script>alert(1)</script>",
    "**bold** _x_ [link](http://x)",
    "🚀👩‍💼",
    "\n\t",
    "שלום مرحبا \u202e\u200f",
    "nul\u0000byte",
    "&amp; &lt; &#34;",
    "\ud7ff\ue000\uffff",
]


def _render_all(name: str, lang: str, s: str) -> list[dict[str, Any]]:
    return [render_card(name, lang, **ctx) for ctx in SAMPLES[name](lang, s)]


def test_every_template_has_a_sample() -> None:
    names = set(template_names())
    assert names, "no templates found"
    missing = sorted(names - set(SAMPLES))
    stale = sorted(set(SAMPLES) - names)
    assert not missing, f"add a sample context to SAMPLES in {__file__} for: {missing}"
    assert not stale, f"SAMPLES has templates that no longer exist: {stale}"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_template_renders_a_valid_card(name: str, lang: str) -> None:
    for context, card in zip(SAMPLES[name](lang, NORMAL), _render_all(name, lang, NORMAL), strict=True):
        validate_card(card)
        assert card["version"] == "1.5" and card["lang"] == lang
        assert json.loads(json.dumps(card)) == card
        if NORMAL in card_texts(context):
            assert NORMAL in card_texts(shown_card(card))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s)[:20])
def test_hostile_text_stays_verbatim_and_valid(name: str, lang: str, hostile: str) -> None:
    value = f"før {hostile} etter"
    shown = 0
    for context, card in zip(SAMPLES[name](lang, value), _render_all(name, lang, value), strict=True):
        validate_card(card)
        assert json.loads(json.dumps(card, ensure_ascii=False)) == card
        rendered = card_texts(shown_card(card))
        if "&" not in hostile:
            # Nothing was HTML-escaped on the way.
            assert not any("&#" in r or "&quot;" in r or "&amp;" in r or "&lt;" in r for r in rendered)
        if any(value in s for s in card_texts(context)):
            # The text arrives unchanged (neither escaped nor interpreted as a template);
            # markdown does not show the indentation at the start of a line.
            assert any(plain(value) in plain(r) for r in rendered), f"{name}: {value!r} not in the card"
            shown += 1
    assert shown, f"no sample of {name} carries the text"


def test_hostile_text_fills_every_visible_slot() -> None:
    """A notice shows title and body exactly; a welcome card its buttons exactly."""
    for hostile in HOSTILE:
        card = render_card("notice", "nb", title=hostile, body=hostile + "!")
        assert read_markdown(card["body"][0]["text"]) == ([], plain(hostile))
        assert read_markdown(card["body"][1]["text"]) == ([], plain(hostile + "!"))
        welcome = _render_all("welcome", "en", hostile)[0]
        assert [a["title"] for a in welcome["actions"]] == [hostile] * len(home.WELCOME_ACTIONS)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_oversize_values_are_refused_or_valid(name: str, lang: str) -> None:
    for context in SAMPLES[name](lang, LARGE):
        try:
            card = render_card(name, lang, **context)
        except ValueError as err:
            assert "over Teams' limit" in str(err)
        else:
            validate_card(card)  # (a variant that shows none of the large text)
            assert len(json.dumps(card, ensure_ascii=False).encode()) <= MAX_CARD_BYTES


def test_size_limit_boundary() -> None:
    fits = render_card("notice", "nb", title="t", body="ø" * 39_000)  # 78 kB
    validate_card(fits)
    assert fits["body"][1]["text"] == "ø" * 39_000
    # Escapes count: a text that fits only unescaped is refused, not cut.
    with pytest.raises(ValueError, match="over Teams' limit"):
        render_card("notice", "nb", title="t", body="*" * 39_000)
    with pytest.raises(ValueError, match="over Teams' limit"):
        render_card("notice", "nb", title="t", body="ø" * 41_000)  # 82 kB


def test_render_does_not_mutate_or_keep_the_context() -> None:
    context = _notice("nb", NORMAL)[1]
    before = json.dumps(context, sort_keys=True)
    a = render_card("notice", "nb", **context)
    b = render_card("notice", "nb", **context)
    assert json.dumps(context, sort_keys=True) == before
    assert a == b


def test_tokens_are_fresh_unless_given() -> None:
    ctx = _contract_form("nb", NORMAL)[2]
    first = render_card("contract_form", "nb", **ctx)
    second = render_card("contract_form", "nb", **ctx)
    assert first["actions"][0]["data"]["token"] != second["actions"][0]["data"]["token"]
    given_token = render_card("contract_form", "nb", **dict(ctx, token="abc"))
    assert given_token["actions"][0]["data"]["token"] == "abc"
    assert given_token["actions"][0]["fallback"]["data"]["token"] == "abc"


def test_unknown_language_falls_back_to_norwegian() -> None:
    card = home.welcome_card("de")
    validate_card(card)
    assert "Innkjøpsassistenten" in "\n".join(card_texts(card))


def test_welcome_cards_are_what_the_bot_sends() -> None:
    nb, en = home.welcome_card("nb"), home.welcome_card("en")
    for card in (nb, en):
        validate_card(card)
    assert [a["title"] for a in nb["actions"]] == [
        "Ny behovsmelding",
        "Mine behovsmeldinger",
        "Mine kontrakter",
        "Meld avvik",
    ]
    assert [a["verb"] for a in nb["actions"]] == [verb for _, verb in home.WELCOME_ACTIONS]
    assert "Procurement assistant" in "\n".join(card_texts(en))


# -- strings --------------------------------------------------------------------------------


def test_nb_and_en_have_the_same_keys() -> None:
    assert set(NB) == set(EN), {"only nb": sorted(set(NB) - set(EN)), "only en": sorted(set(EN) - set(NB))}
    assert all(NB[k].strip() and EN[k].strip() for k in NB)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_nb_and_en_take_the_same_arguments() -> None:
    differ = {k: (_fields(NB[k]), _fields(EN[k])) for k in NB if _fields(NB[k]) != _fields(EN[k])}
    assert not differ, differ


def test_every_string_a_template_uses_exists() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.j2"):
        used |= set(re.findall(r"\bt\.([a-z_][a-z0-9_]*)", path.read_text("utf-8")))
    assert used
    assert not used - set(NB), sorted(used - set(NB))


@pytest.mark.parametrize("lang", LANGS)
def test_text_with_braces_in_arguments(lang: str) -> None:
    for value in ("{x}", "{0}", "{}", "{{", "}}", "${ref}", "{feature.__class__}", "%s %(x)s"):
        out = text(lang, "coming_line", feature=value)
        assert out.startswith(value + ":")
        assert value in text(lang, "error_body", ref=value)
        assert value in text(lang, "not_allowed_body", role=value)


def test_text_falls_back_to_norwegian() -> None:
    assert text("de", "error_title") == NB["error_title"]
    assert text("en", "error_title") == EN["error_title"]
    with pytest.raises(KeyError):
        text("nb", "no_such_key")


# -- property: random text never breaks a card ------------------------------------------------

_any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_any_text, body=_any_text, button=_any_text, lang=st.sampled_from(LANGS))
def test_random_text_in_a_notice_is_a_valid_card(title: str, body: str, button: str, lang: str) -> None:
    card = render_card(
        "notice", lang, title=title, body=body, actions=[{"title": button, "verb": "home.help", "data": {"note": body}}]
    )
    assert not card_problems(card), card_problems(card)
    assert read_markdown(card["body"][0]["text"]) == ([], plain(title))
    assert read_markdown(card["body"][1]["text"]) == ([], plain(body))
    assert card["actions"][0]["title"] == button
    assert card["actions"][0]["data"] == {"note": body, "verb": "home.help"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coming=st.lists(_any_text, max_size=4),
    titles=st.lists(_any_text, min_size=4, max_size=4),
    lang=st.sampled_from(LANGS),
)
def test_random_text_in_a_welcome_is_a_valid_card(coming: list[str], titles: list[str], lang: str) -> None:
    actions = [
        {"title": t, "verb": verb, "data": {}} for t, (_, verb) in zip(titles, home.WELCOME_ACTIONS, strict=True)
    ]
    card = render_card("welcome", lang, actions=actions, coming=coming)
    assert not card_problems(card), card_problems(card)
    assert [a["title"] for a in card["actions"]] == titles
    texts = [read_markdown(b["text"])[1] for b in card["body"] if b.get("type") == "TextBlock"]
    assert all(plain(c) in texts for c in coming)


# -- markdown: what a user types is shown as text -----------------------------------------------

EVIL = "http://evil.example"
MARKUP = [
    f"[lenke]({EVIL})",
    f'[lenke]({EVIL} "tittel")',
    f"[lenke][1]\n\n[1]: {EVIL}",
    f"![bilde]({EVIL}/pixel.png)",
    f"<{EVIL}>",
    f"{EVIL}/logg-inn",
    "https://evil.com/x?y=1",
    "www.evil.com",
    "evil.com/logg-inn",
    "ola@evil.com",
    "mailto:ola@evil.com",
    "//evil.com",
    "<at>Kari Nordmann</at>",
    "<b>x</b>",
    '<img src="http://evil.example/t.png">',
    "<script>alert(1)</script>",
    "<!-- skjult -->",
    "**x**",
    "__x__",
    "*x*",
    "_x_",
    "~~x~~",
    "`x`",
    "```\nx\n```",
    "    kode",
    "# x",
    "## x",
    "x\n===",
    "x\n---",
    "---",
    "- x",
    "* x",
    "+ x",
    "1. x",
    "3) x",
    "> x",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "&amp; &lt;b&gt; &#42;",
    "\\",
    "\\*x\\*",
    "a\\\nb",
    "x\\",
    "{{DATE(2026-02-14T06:00:00Z, SHORT)}}",
    "- [ ] x",
    "linje 1\r- linje 2\r1. linje 3",
]


def test_the_markdown_reader_sees_the_markup() -> None:
    """The samples are markup when not escaped (else the tests below could not fail), but
    for a lone backslash (literal in CommonMark, escaped for renderers that differ) and the
    Adaptive Card date function (the card renderer's, not markdown's)."""
    plain_already = {"\\", "x\\", "{{DATE(2026-02-14T06:00:00Z, SHORT)}}"}
    live = {m for m in MARKUP if read_markdown(m)[0] or read_markdown(m)[1] != plain(m)}
    assert live == set(MARKUP) - plain_already, sorted(set(MARKUP) - live)
    assert read_markdown(f"[lenke]({EVIL})")[0] == [f"a href='{EVIL}'"]
    assert "a href='http://www.evil.com'" in read_markdown("www.evil.com")[0]


@pytest.mark.parametrize("sample", MARKUP, ids=lambda s: repr(s)[:24])
def test_escaped_markup_shows_literally(sample: str) -> None:
    escaped = escape_markdown(sample)
    assert read_markdown(escaped) == ([], plain(sample))
    assert shown_text(escaped) == "\n".join(line.lstrip(" \t") for line in sample.split("\n"))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("sample", MARKUP, ids=lambda s: repr(s)[:24])
def test_markup_in_every_template_shows_literally(name: str, lang: str, sample: str) -> None:
    """Every slot of every template gets the markup; each markdown string of the card that
    carries it shows it literally, and no string of the card shows any markup at all."""
    value = f"før {sample} etter"
    shown = 0
    for card in _render_all(name, lang, value):
        validate_card(card)  # schema, and no markup in any TextBlock or fact
        for where, obj, key in markdown_strings(card):
            markup, text_shown = read_markdown(obj[key])
            assert not markup, f"{name} {where}: {markup}"
            if shown_text(obj[key]).startswith("før ") or "før " in shown_text(obj[key]):
                assert plain(value) in text_shown, f"{name} {where}: {text_shown!r}"
                shown += 1
        assert EVIL not in json.dumps([a.get("url") for _, a in _actions(card)])
    assert shown, f"no sample of {name} shows the text"


def _actions(card: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, a) for i, a in enumerate(card.get("actions") or [])]


def test_values_and_payloads_are_not_escaped() -> None:
    """Only shown text is escaped: input values, data, verbs and titles of buttons stay as typed."""
    value = f"**fet** [lenke]({EVIL}) <at>Kari</at> \\"
    card = _render_all("needs_report_intake", "nb", value)[0]
    decision = next(b for b in card["body"] if b.get("id") == "decision_note")
    assert decision["value"] == value
    assert card["refresh"]["action"]["data"]["ref"] == value
    assert all(a["data"]["ref"] == value for a in card["actions"])
    notice = render_card(
        "notice", "nb", title="t", body="b", actions=[{"title": value, "verb": "home.help", "data": {"q": value}}]
    )
    assert notice["actions"][0]["title"] == value
    assert notice["actions"][0]["data"] == {"q": value, "verb": "home.help"}
    assert notice["actions"][0]["fallback"]["data"] == {"q": value, "verb": "home.help"}


def test_catalog_strings_use_no_markdown() -> None:
    """Emphasis in cards comes from TextBlock weight and size, never from markdown in the
    catalog: escaping every shown string must not change what a catalog string shows."""
    for lang, table in STRINGS.items():
        for key, value in table.items():
            assert read_markdown(value)[0] == [], f"{lang}.{key} is markdown: {value!r}"
            assert shown_text(escape_markdown(value)) == value, f"{lang}.{key}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.one_of(st.sampled_from(list("*_[]()<>!#-+=.:/\\`~|&{}@ \n\t1aW")), st.characters(codec="utf-8")),
        max_size=60,
    )
)
def test_escaped_random_text_shows_literally(text: str) -> None:
    assert read_markdown(escape_markdown(text)) == ([], plain(text))
