"""The real bot in the Playground's own web UI (Debian's Chromium): the welcome card and
the needs-report form render as a user sees them. Screenshots in test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import loopback_page
from tests.e2e.playground import ARTIFACTS_ROOT, Playground, card_inputs

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_welcome_card_and_needs_report_form_in_the_web_ui(app_playground: Playground, app_browser: Any) -> None:
    pg = app_playground
    async with loopback_page(app_browser, pg) as page:
        await page.goto(pg.base_url + "/", wait_until="load")
        # Opening the page installs the app in Kari's chat: the bot greets her.
        await pg.next_message("Innkjøpsassistenten", 20, conversation_id=pg.personal_chat_id)
        buttons = page.get_by_role("button", name="Ny behovsmelding")
        await buttons.first.wait_for(timeout=15_000)
        before = await buttons.count()

        box = page.get_by_role("textbox")
        await box.click()
        await page.keyboard.type("hjelp")
        await page.keyboard.press("Enter")
        await pg.next_message("Innkjøpsassistenten", conversation_id=pg.personal_chat_id)
        # The new card is drawn: one more "Ny behovsmelding" button than before.
        for _ in range(100):
            if await buttons.count() > before:
                break
            await page.wait_for_timeout(100)
        assert await buttons.count() == before + 1
        card = page.locator(".ac-adaptiveCard").last
        await card.wait_for()
        card_text = await card.inner_text()
        assert "Innkjøpsassistenten" in card_text
        assert "behovsmeldinger til Innkjøpsseksjonen" in card_text
        for title in ("Ny behovsmelding", "Mine behovsmeldinger", "Mine kontrakter", "Meld avvik"):
            button = card.get_by_role("button", name=title)
            assert await button.is_visible(), title
        ARTIFACTS_ROOT.mkdir(exist_ok=True)
        await card.scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS_ROOT / "welcome.png"))

        # "Ny behovsmelding" (Action.Execute): the card turns into the form in place.
        await card.get_by_role("button", name="Ny behovsmelding").click()
        form = page.locator(".ac-adaptiveCard").filter(has_text="Send til Innkjøpsseksjonen")
        await form.last.wait_for(timeout=15_000)
        form_text = await form.last.inner_text()
        assert re.search(r"Ny behovsmelding", form_text)
        assert "Tittel" in form_text
        assert "Anslått verdi i kroner" in form_text
        assert await form.last.get_by_role("button", name="Lagre utkast").is_visible()
        invoke = next(item for item in reversed(pg.log_items) if item.get("activityName") == "invoke")
        assert invoke["request"]["body"]["value"]["action"]["verb"] == "needs_report.open"
        value = (invoke.get("response") or {}).get("body") or {}
        assert value.get("type") == "application/vnd.microsoft.card.adaptive"
        assert any(i.get("id") == "estimated_value" for i in card_inputs(value.get("value")))
        await form.last.locator("input").first.scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS_ROOT / "needs_report_form.png"))
    assert pg.failed_exchanges() == []
