"""Robust decoding of one image (file bytes or array) into a square uint8 H×W×C array, or a reason to skip it.

`decode_image` never lets a bad file raise anything but `BadImageError` (category + detail): truncated or empty
files, non-images, decompression bombs and corrupt streams are all reasons, not crashes. Tricky but valid
images are converted: CMYK → RGB, palette/alpha → composited on white, 16-bit → 8-bit, animated → first
frame, EXIF orientation applied, grey ↔ RGB as asked. JPEGs are decoded at reduced scale (draft mode) when
the output is much smaller than the file, then resampled with Lanczos.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

CROPS = ("center", "celeba", "none")
# Aligned CelebA images are 178×218; the common face crop is the 178×178 square at rows 20-198.
CELEBA_SIZE = (178, 218)
CELEBA_BOX = (0, 20, 178, 198)
DEFAULT_MAX_PIXELS = 100_000_000  # larger images are skipped as possible decompression bombs

# EXIF orientation tag (0x0112) value → the transpose that makes the image upright.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class BadImageError(Exception):
    """Raised for an input that cannot become a training image; `category` is a short stable key."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail


@dataclass(frozen=True)
class DecodeOptions:
    """How every image is turned into the dataset's square format."""

    resolution: int = 64
    channels: int = 3
    crop: str = "center"
    max_pixels: int = DEFAULT_MAX_PIXELS


@contextlib.contextmanager
def pillow_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to `max_pixels` for this block only, with Pillow's warnings
    silenced except the bomb warning, which becomes an error (so the same file gives the same verdict
    whatever the caller's warning filters are)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def crop_box(width: int, height: int, crop: str) -> tuple[float, float, float, float]:
    """The source rectangle (left, top, right, bottom) that becomes the square output."""
    if crop == "center":
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        return (left, top, left + side, top + side)
    if crop == "celeba":
        # The aligned-CelebA rectangle, scaled with the image when it is not exactly 178×218.
        sx, sy = width / CELEBA_SIZE[0], height / CELEBA_SIZE[1]
        return (CELEBA_BOX[0] * sx, CELEBA_BOX[1] * sy, CELEBA_BOX[2] * sx, CELEBA_BOX[3] * sy)
    if crop == "none":
        return (0.0, 0.0, float(width), float(height))
    raise ValueError(f"unknown crop {crop!r}; choose from {', '.join(CROPS)}")


def _stored_box(box: tuple[float, float, float, float], upright: tuple[int, int],
                orientation: int) -> tuple[float, float, float, float]:
    """A box given in upright coordinates, in the coordinates of the pixels as stored (before EXIF rotation)."""
    left, top, right, bottom = box
    w, h = upright
    return {
        2: (w - right, top, w - left, bottom),              # mirrored left-right
        3: (w - right, h - bottom, w - left, h - top),      # rotated 180°
        4: (left, h - bottom, right, h - top),              # mirrored top-bottom
        5: (top, left, bottom, right),                      # transposed
        6: (top, w - right, bottom, w - left),              # stored rotated 90° counter-clockwise
        7: (h - bottom, w - right, h - top, w - left),      # transversed
        8: (h - bottom, left, h - top, right),              # stored rotated 90° clockwise
    }.get(orientation, box)


def _draft_scale(box: tuple[float, float, float, float], resolution: int) -> int:
    """How much a JPEG may be shrunk while decoding (1, 2, 4 or 8) with the crop still sharp enough.

    Halving is nearly lossless as long as the crop keeps `resolution` pixels; libjpeg's 1/4 and 1/8 scaling
    is coarser, so those keep at least twice the output size (mean error vs a full decode ≈ 1 level of 255).
    """
    side = min(box[2] - box[0], box[3] - box[1])
    for scale in (8, 4):
        if side / scale >= 2 * resolution:
            return scale
    return 2 if side / 2 >= resolution else 1


def _exif_orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a corrupt EXIF block only loses the orientation, never the image
        return 1
    return value if isinstance(value, int) else 1


def _sixteen_to_eight(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer / float) greyscale to 8-bit by scaling, not clipping."""
    array = np.asarray(img, dtype=np.float64)
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and array.size and array.max() > 255):
        array = array / 257.0
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))


def _working_mode(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 'L' or 'RGB' (alpha composited on white), or 'CMYK' when an ICC profile will
    convert it; 16-bit scaled to 8-bit."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        img = _sixteen_to_eight(img)
    if img.mode in _ALPHA_MODES or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("L", "RGB") or (img.mode == "CMYK" and img.info.get("icc_profile")):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")  # P, CMYK, YCbCr, LAB, HSV


@functools.lru_cache(maxsize=8)
def _srgb_transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from an embedded ICC profile to sRGB (cached: building one takes milliseconds)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, "RGB")
    except Exception:  # an unreadable profile is ignored: the pixels are taken as sRGB
        return None


def _output(small: Image.Image, profile: bytes | None, channels: int) -> np.ndarray:
    """A resampled L/RGB/CMYK image as sRGB (via its ICC profile, if any) uint8 H×W×channels."""
    if profile and small.mode in ("RGB", "CMYK"):
        transform = _srgb_transform(profile, small.mode)
        if transform is not None:
            small = ImageCms.applyTransform(small, transform)
    target = "L" if channels == 1 else "RGB"
    if small.mode == "CMYK":
        small = small.convert("RGB")
    if small.mode != target:
        small = small.convert(target)  # RGB → L uses ITU-R 601 luma
    array = np.asarray(small, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def _resample(img: Image.Image, box: tuple[float, float, float, float], resolution: int) -> Image.Image:
    """`box` of the image resampled to resolution² with Lanczos (after an integer `reduce` when far larger)."""
    size = (resolution, resolution)
    if img.size == size and box == (0.0, 0.0, float(img.width), float(img.height)):
        return img
    # A float box resamples within the whole image, as Resize followed by CenterCrop does.
    return img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _square(img: Image.Image, opts: DecodeOptions) -> np.ndarray:
    """Crop (opts.crop) and resample an upright image to resolution², as uint8 H×W×C."""
    img = _working_mode(img)
    return _output(_resample(img, crop_box(img.width, img.height, opts.crop), opts.resolution), None, opts.channels)


def _decode_pil(img: Image.Image, opts: DecodeOptions) -> np.ndarray:
    """Decode an opened image: the crop is found in upright coordinates, mapped onto the stored pixels
    (so a JPEG can be decoded at reduced scale whatever its orientation), and the small result is rotated."""
    width, height = img.size
    if width < 1 or height < 1:
        raise BadImageError("corrupt", f"image has no pixels ({width}×{height})")
    is_jpeg = img.format in ("JPEG", "MPO")
    scale = 1.0
    if is_jpeg:  # a JPEG's EXIF is read with its header, before any pixel is decoded
        orientation = _exif_orientation(img)
        upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        draft = _draft_scale(_stored_box(crop_box(*upright, opts.crop), upright, orientation), opts.resolution)
        if draft > 1:
            result = img.draft("L" if opts.channels == 1 and img.mode == "RGB" else None,
                               (max(1, width // draft), max(1, height // draft)))
            if result is not None:
                scale = width / result[1][2]  # the decoded image covers (0, 0, width/scale, height/scale)
    img.load()
    if not is_jpeg:
        orientation = _exif_orientation(img)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    box = tuple(v / scale for v in _stored_box(crop_box(*upright, opts.crop), upright, orientation))
    # Colour conversions (ICC → sRGB, grey ↔ RGB) run on the small resampled image, not the full one.
    small = _resample(_working_mode(img), box, opts.resolution)
    array = _output(small, img.info.get("icc_profile"), opts.channels)
    if orientation in _EXIF_TRANSPOSE:
        array = np.ascontiguousarray(_transpose_array(array, orientation))
    return array


def _transpose_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF transpose of `_EXIF_TRANSPOSE[orientation]`, on an H×W×C array."""
    return {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, k=1),
    }[orientation](array)


