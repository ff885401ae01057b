"""What a notebook shows inline (Png, FaceGrid) and the one progress bar, which is a widget in a notebook."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tqdm import std

from facegan.errors import FaceganError
from facegan.utils import progress
from facegan.utils.display import FaceGrid, Png


def test_a_face_grid_shows_enlarged_and_saves_at_its_own_size(tmp_path: Path) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    grid = FaceGrid(faces, nrow=3)
    assert len(grid) == 3 and np.asarray(grid) is grid.images and "3 faces of 16×16×1" in repr(grid)
    with Image.open(io.BytesIO(grid._repr_png_())) as shown:
        assert shown.size == (8 * 56, 8 * 20) and shown.mode == "L"  # 56 px wide → ×8, the largest factor
    with Image.open(grid.save(tmp_path / "g.png")) as saved:
        assert saved.size == (56, 20)
    np.testing.assert_array_equal(np.asarray(FaceGrid(faces[0])), faces[:1])  # one face is a grid of one
    with pytest.raises(FaceganError, match="faces must be uint8"):
        FaceGrid(np.zeros((2, 8, 8, 4), np.uint8))


def test_a_png_is_its_bytes(tmp_path: Path) -> None:
    png = Png(b"\x89PNG...", name="losses")
    assert png._repr_png_() == b"\x89PNG..." and "losses" in repr(png)
    assert png.save(tmp_path / "p.png").read_bytes() == b"\x89PNG..."


def test_the_bar_is_a_widget_in_a_notebook_and_hidden_in_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not progress.in_notebook()  # pytest is no notebook: tqdm.auto gave the text bar
    with progress.progress_bar(3, "x") as bar:  # stderr is captured, not a terminal: hidden
        assert bar.disable

    class NotebookBar(std.tqdm):  # stands for tqdm.notebook's bar, which tqdm.auto picks under an IPython kernel
        __module__ = "tqdm.notebook"

    monkeypatch.setattr(progress, "tqdm", NotebookBar)
    assert progress.in_notebook()
    with progress.progress_bar(3, "x") as bar:
        assert isinstance(bar, NotebookBar) and not bar.disable
    with progress.progress_bar(3, "x", enabled=False) as bar:
        assert bar.disable
