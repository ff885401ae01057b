"""The live server on 127.0.0.1 under load: 50 concurrent clients × 20 requests, and clients that stall."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest

CLIENTS, REQUESTS = 50, 20


def request_mix(rng: random.Random) -> str:
    """Mostly single faces (what a page of thumbnails asks for), some grids and strips, a few info/health."""
    roll = rng.random()
    if roll < 0.6:
        return f"/api/face?seed={rng.randrange(3)}&index={rng.randrange(8)}"
    if roll < 0.8:
        return f"/api/faces?seed={rng.randrange(3)}&n={rng.choice((4, 9, 16))}"
    if roll < 0.9:
        return f"/api/interpolate?seed_a={rng.randrange(3)}&seed_b=7&steps=4"
    return rng.choice(("/api/health", "/api/info"))


async def one_client(base: str, seed: int, bodies: dict[str, set[bytes]], statuses: Counter) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(REQUESTS):
            url = request_mix(rng)
            response = await client.get(url)
            statuses[response.status_code] += 1
            if url.startswith(("/api/face", "/api/interpolate")):
                bodies.setdefault(url, set()).add(response.content)


@pytest.mark.slow
def test_fifty_concurrent_clients_all_succeed(live_url: str) -> None:
    bodies: dict[str, set[bytes]] = {}
    statuses: Counter = Counter()

    async def run_all() -> None:
        await asyncio.gather(*(one_client(live_url, i, bodies, statuses) for i in range(CLIENTS)))

    started = time.perf_counter()
    asyncio.run(run_all())
    elapsed_s = time.perf_counter() - started
    assert statuses == Counter({200: CLIENTS * REQUESTS}), statuses
    # Same URL, same bytes, whichever batch or worker made it.
    assert all(len(variants) == 1 for variants in bodies.values())
    health = httpx.get(live_url + "/api/health").json()
    assert health["pending"] == 0 and health["rejected"] == 0
    assert health["faces"] >= 0.5 * CLIENTS * REQUESTS  # ~60% of requests were single faces …
    assert health["largest_batch"] > 1  # … and some of them shared a call of G
    print(f"{CLIENTS * REQUESTS} requests in {elapsed_s:.1f} s; largest face batch {health['largest_batch']}")


@pytest.mark.slow
def test_stalled_clients_do_not_block_others(live_url: str) -> None:
    parts = urlsplit(live_url)
    address = (parts.hostname, parts.port)
    stalled = []
    # One asks for the biggest grid allowed and never reads the answer; one sends half a request and stops.
    reader = socket.create_connection(address)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.sendall(b"GET /api/faces?n=64&size=256&seed=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    stalled.append(reader)
    half = socket.create_connection(address)
    half.sendall(b"GET /api/faces?n=64&size=256 HTTP/1.1\r\nHo")
    stalled.append(half)
    try:
        time.sleep(0.5)  # let the big grid be made and its sending stall
        with httpx.Client(base_url=live_url, timeout=10) as client:
            for i in range(20):
                started = time.perf_counter()
                response = client.get(f"/api/face?seed={i}&index=1")
                assert response.status_code == 200
                assert time.perf_counter() - started < 5.0
            # No worker stays held by the stalled sockets: the big grid's job ends once its bytes are made.
            deadline = time.monotonic() + 30
            while client.get("/api/health").json()["pending"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.get("/api/health").json()["pending"] == 0
    finally:
        for sock in stalled:
            sock.close()
