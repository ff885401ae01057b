"""Decoding one image: crop boxes, EXIF orientation in all eight forms, JPEG draft quality, grey output."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facegan.data.decode import _EXIF_TRANSPOSE, DecodeOptions, _square, crop_box, decode_image

from .prepare_helpers import celeba_like, encode

# Applying _EXIF_TRANSPOSE[k] to a stored image makes it upright; storing needs the inverse transform.
INVERSE = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def test_crop_boxes() -> None:
    assert crop_box(178, 218, "celeba") == (0, 20, 178, 198)
    assert crop_box(356, 436, "celeba") == (0, 40, 356, 396)  # scaled with the image
    assert crop_box(178, 218, "center") == (0, 20, 178, 198)  # the same square for CelebA's shape
    assert crop_box(300, 100, "center") == (100, 0, 200, 100)
    assert crop_box(30, 10, "none") == (0, 0, 30, 10)
    with pytest.raises(ValueError, match="unknown crop"):
        crop_box(1, 1, "face")


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_every_exif_orientation_comes_out_upright(orientation: int, fmt: str) -> None:
    upright = celeba_like(3)  # 178×218, not symmetric
    stored = upright if orientation == 1 else upright.transpose(_EXIF_TRANSPOSE[INVERSE[orientation]])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    for crop in ("celeba", "none"):
        opts = DecodeOptions(resolution=48, crop=crop)
        expected = _square(upright, opts).astype(int)
        error = np.abs(decode_image(data, opts).astype(int) - expected).mean()
        assert error < (3.0 if fmt == "JPEG" else 0.5), (crop, error)


def test_jpeg_draft_decoding_stays_close_to_a_full_decode() -> None:
    """Decoding at 1/2 (or 1/4, 1/8 with a 2× margin) scale is the speed-up; it must not cost quality."""
    for res, source_side in ((64, 178), (32, 178), (64, 712)):
        errors = []
        for i in range(4):
            img = celeba_like(i).resize((source_side, round(source_side * 218 / 178)), Image.Resampling.BICUBIC)
            data = encode(img, "JPEG", quality=92)
            opts = DecodeOptions(resolution=res, crop="celeba")
            with Image.open(io.BytesIO(data)) as full:
                reference = _square(full.convert("RGB"), opts).astype(int)
            errors.append(np.abs(decode_image(data, opts).astype(int) - reference).mean())
        assert np.mean(errors) < 1.6, (res, source_side, errors)


def test_grey_output_and_upscaling() -> None:
    rgb = celeba_like(5)
    grey = decode_image(encode(rgb, "PNG"), DecodeOptions(resolution=64, channels=1, crop="none"))
    expected = np.asarray(rgb.convert("L").resize((64, 64), Image.Resampling.LANCZOS)).astype(int)
    assert grey.shape == (64, 64, 1) and np.abs(grey[..., 0].astype(int) - expected).mean() < 1
    tiny = decode_image(encode(Image.new("L", (4, 4), 77), "PNG"), DecodeOptions(resolution=32))
    assert tiny.shape == (32, 32, 3) and (tiny == 77).all()


def test_icc_profiles_are_converted_to_srgb_or_ignored_when_unreadable() -> None:
    from PIL import ImageCms

    photo = celeba_like(6)
    opts = DecodeOptions(resolution=32)
    plain = decode_image(encode(photo, "PNG"), opts).astype(int)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = decode_image(encode(photo, "PNG", icc_profile=srgb), opts).astype(int)
    assert np.abs(tagged - plain).mean() < 1  # an sRGB profile changes (almost) nothing
    broken = decode_image(encode(photo, "PNG", icc_profile=b"not a profile"), opts).astype(int)
    assert np.array_equal(broken, plain)  # an unreadable profile is ignored, the image kept
