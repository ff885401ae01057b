"""Face-detection rate: the share of images in which OpenCV's frontal-face Haar cascade finds a face.

A cheap, fully offline sanity check of "does it look like a face at all": each image is turned grey and
upscaled (bicubic) to 100×100 px, then `haarcascade_frontalface_default.xml` (Viola-Jones, shipped with
opencv-python-headless < 5) looks for a face at least 30 px wide. With these settings it finds 91 of the 100
real LFW faces in tests/data/fixtures/lfw-subset and none of the 100 non-face crops or of pure noise. Detectors
miss some real faces too, so the rate of fakes is reported beside the rate of the real set and as their ratio
(1.0: fakes look as face-like to the cascade as the training images do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facegan.errors import FaceganError
from facegan.metrics.metric import Metric, ScoreContext, fmt
from facegan.utils.progress import progress_bar

CASCADE_NAME = "haarcascade_frontalface_default.xml"
DETECT_SIZE = 100  # images are upscaled to this square size: the cascade's 24-px window needs room to slide
SCALE_FACTOR = 1.05
MIN_NEIGHBORS = 3
MIN_FACE_FRACTION = 0.3  # the smallest face searched for, as a share of the image side (aligned crops)


@dataclass
class FaceRates:
    """Detection rates of fakes and reals, and fake/real (None when no real face was found)."""

    fake: float
    real: float
    ratio: float | None

    def as_dict(self) -> dict[str, float | None]:
        """The JSON form used in eval files."""
        return {"faces_fake": self.fake, "faces_real": self.real, "faces_ratio": self.ratio}


def cascade_path() -> Path:
    """The frontal-face cascade file that ships with OpenCV."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / CASCADE_NAME
    if not folder or not path.is_file():
        raise FaceganError(
            f"OpenCV {cv2.__version__} ships no {CASCADE_NAME} (version 5 dropped the Haar cascades); "
            "install opencv-python-headless>=4.10,<5"
        )
    return path


class FaceDetector:
    """The Haar cascade with facegan's fixed settings; `detect` returns one bool per image."""

    def __init__(self, size: int = DETECT_SIZE) -> None:
        self.size = size
        self.cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self.cascade.empty():
            raise FaceganError(f"OpenCV could not load {cascade_path()}")
        side = max(1, round(MIN_FACE_FRACTION * size))
        self.min_size = (side, side)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A uint8 H×W×C (or H×W) image as a grey size×size array."""
        if image.ndim == 3 and image.shape[2] == 3:
            grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        else:
            grey = np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1]))
        return cv2.resize(grey, (self.size, self.size), interpolation=cv2.INTER_CUBIC)

    def detect_one(self, image: np.ndarray) -> bool:
        """True if the cascade finds at least one face in the image."""
        found = self.cascade.detectMultiScale(
            self.prepare(image), scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=self.min_size)
        return len(found) > 0

    def detect(self, images: np.ndarray) -> np.ndarray:
        """One bool per image of a uint8 N×H×W×C array."""
        return np.fromiter((self.detect_one(image) for image in images), dtype=bool, count=len(images))


def face_rate(images: np.ndarray, detector: FaceDetector | None = None) -> float:
    """Share of images (0..1) in which a face is found."""
    if len(images) == 0:
        raise ValueError("no images to look for faces in")
    return float((detector or FaceDetector()).detect(images).mean())


def face_rates(fakes: np.ndarray, reals: np.ndarray, real_rate: float | None = None) -> FaceRates:
    """Detection rates of fakes and reals and their ratio; pass `real_rate` to reuse a known real rate."""
    detector = FaceDetector()
    fake = face_rate(fakes, detector)
    real = real_rate if real_rate is not None else face_rate(reals, detector)
    return FaceRates(fake=fake, real=real, ratio=fake / real if real > 0 else None)


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, float | None]:
    detector = FaceDetector()
    known = ctx.reference  # the reals' rate, measured once when the reals do not change (during training)
    with progress_bar(len(fakes) + (len(reals) if known is None else 0), "faces", unit="img",
                      enabled=ctx.show_progress) as bar:
        fake = float(detector.detect(fakes).mean())
        bar.update(len(fakes))
        if known is None:
            known = float(detector.detect(reals).mean())
            bar.update(len(reals))
    return FaceRates(fake, known, fake / known if known > 0 else None).as_dict()


def _real_rate(reals: np.ndarray, seed: int) -> float:
    return face_rate(reals)


def _summary(result: dict[str, object], label: str) -> str:
    return (f"{label}: {fmt(result, 'faces_fake', '{:.1%}')} of fakes, {fmt(result, 'faces_real', '{:.1%}')} of "
            f"reals, ratio {fmt(result, 'faces_ratio', '{:.3f}')}")


METRIC = Metric(
    "faces", key="faces_fake", title="face rate (fakes)",
    description="Haar-cascade face-detection rate of fakes and of reals (compare the two)",
    score=_score, summary=_summary, lower_is_better=None, prepare_reals=_real_rate, during_training=True,
)
