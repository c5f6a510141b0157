"""Validation of the deviation form, per step and for the whole report, and the attachment policy.

`validate_step(step, raw, today)` and `validate_report(values, attachments, today)` take what
an Adaptive Card submit sends — values may be missing, None, numbers, lists, nested junk,
100 kB strings, hostile text, a Mapping that raises — and never raise. They return the
user's values to show again (`values`), errors per field id in nb and en (the dialog picks
the reader's language, as for the needs report), and the typed value when all is well.

Choices made here:

* **Text.** Control characters other than tab and line breaks, and lone surrogates, are
  stripped (`shared.text.clean_text`): they cannot be stored and no keyboard types them, and
  a phone user should not be stopped by what a paste dragged along. Outer whitespace is
  trimmed; the rest is data, as typed (escaping is the renderer's job). Text over a field's
  limit is refused with the length, and echoed cut at the limit.
* **Contract.** The typeahead sends the register's reference; "finner ikke avtalen"
  (`CONTRACT_NOT_LISTED`) or nothing means the supplier is typed in `supplier_name`. Whether
  the reference exists is the service's question (it answers with `CONTRACT_UNKNOWN`).
* **Date.** `occurred_on` is ISO (the card's Input.Date) or dd.mm.yyyy; not after today and
  not more than `MAX_OCCURRED_YEARS_BACK` years back (a typo in the year). The form starts
  with today (`initial_values`).
* **Money.** `financial_impact` is optional, whole kroner as in the needs report
  (`shared.money.parse_nok`, øre refused).
* **Attachments.** See `screen_offered` and `screen_received`: the declared type must be
  JPEG, PNG, HEIC or PDF; the bytes must be one of those (magic bytes); an image labelled as
  another image type is kept under what it really is (clients label images loosely), but a
  PDF that is an image or an image that is a PDF is refused; 10 MB each; 10 per report; the
  stored name is made safe (no path, no reserved characters, the extension from the bytes)
  and keeps æøå.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from procurement.deviations.fields import (
    ALLOWED_SUMMARY,
    ATTACHMENT_KINDS,
    CATEGORIES,
    CONTRACT_NOT_LISTED,
    DECLARED_TYPES,
    GENERIC_TYPES,
    LIMITS,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_FILE_NAME,
    MAX_OCCURRED_YEARS_BACK,
    SEVERITIES,
    STEP_DETAILS,
    STEP_FIELDS,
    STEP_FILES,
    STEP_WHAT,
    STEPS,
    echo_limit,
    step_of,
)
from procurement.shared.dates import read_date
from procurement.shared.money import parse_nok
from procurement.shared.text import clean_text

Messages = dict[str, str]


def _msg(nb: str, en: str) -> Messages:
    return {"nb": nb, "en": en}


# -- messages ------------------------------------------------------------------------------

_REQUIRED: dict[str, Messages] = {
    "supplier_name": _msg(
        "Velg avtalen, eller skriv navnet på leverandøren hvis du ikke finner avtalen.",
        "Choose the contract, or type the supplier's name if you cannot find the contract.",
    ),
    "category": _msg("Velg hva avviket gjelder.", "Choose what the deviation is about."),
    "severity": _msg("Velg hvor alvorlig avviket er.", "Choose how serious the deviation is."),
    "description": _msg(
        "Beskriv kort hva som skjedde.",
        "Describe briefly what happened.",
    ),
    "occurred_on": _msg("Velg datoen da det skjedde.", "Choose the date it happened."),
}
_NOT_TEXT = _msg("Ugyldig verdi. Skriv inn tekst.", "Invalid value. Please enter text.")
_NOT_IN_LIST = _msg("Velg en av verdiene i listen.", "Choose one of the values in the list.")
_BAD_CONTRACT = _msg(
    "Velg avtalen fra listen, eller velg «Finner ikke avtalen» og skriv navnet på leverandøren.",
    "Choose the contract from the list, or choose “Cannot find the contract” and type the supplier's name.",
)
# For the service: a typeahead reference that is not (or no longer) in the register.
CONTRACT_UNKNOWN = _msg(
    "Vi finner ikke den avtalen i avtaleregisteret. Søk på nytt, eller velg «Finner ikke avtalen» og skriv "
    "navnet på leverandøren.",
    "We cannot find that contract in the register. Search again, or choose “Cannot find the contract” and "
    "type the supplier's name.",
)
_BAD_DATE = _msg(
    "Velg en gyldig dato i datofeltet, for eksempel 01.09.2026.",
    "Choose a valid date in the date field, e.g. 01.09.2026.",
)
_TOO_MANY_FILES = _msg(
    f"En avviksmelding kan ha høyst {MAX_ATTACHMENTS} vedlegg. Fjern noen før du sender.",
    f"A deviation report can have at most {MAX_ATTACHMENTS} attachments. Remove some before you send.",
)


def _too_long(length: int, limit: int) -> Messages:
    return _msg(
        f"Teksten er for lang: {length} tegn. Maks er {limit} tegn. Feltet viser de første {limit} "
        "tegnene – se over slutten før du går videre.",
        f"The text is too long: {length} characters. The maximum is {limit}. The field shows the "
        f"first {limit} characters – check the end before you continue.",
    )


# -- the results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatStep:
    """Step 1: what and where. `contract` is the register's reference, or None when the
    supplier was typed (`supplier_name` then holds it)."""

    contract: str | None
    supplier_name: str
    category: str
    severity: str


@dataclass(frozen=True)
class DetailsStep:
    """Step 2: details."""

    description: str
    occurred_on: date
    location: str
    financial_impact: int | None  # whole NOK; None when not given
    breached_clause: str | None


@dataclass(frozen=True)
class StepResult:
    step: int
    values: dict[str, str]  # what the card shows again (cleaned, cut at the echo limit)
    errors: dict[str, Messages]
    value: WhatStep | DetailsStep | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class DeviationInput:
    """A whole report, validated and ready to be given a reference."""

    what: WhatStep
    details: DetailsStep
    attachments: tuple[AcceptedFile, ...]


@dataclass(frozen=True)
class ReportResult:
    values: dict[str, str]
    errors: dict[str, Messages]
    value: DeviationInput | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.value is not None

    @property
    def first_step_with_errors(self) -> int | None:
        """Where the form reopens when sending failed (the attachment count is step 3)."""
        steps = [step_of(key) or STEP_FILES for key in self.errors]
        return min(steps) if steps else None


# -- reading values (never raises) ---------------------------------------------------------------


def _get(data: object, key: str) -> object:
    if not isinstance(data, Mapping):
        return None
    try:
        return data.get(key)
    except Exception:  # a hostile Mapping: the field counts as missing
        return None


def _as_text(value: object) -> str | None:
    """The value as cleaned, trimmed text; None when it is not text at all (a list, a dict)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return clean_text(value).strip()
    if isinstance(value, int):
        return str(value) if abs(value) < 10**50 else None  # str() of huge ints is refused
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


