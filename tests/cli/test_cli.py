"""The real `facegan` entry point, end to end, and its user-facing errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from facegan.cli.main import build_parser, main

FACEGAN = [str(Path(sys.executable).with_name("facegan"))]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(FACEGAN + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_prepare_train_sample_end_to_end(tmp_path: Path) -> None:
    done = run_cli("prepare", "builtin:synthetic-faces", "--n", "96", "--res", "32", "--out", "faces", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "faces" / "meta.json").read_text())
    assert meta["count"] == 96 and meta["resolution"] == 32 and meta["label_names"]

    done = run_cli("train", "--data", "faces", "--out", "run", "--ngf", "8", "--ndf", "8", "--batch-size", "16",
                   "--steps", "8", "--sample-every", "4", "--checkpoint-every", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "finished at step 8" in done.stdout
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 8

    done = run_cli("sample", "run", "--n", "9", "--seed", "7", "--out", "a.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_cli("sample", "run/checkpoints/step-00000008.pt", "--n", "9", "--seed", "7", "--out", "b.png", cwd=tmp_path)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with Image.open(tmp_path / "a.png") as grid:
        assert grid.size == (3 * 34 + 2, 3 * 34 + 2)
    done = run_cli("sample", "run", "--n", "3", "--out", "each", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["face-0000.png", "face-0001.png", "face-0002.png"]

    done = run_cli("train", "--resume", "run", "--steps", "10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "finished at step 10" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "missing", "--out", "r"], "dataset missing does not exist"),
        (["train", "--out", "r"], "give --data DIR and --out RUN"),
        (["train", "--data", "x", "--out", "r", "--batch-size", "0"],
         "train.batch_size (--batch-size) must be at least 1, not 0"),
        (["train", "--data", "x", "--out", "r", "--penalty-every", "0"],
         "train.penalty_every (--penalty-every) must be at least 1, not 0"),
        (["train", "--data", "x", "--out", "r", "--lr", "0"], "optim.lr_g (--lr-g) must be greater than 0, not 0"),
        (["train", "--data", "x", "--out", "r", "--label-smoothing", "0.5"],
         "train.label_smoothing (--label-smoothing) must be less than 0.5, not 0.5"),
        (["sample", "nowhere.pt", "--out", "f.png"], "nowhere.pt does not exist"),
        (["sample", "junk.pt", "--out", "f.png"], "not a readable facegan checkpoint"),
        (["train", "--resume", "empty"], "holds no checkpoints"),
        (["prepare", "builtin:nothing", "--out", "d"], "unknown built-in dataset"),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_option_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    done = run_cli("train", "--batch-size", "many", cwd=tmp_path)
    assert done.returncode == 2
    assert "invalid int value" in done.stderr and "Traceback" not in done.stderr


def test_every_option_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"
