"""Image sources for `facegan prepare`: list the candidates of a folder, archive or array file in sorted order.

A source has sorted candidate `names`, the entries it `rejected` while listing (with a reason), optional
per-candidate `labels`, and `payloads(indices)`, which yields what a worker needs to decode each candidate
(a path, the bytes of an archive member, or an array). Archives are read in place: nothing is extracted,
so member names such as `../x.jpg` or `/etc/x.jpg` are only ever names.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from facegan.data.decode import Payload
from facegan.errors import FaceganError

log = logging.getLogger("facegan.prepare")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
MAX_FILE_BYTES = 512 << 20  # a bigger "image" file is skipped rather than read into memory
IDX_PATTERN = re.compile(r"idx\d-ubyte(\.gz)?$", re.IGNORECASE)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# IDX element types (the third magic byte) → big-endian numpy dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

Rejection = tuple[str, str, str]  # (name, category, detail)
ATTRIBUTE_FILE_NAMES = ("list_attr_celeba.txt", "list_attr_celeba.csv")


def _listing_verdict(name: str) -> tuple[str, str] | None:
    """Why a listed file is not a candidate (None: it is one), judged by its name alone."""
    path = PurePosixPath(name)
    if path.name.startswith("._") or "__MACOSX" in path.parts:
        return ("resource-fork", "macOS metadata file, not an image")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return ("unsupported-extension", f"extension {path.suffix or '(none)'!r} is not an image type")
    return None


class Source:
    """Base class: sorted candidate names, rejected entries, optional labels, and payloads to decode."""

    kind = "source"

    def __init__(self) -> None:
        self.names: list[str] = []
        self.rejected: list[Rejection] = []
        self.labels: np.ndarray | None = None
        self.label_names: list[str] = []
        self.attribute_text: str | None = None  # a CelebA attribute file found inside an archive

    def payloads(self, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        """(index, payload) for each of `indices` (sorted ascending), in the order cheapest to read."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderSource(Source):
    """Every image file under a folder, recursively (hidden folders skipped), sorted by relative path."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            for filename in filenames:
                rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                verdict = _listing_verdict(rel)
                if verdict is None:
                    found.append((rel, os.path.join(dirpath, filename)))
                else:
                    self.rejected.append((rel, *verdict))
        found.sort()
        self.names = [rel for rel, _ in found]
        self._paths = [path for _, path in found]
        self.rejected.sort()

    def payloads(self, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        for i in indices:
            path = self._paths[i]
            try:
                size = os.stat(path).st_size
            except OSError as exc:
                yield i, ("error", "unreadable", exc.strerror or type(exc).__name__)
                continue
            if size > MAX_FILE_BYTES:
                yield i, ("error", "too-large", f"{size} bytes")
            else:
                yield i, ("path", path)


class ZipSource(Source):
    """The image members of a .zip archive, read in place in sorted name order."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise FaceganError(f"{path} is not a readable zip archive ({exc})") from None
        found = []
        for order, info in enumerate(infos):
            if info.is_dir():
                continue
            if PurePosixPath(info.filename).name in ATTRIBUTE_FILE_NAMES and self.attribute_text is None:
                self.attribute_text = self._read_text(info)
            verdict = _listing_verdict(info.filename)
            if verdict is None:
                found.append((info.filename, order, info))
            else:
                self.rejected.append((info.filename, *verdict))
        found.sort(key=lambda item: (item[0], item[1]))
        self.names = [name for name, _, _ in found]
        self._infos = [info for _, _, info in found]
        self.rejected.sort()

    def _read_text(self, info: zipfile.ZipInfo) -> str | None:
        try:
            return self._zip.read(info).decode("utf-8", errors="replace")
        except Exception:  # an unreadable attribute file only means no labels
            return None

    def payloads(self, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        for i in indices:
            info = self._infos[i]
            if info.flag_bits & 0x1:
                yield i, ("error", "encrypted", "zip member needs a password")
            elif info.file_size > MAX_FILE_BYTES:
                yield i, ("error", "too-large", f"{info.file_size} bytes uncompressed")
            else:
                try:
                    yield i, ("bytes", self._zip.read(info))
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, zlib.error) as exc:
                    yield i, ("error", "corrupt-archive-member", f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._zip.close()


class TarSource(Source):
    """The regular image members of a .tar / .tar.gz / .tar.bz2 / .tar.xz archive, read in place.

    Members are read in archive order (a compressed tar can only be read forwards) and placed by their
    sorted index, so the output order is the sorted order whatever order the archive has.
    """

    kind = "tar"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        members: list[tarfile.TarInfo] = []
        try:
            with tarfile.open(path, "r:*") as tar:
                while True:
                    try:
                        member = tar.next()
                    except (tarfile.ReadError, EOFError, OSError, zlib.error) as exc:
                        self.rejected.append((f"{path.name} (after {len(members)} members)", "corrupt-archive",
                                              f"archive is damaged or truncated: {exc}"))
                        break
                    if member is None:
                        break
                    members.append(member)
        except (tarfile.ReadError, OSError, EOFError, zlib.error) as exc:
            raise FaceganError(f"{path} is not a readable tar archive ({exc})") from None
        found = []
        attribute_member = None
        for order, member in enumerate(members):
            if member.isdir():
                continue
            verdict = _listing_verdict(member.name)
            if PurePosixPath(member.name).name in ATTRIBUTE_FILE_NAMES and member.isfile() and not attribute_member:
                attribute_member = member
            if verdict is not None:
                self.rejected.append((member.name, *verdict))
            elif not member.isfile():
                self.rejected.append((member.name, "not-a-file", "a link or special file inside the archive"))
            elif member.size > MAX_FILE_BYTES:
                self.rejected.append((member.name, "too-large", f"{member.size} bytes"))
            else:
                found.append((member.name, order, member))
        found.sort(key=lambda item: (item[0], item[1]))
        self.names = [name for name, _, _ in found]
        self._order = [order for _, order, _ in found]  # archive position of each sorted candidate
        self._members = members
        self.rejected.sort()
        if attribute_member is not None:
            self.attribute_text = self._read_member_text(attribute_member)

    def _read_member_text(self, member: tarfile.TarInfo) -> str | None:
        try:
            with tarfile.open(self.path, "r:*") as tar:
                handle = tar.extractfile(member)
                return None if handle is None else handle.read().decode("utf-8", errors="replace")
        except Exception:  # an unreadable attribute file only means no labels
            return None

    def payloads(self, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        by_order = sorted((self._order[i], i) for i in indices)
        if not by_order:
            return
        try:
            tar = tarfile.open(self.path, "r:*")  # noqa: SIM115 (closed by the `with tar:` below)
        except (tarfile.ReadError, OSError, EOFError, zlib.error) as exc:
            for _, i in by_order:
                yield i, ("error", "unreadable", f"cannot reopen archive: {exc}")
            return
        with tar:
            for order, i in by_order:
                try:
                    handle = tar.extractfile(self._members[order])
                    if handle is None:
                        raise tarfile.ReadError("not a regular file")
                    data = handle.read()
                    if len(data) != self._members[order].size:
                        raise EOFError(f"read {len(data)} of {self._members[order].size} bytes")
                    yield i, ("bytes", data)
                except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                    yield i, ("error", "corrupt-archive-member", f"{type(exc).__name__}: {exc}")


def _to_uint8_mapper(low: float, high: float, dtype: np.dtype, where: str) -> tuple[float, float]:
    """(scale, offset) with uint8 = round(x * scale + offset), chosen from the array's dtype and range."""
    if dtype == np.uint8:
        return 1.0, 0.0
    if dtype == np.bool_:
        return 255.0, 0.0
    if np.issubdtype(dtype, np.integer):
        if low >= 0 and high <= 255:
            return 1.0, 0.0
        if low >= 0 and high <= 65535:
            return 1 / 257, 0.0
    elif np.issubdtype(dtype, np.floating):
        eps = 1e-3
        if low >= -1 - eps and low < 0 and high <= 1 + eps:
            return 127.5, 127.5
        if low >= 0 and high <= 1 + eps:
            return 255.0, 0.0
        if low >= 0 and high <= 255 + eps:
            return 1.0, 0.0
    raise FaceganError(f"{where}: cannot read {dtype} pixel values in [{low:g}, {high:g}] as images "
                       "(expected uint8 0-255, uint16, or floats in [0, 1], [-1, 1] or [0, 255])")


class ArraySource(Source):
    """Images held in arrays (MNIST IDX files, .npy, .npz): one candidate per image, named FILE[i]."""

    kind = "array"

    def __init__(self, parts: list[tuple[str, np.ndarray]], labels: np.ndarray | None = None,
                 label_names: Sequence[str] = (), kind: str = "array") -> None:
        super().__init__()
        self.kind = kind
        self._parts: list[tuple[np.ndarray, tuple[float, float], bool]] = []
        self._starts: list[int] = []
        start = 0
        for file_name, array in parts:
            images, channels_first = _image_layout(array, file_name)
            low, high = _finite_range(images)
            mapper = _to_uint8_mapper(low, high, images.dtype, file_name)
            self._parts.append((images, mapper, channels_first))
            self._starts.append(start)
            self.names.extend(f"{file_name}[{i}]" for i in range(len(images)))
            start += len(images)
        if labels is not None:
            self.labels = labels
            self.label_names = list(label_names)

    def _image(self, index: int) -> Payload:
        part = int(np.searchsorted(self._starts, index, side="right")) - 1
        images, (scale, offset), channels_first = self._parts[part]
        image = np.asarray(images[index - self._starts[part]])
        if channels_first:
            image = np.moveaxis(image, 0, -1)
        if image.dtype == np.uint8:
            return ("array", image)
        values = image.astype(np.float64)
        if not np.isfinite(values).all():
            return ("error", "non-finite", "NaN or infinite pixel values")
        return ("array", np.clip(np.round(values * scale + offset), 0, 255).astype(np.uint8))

    def payloads(self, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        for i in indices:
            yield i, self._image(i)


def _image_layout(array: np.ndarray, where: str) -> tuple[np.ndarray, bool]:
    """The array as N×H×W or N×H×W×C images, and whether each image is stored channels-first (N×C×H×W)."""
    if array.ndim == 3:
        return array, False
    if array.ndim == 4 and array.shape[3] in (1, 3, 4):
        return array, False
    if array.ndim == 4 and array.shape[1] in (1, 3, 4):
        return array, True
    raise FaceganError(f"{where}: an image array must be N×H×W, N×H×W×C or N×C×H×W (C = 1, 3 or 4), "
                       f"got shape {array.shape}")


def _finite_range(images: np.ndarray, chunk: int = 4096) -> tuple[float, float]:
    """Min and max of the finite values, read in chunks so a memory-mapped array is streamed."""
    if images.dtype == np.uint8 or len(images) == 0:
        return 0.0, 255.0
    low, high = np.inf, -np.inf
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start : start + chunk])
        if np.issubdtype(block.dtype, np.floating):
            block = block[np.isfinite(block)]
        if block.size:
            low, high = min(low, float(block.min())), max(high, float(block.max()))
    return (0.0, 0.0) if low > high else (low, high)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST format, optionally gzipped) as a numpy array."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise FaceganError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise FaceganError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise FaceganError(f"{path} is not an IDX file (bad header)")
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header < expected:
        raise FaceganError(f"{path} is truncated: {len(data) - header} of {expected} data bytes")
    return np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape)


