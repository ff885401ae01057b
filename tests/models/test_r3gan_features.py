"""Every feature of facegan with an r3gan run: a tiny net (32 px, widths 32,16,8,8, one block a stage) trained a
few steps with the r3gan-cpu32 recipe (RpGAN + R1 + R2, ramps, augmentation, G_ema by half-life), then
conditioned, exported, served, projected, checked, run under torchrun (gloo), reported, evaluated and swept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from facegan.config import RunConfig
from facegan.data.dataset import write_dataset
from facegan.generation.export import export_generator, load_exported
from facegan.generation.project import load_discriminator, project
from facegan.generation.sample import load_generator
from facegan.metrics.evaluation import evaluate
from facegan.run.checkpoint import load_checkpoint
from facegan.run.layout import metrics_path, read_runtime
from facegan.run.metrics_log import read_metrics
from facegan.training.loop import train
from facegan.training.precision import resolve_precision
from factories import blob_images, tiny_r3gan_config

pytestmark = pytest.mark.usefixtures("one_thread")

RAMPS = ("lr_g", "lr_d", "beta2", "gamma", "ema_half_life_kimg", "ema_beta", "aug_p")


@pytest.fixture(scope="module")
def r3gan_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny r3gan run: 6 steps, health checks every step, precision auto."""
    run = tmp_path_factory.mktemp("r3gan") / "run"
    result = train(tiny_r3gan_config(tiny_dataset, health_every=1, precision="auto"), run, show_progress=False)
    assert result.status == "finished" and result.step == 6
    return run


def test_trains_with_health_checks_and_precision_auto(r3gan_run: Path) -> None:
    records = read_metrics(metrics_path(r3gan_run))
    assert [r["step"] for r in records] == list(range(1, 7))
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in records)
    assert all(set(RAMPS) <= set(r) for r in records)  # the ramps on every line
    assert all(r["health_flags"] == [] for r in records)  # health_every=1: checked each step, nothing wrong
    assert all(0 <= r["d_pair"] <= 1 for r in records)  # RpGAN's saturation is judged on the pairs
    (start,) = read_runtime(r3gan_run)
    assert start["precision"] == resolve_precision("auto", torch.device("cpu"))  # bf16 on an AVX-512-bf16 CPU
    ckpt = load_checkpoint(r3gan_run)
    assert ckpt["family"] == "r3gan" and "G_ema" in ckpt


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit and the TorchScript ONNX exporter
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export(r3gan_run: Path, tmp_path: Path, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    out = tmp_path / f"g.{'onnx' if fmt == 'onnx' else 'pt'}"
    result = export_generator(r3gan_run, out, fmt)
    assert result.max_abs_diff <= result.tolerance and out.is_file()
    assert load_exported(out).run(np.random.default_rng(0).standard_normal((2, 16), dtype=np.float32)).shape[0] == 2


def test_serve_one_face(r3gan_run: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from facegan.serve.app import create_app

    with TestClient(create_app(r3gan_run, workers=1)) as client:
        response = client.get("/api/face", params={"seed": 3, "index": 0})
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_project(r3gan_run: Path) -> None:
    gen = load_generator(r3gan_run)
    netD = load_discriminator(gen.checkpoint, gen.device)
    assert netD is not None
    result = project(gen, gen.sample(1, seed=2)[0], steps=3, restarts=1, netD=netD)
    assert result.image.shape == (32, 32, 3) and np.isfinite(result.loss)


@pytest.mark.slow
def test_report_and_eval(r3gan_run: Path, tiny_dataset: Path) -> None:
    from facegan.report.build import build_report

    scores = evaluate(r3gan_run, n=16, metrics="swd", real_dataset=tiny_dataset, device="cpu", show_progress=False)
    assert np.isfinite(scores["swd"]) and (r3gan_run / "eval").is_dir()
    index = build_report(r3gan_run)
    assert index.is_file() and "r3gan" in index.read_text()


@pytest.mark.slow
def test_conditional_faces(tmp_path: Path) -> None:
    from facegan.generation.attributes import labels_for

    images = blob_images(64, 32, 3, seed=1)
    labels = (np.arange(64) % 2 * 2 - 1).astype(np.int16)[:, None]  # a CelebA-style ±1 label
    data = tmp_path / "labelled"
    write_dataset(data, images, source="test:labelled", labels=labels, label_names=["Smiling"])
    config = tiny_r3gan_config(data, steps=3)
    config.model.condition = ["Smiling"]
    result = train(config, tmp_path / "run", show_progress=False)
    gen = load_generator(result.run_dir)
    assert gen.config.model.condition == ["Smiling"]
    faces = gen.sample(2, seed=0, attr={"Smiling": 1})
    assert faces.shape == (2, 32, 32, 3)
    assert labels_for(gen.config.model, {"Smiling": 1}, 2) is not None


def _ddp_worker(rank: int, world: int, init_file: str, root: str, config: dict[str, Any]) -> None:
    import facegan.training.loop as loop

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    nets: list[Any] = []
    build = loop.build_models
    loop.build_models = lambda cfg: nets.append(build(cfg)) or nets[-1]  # keep this rank's G and D
    result = loop.train(RunConfig.from_dict(config), Path(root) / "run", show_progress=False)
    dist.barrier()
    dist.destroy_process_group()
    weights = {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
               for name, net in zip(("G", "D"), nets[-1], strict=True)}
    torch.save({"status": result.status, "step": result.step, "rank": result.rank, **weights},
               Path(root) / f"rank{rank}.pt")


@pytest.mark.slow
def test_torchrun_ddp_gloo(tiny_dataset: Path, tmp_path: Path) -> None:
    """2 processes (gloo) train as one job: R1 + R2's double backward through DDP, the ramps, the EMA."""
    config = tiny_r3gan_config(tiny_dataset, steps=3, precision="fp32", checkpoint_every=100).to_dict()
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path), config), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [(r["status"], r["step"], r["rank"]) for r in ranks] == [("finished", 3, 0), ("finished", 3, 1)]
    for net in ("G", "D"):  # the penalties' gradients were averaged like the loss's: the ranks agree
        assert all(torch.equal(ranks[0][net][k], ranks[1][net][k]) for k in ranks[0][net]), net
    saved = load_checkpoint(tmp_path / "run")
    assert all(torch.equal(saved["G"][k], ranks[0]["G"][k]) for k in saved["G"])
    records = read_metrics(metrics_path(tmp_path / "run"))
    assert [r["step"] for r in records] == [1, 2, 3] and all(set(RAMPS) <= set(r) for r in records)
    assert json.loads((tmp_path / "run" / "runtime.json").read_text())["starts"][0]["processes"] == 2


@pytest.mark.slow
def test_sweep(tiny_dataset: Path, tmp_path: Path) -> None:
    from facegan.experiments.sweep import sweep

    fixed = ["model.nz=16", "blocks=1", "channels_per_group=8", "batch=8", "train.device=cpu",
             "train.sample_every=100", "train.checkpoint_every=100"]
    result = sweep(["schedule.ramp_kimg=0.008,0.016"], tiny_dataset, tmp_path / "sweep", train,
                   preset="r3gan-cpu32", fixed_items=fixed, steps=2, eval_n=8)
    assert len(result.runs) == 2
    kimg = sorted(json.loads((run / "config.json").read_text())["schedule"]["ramp_kimg"] for run in result.runs)
    assert kimg == [0.008, 0.016]
    assert (tmp_path / "sweep" / "compare.md").is_file()