def _echo(value: object, key: str) -> str:
    text = _as_text(value)
    return (text or "")[: echo_limit(key)]


def step_values(step: int, raw: object) -> dict[str, str]:
    """The step's values as the card shows them again and a saved draft keeps them (also when
    going back without validating)."""
    return {key: _echo(_get(raw, key), key) for key in STEP_FIELDS.get(step, {})}


def initial_values(today: date) -> dict[str, str]:
    """A new form: the date it happened starts as today."""
    return {"occurred_on": today.isoformat()}


# -- field checks ---------------------------------------------------------------------------------


def _text(value: object, key: str, required: bool, errors: dict[str, Messages]) -> str:
    text = _as_text(value)
    if text is None:
        errors[key] = _NOT_TEXT
        return ""
    limit = LIMITS[key]
    if len(text) > limit:
        errors[key] = _too_long(len(text), limit)
        return text[:limit]
    if required and not text:
        errors[key] = _REQUIRED[key]
    return text


def _choice(value: object, key: str, allowed: tuple[str, ...], errors: dict[str, Messages]) -> str:
    text = _as_text(value)
    if text is None or (text and text not in allowed):
        errors[key] = _NOT_IN_LIST
        return ""
    if not text:
        errors[key] = _REQUIRED[key]
    return text


# A register reference: letters, digits and the separators KAV exports use; nothing else.
_CONTRACT_RE = re.compile(r"^[0-9A-Za-zÆØÅæøå][0-9A-Za-zÆØÅæøå ._/:#-]*$")