def idx_labels_path(images_path: Path) -> Path | None:
    """The idx1 labels file that belongs to an idx3 images file (MNIST naming), if it exists."""
    name = images_path.name.replace("images", "labels").replace("idx3", "idx1").replace("idx4", "idx1")
    if name == images_path.name:
        return None
    stem = name[:-3] if name.lower().endswith(".gz") else name
    for candidate in (stem, stem + ".gz"):
        if (images_path.parent / candidate).is_file():
            return images_path.parent / candidate
    return None


def idx_source(paths: list[Path]) -> ArraySource:
    """MNIST-format IDX image files (sorted), with their labels ("digit") when every idx1 file is present."""
    parts = []
    label_parts: list[np.ndarray] | None = []
    for path in sorted(paths):
        images = read_idx(path)
        if images.ndim not in (3, 4):
            raise FaceganError(f"{path} holds a {images.ndim}-d array; image IDX files are N×H×W (idx3)")
        parts.append((path.name, images))
        labels_path = idx_labels_path(path)
        labels = read_idx(labels_path) if labels_path is not None else None
        if labels is not None and (labels.ndim != 1 or len(labels) != len(images)):
            log.warning("ignoring %s: %s labels for %d images", labels_path, labels.shape, len(images))
            labels = None
        if labels is None or label_parts is None:
            label_parts = None
        else:
            label_parts.append(labels.astype(np.int16)[:, None])
    labels = np.concatenate(label_parts) if label_parts else None
    return ArraySource(parts, labels, ["digit"], kind="idx")


