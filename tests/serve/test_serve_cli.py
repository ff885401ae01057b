"""`facegan serve`: argument handling, user errors, and a real server process that prints its URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.serve.server import bind_socket, is_loopback, url_of
from factories import get_when_up


def test_serve_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("RUN|CHECKPOINT", "--host", "--port", "--device", "127.0.0.1"):
        assert option in out


def test_missing_model_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "nothing"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_workers_and_busy_port_are_user_errors(serve_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(serve_run), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    taken = bind_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(FaceganError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_socket("127.0.0.1", port)
        assert url_of(taken) == f"http://127.0.0.1:{port}/"
    finally:
        taken.close()
    with pytest.raises(FaceganError, match="--port"):
        bind_socket("127.0.0.1", 70000)


def test_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


@pytest.mark.slow
def test_serve_process_prints_its_url_answers_and_stops_on_ctrl_c(serve_run: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "facegan", "serve", str(serve_run), "--port", "0", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert "serving" in line and "step 20" in line, line + proc.stderr.read()  # type: ignore[union-attr]
            assert "cpu, onnxruntime)" in line or "cpu, torch)" in line  # runtime auto, the default, chose one
            url = line.split(" at ")[1].split()[0]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/")
            health = get_when_up(url + "api/health", timeout_s=30, request_timeout_s=5)
            assert health.status_code == 200 and health.json()["step"] == 20
            face = httpx.get(url + "api/face?seed=1&index=2", timeout=30)
            assert face.status_code == 200 and face.headers["content-type"] == "image/png"
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0
            assert out.strip().endswith("stopped")
        finally:
            if proc.poll() is None:
                proc.kill()
