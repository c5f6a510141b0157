"""The deviation form's fields per step, their limits and choices, and the attachment limits.

The form is built for a phone: three short steps, one card each.

1. what and where — `contract` (typeahead over the register) or, when the contract is not
   found, a free-text `supplier_name`; `category`; `severity`.
2. details — `description`, `occurred_on`, `location`, `financial_impact`, `breached_clause`.
3. photos and files — sent in the personal chat while the report is open (no inputs).

Labels are catalog keys (cards/locales): `dv_label_<field>`, `dv_category_<value>`,
`dv_severity_<value>` with its one-line explanation `dv_severity_<value>_help`.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- choices -------------------------------------------------------------------------------

CATEGORIES: tuple[str, ...] = (
    "delivery",
    "quality",
    "price_invoice",
    "wage_conditions",
    "hms",
    "environment",
    "ethics",
    "apprentices",
    "other",
)
# Ordered from least to most serious; `critical` is a possible breach of contract or labour
# crime and alerts Innkjøpsseksjonen at once.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

# What the typeahead offers as "finner ikke avtalen": the supplier is then typed by hand.
CONTRACT_NOT_LISTED = "not_listed"

# -- limits --------------------------------------------------------------------------------

MAX_CONTRACT = 100  # the register's reference as the search invoke returns it
MAX_SUPPLIER_NAME = 200
MAX_DESCRIPTION = 4000
MAX_LOCATION = 200
MAX_BREACHED_CLAUSE = 500
MAX_NOTE = 2000  # a status change's note (the closing justification included)
MAX_OCCURRED_YEARS_BACK = 5  # older than this is more likely a typo in the year
SHORT_FIELD_ECHO = 200  # choices, dates and amounts are echoed up to this many characters

LIMITS: dict[str, int] = {
    "contract": MAX_CONTRACT,
    "supplier_name": MAX_SUPPLIER_NAME,
    "description": MAX_DESCRIPTION,
    "location": MAX_LOCATION,
    "breached_clause": MAX_BREACHED_CLAUSE,
    "note": MAX_NOTE,
}


def echo_limit(key: str) -> int:
    """How much of a value a re-shown card (and a saved step) keeps: the field's limit, so a
    card stays far below Teams' size limit whatever was pasted."""
    return LIMITS.get(key, SHORT_FIELD_ECHO)


# -- attachments ---------------------------------------------------------------------------

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # 10 MB each
MAX_ATTACHMENTS = 10  # per report
MAX_FILE_NAME = 120  # characters of a stored name, extension included

# Kind → the extension a stored file gets (whatever the sender called it) and its MIME type.
ATTACHMENT_KINDS: dict[str, tuple[str, str]] = {
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "heic": ("heic", "image/heic"),
    "pdf": ("pdf", "application/pdf"),
}
# What a sender may declare: MIME types (Teams inline images, downloads) and file types or
# extensions (Teams' `fileType` on a file download info).
DECLARED_TYPES: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/heic": "heic",
    "image/heif": "heic",
    "image/heic-sequence": "heic",
    "image/heif-sequence": "heic",
    "application/pdf": "pdf",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "jpe": "jpeg",
    "png": "png",
    "heic": "heic",
    "heif": "heic",
    "pdf": "pdf",
}
# Declarations that say nothing about the content: the file name's extension decides.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "image/*", "image"})
ALLOWED_SUMMARY = "JPEG, PNG, HEIC, PDF"  # stated on the card

# -- the steps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text | choice | contract | date | money
    required: bool
    max_length: int | None = None
    choices: tuple[str, ...] = ()


STEP_WHAT, STEP_DETAILS, STEP_FILES = 1, 2, 3
STEPS: tuple[int, ...] = (STEP_WHAT, STEP_DETAILS, STEP_FILES)

# The card's input ids per step, in form order. Exactly these ids are read from a submit.
STEP_FIELDS: dict[int, dict[str, FieldSpec]] = {
    STEP_WHAT: {
        # One of `contract` and `supplier_name` is required (model.validate_step says which).
        "contract": FieldSpec("contract", False, MAX_CONTRACT),
        "supplier_name": FieldSpec("text", False, MAX_SUPPLIER_NAME),
        "category": FieldSpec("choice", True, choices=CATEGORIES),
        "severity": FieldSpec("choice", True, choices=SEVERITIES),
    },
    STEP_DETAILS: {
        "description": FieldSpec("text", True, MAX_DESCRIPTION),
        "occurred_on": FieldSpec("date", True),
        "location": FieldSpec("text", False, MAX_LOCATION),
        "financial_impact": FieldSpec("money", False),
        "breached_clause": FieldSpec("text", False, MAX_BREACHED_CLAUSE),
    },
    STEP_FILES: {},
}
FORM_FIELDS: dict[str, FieldSpec] = {k: v for step in STEPS for k, v in STEP_FIELDS[step].items()}


def step_of(field: str) -> int | None:
    """The step a field is asked in (a whole-report error is shown on that step's card)."""
    return next((step for step in STEPS if field in STEP_FIELDS[step]), None)
