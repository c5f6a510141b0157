"""Welcome, help, language choice, and honest 'coming soon' answers."""

from __future__ import annotations

from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor

from .base import Reply

# Workflows whose buttons exist but which are not built yet: they say so plainly.
COMING: dict[str, str] = {}

# Buttons on the welcome card, in order.
WELCOME_ACTIONS: list[tuple[str, str]] = [
    ("action_needs_report", "needs_report.open"),
    ("action_my_needs_reports", "needs_report.mine"),
    ("action_my_contracts", "contracts.mine"),
    ("action_deviation", "deviation.open"),
]


def welcome_card(lang: str) -> dict[str, Any]:
    actions = [{"title": text(lang, key), "verb": verb, "data": {}} for key, verb in WELCOME_ACTIONS]
    coming = [text(lang, "coming_line", feature=text(lang, key)) for key in COMING.values()]
    return render_card("welcome", lang, actions=actions, coming=coming)


def help_reply(actor: Actor) -> Reply:
    return Reply(card=welcome_card(actor.lang))


def coming_reply(actor: Actor, verb: str) -> Reply:
    feature = text(actor.lang, COMING[verb])
    return Reply(
        card=render_card(
            "notice",
            actor.lang,
            title=text(actor.lang, "coming_title"),
            body=text(actor.lang, "coming_body", feature=feature),
            actions=[{"title": text(actor.lang, "action_help"), "verb": "home.help", "data": {}}],
        )
    )


def language_changed_reply(lang: str) -> Reply:
    notice = render_card("notice", lang, title=text(lang, "language_set_title"), body=text(lang, "language_set_body"))
    return Reply(card=notice, followups=[welcome_card(lang)])


def notice(lang: str, title_key: str, body: str) -> Reply:
    return Reply(card=render_card("notice", lang, title=text(lang, title_key), body=body))


def unknown_action_reply(actor: Actor) -> Reply:
    return notice(actor.lang, "unknown_action_title", text(actor.lang, "unknown_action_body"))


def not_allowed_reply(actor: Actor, role_key: str) -> Reply:
    return notice(
        actor.lang,
        "not_allowed_title",
        text(actor.lang, "not_allowed_body", role=text(actor.lang, role_key)),
    )


def personal_only_reply(actor: Actor, bot_id: str = "") -> Reply:
    """A personal command in a group chat or channel: say where to continue, nothing more."""
    actions: list[dict[str, Any]] = []
    if bot_id:
        # Teams' deep link to the personal chat with the bot.
        actions.append(
            {
                "title": text(actor.lang, "action_open_personal_chat"),
                "url": f"https://teams.microsoft.com/l/chat/0/0?users={bot_id}",
            }
        )
    return Reply(
        card=render_card(
            "notice",
            actor.lang,
            title=text(actor.lang, "personal_only_title"),
            body=text(actor.lang, "personal_only_body"),
            actions=actions,
        )
    )


def not_found_reply(actor: Actor) -> Reply:
    """The same answer whether the record is missing or hidden from this actor."""
    return notice(actor.lang, "not_found_title", text(actor.lang, "not_found_body"))


def channel_welcome_card(lang: str) -> dict[str, Any]:
    return render_card(
        "notice", lang, title=text(lang, "channel_welcome_title"), body=text(lang, "channel_welcome_body")
    )
