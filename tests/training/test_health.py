"""Training health: NaN/inf stops (and rollbacks), D saturation and collapse flags, their log and progress bar."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from facegan.cli.main import main
from facegan.data.dataset import PreparedDataset, to_float_nchw
from facegan.errors import FaceganError
from facegan.run.checkpoint import list_checkpoints, load_checkpoint
from facegan.run.metrics_log import read_metrics
from facegan.run.state import TrainingRun
from facegan.training.configure import resume_config
from facegan.training.health import HealthMonitor, TrainingHaltedError, data_diversity, diversity
from facegan.training.loop import train
from factories import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())


def _poison_at(step: int, times: int = 1):
    """A hook that sets G's weights to NaN after `step` (`times` times at most, once per run attempt)."""
    left = {"n": times}

    def hook(run: TrainingRun) -> None:
        if run.step == step and left["n"] > 0:
            left["n"] -= 1
            with torch.no_grad():
                next(run.netG.parameters()).fill_(float("nan"))

    return hook


def test_a_diverging_run_stops_at_once_with_no_checkpoint_of_it(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=20, health_every=2, checkpoint_every=4)
    cfg.optim.lr_g = cfg.optim.lr_d = 1e20  # diverges in the first steps
    with pytest.raises(TrainingHaltedError, match=r"^training stopped at step 2: loss_d, loss_g and the weights of "
                       r"G and D became NaN/inf; no checkpoint had been written yet; try a lower --lr"):
        train(cfg, tmp_path / "r", show_progress=False)
    assert list_checkpoints(tmp_path / "r") == []
    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]  # flushed up to the failing step, with its flag
    assert records[-1]["health_flags"] == ["non_finite"] and records[-1]["loss_d"] is None


def test_divergence_keeps_the_last_good_checkpoint_the_newest(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    train(tiny_config(tiny_dataset, steps=4, health_every=2, checkpoint_every=4), run, show_progress=False)
    good = load_checkpoint(run)
    config = resume_config(run, steps=20)
    config.optim.lr_g = config.optim.lr_d = 1e20  # a resumed run takes the config's learning rates
    with pytest.raises(TrainingHaltedError) as caught:
        train(config, run, resume=True, show_progress=False)
    message = str(caught.value)
    # The first step with lr 1e20 makes D's weights huge, and G's loss overflows in the same step.
    assert message.startswith("training stopped at step 5: loss_g and the weights of G and D became NaN/inf")
    assert "checkpoints/step-00000004.pt, is the last good state" in message and "\n" not in message
    assert [p.name for p in list_checkpoints(run)] == ["step-00000004.pt"]
    kept = load_checkpoint(run)
    assert kept["step"] == 4 and _finite(kept["G"]) and _finite(kept["D"])
    assert all(torch.equal(kept["G"][k], good["G"][k]) for k in good["G"])
    flags = {r["step"]: r.get("health_flags") for r in read_metrics(run / "metrics.jsonl")}
    assert flags[5] == ["lr_changed", "non_finite"] and max(flags) == 5


def test_the_cli_prints_one_line_and_exits_2(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    code = main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "r"), "--ngf", "8", "--ndf", "8",
                 "--nz", "16", "--batch-size", "16", "--steps", "6", "--lr", "1e20", "--health-every", "2",
                 "--device", "cpu", "--no-progress", "--no-report"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("facegan: error: training stopped at step 2: ")


def test_rollback_reloads_the_last_good_checkpoint_and_halves_the_learning_rates(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_dataset, steps=12, health_every=2, checkpoint_every=4, on_nan="rollback")
    result = train(cfg, tmp_path / "r", hooks=[_poison_at(6)], show_progress=False)
    assert result.status == "finished" and result.step == 12
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["train"]["rollbacks"] == 1
    assert config["optim"]["lr_g"] == config["optim"]["lr_d"] == pytest.approx(1e-4)
    final = load_checkpoint(tmp_path / "r")
    assert final["step"] == 12 and _finite(final["G"]) and _finite(final["D"])
    assert final["optG"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))  # the failed steps 5-8 were redone, once each
    after = records[4]
    assert after["step"] == 5 and after["health_flags"] == ["rollback"] and after["lr_g"] == pytest.approx(1e-4)
    assert all(r["loss_d"] is not None for r in records)


def test_rollback_under_an_lr_ramp_logs_the_lr_the_step_used(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=8, health_every=2, checkpoint_every=4, on_nan="rollback")
    cfg.schedule.lr, cfg.schedule.ramp_kimg = [1.0, 0.5], 0.001  # lr × 0.5 from the first image on
    train(cfg, tmp_path / "r", hooks=[_poison_at(6)], show_progress=False)
    after = read_metrics(tmp_path / "r" / "metrics.jsonl")[4]
    assert after["health_flags"] == ["rollback"]
    assert after["lr_g"] == after["lr_d"] == pytest.approx(0.5 * 1e-4)  # the halved lr, ramped: what Adam used
    assert load_checkpoint(tmp_path / "r")["optG"]["param_groups"][0]["lr"] == pytest.approx(0.5 * 1e-4)


