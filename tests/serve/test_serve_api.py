"""The HTTP API through FastAPI's TestClient: every endpoint, determinism, and every validation error."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facegan.serve.app import MAX_PIXELS
from facegan.serve.render import GRID_PADDING


def pixels(content: bytes) -> np.ndarray:
    """A PNG/GIF (first frame) as an H×W×3 uint8 array."""
    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image.convert("RGB"))


def grid_cell(grid: np.ndarray, i: int, n: int, size: int) -> np.ndarray:
    """Face i of a /api/faces grid of n faces."""
    cols = math.ceil(math.sqrt(n))
    top = GRID_PADDING + (i // cols) * (size + GRID_PADDING)
    left = GRID_PADDING + (i % cols) * (size + GRID_PADDING)
    return grid[top : top + size, left : left + size]


def test_faces_grid_is_a_png_of_n_faces(client: TestClient) -> None:
    r = client.get("/api/faces", params={"seed": 5, "n": 7})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    # 7 faces: 3 per row, 3 rows of 32-px faces with 2-px gaps
    assert pixels(r.content).shape == (3 * 34 + 2, 3 * 34 + 2, 3)
    r = client.get("/api/faces", params={"seed": 5, "n": 2, "size": 64})
    assert pixels(r.content).shape == (66 + 2, 2 * 66 + 2, 3)


def test_same_parameters_give_byte_identical_images(client: TestClient) -> None:
    for url in ("/api/faces?seed=11&n=9&truncation=0.7", "/api/face?seed=11&index=3&size=48&smooth=true",
                "/api/interpolate?seed_a=1&seed_b=2&steps=5", "/api/interpolate?seed_a=1&seed_b=2&format=gif"):
        first, second = client.get(url), client.get(url)
        assert first.status_code == 200
        assert first.content == second.content, url
        assert first.headers["etag"] == second.headers["etag"]
    assert client.get("/api/faces?seed=11&n=9").content != client.get("/api/faces?seed=12&n=9").content


def test_face_index_is_the_same_face_as_in_the_grid(client: TestClient) -> None:
    # Odd counts matter: torch draws a different latent sequence for 5, 7 or 64 rows of 100-d latents.
    grids = {n: pixels(client.get("/api/faces", params={"seed": 42, "n": n}).content) for n in (1, 5, 7, 64)}
    for index in (0, 3, 4, 6, 63):
        face = pixels(client.get("/api/face", params={"seed": 42, "index": index}).content)
        assert face.shape == (32, 32, 3)
        for n, grid in grids.items():
            if index < n:
                assert np.array_equal(grid_cell(grid, index, n, 32), face), (index, n)
    # Enlarged faces are the same face, scaled by nearest neighbour.
    big = pixels(client.get("/api/face", params={"seed": 42, "index": 3, "size": 96}).content)
    small = pixels(client.get("/api/face", params={"seed": 42, "index": 3}).content)
    assert np.array_equal(big[::3, ::3], small)


def test_truncation_and_smooth_change_the_image(client: TestClient) -> None:
    base = client.get("/api/face?seed=3&index=1&size=64").content
    assert client.get("/api/face?seed=3&index=1&size=64&truncation=0.5").content != base
    assert client.get("/api/face?seed=3&index=1&size=64&smooth=true").content != base
    mean = [pixels(client.get(f"/api/face?seed={s}&index={i}&truncation=0").content) for s, i in ((1, 0), (9, 5))]
    assert np.array_equal(*mean)  # truncation 0: every latent is the mean, so every face is the same


def test_interpolation_strip_runs_from_face_a_to_face_b(client: TestClient) -> None:
    r = client.get("/api/interpolate", params={"seed_a": 7, "index_a": 2, "seed_b": 8, "index_b": 5, "steps": 6})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    strip = pixels(r.content)
    assert strip.shape == (32, 6 * 32, 3)
    a = pixels(client.get("/api/face?seed=7&index=2").content)
    b = pixels(client.get("/api/face?seed=8&index=5").content)
    assert np.array_equal(strip[:, :32], a)
    assert np.array_equal(strip[:, -32:], b)
    frames = [strip[:, k * 32 : (k + 1) * 32] for k in range(6)]
    assert all(not np.array_equal(frames[k], frames[k + 1]) for k in range(5))


def test_interpolation_gif_loops_forth_and_back(client: TestClient) -> None:
    r = client.get("/api/interpolate", params={"seed_a": 1, "seed_b": 2, "steps": 5, "size": 64, "format": "gif"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(r.content)) as gif:
        assert gif.size == (64, 64)
        assert gif.n_frames == 8  # 5 frames out, 3 back
        assert gif.info["loop"] == 0


def test_etag_gives_304_and_names_the_parameters(client: TestClient) -> None:
    r = client.get("/api/faces?seed=1&n=4")
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "no-cache"
    again = client.get("/api/faces?seed=1&n=4", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/api/faces?seed=1&n=5", headers={"If-None-Match": etag}).status_code == 200
    assert client.get("/api/faces?seed=01&n=4").headers["etag"] == etag  # same values, same image


def test_info_reports_config_step_dataset_and_metrics(client: TestClient, serve_run) -> None:
    info = client.get("/api/info").json()
    assert info["step"] == 20
    assert info["images_seen"] == 20 * 16
    assert info["model"]["resolution"] == 32 and info["model"]["nz"] == 100 and info["model"]["ngf"] == 8
    assert info["config"]["train"]["batch_size"] == 16
    assert info["run_dir"] == str(serve_run.resolve())
    assert info["dataset"]["available"] is True and info["dataset"]["count"] == 256
    assert info["metrics"]["swd"] == {"step": 3, "swd_1k": 0.125, "per_level": [1.0, 2.0]}
    assert "error" in info["metrics"]["broken"]
    assert info["metrics"]["nan"] == {"fid_1k": None}  # NaN is not JSON
    assert info["limits"]["max_faces"] == 64 and info["limits"]["max_pixels"] == MAX_PIXELS
    assert 1 in info["serving"]["batch_invariant_sizes"]
    assert len(info["model_id"]) == 16


def test_health(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["step"] == 20
    assert health["pending"] == 0 and health["rejected"] == 0


def test_page_and_static_files_are_served_with_no_outside_urls(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
        assert f"/static/{name}" in page.text
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text
    docs = client.get("/docs").text  # Swagger UI from this server, not a CDN
    assert "cdn" not in docs.lower() and "swagger-ui-bundle.js" in docs


@pytest.mark.parametrize(
    ("url", "field", "words"),
    [
        ("/api/faces?n=0", "n", "greater than or equal to 1"),
        ("/api/faces?n=65", "n", "less than or equal to 64"),
        ("/api/faces?n=abc", "n", "valid integer"),
        ("/api/faces?seed=-1", "seed", "greater than or equal to 0"),
        ("/api/faces?seed=4294967296", "seed", "less than or equal to 4294967295"),
        ("/api/faces?size=7", "size", "greater than or equal to 8"),
        ("/api/faces?size=1025", "size", "less than or equal to 1024"),
        ("/api/faces?truncation=1.5", "truncation", "less than or equal to 1"),
        ("/api/faces?truncation=-0.1", "truncation", "greater than or equal to 0"),
        ("/api/faces?truncation=nan", "truncation", ""),
        ("/api/faces?smooth=maybe", "smooth", "valid boolean"),
        ("/api/faces?n=64&size=512", "size", "over the limit of 4194304"),
        ("/api/face?index=64", "index", "less than 64"),
        ("/api/face?index=-1", "index", "greater than or equal to 0"),
        ("/api/face?seed=99999999999", "seed", "less than or equal to 4294967295"),
        ("/api/face?size=2000", "size", "less than or equal to 1024"),
        ("/api/interpolate?seed_b=1", "seed_a", "required"),
        ("/api/interpolate?seed_a=1", "seed_b", "required"),
        ("/api/interpolate?seed_a=1&seed_b=2&steps=1", "steps", "greater than or equal to 2"),
        ("/api/interpolate?seed_a=1&seed_b=2&steps=65", "steps", "less than or equal to 64"),
        ("/api/interpolate?seed_a=1&seed_b=2&steps=64&size=512", "size", "over the limit"),
        ("/api/interpolate?seed_a=1&seed_b=2&format=jpeg", "format", "'png' or 'gif'"),
        ("/api/interpolate?seed_a=1&seed_b=2&index_b=70", "index_b", "less than 64"),
    ],
)
def test_validation_errors_are_422_with_a_message(client: TestClient, url: str, field: str, words: str) -> None:
    r = client.get(url)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", field]
    assert words.lower() in error["msg"].lower()


def test_pixel_limit_allows_its_own_edge(client: TestClient) -> None:
    # 64 × 256² is exactly the limit; 16 × 512² too.
    assert client.get("/api/faces?n=64&size=256&seed=1", headers={"If-None-Match": "x"}).status_code == 200
    assert client.get("/api/faces?n=16&size=512&seed=1").status_code == 200
    assert client.get("/api/faces?n=17&size=512").status_code == 422


def test_openapi_schema_states_the_limits_and_image_types(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    faces = schema["paths"]["/api/faces"]["get"]
    params = {p["name"]: p["schema"] for p in faces["parameters"]}
    assert params["n"]["maximum"] == 64 and params["n"]["minimum"] == 1
    assert params["size"]["maximum"] == 1024
    assert params["seed"]["maximum"] == 2**32 - 1 and params["seed"]["minimum"] == 0
    assert "image/png" in faces["responses"]["200"]["content"]
    interp = schema["paths"]["/api/interpolate"]["get"]
    assert {"image/png", "image/gif"} <= set(interp["responses"]["200"]["content"])
    steps = next(p["schema"] for p in interp["parameters"] if p["name"] == "steps")
    assert steps["maximum"] == 64


def test_openapi_descriptions_state_the_pixel_limit(client: TestClient) -> None:
    """A client can know from the schema alone that n=16&size=1023 will be refused, and what size would do."""
    paths = client.get("/openapi.json").json()["paths"]
    faces = {p["name"]: p["description"] for p in paths["/api/faces"]["get"]["parameters"]}
    interp = {p["name"]: p["description"] for p in paths["/api/interpolate"]["get"]["parameters"]}
    for text in (faces["n"], faces["size"]):
        assert f"n × size² may not pass {MAX_PIXELS} pixels" in text
        for n in (64, 16, 4):
            assert f"≤ {math.isqrt(MAX_PIXELS // n)} at n = {n}" in text
    for text in (interp["steps"], interp["size"]):
        assert f"steps × size² may not pass {MAX_PIXELS} pixels" in text
    side = math.isqrt(MAX_PIXELS // 16)  # 512: what the descriptions promise for n = 16
    assert client.get(f"/api/faces?n=16&size={side + 1}").status_code == 422
    assert client.get("/api/faces?n=16&size=1023").status_code == 422
    assert side < 1023


def test_a_full_queue_answers_503_with_retry_after(serve_run) -> None:
    import threading

    from facegan.generation.sample import load_generator
    from facegan.serve import create_app

    app = create_app(load_generator(serve_run), workers=1, max_pending=1, chunk_sizes=())
    release = threading.Event()
    with TestClient(app) as small:
        held = app.state.pool.submit(lambda: release.wait(10))
        try:
            r = small.get("/api/face?seed=1")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert "already waiting" in r.json()["detail"]
            assert small.get("/api/health").json()["rejected"] == 1
        finally:
            release.set()
            held.result(10)
        assert small.get("/api/face?seed=1").status_code == 200
