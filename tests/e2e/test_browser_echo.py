"""The Playground's own web UI in Debian's Chromium, against the echo bot."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import loopback_page
from tests.e2e.playground import ARTIFACTS_ROOT, Playground


async def test_type_hei_in_the_web_ui(echo_playground: Playground, browser: Any) -> None:
    pg = echo_playground
    async with loopback_page(browser, pg, height=900) as page:
        await page.goto(pg.base_url + "/", wait_until="load")
        # Opening the page installs the app in Kari's personal chat (installationUpdate
        # and conversationUpdate go to the bot) and shows the personal chat.
        await pg.next_message("echo: installationUpdate add", timeout=20)
        box = page.get_by_role("textbox")
        await box.click()
        await page.keyboard.type("hei")
        await page.keyboard.press("Enter")
        # The text also shows in the chat list preview and the log panel: take the bubble.
        bubble = page.get_by_role("paragraph").filter(has_text=re.compile(r"^echo: hei$"))
        await bubble.wait_for(timeout=15_000)
        reply = await pg.next_message("echo: hei", conversation_id=pg.personal_chat_id)
        assert reply.from_id == pg.bot_id
        await page.get_by_text("Behovsmeldinger").first.wait_for()
        ARTIFACTS_ROOT.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS_ROOT / "echo.png"))

        # A card: its Action.Execute button sends the invoke the harness documents.
        await box.click()
        await page.keyboard.type("card")
        await page.keyboard.press("Enter")
        card = await pg.next_message(lambda m: m.card is not None)
        await page.get_by_role("button", name="Execute").click()
        await page.get_by_text("echo: execute echo.execute", exact=False).first.wait_for(timeout=15_000)
        invoke = next(i for i in pg.log_items if i.get("activityName") == "invoke")
        sent = invoke["request"]["body"]
        assert sent["name"] == "adaptiveCard/action"
        assert sent["replyToId"] == card.message_id
        assert sent["value"] == {
            "action": {
                "type": "Action.Execute",
                "title": "Execute",
                "verb": "echo.execute",
                "data": {"source": "card"},
            }
        }
        await page.screenshot(path=str(pg.artifacts_dir / "card.png"))
