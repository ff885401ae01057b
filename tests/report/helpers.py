"""Checks shared by the report tests: valid image files and the files a page links to."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append(value)
                if tag == "img" and name == "src":
                    self.images.append(value)


def page_links(index: Path) -> tuple[list[str], list[str]]:
    """(every src/href, the img srcs) of an HTML file."""
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.links, parser.images


def assert_links_exist(index: Path) -> list[str]:
    """Every link of the page is an in-page anchor or a relative file beside it that exists; returns the files."""
    links, _ = page_links(index)
    files = []
    for link in links:
        if link.startswith("#"):
            continue
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc, f"page links outside its folder: {link}"
        assert not link.startswith("/") and ".." not in Path(link).parts, link
        assert (index.parent / link).is_file(), f"{link} is linked but missing"
        files.append(link)
    return files


def image_info(path: Path) -> tuple[str, tuple[int, int], int]:
    """(format, size, frame count) of an image file, after checking it decodes."""
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1)
        for i in range(frames):  # decode every frame, not just the header
            img.seek(i)
            img.load()
        return img.format, img.size, frames
