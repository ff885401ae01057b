"""The training loop: read it top to bottom.

`train(config, run_dir)` builds G and D, streams batches of the prepared dataset, runs the family's step
function, logs every step to metrics.jsonl, writes fixed-noise grids and checkpoints, and stops cleanly on
Ctrl-C/SIGTERM with a checkpoint. `train(None, run_dir, resume=True)` continues from the newest checkpoint that
loads; `start_over=True` starts again a run that stopped before its first checkpoint (torchrun's elastic restarts:
docs/long-runs.md).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from facegan.config import BUDGET_ONLY_STEPS, RunConfig, current_versions
from facegan.data.dataset import BatchIterator, PreparedDataset
from facegan.errors import FaceganError
from facegan.models import build_models, get_family
from facegan.models.latents import draw_latents, seeded_latents
from facegan.run.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint, set_aside_newer
from facegan.run.layout import append_runtime, checkpoint_dir, config_path, metrics_path, samples_dir
from facegan.run.metrics_log import MetricsLog
from facegan.run.state import Hook, TrainingRun, TrainResult, restore, save_run_checkpoint, write_fixed_samples
from facegan.training import conditioning, distributed, schedules, tensorboard
from facegan.training.configure import check_config, check_model_fits_data, check_start_again, resume_changes
from facegan.training.ema import make_ema, update_ema
from facegan.training.health import HealthMonitor
from facegan.training.optim import build_optimizers
from facegan.training.precision import configure_backends, resolve_speed
from facegan.training.step import StepContext
from facegan.utils.atomic import remove_temp_files
from facegan.utils.progress import progress_bar

log = logging.getLogger("facegan.train")

FIXED_LATENTS = 64


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step with a checkpoint.

    SIGTERM is a preemption notice (a scheduler, a cloud, torchrun passing on its own): a second one only repeats
    it, as does any later signal under torchrun (`patient`), where a Ctrl-C reaches every worker and torchrun then
    sends each a SIGTERM while the ranks still have to reach the step they agree to stop at. Only a second Ctrl-C
    of a single process aborts. What ends a notice's grace period, SIGKILL, cannot be handled: checkpoints are
    durable, and a resume drops the metrics lines after the step it continues from.
    """

    def __init__(self, patient: bool = False) -> None:
        self.requested = False
        self.patient = patient
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            if signum == signal.SIGINT and not self.patient:
                raise KeyboardInterrupt
            return
        self.requested = True
        name = signal.Signals(signum).name
        if self.patient:  # INFO: rank 0 says it once for the job
            log.info("%s: stopping with a checkpoint at the step the processes agree on", name)
        elif signum == signal.SIGINT:
            log.warning("stopping after this step with a checkpoint (SIGINT); press Ctrl-C again to abort")
        else:
            log.warning("stopping after this step with a checkpoint (%s)", name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                # A SIGINT ignored on entry (nohup, a background job of a script) stays ignored, as Python does.
                if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                    continue
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _prepare_run_dir(run_dir: Path, start_over: bool) -> None:
    if config_path(run_dir).exists():
        if not start_over:
            raise FaceganError(f"{run_dir} already holds a run; use `--resume {run_dir}` or another --out")
        if list_checkpoints(run_dir):
            raise FaceganError(f"{run_dir} holds checkpoints: continue it (--resume), or give another --out")
        log.info("starting %s again from step 0: it stopped before its first checkpoint", run_dir)
    samples_dir(run_dir).mkdir(parents=True, exist_ok=True)
    checkpoint_dir(run_dir).mkdir(exist_ok=True)


def train(
    config: RunConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    hooks: Sequence[Hook] = (),
    show_progress: bool = True,
    start_over: bool = False,
) -> TrainResult:
    """Train (or, with `resume`, continue) the run in `run_dir`; returns how it ended.

    `start_over`: a `run_dir` that holds a run with no checkpoint yet (stopped before its first) is started again
    from step 0, with the same data and recipe, instead of refused. Under torchrun every process calls this and
    they train as one job (facegan.training.distributed); a process group the caller already set up is used as it is.
    """
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir) if resume else None
    if ckpt is not None and config is None:
        config = ckpt["config"]
    if config is None:
        raise ValueError("train() needs a config unless it resumes")
    env = distributed.current_env()
    device = distributed.rank_device(config.train.device, env)
    with distributed.process_group(device, env) as env:
        return _train(config, run_dir, ckpt, device, env, hooks, show_progress, start_over)


