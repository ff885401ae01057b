"""The model card (README.md) of an exported model folder: Hub metadata, then the model, its data, its training,
its latest evaluation, how to load it, and what it is for (and not for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facegan.config import RunConfig
from facegan.generation.model_folder import CONFIG_FILE, SAMPLES_FILE, WEIGHTS_FILE
from facegan.version import __version__

BUILTIN_FACES = "builtin:synthetic-faces"


@dataclass
class CardFacts:
    """What the card says beyond the config: the model's name, G's facts, the dataset's meta and an evaluation."""

    name: str
    step: int
    images_seen: int
    weights: str  # "G_ema" or "G"
    parameters: int
    elapsed_s: float | None = None
    samples: int = 64  # faces in samples.png (seed 0)
    dataset: dict[str, Any] = field(default_factory=dict)  # the dataset's meta.json, when it could be read
    evaluation: dict[str, Any] = field(default_factory=dict)  # the run's newest RUN/eval/<step>.json
    license: str | None = None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else (f"{minutes} min {secs} s" if minutes else f"{secs} s")


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _front_matter(config: RunConfig, facts: CardFacts) -> list[str]:
    tags = ["facegan", "gan", config.model.family, "faces", "pytorch", "safetensors"]
    if facts.dataset.get("source") == BUILTIN_FACES:
        tags.append("synthetic-faces")
    lines = ["---", "library_name: facegan", "pipeline_tag: unconditional-image-generation"]
    if facts.license:
        lines.append(f"license: {facts.license}")
    return [*lines, "tags:", *(f"- {tag}" for tag in tags), "---", ""]


def _model_section(config: RunConfig, facts: CardFacts) -> list[str]:
    m = config.model
    colours = {1: "greyscale", 3: "RGB"}.get(m.channels, f"{m.channels} channels")
    prior = "N(0, 1)" if m.latent == "normal" else "U(−1, 1)"
    weights = ("G_ema, the exponential moving average of G's weights" if facts.weights == "G_ema"
               else "G, the generator as trained")
    condition = (", ".join(f"{name} ({len(levels)} values)" for name, levels in zip(m.condition, m.condition_levels,
                                                                                     strict=False))
                 or "nothing (unconditional)")
    return [
        "## Model", "",
        "| | |", "|---|---|",
        f"| family | {m.family} (G {m.ngf} feature maps wide, D {m.ndf}) |",
        f"| output | {m.resolution}×{m.resolution} px, {colours}, values in [−1, 1] |",
        f"| latent | z of {m.nz} numbers drawn from {prior} |",
        f"| conditioned on | {condition} |",
        f"| weights | {weights} |",
        f"| parameters of G | {facts.parameters:,} |",
        f"| files | `{WEIGHTS_FILE}` (G's state dict), `{CONFIG_FILE}` (facegan's config: `config.model` builds G), "
        f"`{SAMPLES_FILE}` |", "",
    ]


def _data_section(config: RunConfig, facts: CardFacts) -> list[str]:
    meta = facts.dataset
    source = str(meta.get("source", ""))
    count = meta.get("count")
    size = f"{count:,} images" if isinstance(count, int) else "images"
    if source == BUILTIN_FACES:
        text = (f"{size} of facegan's built-in synthetic faces: procedural cartoon faces rendered from a seed "
                "(`facegan prepare builtin:synthetic-faces`). No photograph of a real person was used.")
    elif source:
        name = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        text = (f"{size} prepared from `{name}` (the dataset folder `{config.data.path}`). The data's licence, and "
                "the consent of the people in it, govern what may be done with this model.")
    else:
        text = (f"The prepared dataset `{config.data.path}` (its meta.json could not be read when the model was "
                "exported).")
    return ["## Training data", "", text, ""]


