"""The one progress-bar helper: tqdm.auto, so a terminal gets a text bar and a Jupyter notebook a widget bar."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def in_notebook() -> bool:
    """Whether tqdm.auto chose its notebook bar (an IPython kernel with ipywidgets: Jupyter, Colab, VS Code)."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def progress_bar(total: int | None, desc: str, initial: int = 0, unit: str = "it", enabled: bool = True) -> tqdm:
    """A progress bar: a widget in a notebook, else on stderr; hidden when `enabled` is False or, outside a
    notebook, when stderr is not a terminal (logs and CI output stay free of bar frames)."""
    shown = enabled and (in_notebook() or sys.stderr.isatty())
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        unit=unit,
        dynamic_ncols=True,
        mininterval=0.5,
        file=sys.stderr,
        disable=not shown,
        leave=True,
    )
