"""bench/quality_per_minute.py without training: its arguments, the CPU peak it assumes, and the table, JSON and
grids it writes from made-up runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "quality_per_minute.py"
ZEN5 = "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\ncpu MHz\t\t: 2600.000\nflags\t\t: avx2 avx512_bf16\n"


@pytest.fixture(scope="module")
def qpm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quality_per_minute", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["quality_per_minute"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    yield module
    sys.modules.pop("quality_per_minute", None)


def test_arguments(qpm: ModuleType, tmp_path: Path) -> None:
    args = qpm.parse_args(["--work", str(tmp_path)])
    assert (args.minutes, args.seeds, args.datasets) == (10.0, [0, 1], ["faces64", "fashion32"])
    assert (args.n_eval, args.heldout, args.facefd_n, args.contestant) == (2000, 2000, 500, None)
    assert args.json == tmp_path / "out" / "quality_per_minute.json"
    smoke = qpm.parse_args(["--minutes", "0.2", "--seeds", "0", "--n-eval", "64", "--datasets", "faces64",
                            "--contestant", "dcgan-fp32=--model dcgan --precision fp32",
                            "--contestant", "r3gan-cpu64=--model r3gan-cpu64"])
    assert smoke.seeds == [0] and smoke.datasets == ["faces64"] and smoke.n_eval == 64
    assert smoke.contestant[0] == qpm.Contestant("dcgan-fp32", ("--model", "dcgan", "--precision", "fp32"))
    assert smoke.contestant[1].spec == "r3gan-cpu64=--model r3gan-cpu64"
    for bad in (["--contestant", "no-equals-sign"], ["--contestant", "=--model dcgan"], ["--datasets", "celeba"],
                ["--seeds", "a,b"], ["--minutes", "0"], ["--n-eval", "3000"],
                ["--contestant", "a=--model dcgan", "--contestant", "a=--model sngan"]):
        with pytest.raises(SystemExit):
            qpm.parse_args(bad)


def test_bf16_peak(qpm: ModuleType) -> None:
    facts = qpm.cpu_facts(ZEN5)
    assert (facts["vendor"], facts["family"], facts["mhz"]) == ("AuthenticAMD", 26, 2600.0)
    peak, note = qpm.bf16_peak(facts, cores=2)
    assert peak == pytest.approx(665.6) and "Zen 5" in note  # BENCHMARKS.md's ~0.67 TFLOP/s
    assert qpm.bf16_peak({**facts, "family": 25}, cores=2)[0] == pytest.approx(332.8)
    assert qpm.bf16_peak({**facts, "flags": ["avx2"]}, cores=2)[0] is None
    assert qpm.bf16_peak({**facts, "vendor": "GenuineIntel", "flags": ["amx_bf16"]}, 1)[0] == pytest.approx(2662.4)


def fake_run(contestant: str, seed: int, swd: float, images_per_s: float, dataset: str = "faces64") -> dict:
    faces = {"faces_fake": 0.5 + seed / 10, "faces_real": 0.7, "facefd": 0.3} if dataset == "faces64" else {}
    return {"contestant": contestant, "dataset": dataset, "seed": seed, "minutes": 10.0, "error": None,
            "flops": {"gflop_per_image": 2.0, "penalties": "left out" if "r3" in contestant else "counted"},
            "train": {"steps": 100 + seed, "images_seen": 12800, "images_per_s": images_per_s, "precision": "bf16"},
            "scores": {"swd": swd, **faces}}


def test_table_and_json(qpm: ModuleType, tmp_path: Path) -> None:
    runs = [fake_run("dcgan-auto", 0, 100.0, 50.0), fake_run("r3", 0, 40.0, 20.0),
            fake_run("dcgan-auto", 1, 120.0, 70.0), fake_run("r3", 1, 60.0, 20.0),
            fake_run("dcgan-auto", 0, 80.0, 200.0, "fashion32"),
            {**fake_run("r3", 0, 1.0, 1.0, "fashion32"), "error": "r3 on fashion32 failed"}]
    rows = qpm.summarise(runs, "dcgan-auto", peak_gflops=400.0)
    dcgan, r3, fashion = rows
    assert dcgan["swd"] == (110.0, 10.0) and dcgan["images_per_s"] == (60.0, 10.0)
    assert r3["swd_ratio"] == pytest.approx(50 / 110) and dcgan["swd_ratio"] == 1.0
    assert dcgan["gflop_per_s"] == (120.0, 20.0) and dcgan["peak_share"] == pytest.approx((0.3, 0.05))
    assert fashion["contestant"] == "dcgan-auto" and len(rows) == 3  # the failed run has no row
    table = qpm.markdown_tables(rows, "dcgan-auto", "a CPU", "a peak")
    assert ("| r3 | bf16 | 100 ± 0 | 12,800 | 20.0 | 50.0 ± 10.0 | 0.45 | 55.0% ± 5.0% | 0.300 | 2.00* | 40 | 10% |"
            in table.splitlines())
    assert "**fashion32, 10 minutes" in table and "Held-out reals' face rate: 70.0%" in table
    assert "face rate" not in table.split("**fashion32")[1].split("\n\n")[1]  # no face columns on grey clothes

    args = qpm.parse_args(["--work", str(tmp_path)])
    args.out_dir.mkdir(parents=True)
    plan = {"faces64": [qpm.parse_contestant("dcgan-auto=--model dcgan")]}
    written = qpm.write_results(args, "a CPU", {"vendor": "x", "flags": ["y"]}, 400.0, "a peak", "0.0", plan,
                                {}, ["a note"], [*runs, {**runs[0], "grid": np.zeros((1, 4, 4, 3), np.uint8)}])
    result = json.loads(args.json.read_text())
    assert result["table"] == written == (args.out_dir / "quality_per_minute.md").read_text()
    assert result["contestants"] == {"faces64": ["dcgan-auto=--model dcgan"]} and result["notes"] == ["a note"]
    assert len(result["runs"]) == 7 and "grid" not in result["runs"][-1] and "flags" not in result["cpu_facts"]


def test_grids(qpm: ModuleType, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reals = rng.integers(0, 256, (70, 8, 8, 1), dtype=np.uint8)
    grids = {"a": reals[:64], "b": reals[6:70]}
    path = qpm.save_grids(tmp_path, "fashion32", 0, grids, reals)
    assert path.name == "fashion32-side-by-side-seed0.png"
    with Image.open(tmp_path / "fashion32-a-seed0.png") as single, Image.open(path) as row:
        assert single.size == (8 * 10 + 2, 8 * 10 + 2)  # 8×8 tiles with make_grid's 2-px padding
        assert row.size == (3 * single.size[0] + 2 * 8, single.size[1])
    assert (tmp_path / "fashion32-real.png").is_file()
