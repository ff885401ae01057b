"""Training that survives a lost process, with real torchrun over gloo on the CPU: an elastic restart after a
worker is killed (kill -9), two "nodes" on 127.0.0.1 of which one is lost and comes back, and a SIGTERM to the
whole job followed by the same command. Each run must end as an uninterrupted run of the same length does.

What is bit-exact, and why: on the CPU with gloo and a fixed number of processes, every step of a resumed run
computes what the uninterrupted run computed (the same global batches from the checkpointed step, the latents from
the checkpointed generator, gloo's sum of two gradients, one thread per process), so the final G, D (BatchNorm
statistics included) and both optimisers are equal bit for bit, and so are the losses on every metrics.jsonl line.
Only the timings (images_per_s, elapsed_s) and runtime.json's entries differ.

The tests stop the workers (SIGSTOP) when the run has passed its first checkpoint, so what the run had done when
it was hit is known exactly whatever the machine's speed; then they kill (SIGKILL), signal (SIGTERM) and resume
them (SIGCONT). Linux only: the workers are found in /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from facegan.data.dataset import write_dataset
from facegan.run.checkpoint import list_checkpoints, load_checkpoint
from facegan.run.layout import read_runtime
from facegan.run.metrics_log import read_metrics
from factories import blob_images

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TORCHRUN.exists(), reason=f"no torchrun beside {sys.executable}"),
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="torch has no gloo backend"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc (Linux)"),
]

STEPS = 64  # 64 images / 16 per global batch = 4 steps per epoch: the runs cross epochs
CHECKPOINT_EVERY = 8
LOG_EVERY = 3  # the ranks agree on a stop request at most this many steps apart (and every STOP_AGREE_S seconds)
BATCH = 16
HIT_AFTER = 12  # hit the job once metrics.jsonl reaches this step: after the checkpoint at 8, before the end
TIMEOUT_S = 240  # a safety net against a hung job, not a timing assertion
# torch's shared rendezvous store hands a restarted worker a stale address now and then (pytorch/pytorch#135712);
# docs/long-runs.md gives this setting for every elastic job.
ENV = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def _train_args(data: Path, run: Path) -> list[str]:
    """The one `facegan train` command line that starts the run and, rerun, continues it."""
    return ["-m", "facegan", "train", "--data", str(data), "--out", str(run), "--resume-if-exists",
            "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", str(BATCH), "--steps", str(STEPS),
            "--log-every", str(LOG_EVERY), "--checkpoint-every", str(CHECKPOINT_EVERY), "--sample-every", "1000",
            "--precision", "fp32", "--device", "cpu", "--no-progress", "--no-report"]


def _one_machine(data: Path, run: Path) -> list[str]:
    return [str(TORCHRUN), "--standalone", "--nproc-per-node=2", "--max-restarts=2", *_train_args(data, run)]


def _one_node(data: Path, run: Path, port: int) -> list[str]:
    return [str(TORCHRUN), "--nnodes=2", "--nproc-per-node=1", "--max-restarts=2", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=facegan-{port}", *_train_args(data, run)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _workers(agent: int) -> dict[int, int]:
    """{RANK: pid} of the worker processes a torchrun agent started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent != agent:
                continue
            environ = dict(kv.split("=", 1) for kv in (entry / "environ").read_text().split("\0") if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if "RANK" in environ:
            found[int(environ["RANK"])] = int(entry.name)
    return found


def _signal(pids: Any, sig: int) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):  # already gone
            os.kill(pid, sig)