def _reason_for(exc: BaseException, max_pixels: int) -> BadImageError:
    """Map whatever Pillow raised to a stable skip category."""
    if isinstance(exc, BadImageError):
        return exc
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        pixels = re.search(r"\((\d+) pixels\)", message)
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        return BadImageError("decompression-bomb", f"{size}, over the limit of {max_pixels:,} (--max-pixels)")
    if isinstance(exc, UnidentifiedImageError):
        return BadImageError("not-an-image", "not a recognised image format")
    if "truncated" in message.lower():
        return BadImageError("truncated", message)
    if isinstance(exc, MemoryError):
        return BadImageError("too-large", "not enough memory to decode")
    return BadImageError("corrupt", f"{type(exc).__name__}: {message}")


def decode_image(data: bytes, opts: DecodeOptions) -> np.ndarray:
    """Encoded image bytes → uint8 resolution×resolution×channels; raises `BadImageError` for anything bad."""
    if not data:
        raise BadImageError("empty", "zero-byte file")
    with pillow_limits(opts.max_pixels):
        try:
            with Image.open(io.BytesIO(data)) as img:
                return _decode_pil(img, opts)
        except Exception as exc:  # a bad file is a reason, never a crash
            raise _reason_for(exc, opts.max_pixels) from None


def decode_array(image: np.ndarray, opts: DecodeOptions) -> np.ndarray:
    """A uint8 H×W, H×W×1, H×W×3 or H×W×4 array → uint8 resolution×resolution×channels."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise BadImageError("unsupported-shape", f"array image of shape {image.shape}")
    return _square(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)), opts)


# A payload is what a worker needs to produce one row: ("path", str), ("bytes", bytes),
# ("array", ndarray) or ("error", category, detail) for a problem found while reading the source.
Payload = tuple[Any, ...]


@dataclass
class ChunkResult:
    """What a worker sends back for a chunk: the decoded rows (in `indices` order) and the failures."""

    indices: list[int]
    rows: np.ndarray
    digests: list[bytes]
    failures: list[tuple[int, str, str]]


def _payload_bytes(payload: Payload) -> bytes:
    kind = payload[0]
    if kind == "bytes":
        return payload[1]
    try:
        with open(payload[1], "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise BadImageError("unreadable", exc.strerror or type(exc).__name__) from None


def decode_chunk(task: tuple[DecodeOptions, bool, list[tuple[int, Payload]]]) -> ChunkResult:
    """Decode a chunk of payloads (a top-level function, so it runs in worker processes)."""
    opts, want_digests, items = task
    indices: list[int] = []
    rows: list[np.ndarray] = []
    digests: list[bytes] = []
    failures: list[tuple[int, str, str]] = []
    for index, payload in items:
        try:
            if payload[0] == "error":
                raise BadImageError(payload[1], payload[2])
            if payload[0] == "array":
                raw = payload[1]
                row = decode_array(raw, opts)
                data = np.ascontiguousarray(raw).tobytes() if want_digests else b""
            else:
                data = _payload_bytes(payload)
                row = decode_image(data, opts)
        except BadImageError as skip:
            failures.append((index, skip.category, skip.detail))
            continue
        indices.append(index)
        rows.append(row)
        digests.append(hashlib.blake2b(data, digest_size=16).digest() if want_digests else b"")
    shape = (len(rows), opts.resolution, opts.resolution, opts.channels)
    stacked = np.stack(rows) if rows else np.empty(shape, dtype=np.uint8)
    return ChunkResult(indices=indices, rows=stacked, digests=digests, failures=failures)
