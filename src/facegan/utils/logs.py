"""Logging set-up for the command line."""

from __future__ import annotations

import logging


def setup_logging(verbose: bool = False) -> None:
    """Log INFO (or DEBUG) messages to stderr as `facegan: message`."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s" if verbose else "facegan: %(message)s",
        force=True,
    )
