"""Where this process sits in a torchrun job (`DistEnv`): its rank, its rank on this machine, the job's size.

A plain value read from torchrun's RANK / LOCAL_RANK / WORLD_SIZE; the run's live state holds one, and
facegan.training.distributed sets up the process group from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from facegan.errors import FaceganError

__all__ = ["SINGLE", "DistEnv", "env_from_torchrun"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job: its global rank, its rank on this machine, and the job's size."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, samples, checkpoints and computes metrics."""
        return self.rank == 0


SINGLE = DistEnv()


def env_from_torchrun(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The DistEnv torchrun describes in RANK / LOCAL_RANK / WORLD_SIZE (one process when they are absent)."""
    environ = os.environ if environ is None else environ
    try:
        world_size = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise FaceganError("RANK, LOCAL_RANK and WORLD_SIZE must be integers (are they set by torchrun?)") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise FaceganError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size)
