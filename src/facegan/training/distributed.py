"""Data-parallel training with torchrun: process-group set-up, DDP wrapping and rank helpers.

`torchrun --nproc_per_node=N -m facegan train ...` starts N processes with RANK, LOCAL_RANK and WORLD_SIZE in
their environment. Each one trains on its own disjoint share of every global batch (`--batch-size` is the
global batch; each rank takes batch_size / world_size images), DistributedDataParallel averages the gradients,
so every rank holds the same weights, and only rank 0 logs and writes files. Latents are drawn for the whole
global batch on every rank from the same generator and sliced, so with `--sync-bn` (or a model without
BatchNorm) N processes compute what one process would on the same global batch.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from facegan.errors import FaceganError
from facegan.utils.device import resolve_device
from facegan.utils.dist_env import DistEnv, env_from_torchrun

log = logging.getLogger("facegan.distributed")

# Under torchrun the ranks agree on a stop request (a signal, the time budget) at least this often, in seconds of
# training (and at least every log_every steps), so a preemption's SIGTERM stops the job well inside torchrun's
# 30 s before it sends SIGKILL.
STOP_AGREE_S = 5.0


def current_env() -> DistEnv:
    """The DistEnv of an initialised process group, else the torchrun environment."""
    if dist.is_available() and dist.is_initialized():
        env = env_from_torchrun()
        return DistEnv(rank=dist.get_rank(), local_rank=env.local_rank, world_size=dist.get_world_size())
    return env_from_torchrun()


def rank_device(name: str, env: DistEnv) -> torch.device:
    """The device of this rank: `auto`/`cuda` → cuda:LOCAL_RANK under torchrun on a GPU machine."""
    device = resolve_device(name)
    if device.type == "cuda" and env.is_distributed and device.index is None:
        if env.local_rank >= torch.cuda.device_count():
            raise FaceganError(
                f"local rank {env.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "give torchrun --nproc_per_node at most the number of GPUs")
        device = torch.device("cuda", env.local_rank)
    if device.type == "mps" and env.is_distributed:
        raise FaceganError("multi-process training needs CUDA GPUs or the CPU (--device cpu), not MPS")
    return device


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def shared_store_warning(environ: Mapping[str, str]) -> str | None:
    """What to say when torchrun may restart the workers through its shared rendezvous store, which can hand a
    restarted worker a stale address and cost a restart (pytorch/pytorch#135712); None otherwise."""
    try:
        restarts = int(environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    except ValueError:
        return None
    if environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or restarts < 1:
        return None
    return ("torchrun restarts workers through its shared rendezvous store here, which can give a restarted worker "
            "a stale address and cost a restart: export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 before torchrun "
            "(docs/long-runs.md)")


@contextmanager
def process_group(device: torch.device, env: DistEnv, timeout_s: float = 1800.0) -> Iterator[DistEnv]:
    """Join the torchrun job for the duration of a run (no-op for one process or a group already set up).

    A group this opens is closed on exit; one the caller opened (tests, notebooks) is left to the caller.
    """
    if not env.is_distributed or dist.is_initialized():
        yield current_env() if dist.is_initialized() else env
        return
    if env.is_main and (warning := shared_store_warning(os.environ)):
        log.warning("%s", warning)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=timeout_s),
                            **({"device_id": device} if device.type == "cuda" else {}))
    try:
        yield env
    finally:
        dist.destroy_process_group()


def quiet_other_ranks(env: DistEnv) -> None:
    """Ranks other than 0 log warnings and errors only, so the job prints one copy of each message."""
    if not env.is_main:
        logging.getLogger("facegan").setLevel(logging.WARNING)


def check_batch(batch_size: int, env: DistEnv) -> int:
    """The per-rank batch for a global `batch_size` (it must split evenly across the ranks)."""
    if batch_size % env.world_size:
        raise FaceganError(
            f"--batch-size {batch_size} is the global batch and must be a multiple of the {env.world_size} "
            f"processes (each takes an equal share); try {max(1, batch_size // env.world_size) * env.world_size}")
    return batch_size // env.world_size


def convert_sync_bn(net: nn.Module, device: torch.device) -> nn.Module:
    """Replace BatchNorm layers by SyncBatchNorm, which computes batch statistics over the global batch."""
    if device.type != "cuda":
        raise FaceganError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm has no CPU implementation")
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


