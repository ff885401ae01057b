"""bench/time_to_quality.py without long training: the training clock and its marks, the crossing time, the IDX
writer, the tutorial's nets against facegan's DCGAN, the tables and curves from made-up records, and one tiny
end-to-end run of each kind of contestant."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def ttq() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("time_to_quality", BENCH / "time_to_quality.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["time_to_quality"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    yield module
    sys.modules.pop("time_to_quality", None)
    sys.path.remove(str(BENCH))


def test_mark_clock_leaves_snapshot_time_out(ttq: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ttq.time, "perf_counter", lambda: now[0])
    saved: list[tuple[int, float]] = []

    def save(index: int, seconds: float) -> None:
        saved.append((index, seconds))
        now[0] += 50.0  # writing a snapshot takes 50 s, which the clock must not count

    clock = ttq.MarkClock([10.0, 20.0, 25.0], save)
    clock.start()
    now[0] += 9.0
    assert not clock.tick() and saved == []
    now[0] += 12.0  # 21 s of training: two marks crossed in one step
    assert not clock.tick()
    assert saved == [(0, 21.0), (1, 21.0)] and clock.seconds() == 21.0
    now[0] += 4.0
    assert clock.tick() and saved[-1] == (2, 25.0)


def test_crossing_minutes(ttq: ModuleType) -> None:
    curve = [(1.0, 200.0), (2.5, 150.0), (5.0, 100.0), (10.0, 80.0)]
    assert ttq.crossing_minutes(curve, 125.0) == pytest.approx(3.75)
    assert ttq.crossing_minutes(curve, 250.0) == 1.0
    assert ttq.crossing_minutes(curve, 80.0) == 10.0
    assert ttq.crossing_minutes(curve, 79.0) is None


def test_idx_file_is_what_facegan_prepares(ttq: ModuleType, tmp_path: Path) -> None:
    from facegan.data.dataset import PreparedDataset
    from facegan.data.decode import DecodeOptions
    from facegan.data.prepare import prepare_images

    digits = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = tmp_path / "digits-idx3-ubyte.gz"
    ttq.write_idx_images(path, digits)
    with gzip.open(path, "rb") as handle:
        assert handle.read(16) == bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])
    prepare_images(str(path), tmp_path / "prepared", DecodeOptions(resolution=28, channels=1), workers=1,
                   show_progress=False)
    assert np.array_equal(np.asarray(PreparedDataset.open(tmp_path / "prepared").images)[..., 0], digits)


@pytest.mark.parametrize(("resolution", "channels"), [(64, 3), (32, 1)])
def test_tutorial_nets_load_into_facegan_dcgan(resolution: int, channels: int) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import tutorial
    finally:
        sys.path.remove(str(BENCH))
    from facegan.models import build_models
    from facegan.models.presets import build_config

    netG, netD = build_models(build_config("dcgan", {"model": {"resolution": resolution, "channels": channels}}).model)
    ref_g, ref_d = tutorial.RefGenerator(channels, resolution), tutorial.RefDiscriminator(channels, resolution)
    netG.load_state_dict(ref_g.state_dict())  # strict: the same layers at the same indices
    netD.load_state_dict(ref_d.state_dict())
    z = torch.randn(2, 100, 1, 1)
    assert torch.equal(netG.eval()(z), ref_g.eval()(z))


def fake_record(name: str, seed: int, swds: list[float], marks: list[float], faces: bool = True) -> dict:
    job = {"name": name, "args": [] if name == "tutorial" else ["--ema", "0.999"], "seed": seed, "marks": marks,
           "data": {"name": "faces64", "heldout": "unused"}}
    scores = [{"swd": s, **({"faces_fake": 0.5, "faces_real": 0.7, "facefd": 0.2} if faces else {})} for s in swds]
    return {"job": job, "ran": {"precision": "fp32", "channels_last": name != "tutorial", "batch_size": 64},
            "marks": [{"minutes": m, "images_seen": int(1000 * m), "scores": sc}
                      for m, sc in zip(marks, scores, strict=True)],
            "memorisation": {"memo_share": 0.1, "memo_share_heldout": 0.4, "memo_copies": 0}}


def test_summary_table_and_curves(ttq: ModuleType, tmp_path: Path) -> None:
    marks = [1.0, 5.0, 30.0]
    records = [fake_record("tutorial", 0, [200, 150, 100], marks), fake_record("tutorial", 1, [220, 170, 120], marks),
               fake_record("fast", 0, [150, 100, 50], marks), fake_record("fast", 1, [170, 120, 50], marks)]
    summary = ttq.summarise(records)
    tutorial, fast = summary["faces64"]["tutorial"], summary["faces64"]["fast"]
    assert tutorial["marks"][30.0]["swd"] == (110.0, 10.0)
    assert fast["target"]["tutorial_swd"] == 110.0
    assert fast["target"]["reached_min"] == pytest.approx(5.0) and fast["target"]["speedup"] == pytest.approx(6.0)
    assert tutorial["target"]["reached_min"] == 30.0
    args = ttq.parse_args(["--work", str(tmp_path)])
    table = ttq.markdown(summary, "a CPU", args)
    assert "| `fast` | fp32 | 160.0 ± 10.0 | 110.0 ± 10.0 | 50.0 | 5.0 min (6.0×) |" in table.splitlines()
    assert "held-out reals: 70.0%" in table and "10.0% vs 40.0%" in table
    json.dumps(summary)  # the JSON output takes it as it is
    (path,) = ttq.plot_curves(summary, tmp_path)
    assert path.name == "faces64-swd.png" and path.stat().st_size > 1000


def test_arguments(ttq: ModuleType, tmp_path: Path) -> None:
    args = ttq.parse_args(["--work", str(tmp_path)])
    assert args.marks == [1.0, 2.5, 5.0, 10.0, 20.0, 30.0] and (args.lanes, args.threads) == (2, 1)
    assert [c.name for c in args.contestant] == ["tutorial", "default"]
    for bad in (["--contestant", "tutorial=--ema 0.9"], ["--datasets", "celeba"], ["--marks", "0,1"],
                ["--contestant", "a=", "--contestant", "a=--ema 0.9"], ["--n-eval", "3000"]):
        with pytest.raises(SystemExit):
            ttq.parse_args(bad)


@pytest.mark.slow
def test_tiny_end_to_end(ttq: ModuleType, tmp_path: Path) -> None:
    """Both kinds of contestant train to two marks in their own processes, are scored and summarised."""
    argv = ["--work", str(tmp_path), "--marks", "0.004,0.008", "--faces-train", "256", "--heldout", "32",
            "--n-eval", "32", "--facefd-n", "8", "--contestant", "tutorial",
            "--contestant", "small=--ngf 8 --ndf 8 --batch-size 16 --ema 0.99"]
    assert ttq.main(argv) == 0
    result = json.loads((tmp_path / "out" / "time_to_quality.json").read_text())
    records = {r["job"]["name"]: r for r in result["records"]}
    assert [m["minutes"] for m in records["small"]["marks"]] == [0.004, 0.008]
    assert records["small"]["marks"][1]["step"] >= records["small"]["marks"][0]["step"] > 0  # one slow step may
    # cross both marks
    assert records["small"]["marks"][0]["train_s"] >= 0.24 and records["tutorial"]["ran"]["batch_size"] == 128
    assert all(m["scores"]["swd"] > 0 for r in records.values() for m in r["marks"])
    assert (tmp_path / "out" / "faces64-swd.png").is_file()
    assert len(list((tmp_path / "out" / "grids").glob("faces64-seed0-*.png"))) == 2