def _training_section(config: RunConfig, facts: CardFacts) -> list[str]:
    t, o = config.train, config.optim
    count = facts.dataset.get("count")
    seen = f"{facts.images_seen:,} ({facts.images_seen / 1000:.1f} kimg)"
    if isinstance(count, int) and count > 0:
        seen += f", about {facts.images_seen / count:.1f} passes over the data"
    versions = config.versions
    rows = [
        f"| steps | {facts.step:,} |",
        f"| images seen | {seen} |",
        f"| batch size | {t.batch_size} |",
        f"| loss | {t.loss} |",
        f"| optimiser | {o.name}, learning rate G {o.lr_g:g}, D {o.lr_d:g} |",
        f"| seed | {t.seed} |",
    ]
    if facts.elapsed_s is not None:
        rows.append(f"| training time | {_duration(facts.elapsed_s)} |")
    if versions:
        rows.append(f"| trained with | facegan {versions.get('facegan', '?')}, torch {versions.get('torch', '?')} |")
    rows.append(f"| exported with | facegan {__version__} |")
    return ["## Training", "", "| | |", "|---|---|", *rows, "",
            f"`{CONFIG_FILE}` holds the whole recipe (`config`); the dataset path in it is the folder's name only.", ""]


def _evaluation_section(facts: CardFacts) -> list[str]:
    ev = facts.evaluation
    results = ev.get("results") if isinstance(ev.get("results"), dict) else {}
    if not results:
        return ["## Evaluation", "", "No evaluation was recorded for this run (`facegan eval RUN` before exporting "
                "adds one here; docs/metrics.md explains the metrics).", ""]
    when = f"step {_number(ev.get('step'))}"
    if ev.get("step") != facts.step:
        when += f" (these weights are from step {facts.step:,})"
    reals = f" against {_number(ev.get('n_real'))} real images" if ev.get("n_real") is not None else ""
    lines = ["## Evaluation", "",
             f"The run's latest evaluation, at {when}: {_number(ev.get('n'))} generated faces{reals}. Each label "
             "carries its sample count, as in swd_10k (facegan's docs/metrics.md explains each metric).",
             "", "| metric | value |", "|---|---|"]
    lines += [f"| {label} | {_number(value)} |" for label, value in results.items()]
    return [*lines, ""]


def _usage_section(config: RunConfig, facts: CardFacts) -> list[str]:
    m = config.model
    return [
        "## How to use", "",
        "With facegan installed (loading runs no code from the folder):", "",
        "```python", "import facegan", "",
        f'gan = facegan.load("{facts.name}")  # this folder, e.g. after huggingface-cli download',
        "faces = gan.sample(16, seed=7)  # uint8 16×H×W×C; the same seed gives the same faces",
        "gan.show(16, seed=7)  # in a notebook: the faces as one grid",
        "```", "",
        f"or `facegan sample {facts.name} --n 64 --out faces.png`, `facegan serve {facts.name}`, "
        f"`facegan export {facts.name} --format onnx --out generator.onnx`.", "",
        "The weights alone, with the `safetensors` library:", "",
        "```python", "from safetensors.torch import load_file", "",
        f'state = load_file("{facts.name}/{WEIGHTS_FILE}")  # G\'s state dict; G maps z ({m.nz} numbers) to '
        f"{m.channels}×{m.resolution}×{m.resolution} images in [−1, 1]",
        "```", "",
    ]


def _use_section(facts: CardFacts) -> list[str]:
    return [
        "## Intended use and limitations", "",
        "- Intended for learning how GANs work, research on generative models, and pictures where a made-up face is "
        "wanted (art, placeholders, test data).",
        "- The faces belong to nobody. They mirror the training data, its biases and its gaps: faces unlike the "
        "data come out rarely or not at all, and a briefly trained model makes blurred or odd faces.",
        "- Misuse: do not use faces from this model to impersonate anyone, to make fake identities, accounts or "
        "profiles, or to make anyone believe a person exists who does not. Say that the faces are synthetic when "
        "you publish them.", "",
    ]


def model_card(config: RunConfig, facts: CardFacts) -> str:
    """The README.md of a model folder (Markdown with the Hub's YAML metadata block first)."""
    m = config.model
    lines = [
        *_front_matter(config, facts),
        f"# {facts.name}", "",
        f"A {m.family} generator of {m.resolution}×{m.resolution}-pixel faces of people who do not exist, trained "
        f"with facegan for {facts.step:,} steps.", "",
        f"![{facts.samples} faces from seed 0]({SAMPLES_FILE})", "",
        f"*{facts.samples} faces from seed 0 (`gan.sample({facts.samples}, seed=0)`), made when the folder was "
        "exported.*", "",
        *_model_section(config, facts),
        *_data_section(config, facts),
        *_training_section(config, facts),
        *_evaluation_section(facts),
        *_usage_section(config, facts),
        *_use_section(facts),
    ]
    return "\n".join(lines).rstrip() + "\n"
