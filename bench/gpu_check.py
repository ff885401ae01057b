"""The GPU check of issue 16: facegan's CUDA tests and its speed on one GPU, in one run of at most ~8 minutes.

Run it through bench/gpu_check.sh (which installs facegan and any carried wheels first). Stages, in order of
priority, each with its own time limit inside one overall budget; a stage that fails or runs out of time is
recorded and the next one runs:

    env         the machine: GPU, torch, the packages facegan imports, the model presets `facegan train` lists
    tests       pytest -m cuda (tests/cuda), results per test from its JUnit XML
    speed       bench/train_speed.py: the reference DCGAN-64 loop (JPEG path, 2 and 16 DataLoader workers, fp32)
                against facegan's default, alternating, at batch 128 and 512; images/s, TFLOP/s, share of peak
    profile     a torch.profiler table of facegan's default loop, written to the log when a speed target is
                missed (or with --profile always)
    eval_serve  `facegan eval --metrics swd,faces` on 10,000 fakes (32 px), and faces served by `facegan serve`
                over HTTP (start-up, the first face, the median of 20 more)
    compile     facegan's default with torch.compile off, on and reduce-overhead (CUDA graphs), batch 128 and 512
    newest      the newest model family's 64-px preset (an r3gan preset, when `facegan train --help` lists one)

Everything measured goes to OUT/gpu_check.json (rewritten after every stage), everything printed to
OUT/gpu_check.log. TFLOP/s are model FLOPs, counted as bench/train_speed.py counts them (2.5 GFLOP per
DCGAN-64 training image) over the measured wall time, not read from hardware counters.

    bench/gpu_check.sh                                   # on the GPU machine ($OUT set by the device tool)
    bench/gpu_check.sh --device cpu --quick --out DIR    # the whole orchestration, tiny, on a CPU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GFLOP_PER_IMAGE = 2.5  # DCGAN-64 training, as bench/train_speed.py counts it
# The H200's bf16 dense peak: ~790 TFLOP/s measured (an 8192³ bf16 matmul through PyTorch on the device machines
# of this workplace, KINDS.md) and 989 TFLOP/s on NVIDIA's datasheet. Shares are given against both; the
# measured one is the headline.
PEAK_TFLOPS = {"measured_bf16_matmul": 790.0, "datasheet_bf16_dense": 989.0}
KNOWN_PRESETS = {"began", "dcgan", "dcgan128", "dense128", "sngan", "wgan-gp"}  # before issue 16


class Check:
    """The run's state: arguments, deadline, the JSON being built and the log."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.started = self.stage_started = time.monotonic()
        self.deadline = self.started + args.budget_s
        self.json_path = self.out / "gpu_check.json"
        self.log_path = self.out / "gpu_check.log"
        self.log_file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
        self.result: dict[str, Any] = {
            "format": "facegan-gpu-check", "format_version": 1, "device": args.device, "quick": args.quick,
            "budget_s": args.budget_s, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "peak_tflops": PEAK_TFLOPS, "gflop_per_image": GFLOP_PER_IMAGE,
            "targets": {"vs_first_ref": args.target_first, "vs_second_ref": args.target_second},
            "stages": {},
        }

    # --- output ---------------------------------------------------------------------------------------------

    def log(self, text: str) -> None:
        """A line (or block) to the log and to stdout."""
        line = text if text.endswith("\n") else text + "\n"
        self.log_file.write(line)
        self.log_file.flush()
        sys.stdout.write(line)
        sys.stdout.flush()

    def save(self) -> None:
        """Rewrite the JSON (atomically: a killed run leaves the last complete version)."""
        self.result["elapsed_s"] = round(time.monotonic() - self.started, 1)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.result, indent=2, default=str) + "\n")
        os.replace(tmp, self.json_path)

    def close(self) -> None:
        self.log_file.close()

    # --- time -------------------------------------------------------------------------------------------------

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # --- commands ---------------------------------------------------------------------------------------------

    def command(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run argv in its own process group, its output teed to the log; killed (with its children) at timeout.

        Returns {"rc", "seconds", "timed_out", "output"} (output: the whole text, for parsing).
        """
        self.log(f"$ {' '.join(argv)}   (limit {timeout:.0f} s)")
        started = time.monotonic()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=full_env, start_new_session=True)
        lines: list[str] = []
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            stop_group(proc)

        timer = threading.Timer(max(timeout, 1.0), on_timeout)
        timer.start()
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line)
                self.log_file.write("  " + line)
                self.log_file.flush()
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                stop_group(proc)
            proc.stdout.close()  # type: ignore[union-attr]
        seconds = time.monotonic() - started
        self.log(f"  -> exit {proc.returncode} in {seconds:.1f} s" + (" (TIMED OUT)" if timed_out else ""))
        return {"rc": proc.returncode, "seconds": round(seconds, 2), "timed_out": timed_out, "output": "".join(lines)}

    def python(self, *args: object, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
        return self.command([sys.executable, *map(str, args)], timeout, env)

    def facegan(self, *args: object, timeout: float) -> dict[str, Any]:
        return self.python("-m", "facegan", *args, timeout=timeout)

    # --- stages -----------------------------------------------------------------------------------------------

    def stage(self, name: str, cap_s: float, body: Callable[[float], dict[str, Any]], min_s: float = 15) -> None:
        """Run one stage with limit min(cap_s, time left); record its result, failure or timeout, then save."""
        if name in self.args.skip or (self.args.only and name not in self.args.only):
            self.result["stages"][name] = {"status": "skipped", "reason": "not selected"}
            self.save()
            return
        limit = min(cap_s * self.args.time_scale, self.left() - 5)
        if limit < min(min_s, cap_s):
            self.result["stages"][name] = {"status": "skipped", "reason": f"no time left ({self.left():.0f} s)"}
            self.log(f"=== {name}: skipped, {self.left():.0f} s left")
            self.save()
            return
        self.log(f"\n=== {name} (limit {limit:.0f} s; {self.left():.0f} s left of the budget)")
        started = self.stage_started = time.monotonic()
        try:
            record = body(limit)
            record.setdefault("status", "ok")
        except StageTimeoutError as exc:
            record = {"status": "timeout", "error": str(exc)}
        except Exception as exc:  # a failing stage is recorded and the check goes on
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        record["seconds"] = round(time.monotonic() - started, 1)
        self.result["stages"][name] = record
        self.log(f"=== {name}: {record['status']} in {record['seconds']} s"
                 + (f" ({record['error']})" if "error" in record else ""))
        self.save()


class StageTimeoutError(Exception):
    """A stage's command ran out of time."""


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the process group this check started for `proc` (its DataLoader workers too)."""
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def checked(run: dict[str, Any], what: str) -> dict[str, Any]:
    """The run itself, or StageTimeoutError/RuntimeError when it ran out of time or failed."""
    if run["timed_out"]:
        raise StageTimeoutError(f"{what} ran out of time after {run['seconds']} s")
    if run["rc"] != 0:
        tail = run["output"].strip().splitlines()[-3:]
        raise RuntimeError(f"{what} exited {run['rc']}: {' | '.join(tail)}")
    return run


# --- env --------------------------------------------------------------------------------------------------------


ENV_PROBE = r"""
import importlib, json, platform, torch
out = {"python": platform.python_version(), "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
       "torch_cuda": torch.version.cuda, "cpu_count": __import__("os").cpu_count()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    out.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
               capability=f"{p.major}.{p.minor}", bf16=torch.cuda.is_bf16_supported())
mods = {}
for m in ("facegan", "numpy", "PIL", "scipy", "cv2", "matplotlib", "tqdm", "fastapi", "uvicorn", "starlette",
          "pydantic", "fastapi_offline", "httpx", "onnx", "onnxruntime", "onnxscript", "tensorboard", "pytest"):
    try:
        mod = importlib.import_module(m)
        mods[m] = getattr(mod, "__version__", "present")
    except Exception as exc:
        mods[m] = f"MISSING ({type(exc).__name__})"
out["modules"] = mods
import facegan
out["facegan_file"] = facegan.__file__
print("ENV " + json.dumps(out))
"""


def model_presets(check: Check, timeout: float) -> list[str]:
    """The --model choices `facegan train --help` lists."""
    run = checked(check.facegan("train", "--help", timeout=timeout), "facegan train --help")
    found = re.search(r"--model \{([^}]*)\}", run["output"])
    return found.group(1).split(",") if found else []


def newest_preset(presets: list[str], wanted: str) -> str | None:
    """The newest family's 64-px preset: `wanted` itself, or for "auto" an r3gan preset (one naming 64 first)."""
    if wanted == "none":
        return None
    if wanted != "auto":
        return wanted if wanted in presets else None
    candidates = [p for p in presets if "r3gan" in p.lower()]
    candidates.sort(key=lambda p: ("64" not in p, len(p)))
    return candidates[0] if candidates else None


def stage_env(check: Check, limit: float) -> dict[str, Any]:
    record: dict[str, Any] = {"host": platform.node(), "machine": platform.machine()}
    if shutil.which("nvidia-smi"):
        smi = check.command(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                             "--format=csv,noheader"], timeout=min(20, limit))
        record["nvidia_smi"] = smi["output"].strip()
    else:
        record["nvidia_smi"] = "not found"
    probe = checked(check.python("-c", ENV_PROBE, timeout=limit / 2), "the environment probe")
    line = next(x for x in probe["output"].splitlines() if x.startswith("ENV "))
    record.update(json.loads(line[4:]))
    record["presets"] = model_presets(check, limit / 2)
    record["newest_preset"] = newest_preset(record["presets"], check.args.newest_family)
    check.result["machine"] = record.get("gpu") or record.get("nvidia_smi")
    return record