def _contract(value: object, errors: dict[str, Messages]) -> str | None:
    text = _as_text(value)
    if text is None:
        errors["contract"] = _BAD_CONTRACT
        return None
    if not text or text == CONTRACT_NOT_LISTED:
        return None
    if len(text) > LIMITS["contract"] or not _CONTRACT_RE.match(text):
        errors["contract"] = _BAD_CONTRACT
        return None
    return text


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _occurred_on(value: object, today: date, errors: dict[str, Messages]) -> date | None:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        day: date | None = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            errors["occurred_on"] = _REQUIRED["occurred_on"]
            return None
        day = read_date(text[:40])[0] if len(text) <= 40 else None
    elif value is None:
        errors["occurred_on"] = _REQUIRED["occurred_on"]
        return None
    else:
        day = None
    if day is None:
        errors["occurred_on"] = _BAD_DATE
        return None
    if day > today:
        errors["occurred_on"] = _msg(
            f"Datoen kan ikke være fram i tid. Velg i dag ({today:%d.%m.%Y}) eller en tidligere dato.",
            f"The date cannot be in the future. Choose today ({today:%d.%m.%Y}) or an earlier date.",
        )
        return None
    earliest = _years_before(today, MAX_OCCURRED_YEARS_BACK)
    if day < earliest:
        errors["occurred_on"] = _msg(
            f"Datoen er mer enn {MAX_OCCURRED_YEARS_BACK} år tilbake (før {earliest:%d.%m.%Y}). Sjekk årstallet.",
            f"The date is more than {MAX_OCCURRED_YEARS_BACK} years ago (before {earliest:%d.%m.%Y}). Check the year.",
        )
        return None
    return day


_MONEY_ZERO_OR_LESS = _msg(
    "Skriv den økonomiske konsekvensen som et positivt beløp, for eksempel 25 000. La feltet stå tomt hvis "
    "du ikke vet den.",
    "Enter the financial impact as a positive amount, e.g. 25 000. Leave the field empty if you do not know it.",
)


def _money(value: object, errors: dict[str, Messages]) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors["financial_impact"] = dict(parse_nok("?").messages)
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors["financial_impact"] = dict(parse_nok("?").messages)
        return None
    result = parse_nok(clean_text(value) if isinstance(value, str) else value)
    if result.ok and result.value is not None:
        return result.value
    # parse_nok's own wording for these speaks of an estimated value; this is a consequence
    errors["financial_impact"] = _MONEY_ZERO_OR_LESS if result.code in ("zero", "negative") else dict(result.messages)
    return None


# -- validation ------------------------------------------------------------------------------------


def _what(raw: object, errors: dict[str, Messages]) -> WhatStep:
    contract = _contract(_get(raw, "contract"), errors)
    supplier = _text(_get(raw, "supplier_name"), "supplier_name", False, errors)
    if contract is None and not supplier and "contract" not in errors and "supplier_name" not in errors:
        errors["supplier_name"] = _REQUIRED["supplier_name"]
    category = _choice(_get(raw, "category"), "category", CATEGORIES, errors)
    severity = _choice(_get(raw, "severity"), "severity", SEVERITIES, errors)
    return WhatStep(contract=contract, supplier_name=supplier, category=category, severity=severity)


def _details(raw: object, today: date, errors: dict[str, Messages]) -> DetailsStep | None:
    description = _text(_get(raw, "description"), "description", True, errors)
    occurred_on = _occurred_on(_get(raw, "occurred_on"), today, errors)
    location = _text(_get(raw, "location"), "location", False, errors)
    impact = _money(_get(raw, "financial_impact"), errors)
    clause = _text(_get(raw, "breached_clause"), "breached_clause", False, errors)
    if occurred_on is None:
        return None
    return DetailsStep(description, occurred_on, location, impact, clause or None)


def validate_step(step: int, raw: object, today: date) -> StepResult:
    """Check one step's submit (`deviation.next`); never raises. Step 3 has no inputs: its
    attachments are screened as they arrive."""
    if isinstance(today, datetime):
        today = today.date()
    step = step if step in STEPS else STEP_WHAT
    values = step_values(step, raw)
    errors: dict[str, Messages] = {}
    value: WhatStep | DetailsStep | None = None
    if step == STEP_WHAT:
        value = _what(raw, errors)
    elif step == STEP_DETAILS:
        value = _details(raw, today, errors)
    if errors:
        return StepResult(step, values, errors)
    return StepResult(step, values, {}, value)


def validate_report(values: object, attachments: Sequence[AcceptedFile], today: date) -> ReportResult:
    """Check the whole report before sending (`deviation.submit`): every step again, since a
    saved step may be days old (its date can still be fine) or written by an older card."""
    if isinstance(today, datetime):
        today = today.date()
    echo = {**step_values(STEP_WHAT, values), **step_values(STEP_DETAILS, values)}
    errors: dict[str, Messages] = {}
    what = _what(values, errors)
    details = _details(values, today, errors)
    files = tuple(attachments)
    if len(files) > MAX_ATTACHMENTS:
        errors["attachments"] = _TOO_MANY_FILES
    if errors or details is None:
        return ReportResult(echo, errors)
    return ReportResult(echo, {}, DeviationInput(what, details, files))


# -- attachments -----------------------------------------------------------------------------------

