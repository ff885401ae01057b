"""A family or a metric registered in one place appears everywhere: `--model`, its --flags, `facegan eval
--metrics`, compare and the report (issue 15: adding one is one module plus one registry line)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegan.cli.main import build_parser, main
from facegan.cli.train import overrides_from_args
from facegan.config import RunConfig
from facegan.experiments.compare import compare
from facegan.metrics.metric import Metric, ScoreContext
from facegan.metrics.registry import METRICS
from facegan.models import FAMILIES, dcgan
from facegan.models.family import Family, option
from facegan.report import build_report
from facegan.training.configure import config_for_data
from facegan.training.loop import train


@dataclass
class TinyOptions:
    widths: list[int] = option([8, 16], "the widths of the stages", minimum=1)
    blocks: int = option(1, "blocks per stage", flag="--tiny-blocks")


@pytest.fixture
def tiny_family(monkeypatch: pytest.MonkeyPatch) -> Family:
    """A family registered at run time (DCGAN's networks under another name, with options of its own)."""
    family = Family("tinyfam", dcgan.build_generator, dcgan.build_discriminator, options=TinyOptions,
                    presets={"tinyfam-small": {"model": {"nz": 8, "ngf": 8, "ndf": 8}}})
    monkeypatch.setitem(FAMILIES, family.name, family)
    return family


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, Any]:
    return {"mean_gap": abs(float(fakes.mean()) - float(reals.mean()))}


@pytest.fixture
def gap_metric(monkeypatch: pytest.MonkeyPatch) -> Metric:
    """A metric registered at run time: the gap between the mean pixel values of the two sets."""
    metric = Metric("gap", key="mean_gap", title="mean gap", description="gap of the mean pixel values",
                    score=_score, summary=lambda result, label: f"{label}: {result['mean_gap']:.3f}")
    monkeypatch.setitem(METRICS, metric.name, metric)
    return metric


def test_a_registered_family_is_a_model_choice_with_its_flags(tiny_family: Family, tiny_dataset: Path,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"),
                                      "--model", "tinyfam-small", "--widths", "4,8", "--tiny-blocks", "2"])
    config = config_for_data(args.model, args.data, overrides_from_args(args))
    assert config.model.family == "tinyfam" and config.model.options == {"widths": [4, 8], "blocks": 2}
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # plain JSON round-trip
    config.train.steps, config.train.batch_size, config.train.device = 2, 16, "cpu"
    assert train(config, tmp_path / "run", show_progress=False).step == 2
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "tinyfam-small" in capsys.readouterr().out
    assert main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "x"), "--tiny-blocks", "2"]) == 2
    assert "--tiny-blocks is an option of the tinyfam model, not dcgan" in capsys.readouterr().err


def test_a_registered_metric_is_evaluated_compared_and_reported(gap_metric: Metric, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    from factories import blob_images

    for name, seed in (("real", 0), ("fake", 1)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(blob_images(8, 32, 3, seed=seed)):
            Image.fromarray(image).save(tmp_path / name / f"{i}.png")
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "gap (gap of the mean pixel values)" in " ".join(capsys.readouterr().out.split())
    out = tmp_path / "result.json"
    assert main(["eval", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--metrics", "gap",
                 "--n", "8", "--out", str(out), "--no-progress"]) == 0
    assert "gap_8: " in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["metrics"] == ["gap"] and result["results"] == {"gap_8": result["mean_gap"]}

    run = tmp_path / "run"  # a run with an evaluation holding the new metric
    (run / "eval").mkdir(parents=True)
    RunConfig().save(run / "config.json")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 4, "epoch": 0, "images_seen": 64, "loss_d": 1.0,
                                                   "loss_g": 1.0, "elapsed_s": 2.0}) + "\n")
    (run / "eval" / "00000004.json").write_text(json.dumps({**result, "step": 4}))
    paths = compare([run], tmp_path / "cmp")
    header = next(csv.reader(paths["csv"].read_text().splitlines()))
    assert "mean gap (gap_8)" in header
    index = build_report(run)
    assert "gap_8" in index.read_text()
