"""Small facts about strings shared by the command line, tables and pages."""

from __future__ import annotations


def is_number(text: str) -> bool:
    """True if `text` reads as a number ("3", "-0.5", "1e3", "nan", "12,345")."""
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True
