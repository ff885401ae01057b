"""`facegan eval` and `facegan train --eval-every` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.cli.main import main


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


@pytest.mark.slow
def test_eval_a_run_and_two_folders(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run_copy), "--n", "32", "--metrics", "swd,faces,memo", "--device", "cpu",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "32 fakes, 32 reals" in out and "swd_32:" in out and "memorisation:" in out
    written = sorted((run_copy / "eval").glob("*.json"))
    assert len(written) == 1 and written[0].stem.isdigit()
    data = json.loads(written[0].read_text())
    assert data["n"] == 32 and data["swd"] > 0 and "faces_ratio" in data

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    assert main(["eval", "--real", str(tmp_path / "a"), "--fake", str(tmp_path / "b"), "--metrics", "swd",
                 "--out", str(tmp_path / "cmp.json"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 12 and json.loads((tmp_path / "cmp.json").read_text())["swd"] == printed["swd"]


@pytest.mark.slow
def test_train_with_eval_every(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--ngf", "8", "--ndf", "8",
            "--nz", "16", "--batch-size", "16", "--steps", "4", "--eval-every", "2", "--eval-n", "16",
            "--device", "cpu", "--no-progress", "--no-report"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "run" / "eval").glob("*.json")) == ["00000002.json", "00000004.json"]
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval"], "give a RUN to evaluate, or --real DIR and --fake DIR"),
        (["eval", "--real", "x"], "give a RUN to evaluate"),
        (["eval", "run", "--fake", "x"], "--fake is for comparing two folders"),
        (["eval", "run", "--n", "1"], "--n must be at least 2"),
        (["eval", "--real", "a", "--fake", "b", "--metrics", "swd,bogus"], "unknown metric(s) bogus"),
        (["eval", "--real", "a", "--fake", "b", "--metrics", "fid"], "--inception-weights PATH"),
        (["eval", "--real", "nowhere", "--fake", "b", "--metrics", "swd"], "nowhere does not exist"),
        (["eval", "nowhere", "--metrics", "swd"], "nowhere does not exist"),
        (["train", "--data", "d", "--out", "r", "--eval-every", "0"], "--eval-every must be at least 1"),
    ],
)
def test_eval_user_errors(args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACEGAN_INCEPTION_WEIGHTS", raising=False)
    assert main(args) == 2
    assert message in capsys.readouterr().err
