"""The renderer: latents per face, batch-invariant chunks of G, and the image encodings."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from facegan.generation.sample import load_generator
from facegan.models.latents import seeded_latents
from facegan.serve.render import MAX_FACES, FaceRenderer, batch_invariant_sizes


def test_a_face_has_the_same_bytes_alone_in_a_grid_or_in_any_batch(serve_run) -> None:
    gen = load_generator(serve_run)
    renderer = FaceRenderer(gen)
    z = renderer.seed_latents(5)
    alone = np.concatenate([renderer.generate(z[i : i + 1]) for i in range(MAX_FACES)])
    for n in (1, 3, 5, 7, 13, 37, 64):
        assert np.array_equal(renderer.generate(z[:n]), alone[:n]), n
    # whatever sizes were measured, only those (and 1) are used
    assert renderer.chunk_sizes[-1] == 1
    assert set(renderer.chunk_sizes) <= {1, *batch_invariant_sizes(gen)}


def test_only_one_at_a_time_when_no_size_is_trusted(serve_run) -> None:
    gen = load_generator(serve_run)
    renderer = FaceRenderer(gen, chunk_sizes=())
    assert renderer.chunk_sizes == (1,) and renderer.max_batch == 1
    z = renderer.seed_latents(1)[:3]
    assert np.array_equal(renderer.generate(z), FaceRenderer(gen).generate(z))
    assert renderer.generate(z[:0]).shape == (0, 32, 32, 3)


def test_seed_latents_are_the_sample_commands_and_truncate_toward_zero(serve_run) -> None:
    renderer = FaceRenderer(load_generator(serve_run), chunk_sizes=())
    assert torch.equal(renderer.seed_latents(9), seeded_latents(64, 100, 9))
    assert torch.equal(renderer.face_latent(9, 4), seeded_latents(64, 100, 9)[4:5])
    assert torch.allclose(renderer.seed_latents(9, 0.5), seeded_latents(64, 100, 9) * 0.5)


def test_path_latents_are_spherical_with_exact_ends(serve_run) -> None:
    renderer = FaceRenderer(load_generator(serve_run), chunk_sizes=())
    path = renderer.path_latents(1, 2, 3, 4, steps=9)
    a, b = renderer.face_latent(1, 2)[0], renderer.face_latent(3, 4)[0]
    assert path.shape == (9, 100)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    # slerp keeps the norm near the ends' (a straight line would dip toward the origin in the middle)
    mid = path[4].norm()
    assert mid > 0.97 * min(a.norm(), b.norm())
    assert mid > ((a + b) / 2).norm() * 1.2


def test_encodings(serve_run) -> None:
    renderer = FaceRenderer(load_generator(serve_run), chunk_sizes=())
    faces = renderer.generate(renderer.seed_latents(0)[:4])
    with Image.open(io.BytesIO(renderer.strip_png(faces, 16))) as strip:
        assert strip.size == (64, 16)
    with Image.open(io.BytesIO(renderer.grid_png(faces, 32))) as grid:
        assert grid.size == (2 * 34 + 2, 2 * 34 + 2)
    with Image.open(io.BytesIO(renderer.gif(faces, 24))) as gif:
        assert gif.size == (24, 24) and gif.n_frames == 6
    smooth = renderer.scale(faces[0], 96, smooth=True)
    sharp = renderer.scale(faces[0], 96)
    assert smooth.shape == sharp.shape == (96, 96, 3) and not np.array_equal(smooth, sharp)
    assert np.shares_memory(renderer.scale(faces[0], 32), faces[0])  # native size: no copy, no resampling


def test_model_id_follows_the_weights(serve_run) -> None:
    gen = load_generator(serve_run)
    first = FaceRenderer(gen, chunk_sizes=()).model_id
    assert FaceRenderer(load_generator(serve_run), chunk_sizes=()).model_id == first
    with torch.no_grad():
        next(gen.netG.parameters()).add_(1e-3)
    assert FaceRenderer(gen, chunk_sizes=()).model_id != first
