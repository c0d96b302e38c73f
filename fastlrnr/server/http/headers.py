"""Header values the service reads as numbers."""

from __future__ import annotations


def is_decimal(text: str) -> bool:
    """``text`` is a non-negative integer in ASCII digits (``str.isdigit`` also accepts "²", which
    ``int`` refuses: a header of it was a 500)."""
    return text.isascii() and text.isdigit()
