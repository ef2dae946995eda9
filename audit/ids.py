"""Ids typed into URLs and forms: ASCII digits only, and few enough of them to be an id."""

from __future__ import annotations

# A bigint has 19 digits at most; 18 keeps every accepted value below its maximum.
ID_DIGITS = 18


def id_from_text(value: str | None, *, max_digits: int = ID_DIGITS) -> int | None:
    """The number `value` spells in ASCII digits, or None.

    `str.isdigit` alone is not enough: "³" and "١" are digits to it, and int() refuses the first
    and reads the second as 1; thousands of digits make int() refuse too.
    """
    if not value or len(value) > max_digits or not (value.isascii() and value.isdigit()):
        return None
    return int(value)
