"""`facegan sweep` and `facegan compare`: grids, plans, runs, and the comparison files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.experiments.compare import compare, summarise, varying_settings
from facegan.experiments.sweep import (
    _train_one,
    combinations,
    overrides_for,
    parse_grid,
    plan_sweep,
    run_name,
    run_sweep,
    sweep,
)
from facegan.training.loop import train

SEED_004 = ["beta1=0.2,0.5", "slope=0.06,0.2", "batch=32,128", "lr=1e-4,2e-4"]
TINY = ["model.nz=8", "model.ngf=8", "model.ndf=8", "train.device=cpu", "train.log_every=1",
        "train.sample_every=100", "train.checkpoint_every=100"]


def test_seed_004_grid_has_16_distinct_runs() -> None:
    grid = parse_grid(SEED_004)
    combos = combinations(grid)
    assert len(combos) == 16
    assert len({run_name(c) for c in combos}) == 16
    assert combos[0] == {"beta1": "0.2", "slope": "0.06", "batch": "32", "lr": "1e-4"}
    assert run_name(combos[-1]) == "beta1-0.5_slope-0.2_batch-128_lr-2e-4"
    assert overrides_for(combos[-1]) == {
        "optim": {"beta1": 0.5, "lr_g": 2e-4, "lr_d": 2e-4}, "model": {"leaky_slope": 0.2},
        "train": {"batch_size": 128},
    }


def test_keys_by_section_field_and_unique_name() -> None:
    assert overrides_for({"model.ngf": "16", "ema_decay": "0.9", "spectral_norm": "true"}) == {
        "model": {"ngf": 16, "spectral_norm": True}, "train": {"ema_decay": 0.9}}


@pytest.mark.parametrize(("items", "message"), [
    (["beta1"], "KEY=V1,V2"),
    (["beta1="], "KEY=V1,V2"),
    (["momentum=0.9"], "unknown grid key"),
    (["beta1=0.2", "beta1=0.5"], "twice"),
])
def test_bad_grids_are_user_errors(items: list[str], message: str) -> None:
    with pytest.raises(FaceganError, match=message):
        parse_grid(items)


def test_values_must_fit_the_field() -> None:
    with pytest.raises(FaceganError, match="needs a int"):
        overrides_for({"batch": "big"})


def test_list_values_take_slash_separated_items(tiny_dataset: Path) -> None:
    grid = parse_grid(["widths=32/16/8/8,16/16/8/8", "schedule.lr=1/0.25,1/1"])
    combos = combinations(grid)
    assert len(combos) == 4 and run_name(combos[0]) == "widths-32_16_8_8_schedule.lr-1_0.25"
    assert overrides_for(combos[0]) == {"model": {"widths": [32, 16, 8, 8]}, "schedule": {"lr": [1.0, 0.25]}}
    planned = plan_sweep(grid, tiny_dataset, preset="r3gan-cpu32", steps=2)
    assert [(p.config.model.options["widths"], p.config.schedule.lr) for p in planned] == [
        ([32, 16, 8, 8], [1.0, 0.25]), ([32, 16, 8, 8], [1.0, 1.0]),
        ([16, 16, 8, 8], [1.0, 0.25]), ([16, 16, 8, 8], [1.0, 1.0])]
    with pytest.raises(FaceganError, match="list of numbers separated by /"):
        overrides_for({"schedule.lr": "1;0.25"})


def test_plan_checks_every_config_first(tiny_dataset: Path) -> None:
    planned = plan_sweep(parse_grid(["beta1=0.2,0.5"]), tiny_dataset, budget_minutes=0.5)
    assert [p.config.optim.beta1 for p in planned] == [0.2, 0.5]
    assert all(p.config.train.time_budget_s == 30.0 for p in planned)
    with pytest.raises(FaceganError, match="needs a loss with labels"):
        plan_sweep(parse_grid(["loss=bce,hinge", "train.label_smoothing=0.1"]), tiny_dataset)


@pytest.mark.slow  # two runs, their evaluation (face detection) and the comparison plot: ~5-10 s
def test_sweep_trains_compares_and_continues(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = sweep(["beta1=0.2,0.5", "slope=0.06"], tiny_dataset, out, train, fixed_items=[*TINY, "batch=16"], steps=3,
                   eval_n=16)
    assert [p.name for p in result.runs] == ["beta1-0.2_slope-0.06", "beta1-0.5_slope-0.06"]
    for run in result.runs:
        config = json.loads((run / "config.json").read_text())
        assert config["model"]["leaky_slope"] == 0.06 and config["train"]["steps"] == 3
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["grid"] == {"beta1": ["0.2", "0.5"], "slope": ["0.06"]} and len(plan["runs"]) == 2
    md = (out / "compare.md").read_text()
    assert "| optim.beta1 |" in md.splitlines()[2] or "optim.beta1" in md
    rows = list(csv.reader((out / "compare.csv").read_text().splitlines()))
    assert rows[0][:2] == ["run", "optim.beta1"] and [r[1] for r in rows[1:]] == ["0.2", "0.5"]
    assert all(r[rows[0].index("steps")] == "3" for r in rows[1:])
    assert all(float(r[rows[0].index("images/s")]) > 0 for r in rows[1:])
    for run in result.runs:  # evaluated after training: SWD and face rate of 16 fakes, in the table
        evaluation = json.loads((run / "eval" / "00000003.json").read_text())
        assert evaluation["n"] == 16 and evaluation["swd"] > 0 and 0 <= evaluation["faces_fake"] <= 1
    assert "face rate (fakes) (faces_16)" in rows[0]  # a column per metric, labelled with its sample count
    assert [float(r[rows[0].index("SWD ×1e3 (swd_16)")]) for r in rows[1:]] == pytest.approx(
        [json.loads((run / "eval" / "00000003.json").read_text())["swd"] for run in result.runs], rel=1e-3)
    html = (out / "compare.html").read_text()
    assert "compare-losses.png" in html and "beta1-0.5_slope-0.06" in html
    assert (out / "compare-losses.png").stat().st_size > 1000
    # A second call keeps the finished runs (no retraining: their metrics are untouched).
    before = (result.runs[0] / "metrics.jsonl").stat().st_mtime_ns
    sweep(["beta1=0.2,0.5", "slope=0.06"], tiny_dataset, out, train, fixed_items=[*TINY, "batch=16"], steps=3,
          eval_n=16)
    assert (result.runs[0] / "metrics.jsonl").stat().st_mtime_ns == before


def test_compare_reads_eval_files_and_what_differs(tiny_dataset: Path, tmp_path: Path) -> None:
    planned = plan_sweep(parse_grid(["lr=1e-4,2e-4"]), tiny_dataset, fixed=overrides_for(
        {"model.nz": "8", "model.ngf": "8", "model.ndf": "8", "batch": "16", "train.device": "cpu"}), steps=2)
    result = run_sweep(planned, tmp_path / "s", train, compare_runs=False)
    (result.runs[1] / "eval").mkdir()
    (result.runs[1] / "eval" / "00000001.json").write_text(json.dumps({"step": 1, "swd": 99.0}))
    (result.runs[1] / "eval" / "00000002.json").write_text(json.dumps({"step": 2, "swd": 12.5, "faces_fake": 0.25}))
    summaries = [summarise(r) for r in result.runs]
    assert varying_settings(summaries) == ["optim.lr_g", "optim.lr_d"]
    assert summaries[0].swd is None and summaries[1].swd == 12.5 and summaries[1].face_rate == 0.25
    assert summaries[1].eval_step == 2 and summaries[1].images_seen == 32
    paths = compare([tmp_path / "s"], tmp_path / "cmp")  # a sweep directory stands for its runs
    table = paths["md"].read_text()
    assert "12.5" in table and "0.25" in table and table.count("\n| lr-") == 2


def test_cli_sweep_and_compare(tiny_dataset: Path, tmp_path: Path) -> None:
    assert main(["sweep", "--data", str(tiny_dataset), "--out", str(tmp_path / "s"), "--grid", "lr=1e-4",
                 "--set", *TINY, "batch=16", "--steps", "2", "--eval-n", "0"]) == 0
    assert (tmp_path / "s" / "lr-1e-4" / "checkpoints").is_dir()
    assert main(["compare", str(tmp_path / "s" / "lr-1e-4"), "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "compare.csv").exists()
    assert main(["compare", str(tmp_path / "nothing"), "--out", str(tmp_path / "c")]) == 2


def test_worker_of_parallel_sweeps_trains_one_run(tiny_dataset: Path, tmp_path: Path) -> None:
    # `--jobs N` runs this function in N spawned processes; here it runs in-process (spawning costs ~10 s).
    planned = plan_sweep(parse_grid(["beta1=0.2"]), tiny_dataset, fixed=overrides_for(
        {"model.nz": "8", "model.ngf": "8", "model.ndf": "8", "batch": "16", "train.device": "cpu"}), steps=2)
    assert _train_one(train, planned[0].config.to_dict(), str(tmp_path / "run"), threads=1) == "finished"
    assert summarise(tmp_path / "run").steps == 2
    with pytest.raises(FaceganError, match="--jobs"):
        run_sweep(planned, tmp_path / "s", train, jobs=0)
    with pytest.raises(FaceganError, match="--eval-n"):
        run_sweep(planned, tmp_path / "s", train, eval_n=1)