def test_resuming_mid_ramp_is_no_lr_change(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=4, health_every=1, checkpoint_every=100)
    cfg.schedule.lr, cfg.schedule.ramp_kimg = [1.0, 0.25], 0.1  # still ramping at step 4 (32 of 100 images)
    train(cfg, tmp_path / "r", show_progress=False)
    train(resume_config(tmp_path / "r", steps=6), tmp_path / "r", resume=True, show_progress=False)
    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 7))
    assert all(r["health_flags"] == [] for r in records)  # no lr_changed: the ramp moved the lr, not the user


def test_rollback_gives_up_after_max_rollbacks(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=12, health_every=2, checkpoint_every=4, on_nan="rollback", max_rollbacks=1)
    with pytest.raises(TrainingHaltedError, match=r"step 8: .*gave up after 1 rollbacks"):
        train(cfg, tmp_path / "r", hooks=[_poison_at(6, times=2)], show_progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step-00000004.pt"]
    assert _finite(load_checkpoint(tmp_path / "r")["G"])


def test_rollback_without_a_checkpoint_stops(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=8, health_every=2, checkpoint_every=100, on_nan="rollback")
    with pytest.raises(TrainingHaltedError, match="nothing to roll back to"):
        train(cfg, tmp_path / "r", hooks=[_poison_at(2)], show_progress=False)


# Collapse and saturation, on the monitor directly -------------------------------------------------------------


class ConstantG(nn.Module):
    """A collapsed generator: the same image whatever z is."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = nn.Parameter(image.clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(z.shape[0], -1, -1, -1) + 0 * z.sum()


class DataG(nn.Module):
    """A healthy stand-in: a different training image for each latent (its diversity is the data's)."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = (z[:, 0].abs() * 1e4).long() % len(self.images)
        return self.images[index] + self.w


def _monitor_run(dataset_path: Path, netG: nn.Module, step: int, **train_cfg: object) -> SimpleNamespace:
    config = tiny_config(dataset_path, **{"checkpoint_every": 1000, **train_cfg})
    netD = nn.Linear(1, 1)
    return SimpleNamespace(
        config=config, run_dir=dataset_path, device=torch.device("cpu"), netG=netG, netD=netD, netG_ema=None,
        optG=torch.optim.Adam(netG.parameters(), lr=config.optim.lr_g),
        optD=torch.optim.Adam(netD.parameters(), lr=config.optim.lr_d),
        fixed_latents=torch.randn(64, 16, generator=torch.Generator().manual_seed(0)),
        dataset=PreparedDataset.open(dataset_path), step=step,
    )


def _values(d_x: float = 0.6, d_g_z: float = 0.4) -> dict[str, torch.Tensor]:
    return {"loss_d": torch.tensor(1.2), "loss_g": torch.tensor(0.8), "d_x": torch.tensor(d_x),
            "d_g_z1": torch.tensor(d_g_z), "d_g_z2": torch.tensor(d_g_z)}


def sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def _real_images(dataset_path: Path, n: int = 64) -> torch.Tensor:
    return to_float_nchw(torch.from_numpy(np.array(PreparedDataset.open(dataset_path).images[:n])))


def test_a_constant_generator_is_flagged_as_collapsed(tiny_dataset: Path) -> None:
    run = _monitor_run(tiny_dataset, ConstantG(_real_images(tiny_dataset, 1)[0]), step=500, health_every=100)
    monitor = HealthMonitor(run)
    notes = monitor.after_step(run, _values())
    assert notes == {"health_flags": ["collapse"], "health_diversity": 0.0}
    assert monitor.postfix() == {"health": "collapse"}


def test_a_diverse_generator_is_not_flagged(tiny_dataset: Path) -> None:
    run = _monitor_run(tiny_dataset, DataG(_real_images(tiny_dataset, 200)), step=500, health_every=100)
    monitor = HealthMonitor(run)
    notes = monitor.after_step(run, _values())
    assert notes is not None and notes["health_flags"] == []
    assert 0.8 < notes["health_diversity"] < 1.2  # training images: about the data's own diversity
    assert monitor.postfix() == {"health": "ok"}


def test_collapse_is_not_flagged_during_warmup(tiny_dataset: Path) -> None:
    run = _monitor_run(tiny_dataset, ConstantG(_real_images(tiny_dataset, 1)[0]), step=100, health_every=100)
    notes = HealthMonitor(run).after_step(run, _values())
    assert notes == {"health_flags": [], "health_diversity": 0.0}


def test_diversity_measure() -> None:
    same = torch.zeros(8, 3, 32, 32)
    assert diversity(same) == 0.0
    noise = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # Pixel noise averages away in the 16×16 box filter: near-identical images stay near-identical.
    assert diversity(noise * 0.1) < 0.05
    flat = torch.linspace(-1, 1, 64).view(64, 1, 1, 1).expand(64, 3, 32, 32)
    assert diversity(flat) == pytest.approx(2 / 63 * 65 / 3, rel=1e-4)  # mean |a - b| over pairs of 64 even steps


def test_data_diversity_is_deterministic(tiny_dataset: Path) -> None:
    images = PreparedDataset.open(tiny_dataset).images
    assert data_diversity(images) == data_diversity(images) > 0.1


def test_d_saturation_is_flagged_after_a_window_of_steps(tiny_dataset: Path) -> None:
    run = _monitor_run(tiny_dataset, DataG(_real_images(tiny_dataset)), step=0, health_every=5, health_window=8)
    monitor = HealthMonitor(run)
    flags = {}
    for step in range(1, 21):
        run.step = step
        saturated = step > 4  # D(x) → 1, D(G(z)) → 0 from step 5 on
        notes = monitor.after_step(run, _values(0.999, 0.001) if saturated else _values())
        if notes is not None:
            flags[step] = notes["health_flags"]
    assert flags == {5: [], 10: [], 15: ["d_saturated"], 20: ["d_saturated"]}  # 11 and 16 saturated steps in a row
    run.step = 25
    for _ in range(5):
        notes = monitor.after_step(run, _values())
    assert notes is not None and notes["health_flags"] == []  # cleared when D(x), D(G(z)) come back


def test_relativistic_saturation_reads_the_pairs_not_the_logits(
    tiny_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Under RpGAN only D(x) - D(G(z)) matters. Logits 20 (real) and 10 (fake): a saturated D (d_pair ≈ 1) though
    # both sigmoids are ≈ 1; then D(x) 0.999 and D(G(z)) 0.001 with d_pair 0.6 is not, whatever the sigmoids say.
    run = _monitor_run(tiny_dataset, DataG(_real_images(tiny_dataset)), step=0, health_every=5, health_window=8)
    monitor = HealthMonitor(run)
    flags = {}
    for step in range(1, 16):
        run.step = step
        values = {**_values(sigmoid(20.0), sigmoid(10.0)), "d_pair": torch.tensor(sigmoid(10.0))}
        notes = monitor.after_step(run, values)
        if notes is not None:
            flags[step] = notes["health_flags"]
    assert flags == {5: [], 10: ["d_saturated"], 15: ["d_saturated"]}
    assert "sigmoid(D(x) - D(G(z))) ≥ 0.99 over the real/fake pairs" in caplog.text
    run.step = 20
    for _ in range(5):
        notes = monitor.after_step(run, {**_values(0.999, 0.001), "d_pair": torch.tensor(0.6)})
    assert notes is not None and notes["health_flags"] == []  # D(x)/D(G(z)) alone no longer flag it


def test_healthy_runs_log_the_checks_and_no_flags(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_config(tiny_dataset, steps=6, health_every=3, health_warmup=0, health_collapse=0.0), tmp_path / "r",
          show_progress=False)
    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    checked = {r["step"]: r for r in records if "health_flags" in r}
    assert sorted(checked) == [3, 6] and all(r["health_flags"] == [] for r in checked.values())
    assert all(math.isfinite(r["health_diversity"]) and r["health_diversity"] > 0 for r in checked.values())
    train(tiny_config(tiny_dataset, steps=4, health_every=0), tmp_path / "off", show_progress=False)
    assert not any("health_flags" in r for r in read_metrics(tmp_path / "off" / "metrics.jsonl"))


def test_bad_on_nan_value(tiny_dataset: Path) -> None:
    with pytest.raises(FaceganError, match=r"train.on_nan \(--on-nan\) must be one of stop, rollback, not 'ignore'"):
        tiny_config(tiny_dataset, on_nan="ignore")


def test_the_report_marks_flagged_steps(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from facegan.report import plots

    records = [{"step": s, "epoch": 0, "loss_d": 1.0, "loss_g": 1.0, "d_x": 0.9, "d_g_z1": 0.1, "d_g_z2": 0.1}
               for s in range(1, 51)]
    for step, flags in ((10, []), (20, ["collapse", "d_saturated"]), (30, ["collapse"]), (40, []),
                        (41, ["rollback"]), (50, ["collapse"])):
        records[step - 1]["health_flags"] = flags
    ax = Figure().add_subplot()
    plots.mark_health(ax, records)
    bands = sorted((round(p.get_x()), round(p.get_x() + p.get_width()), p.get_label()) for p in ax.patches)
    # The second collapse band has no label of its own: one legend entry per flag.
    assert bands == [(10, 20, "health: d_saturated"), (10, 30, "health: collapse"), (41, 50, None)]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [41]  # the rollback, a dotted line
    assert ax.get_legend_handles_labels()[1] == ["health: collapse", "health: d_saturated", "health: rollback"]
    for plot in (plots.plot_losses, plots.plot_scores):  # both draw the marks
        assert plot(records, tmp_path / f"{plot.__name__}.png").stat().st_size > 1000
