"""Benchmark `facegan serve`: latency of one 64-px face and throughput at concurrency 8, over real HTTP.

    .venv/bin/python bench/serve.py [--model RUN|CHECKPOINT] [--requests 200] [--rounds 3] [--concurrency 8]

Without --model it times the default DCGAN-64 (ngf 64, nz 100) with freshly initialised weights: the cost of a
face does not depend on what the weights are. Three servers run as separate processes on 127.0.0.1, started the
way `facegan serve` starts them: G in eager PyTorch with batching of concurrent single faces on ("batched") and
off ("unbatched"), and `--runtime auto`, `facegan serve`'s default (ONNX Runtime when installed and faster for one
face, measured at its start; batching on; the runtime it chose is printed). Each round runs, one after another:
the in-process references (G + PNG encoding of one face, no HTTP, in PyTorch and in ONNX Runtime), sequential
requests to each server, then `--concurrency` clients to each server. Rounds alternate so a noisy shared machine
hits all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def make_default_checkpoint(folder: Path) -> Path:
    """A checkpoint of the default DCGAN-64 generator, initialised, untrained."""
    from facegan.config import RunConfig
    from facegan.models.dcgan import build_generator
    from facegan.run.checkpoint import save_checkpoint

    config = RunConfig()
    path = folder / "dcgan64.pt"
    save_checkpoint(path, {"family": "dcgan", "config": config.to_dict(), "step": 0,
                           "G": build_generator(config.model).state_dict()})
    return path


def serve_only(model: str, max_batch: int, workers: int, runtime: str) -> None:
    """Child mode: serve `model` on a free 127.0.0.1 port and print the URL (as `facegan serve` does)."""
    import uvicorn

    from facegan.serve.app import create_app
    from facegan.serve.server import bind_socket, url_of

    app = create_app(model, device="cpu", workers=workers, max_batch=max_batch, runtime=runtime)
    sock = bind_socket("127.0.0.1", 0)
    print(url_of(sock), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none")).run(sockets=[sock])


def start_server(model: str, max_batch: int, workers: int, runtime: str = "torch") -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-only", "--model", model, "--max-batch", str(max_batch),
         "--workers", str(workers), "--runtime", runtime],
        stdout=subprocess.PIPE, text=True,
    )
    url = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("the benchmark server did not start")
    for _ in range(300):
        try:
            httpx.get(url + "api/health", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url


def sequential_ms(url: str, count: int, offset: int, path: str = "api/face") -> list[float]:
    """Latency of `count` one-face requests (or of `path`), one after another on one keep-alive connection."""
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("api/face?seed=0&index=0")  # warm the connection and the worker
        for i in range(count):
            started = time.perf_counter()
            response = client.get(f"api/face?seed={offset + i}&index={i % 64}" if path == "api/face" else path)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def concurrent_faces_per_s(url: str, clients: int, per_client: int, offset: int) -> float:
    """Faces per second with `clients` threads, each sending `per_client` one-face requests back to back."""
    barrier = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def client_loop(k: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                client.get("api/health")
                barrier.wait()
                for i in range(per_client):
                    client.get(f"api/face?seed={offset + k * per_client + i}&index={i % 64}").raise_for_status()
        except BaseException as exc:  # reported below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return clients * per_client / elapsed


def direct_ms(model: str, count: int, offset: int, renderer_cache: dict, runtime: str = "torch") -> list[float]:
    """Reference: one face through G (in `runtime`) and PNG encoding in this process (a worker thread), no HTTP,
    no pool."""
    if runtime not in renderer_cache:
        from facegan.generation.export import choose_runtime
        from facegan.generation.sample import load_generator
        from facegan.serve.render import FaceRenderer

        gen = choose_runtime(load_generator(model, device="cpu"), runtime)
        renderer_cache[runtime] = FaceRenderer(gen, chunk_sizes=())
    renderer = renderer_cache[runtime]
    size = renderer.resolution
    times: list[float] = []

    def loop() -> None:
        for i in range(count):
            started = time.perf_counter()
            image = renderer.generate(renderer.face_latent(offset + i, i % 64))[0]
            renderer.face_png(image, size)
            times.append((time.perf_counter() - started) * 1000)

    # On a worker thread, as the server runs it: from the main thread, libgomp's spin-waiting OpenMP team made the
    # same call 30-40x slower on the shared 2-core machine (200 ms vs 5 ms; OMP_WAIT_POLICY=passive removes that).
    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    return times


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run directory or checkpoint (default: an untrained DCGAN-64)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=40, help="requests per concurrent client per round")
    parser.add_argument("--workers", type=int, default=2, help="generation threads of each server")
    parser.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-batch", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only:
        serve_only(args.model, args.max_batch, args.workers, args.runtime)
        return

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(make_default_checkpoint(Path(tmp)))
        servers = {"batched": start_server(model, 16, args.workers), "unbatched": start_server(model, 1, args.workers),
                   "auto": start_server(model, 16, args.workers, "auto")}
        chosen = httpx.get(servers["auto"][1] + "api/info", timeout=30).json()["serving"]["runtime"]
        direct: list[float] = []
        direct_onnx: list[float] = []
        health: list[float] = []
        latency: dict[str, list[float]] = {name: [] for name in servers}
        throughput: dict[str, list[float]] = {name: [] for name in servers}
        cache: dict = {}
        try:
            offset = 0
            for round_index in range(args.rounds):
                direct += direct_ms(model, args.requests, offset, cache)
                direct_onnx += direct_ms(model, args.requests, offset, cache, "onnx")
                for name, (_, url) in servers.items():
                    latency[name] += sequential_ms(url, args.requests, offset)
                health += sequential_ms(servers["batched"][1], args.requests, offset, path="api/health")
                for name, (_, url) in servers.items():
                    throughput[name].append(concurrent_faces_per_s(url, args.concurrency, args.per_client, offset))
                offset += 10_000
                print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)

    import torch

    ref_p50 = statistics.median(direct)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: {args.model or 'default DCGAN-64 (ngf 64, nz 100), untrained'}; {args.rounds} rounds alternating")
    print(f"reference, G + PNG in process: p50 {ref_p50:.2f} ms, p99 {percentile(direct, 99):.2f} ms")
    onnx_p50 = statistics.median(direct_onnx)
    print(f"reference, G in ONNX Runtime + PNG in process: p50 {onnx_p50:.2f} ms, "
          f"p99 {percentile(direct_onnx, 99):.2f} ms ({ref_p50 / onnx_p50:.2f}x as fast as PyTorch)")
    print(f"runtime auto chose: {chosen}; batched and unbatched run G in eager PyTorch")
    print(f"HTTP floor, /api/health (no G): p50 {statistics.median(health):.2f} ms, "
          f"p99 {percentile(health, 99):.2f} ms")
    for name in servers:
        p50, p99 = statistics.median(latency[name]), percentile(latency[name], 99)
        print(f"HTTP one face, {name:9s}: p50 {p50:.2f} ms ({p50 / ref_p50:.2f}x reference), p99 {p99:.2f} ms")
    for name in servers:
        rates = throughput[name]
        print(f"concurrency {args.concurrency}, {name:9s}: {statistics.median(rates):.1f} faces/s "
              f"(rounds: {', '.join(f'{r:.1f}' for r in rates)})")
    ratio = statistics.median(throughput["batched"]) / statistics.median(throughput["unbatched"])
    print(f"batching speed-up at concurrency {args.concurrency}: {ratio:.2f}x")
    auto = statistics.median(latency["batched"]) / statistics.median(latency["auto"])
    auto_rate = statistics.median(throughput["auto"]) / statistics.median(throughput["batched"])
    print(f"runtime auto ({chosen}) against eager PyTorch (both batched): one face over HTTP {auto:.2f}x as fast "
          f"(p50), {auto_rate:.2f}x the faces/s at concurrency {args.concurrency}")
    print(f"single-face reference throughput (1 / p50): {1000 / ref_p50:.1f} faces/s")


def onnx_vs_eager(model: str | None, rounds: int = 5, count: int = 200) -> None:
    """ONNX Runtime against eager PyTorch for G alone on one face (batch 1), rounds alternating, at the default
    thread counts (torch: its default; ONNX Runtime: one per core) and with one thread each.

        .venv/bin/python bench/serve.py --onnx [--model RUN|CHECKPOINT] [--rounds 5] [--requests 200]
    """
    import torch

    from facegan.generation.export import ExportedGenerator, onnx_bytes
    from facegan.generation.sample import load_generator

    with tempfile.TemporaryDirectory() as tmp:
        gen = load_generator(model or make_default_checkpoint(Path(tmp)), device="cpu")
    data = onnx_bytes(gen)
    default_threads = torch.get_num_threads()
    z = gen.latents(1, 0)

    def per_face_ms(run: Callable[[], object]) -> list[float]:
        for _ in range(10):
            run()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
        return times

    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}; "
          f"model: {model or 'default DCGAN-64 (ngf 64, nz 100), untrained'}; G only, one face, {rounds} rounds")
    for label, threads in (("default threads", 0), ("1 thread each", 1)):
        session = ExportedGenerator(data=data, fmt="onnx", threads=threads)
        torch.set_num_threads(threads or default_threads)
        eager: list[float] = []
        onnx: list[float] = []
        for _ in range(rounds):
            with torch.inference_mode():
                eager += per_face_ms(lambda: gen.netG(z))
            onnx += per_face_ms(lambda s=session: s.run(z))
        e50, o50 = statistics.median(eager), statistics.median(onnx)
        print(f"{label:15s}: eager PyTorch p50 {e50:.2f} ms (p99 {percentile(eager, 99):.2f}), ONNX Runtime p50 "
              f"{o50:.2f} ms (p99 {percentile(onnx, 99):.2f}): ONNX Runtime {e50 / o50:.2f}x as fast")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    if "--onnx" in sys.argv:
        cli = argparse.ArgumentParser(allow_abbrev=False, description=onnx_vs_eager.__doc__)
        cli.add_argument("--onnx", action="store_true")
        cli.add_argument("--model")
        cli.add_argument("--rounds", type=int, default=5)
        cli.add_argument("--requests", type=int, default=200, help="timed faces per round and runtime")
        opts = cli.parse_args()
        onnx_vs_eager(opts.model, opts.rounds, opts.requests)
    else:
        main()
