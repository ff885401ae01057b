"""Image sets for the metric tests: synthetic faces (real LFW crops: tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def synthetic_faces() -> np.ndarray:
    """300 procedural 32-px RGB faces."""
    from facegan.data.synthetic import render_faces

    return render_faces(300, 32, seed=3)[0]
