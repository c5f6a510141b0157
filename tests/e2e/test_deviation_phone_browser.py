"""Issue 11 point 8: every step of the deviation form, and its receipt, in the Playground's web
UI (Debian's Chromium) at a phone's size, 390 × 844 CSS px, filled in and sent by clicking as
a user would. Each step is screenshotted (test-artifacts/e2e/<test>/, kept as artifacts) and
no input or button may be cut off or wider than the screen. `phone_frame` (from the needs
report's phone test) gives the card the width Teams mobile gives it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import loopback_page
from tests.e2e.playground import Playground
from tests.e2e.test_phone_layout_browser import HEIGHT, MARGIN, WIDTH, box, overflow, phone_frame, screens

pytestmark = pytest.mark.asyncio(loop_scope="module")

CUT_OFF_JS = """card => {
  const box = card.getBoundingClientRect();
  const out = [];
  for (const el of card.querySelectorAll('input, textarea, button, [role=combobox], [role=radio]')) {
    const r = el.getBoundingClientRect();
    if (!r.width || getComputedStyle(el).visibility === 'hidden') continue;
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.right > window.innerWidth + 1)
      out.push(`${el.tagName} ${(el.getAttribute('aria-label') || el.innerText || el.title || '').slice(0, 40)}`
               + ` spans ${Math.round(r.left)}–${Math.round(r.right)} px`);
  }
  return out;
}"""


STRETCH_JS = """(card, width) => {
  for (let n = card; n && !n.dataset.phoneFrame; n = n.parentElement)
    Object.assign(n.style, {width: width + 'px', minWidth: width + 'px', maxWidth: width + 'px', flex: '0 0 auto'});
  return card.getBoundingClientRect().width;
}"""


async def cut_off(card: Any) -> list[str]:
    return list(await card.evaluate(CUT_OFF_JS))


async def check_step(card: Any, name: str, artifacts: Path) -> list[str]:
    await card.page.wait_for_timeout(300)  # the card swapped in place is laid out
    try:
        await phone_frame(card)
    except AssertionError:
        # A card swapped in place is drawn content-sized in the frame of the first one: give it
        # the width Teams mobile gives every card (the screen less 16 px on each side).
        width = await card.evaluate(STRETCH_JS, WIDTH - 2 * MARGIN)
        assert abs(width - (WIDTH - 2 * MARGIN)) <= 2, f"the card is {width} px wide"
    shots = await screens(card, artifacts / name)
    assert await overflow(card) == [], f"{await overflow(card)}; see {shots}"
    assert await cut_off(card) == [], f"{await cut_off(card)}; see {shots}"
    return shots


async def test_every_step_of_the_form_fits_a_phone(
    app_playground: Playground, app_browser: Any, e2e_artifacts: Path
) -> None:
    pg = app_playground
    async with loopback_page(app_browser, pg) as page:
        await page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        await page.goto(pg.base_url + "/", wait_until="load")
        await pg.next_message("Innkjøpsassistenten", 20, conversation_id=pg.personal_chat_id)
        await page.get_by_role("button", name="Meld avvik").first.wait_for(timeout=15_000)
        await page.locator('button[title="Hide log panel"]').click()
        await page.locator('button[title="Toggle app bar and conversation window"]').click()

        # -- step 1: what and where ----------------------------------------------------------
        await page.get_by_role("textbox").last.click()
        await page.keyboard.type("avvik")
        await page.keyboard.press("Enter")
        step1 = page.locator(".ac-adaptiveCard").filter(has_text="Steg 1 av 3").last
        await step1.wait_for(timeout=15_000)
        shots = await check_step(step1, "step-1", e2e_artifacts)
        await step1.get_by_label(re.compile("^Leverandørens navn")).fill("Ukjent Bygg AS")
        await step1.get_by_role("combobox", name=re.compile("Hva gjelder avviket")).click()
        await page.get_by_role("option", name="HMS (helse, miljø og sikkerhet)").click()
        severity = step1.get_by_role("radio", name=re.compile("^Høy:"))
        await severity.check()
        radio = await box(severity)
        assert radio["x"] + radio["width"] <= WIDTH, f"the severity choice is cut off; see {shots}"
        await step1.get_by_role("button", name="Neste").click()

        # -- step 2: details -----------------------------------------------------------------
        step2 = page.locator(".ac-adaptiveCard").filter(has_text="Steg 2 av 3").last
        await step2.wait_for(timeout=15_000)
        await check_step(step2, "step-2", e2e_artifacts)
        description = step2.get_by_label(re.compile("^Hva skjedde"))
        await description.click()
        await description.press_sequentially("Stillaset mangler rekkverk mot gaten.")  # a Fluent textarea
        await step2.get_by_label(re.compile("^Hvor skjedde det")).fill("Storgata 5")
        await step2.get_by_role("button", name="Neste").click()

        # -- step 3: photos and files, then send ---------------------------------------------
        step3 = page.locator(".ac-adaptiveCard").filter(has_text="Steg 3 av 3").last
        await step3.wait_for(timeout=15_000)
        shots = await check_step(step3, "step-3", e2e_artifacts)
        send = step3.get_by_role("button", name="Send avviksmeldingen")
        assert await send.is_visible(), f"no send button; see {shots}"
        button = await box(send)
        assert button["height"] >= 28, f"the send button is {button['height']} px tall; see {shots}"
        await send.click()

        receipt = page.locator(".ac-adaptiveCard").filter(has_text="Takk! Avviksmeldingen er sendt.").last
        await receipt.wait_for(timeout=15_000)
        await check_step(receipt, "receipt", e2e_artifacts)
    assert pg.failed_exchanges() == []
