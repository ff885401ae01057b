"""Face-embedding Fréchet distance (and KID) over dlib's 128-d face descriptors.

dlib's face recognition ResNet (the model behind the `face_recognition` package, 99.4 % on LFW) maps an aligned
face to a 128-d descriptor in which faces of one person lie within ~0.6 of each other. Fitting Gaussians to the
descriptors of fakes and reals and taking their Fréchet distance (and KID) measures how well the fakes cover
the variety of identities — an FID whose feature network knows faces and needs no download.

Pipeline per image: upscale to 150 px (bicubic; grey → RGB), find the face with dlib's HOG detector (largest
box; when it finds none, a fixed box covering the middle of the crop, since prepared images are face crops),
place 5 landmarks with `shape_predictor_5_face_landmarks.dat`, then `compute_face_descriptor` aligns a
150×150 chip (padding 0.25) and runs `dlib_face_recognition_resnet_model_v1.dat`. The share of images in which
the HOG detector found a face is reported too. Needs the optional extra `facegan[faces]` (dlib-bin and
face-recognition-models); the model files are located without importing face_recognition_models, whose
`pkg_resources` import fails on setuptools ≥ 81.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from facegan.errors import FaceganError
from facegan.metrics.frechet import frechet_distance_of, kernel_distance
from facegan.metrics.metric import Metric, MetricOptions, ScoreContext, fmt
from facegan.utils.progress import progress_bar

CHIP_INPUT_SIZE = 150
FALLBACK_BOX = (0.1, 0.15, 0.9, 0.95)  # left, top, right, bottom as shares of the side (a centred face crop)
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "install the optional extra: pip install 'facegan[faces]' (dlib-bin and face-recognition-models)"


def import_dlib() -> ModuleType:
    """The dlib module, or a clear error saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise FaceganError(f"the face-embedding distance (facefd) needs dlib; {INSTALL_HINT}") from None
    return dlib


def dlib_available() -> bool:
    """True when dlib and the face_recognition_models files can be found (nothing is imported)."""
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        model_dir()
    except FaceganError:
        return False
    return True


def model_dir() -> Path:
    """The `models/` folder of the installed face_recognition_models package, found without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "models"
        if (folder / DESCRIPTOR_MODEL).is_file() and (folder / SHAPE_MODEL).is_file():
            return folder
    raise FaceganError(f"the face-embedding distance (facefd) needs dlib's model files; {INSTALL_HINT}")


class FaceEmbedder:
    """dlib's HOG face detector, 5-point landmarks and 128-d descriptor network."""

    def __init__(self) -> None:
        dlib = import_dlib()
        folder = model_dir()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(str(folder / SHAPE_MODEL))
        self.network = dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_MODEL))
        side = CHIP_INPUT_SIZE
        left, top, right, bottom = (round(f * side) for f in FALLBACK_BOX)
        self.fallback = dlib.rectangle(left, top, right, bottom)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
        return cv2.resize(np.ascontiguousarray(rgb), (CHIP_INPUT_SIZE, CHIP_INPUT_SIZE),
                          interpolation=cv2.INTER_CUBIC)

    def embed_one(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """(128-d descriptor, whether the HOG detector found the face) of a uint8 H×W×C face crop."""
        big = self._prepare(image)
        boxes = self.detector(big, 0)
        box: Any = max(boxes, key=lambda r: r.area()) if len(boxes) else self.fallback
        shape = self.shape_predictor(big, box)
        return np.asarray(self.network.compute_face_descriptor(big, shape), dtype=np.float64), len(boxes) > 0

    def embed(self, images: np.ndarray, on_progress: Callable[[int], object] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Descriptors (N×128 float64) and detection flags (N bools) of uint8 N×H×W×C images."""
        desc = np.empty((len(images), 128), dtype=np.float64)
        found = np.empty(len(images), dtype=bool)
        for i, image in enumerate(images):
            desc[i], found[i] = self.embed_one(image)
            if on_progress is not None:
                on_progress(1)
        return desc, found


def face_embedding_distance(fakes: np.ndarray, reals: np.ndarray, seed: int = 0,
                            embedder: FaceEmbedder | None = None,
                            on_progress: Callable[[int], object] | None = None) -> dict[str, float]:
    """{"facefd", "facekid", "facekid_std", "facefd_found_fake", "facefd_found_real"} of two uint8 sets."""
    embedder = embedder or FaceEmbedder()
    real, real_found = embedder.embed(reals, on_progress)
    fake, fake_found = embedder.embed(fakes, on_progress)
    kid, kid_std = kernel_distance(fake, real, seed=seed)
    return {"facefd": frechet_distance_of(fake, real), "facekid": kid, "facekid_std": kid_std,
            "facefd_found_fake": float(fake_found.mean()), "facefd_found_real": float(real_found.mean())}


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, float]:
    count = min(ctx.options.facefd_n, len(fakes), len(reals))
    with progress_bar(2 * count, "facefd", unit="img", enabled=ctx.show_progress) as bar:
        out = face_embedding_distance(fakes[:count], reals[:count], seed=ctx.seed, on_progress=bar.update)
    out["facefd_n"] = count
    return out


def _prepare(options: MetricOptions) -> None:
    import_dlib()
    model_dir()


def _summary(result: dict[str, object], label: str) -> str:
    return f"{label}: {fmt(result, 'facefd')}  facekid: {fmt(result, 'facekid')} ± {fmt(result, 'facekid_std')}"


METRIC = Metric(
    "facefd", key="facefd", title="face FD",
    description="Fréchet distance and KID of dlib face descriptors (needs facegan[faces]; lower is better)",
    score=_score, summary=_summary, available=lambda options: dlib_available(), prepare=_prepare,
    count_key="facefd_n",
)
