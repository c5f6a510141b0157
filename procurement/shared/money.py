"""Money as Norwegians type it: parse to whole kroner, format for display.

`parse_nok` turns what a procurement contact types into an integer number of whole
kroner (NOK, excluding VAT), or refuses with a precise message in bokmål and English
saying what to type instead. Thresholds are compared on these integers, so the parser
never guesses:

* Grouping: spaces (also non-breaking and thin spaces), dots ("1.300.000") or commas
  ("1,300,000") between groups of exactly three digits; one style per number.
* Decimals: a comma or a dot followed by one, two or four-plus digits ("1,3 mill",
  "1.25 mill"). Without a unit the decimals are øre: ",-", ",0" and ",00" are fine,
  any other øre is refused (a threshold must not be decided by rounding). With
  ``ore="round"`` (the contract register: a recorded value, no threshold decided on it)
  øre are rounded half up from 1 000 kr on ("1 250 000,50" → 1 250 001); below that a
  fraction is still refused, since "1,3" is more likely a forgotten "mill" than 1 kr.
* A single dot or comma followed by exactly three digits ("1.300", "1,300 mill") is
  refused as ambiguous: it may be a thousands separator or a decimal separator.
* Units: "'" / "k" / "tusen" / "tkr" (×1 000), "mill" / "millioner" / "MNOK" / "mkr" /
  "mln" / "mio" (×1 000 000), "mrd" / "milliard(er)" (×1 000 000 000). "billion" is not
  accepted: it means 10^9 in English and 10^12 in Norwegian.
* Decorations: "kr", "kr.", "NOK", "kroner", ",-", "ca.", "eks. mva", "(eks. mva)", "+ mva".
  "inkl. mva" (or any other mention of VAT) is refused: values are excluding VAT.
* Refused: empty, negative, zero, ranges ("500 000 - 800 000"), letters, values over
  10^12 kroner, more than 64 characters.
* Numbers (a spreadsheet cell) are read as their value under the same rules: no
  negative, zero or too large amount, and øre refused or rounded as above.

`parse_nok` never raises on any `str` or number (hypothesis tests hold it to that).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

NBSP = "\u00a0"
MAX_NOK = 10**12
MAX_INPUT_CHARS = 64

# Code points that render as nothing; users paste them from documents and web pages.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d]")
_APOSTROPHES = re.compile("[\u2019\u2018\u00b4\u0060\u02bc\u02b9\u2032]")
_SPACES = re.compile(r"\s+")  # str patterns: \s covers NBSP, thin space, narrow NBSP …

_APPROX = re.compile(r"^(?:ca\.?|cirka|omtrent|omkring|anslagsvis|approx\.?|approximately|about|around|~)\s*")
_EXCL_VAT = re.compile(
    r"\(?\s*(?:(?<![a-zæøå])(?:eks|ekskl|eksklusive|ex|excl|exkl|excluding|uten)\.?\s*|\+\s*)"
    r"(?:mva|moms|vat|merverdiavgift)(?![a-zæøå])\.?\s*\)?"
)
_ANY_VAT = re.compile(r"mva|moms|vat|merverdi")

_UNITS: dict[str, int] = {
    "'": 1_000,
    "k": 1_000,
    "tusen": 1_000,
    "tkr": 1_000,
    "knok": 1_000,
    "tnok": 1_000,
    "mill": 1_000_000,
    "million": 1_000_000,
    "millioner": 1_000_000,
    "mnok": 1_000_000,
    "mkr": 1_000_000,
    "mln": 1_000_000,
    "mio": 1_000_000,
    "mrd": 1_000_000_000,
    "milliard": 1_000_000_000,
    "milliarder": 1_000_000_000,
}
_PREFIX_UNITS = ("mnok", "mkr", "tnok", "tkr", "knok")
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_PREFIX_RE = "|".join(sorted((*_PREFIX_UNITS, "kr", "nok"), key=len, reverse=True))

_AMOUNT = re.compile(
    rf"""
    ^(?:(?P<pre>{_PREFIX_RE})\.?\s*)?
    (?P<sign>-\s*)?
    (?P<num>[0-9](?:[0-9 .,]*[0-9])?)
    \s*(?:[.,]-+)?
    \s*(?:(?P<unit>{_UNIT_RE})(?:(?<=[a-z])\.)?)?
    \s*(?:(?:kr|nok|kroner)\.?)?
    \s*(?:[.,]-+)?
    $""",
    re.VERBOSE,
)
_NEGATIVE = re.compile(r"^(?:(?:kr|nok)\.?\s*)?(?:-|minus\s)")
_RANGE = re.compile(r"[0-9'](?:\s*(?:kr|mill|k)\.?)?\s*(?:-|til|to)\s*(?:kr\.?\s*)?[0-9]")


@dataclass(frozen=True)
class ParseResult:
    """Either `value` (whole kroner, > 0) or an error `code` with `messages` in nb and en."""

    value: int | None = None
    code: str | None = None
    messages: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code is None and self.value is not None

    def message(self, lang: str = "nb") -> str:
        return self.messages.get(lang) or self.messages.get("nb", "")


def _fail(code: str, nb: str, en: str) -> ParseResult:
    return ParseResult(code=code, messages={"nb": nb, "en": en})


_EXAMPLES_NB = "for eksempel 1 300 000, 1300000 kr, 1,3 mill eller 250' (= 250 000 kr)"
_EXAMPLES_EN = "e.g. 1 300 000, 1300000 kr, 1,3 mill or 250' (= NOK 250,000)"


def _plain(n: int) -> str:
    """Digits grouped by ordinary spaces: what we ask the user to type."""
    return f"{n:,}".replace(",", " ")


def _decimal_text(int_digits: str, frac: str, sep: str) -> str:
    frac = frac.rstrip("0")
    return f"{int(int_digits)}{sep}{frac}" if frac else str(int(int_digits))


def format_nok(n: int, lang: str = "nb", *, nbsp: bool = False) -> str:
    """1300000 → "1 300 000 kr" (nb) or "NOK 1,300,000" (en).

    nb groups with ordinary spaces by default (what the user would type, and what tests
    and search match); `nbsp=True` uses non-breaking spaces so an amount never wraps.
    `parse_nok` reads all of these back, except English amounts from 1,000 to 999,999
    ("NOK 1,300"), which it refuses as ambiguous."""
    sign = "-" if n < 0 else ""
    digits = f"{abs(n):,}"
    if lang == "en":
        return f"{sign}NOK {digits}"
    space = NBSP if nbsp else " "
    return sign + digits.replace(",", space) + space + "kr"


def _normalise(text: str) -> str:
    s = _INVISIBLE.sub("", text)
    s = _DASHES.sub("-", s)
    s = _APOSTROPHES.sub("'", s)
    s = _SPACES.sub(" ", s).strip().lower()
    return s


def _valid_groups(int_part: str, sep: str) -> bool:
    """`int_part` grouped by `sep`: first group 1–3 digits, then groups of exactly 3."""
    groups = int_part.split(sep)
    if not all(g.isascii() and g.isdigit() for g in groups):
        return False
    return 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


def _ambiguous(num: str, int_part: str, frac: str, sep: str, unit: str | None) -> ParseResult:
    int_digits = int_part.replace(" ", "") or "0"
    grouped = int(int_digits + frac)
    mult = _UNITS[unit] if unit else 1
    as_group = grouped * mult
    decimal = _decimal_text(int_digits, frac, ",")
    if unit:
        as_decimal_nok = int(int_digits + frac) * mult // 1000
        nb = (
            f"«{num} {unit}» kan bety både {format_nok(as_decimal_nok)} og {format_nok(as_group)}. "
            f"Skriv {decimal} {unit} for {format_nok(as_decimal_nok)}, "
            f"eller {_plain(grouped)} {unit} for {format_nok(as_group)}."
        )
        en = (
            f"“{num} {unit}” could mean {format_nok(as_decimal_nok, 'en')} or "
            f"{format_nok(as_group, 'en')}. Type {decimal} {unit} for "
            f"{format_nok(as_decimal_nok, 'en')}, or {_plain(grouped)} {unit} for "
            f"{format_nok(as_group, 'en')}."
        )
    else:
        as_mill = int(int_digits + frac) * 1_000_000 // 1000
        nb = (
            f"«{num}» kan bety både {format_nok(as_group)} og {decimal} mill "
            f"({format_nok(as_mill)}). Skriv {_plain(as_group)} for {format_nok(as_group)}, "
            f"eller {decimal} mill for {format_nok(as_mill)}."
        )
        en = (
            f"“{num}” could mean {format_nok(as_group, 'en')} or {decimal} million "
            f"({format_nok(as_mill, 'en')}). Type {_plain(as_group)} for "
            f"{format_nok(as_group, 'en')}, or {decimal} mill for {format_nok(as_mill, 'en')}."
        )
    return _fail("ambiguous", nb, en)


def _grouping_error(num: str) -> ParseResult:
    return _fail(
        "grouping",
        f"Vi forstod ikke tallgrupperingen i «{num}». Skriv tallet uten skilletegn (1300000) "
        "eller med mellomrom mellom hver tredje siffer (1 300 000).",
        f"We could not read the digit grouping in “{num}”. Type the number without separators "
        "(1300000) or with a space between every three digits (1 300 000).",
    )


def _split(num: str, unit: str | None) -> tuple[str, str] | ParseResult:
    """Split the number into integer digits and fraction digits, or refuse it."""
    dots, commas = num.count("."), num.count(",")
    if dots and commas:
        dec = "." if num.rfind(".") > num.rfind(",") else ","
        grp = "," if dec == "." else "."
        if num.count(dec) != 1 or " " in num:
            return _grouping_error(num)
        int_part, frac = num.split(dec)
        if not _valid_groups(int_part, grp):
            return _grouping_error(num)
        return int_part.replace(grp, ""), frac
    if dots or commas:
        sep = "." if dots else ","
        if num.count(sep) > 1:
            if " " in num or not _valid_groups(num, sep):
                return _grouping_error(num)
            return num.replace(sep, ""), ""
        int_part, frac = num.split(sep)
        if not frac.isdigit() or not int_part or int_part.endswith(" "):
            return _grouping_error(num)
        if len(frac) == 3:
            return _ambiguous(num, int_part, frac, sep, unit)
        if " " in int_part and not _valid_groups(int_part, " "):
            return _grouping_error(num)
        return int_part.replace(" ", ""), frac
    if " " in num and not _valid_groups(num, " "):
        return _grouping_error(num)
    return num.replace(" ", ""), ""


Ore = Literal["refuse", "round"]
ROUND_FROM_NOK = 1000
"""With ``ore="round"``, amounts from here on are rounded; smaller fractions are refused."""


def parse_nok(value: str | int | float | Decimal, *, ore: Ore = "refuse") -> ParseResult:
    """Parse a Norwegian money amount to whole kroner; see the module docstring."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_number(value, ore)
    if not isinstance(value, str):
        return _fail(
            "invalid",
            "Skriv beløpet som tekst, " + _EXAMPLES_NB + ".",
            "Type the amount as text, " + _EXAMPLES_EN + ".",
        )
    s = _normalise(value)
    if not s:
        return _fail(
            "empty",
            "Skriv inn anslått verdi i kroner, " + _EXAMPLES_NB + ".",
            "Enter the estimated value in NOK, " + _EXAMPLES_EN + ".",
        )
    if len(s) > MAX_INPUT_CHARS:
        return _fail(
            "too_long",
            f"Beløpet er for langt (over {MAX_INPUT_CHARS} tegn). Skriv bare tallet, for eksempel 1 300 000.",
            f"The amount is too long (over {MAX_INPUT_CHARS} characters). Type just the number, e.g. 1 300 000.",
        )
    s = _APPROX.sub("", s)
    s = _EXCL_VAT.sub(" ", s).strip()
    s = _SPACES.sub(" ", s)
    if _ANY_VAT.search(s):
        return _fail(
            "vat",
            "Oppgi verdien eksklusive merverdiavgift, for eksempel «1 000 000 eks. mva». "
            "Trekk fra mva hvis tallet ditt er med mva.",
            "Give the value excluding VAT, e.g. “1 000 000 eks. mva”. Subtract the VAT if your figure includes it.",
        )
    if _NEGATIVE.search(s):
        return _negative()
    m = _AMOUNT.match(s)
    if m is None:
        if _RANGE.search(s):
            return _fail(
                "range",
                "Oppgi ett beløp, ikke et spenn. Bruk det høyeste anslaget for hele perioden, for eksempel 800 000.",
                "Give one amount, not a range. Use the highest estimate for the whole period, e.g. 800 000.",
            )
        return _fail(
            "invalid",
            "Vi forstod ikke beløpet. Skriv det i hele kroner, " + _EXAMPLES_NB + ".",
            "We could not read the amount. Type it in whole kroner, " + _EXAMPLES_EN + ".",
        )
    num, unit, pre = m.group("num"), m.group("unit"), m.group("pre")
    if m.group("sign"):
        return _negative()
    if pre in _PREFIX_UNITS:
        if unit:
            return _fail(
                "invalid",
                f"Vi forstod ikke beløpet: enheten står to ganger. Skriv for eksempel «{pre} 2,5» eller «2,5 mill».",
                f"We could not read the amount: the unit appears twice. Type e.g. “{pre} 2,5” or “2,5 mill”.",
            )
        unit = pre
    split = _split(num, unit)
    if isinstance(split, ParseResult):
        return split
    int_digits, frac = split
    int_digits = int_digits or "0"
    if len(int_digits.lstrip("0")) > 16:
        return _too_large()
    mult = _UNITS[unit] if unit else 1
    numerator = int(int_digits + frac) * mult
    denominator = 10 ** len(frac)
    if numerator % denominator and ore == "round" and numerator // denominator >= ROUND_FROM_NOK:
        return _checked(_round_half_up(Decimal(numerator) / denominator))
    if numerator % denominator:
        whole = numerator // denominator
        if unit:
            nb = (
                f"«{num} {unit}» er ikke et helt antall kroner. Skriv beløpet i hele kroner, "
                f"for eksempel {_plain(whole)}."
            )
            en = (
                f"“{num} {unit}” is not a whole number of kroner. Type the amount in whole kroner, "
                f"e.g. {_plain(whole)}."
            )
        elif whole < 1000:
            mill = _decimal_text(int_digits, frac, ",")
            as_mill = numerator * 1_000_000 // denominator
            nb = (
                f"«{num}» er ikke et helt antall kroner. Mente du {mill} mill "
                f"({format_nok(as_mill)})? "
                f"Skriv i så fall «{mill} mill». Beløp skrives i hele kroner, uten øre."
            )
            en = (
                f"“{num}” is not a whole number of kroner. Did you mean {mill} million "
                f"({format_nok(as_mill, 'en')})? Then type “{mill} mill”. Amounts are in whole "
                "kroner, "
                "without øre."
            )
        else:
            nb = f"Oppgi beløpet i hele kroner uten øre, for eksempel {_plain(whole)}."
            en = f"Give the amount in whole kroner without øre, e.g. {_plain(whole)}."
        return _fail("ore", nb, en)
    return _checked(numerator // denominator)


def _round_half_up(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _from_number(number: int | float | Decimal, ore: Ore) -> ParseResult:
    """A number from a spreadsheet cell, under the rules that apply to typed amounts."""
    # str() first: Decimal(0.1) is the binary float's full expansion, not the 0.1 a cell shows
    amount = Decimal(number) if isinstance(number, int) else Decimal(str(number))
    if not amount.is_finite():
        return _fail(
            "invalid",
            "Vi forstod ikke beløpet. Skriv det i hele kroner, " + _EXAMPLES_NB + ".",
            "We could not read the amount. Type it in whole kroner, " + _EXAMPLES_EN + ".",
        )
    if amount < 0:
        return _negative()
    if amount > MAX_NOK:
        return _too_large()
    if amount != amount.to_integral_value():
        if ore == "round" and amount >= ROUND_FROM_NOK:
            return _checked(_round_half_up(amount))
        whole = int(amount)
        return _fail(
            "ore",
            f"Oppgi beløpet i hele kroner uten øre, for eksempel {_plain(whole)}.",
            f"Give the amount in whole kroner without øre, e.g. {_plain(whole)}.",
        )
    return _checked(int(amount))


def _negative() -> ParseResult:
    return _fail(
        "negative",
        "Beløpet kan ikke være negativt. Skriv anslått verdi som et positivt tall, for eksempel 500 000.",
        "The amount cannot be negative. Type the estimated value as a positive number, e.g. 500 000.",
    )


def _checked(value: int) -> ParseResult:
    """Whole kroner, refused when zero or beyond `MAX_NOK`."""
    if value == 0:
        return _fail(
            "zero",
            "Beløpet må være større enn 0 kr. Skriv anslått verdi for hele perioden, for eksempel 500 000.",
            "The amount must be more than NOK 0. Type the estimated value for the whole period, e.g. 500 000.",
        )
    if value > MAX_NOK:
        return _too_large()
    return ParseResult(value=value)


def _too_large() -> ParseResult:
    return _fail(
        "too_large",
        f"Beløpet er urimelig stort (over {format_nok(MAX_NOK)}). Sjekk antall nuller, "
        "eller skriv for eksempel 1,5 mrd for 1 500 000 000 kr.",
        f"The amount is unreasonably large (over {format_nok(MAX_NOK, 'en')}). Check the number "
        "of zeros, or type e.g. 1,5 mrd for NOK 1,500,000,000.",
    )
