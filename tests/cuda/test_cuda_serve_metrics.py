"""`facegan serve --device cuda` answering a request, and the metrics of a GPU against a CPU evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cuda_support import CUDA, faces32, gpu_run, run_cli  # faces32, gpu_run: fixtures

from factories import get_when_up

pytestmark = CUDA

# The metrics themselves run on the CPU; the device only runs G. G's faces on the GPU differ from the CPU's by
# rounding (a few uint8 levels in a few pixels, see test_cuda_generate.py), which moves SWD (×1e3) by far less
# than its run-to-run spread and flips at most a few of 512 face detections.
SWD_REL_TOL, SWD_ABS_TOL, FACE_RATE_TOL = 0.02, 0.1, 0.02


def test_server_answers_one_face_on_the_gpu(gpu_run: tuple[Path, str]) -> None:
    run, _ = gpu_run
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen([sys.executable, "-m", "facegan", "serve", str(run), "--device", "cuda",
                           "--host", "127.0.0.1", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert "serving" in line and "cuda" in line, line + proc.stderr.read()  # type: ignore[union-attr]
            url = line.split(" at ")[1].split()[0]
            info = get_when_up(url + "api/info", timeout_s=60)
            assert info.json()["device"].startswith("cuda")
            face = httpx.get(url + "api/face?seed=1&index=2", timeout=60)
            assert face.status_code == 200 and face.headers["content-type"] == "image/png"
            assert face.content.startswith(b"\x89PNG")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_metrics_on_the_gpu_agree_with_the_cpu(gpu_run: tuple[Path, str],
                                               record_property: pytest.RecordProperty) -> None:
    run, _ = gpu_run
    results = {}
    for device in ("cuda", "cpu"):
        out = run_cli("eval", run, "--metrics", "swd,faces", "--n", 512, "--device", device, "--json",
                      "--no-progress").stdout
        results[device] = json.loads(out[out.index("{"):])
    gpu, cpu = results["cuda"], results["cpu"]
    record_property("swd_gpu", gpu["swd"])
    record_property("swd_cpu", cpu["swd"])
    assert abs(gpu["swd"] - cpu["swd"]) <= SWD_REL_TOL * abs(cpu["swd"]) + SWD_ABS_TOL, (gpu["swd"], cpu["swd"])
    assert abs(gpu["faces_fake"] - cpu["faces_fake"]) <= FACE_RATE_TOL
    assert gpu["faces_real"] == cpu["faces_real"]  # the same real images, on the CPU both times
