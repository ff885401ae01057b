"""The one progress-bar helper (tqdm on a terminal, silent otherwise)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, initial: int = 0, unit: str = "it", enabled: bool = True) -> tqdm:
    """A progress bar on stderr; hidden when stderr is not a terminal or `enabled` is False."""
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        unit=unit,
        dynamic_ncols=True,
        mininterval=0.5,
        file=sys.stderr,
        disable=(not enabled) or (not sys.stderr.isatty()),
        leave=True,
    )
