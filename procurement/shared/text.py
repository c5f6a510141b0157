"""Text from users, made storable."""

from __future__ import annotations

import re

# Lone surrogates can't be encoded for any database; NUL and the other C0 controls (but tab
# and line breaks) can't be stored in PostgreSQL text and have no business in a form.
UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f]")


def clean_text(value: str) -> str:
    return UNSTORABLE.sub("", value)
