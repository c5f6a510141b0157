"""The needs-report journey clicked through the Playground's web UI in Chromium, as two
people in two Teams clients: Kari (innkjøpskontakt) opens the form, fills it and sends it;
Ingrid (innkjøper) approves it in Innkjøpsseksjonen's channel; Kari is told in her chat.

The Playground has one current user per instance and no user switch, so Ingrid has her
own Playground (a copy of `.m365agentsplayground.yml` with her as the current user), in
front of the same bot — as two people each have their own Teams. The app is added to the
team from Ingrid's client, so the bot's channel posts reach her client; Kari's chat stays
in Kari's. The title carries markdown and a link: both pages must show it as text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from procurement.shared.calendar import OSLO
from tests.e2e.conftest import INGRID, INTAKE_CHANNEL, KARI, missing
from tests.e2e.playground import PLAYGROUND_BIN, REPO_ROOT, BotProcess, Playground, card_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVIL = "http://evil.example"
TITLE = f"Transport av hjelpemidler [lenke]({EVIL}) **haster**"
NEED = "Hjemmetjenesten må få hjelpemidler levert og hentet hos brukerne innen to virkedager."
DECISION_NOTE = "Vi tar kontakt om konkurransen."
SEND = "Send til Innkjøpsseksjonen"


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def config_with_current_user(text: str, aad_id: str) -> str:
    """The Playground yml with the user `aad_id` as current user and the old current user
    among `users` (the Playground needs exactly five of them), and their own personal chat."""
    current = re.search(r"^currentUser:\n((?:  .*\n)+)", text, re.M)
    assert current, "no currentUser in the yml"
    entry = re.search(rf"^  - (id: .*\n(?:    .*\n)*?    aadObjectId: {re.escape(aad_id)}\n(?:    .*\n)*)", text, re.M)
    assert entry, f"{aad_id} is not among the yml's users"
    fields = [line.removeprefix("    ") for line in ("    " + entry.group(1)).splitlines()]
    old = current.group(1).splitlines()
    as_current = "".join(f"  {line}\n" for line in fields)
    as_user = "".join(("  - " if i == 0 else "    ") + line.strip() + "\n" for i, line in enumerate(old))
    swapped = text[: current.start(1)] + as_current + text[current.end(1) :]
    swapped = swapped.replace(entry.group(0), as_user)
    name = re.search(r"^  name: (.+)$", as_current, re.M)
    assert name
    slug = re.sub(r"[^a-z]+", "-", name.group(1).lower()).strip("-")
    return re.sub(r"^(personalChat:\n  id: ).*$", rf"\g<1>a:personal-{slug}", swapped, flags=re.M)


@pytest.mark.asyncio(loop_scope="module")
async def test_config_swap_keeps_six_people() -> None:
    text = (REPO_ROOT / ".m365agentsplayground.yml").read_text(encoding="utf-8")
    swapped = config_with_current_user(text, INGRID)
    current = re.search(r"^currentUser:\n((?:  .*\n)+)", swapped, re.M)
    assert current and f"aadObjectId: {INGRID}" in current.group(1)
    assert swapped.count("aadObjectId:") == text.count("aadObjectId:") == 6
    assert f"aadObjectId: {KARI}" in swapped.split("users:", 1)[1]
    assert "a:personal-ingrid-haugen" in swapped


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ingrid_playground(
    app_bot: BotProcess, module_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Playground]:
    """A second Playground in front of the same bot, with Ingrid as its current user."""
    if not PLAYGROUND_BIN.exists():
        missing(f"{PLAYGROUND_BIN} missing (npm ci)")
    cwd = tmp_path_factory.mktemp("playground-ingrid")
    text = (REPO_ROOT / ".m365agentsplayground.yml").read_text(encoding="utf-8")
    (cwd / ".m365agentsplayground.yml").write_text(config_with_current_user(text, INGRID), encoding="utf-8")
    pg = Playground(app_bot, name="playground-ingrid", artifacts_dir=module_artifacts, cwd=cwd)
    await pg.start()
    try:
        yield pg
    finally:
        await pg.stop()


async def open_page(browser: Any, pg: Playground, outside: list[str]) -> Any:
    page = await browser.new_page(viewport={"width": 1400, "height": 1100}, locale="nb-NO")

    async def loopback_only(route: Any) -> None:
        outside.append(route.request.url)
        await route.abort()

    await page.route(lambda url: not url.startswith(pg.base_url), loopback_only)
    await page.goto(pg.base_url + "/", wait_until="load")
    # Opening the page installs the app in the current user's chat: the bot greets.
    await pg.next_message("Innkjøpsassistenten", 20, conversation_id=pg.personal_chat_id)
    await page.get_by_role("button", name="Ny behovsmelding").first.wait_for(timeout=15_000)
    return page


async def pick_date(page: Any, form: Any, label: str, day: date) -> None:
    """The Fluent date picker: open it, page to the month, click the day."""
    await form.get_by_role("combobox", name=re.compile(re.escape(label))).click()
    name = f"{day.day}, {day.strftime('%B')}, {day.year}"
    for _ in range(24):
        if await page.get_by_role("button", name=name, exact=True).count():
            break
        await page.locator('button[title^="Next month"]').click()
    await page.get_by_role("button", name=name, exact=True).click()


async def assert_shown_literally(card: Any) -> None:
    """The title is text on the page: no link to its address, no bold, the markup visible."""
    assert await card.locator('a[href*="evil.example"]').count() == 0
    assert await card.locator("strong, b, em").count() == 0
    assert TITLE in await card.inner_text()


async def test_needs_report_clicked_through_two_web_clients(
    app_playground: Playground, ingrid_playground: Playground, app_browser: Any
) -> None:
    kari_pg, ingrid_pg = app_playground, ingrid_playground
    assert kari_pg.current_user_id != ingrid_pg.current_user_id
    assert ingrid_pg.user()["aadObjectId"] == INGRID
    assert ingrid_pg.channel_id("Behovsmeldinger") == INTAKE_CHANNEL
    outside: list[str] = []
    kari = await open_page(app_browser, kari_pg, outside)
    ingrid = await open_page(app_browser, ingrid_pg, outside)
    try:
        # The app is added to the team in Ingrid's client (as an admin would in Teams).
        added = await ingrid_pg.activity_template(ingrid_pg.team_id, "botAdded")
        await ingrid_pg.send_activity(added)
        await ingrid_pg.wait_for_exchange(
            lambda item: (
                ((item.get("request") or {}).get("body") or {}).get("conversation", {}).get("id") == ingrid_pg.team_id
            )
        )

        # -- Kari: open the form from the message box ---------------------------------
        await kari.get_by_role("textbox").last.click()
        await kari.keyboard.type("behovsmelding")
        await kari.keyboard.press("Enter")
        form = kari.locator(".ac-adaptiveCard").filter(has_text=SEND).last
        await form.wait_for(timeout=15_000)

        # -- fill it in ---------------------------------------------------------------
        await form.get_by_label("Tittel *").fill(TITLE)
        await form.get_by_label(re.compile("^Behov")).fill(NEED)
        await form.get_by_role("combobox", name=re.compile("Tjenesteområde")).click()
        await kari.get_by_role("option", name="Helse og mestring").click()
        await form.get_by_label(re.compile("^Anslått verdi")).fill("1,3 mill")
        await form.get_by_role("radio", name="Tjenester").check()
        await form.get_by_role("radio", name="Enkeltkontrakt").check()
        await pick_date(kari, form, "Ønsket oppstart", oslo_today() + timedelta(days=120))
        await form.get_by_role("spinbutton", name=re.compile("^Varighet")).fill("24")
        await form.get_by_role("button", name=re.compile("^Flere detaljer")).click()  # the optional fields
        await form.get_by_role("spinbutton", name=re.compile("^Opsjoner")).fill("0")
        await form.get_by_role("checkbox", name="Budsjettet er avklart (forankret)").check()

        # -- send: the card turns into the summary ------------------------------------
        ref = f"BM-{oslo_today().year}-0001"
        await form.get_by_role("button", name=SEND).click()
        summary = kari.locator(".ac-adaptiveCard").filter(has_text=f"Behovsmelding {ref} er sendt").last
        await summary.wait_for(timeout=15_000)
        summary_text = await summary.inner_text()
        assert "1 300 000" in summary_text and "nasjonal terskelverdi" in summary_text
        await assert_shown_literally(summary)
        sent = next(i for i in reversed(kari_pg.log_items) if i.get("activityName") == "invoke")
        data = sent["request"]["body"]["value"]["action"]["data"]
        assert data["title"] == TITLE and data["estimated_value"] == "1,3 mill"
        assert data["service_area"] == "helse_mestring" and data["budget_secured"] == "true"
        await kari.screenshot(path=str(kari_pg.artifacts_dir / "kari-sent.png"))

        # -- Ingrid: the intake card in the channel, in her client --------------------
        posted = await ingrid_pg.next_message(ref, timeout=20, conversation_id=INTAKE_CHANNEL)
        assert "Venter på behandling" in card_text(posted.card)
        await ingrid.get_by_role("treeitem", name="Innkjøp - Behovsmeldinger").click()
        intake = (
            ingrid.locator(".ac-adaptiveCard")
            .filter(has_text=ref)
            .filter(has=ingrid.get_by_role("button", name="Godkjenn"))
            .last
        )
        await intake.wait_for(timeout=15_000)
        intake_text = await intake.inner_text()
        assert "Venter på behandling" in intake_text and "Kari Nordmann" in intake_text
        await assert_shown_literally(intake)
        # Typed key by key: this card's Fluent textarea ignores a programmatic fill.
        note = intake.get_by_label(re.compile("^Kommentar til melder"))
        await note.click()
        await note.press_sequentially(DECISION_NOTE)
        await ingrid.screenshot(path=str(ingrid_pg.artifacts_dir / "ingrid-intake.png"))
        await intake.get_by_role("button", name="Godkjenn").click()
        competition = f"K-{oslo_today().year}-0001"
        decided = ingrid.locator(".ac-adaptiveCard").filter(has_text="Godkjent av Ingrid Haugen").last
        await decided.wait_for(timeout=15_000)
        assert competition in await decided.inner_text()
        assert await decided.get_by_role("button", name="Godkjenn").count() == 0
        pressed = next(i for i in reversed(ingrid_pg.log_items) if i.get("activityName") == "invoke")
        assert pressed["request"]["body"]["from"]["id"] == ingrid_pg.current_user_id
        assert pressed["request"]["body"]["value"]["action"]["verb"] == "needs_report.approve"
        assert pressed["request"]["body"]["value"]["action"]["data"].get("decision_note") == DECISION_NOTE
        await ingrid.screenshot(path=str(ingrid_pg.artifacts_dir / "ingrid-approved.png"))

        # -- Kari is told, in her own client ------------------------------------------
        await kari_pg.next_message(ref, timeout=20, conversation_id=kari_pg.personal_chat_id)
        told = kari.locator(".ac-adaptiveCard").filter(has_text=f"Behovsmelding {ref}: Godkjent").last
        await told.wait_for(timeout=15_000)
        told_text = await told.inner_text()
        assert competition in told_text and DECISION_NOTE in told_text, told_text
        await kari.screenshot(path=str(kari_pg.artifacts_dir / "kari-told.png"))
    finally:
        await kari.close()
        await ingrid.close()
    assert all("127.0.0.1" not in url for url in outside)
    assert kari_pg.failed_exchanges() == [] and ingrid_pg.failed_exchanges() == []
