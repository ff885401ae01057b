"""bench/gpu_check.py's orchestration, cheaply: arguments, stage records (ok, failed, timed out, skipped), the
JSON it writes, and the parsing of what its commands print. The whole check runs with `--device cpu --quick`."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    yield module
    sys.modules.pop("gpu_check", None)


def make_check(gpu_check: ModuleType, tmp_path: Path, *extra: str) -> object:
    args = gpu_check.parse_args(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), *extra])
    return gpu_check.Check(args)


def test_arguments(gpu_check: ModuleType, tmp_path: Path) -> None:
    full = gpu_check.parse_args([])
    assert full.device == "cuda" and full.batches == [128, 512] and full.ref_workers == "2,16"
    assert full.target_first == 20 and full.target_second == 4 and full.budget_s <= 480
    quick = gpu_check.parse_args(["--device", "cpu", "--quick", "--only", "env,tests"])
    assert quick.batches == [8] and quick.only == ["env", "tests"]
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--skip", "nonsense"])


def test_stages_are_recorded_and_a_failure_does_not_stop_the_check(gpu_check: ModuleType, tmp_path: Path) -> None:
    check = make_check(gpu_check, tmp_path, "--device", "cpu", "--skip", "newest")
    check.stage("env", 10, lambda limit: {"value": 1})
    check.stage("tests", 10, lambda limit: 1 / 0)
    check.stage("speed", 10, lambda limit: gpu_check.checked(
        check.command([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1), "a sleeper"))
    check.stage("newest", 10, lambda limit: {})
    check.deadline = time.monotonic() + 3  # no time left for the next one
    check.stage("compile", 10, lambda limit: {})
    check.close()
    stages = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["stages"]
    assert stages["env"]["status"] == "ok" and stages["env"]["value"] == 1
    assert stages["tests"]["status"] == "failed" and "ZeroDivisionError" in stages["tests"]["error"]
    assert stages["speed"]["status"] == "timeout"
    assert stages["newest"] == {"status": "skipped", "reason": "not selected"}
    assert stages["compile"]["status"] == "skipped" and "no time left" in stages["compile"]["reason"]
    assert "=== tests: failed" in (tmp_path / "out" / "gpu_check.log").read_text()


def test_parsers(gpu_check: ModuleType, tmp_path: Path) -> None:
    assert gpu_check.newest_preset(["dcgan", "r3gan", "r3gan64"], "auto") == "r3gan64"
    assert gpu_check.newest_preset(["dcgan", "sngan"], "auto") is None
    assert gpu_check.newest_preset(["dcgan", "r3gan"], "none") is None
    assert gpu_check.printed_json('facegan: wrote x\n{\n  "swd": 1.5\n}\n') == {"swd": 1.5}
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
                   '<testcase classname="t" name="a" time="1.5"><properties><property name="gap" value="0.01"/>'
                   '</properties></testcase><testcase classname="t" name="b"><failure message="boom"/></testcase>'
                   '<testcase classname="t" name="c"><skipped message="no GPU"/></testcase></testsuite></testsuites>')
    parsed = gpu_check.junit_results(xml)
    assert (parsed["passed"], parsed["failures"], parsed["skipped"]) == (1, 1, 1)
    assert parsed["results"][0]["properties"] == {"gap": "0.01"} and parsed["results"][1]["message"] == "boom"
    refs = ("reference, JPEG path, 2 workers", "reference, JPEG path, 16 workers")
    loops = gpu_check.summarise_speed({"images_per_s": {refs[0]: [100, 200], refs[1]: [500, 500],
                                                        "facegan default": [4000, 4000]}}, *refs)
    default = loops["facegan default"]
    assert default["x_first_ref"] == 30 and default["x_second_ref"] == 8 and default["tflops"] == 10.0
    assert default["share_of_peak"]["measured_bf16_matmul"] == round(10 / 790, 5)