# --- tests ------------------------------------------------------------------------------------------------------


def junit_results(path: Path) -> dict[str, Any]:
    """Counts and per-test outcomes (with recorded properties) from a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests = []
    for case in suite.iter("testcase"):  # type: ignore[union-attr]
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, message = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag], \
                    (node.get("message") or "")[:500]
                break
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        tests.append({"name": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time") or 0), **({"message": message} if message else {}),
                      **({"properties": props} if props else {})})
    counts = {k: int(suite.get(k) or 0) for k in ("tests", "failures", "errors", "skipped")}  # type: ignore[union-attr]
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "results": tests}


def stage_tests(check: Check, limit: float) -> dict[str, Any]:
    xml = check.work / "cuda-tests.xml"
    xml.unlink(missing_ok=True)
    # pytest-xdist (on the device machine) runs the tests 4 at a time: they are mostly process start-up, and
    # the GPU has room for four tiny runs.
    parallel = ["-n", "4"] if importlib.util.find_spec("xdist") and not check.args.quick else []
    run = check.python("-m", "pytest", "-m", "cuda", "tests/cuda", "-q", "-p", "no:cacheprovider", *parallel,
                       f"--junitxml={xml}", timeout=limit)
    if run["timed_out"]:
        raise StageTimeoutError(f"pytest -m cuda ran out of time after {run['seconds']} s")
    record = {"rc": run["rc"], **(junit_results(xml) if xml.exists() else {"error": "no JUnit XML written"})}
    if run["rc"] not in (0, 5):  # 5: nothing collected
        record["status"] = "failed"
        record["error"] = f"pytest exited {run['rc']}: {record.get('failures', '?')} failed, " \
                          f"{record.get('errors', '?')} errors"
    return record


# --- speed ------------------------------------------------------------------------------------------------------


def speed_steps(quick: bool, batch: int) -> tuple[int, int]:
    """(warm-up, measured) steps of a speed run: enough for a steady figure, few for the slow references."""
    return (1, 2) if quick else ((5, 30) if batch <= 128 else (3, 12))


def speed_args(check: Check, batch: int) -> list[object]:
    """bench/train_speed.py's sizes for this batch (JPEGs enough for the longest of the loops)."""
    a = check.args
    warmup, steps = speed_steps(a.quick, batch)
    images = max(a.images, *(sum(speed_steps(a.quick, b)) * b for b in a.batches))  # one JPEG folder for all
    return ["--device", a.device, "--batch", batch, "--warmup", warmup, "--steps", steps, "--images", images,
            "--work", check.work / "speed", "--no-memory-reference"]