def npy_source(path: Path) -> ArraySource:
    """Images in a .npy file (memory-mapped) or a .npz file (the images key and, if present, labels)."""
    try:
        if path.suffix.lower() == ".npy":
            return ArraySource([(path.name, np.load(path, mmap_mode="r"))], kind="npy")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FaceganError(f"cannot read {path}: {exc}") from None
    image_key = next((k for k in ("images", "x", "x_train", "arr_0", "data") if k in arrays), None)
    if image_key is None:
        image_key = next((k for k, v in arrays.items() if v.ndim in (3, 4)), None)
    if image_key is None:
        raise FaceganError(f"{path} has no image array (looked for 'images', 'x', 'arr_0' or any 3-/4-d array)")
    images = arrays[image_key]
    labels, names = _npz_labels(arrays, len(images), path)
    return ArraySource([(path.name, images)], labels, names, kind="npz")


def _npz_labels(arrays: dict[str, np.ndarray], count: int, path: Path) -> tuple[np.ndarray | None, list[str]]:
    key = next((k for k in ("labels", "y", "y_train") if k in arrays), None)
    if key is None:
        return None, []
    labels = arrays[key]
    if len(labels) != count or labels.ndim not in (1, 2) or not np.issubdtype(labels.dtype, np.integer):
        log.warning("ignoring %s[%r]: not one integer label row per image", path.name, key)
        return None, []
    if labels.size and (labels.min() < -32768 or labels.max() > 32767):
        log.warning("ignoring %s[%r]: values do not fit int16", path.name, key)
        return None, []
    labels = labels.astype(np.int16).reshape(count, -1)
    names_given = arrays.get("label_names")
    if names_given is not None and len(names_given) == labels.shape[1]:
        names = [str(n) for n in names_given]
    else:
        names = ["label"] if labels.shape[1] == 1 else [f"label_{k}" for k in range(labels.shape[1])]
    return labels, names


def open_source(source: str) -> Source:
    """The `Source` for a folder, archive, IDX, .npy or .npz path; a clear error for anything else."""
    path = Path(source).expanduser()
    if not path.exists():
        raise FaceganError(f"source {source} does not exist")
    if path.is_dir():
        folder = FolderSource(path)
        if not folder.names:
            idx_files = [path / name for name, _, _ in folder.rejected if IDX_PATTERN.search(name)]
            images = [p for p in idx_files if "idx1" not in p.name.lower()]
            if images:
                return idx_source(images)
        return folder
    lower = path.name.lower()
    if IDX_PATTERN.search(lower):
        return idx_source([path])
    if lower.endswith((".npy", ".npz")):
        return npy_source(path)
    if lower.endswith(".zip"):
        return ZipSource(path)
    if lower.endswith(TAR_SUFFIXES):
        return TarSource(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    if _is_tarfile(path):
        return TarSource(path)
    raise FaceganError(f"unsupported source {source}: give a folder, .zip, .tar[.gz], MNIST IDX file "
                       "(*-idx3-ubyte[.gz]), .npy/.npz, or builtin:synthetic-faces")


def _is_tarfile(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False

