"""A bounded pool of worker threads that runs generation jobs and batches single faces asked for at the same time.

The web app never runs G or encodes an image on its event loop: it submits a job here and awaits the future, so a
slow client (or a big grid) never holds up anyone else's request. At most `max_pending` jobs may be queued or
running; past that `submit` raises `PoolFullError` at once (the app answers 503 with Retry-After) instead of queueing
without bound. Single-face jobs waiting in the queue when a worker becomes free are taken together and run through
G as one batch: no face waits for a batch to fill, and under load many faces share one call of G.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

log = logging.getLogger("facegan.serve")


class PoolFullError(Exception):
    """Raised by `submit` when `max_pending` jobs are already queued or running."""


@dataclass
class _Job:
    future: Future
    run: Callable[[], Any] | None = None  # a whole job (grid, strip, …)
    latent: torch.Tensor | None = None  # or one face: its 1×nz latent …
    finish: Callable[[np.ndarray], Any] | None = None  # … and what to do with its H×W×C image (scale, encode)


@dataclass
class PoolStats:
    """Counters for /api/health and tests."""

    jobs: int = 0
    faces: int = 0
    face_batches: int = 0
    largest_batch: int = 0
    rejected: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


class GenerationPool:
    """Worker threads over one FIFO queue; `generate(z)` is G for a batch of latents (N×nz → uint8 N×H×W×C)."""

    def __init__(
        self, generate: Callable[[torch.Tensor], np.ndarray], workers: int = 2, max_pending: int = 256,
        max_batch: int = 16,
    ) -> None:
        if workers < 1 or max_pending < 1 or max_batch < 1:
            raise ValueError("workers, max_pending and max_batch must be at least 1")
        self.generate = generate
        self.workers = workers
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.stats = PoolStats()
        self._queue: deque[_Job] = deque()
        self._running = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False

    @property
    def pending(self) -> int:
        """Jobs queued or running now."""
        with self._cond:
            return len(self._queue) + self._running

    def submit(self, run: Callable[[], Any]) -> Future:
        """Run `run()` on a worker; its return value (or exception) lands in the future."""
        return self._put(_Job(Future(), run=run))

    def submit_face(self, latent: torch.Tensor, finish: Callable[[np.ndarray], Any]) -> Future:
        """G on one 1×nz latent, possibly batched with other faces, then `finish(image)` on a worker."""
        return self._put(_Job(Future(), latent=latent, finish=finish))

    def _put(self, job: _Job) -> Future:
        with self._cond:
            if self._closing:
                raise RuntimeError("the generation pool is closed")
            if len(self._queue) + self._running >= self.max_pending:
                self.stats.rejected += 1
                raise PoolFullError(f"{self.max_pending} requests are already waiting; try again in a moment")
            self._start_workers()
            self._queue.append(job)
            self.stats.jobs += 1
            self._cond.notify()
        return job.future

    def _start_workers(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name=f"facegan-gen-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _take(self) -> list[_Job] | None:
        """The next job, plus every single-face job queued behind it (up to max_batch) if it is one; None: stop."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            first = self._queue.popleft()
            jobs = [first]
            if first.latent is not None:
                rest: deque[_Job] = deque()
                while self._queue:
                    job = self._queue.popleft()
                    (jobs if job.latent is not None and len(jobs) < self.max_batch else rest).append(job)
                self._queue = rest
            self._running += len(jobs)
            return jobs

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            # A job whose client went away before it started is dropped here (cancel() succeeded on it).
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            try:
                if live and live[0].run is not None:
                    self._run_one(live[0])
                elif live:
                    self._run_faces(live)
            finally:
                with self._cond:
                    self._running -= len(jobs)

    def _run_one(self, job: _Job) -> None:
        try:
            job.future.set_result(job.run())  # type: ignore[misc]
        except BaseException as exc:  # handed to the request that asked
            job.future.set_exception(exc)

    def _run_faces(self, jobs: list[_Job]) -> None:
        try:
            images = self.generate(torch.cat([job.latent for job in jobs]))  # type: ignore[misc]
        except BaseException as exc:
            for job in jobs:
                job.future.set_exception(exc)
            return
        with self._cond:
            self.stats.faces += len(jobs)
            self.stats.face_batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
            self.stats.batch_sizes[len(jobs)] = self.stats.batch_sizes.get(len(jobs), 0) + 1
        for job, image in zip(jobs, images, strict=True):
            try:
                job.future.set_result(job.finish(image))  # type: ignore[misc]
            except BaseException as exc:
                job.future.set_exception(exc)

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued jobs, then stop the workers."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []
        with self._cond:
            self._closing = False
