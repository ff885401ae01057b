"""`facegan train --resume RUN` with options: each `train` option is classified (it changes the resumed run and
runtime.json records the change, it is refused as part of the run's recipe, or it applies to this start only),
and `--help`'s defaults are true for every preset."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from facegan.cli.main import build_parser, main
from facegan.cli.model_options import family_option_specs
from facegan.cli.train import overrides_from_args
from facegan.config import BOOKKEEPING, RECIPE, RESUMABLE, RunConfig, flat_fields
from facegan.data.dataset import write_dataset
from facegan.models.presets import build_config, preset_names
from facegan.run.checkpoint import load_checkpoint
from facegan.run.layout import read_runtime
from facegan.run.metrics_log import read_metrics
from facegan.training.loop import train
from factories import blob_images, tiny_config

# Options that are not part of the run's config: they shape this start only (where, hooks, output).
THIS_START_ONLY = {"data", "out", "resume", "resume_if_exists", "show_config", "no_progress", "report_every",
                   "no_report", "eval_every", "eval_n", "func", "command", "verbose", "help"}
# A value to give each option in the walk below (the rest: an int 2, a float 0.3 or the first choice).
SAMPLE = {"device": "cpu", "condition": "smiling", "diffaugment": "color", "model": "sngan", "ttur": True,
          "widths": "8,8", "blocks": "1,1", "resampling_filter": "1,1"}


def _train_actions() -> list[argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["train"]._actions if a.dest != "help"]


def _sample_value(action: argparse.Action) -> object:
    name = action.dest.removeprefix("family_option_")
    if name in SAMPLE:
        return SAMPLE[name]
    if action.choices:
        return next(c for c in action.choices if c not in (action.default, "auto", None))
    if action.nargs == 0:
        return True
    return {int: 2, float: 0.3}.get(action.type, "2")


def test_every_config_field_is_classified_once() -> None:
    fields = set(flat_fields(RunConfig()))
    assert fields == RESUMABLE | RECIPE | BOOKKEEPING
    assert not (RESUMABLE & RECIPE or RESUMABLE & BOOKKEEPING or RECIPE & BOOKKEEPING)


def test_every_train_option_is_classified_for_resume() -> None:
    """An option sets config fields (each RESUMABLE or RECIPE: a new option must be classified there), or is
    listed as applying to this start only."""
    blank = argparse.Namespace(**{a.dest: a.default for a in _train_actions()})
    blank.model = None
    unclassified = []
    for action in _train_actions():
        if action.dest in THIS_START_ONLY:
            continue
        args = argparse.Namespace(**vars(blank))
        setattr(args, action.dest, _sample_value(action))
        family = next((families[0] for flag, (families, _) in family_option_specs().items()
                       if action.option_strings and flag == action.option_strings[0]), None)
        overrides = overrides_from_args(args, family=family)
        keys = {f"{section}.{name}" for section, values in overrides.items() for name, v in values.items()
                if v is not None}
        if not keys and action.dest != "model":
            unclassified.append(action.dest)
        unclassified += [f"{action.dest} → {k}" for k in keys if k not in RESUMABLE | RECIPE]
    assert unclassified == []


@pytest.fixture()
def run(tiny_dataset: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    train(tiny_config(tiny_dataset, steps=4, checkpoint_every=100), run_dir, show_progress=False)
    return run_dir


@pytest.mark.parametrize(
    ("option", "value", "key", "new"),
    [
        ("--precision", "bf16", "train.precision", "bf16"),
        ("--channels-last", "on", "train.channels_last", "on"),
        ("--log-every", "1", "train.log_every", 1),
        ("--health-every", "0", "train.health_every", 0),
        ("--lr", "1e-4", "optim.lr_g", 1e-4),
        ("--keep", "1", "train.keep_checkpoints", 1),
    ],
)
def test_a_resumable_option_changes_the_run_and_is_recorded(
    run: Path, option: str, value: str, key: str, new: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--resume", str(run), "--steps", "6", option, value, "--no-progress", "--no-report"]) == 0
    config = json.loads((run / "config.json").read_text())
    section, name = key.split(".")
    assert config[section][name] == new
    starts = read_runtime(run)
    assert starts[-1]["changed"][key][1] == new and "changed" not in starts[0]
    assert f"resuming with {key} = {new!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "8"], "--batch-size cannot change when resuming: the run has train.batch_size = 16, not 8"),
        (["--loss", "hinge"], "--loss cannot change when resuming"),
        (["--ngf", "16"], "--ngf cannot change when resuming"),
        (["--seed", "3"], "--seed cannot change when resuming"),
        (["--diffaugment", "color"], "--diffaugment cannot change when resuming"),
        (["--condition", "smiling"], "--condition cannot change when resuming"),
        (["--model", "sngan"], "--model sngan is not the model of"),
        (["--model", "r3gan"], "--model r3gan is not the model of"),
    ],
)
def test_a_recipe_option_is_refused_in_one_sentence(
    run: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--steps", "6", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (run / "config.json").read_text() == before  # nothing written


def test_the_same_value_or_the_same_preset_is_no_change(run: Path) -> None:
    assert main(["train", "--resume", str(run), "--steps", "6", "--batch-size", "16", "--model", "dcgan",
                 "--no-progress", "--no-report"]) == 0
    assert "changed" not in read_runtime(run)[-1] or set(read_runtime(run)[-1]["changed"]) == {"train.steps"}


def test_show_config_prints_a_preset_without_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "r3gan-cpu64", "--show-config", "--batch-size", "32"]) == 0
    shown = RunConfig.from_dict(json.loads(capsys.readouterr().out))
    expected = build_config("r3gan-cpu64", {"train": {"batch_size": 32}})
    assert shown == expected
    assert not any(tmp_path.iterdir())


def _help_default(action: argparse.Action) -> dict[str, str] | None:
    """{preset: value} from a help text's "(default V; P1, P2: W; ...)", or None."""
    match = re.search(r"\(default ([^;()]+)((?:; [^;()]+: [^;()]+)*)\)", " ".join(action.help.split()))
    if not match:
        return None
    values = {preset: match.group(1) for preset in preset_names()}
    for part in filter(None, match.group(2).split("; ")):
        presets, _, value = part.rpartition(": ")
        values.update({p.strip(): value for p in presets.split(",")})
    return values


