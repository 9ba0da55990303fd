"""Run several emulators, each on its own loopback port, in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    # One signal handler stops every server (see `serve_all`); uvicorn's own would stop only one.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Listener:
    name: str
    app: ASGIApp
    sock: socket.socket

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"


def bind(name: str, app: ASGIApp, host: str, port: int) -> Listener:
    """Bind now (port 0 = a free port), so the URL is known before serving starts."""
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only then, otherwise every keep-alive
    # answer waits ~40 ms behind the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return Listener(name, app, sock)


async def serve_all(listeners: list[Listener], on_ready: Callable[[], None]) -> None:
    servers = []
    for listener in listeners:
        config = uvicorn.Config(
            listener.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=75,
            backlog=1024,
        )
        servers.append((_Server(config), listener.sock))

    def stop() -> None:
        for server, _ in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    on_ready()
    await asyncio.gather(*tasks)
