"""Hypothesis throws generated card actions at the real app over HTTP (SQLite).

Each example is one Action.Execute invoke: a needs_report verb (or an unknown verb, or a
verb that is not a string) with a random data dict — the form's keys and random ones, values
of every JSON type, huge strings, hostile text (quotes, braces, `${x}`, markdown, emoji, NUL,
RTL marks, lone surrogates) — some of them otherwise-valid submits with one or two fields
spoiled, so reports do get stored. Properties:

- the answer is never an HTTP 5xx (no 500, no 501): the invoke gets HTTP 200 with a card;
- every card answered (and any card the stub received) passes `validate_card`;
- the handler never falls into the generic error card ("Noe gikk galt"): bad input is the
  user's mistake to be explained, not a crash;
- every stored report satisfies the rules: value > 0 and ≤ MAX_NOK, start date not before
  the day it was submitted, text within LIMITS, category / agreement type / service area valid.

One app instance per test (not per example); ~100 examples; no deadline.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import app as app_module
from procurement.needs.fields import (
    AGREEMENT_TYPES,
    LIMITS,
    MAX_FAGGRUPPE_MEMBERS,
    MAX_MONTHS,
    NEEDS_REPORT_FIELDS,
    SERVICE_AREA_VALUES,
)
from procurement.needs.rules import CATEGORIES
from procurement.shared.calendar import OSLO
from procurement.shared.money import MAX_NOK
from procurement.store.tables import NeedsReport
from settings import Settings
from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub, adaptive_cards, card_texts

TENANT = "9a3c1f0e-5b7d-4c2a-8e1f-0d2b3c4a5e6f"
KARI = "7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
INGRID = "c0ffee00-1234-4abc-8def-0123456789ab"  # innkjøper
INTAKE = "19:innkjop-intake@thread.tacv2"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ERROR_TITLES = ("Noe gikk galt", "Something went wrong")
VERBS = [
    "needs_report.submit",
    "needs_report.save_draft",
    "needs_report.open",
    "needs_report.mine",
    "needs_report.withdraw",
    "needs_report.approve",
    "needs_report.reject",
    "needs_report.request_info",
    "needs_report.refresh",
    "needs_report.question",
    "needs_report.answer",
    "needs_report.edit",
    "needs_report.update",
]
UNKNOWN_VERBS = [
    "needs_report.delete",
    "needs_report.",
    "needs_report.submit ",
    "NEEDS_REPORT.SUBMIT",
    "admin.drop_tables",
    "",
    "${verb}",
    "needs_report.submit\u0000",
    "🚀.🚀",
]

HOSTILE = [
    '"',
    "'",
    "{",
    "}",
    "{}",
    '{"a":',
    "${x}",
    "${{x}}",
    "{{ t }}",
    "{% if %}",
    "{0}",
    "%s",
    "\\",
    "**fet** _kursiv_ [lenke](javascript:alert(1))",
    "<at>Kari</at>",
    "<script>alert(1)</script>",
    "🚀🇳🇴👩‍👩‍👧",
    "\u0000",
    "nul\u0000byte",
    "\u202eRTL\u202c",
    "\u200f\u200e",
    "\ufeff",
    "\u2028\u2029",
    "\ud800",
    "a\udfffb",
    "\x1b[31m",
    "\r\n\t",
    " ",
    "",
    "null",
    "true",
    "NaN",
    "-0",
    "1e309",
    "1.300",
    "1,3 mill",
    "250'",
    "−5",
    "١٢٣",
    "２０２６-０１-０１",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "DROP TABLE needs_reports;--",
    "ÆØÅ æøå",
]


def today() -> date:
    return datetime.now(OSLO).date()


def valid_inputs() -> dict[str, Any]:
    return {
        "title": "Transport av hjelpemidler",
        "need": "Hjemmetjenesten må få hjelpemidler levert og hentet.",
        "service_area": "helse_mestring",
        "estimated_value": "1 300 000",
        "value_basis": "",
        "category": "services",
        "cpv": "",
        "agreement_type": "single",
        "start_date": (today() + timedelta(days=30)).isoformat(),
        "duration_months": "24",
        "option_months": "0",
        "replaces_contract": "",
        "budget_secured": "true",
        "faggruppe": "",
        "risk_notes": "",
        "innovation": "false",
    }


# -- strategies ------------------------------------------------------------------------------

hostile_text = st.sampled_from(HOSTILE)
huge_text = st.builds(
    lambda s, n: (s or "x") * n,
    st.sampled_from(["x", "æ", "🚀", '"{', "${x}", "a\u0000"]),
    st.integers(min_value=200, max_value=30_000),
)
any_text = st.one_of(
    hostile_text,
    st.text(max_size=40),
    st.builds(lambda a, b: a + b, hostile_text, st.text(max_size=20)),
    huge_text,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)
field_keys = st.sampled_from([*NEEDS_REPORT_FIELDS, "token", "verb", "ref", "decision_note", "resume"])
random_keys = st.one_of(field_keys, st.text(max_size=15), hostile_text)

random_data = st.dictionaries(random_keys, json_values, max_size=12)


@st.composite
def spoiled_submit(draw: st.DrawFn) -> dict[str, Any]:
    """A valid form with one to three fields replaced by anything (so many are stored)."""
    data = valid_inputs()
    for key in draw(st.lists(st.sampled_from(list(NEEDS_REPORT_FIELDS)), max_size=3, unique=True)):
        data[key] = draw(json_values)
    if draw(st.booleans()):
        data["token"] = draw(st.one_of(st.just(uuid.uuid4().hex), json_values))
    if draw(st.booleans()):
        data[draw(st.text(max_size=10))] = draw(json_values)
    return data


@st.composite
def verb_strategy(draw: st.DrawFn) -> Any:
    """Half submits, a third the other needs_report verbs, the rest unknown or not text."""
    roll = draw(st.integers(min_value=0, max_value=11))
    if roll < 6:
        return "needs_report.submit"
    if roll < 10:
        return draw(st.sampled_from(VERBS))
    if roll == 10:
        return draw(st.sampled_from(UNKNOWN_VERBS))
    return draw(json_values)  # not even a string


@st.composite
def action(draw: st.DrawFn) -> tuple[Any, Any, str]:
    verb = draw(verb_strategy())
    if verb == "needs_report.submit" and draw(st.booleans()):
        data: Any = draw(spoiled_submit())
    elif draw(st.integers(min_value=0, max_value=9)) == 0:
        data = draw(json_values)  # data that is not even an object
    else:
        data = draw(random_data)
        if isinstance(verb, str) and verb.startswith("needs_report.") and draw(st.booleans()):
            data["ref"] = draw(st.one_of(st.sampled_from([f"BM-{today().year}-000{i}" for i in range(1, 6)]), any_text))
    user = draw(st.sampled_from([KARI, INGRID]))
    return verb, data, user


# -- the app -------------------------------------------------------------------------------


class App:
    def __init__(self, client: TestClient, stub: ConnectorStub) -> None:
        self.client = client
        self.stub = stub
        self.runtime = client.server.app[app_module.RUNTIME]  # type: ignore[attr-defined]

    async def invoke(self, verb: Any, data: Any, user: str) -> tuple[int, Any]:
        channel = user == INGRID
        act = {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "id": f"f:{uuid.uuid4().hex[:12]}",
            "channelId": "msteams",
            "serviceUrl": self.stub.url,
            "from": {"id": f"29:{user}", "name": "Ingrid" if channel else "Kari", "aadObjectId": user},
            "conversation": {
                "id": INTAKE if channel else "a:kari-personal",
                "conversationType": "channel" if channel else "personal",
                "tenantId": TENANT,
            },
            "recipient": {"id": "28:bot-app-id", "name": "Innkjøpsassistenten"},
            "locale": "nb-NO",
            "channelData": {"tenant": {"id": TENANT}},
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
        }
        if channel:
            act["replyToId"] = "intake-msg-1"
        # Lone surrogates cannot be UTF-8: send them as JSON escapes, as a client would.
        payload = json.dumps(act, ensure_ascii=True)
        resp = await self.client.post("/api/messages", data=payload, headers={"Content-Type": "application/json"})
        raw = await resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    async def reports(self) -> list[NeedsReport]:
        async with self.runtime.store.session() as session:
            return list(await session.scalars(sa.select(NeedsReport)))


@pytest.fixture
async def fuzz_app(
    new_database: Callable[[str], Awaitable[str]], make_settings: Callable[..., Settings]
) -> AsyncIterator[App]:
    settings_ = make_settings(
        DATABASE_URL=await new_database("sqlite"), PROCUREMENT_USER_IDS=INGRID, INTAKE_CHANNEL_ID=INTAKE
    )
    async with ConnectorStub(rate_limits=False) as stub:
        client = TestClient(TestServer(await app_module.build_app(settings_), host="127.0.0.1"))
        await client.start_server()
        try:
            yield App(client, stub)
        finally:
            await client.close()
        for card in stub.cards():
            validate_card(card)
        for update in stub.updates:
            for card in adaptive_cards(update.activity):
                validate_card(card)


def check_report(r: NeedsReport) -> None:
    submitted_on = r.created_at.astimezone(OSLO).date()
    data = r.data
    assert 0 < r.estimated_value <= MAX_NOK, r.estimated_value
    assert r.category in CATEGORIES and data["category"] == r.category
    assert data["agreement_type"] in AGREEMENT_TYPES
    assert r.service_area in SERVICE_AREA_VALUES
    start = date.fromisoformat(data["start_date"])
    assert start >= submitted_on, (start, submitted_on)
    assert start <= submitted_on.replace(year=submitted_on.year + 11)
    assert 1 <= data["duration_months"] <= MAX_MONTHS
    assert 0 <= data["option_months"] and data["duration_months"] + data["option_months"] <= MAX_MONTHS
    assert r.title.strip() and len(r.title) <= LIMITS["title"] and r.title == data["title"]
    assert data["need"].strip() and len(data["need"]) <= LIMITS["need"]
    for key in ("value_basis", "risk_notes"):
        assert len(data[key]) <= LIMITS[key], key
    assert len(data["replaces_contract"] or "") <= LIMITS["replaces_contract"]
    assert len(data["faggruppe"]) <= MAX_FAGGRUPPE_MEMBERS
    assert len(",".join(data["faggruppe"])) <= LIMITS["faggruppe"]
    for key in ("budget_secured", "innovation"):
        assert isinstance(data[key], bool), key
    for text in (r.title, data["need"], data["value_basis"], data["risk_notes"]):
        assert "\u0000" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(act=action())
async def test_card_actions_never_crash_and_stored_reports_obey_the_rules(
    fuzz_app: App, act: tuple[Any, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    verb, data, user = act
    caplog.clear()
    status, body = await fuzz_app.invoke(verb, data, user)
    assert status not in (500, 501), (status, body)
    assert status == 200, (status, str(body)[:300])
    assert isinstance(body, dict) and body.get("statusCode") == 200 and body.get("type") == CARD_TYPE, str(body)[:300]
    card = body["value"]
    validate_card(card)
    text = " ".join(card_texts(card))
    if any(t in text for t in ERROR_TITLES):
        errors = [f"{type(r.exc_info[1]).__name__}: {r.exc_info[1]}"[:300] for r in caplog.records if r.exc_info]
        raise AssertionError(f"handler failed for verb {verb!r}: {errors or text[:300]}")
    event(f"answer: {outcome(card)}")
    reports = await fuzz_app.reports()
    event(f"stored reports so far: {'0' if not reports else '1-9' if len(reports) < 10 else '10+'}")
    for report in reports:
        check_report(report)


def outcome(card: dict[str, Any]) -> str:
    text = " ".join(card_texts(card))
    if "Skjemaet er ikke sendt" in text:
        return "form with errors"
    if "er sendt" in text:
        return "summary"
    if "Ny behovsmelding" in text:
        return "form"
    if "Jeg finner ikke noe med den referansen" in text:
        return "report not found"
    if "Ukjent handling" in text:
        return "unknown action"
    if "Mine behovsmeldinger" in text:
        return "list"
    return "other notice or card"


async def test_the_fuzz_reaches_the_store(fuzz_app: App) -> None:
    """Guard for the property test: a plain valid submit is stored, so the report checks bite."""
    status, body = await fuzz_app.invoke("needs_report.submit", {**valid_inputs(), "token": "t-1"}, KARI)
    assert status == 200 and "BM-" in json.dumps(body, ensure_ascii=False)
    [report] = await fuzz_app.reports()
    check_report(report)
