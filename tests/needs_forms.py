"""The needs-report form as the tests expect it, shared by unit, integration and e2e tests.

Written out here rather than taken from `procurement.needs.fields` so that a test notices when
the card's fields or their order change.
"""

from __future__ import annotations

# The input ids of the needs-report card, in the order the card shows them.
FORM_FIELDS: list[str] = [
    "title",
    "need",
    "service_area",
    "estimated_value",
    "value_basis",
    "category",
    "cpv",
    "agreement_type",
    "start_date",
    "duration_months",
    "option_months",
    "replaces_contract",
    "budget_secured",
    "faggruppe",
    "risk_notes",
    "innovation",
]
