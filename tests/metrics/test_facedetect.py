"""Face-detection rate: the Haar cascade tells real faces from non-faces and noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facegan.errors import FaceganError
from facegan.metrics import facedetect
from facegan.metrics.facedetect import FaceDetector, face_rate, face_rates


def test_cascade_finds_real_faces_but_not_nonfaces_or_noise(lfw_faces: np.ndarray, lfw_nonfaces: np.ndarray) -> None:
    detector = FaceDetector()
    assert len(lfw_faces) == len(lfw_nonfaces) == 100
    assert detector.detect(lfw_faces).sum() >= 85
    assert detector.detect(lfw_nonfaces).sum() <= 5
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 256, size=(50, 32, 32, 3), dtype=np.uint8)
    gaussian = (128 + 40 * rng.standard_normal((50, 64, 64, 1))).clip(0, 255).astype(np.uint8)
    assert detector.detect(uniform).sum() + detector.detect(gaussian).sum() <= 5


def test_rates_and_ratio(lfw_faces: np.ndarray, lfw_nonfaces: np.ndarray) -> None:
    mixed = np.concatenate([lfw_faces[:20], lfw_nonfaces[:20]])
    rates = face_rates(mixed, lfw_faces[:40])
    assert 0.4 <= rates.fake <= 0.5
    assert rates.real >= 0.85
    assert rates.ratio == pytest.approx(rates.fake / rates.real)
    assert face_rates(lfw_faces[:5], lfw_nonfaces[:5]).ratio is None  # no real face found: no ratio
    assert set(rates.as_dict()) == {"faces_fake", "faces_real", "faces_ratio"}


def test_rgb_and_grey_inputs_agree(lfw_faces: np.ndarray) -> None:
    rgb = np.repeat(lfw_faces[:30], 3, axis=3)
    assert face_rate(rgb) == face_rate(lfw_faces[:30])
    prepared = FaceDetector().prepare(rgb[0])
    assert prepared.shape == (facedetect.DETECT_SIZE, facedetect.DETECT_SIZE) and prepared.dtype == np.uint8


def test_missing_cascade_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(FaceganError, match=r"opencv-python-headless>=4\.10,<5"):
        FaceDetector()
