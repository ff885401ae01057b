"""Inputs for the prepare tests: real faces, CelebA-shaped JPEGs, MNIST IDX files and a corpus of bad files."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # real images shipped with the tests (see README.md)
LFW_FACES = FIXTURES / "lfw-subset" / "faces"
ASTRONAUT = FIXTURES / "astronaut.png"
FASHION_MNIST = FIXTURES / "fashion-mnist"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """The bytes of `image` saved as `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def astronaut() -> Image.Image:
    with Image.open(ASTRONAUT) as img:
        return img.convert("RGB")


def lfw_face(i: int) -> Image.Image:
    with Image.open(sorted(LFW_FACES.glob("*.png"))[i]) as img:
        return img.convert("L")


def celeba_like(i: int, base: Image.Image | None = None) -> Image.Image:
    """A 178×218 RGB portrait: a crop of the astronaut photo with an LFW face laid over its middle."""
    base = base or astronaut()
    side = min(base.size)
    rng = np.random.default_rng(i)
    scale = rng.uniform(max(0.45, 218 / side), 1.0)  # never a crop smaller than the portrait: no upscaling
    w, h = int(side * scale * 178 / 218), int(side * scale)
    x, y = int(rng.integers(0, base.width - w + 1)), int(rng.integers(0, base.height - h + 1))
    img = base.crop((x, y, x + w, y + h)).resize((178, 218), Image.Resampling.BILINEAR)
    face = lfw_face(i % 100).resize((110, 110), Image.Resampling.BICUBIC).convert("RGB")
    img.paste(face, (34, 54))
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims side×side pixels (a decompression bomb to any naive decoder)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def broken_stream_png() -> bytes:
    """A PNG with a valid header whose pixel data is not valid zlib (a corrupt stream, not a truncation)."""
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 50)
            + png_chunk(b"IEND", b""))


def exif_rotated_jpeg() -> bytes:
    """A 40×20 JPEG, left half black and right half white, tagged EXIF orientation 6 (rotate 90° clockwise):
    upright it is 20×40 with the black half on top."""
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, 20:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(Image.fromarray(array), "JPEG", quality=95, exif=exif)


def palette_png_with_transparency() -> bytes:
    """32×32 palette PNG: left half colour 0 (transparent), right half colour 1 (red)."""
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    img.paste(1, (16, 0, 32, 32))
    return encode(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    """Two frames: red then blue."""
    frames = [Image.new("RGB", (24, 24), (255, 0, 0)), Image.new("RGB", (24, 24), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def build_corpus(root: Path) -> tuple[list[str], dict[str, str]]:
    """Good and bad files under `root`: (sorted good names, {bad name: expected skip reason}).

    Good ones include the tricky-but-valid kinds (CMYK JPEG, palette PNG with transparency, 16-bit PNG,
    animated GIF, EXIF-rotated, grey-with-alpha, upper-case extension, nested folder, BMP/TIFF/WebP).
    """
    root.mkdir(parents=True, exist_ok=True)
    photo = celeba_like(0)
    jpeg = encode(photo, "JPEG", quality=90)
    png = encode(lfw_face(1), "PNG")
    red = Image.new("RGB", (30, 30), (230, 20, 20))
    good = {
        "photo.jpg": jpeg,
        "FACE.PNG": png,
        "nested/deeper/astro.jpeg": encode(astronaut().resize((128, 128)), "JPEG", quality=85),
        "cmyk.jpg": encode(red.convert("CMYK"), "JPEG", quality=95),
        "palette_transparent.png": palette_png_with_transparency(),
        "grey16.png": encode(Image.fromarray(np.full((20, 20), 32768, np.uint16)), "PNG"),
        "animated.gif": animated_gif(),
        "rotated.jpg": exif_rotated_jpeg(),
        "grey_alpha.png": encode(Image.new("LA", (16, 16), (0, 0)), "PNG"),
        "bitmap.bmp": encode(red, "BMP"),
        "scan.tif": encode(red, "TIFF"),
        "web.webp": encode(red, "WEBP", quality=90),
    }
    bad = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "header_only.jpg": (jpeg[:300], "truncated"),
        "notes.jpg": (b"these are my holiday notes, not a picture\n" * 5, "not-an-image"),
        "noise.png": (np.random.default_rng(0).bytes(2048), "not-an-image"),
        "page.gif": (b"<!DOCTYPE html><html><body>404 not found</body></html>", "not-an-image"),
        "bad_crc.png": (png[:29] + bytes([png[29] ^ 0xFF]) + png[30:], "not-an-image"),
        "bomb.png": (bomb_png(), "decompression-bomb"),
        "broken_stream.png": (broken_stream_png(), "corrupt"),
        "readme.txt": (b"not an image at all", "unsupported-extension"),
        "._photo.jpg": (b"\x00\x05\x16\x07AppleDouble resource fork", "resource-fork"),
        "photo_copy.jpg": (jpeg, "duplicate"),
    }
    for name, data in good.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name, (data, _) in bad.items():
        (root / name).write_bytes(data)
    return sorted(good), {name: reason for name, (_, reason) in bad.items()}


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (MNIST format) for a uint8 array; gzipped when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def celeba_attribute_text(names: list[str], attributes: list[str], rows: np.ndarray) -> str:
    """A list_attr_celeba.txt for `names`, in CelebA's layout (count, names, then one ±1 row per image)."""
    lines = [str(len(names)), " ".join(attributes) + " "]
    lines += [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, rows, strict=True)]
    return "\n".join(lines) + "\n"
