"""Export the generator to ONNX or TorchScript with a dynamic batch size, and check the file against PyTorch
(or, format `hub`, to a model folder in the Hugging Face Hub's layout: facegan.generation.hub_export).

The exported graph maps `z` (batch×nz float32) to `images` (batch×C×H×W float32 in [−1, 1]); the run's
config, step and checkpoint travel inside the file (ONNX `metadata_props`, TorchScript extra file), so an
exported generator is as self-describing as a checkpoint. Every export is run back — ONNX Runtime for ONNX,
`torch.jit.load` for TorchScript — at two batch sizes and must match G in PyTorch within `TOLERANCE`.

ONNX uses PyTorch's torch.export-based exporter (needs `onnxscript`), falling back to the older TorchScript-based
exporter when onnxscript is missing. TorchScript itself is deprecated from PyTorch 2.9 on but still loads
everywhere libtorch does; its deprecation warnings are silenced here, where we call it on purpose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facegan.errors import FaceganError
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.models.latents import seeded_latents
from facegan.utils.atomic import atomic_write_bytes

log = logging.getLogger("facegan.export")

FORMATS = ("onnx", "torchscript", "hub")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
# Largest |exported − PyTorch| allowed on images in [−1, 1]. One uint8 level is 2/255 ≈ 7.8e-3, so 1e-4 keeps
# every exported face within one level of PyTorch's; fp32 reorderings in ONNX Runtime give ~1e-7 here.
TOLERANCE = 1e-4
VERIFY_BATCHES = (1, 5)  # the batch the graph was traced with is 2, so both of these test the dynamic axis
OPSET = 18
META_KEY = "facegan"
TORCHSCRIPT_META = "facegan.json"
AUTO_ROUNDS = 5  # runtime auto: alternating rounds of 8 timed faces per runtime
INSTALL_ONNX = "ONNX export needs the optional onnx extra: pip install 'facegan[onnx]'"


@dataclass
class ExportResult:
    """An exported generator file and how it was checked."""

    path: Path
    format: str
    bytes: int
    max_abs_diff: float
    batches: tuple[int, ...]
    tolerance: float
    seconds: float


def format_for(out: str | Path, fmt: str | None) -> str:
    """The export format: the one asked for, else the one the file name's suffix implies (none: a hub folder)."""
    if fmt is None:
        suffix = Path(out).suffix.lower()
        fmt = SUFFIXES.get(suffix) or (None if suffix else "hub")
        if fmt is None:
            raise FaceganError(f"cannot tell the format from {out}; give --format {_choices()}")
    if fmt not in FORMATS:
        raise FaceganError(f"unknown export format {fmt!r}; choose {_choices()}")
    return fmt


def _choices() -> str:
    return f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"


def export_meta(gen: LoadedGenerator) -> dict[str, Any]:
    """What an exported file records about the generator inside it."""
    model = gen.config.model
    return {"format": "facegan-generator", "nz": model.nz, "latent": model.latent,
            "resolution": model.resolution, "channels": model.channels, "family": model.family,
            "step": gen.step, "checkpoint": gen.checkpoint, "config": gen.config.to_dict(),
            "inputs": ["z", "labels"] if model.condition else ["z"], "output": "images",
            "condition": list(model.condition), "condition_levels": [list(v) for v in model.condition_levels]}


