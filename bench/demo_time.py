"""How long `make demo` takes now (64 px, the default preset) against the 32-px demo it replaced (issue 22, item 5).

Each round runs both demos' three steps (prepare the built-in faces, train, sample a grid), alternating which goes
first, in fresh temporary folders, with the same environment; the figure is each demo's wall-clock seconds and
the ratio new ÷ old of the same round (the median over rounds). The new demo is the Makefile's own recipe (read
from the Makefile, so this measures what `make demo` runs); the old one is the command the Makefile held before
the default changed (commit a663580): the `dcgan` preset, 48 wide, batch 64, 8 epochs at 32 px.

    python bench/demo_time.py                 # 1 round
    python bench/demo_time.py --rounds 2 --keep /tmp/demos   # keep the runs to look at their faces
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernels import cpu_kind  # bench/ is not a package

REPO = Path(__file__).resolve().parents[1]
OLD_DEMO = [
    "prepare builtin:synthetic-faces --n 20000 --res 32 --workers 2 --out {data} --force",
    "train --data {data} --out {run} --model dcgan --ngf 48 --ndf 48 --batch-size 64 --epochs 8 "
    "--precision auto --time-budget-minutes 6 --sample-every 250 --checkpoint-every 1000",
    "sample {run} --n 64 --seed 7 --out {run}/faces.png",
]


def new_demo_steps(makefile: Path) -> list[str]:
    """The `facegan ...` commands of the Makefile's demo target, with its variables as placeholders."""
    text = makefile.read_text().replace("\\\n", " ")
    body = text.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    steps = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("$(BIN)/facegan "):
            line = line.removeprefix("$(BIN)/facegan ")
            steps.append(re.sub(r"\s+", " ", line.replace("$(DEMO_DATA)", "{data}").replace("$(DEMO_RUN)", "{run}")))
    if len(steps) != 3:
        raise SystemExit(f"expected prepare, train and sample in the Makefile's demo target, found {steps}")
    return steps


def run_demo(steps: list[str], folder: Path) -> dict[str, float]:
    """Run one demo's steps in `folder`; seconds per step and in all."""
    facegan = Path(sys.executable).with_name("facegan")
    times: dict[str, float] = {}
    for step in steps:
        command = [str(facegan), *shlex.split(step.format(data=folder / "data", run=folder / "run"))]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[command[1]] = round(time.perf_counter() - start, 1)
    times["total"] = round(sum(times.values()), 1)
    return times


def main() -> None:
    """Time both demos, alternating, and print a JSON record."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep each demo's folder under this one")
    args = parser.parse_args()
    demos = {"old-32px": OLD_DEMO, "new-64px": new_demo_steps(REPO / "Makefile")}
    rounds = []
    for index in range(args.rounds):
        order = list(demos) if index % 2 == 0 else list(reversed(demos))
        result = {}
        for name in order:
            folder = Path(tempfile.mkdtemp(prefix=f"demo-{name}-"))
            result[name] = run_demo(demos[name], folder)
            if args.keep:
                shutil.copytree(folder / "run", args.keep / f"round{index}-{name}", dirs_exist_ok=True)
            shutil.rmtree(folder)
        result["ratio"] = round(result["new-64px"]["total"] / result["old-32px"]["total"], 2)
        rounds.append(result)
        print(json.dumps({"round": index, **result}), flush=True)
    print(json.dumps({"cpu": cpu_kind(), "median_ratio_new_over_old": statistics.median(r["ratio"] for r in rounds),
                      "commands": demos}, indent=1))


if __name__ == "__main__":
    main()
