"""`facegan export RUN --format hub --out DIR`: G as a model folder in the Hugging Face Hub's layout
(facegan.generation.model_folder), loaded back and checked to make the same faces, bit for bit, before it is put
in place. `huggingface-cli upload USER/REPO DIR` publishes the folder as it is."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facegan.errors import FaceganError
from facegan.generation.model_card import CardFacts, model_card
from facegan.generation.model_folder import (
    CARD_FILE,
    CONFIG_FILE,
    FILES,
    FORMAT,
    SAMPLES_FILE,
    WEIGHTS_FILE,
    config_document,
    public_config,
    weights_bytes,
)
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.models.latents import seeded_latents
from facegan.run.evals import latest_eval
from facegan.run.layout import CHECKPOINTS, run_dir_of
from facegan.utils.images import make_grid, png_bytes

log = logging.getLogger("facegan.export")

SAMPLES = 64  # faces in samples.png, from seed 0
VERIFY_BATCHES = (1, 5)


@dataclass
class ModelFolderExport:
    """An exported model folder and how it was checked."""

    path: Path
    files: tuple[str, ...]
    bytes: int
    weights: str  # "G_ema" or "G"
    batches: tuple[int, ...]  # the batch sizes the folder's G was compared at (bit for bit)
    seconds: float


def check_destination(out: Path) -> None:
    """`out` may be new, empty, or an earlier facegan model folder (its files are replaced); nothing else."""
    if out.exists() and not out.is_dir():
        raise FaceganError(f"{out} exists and is not a folder; give a folder for the model")
    if (out / CHECKPOINTS).exists():
        raise FaceganError(f"{out} is a run directory; export the model to a folder of its own")
    config = out / CONFIG_FILE
    if config.exists():
        try:
            ours = json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise FaceganError(f"{config} belongs to something else than a facegan model; export to another folder")


def _dataset_meta(path: str) -> dict[str, Any]:
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _evaluation(gen: LoadedGenerator) -> dict[str, Any]:
    run_dir = run_dir_of(gen.checkpoint)
    return latest_eval(run_dir)[1] if run_dir is not None else {}


def _same_faces(gen: LoadedGenerator, folder: Path) -> None:
    """G loaded back from `folder` must give the same float images as `gen` for seeded latents."""
    loaded = load_generator(folder, device="cpu")
    model = gen.config.model
    for batch in VERIFY_BATCHES:
        z = seeded_latents(batch, model.nz, 1000 + batch, model.latent)
        labels = torch.zeros(batch, len(model.condition), dtype=torch.long)  # each attribute's first value
        with torch.no_grad():
            args = (z, labels) if model.condition else (z,)
            if not torch.equal(gen.netG(*args), loaded.netG(*args)):
                raise FaceganError(f"G loaded back from the exported folder differs from the run's at batch {batch}; "
                                   "the folder was not written")


def _put_in_place(tmp: Path, out: Path) -> None:
    """Move the finished files to `out`: the whole folder at once when `out` is new, else file by file with
    config.json last (each rename atomic; a reader of a half-replaced folder meets the checksum, not wrong faces)."""
    if not out.exists():
        tmp.rename(out)
        return
    for name in FILES:
        os.replace(tmp / name, out / name)
    tmp.rmdir()


def export_model_folder(model: str | Path | LoadedGenerator, out: str | Path,
                        license: str | None = None) -> ModelFolderExport:
    """Write G of a run, checkpoint or model folder to the folder `out` (weights, config, model card, samples),
    load it back and check it makes the same faces; `license` (an SPDX id such as mit) goes into the card."""
    started = time.perf_counter()
    out = Path(out)
    check_destination(out)
    gen = model if isinstance(model, LoadedGenerator) else load_generator(model, device="cpu")
    if gen.device.type != "cpu":
        gen = load_generator(gen.checkpoint, device="cpu")
    weights = weights_bytes(gen.netG.state_dict())
    config = public_config(gen.config)
    facts = {"step": gen.step, "images_seen": gen.images_seen, "elapsed_s": gen.elapsed_s, "weights": gen.weights}
    document = config_document(config, weights, facts)
    card = CardFacts(name=out.name, step=gen.step, images_seen=gen.images_seen, weights=gen.weights,
                     parameters=sum(p.numel() for p in gen.netG.parameters()),
                     elapsed_s=gen.elapsed_s, samples=SAMPLES, dataset=_dataset_meta(gen.config.data.path),
                     evaluation=_evaluation(gen), license=license)
    contents = {
        WEIGHTS_FILE: weights,
        SAMPLES_FILE: png_bytes(make_grid(gen.sample(SAMPLES, seed=0), nrow=8)),
        CARD_FILE: model_card(config, card).encode(),
        CONFIG_FILE: (json.dumps(document, indent=2) + "\n").encode(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would become the published folder's mode
        for name in FILES:
            (tmp / name).write_bytes(contents[name])
        _same_faces(gen, tmp)
        _put_in_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.debug("exported G (%s, step %d) to the model folder %s", gen.weights, gen.step, out)
    return ModelFolderExport(path=out, files=FILES, bytes=sum(len(v) for v in contents.values()),
                             weights=gen.weights, batches=VERIFY_BATCHES, seconds=time.perf_counter() - started)
