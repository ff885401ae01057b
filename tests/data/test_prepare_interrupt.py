"""Interrupting `facegan prepare` part-way (Ctrl-C / SIGTERM) leaves nothing that looks like a dataset, and a
re-run succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from facegan.data.decode import Payload
from facegan.data.prepare import prepare
from facegan.data.sources import ArraySource


def start_prepare(source: Path, out: Path, *extra: str, sigint: signal.Handlers = signal.SIG_DFL,
                  ) -> subprocess.Popen[str]:
    """`facegan prepare` in a child that starts with SIGINT's disposition `sigint`, whatever this process has: a
    background job of a non-interactive shell (nohup, `make test &` in a script) ignores SIGINT, and so would the
    child by inheritance."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "facegan", "prepare", str(source), "--out", str(out), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))


def wait_for_temporary(out: Path, process: subprocess.Popen[str], timeout_s: float = 60.0) -> Path:
    """The temporary sibling the run writes into, once it exists and holds some rows."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = list(out.parent.glob(f".{out.name}.tmp-*/images.npy"))
        if found and found[0].stat().st_size > 0:
            time.sleep(0.3)  # let the workers get properly under way
            return found[0].parent
        time.sleep(0.02)
    raise AssertionError("prepare never started writing")


@pytest.mark.slow
def test_ctrl_c_leaves_no_dataset_and_rerun_succeeds(tmp_path: Path) -> None:
    # A slow-enough source: 8,000 small images each upscaled to 256 px (tens of seconds in all).
    rng = np.random.default_rng(0)
    np.save(tmp_path / "many.npy", rng.integers(0, 256, size=(8000, 24, 24, 3), dtype=np.uint8))
    out = tmp_path / "data"
    process = start_prepare(tmp_path / "many.npy", out, "--res", "256", "--workers", "2")
    temporary = wait_for_temporary(out, process)
    assert not (temporary / "meta.json").exists()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.npy"]  # the temporary folder is gone too

    meta = prepare(str(tmp_path / "many.npy"), out, resolution=32, limit=50, workers=2, show_progress=False)
    assert meta["count"] == 50 and json.loads((out / "meta.json").read_text())["sha256"] == meta["sha256"]
    assert np.load(out / "images.npy").shape == (50, 32, 32, 3)


@pytest.mark.slow
def test_an_ignored_sigint_stays_ignored(tmp_path: Path) -> None:
    """Started with SIGINT ignored (nohup, a background job of a script), prepare keeps ignoring it and finishes."""
    np.save(tmp_path / "some.npy", np.random.default_rng(1).integers(0, 256, size=(2500, 24, 24, 3), dtype=np.uint8))
    out = tmp_path / "data"
    process = start_prepare(tmp_path / "some.npy", out, "--res", "256", "--workers", "2", sigint=signal.SIG_IGN)
    wait_for_temporary(out, process)
    assert process.poll() is None  # still running when the Ctrl-C comes
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted" not in stderr
    assert json.loads((out / "meta.json").read_text())["count"] == 2500


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_run_cleans_up_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """SIGTERM (what `kill` and schedulers send) is turned into the same clean-up as Ctrl-C."""
    np.save(tmp_path / "few.npy", np.zeros((400, 8, 8, 3), dtype=np.uint8))
    original = ArraySource.payloads

    def payloads_then_sigterm(self: ArraySource, indices: Sequence[int]) -> Iterator[tuple[int, Payload]]:
        for k, item in enumerate(original(self, indices)):
            if k == 200:
                os.kill(os.getpid(), signal.SIGTERM)
            yield item

    monkeypatch.setattr(ArraySource, "payloads", payloads_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        prepare(str(tmp_path / "few.npy"), tmp_path / "out", resolution=8, workers=workers, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.npy"]
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only installed while preparing
