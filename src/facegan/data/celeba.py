"""CelebA's attribute table (`list_attr_celeba.txt` or Kaggle's `.csv`): parse it and match rows to images.

The text file is: a count line, a line of the 40 attribute names, then `000001.jpg -1 1 ...` per image.
The CSV is `image_id,5_o_Clock_Shadow,...` then `000001.jpg,-1,1,...`. Values are kept as given (±1).
Rows are matched to images by file name without its extension, so `img_align_celeba/000001.jpg` (or a
PNG re-encode `000001.png`) gets the row of `000001.jpg`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from facegan.data.sources import ATTRIBUTE_FILE_NAMES
from facegan.errors import FaceganError

log = logging.getLogger("facegan.prepare")


def parse_attributes(text: str, where: str = "attribute file") -> tuple[list[str], dict[str, np.ndarray]]:
    """(attribute names, {image stem: int16 row}) from the text or CSV attribute table."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise FaceganError(f"{where} is empty")
    if "," in lines[0]:
        header = [cell.strip() for cell in lines[0].split(",")]
        names, rows = header[1:], [line.split(",") for line in lines[1:]]
    else:
        start = 1 if lines[0].strip().isdigit() else 0
        if len(lines) <= start:
            raise FaceganError(f"{where} has no attribute names line")
        names, rows = lines[start].split(), [line.split() for line in lines[start + 1 :]]
    if not names:
        raise FaceganError(f"{where} has no attribute names")
    table: dict[str, np.ndarray] = {}
    bad = 0
    for cells in rows:
        if len(cells) != len(names) + 1:
            bad += 1
            continue
        try:
            values = np.array([int(c) for c in cells[1:]], dtype=np.int16)
        except ValueError:
            bad += 1
            continue
        table[PurePosixPath(cells[0].strip()).stem] = values
    if bad:
        log.warning("%s: ignored %d malformed row(s)", where, bad)
    if not table:
        raise FaceganError(f"{where} has no readable rows of {len(names)} attributes")
    return names, table


def find_attribute_text(source: Path, explicit: str | Path | None, inside: str | None) -> tuple[str, str] | None:
    """(text, where) of the attribute table: the --attrs file, one inside the archive, or one beside the source."""
    if explicit is not None:
        path = Path(explicit)
        try:
            return path.read_text(errors="replace"), str(path)
        except OSError as exc:
            raise FaceganError(f"cannot read attribute file {path}: {exc.strerror or exc}") from None
    if inside is not None:
        return inside, f"{source.name}:list_attr_celeba"
    folders = [source, source.parent] if source.is_dir() else [source.parent]
    for folder in folders:
        for name in ATTRIBUTE_FILE_NAMES:
            path = folder / name
            if path.is_file():
                try:
                    return path.read_text(errors="replace"), str(path)
                except OSError:
                    continue
    return None


def match_attributes(
    image_names: Sequence[str], names: list[str], table: dict[str, np.ndarray], where: str
) -> tuple[np.ndarray | None, int]:
    """N×A int16 labels for `image_names` (0 where an image has no row) and how many had none.

    Returns (None, N) when no image matches at all, so a wrong table gives no labels rather than zeros.
    """
    labels = np.zeros((len(image_names), len(names)), dtype=np.int16)
    missing = 0
    for i, name in enumerate(image_names):
        row = table.get(PurePosixPath(name).stem)
        if row is None:
            missing += 1
        else:
            labels[i] = row
    if missing == len(image_names):
        log.warning("%s matched none of the %d images by file name; no labels written", where, len(image_names))
        return None, missing
    if missing:
        log.warning("%s has no row for %d of %d images; their labels are 0", where, missing, len(image_names))
    return labels, missing
