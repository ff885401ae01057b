"""torchrun/DDP training on the CPU (gloo): identical weights, disjoint shards, rank-0-only files, resume,
the same results per global batch as one process, and the CUDA set-up paths with torch.cuda mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from facegan.config import RunConfig
from facegan.data.dataset import BatchIterator, PreparedDataset, write_dataset
from facegan.errors import FaceganError
from facegan.models import FAMILIES, dcgan
from facegan.models.family import Family
from facegan.models.presets import build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.run.metrics_log import read_metrics
from facegan.training import distributed
from facegan.utils.dist_env import DistEnv

WORLD = 2
GLOBAL_BATCH = 16
STEPS = 8  # 48 images / 16 per global batch = 3 steps per epoch: the runs cross two epoch boundaries
RESUME_AT = 5


def _images(count: int, seed: int = 0) -> np.ndarray:
    """Discs of random place, size and colour: distinct images, so shards can be told apart."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    out = np.empty((count, 32, 32, 3), np.uint8)
    for i in range(count):
        cx, cy, r = [*rng.uniform(0.3, 0.7, 2).tolist(), rng.uniform(0.15, 0.3)]
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
        out[i] = (disc * rng.uniform(120, 255, 3) + rng.uniform(0, 30)).astype(np.uint8)
    return out


def _config(data: Path, family: str = "dcgan", **train: Any) -> dict[str, Any]:
    overrides = {
        "data": {"path": str(data), "flip": True},
        "model": {"family": family, "resolution": 32, "channels": 3, "nz": 16, "ngf": 8, "ndf": 8},
        "train": {"batch_size": GLOBAL_BATCH, "steps": STEPS, "log_every": 2, "sample_every": 4,
                  "checkpoint_every": 4, "device": "cpu", "precision": "fp32", **train},  # bit-comparable maths
    }
    return build_config("dcgan", overrides).to_dict()


def _without_bn(net: nn.Module) -> nn.Module:
    """The same net with every BatchNorm replaced by Identity (batch statistics are per rank under DDP)."""
    for name, child in net.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(net, name, nn.Identity())
        else:
            _without_bn(child)
    return net


def _register_nobn_family() -> None:
    FAMILIES["test-nobn"] = Family("test-nobn", lambda cfg: _without_bn(dcgan.build_generator(cfg)),
                                   lambda cfg: _without_bn(dcgan.build_discriminator(cfg)))