def _train(
    config: RunConfig, run_dir: Path, ckpt: dict[str, Any] | None, device: torch.device,
    env: distributed.DistEnv, hooks: Sequence[Hook], show_progress: bool, start_over: bool = False,
) -> TrainResult:
    distributed.quiet_other_ranks(env)
    distributed.check_same_start(ckpt["step"] if ckpt is not None else 0, run_dir, device, env)
    changes = resume_changes(ckpt["config"], config) if ckpt is not None else {}  # or a recipe change refused
    if ckpt is None and start_over and config_path(run_dir).exists():  # every rank: one error for the whole job
        check_start_again(RunConfig.load(config_path(run_dir)), config, run_dir)
    dataset = PreparedDataset.open(config.data.path)
    check_model_fits_data(config, dataset)
    check_config(config)  # before anything is written
    if ckpt is None:
        config.versions = current_versions()
    if env.is_main:  # only rank 0 writes files
        if ckpt is None:
            _prepare_run_dir(run_dir, start_over)
        else:  # newer checkpoints that did not load: the run writes them again
            set_aside_newer(run_dir, ckpt["step"])
        remove_temp_files(checkpoint_dir(run_dir))  # what a process killed outright mid-checkpoint (SIGKILL) left
        config.save(config_path(run_dir))

    speed = resolve_speed(config.train.precision, config.train.channels_last, config.train.compile, device)
    configure_backends(device)
    rank_batch = distributed.check_batch(config.train.batch_size, env)
    seed = config.train.seed
    torch.manual_seed(seed)

    netG, netD = build_models(config.model)
    if config.train.sync_bn and env.is_distributed:
        netG, netD = distributed.convert_sync_bn(netG, device), distributed.convert_sync_bn(netD, device)
    for net in (netG, netD):
        speed.prepare_model(net.to(device))
    optG, optD = build_optimizers(config, netG, netD)
    run = TrainingRun(
        config=config, run_dir=run_dir, device=device, netG=netG, netD=netD, optG=optG, optD=optD,
        noise=torch.Generator(device).manual_seed(seed + 1),
        fixed_latents=seeded_latents(FIXED_LATENTS, config.model.nz, seed + 2, config.model.latent),
        dataset=dataset, scaler=speed.grad_scaler(), dist=env,
        netG_ema=make_ema(netG) if config.train.ema_decay > 0 or config.schedule.ema_half_life else None,
    )
    if ckpt is not None:
        restore(run, ckpt)
        log.info("resuming %s at step %d", run_dir, run.step)
        for key, (old, new) in changes.items():
            log.info("resuming with %s = %r (was %r)", key, new, old)
    # The step sees G and D through DDP (gradient averaging) and torch.compile; the run keeps the plain modules.
    stepG, stepD = (speed.compiled(distributed.wrap_ddp(net, device, env)) for net in (netG, netD))

    batches = BatchIterator(dataset, rank_batch, device, seed=seed, flip=config.data.flip,
                            rank=env.rank, world_size=env.world_size)
    per_epoch = batches.batches_per_epoch
    total = config.train.steps or config.train.epochs * per_epoch
    if ckpt is None and schedules.resolve_ramp(config, total) and env.is_main:  # the ramps' length, once
        config.save(config_path(run_dir))
    step_fn = conditioning.training_step(get_family(config.model.family), config, batches)  # labels ride along
    # Every rank draws the latents of the whole global batch from the same generator and takes its share,
    # so a torchrun job sees the latents one process would (and resumes from rank 0's generator state).
    ctx = StepContext(
        netG=stepG, netD=stepD, optG=optG, optD=optD, config=config, state=run.state,
        latents=lambda n: distributed.rank_share(
            draw_latents(n * env.world_size, config.model.nz, config.model.latent, run.noise), env),
        autocast=speed.autocast, scaler=run.scaler, noise=run.noise,
    )
    # Lines after the step it starts from (from 0: those of a start that never reached a checkpoint) are redone.
    metrics = MetricsLog(metrics_path(run_dir), resume_step=run.step) if env.is_main else None
    if env.is_main:  # what this start really used, beside config.json's wishes (auto → bf16, say)
        append_runtime(run_dir, {"step": run.step, "device": str(device), **asdict(speed, dict_factory=_plain),
                                 "processes": env.world_size, "rank_batch_size": rank_batch,
                                 **({"changed": changes} if changes else {})})
    cadence = config.train
    status = "finished"
    log.info("training %s (%d px, %d ch) on %s: %d steps of %d images, %d steps per epoch",
             config.model.family, config.model.resolution, config.model.channels, device, total,
             cadence.batch_size, per_epoch)
    log.info("%s%s", speed.describe(), f"; {env.world_size} processes of {rank_batch} images" * env.is_distributed)

    health = HealthMonitor(run)  # NaN/inf, D saturation and collapse checks (facegan.training.health)
    hooks = tensorboard.with_hook(hooks, config, run_dir)  # + the TensorBoard writer with train.tensorboard
    bar = progress_bar(total if total < BUDGET_ONLY_STEPS else None,  # a time budget alone: a count, no total
                       "train", initial=run.step, unit="step", enabled=show_progress and env.is_main)
    stopping = distributed.StopAgreement(env, device, cadence.log_every)
    started = time.perf_counter() - run.elapsed_s

    def out_of_time() -> bool:  # train.time_budget_s counts training time over resumes, as elapsed_s does
        return 0 < cadence.time_budget_s <= time.perf_counter() - started

    window_start, window_step = time.perf_counter(), run.step
    # The signal handlers stay until the last checkpoint is written: a second notice meanwhile changes nothing.
    with StopRequest(patient=env.is_distributed) as stop:
        with bar:
            while run.step < total and not stopping.agreed and not health.stopping:
                run.epoch, first_batch = divmod(run.step, per_epoch)
                for real in batches.epoch(run.epoch, first_batch):
                    ctx.step = run.step
                    ctx.ramps = schedules.values_at(config, run.images_seen)  # lr, β2, γ, EMA, aug p before the step
                    schedules.apply_to_optimizers(ctx.ramps, optG, optD)
                    values = step_fn(ctx, speed.images(real))
                    if "ema_beta" in ctx.ramps:  # G_ema by half-life in images (no warm-up: the half-life ramps)
                        update_ema(run.netG_ema, netG, ctx.ramps["ema_beta"])
                    elif run.netG_ema is not None:
                        update_ema(run.netG_ema, netG, config.train.ema_decay, updates=run.step)
                    run.step += 1
                    notes = health.after_step(run, values)
                    last = (run.step >= total or stopping.check(run.step, stop.requested, out_of_time())
                            or health.stopping)  # every rank sees the same NaN/inf weights at the same step
                    if metrics is None:  # ranks other than 0 only train: rank 0 logs, samples, checkpoints, hooks
                        if last:
                            break
                        continue
                    if ctx.ramps:  # the ramped values this step used, on its line (after a rollback its ramped lr,
                        notes = {**(notes or {}), **ctx.ramps}  # not the health note's configured one)
                    metrics.add(run.step, run.epoch, values, notes, images_seen=run.images_seen)
                    checkpoint_due = run.step % cadence.checkpoint_every == 0 and not last
                    # A checkpoint's lines are on the disk before it: a run resumed from it misses no step.
                    if run.step % cadence.log_every == 0 or last or checkpoint_due:
                        now = time.perf_counter()
                        images_per_s = (run.step - window_step) * cadence.batch_size / max(now - window_start, 1e-9)
                        run.elapsed_s = now - started
                        run.last_record = metrics.flush(
                            {"images_per_s": round(images_per_s, 2), "elapsed_s": round(run.elapsed_s, 3)},
                            durable=checkpoint_due or last)
                        window_start, window_step = now, run.step
                        bar.set_postfix({**_postfix(run.last_record), **health.postfix()}, refresh=False)
                    bar.update(1)
                    if run.step % cadence.sample_every == 0:
                        write_fixed_samples(run)
                    if checkpoint_due:
                        save_run_checkpoint(run, cadence.keep_checkpoints)
                    for hook in hooks:
                        hook(run)
                    if last:
                        break
        if stopping.agreed:
            status = "finished" if out_of_time() and not stop.requested else "interrupted"
        run.elapsed_s = time.perf_counter() - started
        non_finite = health.final_check(run)  # NaN/inf: never checkpoint it (stop, or roll back below)
        path = checkpoint_path(run_dir, run.step)
        if not non_finite:
            if env.is_main:  # the checkpoint first: it is what a preemption's grace period must see written
                path = save_run_checkpoint(run, cadence.keep_checkpoints)
                write_fixed_samples(run, "latest.png")
                if run.step % cadence.sample_every != 0:
                    write_fixed_samples(run)
            distributed.barrier(env)  # every rank returns once rank 0's checkpoint is written
    if non_finite:  # stop, or roll back to the last good checkpoint
        return health.finish(lambda: train(config, run_dir, resume=True, hooks=hooks, show_progress=show_progress))
    log.info("%s at step %d (%.1f s); checkpoint %s", status, run.step, run.elapsed_s, path)
    return TrainResult(run_dir=run_dir, step=run.step, status=status, checkpoint=path, rank=env.rank)


def _postfix(record: dict[str, Any] | None) -> dict[str, str]:
    if not record:
        return {}
    def fmt(key: str) -> str:
        value = record.get(key)
        return "nan" if value is None else f"{value:.3g}"
    return {"ep": str(record["epoch"]), "Loss_D": fmt("loss_d"), "Loss_G": fmt("loss_g"),
            "D(x)": fmt("d_x"), "D(G(z))": fmt("d_g_z2"), "img/s": fmt("images_per_s")}


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """`Speed` as plain JSON values (its device is written on its own)."""
    return {k: v for k, v in items if k != "device"}
