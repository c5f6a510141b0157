"""User-facing strings in Norwegian bokmål (default) and English.

Keys are English identifiers; each language holds the same keys (a unit test checks it).
`text()` formats with `str.format`, so user values passed as arguments are never
interpreted as format directives.
"""

from __future__ import annotations

from typing import Any

NB: dict[str, str] = {
    "welcome_title": "Innkjøpsassistenten",
    "welcome_intro": (
        "Hei! Jeg hjelper deg med innkjøp i kommunen: jeg tar imot behovsmeldinger til "
        "Innkjøpsseksjonen, sier hvilke regler som gjelder for innkjøpet ditt, og minner "
        "avtaleforvaltere på frister i kontraktene."
    ),
    "welcome_needs_title": "Behovsmelding",
    "welcome_needs_text": "Meld et innkjøpsbehov over 100 000 kr til Innkjøpsseksjonen.",
    "welcome_contracts_title": "Kontrakter",
    "welcome_contracts_text": "Se kontraktene dine og neste frist for opsjon, avslutning og kontroll.",
    "welcome_deviation_title": "Avvik",
    "welcome_deviation_text": "Meld avvik på en leverandørs leveranse.",
    "welcome_language_hint": "Skriv «language english» for engelsk, «hjelp» for denne oversikten.",
    "coming_line": "{feature}: kommer snart – ikke tilgjengelig ennå.",
    "action_needs_report": "Ny behovsmelding",
    "action_my_needs_reports": "Mine behovsmeldinger",
    "action_my_contracts": "Mine kontrakter",
    "action_new_contract": "Ny kontrakt",
    "action_deviation": "Meld avvik",
    "action_help": "Hjelp",
    "coming_title": "Kommer snart",
    "coming_body": (
        "«{feature}» er ikke tilgjengelig ennå. Vi bygger den nå; inntil videre kan du "
        "kontakte Innkjøpsseksjonen direkte."
    ),
    "language_set_title": "Språk endret",
    "language_set_body": "Jeg svarer deg på norsk (bokmål) fra nå av.",
    "unknown_action_title": "Ukjent handling",
    "unknown_action_body": (
        "Jeg kjenner ikke igjen den handlingen. Kortet kan være fra en eldre versjon. "
        "Skriv «hjelp» for å se hva du kan gjøre."
    ),
    "error_title": "Noe gikk galt",
    "error_body": (
        "Beklager, noe gikk galt hos meg. Ingenting av det du har skrevet er slettet. "
        "Prøv igjen om litt. Oppgi referansen {ref} hvis du kontakter brukerstøtte."
    ),
    "not_allowed_title": "Ikke tilgang",
    "not_allowed_body": "Beklager, bare {role} kan gjøre dette. Ingenting er endret.",
    "role_procurement": "medlemmer av Innkjøpsseksjonen",
    "role_manager": "avtaleforvalteren for kontrakten eller Innkjøpsseksjonen",
    "too_long_message": "Meldingen er for lang ({length} tegn). Skriv kortere, høyst {limit} tegn.",
    "yes": "Ja",
    "no": "Nei",
}

EN: dict[str, str] = {
    "welcome_title": "Procurement assistant",
    "welcome_intro": (
        "Hi! I help you with the municipality's purchasing: I take needs reports to the "
        "procurement section, tell you which rules apply to your purchase, and remind "
        "contract managers of contract deadlines."
    ),
    "welcome_needs_title": "Needs report",
    "welcome_needs_text": "Report a purchasing need over NOK 100,000 to the procurement section.",
    "welcome_contracts_title": "Contracts",
    "welcome_contracts_text": "See your contracts and the next option, end and control deadline.",
    "welcome_deviation_title": "Deviations",
    "welcome_deviation_text": "Report a deviation in a supplier's delivery.",
    "welcome_language_hint": "Type “språk norsk” for Norwegian, “help” for this overview.",
    "coming_line": "{feature}: coming soon – not available yet.",
    "action_needs_report": "New needs report",
    "action_my_needs_reports": "My needs reports",
    "action_my_contracts": "My contracts",
    "action_new_contract": "New contract",
    "action_deviation": "Report deviation",
    "action_help": "Help",
    "coming_title": "Coming soon",
    "coming_body": (
        "“{feature}” is not available yet. We are building it now; until then, please "
        "contact the procurement section directly."
    ),
    "language_set_title": "Language changed",
    "language_set_body": "I will answer you in English from now on.",
    "unknown_action_title": "Unknown action",
    "unknown_action_body": (
        "I don't recognise that action. The card may be from an older version. "
        "Type “help” to see what you can do."
    ),
    "error_title": "Something went wrong",
    "error_body": (
        "Sorry, something went wrong on my side. Nothing you typed has been deleted. "
        "Please try again shortly. Quote reference {ref} if you contact support."
    ),
    "not_allowed_title": "Not allowed",
    "not_allowed_body": "Sorry, only {role} can do this. Nothing has changed.",
    "role_procurement": "members of the procurement section",
    "role_manager": "the contract's manager or the procurement section",
    "too_long_message": "The message is too long ({length} characters). Please keep it under {limit}.",
    "yes": "Yes",
    "no": "No",
}

STRINGS: dict[str, dict[str, str]] = {"nb": NB, "en": EN}


def register(nb: dict[str, str], en: dict[str, str]) -> None:
    """Add a workflow's strings (each dialog module keeps its own next to its code)."""
    clash = (nb.keys() | en.keys()) & (NB.keys() | EN.keys())
    if clash:
        raise ValueError(f"string keys defined twice: {sorted(clash)}")
    NB.update(nb)
    EN.update(en)


def text(lang: str, key: str, **fmt: Any) -> str:
    table = STRINGS.get(lang, NB)
    template = table.get(key) or NB[key]
    return template.format(**fmt) if fmt else template