def _params(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def _is_write(event: str, args: tuple[Any, ...]) -> bool:
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    return event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree")


def _worker(rank: int, world: int, init_file: str, root: str, configs: dict[str, dict[str, Any]]) -> None:
    """One DDP rank: runs the phases below and saves what it saw and its final weights under root/out."""
    import facegan.training.loop as train_module
    from facegan.data import dataset as dataset_module

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    _register_nobn_family()
    runs = Path(root) / "runs"
    writes: list[str] = []
    recording = [True]

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if recording[0] and args and _is_write(event, args) and str(args[0]).startswith(str(runs)):
            writes.append(f"{event} {args[0]}")

    sys.addaudithook(audit)

    seen: list[list[int]] = []
    original_batch = dataset_module.BatchIterator.batch

    def recording_batch(self: BatchIterator, indices: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
        seen.append(indices.tolist())
        return original_batch(self, indices, flips)

    nets: list[tuple[nn.Module, nn.Module]] = []
    original_build = train_module.build_models

    def capturing_build(cfg: Any) -> tuple[nn.Module, nn.Module]:
        nets.append(original_build(cfg))
        return nets[-1]

    dataset_module.BatchIterator.batch = recording_batch  # type: ignore[method-assign]
    train_module.build_models = capturing_build

    results: dict[str, Any] = {}
    for name in ("full", "nobn"):
        seen.clear()
        result = train_module.train(RunConfig.from_dict(configs[name]), runs / name, show_progress=False)
        netG, netD = nets[-1]
        results[name] = {"G": _params(netG), "D": _params(netD), "seen": list(seen), "status": result.status,
                         "rank": result.rank, "checkpoint": str(result.checkpoint)}
    partial = RunConfig.from_dict(configs["full"])
    partial.train.steps = RESUME_AT
    train_module.train(partial, runs / "resumed", show_progress=False)
    train_module.train(RunConfig.from_dict(configs["full"]), runs / "resumed", resume=True, show_progress=False)
    netG, netD = nets[-1]
    results["resumed"] = {"G": _params(netG), "D": _params(netD)}

    recording[0] = False
    results["writes"] = writes
    dist.barrier()
    dist.destroy_process_group()
    torch.save(results, Path(root) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs the 2-process job once for all the tests below."""
    root = tmp_path_factory.mktemp("ddp")
    data = root / "data"
    write_dataset(data, _images(48), source="test:discs")
    configs = {"full": _config(data), "nobn": _config(data, family="test-nobn", steps=4)}
    mp.spawn(_worker, args=(WORLD, str(root / "init"), str(root), configs), nprocs=WORLD, join=True)
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return {"root": root, "data": data, "configs": configs, "ranks": ranks}


@pytest.mark.slow
def test_ranks_hold_identical_weights_after_training(ddp_results: dict[str, Any]) -> None:
    rank0, rank1 = ddp_results["ranks"]
    assert rank0["full"]["status"] == rank1["full"]["status"] == "finished"
    assert (rank0["full"]["rank"], rank1["full"]["rank"]) == (0, 1)
    initial = dcgan.build_generator(RunConfig.from_dict(ddp_results["configs"]["full"]).model)
    for net in ("G", "D"):
        for name, value in rank0["full"][net].items():
            assert torch.equal(value, rank1["full"][net][name]), f"{net}.{name} differs between ranks"
    moved = [not torch.equal(v, rank0["full"]["G"][k]) for k, v in _params(initial).items()]
    assert all(moved), "training did not change G"


@pytest.mark.slow
def test_ranks_see_disjoint_shares_of_each_global_batch(ddp_results: dict[str, Any]) -> None:
    rank0, rank1 = ddp_results["ranks"]
    seen0, seen1 = rank0["full"]["seen"], rank1["full"]["seen"]
    assert len(seen0) == len(seen1) == STEPS
    single = BatchIterator(PreparedDataset.open(ddp_results["data"]), GLOBAL_BATCH, torch.device("cpu"))
    for step, (a, b) in enumerate(zip(seen0, seen1, strict=True)):
        assert len(a) == len(b) == GLOBAL_BATCH // WORLD
        assert not set(a) & set(b), f"ranks shared images at step {step}"
        epoch, batch = divmod(step, single.batches_per_epoch)
        expected = single.epoch_indices(epoch)[0][batch].tolist()
        assert a + b == expected, "the two shares are not one process's global batch"
    per_epoch = single.batches_per_epoch
    epoch0 = {i for batch in seen0[:per_epoch] + seen1[:per_epoch] for i in batch}
    assert len(epoch0) == per_epoch * GLOBAL_BATCH  # an epoch visits each image at most once


@pytest.mark.slow
def test_only_rank_zero_writes_files(ddp_results: dict[str, Any]) -> None:
    rank0, rank1 = ddp_results["ranks"]
    assert rank1["writes"] == []
    assert any("checkpoints" in w for w in rank0["writes"])
    run = ddp_results["root"] / "runs" / "full"
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1))  # each step logged once
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000004.pt", "step-00000008.pt"]
    assert rank1["full"]["checkpoint"] == rank0["full"]["checkpoint"] == str(run / "checkpoints/step-00000008.pt")


@pytest.mark.slow
def test_resume_under_ddp_continues_exactly(ddp_results: dict[str, Any]) -> None:
    for rank in ddp_results["ranks"]:
        for net in ("G", "D"):
            for name, value in rank["full"][net].items():
                assert torch.equal(value, rank["resumed"][net][name]), f"{net}.{name} differs after resume"
    full = load_checkpoint(ddp_results["root"] / "runs" / "full")
    resumed = load_checkpoint(ddp_results["root"] / "runs" / "resumed")
    assert resumed["step"] == STEPS
    for name, value in full["G"].items():
        assert torch.equal(value, resumed["G"][name])
    steps = [r["step"] for r in read_metrics(ddp_results["root"] / "runs" / "resumed" / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1))


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_global_batch(
    ddp_results: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without BatchNorm (or with --sync-bn on GPUs) the maths is the same: shares of one global batch,
    the same latents, gradients averaged by DDP."""
    import facegan.training.loop as train_module

    monkeypatch.setitem(FAMILIES, "test-nobn", FAMILIES.get("test-nobn"))
    _register_nobn_family()
    nets: list[tuple[nn.Module, nn.Module]] = []
    original = train_module.build_models
    monkeypatch.setattr(train_module, "build_models", lambda cfg: nets.append(original(cfg)) or nets[-1])
    train_module.train(RunConfig.from_dict(ddp_results["configs"]["nobn"]), tmp_path / "one", show_progress=False)
    one = {"G": _params(nets[-1][0]), "D": _params(nets[-1][1])}
    two = ddp_results["ranks"][0]["nobn"]
    for net in ("G", "D"):
        for name, value in one[net].items():
            torch.testing.assert_close(two[net][name], value, rtol=1e-4, atol=2e-6, msg=f"{net}.{name}")


@pytest.mark.slow
def test_torchrun_cli_two_processes(tmp_path: Path) -> None:
    """`torchrun --standalone --nproc_per_node=2 -m facegan train ...` trains one run written by rank 0."""
    data = tmp_path / "data"
    write_dataset(data, _images(48), source="test:discs")
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "facegan", "train", "--data", str(data),
               "--out", str(run), "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "16", "--steps", "4",
               "--log-every", "2", "--device", "cpu", "--no-progress", "--no-report"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("finished at step 4") == 1  # rank 1 prints nothing
    assert "2 processes of 8 images" in done.stderr
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert load_checkpoint(run)["step"] == 4


def test_env_from_torchrun_reads_rank_variables() -> None:
    assert distributed.env_from_torchrun({}) == DistEnv(0, 0, 1)
    env = distributed.env_from_torchrun({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (env.rank, env.local_rank, env.world_size, env.is_main, env.is_distributed) == (3, 1, 4, False, True)
    with pytest.raises(FaceganError):
        distributed.env_from_torchrun({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(FaceganError):
        distributed.env_from_torchrun({"RANK": "x"})


def test_a_restartable_job_on_the_shared_store_is_told_how_to_avoid_its_stale_addresses() -> None:
    elastic = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_MAX_RESTARTS": "3"}
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in distributed.shared_store_warning(elastic)
    assert distributed.shared_store_warning({**elastic, "TORCHELASTIC_USE_AGENT_STORE": "False"}) is None
    assert distributed.shared_store_warning({**elastic, "TORCHELASTIC_MAX_RESTARTS": "0"}) is None
    assert distributed.shared_store_warning({}) is None


def test_global_batch_splits_evenly_across_ranks() -> None:
    assert distributed.check_batch(128, DistEnv(0, 0, 4)) == 32
    assert distributed.check_batch(128, DistEnv()) == 128
    with pytest.raises(FaceganError, match="multiple of the 3"):
        distributed.check_batch(128, DistEnv(0, 0, 3))


def test_rank_share_takes_this_ranks_slice_of_the_global_batch() -> None:
    batch = torch.arange(12).view(6, 2)
    assert torch.equal(distributed.rank_share(batch, DistEnv(1, 1, 3)), batch[2:4])
    assert distributed.rank_share(batch, DistEnv()) is batch


def test_batch_iterator_shards_are_one_global_batch(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", _images(40), source="test:discs")
    data = PreparedDataset.open(tmp_path / "d")
    single = BatchIterator(data, 8, torch.device("cpu"), seed=3)
    shards = [BatchIterator(data, 4, torch.device("cpu"), seed=3, rank=r, world_size=2) for r in range(2)]
    assert single.batches_per_epoch == shards[0].batches_per_epoch == 5
    for epoch in range(2):
        order, flips = single.epoch_indices(epoch)
        parts = [s.epoch_indices(epoch) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts], dim=1), order)
        assert torch.equal(torch.cat([p[1] for p in parts], dim=1), flips)


def test_stop_agreement_one_process_follows_requests_at_once() -> None:
    stopping = distributed.StopAgreement(DistEnv(), torch.device("cpu"), every=10)
    assert not stopping.check(1, False)
    assert stopping.check(3, False, True)  # not only on multiples of `every`
    assert stopping.check(4, False) and stopping.agreed  # once agreed, it stays


def test_agreement_interval_shrinks_when_steps_are_slow() -> None:
    assert distributed.agreement_interval(0.01, every=10) == 10  # fast steps: at the log steps
    assert distributed.agreement_interval(1.0, every=10, within_s=5.0) == 5
    assert distributed.agreement_interval(30.0, every=10, within_s=5.0) == 1  # never fewer than every step
    assert distributed.agreement_interval(0.0, every=10) == 10


def test_stop_agreement_under_torchrun_agrees_at_once_then_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first step of a start agrees (and times the steps); then every `every` steps, or sooner when that many
    steps take longer than STOP_AGREE_S: a SIGTERM is acted on within seconds, not within log_every slow steps."""
    reduced: list[list[float]] = []
    monkeypatch.setattr(distributed, "all_max", lambda values, device, env: reduced.append(values) or values)
    now = [0.0]
    stopping = distributed.StopAgreement(DistEnv(0, 0, 2), torch.device("cpu"), every=10, within_s=5.0,
                                         clock=lambda: now[0])
    assert not stopping.check(1, False) and stopping.next_step == 2 and len(reduced) == 1
    now[0] = 2.0  # one step took 2 s: agree every 2 steps (on even steps)
    assert not stopping.check(2, False) and stopping.next_step == 4
    assert not stopping.check(3, True) and len(reduced) == 2  # between agreements: no collective
    now[0] = 6.0  # still 2 s a step
    assert stopping.check(4, True) and stopping.agreed and len(reduced) == 3
    assert reduced[-1] == [1.0, -2.0]  # the request, and the interval (the smallest of the ranks' wins)


def test_rank_device_maps_local_rank_to_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.rank_device("auto", DistEnv(3, 1, 4)) == torch.device("cuda", 1)
    assert distributed.rank_device("cuda", DistEnv(3, 1, 4)) == torch.device("cuda", 1)
    assert distributed.rank_device("cuda", DistEnv()) == torch.device("cuda")
    assert distributed.rank_device("cpu", DistEnv(3, 1, 4)) == torch.device("cpu")
    with pytest.raises(FaceganError, match="has no GPU"):
        distributed.rank_device("auto", DistEnv(2, 2, 4))
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


def test_process_group_on_gpus_uses_nccl_and_the_ranks_device(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend, kw)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("destroy",)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    device = torch.device("cuda", 1)
    with distributed.process_group(device, DistEnv(1, 1, 2)) as env:
        assert env == DistEnv(1, 1, 2)
    assert calls[0] == ("set_device", device)
    assert calls[1][:2] == ("init", "nccl") and calls[1][2]["device_id"] == device
    assert calls[2] == ("destroy",)
    calls.clear()
    with distributed.process_group(torch.device("cpu"), DistEnv()):
        pass
    assert calls == []  # one process: no group


def test_sync_bn_converts_batchnorm_and_refuses_the_cpu() -> None:
    cfg = RunConfig().model
    net = dcgan.build_generator(cfg)
    with pytest.raises(FaceganError, match="CUDA"):
        distributed.convert_sync_bn(net, torch.device("cpu"))
    converted = distributed.convert_sync_bn(net, torch.device("cuda", 0))  # conversion itself needs no GPU
    kinds = {type(m) for m in converted.modules()}
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm2d not in kinds


def test_one_process_trains_without_a_process_group(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", _images(48), source="test:discs")
    from facegan.training.loop import train

    result = train(RunConfig.from_dict(_config(tmp_path / "d", steps=2)), tmp_path / "run", show_progress=False)
    assert (result.status, result.rank, result.step) == ("finished", 0, 2)
    assert not dist.is_initialized()


def _start_worker(rank: int, world: int, init_file: str, root: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        distributed.check_same_start(4 * rank, "RUN", torch.device("cpu"), distributed.current_env())
        outcome = "agreed"
    except FaceganError as exc:
        outcome = str(exc)
    dist.destroy_process_group()
    (Path(root) / f"rank{rank}.txt").write_text(outcome)


@pytest.mark.slow
def test_ranks_that_would_start_at_different_steps_refuse_together(tmp_path: Path) -> None:
    """A machine whose RUN/ is not the shared one would find no checkpoint and train out of step: every rank says so."""
    mp.spawn(_start_worker, args=(WORLD, str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        message = (tmp_path / f"rank{rank}.txt").read_text()
        assert message.startswith("the processes of this job start at different steps (0 to 4)"), message
        assert "filesystem they all share" in message


def test_sigterm_is_a_preemption_notice_a_second_one_does_not_abort() -> None:
    from facegan.training.loop import StopRequest

    single = StopRequest()
    single._handle(signal.SIGTERM, None)
    single._handle(signal.SIGTERM, None)  # the same notice again (a scheduler signalling every process): no abort
    assert single.requested
    with pytest.raises(KeyboardInterrupt):
        single._handle(signal.SIGINT, None)  # a person's Ctrl-C after it still aborts


def test_under_torchrun_later_signals_only_repeat_the_stop_request() -> None:
    from facegan.training.loop import StopRequest

    patient = StopRequest(patient=True)
    patient._handle(2, None)
    patient._handle(15, None)  # torchrun's SIGTERM after the Ctrl-C: no abort
    assert patient.requested
    single = StopRequest()
    single._handle(2, None)
    with pytest.raises(KeyboardInterrupt):
        single._handle(2, None)
