"""Which framework agreements plausibly cover a needs report, and why (avtalelojalitet).

Pure: `match_agreements(facts, on, agreements)` takes the report's facts and the register's
agreements and returns `FrameworkAgreementHit`s with their reasons, best first. The goods /
services / works category is never a reason: every goods report is not covered by every
goods agreement. Two kinds of evidence count.

CPV codes. A code's digits that matter are those before its trailing zeros (33192000 →
33192); the report's code and each of the agreement's share a prefix of 2 digits
(division), 3 (group), 4 (class) or 5 and more (category). The deeper, the stronger:

* class or deeper (4+ digits) covers on its own: 30192000 Kontorrekvisita and 30190000
  Diverse kontorutstyr share class 3019;
* group (3 digits) covers on its own only when the agreement's code *is* that group
  (39100000 Møbler covers 39130000 Kontormøbler); two codes that merely meet in a group
  (33141 medical consumables, 33192 medical furniture) also need a shared word;
* division (2 digits) never covers on its own (division 33 holds medicines and beds alike),
  only together with a shared word.

Words. The report's title and need against the agreement's title and scope, folded
(case, æ/ø/å), without stop words and generic procurement words (avtale, levering,
tjenester …) and the words that say where or for whom ("… til sykehjem", "… i skoler"),
crudely stemmed (senger, sengene, sengen → seng) and with compounds matched
by their last part ("senger" ~ "sykehjemssenger", "transport" ~ "transporttjenester"). Words
that describe rather than name a thing (elektriske, digitale …) count for nothing alone.

* "tittelen ligner": the titles share a naming word, and at least half of the naming words
  of the agreement's title (or of the report's) are among them. This covers on its own,
  unless both sides have CPV codes that share no division (then one more word is needed),
  or the categories differ (then nothing else weaker than this counts);
* other shared naming words (title or need against title or scope) cover on their own
  only when there are three of them, one from the report's title.

Strength (for ordering and the card): CPV 1 (division) … 5 (8 digits alike), +1 when the
agreement's code holds the report's; title alike +3; each other word +1 (at most 3).

CPV names for the reasons come from `rules_data/cpv.json` (dated data, like the
thresholds); a code it does not list is shown by its digits only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from procurement.needs.assessment import CoverReason, FrameworkAgreementHit, NeedsReportFacts
from procurement.shared.text import fold

CPV_NAMES_PATH = Path(__file__).resolve().parent / "rules_data" / "cpv.json"

# -- the agreements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """An agreement in the contract register, as far as coverage goes."""

    contract_ref: str
    title: str
    supplier: str
    category: str
    start_date: date
    end_date: date
    agreement_type: str = "framework"
    cpv_codes: tuple[str, ...] = ()
    scope: str = ""

    def in_force(self, on: date) -> bool:
        return self.agreement_type == "framework" and self.start_date <= on <= self.end_date


# -- CPV -------------------------------------------------------------------------------------

_CPV_RE = re.compile(r"^(\d{8})(?:-\d)?$")
_LEVELS = {2: "division", 3: "group", 4: "class"}


@dataclass(frozen=True)
class CpvNames:
    """Names of CPV codes by their eight digits, in nb and en."""

    names: Mapping[str, Mapping[str, str]]
    edition: str = ""

    def name(self, prefix: str, lang: str) -> str:
        found = self.names.get(prefix.ljust(8, "0"))
        return str(found.get(lang, "")) if found else ""


def load_cpv_names(path: str | Path | None = None, on: date | None = None) -> CpvNames:
    """The edition of the CPV names in force on `on` (default: the latest)."""
    data = json.loads(Path(path or CPV_NAMES_PATH).read_text(encoding="utf-8"))
    editions = sorted(data["editions"], key=lambda e: str(e["valid_from"]))
    if on is not None:
        editions = [e for e in editions if date.fromisoformat(e["valid_from"]) <= on] or editions[:1]
    edition = editions[-1]
    return CpvNames(names=dict(edition["codes"]), edition=str(edition["id"]))


@lru_cache(maxsize=1)
def default_cpv_names() -> CpvNames:
    """The shipped names, read once (immutable data)."""
    return load_cpv_names()


def cpv_digits(code: str | None) -> str:
    """The eight digits of a CPV code ("33192000-2" → "33192000"), or "" when it is none."""
    match = _CPV_RE.match((code or "").strip())
    return match.group(1) if match else ""


def significant(code: str) -> str:
    """The digits that matter: those before the trailing zeros, at least the division."""
    stripped = code.rstrip("0")
    return stripped if len(stripped) >= 2 else code[:2]


@dataclass(frozen=True)
class CpvMatch:
    prefix: str
    contains: bool  # the agreement's code is the prefix: it holds the report's code

    @property
    def depth(self) -> int:
        return len(self.prefix)

    @property
    def level(self) -> str:
        return _LEVELS.get(self.depth, "category")

    @property
    def points(self) -> int:
        return min(self.depth - 1, 5) + (1 if self.contains and self.depth < 8 else 0)

    @property
    def alone(self) -> bool:
        """Covers without any shared word (see the module docstring)."""
        return self.depth >= 4 or (self.depth == 3 and self.contains)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def best_cpv_match(report_code: str, agreement_codes: Iterable[str]) -> CpvMatch | None:
    """The deepest match of the report's code with one of the agreement's (None below a division)."""
    report = significant(report_code)
    best: CpvMatch | None = None
    for raw in agreement_codes:
        code = cpv_digits(raw)
        if not code:
            continue
        theirs = significant(code)
        prefix = _common_prefix(report, theirs)
        if len(prefix) < 2:
            continue
        found = CpvMatch(prefix, contains=prefix == theirs)
        if best is None or (found.depth, found.contains) > (best.depth, best.contains):
            best = found
    return best


# -- words -----------------------------------------------------------------------------------

# Folded (see procurement.shared.text.fold); checked before and after stemming.
STOP_WORDS = frozenset(
    """
    og for til av med i pa en et ei som er det den de vi dere oss var vare ikke skal kan ma
    bli blir har hos fra om per pr inn ut over under etter ved mot eller samt ny nye nytt mer
    mange alle hver andre annen annet diverse div ulike inkl mm osv etc ca cirka stk antall
    ar aret arlig maned maneder uke uker dag dager periode trenger trengs onsker gjelder
    knyttet type typer behov bruk brukes god gode bedre dagens eksisterende the and of to in
    with an at on by from
    avtale avtaler avtalen rammeavtale rammeavtaler rammeavtalen kontrakt kontrakter anskaffelse
    anskaffelser innkjop kjop kjope levering leveranse leveranser leverandor leverandorer
    tjeneste tjenester vare varer produkt produkter artikler kommune kommunen kommunens
    losning losninger
    """.split()
)
# Compounds whose last part is generic ("transporttjenester", "matvarer"): the first part
# names the thing. Stemmed forms.
_GENERIC_HEADS = ("tjenest", "avtal", "leverans", "levering", "produkt", "artikl", "var", "utstyr")
# Describing words: shared alone they say nothing about what is bought.
_DESCRIBING = re.compile(r"(?:isk|ig|lig|ell|iv)$")
_DESCRIBING_WORDS = frozenset({"stor", "liten", "sma", "lett", "tung", "digital", "mobil", "enkel", "hel"})
# "Senger til sykehjem", "Renhold i skoler": after these the words say where or for whom,
# not what is bought, until the clause ends. ("for" is left out: "avtale for renhold".)
_CONTEXT_MARKERS = frozenset({"til", "ved", "hos", "i", "pa"})
_CLAUSE_END = re.compile(r"[,.;:!?()\n]")
_SUFFIXES = ("erne", "ene", "ane", "er", "en", "et", "ar", "e", "a")
_WORD_RE = re.compile(r"[^\W\d_]+")
_MIN_STEM = 3


def stem(word: str) -> str:
    """A crude Norwegian stem of a folded word: plural and definite endings off, a doubled
    last letter single ("sykehjemmet" → "sykehjem", "madrasser" → "madras")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            word = word[: -len(suffix)]
            break
    if len(word) > _MIN_STEM and word[-1] == word[-2]:
        word = word[:-1]
    return word


