"""Text from users, made storable, and folded for matching."""

from __future__ import annotations

import re
import unicodedata

# Lone surrogates can't be encoded for any database; NUL and the other C0 controls (but tab
# and line breaks) can't be stored in PostgreSQL text and have no business in a form.
UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f]")


def clean_text(value: str) -> str:
    return UNSTORABLE.sub("", value)


def fold(text: str) -> str:
    """Case and æ/ø/å folded away, for matching what people type: "Leverandør" ~ "LEVERANDOR"."""
    text = unicodedata.normalize("NFC", text).casefold()
    return text.replace("æ", "ae").replace("ø", "o").replace("å", "a").replace("é", "e")