def summarise_speed(figures: dict[str, Any], first_ref: str | None, second_ref: str | None) -> dict[str, Any]:
    """Per loop: median images/s, TFLOP/s and share of peak, and median per-round ratios to the references."""
    per_s: dict[str, list[float]] = figures["images_per_s"]
    loops: dict[str, Any] = {}
    for key, values in per_s.items():
        median = statistics.median(values)
        tflops = median * GFLOP_PER_IMAGE / 1000
        entry: dict[str, Any] = {"images_per_s": round(median, 1), "rounds": [round(v, 1) for v in values],
                                 "tflops": round(tflops, 3),
                                 "share_of_peak": {k: round(tflops / v, 5) for k, v in PEAK_TFLOPS.items()}}
        for name, ref in (("x_first_ref", first_ref), ("x_second_ref", second_ref)):
            if ref in per_s and key != ref:
                entry[name] = round(statistics.median([v / r for v, r in zip(values, per_s[ref], strict=False)]), 2)
        loops[key] = entry
    return loops


def run_speed(check: Check, limit: float, batch: int, variants: str, workers: str, rounds: int,
              model: str = "dcgan") -> dict[str, Any]:
    """One bench/train_speed.py run; its JSON, summarised."""
    json_path = check.work / f"speed-{model}-{batch}-{re.sub(r'[^A-Za-z0-9]+', '_', variants)}.json"
    json_path.unlink(missing_ok=True)
    argv: list[object] = ["bench/train_speed.py", *speed_args(check, batch), "--ref-workers", workers,
                          "--facegan", variants, "--rounds", rounds, "--model", model, "--json", json_path]
    run = check.python(*argv, timeout=limit)
    checked(run, f"train_speed batch {batch} ({variants})")
    figures = json.loads(json_path.read_text())
    refs = [f"reference, JPEG path, {w} workers" for w in workers.split(",")]
    return {"batch": batch, "model": model, "settings": figures.get("settings", {}),
            "device_name": figures.get("device"), "steps": figures.get("steps"), "warmup": figures.get("warmup"),
            "loops": summarise_speed(figures, refs[0], refs[1] if len(refs) > 1 else None)}