@dataclass(frozen=True)
class Word:
    stem: str
    shown: str  # as written, lower case (for the reason)
    describing: bool


def _naming_words(text: str) -> list[str]:
    """The words of `text` outside the "til …" / "i …" parts of each clause."""
    words: list[str] = []
    for clause in _CLAUSE_END.split(text):
        for raw in _WORD_RE.findall(clause):
            if fold(raw) in _CONTEXT_MARKERS:
                break
            words.append(raw)
    return words


def subject_words(text: str) -> list[Word]:
    """The words of `text` that may name what is bought, stemmed, each once."""
    out: dict[str, Word] = {}
    for raw in _naming_words(text):
        folded = fold(raw)
        if len(folded) < _MIN_STEM or folded in STOP_WORDS:
            continue
        stemmed = stem(folded)
        for head in _GENERIC_HEADS:
            if stemmed.endswith(head) and len(stemmed) - len(head) >= _MIN_STEM:
                # the first part, without the linking s ("sykehjemstjenester" → "sykehjem")
                stemmed = stem(stemmed[: -len(head)].removesuffix("s"))
                break
        if stemmed in _STEMMED_STOP or len(stemmed) < _MIN_STEM:
            continue
        describing = bool(_DESCRIBING.search(stemmed)) or stemmed in _DESCRIBING_WORDS
        out.setdefault(stemmed, Word(stemmed, raw.lower(), describing))
    return list(out.values())