@contextmanager
def _job(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A torchrun agent writing to `log`; it and its workers are killed if the test leaves them running."""
    with log.open("w") as out:
        agent = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=log.parent,
                                 start_new_session=True)
    try:
        yield agent
    finally:
        if agent.poll() is None:
            workers = _workers(agent.pid).values()
            _signal([agent.pid], signal.SIGKILL)
            _signal(workers, signal.SIGKILL)
            agent.wait()


def _finish(agent: subprocess.Popen, log: Path) -> int:
    try:
        return agent.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the job did not end within {TIMEOUT_S} s; its log:\n{log.read_text()[-4000:]}")


def _wait_until(ready: Callable[[], bool], agents: list[subprocess.Popen], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not ready():
        if any(a.poll() is not None for a in agents) or time.monotonic() > deadline:
            pytest.fail(f"the job ended or hung before the test could hit it; its log:\n{log.read_text()[-4000:]}")
        time.sleep(0.01)


def _last_step(run: Path) -> int:
    return max((r["step"] for r in read_metrics(run / "metrics.jsonl")), default=0)


def _stop_workers(agents: list[subprocess.Popen], run: Path, log: Path) -> dict[str, Any]:
    """Freeze the workers once the run has passed HIT_AFTER; what the run had done then."""
    _wait_until(lambda: _last_step(run) >= HIT_AFTER and all(len(_workers(a.pid)) for a in agents), agents, log)
    workers = [_workers(a.pid) for a in agents]
    _signal([pid for w in workers for pid in w.values()], signal.SIGSTOP)
    newest = list_checkpoints(run)[-1]
    state = {"workers": workers, "logged": _last_step(run), "checkpoint": load_checkpoint(newest)["step"]}
    assert state["logged"] < STEPS, "the job ended before it could be hit: make STEPS larger"
    return state


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("images_per_s", "elapsed_s")}


def _check_ends_as_uninterrupted(run: Path, reference: Path) -> None:
    """The run's metrics lines and final state are the uninterrupted run's, and nothing half-written is left."""
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))  # no step missing or counted twice
    assert [r["images_seen"] for r in records] == [BATCH * s for s in range(1, STEPS + 1)]
    assert [_plain(r) for r in records] == [_plain(r) for r in read_metrics(reference / "metrics.jsonl")]
    final, expected = load_checkpoint(run), load_checkpoint(reference)
    assert (final["step"], final["images_seen"]) == (STEPS, STEPS * BATCH)
    for part in ("G", "D"):
        for name, tensor in expected[part].items():
            assert torch.equal(final[part][name], tensor), f"{part}.{name} differs from the uninterrupted run"
    for part in ("optG", "optD"):
        for index, state in expected[part]["state"].items():
            for name, tensor in state.items():
                assert torch.equal(final[part]["state"][index][name], tensor), f"{part} {index}.{name} differs"
    left = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert left == [], f"temporary files left: {left}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("elastic") / "data"
    write_dataset(path, blob_images(64, 32, 3), source="test:blobs")
    return path


@pytest.fixture(scope="module")
def reference(data: Path) -> Path:
    """The same command, never interrupted."""
    run = data.parent / "reference"
    log = data.parent / "reference.log"
    with _job(_one_machine(data, run), log) as agent:
        assert _finish(agent, log) == 0, log.read_text()[-4000:]
    assert [s["step"] for s in read_runtime(run)] == [0]
    return run


def test_a_worker_killed_mid_run_is_restarted_and_the_run_ends_as_if_uninterrupted(
    data: Path, reference: Path, tmp_path: Path
) -> None:
    run, log = tmp_path / "run", tmp_path / "job.log"
    with _job(_one_machine(data, run), log) as agent:
        hit = _stop_workers([agent], run, log)
        (workers,) = hit["workers"]
        _signal([workers[0]], signal.SIGKILL)  # rank 0, the one that writes: lost as a machine is, mid-interval
        _signal([workers[1]], signal.SIGCONT)
        assert _finish(agent, log) == 0, log.read_text()[-4000:]
    starts = [s["step"] for s in read_runtime(run)]
    assert starts == [0, hit["checkpoint"]]  # one restart, from the newest checkpoint there was
    assert hit["logged"] - hit["checkpoint"] <= CHECKPOINT_EVERY  # at most one interval computed again
    _check_ends_as_uninterrupted(run, reference)


def test_two_nodes_train_one_run_and_a_lost_node_rejoins(data: Path, reference: Path, tmp_path: Path) -> None:
    run, port = tmp_path / "run", _free_port()
    logs = [tmp_path / "node0.log", tmp_path / "node1.log", tmp_path / "node1-again.log"]
    with _job(_one_node(data, run, port), logs[0]) as node0:
        # node 0 hosts the rendezvous store (c10d's single point: docs/long-runs.md); node 1 joins once it listens
        _wait_until(lambda: _port_open(port), [node0], logs[0])
        with _job(_one_node(data, run, port), logs[1]) as node1:
            hit = _stop_workers([node0, node1], run, logs[0])
            _signal([*hit["workers"][1].values(), node1.pid], signal.SIGKILL)  # node 1, agent and worker, is lost
            _signal(hit["workers"][0].values(), signal.SIGCONT)
            node1.wait()
        with _job(_one_node(data, run, port), logs[2]) as node1_again:  # the same command on the node, again
            assert _finish(node1_again, logs[2]) == 0, logs[2].read_text()[-4000:]
            assert _finish(node0, logs[0]) == 0, logs[0].read_text()[-4000:]
    starts = read_runtime(run)
    assert [(s["step"], s["processes"]) for s in starts] == [(0, 2), (hit["checkpoint"], 2)]
    _check_ends_as_uninterrupted(run, reference)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_to_the_job_checkpoints_and_the_same_command_continues(
    data: Path, reference: Path, tmp_path: Path
) -> None:
    run, log = tmp_path / "run", tmp_path / "job.log"
    with _job(_one_machine(data, run), log) as agent:
        hit = _stop_workers([agent], run, log)
        workers = hit["workers"][0].values()
        # As a scheduler or a shutting-down machine does: every process of the job gets the notice, so each worker
        # gets it twice (directly, and passed on by torchrun), which must not abort it.
        _signal([agent.pid, *workers], signal.SIGTERM)
        _signal(workers, signal.SIGCONT)
        assert _finish(agent, log) != 0  # torchrun reports the signal it got
    stopped = load_checkpoint(run)["step"]
    assert f"interrupted at step {stopped}" in log.read_text()  # rank 0 wrote it: nobody needed a SIGKILL
    # The ranks agree at least every LOG_EVERY steps, and metrics.jsonl is at most that many steps behind them.
    assert hit["logged"] < stopped <= hit["logged"] + 2 * LOG_EVERY
    assert _last_step(run) == stopped  # metrics.jsonl ends at the checkpoint: nothing to drop, nothing missing

    again = tmp_path / "again.log"
    with _job(_one_machine(data, run), again) as agent:
        assert _finish(agent, again) == 0, again.read_text()[-4000:]
    assert [s["step"] for s in read_runtime(run)] == [0, stopped]
    _check_ends_as_uninterrupted(run, reference)