def _unknown_labels(condition_levels: list[list[int]], n: int) -> np.ndarray:
    """n×A level indices that say "unknown" for every attribute (index L_k of attribute k)."""
    return np.tile(np.array([len(levels) for levels in condition_levels], dtype=np.int64), (n, 1))


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the deprecation chatter of torch.jit / the ONNX exporters and their info logging."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                                    "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\..*")
            warnings.filterwarnings("ignore", message=r".*(deprecated|legacy TorchScript).*",
                                    category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            # z and labels share one batch Dim, which the exporter notes when it names the axes
            warnings.filterwarnings("ignore", message=r".*will not be used, since it shares the same shape",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _example(gen: LoadedGenerator, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs to trace G with: (z,), or (z, labels) for a conditional model (labels N×A int64 level indices)."""
    model = gen.config.model
    z = seeded_latents(batch, model.nz, 1234, model.latent)
    if not model.condition:
        return (z,)
    labels = torch.from_numpy(_unknown_labels(model.condition_levels, batch))
    labels[0] = 0  # one row of real levels, one of unknowns, so neither path is constant-folded away
    return (z, labels)


def onnx_bytes(gen: LoadedGenerator, opset: int = OPSET) -> bytes:
    """G as a serialised ONNX model with a dynamic batch axis and facegan's metadata."""
    try:
        import onnx
    except ImportError:
        raise FaceganError(INSTALL_ONNX) from None
    netG = gen.netG.cpu().eval()
    args = _example(gen)
    names = ["z", "labels"][: len(args)]
    with _quiet_exporters():
        try:
            import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)

            batch = torch.export.Dim("batch", min=1, max=65536)
            # Dynamic shapes by position, not by name: families name G's input differently (z, code).
            program = torch.onnx.export(
                netG, args, None, dynamo=True, verbose=False, input_names=names, output_names=["images"],
                dynamic_shapes=tuple({0: batch} for _ in args), opset_version=opset,
            )
            proto = program.model_proto
        except ImportError:
            log.info("onnxscript is not installed: using the TorchScript-based ONNX exporter")
            buffer = io.BytesIO()
            torch.onnx.export(netG, args, buffer, dynamo=False, input_names=names, output_names=["images"],
                              dynamic_axes={name: {0: "batch"} for name in [*names, "images"]},
                              opset_version=opset)
            proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(export_meta(gen))
    return proto.SerializeToString()


def torchscript_bytes(gen: LoadedGenerator) -> bytes:
    """G as a TorchScript archive (scripted, else traced) with facegan's metadata as an extra file."""
    netG = gen.netG.cpu().eval()
    with _quiet_exporters():
        try:
            module: Any = torch.jit.script(netG)
        except Exception as exc:  # a family whose forward is not scriptable is traced instead
            log.info("torch.jit.script failed (%s); tracing G instead", type(exc).__name__)
            module = torch.jit.trace(netG, _example(gen), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(module, buffer, _extra_files={TORCHSCRIPT_META: json.dumps(export_meta(gen))})
    return buffer.getvalue()


class ExportedGenerator:
    """An exported file run by its own runtime: `run(z)` maps float32 batch×nz to images batch×C×H×W
    (a conditional model also takes `labels`, batch×A int64 level indices; none given means all unknown)."""

    def __init__(self, path: str | Path | None = None, data: bytes | None = None, fmt: str | None = None,
                 threads: int = 0, spin: bool = True) -> None:
        if data is None:
            if path is None or not Path(path).is_file():
                raise FaceganError(f"{path} does not exist")
            data = Path(path).read_bytes()
        self.format = format_for(path or "x.onnx", fmt)
        if self.format == "hub":
            raise FaceganError(f"{path} is a model folder: load it with facegan.load, not as an exported file")
        if self.format == "onnx":
            try:
                import onnxruntime as ort
            except ImportError:
                raise FaceganError(INSTALL_ONNX) from None
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            if not spin:  # idle pool threads sleep instead of spinning: they leave the cores to the caller's threads
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types for bad files
                raise FaceganError(f"{path or 'data'} is not a loadable ONNX model ({exc})") from None
            props = self._session.get_modelmeta().custom_metadata_map
            self.meta = json.loads(props[META_KEY]) if META_KEY in props else {}
        else:
            extra = {TORCHSCRIPT_META: ""}
            with _quiet_exporters():
                try:
                    self._module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
                except Exception as exc:  # torch raises RuntimeError and others for bad archives
                    raise FaceganError(f"{path or 'data'} is not a loadable TorchScript file ({exc})") from None
            self._module.eval()
            self.meta = json.loads(extra[TORCHSCRIPT_META]) if extra[TORCHSCRIPT_META] else {}

    def run(self, z: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """Images in [−1, 1] as float32 batch×C×H×W for latents batch×nz (and labels, if conditional)."""
        inputs = {"z": _numpy(z, np.float32)}
        if self.meta.get("condition"):
            inputs["labels"] = (_numpy(labels, np.int64) if labels is not None else
                                _unknown_labels(self.meta["condition_levels"], len(inputs["z"])))
        elif labels is not None:
            raise FaceganError("this exported generator is not conditional; it takes no labels")
        if self.format == "onnx":
            return self._session.run(None, inputs)[0]
        with torch.no_grad():
            return self._module(*(torch.from_numpy(v) for v in inputs.values())).numpy()


def _numpy(value: np.ndarray | torch.Tensor, dtype: type) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return np.ascontiguousarray(array, dtype=dtype)


def load_exported(path: str | Path, fmt: str | None = None) -> ExportedGenerator:
    """Open an exported generator file with its runtime (onnxruntime or torch.jit)."""
    return ExportedGenerator(path, fmt=fmt)


def compare_with_torch(gen: LoadedGenerator, exported: ExportedGenerator,
                       batches: tuple[int, ...] = VERIFY_BATCHES, seed: int = 0) -> float:
    """Largest |exported − PyTorch| over seeded latents at each batch size (also checks output shapes)."""
    model = gen.config.model
    worst = 0.0
    for batch in batches:
        z = seeded_latents(batch, model.nz, seed + batch, model.latent)
        labels = None
        if model.condition:  # real levels, drawn per row, and the all-unknown last row
            generator = torch.Generator().manual_seed(seed + batch)
            labels = torch.stack([torch.randint(len(levels) + 1, (batch,), generator=generator)
                                  for levels in model.condition_levels], dim=1)
        with torch.no_grad():
            args = (z,) if labels is None else (z, labels)
            ref = gen.netG(*(a.to(gen.device) for a in args)).float().cpu().numpy()
        out = exported.run(z, labels)
        if out.shape != ref.shape:
            raise FaceganError(f"exported generator gave shape {out.shape} at batch {batch}, PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def export_generator(
    model: str | Path | LoadedGenerator, out: str | Path, fmt: str | None = None, opset: int = OPSET,
    tolerance: float = TOLERANCE, license: str | None = None,
) -> Any:
    """Export G of a run/checkpoint/model folder to `out` (onnx or torchscript), run it back and compare with
    PyTorch: an `ExportResult`. Format hub: a model folder with `license` in its card, a `ModelFolderExport`."""
    fmt = format_for(out, fmt)
    if fmt == "hub":
        from facegan.generation.hub_export import export_model_folder

        return export_model_folder(model, out, license=license)
    if license is not None:
        raise FaceganError("a licence goes into a hub model folder's card; ONNX and TorchScript files have none")
    started = time.perf_counter()
    gen = model if isinstance(model, LoadedGenerator) else load_generator(model, device="cpu")
    if gen.device.type != "cpu":
        gen = load_generator(gen.checkpoint, device="cpu")
    data = onnx_bytes(gen, opset) if fmt == "onnx" else torchscript_bytes(gen)
    exported = ExportedGenerator(out, data=data, fmt=fmt)
    diff = compare_with_torch(gen, exported)
    if not diff <= tolerance:
        raise FaceganError(f"the exported {fmt} generator differs from PyTorch by {diff:.3g} "
                           f"(more than the tolerance {tolerance:g}); the file was not written")
    atomic_write_bytes(out, data)
    log.debug("exported G (step %d) to %s: max |Δ| %.2g at batches %s", gen.step, out, diff, VERIFY_BATCHES)
    return ExportResult(path=Path(out), format=fmt, bytes=len(data), max_abs_diff=diff, batches=VERIFY_BATCHES,
                        tolerance=tolerance, seconds=time.perf_counter() - started)


class OnnxModule(nn.Module):
    """G's forward computed by ONNX Runtime, as a torch module (so code that calls `netG(z)` needs no change).

    It keeps the PyTorch G as `reference` (never called) and an `onnx_runtime` buffer, so its state dict names
    both the weights and the runtime: a server that fingerprints G's state sees which one made the faces.
    """

    def __init__(self, exported: ExportedGenerator, reference: nn.Module) -> None:
        super().__init__()
        self.exported = exported
        self.reference = reference
        self.register_buffer("onnx_runtime", torch.ones(1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.from_numpy(self.exported.run(z, labels)).to(z.device)


def onnx_generator(gen: LoadedGenerator, threads: int = 0) -> LoadedGenerator:
    """The same generator with G run by ONNX Runtime on the CPU (`threads` 0: ONNX Runtime's default).

    Its thread pool does not spin between calls: in a server the event loop and the PNG encoding need the cores
    between faces. On a busy 2-core machine, with spinning one face over HTTP was slower than with eager PyTorch;
    without, about 3x faster (BENCHMARKS.md, serving).
    """
    if gen.device.type != "cpu":
        gen = load_generator(gen.checkpoint, device="cpu")
    exported = ExportedGenerator(data=onnx_bytes(gen), fmt="onnx", threads=threads, spin=False)
    return dataclasses.replace(gen, netG=OnnxModule(exported, gen.netG).eval())


def time_per_face_ms(fn: Any, z: torch.Tensor, repeats: int = 50) -> float:
    """Median wall time of `fn(z)` in milliseconds, after a warm-up."""
    for _ in range(3):
        fn(z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(z)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _time_runtimes(fast: LoadedGenerator, eager: LoadedGenerator) -> tuple[float, float]:
    """Median ms per face of G in ONNX Runtime and in eager PyTorch, timed the way a server runs them: on a worker
    thread (from the main thread, libgomp's spinning OpenMP team made eager PyTorch many times slower on a busy
    machine) and in alternating rounds (so a burst of load elsewhere does not fall on one runtime only)."""
    z = eager.latents(1, 0)
    rounds: dict[str, list[float]] = {"onnx": [], "torch": []}
    failed: list[BaseException] = []

    def measure() -> None:
        try:
            for _ in range(AUTO_ROUNDS):
                rounds["onnx"].append(time_per_face_ms(fast.images, z, 8))
                rounds["torch"].append(time_per_face_ms(eager.images, z, 8))
        except BaseException as exc:  # re-raised in the calling thread below
            failed.append(exc)

    worker = threading.Thread(target=measure, name="facegan-runtime-timing")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return float(np.median(rounds["onnx"])), float(np.median(rounds["torch"]))


def onnx_runtime_installed() -> bool:
    """Whether the packages `onnx_generator` needs (onnx and onnxruntime) can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def runtime_name(gen: LoadedGenerator) -> str:
    """What runs G: "onnxruntime" (an `onnx_generator`) or "torch"."""
    return "onnxruntime" if isinstance(gen.netG, OnnxModule) else "torch"


def choose_runtime(gen: LoadedGenerator, runtime: str = "auto") -> LoadedGenerator:
    """The generator to serve with: `torch`, `onnx`, or `auto` (ONNX Runtime when it is installed, G is on
    the CPU and one face is faster there than in eager PyTorch, measured now; else PyTorch, never an error)."""
    if runtime == "torch":
        return gen
    if runtime not in ("auto", "onnx"):
        raise FaceganError(f"unknown runtime {runtime!r}; choose auto, torch or onnx")
    if gen.device.type != "cpu":
        if runtime == "onnx":
            raise FaceganError("--runtime onnx runs G on the CPU; add --device cpu, or use --runtime torch")
        return gen
    if runtime == "onnx":
        return onnx_generator(gen)
    if not onnx_runtime_installed():
        log.info("runtime auto: ONNX Runtime is not installed (extra `onnx`), so G runs in PyTorch")
        return gen
    try:
        fast = onnx_generator(gen)
        onnx_ms, torch_ms = _time_runtimes(fast, gen)
    except Exception as exc:  # auto must never stop a server from starting: any export failure means PyTorch
        log.warning("runtime auto: G could not run in ONNX Runtime (%s: %s), so it runs in PyTorch",
                    type(exc).__name__, exc)
        return gen
    chosen = fast if onnx_ms < torch_ms else gen
    log.info("runtime auto: one face takes %.2f ms in ONNX Runtime, %.2f ms in PyTorch: serving with %s",
             onnx_ms, torch_ms, runtime_name(chosen))
    return chosen