def wrap_ddp(net: nn.Module, device: torch.device, env: DistEnv) -> nn.Module:
    """`net` in DistributedDataParallel (the module itself for one process).

    DDP broadcasts rank 0's weights when it wraps, so every rank starts (or resumes) from the same state.
    BatchNorm running statistics are not broadcast at every forward (D runs three times a step); they feed only
    rank 0's samples and checkpoints, which use rank 0's own statistics.
    """
    if not env.is_distributed:
        return net
    # torch ≥ 2.13 names the switch forward_sync_buffers (and warns about broadcast_buffers).
    sync_off = ({"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
                else {"broadcast_buffers": False})
    return DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True, **sync_off)


def all_max(values: list[float], device: torch.device, env: DistEnv) -> list[float]:
    """The element-wise maximum of `values` over every rank (a collective: call it at the same step everywhere)."""
    if not env.is_distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def any_rank(flag: bool, device: torch.device, env: DistEnv) -> bool:
    """True on every rank when `flag` is True on any rank (a collective: call it at the same step everywhere)."""
    return bool(all_max([1.0 if flag else 0.0], device, env)[0])


def check_same_start(step: int, run_dir: object, device: torch.device, env: DistEnv) -> None:
    """Every rank must start from the same step (the same checkpoint, or none); else one clear FaceganError on all.

    Each process reads the run's newest checkpoint itself, so a machine that sees another RUN/ (a local disk where
    the others share one) would train out of step with them.
    """
    high, minus_low = all_max([float(step), -float(step)], device, env)
    if high != -minus_low:
        raise FaceganError(f"the processes of this job start at different steps ({-minus_low:.0f} to {high:.0f}): "
                           f"every machine must see the same {run_dir} (put --out on a filesystem they all share)")


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op for one process)."""
    if env.is_distributed and dist.is_initialized():
        dist.barrier()


def rank_share(batch: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """This rank's equal share (along dim 0) of a tensor every rank computed for the whole global batch."""
    if not env.is_distributed:
        return batch
    n = batch.shape[0] // env.world_size
    return batch[env.rank * n:(env.rank + 1) * n]


def agreement_interval(step_s: float, every: int, within_s: float = STOP_AGREE_S) -> int:
    """Steps between two stop agreements: `every`, or fewer when that many steps of `step_s` take over `within_s`."""
    if step_s <= 0:
        return max(1, every)
    return max(1, min(every, int(within_s / step_s)))


class StopAgreement:
    """Stop requests (signals, time budgets) that every rank acts on at the same step.

    One process checks its requests every step. Under torchrun a rank that stopped alone would leave the
    others waiting in their next all-reduce, so the ranks agree (one all-reduce, which also carries the next
    interval) at the first step of a start, then every `every` steps, on the steps where the loop syncs with the
    host anyway to write its log, or more often when that many steps take over STOP_AGREE_S seconds: a request
    is acted on within about STOP_AGREE_S seconds plus one step.
    """

    def __init__(self, env: DistEnv, device: torch.device, every: int, within_s: float = STOP_AGREE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.env = env
        self.device = device
        self.every = max(1, every)
        self.within_s = within_s
        self.clock = clock
        self.agreed = False
        self.next_step: int | None = None  # the step of the next agreement; None: the first step of this start
        self._last: tuple[int, float] = (0, 0.0)  # the step and time of the last agreement

    def check(self, step: int, *requests: bool) -> bool:
        """True once the run should stop after `step` (the same answer on every rank)."""
        if self.agreed:
            return True
        if not self.env.is_distributed:
            self.agreed = any(requests)
            return self.agreed
        if self.next_step is not None and step < self.next_step:
            return False
        now = self.clock()
        interval = 1
        if self.next_step is not None:  # the ranks' step times differ a little: the smallest interval wins
            last_step, last_time = self._last
            interval = agreement_interval((now - last_time) / max(1, step - last_step), self.every, self.within_s)
        flag, minus_interval = all_max([1.0 if any(requests) else 0.0, -float(interval)], self.device, self.env)
        interval = int(-minus_interval)
        self.agreed = flag > 0
        self._last = (step, now)
        self.next_step = (step // interval + 1) * interval
        return self.agreed