def targets_met(check: Check, speeds: list[dict[str, Any]]) -> dict[str, Any]:
    """facegan's default against the references, per batch: met or missed."""
    out = {}
    for speed in speeds:
        loop = speed["loops"].get("facegan default", {})
        first, second = loop.get("x_first_ref"), loop.get("x_second_ref")
        out[str(speed["batch"])] = {
            "x_first_ref": first, "x_second_ref": second,
            "met": bool(first is not None and first >= check.args.target_first
                        and (second is None or second >= check.args.target_second)),
        }
    return out


def stage_speed(check: Check, limit: float) -> dict[str, Any]:
    workers = check.args.ref_workers
    record: dict[str, Any] = {"ref_workers": workers, "runs": []}
    batches = check.args.batches
    for i, batch in enumerate(batches):
        share = (limit - (time.monotonic() - check.stage_started)) / (len(batches) - i)
        try:
            record["runs"].append(run_speed(check, share, batch, "default", workers, check.args.rounds))
        except (StageTimeoutError, RuntimeError) as exc:
            record["runs"].append({"batch": batch, "status": "failed", "error": str(exc)})
    good = [r for r in record["runs"] if "loops" in r]
    record["targets"] = targets_met(check, good)
    check.result["targets_met"] = record["targets"]
    if not good:
        record["status"] = "failed"
        record["error"] = "; ".join(r.get("error", "") for r in record["runs"])
    return record