RefusalReason = Literal["type", "size", "empty", "count", "content", "mismatch", "download"]


@dataclass(frozen=True)
class OfferedFile:
    """A file as a message announces it, before it is downloaded."""

    name: str
    declared_type: str | None  # a MIME type, or Teams' `fileType` ("png", "pdf")
    size: int | None = None  # as declared, when the sender says


@dataclass(frozen=True)
class ReceivedFile:
    """A file after the download: its bytes, or the HTTP status of the failed download."""

    name: str
    declared_type: str | None
    data: bytes | None = None
    download_status: int | None = None  # set when `data` is None


@dataclass(frozen=True)
class AcceptedFile:
    original_name: str  # cleaned, for display
    stored_name: str  # safe as a file name locally and in SharePoint, unique in the report
    kind: str  # jpeg | png | heic | pdf, from the bytes
    content_type: str
    size: int


@dataclass(frozen=True)
class RefusedFile:
    name: str  # cleaned, for display
    reason: RefusalReason
    messages: Messages


@dataclass(frozen=True)
class Screening:
    accepted: tuple[AcceptedFile, ...] = ()
    refused: tuple[RefusedFile, ...] = ()
    to_download: tuple[OfferedFile, ...] = field(default=())


def _display_name(name: object) -> str:
    text = clean_text(name).strip() if isinstance(name, str) else ""
    return (text or "vedlegg")[:MAX_FILE_NAME]


def _extension(name: str) -> str:
    base = re.split(r"[/\\]", name)[-1]
    return base.rpartition(".")[2].lower() if "." in base else ""


def declared_kind(name: str, declared_type: str | None) -> str | None:
    """The kind a file says it is: its MIME type or Teams file type, else (when that says
    nothing, as application/octet-stream) its name's extension. None: not allowed."""
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared in DECLARED_TYPES:
        return DECLARED_TYPES[declared]
    if declared in GENERIC_TYPES:
        return DECLARED_TYPES.get(_extension(name))
    return None


