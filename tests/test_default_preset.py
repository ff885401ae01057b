"""Every feature with the default preset (`--model` not given; issue 22): sample, eval, export, serve, project,
conditional, DDP, health, report and sweep, each once on a tiny run of DEFAULT_PRESET's recipe (its loss, optimiser,
EMA of G, memory layout), shrunk to 32 px by factories.tiny_default_config. The preset is read, never named here."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

from facegan.cli.defaults import format_value
from facegan.cli.main import main
from facegan.config import RECIPE, RunConfig, flat_fields
from facegan.data.dataset import write_dataset
from facegan.experiments.compare import summarise
from facegan.generation.attributes import attribute_grid
from facegan.generation.export import TOLERANCE, export_generator
from facegan.generation.project import load_discriminator, project
from facegan.generation.sample import load_generator
from facegan.metrics.evaluation import evaluate
from facegan.models import build_generator
from facegan.models.latents import seeded_latents
from facegan.models.presets import DEFAULT_PRESET, build_config
from facegan.report import build_report
from facegan.run.checkpoint import load_checkpoint
from facegan.run.evals import eval_path, load_evals
from facegan.run.metrics_log import read_metrics
from facegan.run.state import TrainingRun
from facegan.serve import create_app
from facegan.training.loop import FIXED_LATENTS, train
from facegan.utils.images import make_grid, to_uint8
from factories import blob_images, tiny_default_config
from report.helpers import assert_links_exist

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 96  # at the preset's learning rate, enough for G's faces to depend on z (~10 ms a step)
HEALTH_EVERY = 24
SAMPLE_EVERY = 48  # fixed-noise grids at steps 48 and 96


def _has_ema(config: RunConfig) -> bool:
    """Whether a run of `config` keeps G_ema (a decay, or the half-life ramp of the r3gan presets)."""
    return config.train.ema_decay > 0 or bool(config.schedule.ema_half_life)


def _sampling_net(ckpt: dict[str, Any]) -> str:
    """The weights every feature should make faces with: "G_ema" when the run kept one, else "G"."""
    return "G_ema" if _has_ema(ckpt["config"]) else "G"


def _netG(ckpt: dict[str, Any], weights: str) -> nn.Module:
    """G of a checkpoint built by hand (not through load_generator) from its "G" or "G_ema" weights, in eval mode."""
    netG = build_generator(ckpt["config"].model)
    netG.load_state_dict(ckpt[weights])
    return netG.eval().requires_grad_(False)


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image MSE of uint8 N×H×W×C images on the [-1, 1] scale."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) / 127.5
    return (diff**2).reshape(len(diff), -1).mean(1)


def _png(content: bytes) -> np.ndarray:
    """A PNG response body as an H×W×3 uint8 array."""
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def default_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run of the default preset, shared by most tests: 96 steps, health checks every 24, grids every 48."""
    config = tiny_default_config(tiny_dataset, steps=STEPS, log_every=8, sample_every=SAMPLE_EVERY,
                                 checkpoint_every=1000, health_every=HEALTH_EVERY)
    run = tmp_path_factory.mktemp("default") / "run"
    assert train(config, run, show_progress=False).status == "finished"
    return run


def test_the_recipe_is_the_default_presets(default_run: Path) -> None:
    """The shrunk config changes only sizes and cadence: the rest is DEFAULT_PRESET's (so what follows tests it)."""
    preset = flat_fields(build_config(DEFAULT_PRESET))
    used = flat_fields(load_checkpoint(default_run)["config"])
    shrunk = {"model.resolution", "model.channels", "model.nz", "model.ngf", "model.ndf", "train.batch_size"}
    for key in sorted((RECIPE - shrunk) | {"train.channels_last", "train.precision", "train.compile"}):
        assert used[key] == preset[key], key


# sample --------------------------------------------------------------------------------------------------------


