"""The FastAPI app: the page (static/), the image API over one loaded generator, and its limits.

`create_app(model)` loads nothing twice and starts no thread until the first request; tests build it fresh and
drive it with a TestClient. Every image endpoint validates its query (422 with a message), then runs on the
bounded `GenerationPool`, so the event loop only parses and sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from facegan.errors import FaceganError
from facegan.generation.attributes import attr_pattern, describe_condition, parse_attr
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.serve.info import model_info
from facegan.serve.pool import GenerationPool, PoolFullError
from facegan.serve.render import MAX_FACES, FaceRenderer
from facegan.version import __version__

STATIC_DIR = Path(__file__).parent / "static"

MAX_SEED = 2**32 - 1
MIN_SIZE, MAX_SIZE = 8, 1024
MIN_STEPS, MAX_STEPS = 2, 64
# Pixels of one response (faces × size²): 64 faces at 256 px, 16 at 512 or 4 at 1024. With `workers` requests
# rendering at once this caps the server's image memory at about workers × 3 × MAX_PIXELS bytes (+ PNG buffers).
MAX_PIXELS = 2**22


def pixel_limit(count: str, examples: tuple[int, ...]) -> str:
    """The pixel limit of one response in words, with the numbers from MAX_PIXELS (for the OpenAPI descriptions)."""
    sides = ", ".join(f"≤ {math.isqrt(MAX_PIXELS // k)} at {count} = {k}" for k in examples)
    return f"{count} × size² may not pass {MAX_PIXELS} pixels (else 422), so size {sides}"


# Query parameters shared by the image endpoints (module level: the app's annotations are resolved by name).
Seed = Annotated[int, Query(ge=0, le=MAX_SEED, description="seed of the 64 latents the faces come from")]
SIZE_TEXT = f"pixels per face side, {MIN_SIZE}-{MAX_SIZE} (default: the model's)"
Size = Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description=SIZE_TEXT)]
GridSize = Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description=(
    f"{SIZE_TEXT}; {pixel_limit('n', (MAX_FACES, 16, 4))}"))]
FrameSize = Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description=(
    f"{SIZE_TEXT}; {pixel_limit('steps', (MAX_STEPS, 16, 4))}"))]
Index = Annotated[int, Query(ge=0, lt=MAX_FACES, description="which face of the seed's grid (0-63)")]
Truncation = Annotated[float, Query(ge=0.0, le=1.0, description="scale latents toward the mean: 1 = none")]
Smooth = Annotated[bool, Query(description="enlarge with Lanczos instead of nearest-neighbour")]
Count = Annotated[int, Query(ge=1, le=MAX_FACES, description=(
    f"number of faces, 1-{MAX_FACES}; {pixel_limit('n', (MAX_FACES, 16, 4))}"))]
Steps = Annotated[int, Query(ge=MIN_STEPS, le=MAX_STEPS, description=(
    f"frames, both ends included, {MIN_STEPS}-{MAX_STEPS}; {pixel_limit('steps', (MAX_STEPS, 16, 4))}"))]
Format = Annotated[Literal["png", "gif"], Query(description="png: frames side by side; gif: animation")]


def _image_responses(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for an image endpoint: the image, 304 for a matching ETag, 503 when busy."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {"content": {t: binary for t in media_types}, "description": "the image"},
        304: {"description": "not modified: the If-None-Match ETag matches (same model, same parameters)"},
        503: {"description": "too many requests are waiting; retry after the Retry-After seconds",
              "content": {"application/json": {"schema": {
                  "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}},
    }


def _too_many_pixels(field: str, count: int, what: str, size: int) -> None:
    """422 unless count × size² ≤ MAX_PIXELS."""
    pixels = count * size * size
    if pixels > MAX_PIXELS:
        side = math.isqrt(MAX_PIXELS // count)
        raise RequestValidationError([{
            "type": "value_error", "loc": ("query", field), "input": size,
            "msg": f"{count} {what} at {size} px is {pixels} pixels, over the limit of {MAX_PIXELS}; "
                   f"use size ≤ {side} or fewer {what}",
        }])


def create_app(
    model: str | Path | LoadedGenerator,
    device: str = "cpu",
    workers: int = 2,
    max_pending: int = 256,
    max_batch: int = 16,
    chunk_sizes: tuple[int, ...] | None = None,
    runtime: str = "torch",
) -> FastAPI:
    """The facegan web app over a run directory, checkpoint file or already loaded generator.

    workers: generation threads; max_pending: jobs queued or running before requests get 503;
    max_batch: single-face requests run through G together; chunk_sizes: G batch sizes known to be
    bit-identical to one face at a time (default: measured now); runtime: torch, onnx (G in ONNX Runtime)
    or auto (ONNX Runtime if installed and faster for one face, measured now; `facegan serve`'s default).
    """
    gen = model if isinstance(model, LoadedGenerator) else load_generator(model, device=device)
    from facegan.generation.export import choose_runtime, runtime_name

    # runtime onnx: G in ONNX Runtime; auto: there if it is installed and measures faster (facegan.export)
    gen = choose_runtime(gen, runtime)
    renderer = FaceRenderer(gen, chunk_sizes)
    pool = GenerationPool(renderer.generate, workers=workers, max_pending=max_pending, max_batch=max_batch)
    native = gen.config.model.resolution

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(pool.close)

    app = FastAPIOffline(
        title="facegan",
        version=__version__,
        description="Faces from a trained facegan generator. The same parameters always give the same image "
        "(byte for byte) from the same model. Face `index` of `seed` is the same face in /api/faces, /api/face "
        "and /api/interpolate. The page is at /.",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.generator = gen
    app.state.renderer = renderer
    app.state.pool = pool
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # `attr` (conditional models): NAME=VALUE pairs with this model's names and values, as its pattern says.
    pattern = attr_pattern(gen.config.model)

    def attr_query() -> Any:
        return Query("", max_length=1000, json_schema_extra={"pattern": pattern}, description=(
            "a conditional model's attributes, e.g. smiling=1,eyeglasses=0 (names and values: /api/info "
            "attributes); unnamed ones vary as in the data. Empty for an unconditional model"))

    def conditioned(z: Any, attr: str) -> Any:
        """The latents with the labels `attr` asks for (generation.attributes); 422 when the model cannot take them."""
        try:
            labelled = renderer.with_attr(z, parse_attr(attr))  # a specific message for a wrong name or value
            if not re.search(pattern, attr):
                raise FaceganError(f"attr must be NAME=VALUE pairs joined by commas, as /api/info lists them "
                                   f"(the pattern {pattern})")
            return labelled
        except FaceganError as exc:
            raise RequestValidationError([{"type": "value_error", "loc": ("query", "attr"), "input": attr,
                                           "msg": str(exc)}]) from None

    async def image(
        request: Request, key: tuple, media_type: str, submit: Callable[[], Any],
    ) -> Response:
        """Answer 304 for a known ETag, else run the job on the pool and send its bytes."""
        etag = '"' + renderer.model_id + "-" + hashlib.sha256(repr(key).encode()).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        try:
            future = submit()
        except PoolFullError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})
        return Response(await asyncio.wrap_future(future), media_type=media_type, headers=headers)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'"})

    @app.get("/api/faces", response_class=Response, responses=_image_responses("image/png"),
             summary="a grid of faces (PNG)")
    async def faces(
        request: Request, seed: Seed = 0,
        n: Count = 16,
        size: GridSize = native, truncation: Truncation = 1.0, smooth: Smooth = False, attr: str = attr_query(),
    ) -> Response:
        """The first `n` faces of `seed`, ceil(√n) per row with 2-px black gaps."""
        _too_many_pixels("size", n, "faces", size)
        z = conditioned(renderer.seed_latents(seed, truncation)[:n], attr)

        def run() -> bytes:
            return renderer.grid_png(renderer.generate(z), size, smooth)

        return await image(request, ("faces", seed, n, size, truncation, smooth, attr), "image/png",
                           lambda: pool.submit(run))

    @app.get("/api/face", response_class=Response, responses=_image_responses("image/png"),
             summary="one face (PNG)")
    async def face(
        request: Request, seed: Seed = 0, index: Index = 0, size: Size = native, truncation: Truncation = 1.0,
        smooth: Smooth = False, attr: str = attr_query(),
    ) -> Response:
        """Face `index` of `seed`: the same pixels as that face in /api/faces at the same size."""
        latent = conditioned(renderer.face_latent(seed, index, truncation), attr)
        return await image(request, ("face", seed, index, size, truncation, smooth, attr), "image/png",
                           lambda: pool.submit_face(latent, lambda im: renderer.face_png(im, size, smooth)))

    @app.get("/api/interpolate", response_class=Response, responses=_image_responses("image/png", "image/gif"),
             summary="a spherical walk from one face to another (PNG strip or GIF)")
    async def interpolate(
        request: Request, seed_a: Seed, seed_b: Seed, index_a: Index = 0, index_b: Index = 0,
        steps: Steps = 8,
        size: FrameSize = native, truncation: Truncation = 1.0, smooth: Smooth = False,
        format: Format = "png", attr: str = attr_query(),
    ) -> Response:
        """Frames along the great circle from face (seed_a, index_a) to (seed_b, index_b); frame k at x = k·size."""
        _too_many_pixels("size", steps, "steps", size)
        path = conditioned(renderer.path_latents(seed_a, index_a, seed_b, index_b, steps, truncation), attr)

        def run() -> bytes:
            frames = renderer.generate(path)
            return renderer.gif(frames, size, smooth) if format == "gif" else renderer.strip_png(frames, size, smooth)

        key = ("interpolate", seed_a, index_a, seed_b, index_b, steps, size, truncation, smooth, format, attr)
        return await image(request, key, f"image/{format}", lambda: pool.submit(run))

    @app.get("/api/info", summary="the model: config, step, dataset, metrics, and the server's limits")
    def info() -> dict[str, Any]:
        return _finite({
            **model_info(gen),
            "attributes": describe_condition(gen.config.model),  # what `attr` may name (empty: unconditional)
            "model_id": renderer.model_id,
            "serving": {
                "runtime": runtime_name(gen), "workers": pool.workers, "max_pending": pool.max_pending,
                "max_batch": pool.max_batch,
                "batch_invariant_sizes": list(renderer.chunk_sizes),
            },
            "limits": {
                "max_faces": MAX_FACES, "min_size": MIN_SIZE, "max_size": MAX_SIZE, "min_steps": MIN_STEPS,
                "max_steps": MAX_STEPS, "max_seed": MAX_SEED, "max_pixels": MAX_PIXELS,
            },
        })

    @app.get("/api/health", summary="liveness and queue state")
    async def health() -> dict[str, Any]:
        s = pool.stats
        return {
            "status": "ok", "step": gen.step, "model_id": renderer.model_id, "pending": pool.pending,
            "jobs": s.jobs, "faces": s.faces, "face_batches": s.face_batches, "largest_batch": s.largest_batch,
            "rejected": s.rejected,
        }

    return app


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and ±inf (which eval files may hold) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
