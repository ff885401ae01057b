"""build_report: the files of a report from a real tiny run and from synthetic logs, and its use in training."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.report import build, build_report, report_hook
from facegan.report.animation import ffmpeg_available, sample_grids

from .conftest import TINY_STEPS, synthetic_record
from .helpers import assert_links_exist, image_info, page_links


@pytest.mark.slow  # trains a tiny run
def test_tiny_run_report_has_every_part_as_valid_files(tiny_run: Path, tiny_report: Path) -> None:
    assert tiny_report == tiny_run / "report" / "index.html"
    out = tiny_report.parent
    linked = set(assert_links_exist(tiny_report))
    expected_png = {"losses.png", "losses-log.png", "scores.png", "speed.png", "real.png", "fake.png",
                    "latest.png", "interpolation.png", "eval.png"}
    expected_gif = {"progress.gif", "interpolation.gif"}
    assert expected_png | expected_gif <= linked
    for name in expected_png:
        assert image_info(out / name)[0::2] == ("PNG", 1), name
    grids = len(sample_grids(tiny_run))
    assert grids == 3  # steps 4, 8, 12
    assert image_info(out / "progress.gif")[0::2] == ("GIF", grids)
    assert image_info(out / "interpolation.gif")[0::2] == ("GIF", 2 * build.WALK_STEPS - 2)
    if ffmpeg_available():  # `pip install facegan[video]` (in the dev extras): the same grids as an MP4
        import imageio_ffmpeg

        assert "progress.mp4" in linked
        assert imageio_ffmpeg.count_frames_and_secs(str(out / "progress.mp4"))[0] == grids + 4  # last one held
    else:
        assert not (out / "progress.mp4").exists()
    # real and fake are 8 × 8 grids of 32-px faces
    assert image_info(out / "real.png")[1] == image_info(out / "fake.png")[1] == (8 * 34 + 2, 8 * 34 + 2)
    assert set(p.name for p in out.iterdir()) == linked | {"index.html"}  # nothing unlinked, nothing stray


def test_tiny_run_report_page_content(tiny_report: Path) -> None:
    html = tiny_report.read_text(encoding="utf-8")
    for text in ("Training curves", "Real vs fake", "Progress on fixed noise", "Latent interpolation",
                 "Configuration: model", "<td>ngf</td>", "Configuration: train", "Dataset", "test:blobs",
                 f"G at step {TINY_STEPS}", "swd_10k", "fid_1k", "300.5", "step-00000006.json"):
        assert text in html, text
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    _, images = page_links(tiny_report)
    assert len(images) == len(set(images))


@pytest.mark.slow  # two full builds
def test_rebuilding_replaces_the_old_report_whole(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    build_report(tiny_run, out)
    (out / "stale.png").write_bytes(b"old")
    build_report(tiny_run, out)
    assert not (out / "stale.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_out_folder_that_is_not_a_report_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FaceganError, match="not a facegan report"):
        build_report(tiny_run, tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_not_a_run_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(FaceganError, match="not a facegan run"):
        build_report(tmp_path)
    with pytest.raises(FaceganError, match="not a directory"):
        build_report(tmp_path / "missing")


def test_empty_metrics_gives_a_page_that_says_so(synthetic_run, caplog: pytest.LogCaptureFixture) -> None:
    run = synthetic_run(None)
    with caplog.at_level(logging.WARNING, logger="facegan.report"):
        index = build_report(run)
    html = index.read_text(encoding="utf-8")
    assert "metrics.jsonl is empty or missing" in html
    assert "no checkpoint yet" in html and "names no dataset" in html
    assert not (index.parent / "losses.png").exists()
    assert_links_exist(index)
    assert any("metrics.jsonl is empty" in r.getMessage() for r in caplog.records)


def test_all_nan_losses_are_reported_not_plotted_as_nothing(synthetic_run) -> None:
    records = [synthetic_record(s, loss_d=None, loss_g=None) for s in range(1, 31)]
    index = build_report(synthetic_run(records))
    html = index.read_text(encoding="utf-8")
    assert "Every logged loss is non-finite" in html
    assert image_info(index.parent / "losses.png")[0] == "PNG"


def test_some_nan_losses_and_extra_scalars(synthetic_run, tmp_path: Path) -> None:
    records = [synthetic_record(s, loss_d=None if s in (40, 41) else 1.0, k_t=s / 100, M_global=1 / s,
                                healthy=s != 50, comment="text is ignored") for s in range(1, 101)]
    run = synthetic_run(records, data_path=str(tmp_path / "gone"))
    (run / "eval").mkdir()
    (run / "eval" / "a.json").write_text(json.dumps({"step": 50, "swd_10k": 0.5, "label": "x"}))
    (run / "eval" / "broken.json").write_text("{not json")
    index = build_report(run)
    html = index.read_text(encoding="utf-8")
    assert "2 of 100 logged steps have a non-finite loss" in html and "first at step 40" in html
    assert "Other scalars in metrics.jsonl: k_t, M_global, healthy." in html
    assert "is no longer there" in html  # the dataset was deleted: said, not crashed
    assert "broken.json could not be read" in html and "swd_10k" in html
    assert not (index.parent / "eval.png").exists()  # one evaluation: a table, no plot
    assert image_info(index.parent / "scalars.png")[0] == "PNG"
    assert_links_exist(index)


def test_dataset_gone_after_training(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("report"))
    config = json.loads((run / "config.json").read_text())
    config["data"]["path"] = str(tmp_path / "deleted-dataset")
    (run / "config.json").write_text(json.dumps(config))
    index = build_report(run)
    html = index.read_text(encoding="utf-8")
    assert "is no longer there, so no real images are shown" in html
    assert (index.parent / "fake.png").is_file() and not (index.parent / "real.png").exists()


def test_report_hook_builds_on_its_steps_and_never_raises(tmp_path: Path, monkeypatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    built = []
    monkeypatch.setattr(build, "build_report", lambda run_dir, out_dir=None, device="cpu": built.append(run_dir))
    hook = report_hook(5)
    for step in range(1, 13):
        hook(SimpleNamespace(step=step, run_dir=tmp_path))
    assert built == [tmp_path, tmp_path]  # steps 5 and 10

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "build_report", fail)
    with caplog.at_level(logging.WARNING, logger="facegan.report"):
        hook(SimpleNamespace(step=5, run_dir=tmp_path))
    assert "could not build the report" in caplog.text and "disk full" in caplog.text
    with pytest.raises(FaceganError):
        report_hook(0)


@pytest.mark.slow  # trains a tiny run
def test_train_cli_reports_every_n_steps_and_at_the_end(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = build.build_report

    def counting(run_dir, out_dir=None, device="cpu"):
        calls.append(len(sample_grids(run_dir)))
        return real(run_dir, out_dir, device=device) if len(calls) == 3 else None

    monkeypatch.setattr(build, "build_report", counting)
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--out", str(run), "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--batch-size", "16", "--steps", "4", "--log-every", "1", "--sample-every", "1", "--device", "cpu",
            "--report-every", "2", "--no-progress"]
    assert main(args) == 0
    assert calls == [2, 4, 4]  # at step 2 (two grids so far), step 4, and once more when training ended
    assert image_info(run / "report" / "progress.gif")[0::2] == ("GIF", 4)


@pytest.mark.slow  # trains a tiny run
def test_a_failing_report_never_fails_training(tiny_dataset: Path, tmp_path: Path, monkeypatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(build, "build_report", fail)
    args = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--ngf", "8", "--ndf", "8",
            "--batch-size", "16", "--steps", "2", "--device", "cpu", "--report-every", "1", "--no-progress"]
    assert main(args) == 0  # the CLI logs to stderr
    assert capsys.readouterr().err.count("could not build the report") == 3  # steps 1 and 2, and the end
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_report_cli(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "page"
    assert main(["report", str(tiny_run), "--out", str(out)]) == 0
    assert f"report written to {out / 'index.html'}" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
