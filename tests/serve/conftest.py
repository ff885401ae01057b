"""Fixtures for the server tests: one tiny trained run, the app over it, and a live uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facegan.serve import create_app
from facegan.training.loop import train
from factories import tiny_config

from .live import served


@pytest.fixture(scope="session")
def serve_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px DCGAN (ngf/ndf 8, the default 100-d latent) trained 20 steps, with eval/ results."""
    run = tmp_path_factory.mktemp("serve") / "run"
    config = tiny_config(tiny_dataset, steps=20, sample_every=100, checkpoint_every=100)
    config.model.nz = 100  # the default size: torch draws 100-d latents differently for different counts
    config.optim.lr_g = config.optim.lr_d = 2e-3  # far enough from the flat grey of G at init to tell faces apart
    train(config, run, show_progress=False)
    (run / "eval").mkdir()
    (run / "eval" / "swd.json").write_text(json.dumps({"step": 3, "swd_1k": 0.125, "per_level": [1.0, 2.0]}))
    (run / "eval" / "broken.json").write_text("{not json")
    (run / "eval" / "nan.json").write_text('{"fid_1k": NaN}')
    return run


@pytest.fixture(scope="session")
def app(serve_run: Path) -> FastAPI:
    """The app over the tiny run (its pool starts lazily, on the first request)."""
    return create_app(serve_run, workers=2)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """An in-process client of `app` (lifespan run, so the pool is closed at the end)."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_url(serve_run: Path) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (a free port) in a background thread; yields its base URL."""
    with served(create_app(serve_run, workers=2)) as url:
        yield url
