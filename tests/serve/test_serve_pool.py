"""The generation pool: bounded, batches single faces queued together, hands errors to the right request."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from facegan.serve.pool import GenerationPool, PoolFullError


def fake_generate(calls: list[int]):
    """G stand-in: face i's pixels are its latent's first value; records each batch size."""
    def generate(z: torch.Tensor) -> np.ndarray:
        calls.append(len(z))
        return np.repeat(z[:, :1].numpy().astype(np.uint8)[:, None, None, :], 2, axis=1)
    return generate


def blocker(pool: GenerationPool) -> tuple[threading.Event, threading.Event]:
    """Occupy every worker until `release` is set; `started` is set when they all are busy."""
    release, started = threading.Event(), threading.Event()
    busy = []

    def hold() -> str:
        busy.append(1)
        if len(busy) == pool.workers:
            started.set()
        release.wait(10)
        return "held"

    for _ in range(pool.workers):
        pool.submit(hold)
    assert started.wait(10)
    return release, started


def test_faces_queued_together_run_as_one_batch_in_order() -> None:
    calls: list[int] = []
    pool = GenerationPool(fake_generate(calls), workers=1, max_batch=4)
    release, _ = blocker(pool)
    futures = [pool.submit_face(torch.full((1, 3), float(i)), lambda im: int(im[0, 0, 0])) for i in range(6)]
    release.set()
    assert [f.result(10) for f in futures] == list(range(6))
    assert calls == [4, 2]  # max_batch faces at a time, first come first served
    assert pool.stats.largest_batch == 4 and pool.stats.face_batches == 2 and pool.stats.faces == 6
    pool.close()


def test_a_lone_face_does_not_wait_for_a_batch_to_fill() -> None:
    calls: list[int] = []
    pool = GenerationPool(fake_generate(calls), workers=1, max_batch=16)
    started = time.perf_counter()
    assert pool.submit_face(torch.full((1, 3), 9.0), lambda im: int(im[0, 0, 0])).result(10) == 9
    assert time.perf_counter() - started < 1.0
    assert calls == [1]
    pool.close()


def test_whole_jobs_are_not_batched_and_keep_their_place() -> None:
    calls: list[int] = []
    pool = GenerationPool(fake_generate(calls), workers=1, max_batch=8)
    release, _ = blocker(pool)
    order: list[str] = []
    pool.submit_face(torch.zeros(1, 3), lambda im: order.append("face0"))
    grid = pool.submit(lambda: order.append("grid"))
    last = pool.submit_face(torch.zeros(1, 3), lambda im: order.append("face1"))
    release.set()
    grid.result(10)
    last.result(10)
    # the second face joined the first one's batch; the grid ran as a job of its own
    assert calls == [2] and order == ["face0", "face1", "grid"]
    pool.close()


def test_pool_is_bounded_and_says_so() -> None:
    pool = GenerationPool(fake_generate([]), workers=1, max_pending=3)
    release, _ = blocker(pool)
    pool.submit(lambda: 1)
    pool.submit(lambda: 2)
    with pytest.raises(PoolFullError, match="already waiting"):
        pool.submit(lambda: 3)
    assert pool.stats.rejected == 1 and pool.pending == 3
    release.set()
    pool.close()
    assert pool.pending == 0
    assert pool.submit(lambda: 4).result(10) == 4  # usable again: workers restart on demand
    pool.close()


def test_errors_reach_the_requests_that_caused_them() -> None:
    pool = GenerationPool(fake_generate([]), workers=1)

    def fail() -> None:
        raise ValueError("bad grid")

    with pytest.raises(ValueError, match="bad grid"):
        pool.submit(fail).result(10)
    ok = pool.submit_face(torch.ones(1, 3), lambda im: "fine")
    assert ok.result(10) == "fine"

    def broken_generate(z: torch.Tensor) -> np.ndarray:
        raise RuntimeError("G failed")

    broken = GenerationPool(broken_generate, workers=1)
    with pytest.raises(RuntimeError, match="G failed"):
        broken.submit_face(torch.ones(1, 3), lambda im: im).result(10)
    assert broken.submit(lambda: "still alive").result(10) == "still alive"
    pool.close()
    broken.close()


def test_cancelled_jobs_are_skipped() -> None:
    ran: list[int] = []
    pool = GenerationPool(fake_generate([]), workers=1)
    release, _ = blocker(pool)
    doomed = pool.submit(lambda: ran.append(1))
    assert doomed.cancel()
    kept = pool.submit(lambda: ran.append(2))
    release.set()
    kept.result(10)
    assert ran == [2]
    pool.close()


def test_bad_pool_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        GenerationPool(fake_generate([]), workers=0)