def stage_compile(check: Check, limit: float) -> dict[str, Any]:
    variants = "default,default+compile" + (",default+ro" if check.args.device.startswith("cuda") else "")
    first_worker = check.args.ref_workers.split(",")[-1]  # the faster reference, for scale
    record: dict[str, Any] = {"variants": variants, "runs": []}
    batches = check.args.batches
    for i, batch in enumerate(batches):
        share = (limit - (time.monotonic() - check.stage_started)) / (len(batches) - i)
        try:
            record["runs"].append(run_speed(check, share, batch, variants, first_worker, 1))
        except (StageTimeoutError, RuntimeError) as exc:
            record["runs"].append({"batch": batch, "status": "failed", "error": str(exc)})
    best = {}
    for run in record["runs"]:
        loops = {k: v for k, v in run.get("loops", {}).items() if k.startswith("facegan")}
        if loops:
            name = max(loops, key=lambda k: loops[k]["images_per_s"])
            best[str(run["batch"])] = {"mode": name, "images_per_s": loops[name]["images_per_s"]}
    record["best_mode"] = best
    if not best:
        record["status"] = "failed"
        record["error"] = "; ".join(r.get("error", "") for r in record["runs"])
    return record


def stage_newest(check: Check, limit: float) -> dict[str, Any]:
    preset = check.result["stages"].get("env", {}).get("newest_preset")
    if preset is None and "env" not in check.result["stages"]:
        preset = newest_preset(model_presets(check, 30), check.args.newest_family)
    if not preset:
        return {"status": "skipped", "reason": "no newest-family (r3gan) preset among `facegan train --model`"}
    batch = check.args.batches[0]
    run = run_speed(check, limit, batch, "default", check.args.ref_workers.split(",")[-1], 1, model=preset)
    for key, loop in run["loops"].items():
        if key.startswith("facegan"):  # the FLOP count is DCGAN-64's; another family's is not known here
            loop.pop("tflops"), loop.pop("share_of_peak")
    return {"preset": preset, **run}


# --- eval and serve ----------------------------------------------------------------------------------------------


def stage_eval_serve(check: Check, limit: float) -> dict[str, Any]:
    a = check.args
    n = 200 if a.quick else 10_000
    data = check.work / f"eval-faces-{n}"
    # 32 px, as the 10k evaluations in BENCHMARKS.md (issue 5): the metrics run on the CPU, and at 64 px they
    # would take several times longer than this stage may.
    record: dict[str, Any] = {"n_fakes": n, "resolution": 32}
    if not (data / "meta.json").exists():
        checked(check.facegan("prepare", "builtin:synthetic-faces", "--n", n, "--res", 32, "--out", data,
                              "--force", "--no-progress", timeout=limit / 3), "facegan prepare")
    run = check.work / "eval-run"
    shutil.rmtree(run, ignore_errors=True)
    steps = 3 if a.quick else 60
    checked(check.facegan("train", "--data", data, "--out", run, "--device", a.device, "--steps", steps,
                          "--batch-size", 16 if a.quick else 128, "--no-progress", "--no-report",
                          "--sample-every", 10**6, "--checkpoint-every", 10**6,
                          timeout=limit / 3), "facegan train (the run to evaluate)")
    left = limit - (time.monotonic() - check.stage_started)
    ev = checked(check.facegan("eval", run, "--n", n, "--metrics", "swd,faces", "--device", a.device, "--json",
                               "--no-progress", timeout=left * 0.7), "facegan eval")
    result = printed_json(ev["output"])
    record["eval"] = {"wall_s": ev["seconds"], "n": result.get("n"), "n_real": result.get("n_real"),
                      "swd": result.get("swd"), "faces_fake": result.get("faces_fake"),
                      "faces_real": result.get("faces_real"), "elapsed_s": result.get("elapsed_s")}
    left = limit - (time.monotonic() - check.stage_started)
    record["serve"] = serve_timing(check, run, left - 2)
    return record


