"""`facegan prepare` options and its one-line summary; `facegan data info` and `facegan data show`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.cli.main import main
from facegan.data.dataset import PreparedDataset

from .prepare_helpers import LFW_FACES, build_corpus


def test_prepare_prints_one_line_summary_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_corpus(tmp_path / "photos")
    code = main(["prepare", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--res", "16",
                 "--crop", "none", "--workers", "2", "--dedupe", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    assert out.startswith(f"prepared 12 images (16 px × 3 ch) in {tmp_path / 'out'}; skipped 13 (")
    assert "not-an-image 4" in out and "decompression-bomb 1" in out and "skipped.tsv" in out
    assert main(["prepare", str(tmp_path / "photos"), "--out", str(tmp_path / "out")]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err


def test_prepare_channels_limit_and_crop_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(LFW_FACES), "--out", str(tmp_path / "grey"), "--res", "24", "--channels", "1",
                 "--limit", "10", "--crop", "celeba"]) == 0
    assert "prepared 10 images (24 px × 1 ch)" in capsys.readouterr().out
    ds = PreparedDataset.open(tmp_path / "grey")
    assert ds.images.shape == (10, 24, 24, 1) and ds.meta["crop"] == "celeba" and ds.meta["limit"] == 10


def test_data_info_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_corpus(tmp_path / "photos")
    main(["prepare", str(tmp_path / "photos"), "--out", str(tmp_path / "ds"), "--res", "16"])
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "ds"), "--verify"]) == 0
    info = capsys.readouterr().out
    assert "13 × 16×16×3 uint8" in info and "(folder)" in info and "verified" in info
    assert "skipped   12 (not-an-image 4, truncated 3, corrupt 1," in info

    assert main(["data", "show", str(tmp_path / "ds"), "--out", str(tmp_path / "sheet.png"), "--n", "9"]) == 0
    with Image.open(tmp_path / "sheet.png") as sheet:
        # 16-px tiles are enlarged ×4 for viewing: 3 × (64 + 2) + 2.
        assert sheet.size == (200, 200)
        tiles = np.asarray(sheet)
    assert tiles[2:66, 2:66].std() > 0  # real content, not blank

    images = np.load(tmp_path / "ds" / "images.npy", mmap_mode="r+")
    images[0, 0, 0, 0] ^= 0xFF
    del images
    assert main(["data", "info", str(tmp_path / "ds"), "--verify"]) == 2
    assert "does not match the sha256" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "photos")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err
