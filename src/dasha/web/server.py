"""Run the live view with uvicorn until Ctrl-C, then stop the camera loop and park the lens."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from dasha.camera.api import Camera
from dasha.errors import ConfigError
from dasha.web.app import create_app
from dasha.web.state import LiveCamera


def check_address(host: str, port: int) -> bool:
    """``True`` when ``host`` is loopback; a ``ConfigError`` when it is not an address of
    this machine's or the port is taken (before the camera moves)."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} must be in 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: an empty or long label
        raise ConfigError(f"--host {host!r} is not an address or a known host name") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


class _Server(uvicorn.Server):
    """uvicorn's server that ends the never-ending MJPEG responses on Ctrl-C (uvicorn would
    otherwise wait for them) and returns instead of re-raising the signal once it has shut
    down, so that ``serve``'s caller closes the camera (parks the lens) on SIGINT and SIGTERM."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self.closing = closing

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.closing.set()
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve(
    cam: Camera,
    host: str,
    port: int,
    *,
    speed: float = 1.0,
    max_fps: float = 25.0,
    while_serving: Callable[[str], None] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve ``cam`` at http://host:port/ until Ctrl-C, or until ``while_serving(url)``
    returns when given (the README screenshot); the caller closes ``cam`` (parks the lens)."""
    live = LiveCamera(cam, speed=speed, max_fps=max_fps)
    live.start()
    closing = threading.Event()
    config = uvicorn.Config(
        create_app(live, closing),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
    server = _Server(config, closing)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    try:
        if while_serving is None:
            echo(f"DASHA live view: {url}  (Ctrl-C stops it and parks the lens)")
            server.run()
        else:
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            try:
                while not server.started:
                    if not thread.is_alive():
                        raise ConfigError(f"the server did not start on {host}:{port}")
                    threading.Event().wait(0.05)
                while_serving(url)
            finally:
                closing.set()
                server.should_exit = True
                thread.join(10)
    finally:
        live.stop()