def printed_json(output: str) -> dict[str, Any]:
    """The JSON object a command printed with indent (its "{" and "}" lines), among its log lines."""
    lines = output.splitlines()
    start, end = lines.index("{"), len(lines) - 1 - lines[::-1].index("}")
    return json.loads("\n".join(lines[start:end + 1]))


def serve_timing(check: Check, run: Path, limit: float) -> dict[str, Any]:
    """Start `facegan serve` on a free 127.0.0.1 port, time one face (cold, then 20 warm ones), stop it."""
    import httpx

    argv = [sys.executable, "-m", "facegan", "serve", str(run), "--device", check.args.device, "--host",
            "127.0.0.1", "--port", "0"]
    check.log(f"$ {' '.join(argv)}")
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        url = ""
        while time.monotonic() - started < limit / 2:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            check.log_file.write("  " + line)
            if " at http://" in line:
                url = line.split(" at ")[1].split()[0]
                break
        if not url:
            raise RuntimeError("facegan serve printed no URL")
        while True:
            try:
                info = httpx.get(url + "api/info", timeout=10).json()
                break
            except httpx.TransportError:
                if time.monotonic() - started > limit / 2:
                    raise
                time.sleep(0.1)
        start_s = time.monotonic() - started
        with httpx.Client(base_url=url, timeout=60) as client:
            t0 = time.perf_counter()
            first = client.get("api/face?seed=0&index=0")
            cold_ms = (time.perf_counter() - t0) * 1000
            first.raise_for_status()
            warm = []
            for i in range(20):
                t0 = time.perf_counter()
                client.get(f"api/face?seed={i + 1}&index={i}").raise_for_status()
                warm.append((time.perf_counter() - t0) * 1000)
        record = {"device": info.get("device"), "start_s": round(start_s, 2), "first_face_ms": round(cold_ms, 2),
                  "face_ms_median": round(statistics.median(warm), 2), "face_ms_min": round(min(warm), 2),
                  "png_bytes": len(first.content)}
        check.log(f"  served on {record['device']}: first face {cold_ms:.1f} ms, then median "
                  f"{record['face_ms_median']} ms")
        return record
    finally:
        stop_group(proc)
        proc.stdout.close()  # type: ignore[union-attr]


# --- profile ------------------------------------------------------------------------------------------------------


PROFILE_SNIPPET = r"""
import runpy, sys, torch
from torch.profiler import ProfilerActivity, profile
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
sys.argv = ["facegan", *sys.argv[1:]]
with profile(activities=activities) as prof:
    try:
        runpy.run_module("facegan", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
print(prof.key_averages().table(sort_by=key, row_limit=30))
"""


def stage_profile(check: Check, limit: float) -> dict[str, Any]:
    targets = check.result.get("targets_met", {})
    missed = [b for b, t in targets.items() if not t["met"]]
    if check.args.profile == "never" or (check.args.profile == "missed" and not missed):
        return {"status": "skipped", "reason": "targets met" if targets else "no speed figures"}
    a = check.args
    prepared = check.work / "speed" / "prepared-64"
    if not (prepared / "meta.json").exists():
        raise RuntimeError(f"{prepared} is missing (the speed stage makes it)")
    batch = int(missed[0]) if missed else a.batches[0]
    run = check.work / "profile-run"
    shutil.rmtree(run, ignore_errors=True)
    steps = 3 if a.quick else 40
    prof = checked(check.python("-c", PROFILE_SNIPPET, "train", "--data", prepared, "--out", run, "--device",
                                a.device, "--steps", steps, "--batch-size", batch, "--no-progress", "--no-report",
                                "--sample-every", 10**6, "--checkpoint-every", 10**6, timeout=limit),
                   "the profiled run")
    check.log(f"torch.profiler table of facegan's default loop, batch {batch}, {steps} steps (start-up included):")
    return {"batch": batch, "steps": steps, "missed_batches": missed, "table_lines": prof["output"].count("\n")}


