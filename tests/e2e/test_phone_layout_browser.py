"""Issue 9 point 5, measured: the needs-report form and its receipt in the Playground's web UI
(Debian's Chromium) at a phone's size, 390 × 844 CSS px (an iPhone 12–15).

- the form's required part (its top down to the "Flere detaljer" button) is at most two
  phone screens tall; the optional fields are folded until the button is pressed, and what
  is typed there is sent by the card's own submit even when folded again;
- the receipt's first screen shows the lead consequences and "Vis alle regler"; pressing it
  shows the rest;
- nothing in either card is wider than the screen (no horizontal scrolling).

The Playground is a desktop client: its chat pane has a 600 px minimum width, a card is 446
px wide next to an avatar. `phone_frame` gives the card what Teams mobile gives it, the
screen less a 16 px margin on each side (358 px), by freeing those widths along the card's
ancestors; the card itself is drawn by the Playground's renderer unchanged.

Screenshots go under the test's tmp dir; an assertion's message names the file to look at.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from procurement.shared.calendar import OSLO
from tests.e2e.conftest import loopback_page
from tests.e2e.playground import Playground, card_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTH, HEIGHT = 390, 844
MARGIN = 16
SEND = "Send til Innkjøpsseksjonen"
DETAILS = re.compile(r"^Flere detaljer")
SHOW_ALL = re.compile(r"^Vis alle regler \((\d+)\)$")
OPTIONAL_LABELS = ("CPV-kode", "Risiko (valgfritt)", "Opsjoner i måneder")

# Services for 6 million, cleaning: the long list of rules this is about (TED, Doffin, KGV,
# serious-employer and wage conditions, apprentices, lots, climate weight …).
TITLE = "Renhold av tre sykehjem"
NEED = "Daglig renhold av fellesarealer og beboerrom ved tre sykehjem i kommunen."
CPV = "90911200-8"
RISK = "Høy risiko for sosial dumping i bransjen."

PHONE_FRAME_JS = """(card, margin) => {
  // An updated card is drawn in the same bubble: the frame set up for the first one stays.
  let frame = card.closest('[data-phone-frame]');
  const chain = [];
  for (let n = card; n && n !== document.body && n !== frame; n = n.parentElement) {
    if (!frame && n !== card && n.getBoundingClientRect().width <= window.innerWidth) { frame = n; break; }
    chain.push(n);
  }
  for (const n of chain) {
    Object.assign(n.style, {minWidth: '0px', width: 'auto', maxWidth: 'none', flex: '1 1 auto',
                            marginLeft: '0px', marginRight: '0px'});
    if (n === card) continue;
    Object.assign(n.style, {paddingLeft: '0px', paddingRight: '0px', borderLeftWidth: '0px', borderRightWidth: '0px'});
    // The avatar and the sender line beside the bubble: desktop chrome, not on a phone.
    if (chain.includes(n.parentElement)) {
      for (const sib of n.parentElement.children) if (sib !== n) sib.style.display = 'none';
    }
  }
  if (frame) {
    frame.dataset.phoneFrame = '1';
    Object.assign(frame.style, {paddingLeft: margin + 'px', paddingRight: margin + 'px',
                                boxSizing: 'border-box', minWidth: '0px'});
  }
  // The Playground's header is wider than a phone and scrolls the page sideways: undo that.
  for (let n = card; n; n = n.parentElement) n.scrollLeft = 0;
  window.scrollTo(0, window.scrollY);
  return card.getBoundingClientRect().width;
}"""

OVERFLOW_JS = """card => {
  const box = card.getBoundingClientRect();
  const out = [];
  if (card.scrollWidth > card.clientWidth + 1)
    out.push(`card scrolls sideways: ${card.scrollWidth} > ${card.clientWidth}`);
  if (box.left < -1 || box.right > window.innerWidth + 1)
    out.push(`card spans ${box.left}–${box.right} px, the screen 0–${window.innerWidth}`);
  for (const el of card.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > box.right + 1 && getComputedStyle(el).visibility !== 'hidden') {
      out.push(`${el.tagName}.${String(el.className).slice(0, 30)} ends at ${Math.round(r.right)} px: `
               + `${(el.innerText || '').slice(0, 40)}`);
    }
  }
  return out.slice(0, 10);
}"""


def oslo_today() -> date:
    return datetime.now(OSLO).date()


async def phone_frame(card: Any) -> float:
    width = float(await card.evaluate(PHONE_FRAME_JS, MARGIN))
    assert abs(width - (WIDTH - 2 * MARGIN)) <= 2, f"the card is {width} px wide, not {WIDTH - 2 * MARGIN}"
    return width


async def overflow(card: Any) -> list[str]:
    return list(await card.evaluate(OVERFLOW_JS))


async def to_top(card: Any) -> None:
    """Scroll the chat so the card's top is at the top of what the chat pane shows."""
    await card.evaluate(
        "el => { el.scrollIntoView({block: 'start', inline: 'nearest'});"
        " for (let n = el; n; n = n.parentElement) n.scrollLeft = 0; window.scrollTo(0, window.scrollY); }"
    )
    await card.page.wait_for_timeout(200)