HELP_FIELDS = {"nz": "model.nz", "ngf": "model.ngf", "ndf": "model.ndf", "latent": "model.latent",
               "batch_size": "train.batch_size", "epochs": "train.epochs", "beta1": "optim.beta1",
               "beta2": "optim.beta2", "loss": "train.loss", "seed": "train.seed", "device": "train.device",
               "precision": "train.precision", "channels_last": "train.channels_last", "compile": "train.compile",
               "log_every": "train.log_every", "sample_every": "train.sample_every",
               "checkpoint_every": "train.checkpoint_every", "keep": "train.keep_checkpoints",
               "leaky_slope": "model.leaky_slope", "d_norm": "model.d_norm", "minibatch_std": "model.minibatch_std",
               "spectral_norm": "model.spectral_norm", "optimizer": "optim.name",
               "grad_clip_value": "optim.grad_clip_value", "n_critic": "train.n_critic",
               "gp_weight": "train.gp_weight", "label_smoothing": "train.label_smoothing",
               "label_noise": "train.label_noise", "instance_noise": "train.instance_noise",
               "instance_noise_steps": "train.instance_noise_steps", "r1_gamma": "train.r1_gamma",
               "penalty_every": "train.penalty_every", "feature_matching": "train.feature_matching",
               "ema": "train.ema_decay", "diffaugment": "train.diffaugment", "ramp_kimg": "schedule.ramp_kimg",
               "health_every": "train.health_every", "on_nan": "train.on_nan",
               "max_rollbacks": "train.max_rollbacks"}


def _as_help(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return str(value) or "none"


def test_help_defaults_are_true_for_every_preset() -> None:
    actions = {a.dest: a for a in _train_actions()}
    configs = {p: flat_fields(build_config(p)) for p in preset_names()}
    checked = 0
    for dest, key in HELP_FIELDS.items():
        stated = _help_default(actions[dest])
        assert stated is not None, f"--{dest}'s help states no default"
        for preset, value in stated.items():
            assert value == _as_help(configs[preset][key]), f"--{dest} under --model {preset}"
            checked += 1
    assert checked == len(HELP_FIELDS) * len(preset_names())
    stated = _help_default(actions["batch_size"])
    assert stated["dcgan"] == "128" and stated["r3gan"] == "256"  # a value that differs is named


def test_help_states_no_number_it_cannot_back() -> None:
    """Every option whose help says "(default N" is one the test above checks (or a per-start option)."""
    unchecked = [a.dest for a in _train_actions() if a.help and "(default " in a.help
                 and a.dest not in HELP_FIELDS and a.dest not in THIS_START_ONLY
                 and a.dest not in ("time_budget_minutes", "model") and not a.dest.startswith("family_option_")]
    assert unchecked == []


TINY = ["--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size", "16", "--log-every", "2", "--sample-every", "3",
        "--checkpoint-every", "3", "--device", "cpu", "--no-progress", "--no-report"]


def test_resume_if_exists_starts_the_run_then_the_same_command_continues_it(tiny_dataset: Path, tmp_path: Path) -> None:
    """torchrun's elastic pattern: one command line, rerun after a lost process, starts or continues the run."""
    run = tmp_path / "run"
    command = ["train", "--data", str(tiny_dataset), "--out", str(run), "--resume-if-exists", *TINY]
    assert main([*command, "--steps", "4"]) == 0  # no run yet: started
    assert main([*command, "--steps", "7"]) == 0  # a checkpoint: continued (here with a longer length)
    assert [s["step"] for s in read_runtime(run)] == [0, 4]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 8))
    assert load_checkpoint(run)["step"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "8"], "--batch-size cannot change when resuming"),
        (["--model", "r3gan"], "--model r3gan is not the model of"),
        (["--data", "OTHER"], "trains on"),
        (["--resume", "RUN"], "--resume-if-exists goes with --data DIR and --out RUN"),
    ],
)
def test_resume_if_exists_refuses_another_recipe_or_data_in_one_sentence(
    run: Path, tiny_dataset: Path, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    write_dataset(other, blob_images(32, 32, 3, seed=1), source="test:blobs")
    given = {"--data": str(tiny_dataset), "--out": str(run)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        given[flag] = {"OTHER": str(other), "RUN": str(run)}.get(value, value)
    before = (run / "config.json").read_text()
    assert main(["train", "--resume-if-exists", *[x for kv in given.items() for x in kv], "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (run / "config.json").read_text() == before  # nothing written


def test_resume_if_exists_shows_the_config_it_would_continue_with(
    run: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data", str(tiny_dataset), "--out", str(run), "--resume-if-exists", "--steps", "9",
                 "--show-config"]) == 0
    shown = RunConfig.from_dict(json.loads(capsys.readouterr().out))
    assert shown.train.steps == 9 and shown.train.batch_size == 16 and shown.data.path == str(tiny_dataset)
