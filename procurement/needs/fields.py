"""The needs-report form's fields: ids in form order, kinds, limits and choices.

Labels are in the catalogs (`nr_label_<field>`, `service_area_<value>`, cards/locales).
"""

from __future__ import annotations

from dataclasses import dataclass

from procurement.needs.rules import CATEGORIES

# -- limits ------------------------------------------------------------------

MAX_TITLE = 120
MAX_NEED = 4000
MAX_VALUE_BASIS = 1000
MAX_RISK_NOTES = 2000
MAX_REPLACES_CONTRACT = 100
MAX_FAGGRUPPE = 2000
MAX_FAGGRUPPE_MEMBERS = 20
MAX_MONTHS = 240  # 20 years
MAX_START_YEARS_AHEAD = 10

LIMITS: dict[str, int] = {
    "title": MAX_TITLE,
    "need": MAX_NEED,
    "value_basis": MAX_VALUE_BASIS,
    "risk_notes": MAX_RISK_NOTES,
    "replaces_contract": MAX_REPLACES_CONTRACT,
    "faggruppe": MAX_FAGGRUPPE,
}
# Short fields (amounts, dates, codes, choices) are echoed up to this many characters.
SHORT_FIELD_ECHO = 200


def echo_limit(key: str) -> int:
    """How much of a value the form shows again (and a draft keeps): the field's limit, so
    a re-shown form stays far below Teams' card size whatever was pasted."""
    return LIMITS.get(key, SHORT_FIELD_ECHO)


# Labels in the catalogs: `service_area_<value>` (cards/locales).
SERVICE_AREAS: tuple[str, ...] = (
    "helse_mestring",
    "oppvekst",
    "kultur",
    "teknisk",
    "okonomi",
    "organisasjon",
    "samfunnsutvikling",
    "eiendom",
    "innkjop",
)
SERVICE_AREA_VALUES = frozenset(SERVICE_AREAS)
AGREEMENT_TYPES = ("framework", "single")


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text | choice | money | date | int | bool | list
    required: bool
    max_length: int | None = None
    choices: tuple[str, ...] = ()


# The card's input ids, in form order. Exactly these ids are read from a submit.
NEEDS_REPORT_FIELDS: dict[str, FieldSpec] = {
    "title": FieldSpec("text", True, MAX_TITLE),
    "need": FieldSpec("text", True, MAX_NEED),
    "service_area": FieldSpec("choice", True, choices=SERVICE_AREAS),
    "estimated_value": FieldSpec("money", True),
    "value_basis": FieldSpec("text", False, MAX_VALUE_BASIS),
    "category": FieldSpec("choice", True, choices=CATEGORIES),
    "cpv": FieldSpec("text", False, 10),
    "agreement_type": FieldSpec("choice", True, choices=AGREEMENT_TYPES),
    "start_date": FieldSpec("date", True),
    "duration_months": FieldSpec("int", True),
    "option_months": FieldSpec("int", False),
    "replaces_contract": FieldSpec("text", False, MAX_REPLACES_CONTRACT),
    "budget_secured": FieldSpec("bool", False),
    "faggruppe": FieldSpec("list", False, MAX_FAGGRUPPE),
    "risk_notes": FieldSpec("text", False, MAX_RISK_NOTES),
    "innovation": FieldSpec("bool", False),
}

# Field labels are in the catalogs: `nr_label_<field>` (cards/locales).