async def visible_bottom(card: Any) -> float:
    """Where the chat pane's visible area ends (above the message box), in page px."""
    return float(
        await card.evaluate(
            """el => { for (let n = el.parentElement; n; n = n.parentElement) {
                const o = getComputedStyle(n).overflowY;
                if ((o === 'auto' || o === 'scroll') && n.scrollHeight > n.clientHeight)
                    return Math.min(n.getBoundingClientRect().bottom, window.innerHeight); }
                return window.innerHeight; }"""
        )
    )


async def screens(card: Any, stem: Path, limit: int = 4) -> list[str]:
    """Screenshots of the page, one phone screen at a time from the card's top to its end
    (an element screenshot would be cut off by the chat's scroll pane)."""
    page = card.page
    await to_top(card)
    paths: list[str] = []
    for i in range(limit):
        path = stem.with_name(f"{stem.name}-{i + 1}.png")
        await page.screenshot(path=str(path))
        paths.append(str(path))
        done = await card.evaluate(
            """el => { const end = el.getBoundingClientRect().bottom;
                for (let n = el.parentElement; n; n = n.parentElement) {
                  const o = getComputedStyle(n).overflowY;
                  if ((o === 'auto' || o === 'scroll') && n.scrollHeight > n.clientHeight) {
                    if (end <= n.getBoundingClientRect().bottom) return true;
                    n.scrollTop += n.clientHeight; return false; } }
                return true; }"""
        )
        if done:
            break
        await page.wait_for_timeout(150)
    await to_top(card)
    return paths


async def box(locator: Any) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found, f"{locator} has no box (not drawn)"
    return dict(found)


async def pick_date(page: Any, form: Any, label: str, day: date) -> None:
    """The Fluent date picker: open it, page to the month, click the day."""
    await form.get_by_role("combobox", name=re.compile(re.escape(label))).click()
    name = f"{day.day}, {day.strftime('%B')}, {day.year}"
    for _ in range(24):
        if await page.get_by_role("button", name=name, exact=True).count():
            break
        await page.locator('button[title^="Next month"]').click()
    await page.get_by_role("button", name=name, exact=True).click()


