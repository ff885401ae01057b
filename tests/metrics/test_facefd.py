"""Face-embedding Fréchet distance with dlib's descriptors on real LFW faces."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from facegan.errors import FaceganError
from facegan.metrics import facefd
from facegan.metrics.facefd import FaceEmbedder, face_embedding_distance, model_dir
from facegan.metrics.frechet import frechet_distance_of


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


def test_model_files_are_found_without_importing_the_package() -> None:
    # A fresh interpreter: face_recognition_models imports pkg_resources, which setuptools ≥ 81 lacks.
    code = ("import sys; from facegan.metrics.facefd import model_dir, dlib_available; d = model_dir(); "
            "assert dlib_available(); assert 'face_recognition_models' not in sys.modules; print(d)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("models")
    assert (model_dir() / facefd.DESCRIPTOR_MODEL).is_file()


@pytest.mark.slow
def test_face_embedding_distance_on_lfw_faces(embedder: FaceEmbedder, lfw_faces: np.ndarray,
                                              lfw_nonfaces: np.ndarray) -> None:
    faces_a, found_a = embedder.embed(lfw_faces[:16])
    faces_b, found_b = embedder.embed(lfw_faces[16:32])
    nonfaces, found_non = embedder.embed(lfw_nonfaces[:16])
    assert faces_a.shape == (16, 128) and np.isfinite(faces_a).all()
    assert found_a.mean() >= 0.75 and found_b.mean() >= 0.75  # dlib's HOG detector finds most real faces
    assert found_non.mean() <= 0.25
    same_kind = frechet_distance_of(faces_a, faces_b)
    other_kind = frechet_distance_of(faces_a, nonfaces)
    assert 0 < same_kind < 0.8 * other_kind, (same_kind, other_kind)
    result = face_embedding_distance(lfw_faces[:6], lfw_faces[6:12], embedder=embedder)
    assert set(result) == {"facefd", "facekid", "facekid_std", "facefd_found_fake", "facefd_found_real"}
    assert result["facefd"] > 0 and np.isfinite(result["facekid"])


def test_grey_and_rgb_crops_embed_alike(embedder: FaceEmbedder, lfw_faces: np.ndarray) -> None:
    grey, _ = embedder.embed(lfw_faces[:1])
    rgb, _ = embedder.embed(np.repeat(lfw_faces[:1], 3, axis=3))
    np.testing.assert_allclose(grey, rgb, atol=1e-6)


def test_missing_dlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(FaceganError, match=r"needs dlib; install the optional extra: pip install 'facegan\[faces\]'"):
        FaceEmbedder()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real_find_spec(name, *a))
    with pytest.raises(FaceganError, match="model files"):
        model_dir()
    assert not facefd.dlib_available()
