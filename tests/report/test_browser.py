"""The report page in a real browser: headless Debian chromium driven by Playwright, opened from disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import image_info

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no browser at /usr/bin/chromium: install Debian's chromium (`make system-deps` does) to run this test",
)


@pytest.mark.slow  # starts a browser (and the tiny run, if no other test has)
def test_report_opens_from_disk_with_no_errors_and_no_broken_images(tiny_report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_dir = tmp_path / "moved report"  # from disk, any folder: nothing may point back into the run
    shutil.copytree(tiny_report.parent, page_dir)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto((page_dir / "index.html").as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, "
                "w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
            title = page.title()
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert title.startswith("facegan report")
    assert len(images) >= 11
    broken = [i["src"] for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0 and i["shown"] > 0)]
    assert broken == []
    fmt, (width, height), _ = image_info(screenshot)
    assert fmt == "PNG" and width == 1400 and height > 2000  # the whole page, not just the first screen
