"""Serving a conditional model: the `attr` query parameter of the image API and the page's attribute toggles."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facegan.data.dataset import write_dataset
from facegan.serve import create_app
from facegan.training.loop import train
from factories import blob_images, tiny_config

from .live import served

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


@pytest.fixture(scope="module")
def conditional_run(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px DCGAN conditioned on `shade` (0-2: how bright the blob is) and a ±1 `flag`, trained 12 steps."""
    root = tmp_path_factory.mktemp("serve-conditional")
    shade = np.arange(128) % 3
    images = (blob_images(128, 32, 3, seed=2) * (0.4 + 0.3 * shade)[:, None, None, None]).astype(np.uint8)
    labels = np.stack([shade, np.where(np.arange(128) % 2 == 0, 1, -1)], 1).astype(np.int16)
    write_dataset(root / "data", images, source="test:labelled", labels=labels, label_names=["shade", "flag"])
    config = tiny_config(root / "data", steps=12, sample_every=100, checkpoint_every=100)
    config.model.condition = ["shade", "flag"]
    config.optim.lr_g = config.optim.lr_d = 2e-3
    train(config, root / "run", show_progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def conditional_client(conditional_run: Path) -> Iterator[TestClient]:
    with TestClient(create_app(conditional_run, workers=1)) as client:
        yield client


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_info_lists_the_attributes(conditional_client: TestClient) -> None:
    info = conditional_client.get("/api/info").json()
    assert info["attributes"] == [{"name": "shade", "values": [0, 1, 2]}, {"name": "flag", "values": [-1, 1]}]


def test_attr_conditions_every_image_endpoint(conditional_client: TestClient) -> None:
    get = conditional_client.get
    bright = _png(get("/api/faces", params={"seed": 3, "n": 4, "attr": "shade=2"}))
    dark = _png(get("/api/faces", params={"seed": 3, "n": 4, "attr": "shade=0"}))
    assert not np.array_equal(bright, dark)
    # Face 1 of the grid is /api/face index 1 with the same attributes (batched or alone, the same bytes).
    face = _png(get("/api/face", params={"seed": 3, "index": 1, "attr": "shade=2"}))
    assert np.array_equal(face, bright[2:34, 36:68])
    assert not np.array_equal(face, _png(get("/api/face", params={"seed": 3, "index": 1})))  # no attr: any shade
    strip = _png(get("/api/interpolate", params={"seed_a": 3, "seed_b": 3, "index_b": 1, "steps": 3,
                                                 "attr": "shade=2,flag=-1"}))
    assert strip.shape[:2] == (32, 96)
    a_bright = _png(get("/api/faces", params={"seed": 3, "n": 1, "attr": "shade=2,flag=-1"}))[2:34, 2:34]
    assert np.array_equal(strip[:, :32], a_bright)
    etag_bright = get("/api/face", params={"seed": 3, "attr": "shade=2"}).headers["etag"]
    assert etag_bright != get("/api/face", params={"seed": 3, "attr": "shade=1"}).headers["etag"]


@pytest.mark.parametrize(("attr", "message"), [
    ("smiling=1", "conditioned on shade, flag, not 'smiling'"),
    ("shade=7", "shade takes the values 0, 1, 2, not 7"),
    ("shade", "--attr wants NAME=VALUE pairs"),
    ("SHADE=2", "attr must be NAME=VALUE pairs joined by commas, as /api/info lists them (the pattern ^("),
    ("shade=2;flag=1", "shade: '2;flag=1' is not an integer"),
    ("shade=2,", "attr must be NAME=VALUE pairs"),
])
def test_bad_attr_is_a_422_with_a_message(conditional_client: TestClient, attr: str, message: str) -> None:
    response = conditional_client.get("/api/faces", params={"attr": attr})
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


def test_the_schema_states_the_attr_pattern(conditional_client: TestClient, client: TestClient) -> None:
    def pattern(c: TestClient) -> str:
        parameters = c.get("/openapi.json").json()["paths"]["/api/faces"]["get"]["parameters"]
        return next(p for p in parameters if p["name"] == "attr")["schema"]["pattern"]

    assert pattern(conditional_client) == "^((shade=(0|1|2)|flag=(-1|1))(,(shade=(0|1|2)|flag=(-1|1)))*)?$"
    assert pattern(client) == "^$"


def test_an_unconditional_model_refuses_attr(client: TestClient) -> None:
    assert client.get("/api/info").json()["attributes"] == []
    response = client.get("/api/face", params={"attr": "smiling=1"})
    assert response.status_code == 422 and "trained without --condition" in response.json()["detail"][0]["msg"]
    assert client.get("/api/face", params={"attr": ""}).status_code == 200


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                    reason=f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)")
def test_the_page_has_a_toggle_per_attribute(conditional_run: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with served(create_app(conditional_run, workers=1)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/#seed=4&n=4&attr=shade%3D1")
            ready = "() => document.body.dataset.gridState === 'ready'"
            page.wait_for_function(ready, timeout=30_000)
            selects = page.locator("#attributes select")
            assert selects.count() == 2 and page.locator("#attributes").is_visible()
            assert page.input_value("select[data-attribute=shade]") == "1"  # from the bookmark
            options = page.locator("select[data-attribute=flag] option").all_text_contents()
            assert options == ["any", "-1", "1"]
            before = page.locator("#grid").screenshot()
            with page.expect_request(lambda r: "/api/faces" in r.url and "attr=shade%3D2" in r.url):
                page.select_option("select[data-attribute=shade]", "2")
            page.wait_for_function(ready, timeout=30_000)
            page.wait_for_function("() => location.hash.includes('attr=shade%3D2')", timeout=10_000)
            assert page.locator("#grid").screenshot() != before
        finally:
            browser.close()
    assert errors == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_attr_conforms_to_its_schema(conditional_client: TestClient, mode: str) -> None:
    """Schemathesis on /api/face of the conditional model: every attr the pattern allows works, others get 422."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation.modes import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", conditional_client.app)
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().path == "/api/face")
    strategy = operation.as_strategy(GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE)
    seen: list[str] = []

    @given(case=strategy)
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        if isinstance(case.query, dict) and isinstance(case.query.get("attr"), str):
            seen.append(case.query["attr"])
        case.call_and_validate()

    check()
    assert seen  # attr was exercised
