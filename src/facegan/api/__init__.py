"""The Python API: `prepare` → `train` → a `FaceGAN` (also `load(RUN | CHECKPOINT | MODEL_FOLDER)`) that samples,
shows, interpolates, evaluates and exports; `grid` shows any faces in a notebook. See docs/api.md."""

from facegan.api.model import FaceGAN, grid, load
from facegan.api.training import prepare, train, training_hooks

__all__ = ["FaceGAN", "grid", "load", "prepare", "train", "training_hooks"]