_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_GENERIC = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def sniff(data: bytes) -> str | None:
    """The kind the bytes are by their magic numbers: jpeg, png, heic, pdf, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if len(data) >= 16 and data[4:8] == b"ftyp":
        # ISO base media file: the ftyp box lists a major brand and compatible brands.
        box = int.from_bytes(data[0:4], "big")
        end = min(box if box >= 16 else 16, len(data), 4096)
        brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
        if brands & _AVIF_BRANDS:
            return None  # AVIF shares HEIF's container but is not HEIC
        if brands & (_HEIC_BRANDS | _HEIF_GENERIC):
            return "heic"
    return None


def _is_image(kind: str) -> bool:
    return kind != "pdf"


def _refused(name: str, reason: RefusalReason) -> RefusedFile:
    mb = MAX_ATTACHMENT_BYTES // (1024 * 1024)
    texts: dict[RefusalReason, Messages] = {
        "type": _msg(
            f"«{name}» ble ikke lagt ved: bare {ALLOWED_SUMMARY} kan legges ved. Ta et bilde av det, eller lagre "
            "det som PDF.",
            f"“{name}” was not attached: only {ALLOWED_SUMMARY} can be attached. Take a photo of it, or save it "
            "as PDF.",
        ),
        "size": _msg(
            f"«{name}» ble ikke lagt ved: filen er større enn {mb} MB. Send et mindre bilde eller del opp PDF-en.",
            f"“{name}” was not attached: the file is larger than {mb} MB. Send a smaller picture or split the PDF.",
        ),
        "empty": _msg(
            f"«{name}» ble ikke lagt ved: filen er tom. Send den på nytt.",
            f"“{name}” was not attached: the file is empty. Send it again.",
        ),
        "count": _msg(
            f"«{name}» ble ikke lagt ved: en avviksmelding kan ha høyst {MAX_ATTACHMENTS} vedlegg.",
            f"“{name}” was not attached: a deviation report can have at most {MAX_ATTACHMENTS} attachments.",
        ),
        "content": _msg(
            f"«{name}» ble ikke lagt ved: innholdet er ikke et bilde (JPEG, PNG, HEIC) eller en PDF, selv om "
            "navnet eller typen sier det.",
            f"“{name}” was not attached: its content is not a picture (JPEG, PNG, HEIC) or a PDF, whatever its "
            "name or type says.",
        ),
        "mismatch": _msg(
            f"«{name}» ble ikke lagt ved: filen sier at den er én type, men innholdet er en annen. Lagre den på "
            "nytt og send den igjen.",
            f"“{name}” was not attached: the file says it is one type but its content is another. Save it again "
            "and resend it.",
        ),
        "download": _msg(
            f"Vi fikk ikke hentet «{name}» fra Teams. Det skjer ofte med bilder tatt rett fra kameraet på "
            "mobilen. Lagre bildet på telefonen og send det som fil i stedet (trykk +, velg Fil og finn bildet). "
            "Resten av meldingen er tatt vare på.",
            f"We could not fetch “{name}” from Teams. This often happens with pictures taken straight from the "
            "phone's camera. Save the picture on the phone and send it as a file instead (tap +, choose File and "
            "find the picture). The rest of the report is kept.",
        ),
    }
    return RefusedFile(name=name, reason=reason, messages=texts[reason])


def screen_offered(files: Iterable[OfferedFile], attached: int) -> Screening:
    """Before any download: refuse what is not allowed by its declared type or size, or does not
    fit because the report already has `attached` files. The rest is `to_download`; the count is
    checked again on what is actually received (a failed download frees its place)."""
    to_download: list[OfferedFile] = []
    refused: list[RefusedFile] = []
    for offered in files:
        name = _display_name(offered.name)
        if attached >= MAX_ATTACHMENTS:
            refused.append(_refused(name, "count"))
        elif declared_kind(offered.name, offered.declared_type) is None:
            refused.append(_refused(name, "type"))
        elif offered.size is not None and offered.size > MAX_ATTACHMENT_BYTES:
            refused.append(_refused(name, "size"))
        else:
            to_download.append(offered)
    return Screening(refused=tuple(refused), to_download=tuple(to_download))


def screen_received(files: Iterable[ReceivedFile], existing_names: Sequence[str]) -> Screening:
    """After the downloads: accept by the bytes, in order, while the report has room; the
    reason for each refused file. `existing_names` are the report's stored names so far."""
    taken = {n.casefold() for n in existing_names}
    room = MAX_ATTACHMENTS - len(existing_names)
    accepted: list[AcceptedFile] = []
    refused: list[RefusedFile] = []
    for received in files:
        name = _display_name(received.name)
        declared = declared_kind(received.name, received.declared_type)
        if received.data is None:
            refused.append(_refused(name, "download"))
            continue
        kind = sniff(received.data)
        if declared is None:
            refused.append(_refused(name, "type"))
        elif not received.data:
            refused.append(_refused(name, "empty"))
        elif len(received.data) > MAX_ATTACHMENT_BYTES:
            refused.append(_refused(name, "size"))
        elif kind is None:
            refused.append(_refused(name, "content"))
        elif _is_image(kind) != _is_image(declared):
            refused.append(_refused(name, "mismatch"))
        elif len(accepted) >= room:
            refused.append(_refused(name, "count"))
        else:
            stored = safe_file_name(received.name, kind, taken)
            taken.add(stored.casefold())
            ext_type = ATTACHMENT_KINDS[kind][1]
            accepted.append(AcceptedFile(name, stored, kind, ext_type, len(received.data)))
    return Screening(accepted=tuple(accepted), refused=tuple(refused))


# Characters Windows, SharePoint or a shell treat specially; a name is never a path.
_UNSAFE_NAME_CHARS = re.compile(r'[\\/:*?"<>|#%&{}~\x00-\x1f\x7f]')
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", "clock$", "desktop.ini", "_vti_"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)


def safe_file_name(name: str, kind: str, taken: Iterable[str] = ()) -> str:
    """A name to store a file under: the sender's base name without any path or reserved
    character, æøå kept (NFC, as SharePoint and macOS disagree on decomposed letters), the
    extension from what the bytes are, unique (case-insensitive) among `taken`."""
    extension = ATTACHMENT_KINDS[kind][0]
    text = unicodedata.normalize("NFC", clean_text(name if isinstance(name, str) else ""))
    base = re.split(r"[/\\]", text)[-1]
    stem = base.rpartition(".")[0] if "." in base.lstrip(".") else base
    stem = _UNSAFE_NAME_CHARS.sub("_", re.sub(r"\s+", " ", stem)).strip(" ._")
    stem = re.sub(r"\.{2,}", ".", stem)
    if not stem:
        stem = "vedlegg"
    if stem.casefold() in _RESERVED_NAMES or stem.casefold().split(".")[0] in _RESERVED_NAMES:
        stem = f"_{stem}"
    room = MAX_FILE_NAME - len(extension) - 1 - 5  # leave room for " (10)"
    stem = stem[:room].rstrip(" .")
    used = {t.casefold() for t in taken}
    candidate = f"{stem}.{extension}"
    number = 2
    while candidate.casefold() in used:
        candidate = f"{stem} ({number}).{extension}"
        number += 1
    return candidate