def test_sample_uses_g_ema_when_the_preset_keeps_one(default_run: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(default_run)
    assert ("G_ema" in ckpt) == _has_ema(ckpt["config"])
    if _has_ema(ckpt["config"]):  # G_ema is an average, not a copy of G
        assert any(not torch.equal(ckpt["G"][k], ckpt["G_ema"][k]) for k in ckpt["G"] if "weight" in k)
    gen = load_generator(default_run)
    expected, loaded = ckpt[_sampling_net(ckpt)], gen.netG.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    faces = gen.sample(8, seed=7)
    assert faces.shape == (8, 32, 32, 3) and faces.dtype == np.uint8
    assert np.array_equal(faces, gen.sample(8, seed=7)) and not np.array_equal(faces, gen.sample(8, seed=8))
    # The grid training wrote (G_ema on the run's fixed latents, channels_last or not) shows the same faces.
    cfg = gen.config
    fixed = seeded_latents(FIXED_LATENTS, cfg.model.nz, cfg.train.seed + 2, cfg.model.latent)
    with Image.open(default_run / "samples" / "latest.png") as image:
        latest = np.asarray(image).astype(int)
    assert np.abs(latest - make_grid(gen.images(fixed), nrow=8).astype(int)).max() <= 1
    out = tmp_path / "grid.png"
    assert main(["sample", str(default_run), "--n", "4", "--seed", "3", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert np.array_equal(np.asarray(image), make_grid(gen.sample(4, seed=3)))


# eval ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # face detection on 32 fakes and 32 reals
def test_eval_writes_its_numbers(default_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    result = evaluate(run, n=32, metrics="swd,faces", device="cpu", show_progress=False)
    path = eval_path(run, STEPS)
    assert Path(result["path"]) == path
    saved = json.loads(path.read_text())
    assert saved["step"] == STEPS and saved["n"] == saved["n_real"] == 32 and saved["metrics"] == ["swd", "faces"]
    assert math.isfinite(saved["swd"]) and saved["swd"] > 0
    assert 0 <= saved["faces_fake"] <= 1 and 0 <= saved["faces_real"] <= 1
    assert load_evals(run) == [saved]


# export --------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # the ONNX exporter
def test_onnx_export_reproduces_the_sampling_generator(default_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.onnx"
    assert export_generator(default_run, out, "onnx").max_abs_diff <= TOLERANCE
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(5))
    got = session.run(None, {"z": z.numpy()})[0]
    ckpt = load_checkpoint(default_run)
    with torch.no_grad():
        expected = _netG(ckpt, _sampling_net(ckpt))(z).numpy()
        trained = _netG(ckpt, "G")(z).numpy()
    assert got.shape == (5, 3, 32, 32) and np.abs(got - expected).max() < TOLERANCE
    if _has_ema(ckpt["config"]):  # the file is G_ema, not the G that trained
        assert np.abs(got - trained).max() > 10 * TOLERANCE


# serve ---------------------------------------------------------------------------------------------------------


def test_serve_returns_pngs_of_the_models_faces(default_run: Path) -> None:
    ckpt = load_checkpoint(default_run)
    config = ckpt["config"]
    z = seeded_latents(64, config.model.nz, 3, config.model.latent)[5:6]  # face 5 of seed 3's 64
    with torch.no_grad():
        expected = to_uint8(_netG(ckpt, _sampling_net(ckpt))(z))[0]
    with TestClient(create_app(default_run, workers=1)) as client:
        face = client.get("/api/face", params={"seed": 3, "index": 5})
        grid = client.get("/api/faces", params={"seed": 3, "n": 4, "size": 64})
        info = client.get("/api/info").json()
    assert face.status_code == grid.status_code == 200
    assert face.headers["content-type"] == grid.headers["content-type"] == "image/png"
    pixels = _png(face.content)
    assert pixels.shape == (32, 32, 3)
    assert np.array_equal(pixels, expected)  # made with G_ema when the run kept one
    assert _png(grid.content).shape == (2 * 66 + 2, 2 * 66 + 2, 3)  # 2 × 2 faces of 64 px, 2-px gaps
    assert info["step"] == STEPS and info["config"]["train"]["ema_decay"] == config.train.ema_decay


# project -------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # 2 × 60 optimisation steps through G and D
def test_projection_finds_a_latent_closer_than_random_ones(default_run: Path) -> None:
    gen = load_generator(default_run)
    netD = load_discriminator(gen.checkpoint, gen.device)
    assert netD is not None  # the preset's D loads from the checkpoint for the feature loss
    target = gen.images(gen.latents(1, seed=999))[0]
    random_mse = _mse(gen.sample(64, seed=5), target[None])
    result = project(gen, target, steps=60, restarts=2, seed=0, netD=netD)
    assert result.latent.shape == (16,) and np.isfinite(result.loss)
    projected_mse = _mse(result.image[None], target[None])[0]
    assert projected_mse < 0.1 * random_mse.mean() and projected_mse < 0.5 * random_mse.min()
    np.testing.assert_array_equal(gen.images(torch.from_numpy(result.latent)[None])[0], result.image)


# conditional ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shaded_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 blobs at 32 px labelled `shade` 0-2 (the blob's brightness)."""
    shade = np.arange(128) % 3
    images = (blob_images(128, 32, 3, seed=1) * (0.4 + 0.3 * shade)[:, None, None, None]).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "shaded"
    write_dataset(path, images, source="test:shaded", labels=shade[:, None].astype(np.int16), label_names=["shade"])
    return path


@pytest.mark.slow  # trains a second run
def test_a_conditional_run_trains_and_samples_per_label(shaded_dataset: Path, tmp_path: Path) -> None:
    config = tiny_default_config(shaded_dataset, steps=4, sample_every=100, checkpoint_every=100)
    config.model.condition = ["shade"]
    train(config, tmp_path / "run", show_progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ("G_ema" in ckpt) == _has_ema(ckpt["config"])
    gen = load_generator(tmp_path / "run")
    assert gen.attributes == [{"name": "shade", "values": [0, 1, 2]}]
    assert all(torch.equal(gen.netG.state_dict()[k], v) for k, v in ckpt[_sampling_net(ckpt)].items())
    per_label = [gen.sample(4, seed=1, attr={"shade": v}) for v in (0, 1, 2)]
    assert np.array_equal(per_label[2], gen.sample(4, seed=1, attr={"shade": 2}))  # same ask, same faces
    assert not any(np.array_equal(per_label[a], per_label[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    grid, values = attribute_grid(gen, "shade", 4)
    assert values == [0, 1, 2] and grid.shape == (3 * 34 + 2, 4 * 34 + 2, 3)  # one row of 4 faces per label


# DDP -----------------------------------------------------------------------------------------------------------


def _params(net: nn.Module | None) -> dict[str, torch.Tensor]:
    return {} if net is None else {k: v.detach().clone() for k, v in net.named_parameters()}


def _ddp_worker(rank: int, world: int, init_file: str, run_dir: str, config: dict[str, Any], out: str) -> None:
    """One rank of a 2-process job: trains `config` and saves the final G, D and G_ema parameters it holds."""
    import facegan.training.loop as loop

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    built: list[nn.Module] = []
    build_models, make_ema = loop.build_models, loop.make_ema
    loop.build_models = lambda cfg: built.extend(build_models(cfg)) or (built[0], built[1])
    loop.make_ema = lambda netG: built.append(make_ema(netG)) or built[-1]
    result = loop.train(RunConfig.from_dict(config), run_dir, show_progress=False)
    netG, netD, *ema = built
    torch.save({"status": result.status, "G": _params(netG), "D": _params(netD),
                "G_ema": _params(ema[0] if ema else None)}, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_two_ddp_processes_end_with_identical_weights(tiny_dataset: Path, tmp_path: Path) -> None:
    config = tiny_default_config(tiny_dataset, steps=4, log_every=1, sample_every=100, checkpoint_every=100)
    run = tmp_path / "run"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(run), config.to_dict(), str(tmp_path)), nprocs=2,
             join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert rank0["status"] == rank1["status"] == "finished"
    assert bool(rank0["G_ema"]) == _has_ema(config)
    for net in ("G", "D", "G_ema"):
        assert rank0[net].keys() == rank1[net].keys()
        for name, value in rank0[net].items():
            assert torch.equal(value, rank1[net][name]), f"{net}.{name} differs between ranks"
    ckpt = load_checkpoint(run)  # written once, by rank 0, with the EMA when the preset keeps one
    assert ckpt["step"] == 4 and ("G_ema" in ckpt) == _has_ema(config)
    assert all(torch.equal(ckpt["G"][k], v) for k, v in rank0["G"].items())
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4]


# health --------------------------------------------------------------------------------------------------------


def test_health_checks_run_on_the_default_runs_steps(default_run: Path) -> None:
    records = read_metrics(default_run / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    checked = {r["step"]: r for r in records if "health_flags" in r}
    assert sorted(checked) == list(range(HEALTH_EVERY, STEPS + 1, HEALTH_EVERY))
    for record in checked.values():
        assert record["health_flags"] == []  # warm-up: no collapse flag yet, and nothing non-finite
        assert record["health_diversity"] > 0


def _poison_g_after(step: int):
    """A hook that sets G's first weight to NaN once, after `step` (so G_ema turns NaN at the next step)."""
    left = [1]

    def hook(run: TrainingRun) -> None:
        if run.step == step and left[0]:
            left[0] = 0
            with torch.no_grad():
                next(run.netG.parameters()).fill_(float("nan"))

    return hook


def test_a_rollback_restores_g_and_g_ema(tiny_dataset: Path, tmp_path: Path) -> None:
    config = tiny_default_config(tiny_dataset, steps=8, health_every=2, checkpoint_every=4, on_nan="rollback")
    lr_g = config.optim.lr_g
    result = train(config, tmp_path / "run", hooks=[_poison_g_after(6)], show_progress=False)
    assert result.status == "finished" and result.step == 8
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["config"].train.rollbacks == 1 and ckpt["config"].optim.lr_g == pytest.approx(lr_g / 2)
    for name in ("G", "G_ema") if _has_ema(ckpt["config"]) else ("G",):
        assert all(bool(torch.isfinite(t).all()) for t in ckpt[name].values() if t.is_floating_point()), name
    flags = {r["step"]: r.get("health_flags") for r in read_metrics(tmp_path / "run" / "metrics.jsonl")}
    assert flags[5] == ["rollback"] and flags[8] == []


# report --------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # plots and GIFs
def test_report_is_written(default_run: Path, tmp_path: Path) -> None:
    index = build_report(default_run, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    linked = set(assert_links_exist(index))
    assert {"losses.png", "fake.png", "real.png", "latest.png", "progress.gif"} <= linked
    html = index.read_text(encoding="utf-8")
    ema = format_value(load_checkpoint(default_run)["config"].train.ema_decay)
    assert f"G at step {STEPS}" in html and f"<td>ema_decay</td><td>{ema}</td>" in html


# sweep ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # two runs and the comparison plot
def test_a_sweep_without_model_sweeps_the_default_preset(tiny_dataset: Path, tmp_path: Path) -> None:
    ema = build_config(DEFAULT_PRESET).train.ema_decay
    values = [ema, 0.9 if ema != 0.9 else 0.99]  # the preset's EMA decay and another
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", str(tiny_dataset), "--out", str(out), "--grid",
                 f"ema_decay={values[0]:g},{values[1]:g}", "--set", "model.nz=16", "model.ngf=8", "model.ndf=8",
                 "batch=16", "train.device=cpu", "train.log_every=1", "train.sample_every=100",
                 "train.checkpoint_every=100", "--steps", "2", "--eval-n", "0"]) == 0
    assert json.loads((out / "sweep.json").read_text())["preset"] == DEFAULT_PRESET
    runs = [out / f"ema_decay-{v:g}" for v in values]
    preset = flat_fields(build_config(DEFAULT_PRESET))
    kept = RECIPE - {"model.nz", "model.ngf", "model.ndf", "model.resolution", "model.channels", "train.batch_size"}
    for run, value in zip(runs, values, strict=True):
        ckpt = load_checkpoint(run)
        assert ckpt["step"] == 2 and ckpt["config"].train.ema_decay == value
        assert ("G_ema" in ckpt) == _has_ema(ckpt["config"])
        used = flat_fields(ckpt["config"])
        assert {k: used[k] for k in kept} == {k: preset[k] for k in kept}
        assert summarise(run).steps == 2
    rows = list(csv.reader((out / "compare.csv").read_text().splitlines()))
    assert sorted(r[0] for r in rows[1:]) == sorted(run.name for run in runs)


# the CLI's default ---------------------------------------------------------------------------------------------


def test_train_help_names_the_default_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert f"(default {DEFAULT_PRESET};" in text
    ema = format_value(build_config(DEFAULT_PRESET).train.ema_decay)
    assert f"0: off (default {ema}" in text  # --ema states the default preset's decay
    assert main(["train", "--show-config"]) == 0  # no --model: the default preset's whole config
    assert json.loads(capsys.readouterr().out) == build_config(DEFAULT_PRESET).to_dict()
