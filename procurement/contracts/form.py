"""Server-side validation of the 'ny kontrakt' card: each problem is reported at its field.

It reads values with the import's readers (the one date and money readers, options,
controls), so a contract typed on the card and one imported from a file are understood
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from procurement.contracts.importing.values import CONTRACT_ORE, parse_controls, parse_options_spec
from procurement.contracts.model import (
    ContractData,
    cpv_problem,
    derive_option_deadlines,
    is_aad_object_id,
    is_email,
    normalize_org_no,
    org_no_problem,
    parse_cpv_codes,
    validate_contract,
)
from procurement.shared.dates import parse_date
from procurement.shared.money import parse_nok

CONTRACT_FORM_FIELDS: tuple[str, ...] = (
    "external_ref",
    "title",
    "supplier_name",
    "supplier_org_no",
    "category",
    "agreement_type",
    "cpv",
    "scope",
    "start_date",
    "end_date",
    "options",
    "option_notice",
    "value_nok",
    "manager",
    "risk_level",
    "controls",
    "archive_case_no",
    "internal_notes",
)
REQUIRED = (
    "external_ref",
    "title",
    "supplier_name",
    "category",
    "agreement_type",
    "start_date",
    "end_date",
    "value_nok",
    "manager",
)
CHOICES = {
    "category": ("goods", "services", "works"),
    "agreement_type": ("framework", "single"),
    "risk_level": ("low", "medium", "high"),
}
Messages = dict[str, str]
# ContractData's field → the card's input, where they differ.
_FORM_FIELD = {"cpv_codes": "cpv", "manager_email": "manager", "manager_aad_id": "manager"}


@dataclass
class ContractFormResult:
    errors: dict[str, Messages] = field(default_factory=dict)
    value: ContractData | None = None


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).strip()


def _msg(nb: str, en: str) -> Messages:
    return {"nb": nb, "en": en}


def validate_contract_form(raw: dict[str, Any], today: date) -> ContractFormResult:
    errors: dict[str, Messages] = {}
    values = {key: _text(raw, key) for key in CONTRACT_FORM_FIELDS}
    for key in REQUIRED:
        if not values[key]:
            errors[key] = _msg("Feltet må fylles ut.", "This field is required.")
    for key, allowed in CHOICES.items():
        if values[key] and values[key] not in allowed:
            errors[key] = _msg("Velg en av verdiene i listen.", "Choose one of the values in the list.")

    dates: dict[str, date | None] = {}
    for key in ("start_date", "end_date", "option_notice"):
        dates[key] = parse_date(values[key]) if values[key] else None
        if values[key] and dates[key] is None:
            errors[key] = _msg(
                f"«{values[key][:40]}» er ikke en gyldig dato. Skriv f.eks. 31.12.2026.",
                f"“{values[key][:40]}” is not a valid date. Write e.g. 31.12.2026.",
            )
    start, end, notice = dates["start_date"], dates["end_date"], dates["option_notice"]
    if start and end and end <= start:
        errors["end_date"] = _msg("Sluttdato må være etter startdato.", "The end date must be after the start date.")

    value_nok = None
    if values["value_nok"]:
        parsed = parse_nok(values["value_nok"], ore=CONTRACT_ORE)
        if parsed.ok:
            value_nok = parsed.value
        else:
            errors["value_nok"] = dict(parsed.messages)

    months: list[int] = []
    if values["options"]:
        try:
            months = parse_options_spec(values["options"])
        except ValueError as err:
            errors["options"] = _msg(str(err), "Write options as “1+1” (years) or “12;6” (months).")
    if months and notice is None and "option_notice" not in errors:
        errors["option_notice"] = _msg(
            "Oppgi varslingsfristen for første opsjon.",
            "Give the notice deadline of the first option.",
        )
    if notice and end and notice > end:
        errors["option_notice"] = _msg(
            "Varslingsfristen må være før sluttdatoen.",
            "The notice deadline must be before the end date.",
        )

    controls = []
    if values["controls"]:
        try:
            controls = parse_controls(values["controls"])
        except ValueError as err:
            errors["controls"] = _msg(str(err), "Write controls as “30.06.2027 Wage audit; 15.01.2028 HSE”.")

    org_no = normalize_org_no(values["supplier_org_no"]) if values["supplier_org_no"] else ""
    if org_no and (problem := org_no_problem(org_no)):
        errors["supplier_org_no"] = _msg(problem, "The organisation number is not valid.")

    cpv_codes, bad_cpv = parse_cpv_codes(values["cpv"])
    if (cpv := cpv_problem(bad_cpv)) is not None:
        errors["cpv"] = _msg(f"{cpv[0]}.", f"{cpv[1][:1].upper()}{cpv[1][1:]}.")

    manager = values["manager"]
    email, aad_id = "", None
    if manager:
        if is_email(manager):
            email = manager.lower()
        elif is_aad_object_id(manager):
            aad_id = manager.lower()
        else:
            errors["manager"] = _msg("Skriv avtaleforvalterens e-postadresse.", "Enter the contract manager's e-mail.")

    if errors or start is None or end is None:
        return ContractFormResult(errors=errors)
    options = derive_option_deadlines(end, months, notice) if months and notice else []
    data = ContractData(
        external_ref=values["external_ref"],
        supplier_name=values["supplier_name"],
        supplier_org_no=org_no,
        title=values["title"],
        category=values["category"],  # type: ignore[arg-type]
        start_date=start,
        end_date=end,
        options=options,
        value_nok=value_nok,
        agreement_type=values["agreement_type"],  # type: ignore[arg-type]
        manager_email=email,
        manager_aad_id=aad_id,
        risk_level=values["risk_level"] or "medium",  # type: ignore[arg-type]
        controls=controls,
        archive_case_no=values["archive_case_no"],
        internal_notes=values["internal_notes"],
        cpv_codes=cpv_codes,
        scope=values["scope"],
    )
    for found in validate_contract(data):
        key = _FORM_FIELD.get(found.field, found.field)
        key = key if key in CONTRACT_FORM_FIELDS else "external_ref"
        errors.setdefault(key, _msg(found.message_nb, found.message_en))
    if errors:
        return ContractFormResult(errors=errors)
    return ContractFormResult(value=data)