# --- main -----------------------------------------------------------------------------------------------------------


STAGES = ("env", "tests", "speed", "profile", "eval_serve", "compile", "newest")
# Each stage's own cap in seconds on the GPU machine (--time-scale multiplies them); the budget bounds the sum.
CAPS = {"env": 40, "tests": 150, "speed": 130, "profile": 45, "eval_serve": 120, "compile": 160, "newest": 60}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: the orchestration end to end in minutes on a CPU")
    p.add_argument("--out", default=os.environ.get("OUT") or "/tmp/facegan-gpu-check",
                   help="folder of gpu_check.json and gpu_check.log (default $OUT)")
    p.add_argument("--work", default="/tmp/facegan-gpu-check-work", help="scratch folder (JPEGs, datasets, runs)")
    p.add_argument("--budget-s", type=float, default=455, help="overall wall-clock budget of the stages")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply every stage's own cap")
    p.add_argument("--only", default="", help=f"comma list of stages to run ({','.join(STAGES)})")
    p.add_argument("--skip", default="", help="comma list of stages to skip")
    p.add_argument("--batches", default=None, help="comma list of batch sizes (default 128,512; --quick: 8)")
    p.add_argument("--ref-workers", default=None, help="DataLoader workers of the two references (default 2,16; "
                   "--quick: 1,2)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds of the speed stage (default 2)")
    p.add_argument("--images", type=int, default=0, help="JPEGs for the speed runs (default: what they need)")
    p.add_argument("--target-first", type=float, default=20.0, help="facegan default ÷ first reference (2 workers)")
    p.add_argument("--target-second", type=float, default=4.0, help="facegan default ÷ second reference (16 workers)")
    p.add_argument("--newest-family", default="auto", help="preset for the newest-family slot: auto (an r3gan "
                   "preset if `facegan train` lists one), a preset name, or none")
    p.add_argument("--profile", choices=("missed", "always", "never"), default="missed",
                   help="write a torch.profiler table to the log when a target is missed (default)")
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    args.skip = [s for s in args.skip.split(",") if s]
    unknown = sorted(set(args.only + args.skip) - set(STAGES))
    if unknown:
        p.error(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    args.batches = [int(b) for b in (args.batches or ("8" if args.quick else "128,512")).split(",")]
    args.ref_workers = args.ref_workers or ("1,2" if args.quick else "2,16")
    args.rounds = args.rounds or (1 if args.quick else 2)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check = Check(args)
    check.log(f"facegan GPU check: device {args.device}{' (quick)' if args.quick else ''}, "
              f"budget {args.budget_s:.0f} s, out {check.out}")
    bodies = {"env": stage_env, "tests": stage_tests, "speed": stage_speed, "eval_serve": stage_eval_serve,
              "compile": stage_compile, "newest": stage_newest, "profile": stage_profile}
    for name in STAGES:
        check.stage(name, CAPS[name] * (0.6 if args.quick and name == "tests" else 1),
                    lambda limit, body=bodies[name]: body(check, limit))
    failed = [n for n, r in check.result["stages"].items() if r["status"] in ("failed", "timeout")]
    check.result["failed_stages"] = failed
    check.save()
    check.log(f"\nGPU check done in {time.monotonic() - check.started:.0f} s: {check.json_path}, {check.log_path}"
              + (f"; failed or timed out: {', '.join(failed)}" if failed else "; no stage failed"))
    check.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
