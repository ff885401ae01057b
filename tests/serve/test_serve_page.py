"""The page end to end in headless Chromium (Debian's, driven by Playwright): generate, explore, download."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)"),
]


def grid_ready(page, seed: str | None = None) -> None:
    """Wait until the grid image for the page's seed has loaded (and differs from `seed`, if given)."""
    page.wait_for_function(
        "([old]) => document.body.dataset.gridState === 'ready' && $grid().complete && $grid().naturalWidth > 0"
        " && (old === null || $grid().dataset.seed !== old)".replace("$grid()", "document.getElementById('grid')"),
        arg=[seed], timeout=30_000,
    )


def test_page_generates_explores_and_downloads_faces(live_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live_url + "/#seed=5&n=9")
            grid_ready(page)
            assert page.input_value("#seed") == "5" and page.input_value("#count") == "9"
            assert page.locator("#cells button").count() == 9
            assert "step 20" in page.text_content("#model-summary")
            assert "swd_1k" in page.text_content("#metrics")
            first = page.locator("#grid").screenshot()

            # New faces: a new seed, a new grid, and the URL says how to get it back.
            page.click("#new-faces")
            grid_ready(page, seed="5")
            new_seed = page.input_value("#seed")
            assert new_seed != "5"
            assert f"seed={new_seed}" in page.url
            assert page.locator("#grid").screenshot() != first

            # Interpolation: moving the slider redraws the frame from the strip, with no request.
            page.wait_for_function("() => document.body.dataset.stripState === 'ready'", timeout=30_000)
            frame = "document.getElementById('interp-frame').toDataURL()"
            start = page.evaluate(frame)
            page.fill("#interp-slider", "20")
            assert page.text_content("#interp-t") == "t = 0.65"
            assert page.evaluate("document.getElementById('interp-frame').dataset.frame") == "20"
            assert page.evaluate(frame) != start

            # Smooth scaling switches the CSS rendering of the grid.
            page.select_option("#scaling", "smooth")
            assert page.evaluate("getComputedStyle(document.getElementById('grid')).imageRendering") == "auto"
            page.select_option("#scaling", "pixelated")

            # A face, large, with its seed and index, downloaded as a PNG; then used as an end of the walk.
            page.click("#cells button[data-index='4']")
            assert page.is_visible("#face-dialog")
            assert page.text_content("#face-label").startswith(f"seed {new_seed} · face 4")
            page.wait_for_function("() => document.getElementById('face-large').naturalWidth === 512", timeout=30_000)
            with page.expect_download() as info:
                page.click("#face-download")
            download = info.value
            assert download.suggested_filename == f"facegan-seed-{new_seed}-face-4-512px.png"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            with Image.open(saved) as image:
                assert image.format == "PNG" and image.size == (512, 512)
            page.click("#use-b")
            assert not page.is_visible("#face-dialog")
            page.wait_for_function("() => document.body.dataset.stripState === 'ready'", timeout=30_000)
            assert page.text_content("#end-b-label") == f"B: seed {new_seed} · face 4"

            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot), full_page=True)
            with Image.open(io.BytesIO(shot.read_bytes())) as image:
                assert image.size[0] == 1280 and image.size[1] >= 600
        finally:
            browser.close()
    assert errors == []