def _rule_texts(card: dict[str, Any], *, hidden: bool) -> list[str]:
    """The consequence texts of the receipt's JSON: the folded ones or the leading ones."""

    def containers(node: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if isinstance(node, dict):
            if node.get("type") == "Container" and node.get("style"):
                out.append(node)
            for value in node.values():
                out += containers(value)
        elif isinstance(node, list):
            for value in node:
                out += containers(value)
        return out

    folded: dict[str, Any] = next((n for n in card["body"] if n.get("id") == "nr_more_rules"), {"items": []})
    rules = containers(folded) if hidden else [c for c in containers(card["body"]) if c not in folded["items"]]
    return [str(c["items"][0]["inlines"][1]["text"]) for c in rules]


async def test_form_and_receipt_fit_a_phone(app_playground: Playground, app_browser: Any, tmp_path: Path) -> None:
    pg = app_playground
    async with loopback_page(app_browser, pg) as page:
        await page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        await page.goto(pg.base_url + "/", wait_until="load")
        await pg.next_message("Innkjøpsassistenten", 20, conversation_id=pg.personal_chat_id)
        await page.get_by_role("button", name="Ny behovsmelding").first.wait_for(timeout=15_000)
        # The Playground's own panels would cover the chat at this width.
        await page.locator('button[title="Hide log panel"]').click()
        await page.locator('button[title="Toggle app bar and conversation window"]').click()

        # -- the form: required part within two screens, the rest folded ----------------------
        await page.get_by_role("textbox").last.click()
        await page.keyboard.type("behovsmelding")
        await page.keyboard.press("Enter")
        form = page.locator(".ac-adaptiveCard").filter(has_text=SEND).last
        await form.wait_for(timeout=15_000)
        await phone_frame(form)
        folded_png = await screens(form, tmp_path / "form-folded")
        toggle = form.get_by_role("button", name=DETAILS)
        assert await toggle.is_visible(), f"no 'Flere detaljer' button; see {folded_png}"
        for label in OPTIONAL_LABELS:
            assert not await form.get_by_text(label).first.is_visible(), f"{label} shown unfolded; see {folded_png}"
        required_part = (await box(toggle))["y"] + (await box(toggle))["height"] - (await box(form))["y"]
        assert required_part <= 2 * HEIGHT, f"required part is {required_part:.0f} px > 2 × {HEIGHT}; see {folded_png}"
        assert await overflow(form) == [], f"{await overflow(form)}; see {folded_png}"

        await form.get_by_label(re.compile(r"^Tittel")).fill(TITLE)
        await form.get_by_label(re.compile("^Behov")).fill(NEED)
        await form.get_by_role("combobox", name=re.compile("Tjenesteområde")).click()
        await page.get_by_role("option", name="Helse og mestring").click()
        await form.get_by_label(re.compile("^Anslått verdi")).fill("6 mill")
        await form.get_by_role("radio", name="Tjenester").check()
        await form.get_by_role("radio", name="Enkeltkontrakt").check()
        await pick_date(page, form, "Ønsket oppstart", oslo_today() + timedelta(days=200))
        await form.get_by_role("spinbutton", name=re.compile("^Varighet")).fill("24")

        # Unfold, fill two optional fields, fold again: they must still be sent.
        await toggle.click()
        cpv = form.get_by_label(re.compile("^CPV-kode"))
        await cpv.wait_for(state="visible", timeout=5_000)
        await cpv.fill(CPV)
        risk = form.get_by_label(re.compile(r"^Risiko"))
        await risk.click()
        await risk.press_sequentially(RISK)  # the Fluent textarea ignores a programmatic fill
        await form.get_by_role("spinbutton", name=re.compile("^Opsjoner")).fill("24")
        open_png = await screens(form, tmp_path / "form-open")
        assert await overflow(form) == [], f"{await overflow(form)}; see {open_png}"
        await toggle.click()
        await cpv.wait_for(state="hidden", timeout=5_000)

        # -- send: the card becomes the receipt -----------------------------------------------
        ref = f"BM-{oslo_today().year}-0001"
        await form.get_by_role("button", name=SEND).click()
        receipt = page.locator(".ac-adaptiveCard").filter(has_text=f"Behovsmelding {ref} er sendt").last
        await receipt.wait_for(timeout=15_000)
        sent = next(i for i in reversed(pg.log_items) if i.get("activityName") == "invoke")
        data = sent["request"]["body"]["value"]["action"]["data"]
        assert data.get("cpv") == CPV and data.get("risk_notes") == RISK, data  # folded, still sent
        receipt_json = (sent.get("response") or {}).get("body", {}).get("value")
        assert isinstance(receipt_json, dict), sent.get("response")
        lead, folded = _rule_texts(receipt_json, hidden=False), _rule_texts(receipt_json, hidden=True)
        assert 2 <= len(lead) <= 3 and len(folded) >= 5, card_text(receipt_json)

        await phone_frame(receipt)
        await to_top(receipt)
        first_png = tmp_path / "receipt-first-screen.png"
        await page.screenshot(path=str(first_png))
        screen_end = await visible_bottom(receipt)
        show_all = receipt.get_by_role("button", name=SHOW_ALL)
        assert await show_all.is_visible(), f"no 'Vis alle regler'; see {first_png}"
        title = await show_all.get_attribute("title") or await show_all.inner_text()
        count = SHOW_ALL.match(title.strip())
        assert count and int(count.group(1)) == len(lead) + len(folded), title
        for text in lead:
            shown = receipt.get_by_text(text[:60], exact=False).first
            assert await shown.is_visible(), f"lead rule not shown: {text[:60]!r}; see {first_png}"
            end = (await box(shown))["y"] + (await box(shown))["height"]
            assert end <= screen_end, f"lead rule ends at {end:.0f} px, the screen at {screen_end:.0f}; see {first_png}"
        button_end = (await box(show_all))["y"] + (await box(show_all))["height"]
        assert button_end <= screen_end, f"'Vis alle regler' at {button_end:.0f} px > {screen_end:.0f}; see {first_png}"
        for text in folded:
            assert not await receipt.get_by_text(text[:60], exact=False).first.is_visible(), f"{text[:60]!r} unfolded"
        assert await overflow(receipt) == [], f"{await overflow(receipt)}; see {first_png}"

        # -- "Vis alle regler" shows the rest -------------------------------------------------
        await show_all.click()
        for text in folded:
            await receipt.get_by_text(text[:60], exact=False).first.wait_for(state="visible", timeout=5_000)
        all_png = await screens(receipt, tmp_path / "receipt-all")
        assert await overflow(receipt) == [], f"{await overflow(receipt)}; see {all_png}"
    assert pg.failed_exchanges() == []
