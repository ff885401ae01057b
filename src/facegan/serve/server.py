"""Run the app with uvicorn on a socket bound before the URL is announced (so --port 0 prints the real port)."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from facegan.errors import FaceganError

log = logging.getLogger("facegan.serve")

# Connections + requests at once before uvicorn answers 503; with the pool's own bound this keeps a flood of
# clients from holding unbounded response bodies in memory.
LIMIT_CONCURRENCY = 512


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port)."""
    if not 0 <= port <= 65535:
        raise FaceganError(f"--port must be between 0 and 65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise FaceganError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise FaceganError(f"cannot listen on {host}:{port}: {exc.strerror} (is another server using it?)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port/ for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(
    model: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "auto", workers: int = 2,
    announce: Callable[[str], None] = print, runtime: str = "auto",
) -> None:
    """Load the model, listen on host:port, announce the URL, and serve until Ctrl-C/SIGTERM."""
    import uvicorn

    from facegan.generation.export import runtime_name
    from facegan.serve.app import create_app

    if workers < 1:
        raise FaceganError("--workers must be at least 1")
    app = create_app(model, device=device, workers=workers, runtime=runtime)
    gen = app.state.generator
    sock = bind_socket(host, port)
    url = url_of(sock)
    if not is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine can use the server", host)
    announce(f"serving {gen.checkpoint} (step {gen.step}, {gen.device}, {runtime_name(gen)}) at {url}  "
             "(Ctrl-C to stop)")
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on",
                            limit_concurrency=LIMIT_CONCURRENCY, timeout_keep_alive=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has already shut down gracefully and re-raised the Ctrl-C; stopping is the normal end
    finally:
        sock.close()
    announce("stopped")