_STEMMED_STOP = frozenset(stem(w) for w in STOP_WORDS) | set(_GENERIC_HEADS)


def same_word(a: str, b: str) -> bool:
    """Equal stems, or one the last part of the other's compound ("seng" ~ "sykehjemsseng")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and len(long) - len(short) >= 3 and long.endswith(short)


def _shared(ours: Sequence[Word], theirs: Sequence[Word]) -> list[tuple[Word, Word]]:
    """Pairs (our word, their word) that are the same word, each of ours at most once."""
    pairs = []
    for mine in ours:
        other = next((t for t in theirs if same_word(mine.stem, t.stem)), None)
        if other is not None:
            pairs.append((mine, other))
    return pairs


@dataclass(frozen=True)
class WordMatch:
    title_alike: bool
    other: tuple[str, ...]  # the agreement's words (as written) shared besides the titles
    from_title: bool  # one of the shared words is in the report's title

    @property
    def points(self) -> int:
        return (3 if self.title_alike else 0) + min(len(self.other), 3)


def match_words(facts: NeedsReportFacts, agreement: Agreement) -> WordMatch:
    report_title = subject_words(facts.title)
    report_all = subject_words(f"{facts.title}\n{facts.need}")
    their_title = subject_words(agreement.title)
    their_all = subject_words(f"{agreement.title}\n{agreement.scope}")

    naming = [w for w in report_title if not w.describing]
    their_naming = [w for w in their_title if not w.describing]
    title_pairs = _shared(naming, their_naming)
    matched_theirs = {t.stem for _, t in title_pairs}
    title_alike = bool(title_pairs) and (
        2 * len(matched_theirs) >= len(their_naming) or 2 * len(title_pairs) >= len(naming)
    )

    pairs = _shared([w for w in report_all if not w.describing], [w for w in their_all if not w.describing])
    title_stems = {w.stem for w in naming}
    counted = matched_theirs if title_alike else set()
    other: list[str] = []
    for _mine, theirs in pairs:
        if theirs.stem not in counted and theirs.shown not in other:
            other.append(theirs.shown)
    from_title = any(m.stem in title_stems for m, _ in pairs)
    return WordMatch(title_alike, tuple(other), from_title)


# -- matching --------------------------------------------------------------------------------


def match_agreement(
    facts: NeedsReportFacts, agreement: Agreement, names: CpvNames | None = None
) -> FrameworkAgreementHit | None:
    """The hit when `agreement` plausibly covers the report (thresholds in the module docstring)."""
    report_code = cpv_digits(facts.cpv)
    agreement_codes = [c for c in (cpv_digits(x) for x in agreement.cpv_codes) if c]
    cpv = best_cpv_match(report_code, agreement_codes) if report_code else None
    words = match_words(facts, agreement)
    any_word = words.title_alike or bool(words.other)
    codes_disagree = bool(report_code and agreement_codes and cpv is None)
    same_category = facts.category == agreement.category

    if cpv is not None and cpv.alone:
        covers = True
    elif cpv is not None:
        covers = any_word
    elif codes_disagree:
        covers = words.title_alike and len(words.other) >= 1
    elif words.title_alike:
        covers = True
    else:
        covers = same_category and words.from_title and len(words.other) >= 3
    if not covers:
        return None

    names = names or default_cpv_names()
    reasons: list[CoverReason] = []
    if cpv is not None:
        reasons.append(
            CoverReason(
                "cpv",
                code=cpv.prefix,
                level=cpv.level,
                name_nb=names.name(cpv.prefix, "nb"),
                name_en=names.name(cpv.prefix, "en"),
            )
        )
    if words.title_alike:
        reasons.append(CoverReason("title"))
    if words.other:
        reasons.append(CoverReason("words", words=words.other[:3]))
    strength = (cpv.points if cpv else 0) + words.points
    return FrameworkAgreementHit(
        contract_ref=agreement.contract_ref,
        title=agreement.title,
        supplier=agreement.supplier,
        category=agreement.category,
        end_date=agreement.end_date,
        reasons=tuple(reasons),
        strength=strength,
    )


def match_agreements(
    facts: NeedsReportFacts, on: date, agreements: Iterable[Agreement], names: CpvNames | None = None
) -> list[FrameworkAgreementHit]:
    """The framework agreements in force on `on` that plausibly cover the report, best first."""
    hits = [
        hit
        for agreement in agreements
        if agreement.in_force(on) and (hit := match_agreement(facts, agreement, names)) is not None
    ]
    return sorted(hits, key=lambda h: (-h.strength, -(h.end_date or date.min).toordinal(), h.contract_ref))
