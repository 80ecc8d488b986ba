"""The HTTP side of the live view: the page, the MJPEG stream and the JSON API.

    GET  /                 the page (static/index.html, app.js, style.css; nothing external)
    GET  /stream.mjpg      the live frame, multipart JPEG (one connection per tab)
    GET  /api/frame.jpg    the latest frame
    GET  /api/state        the latest snapshot (``LiveCamera`` docs its fields)
    POST /api/controls     ``Camera.set_controls`` with the same names and validation
    POST /api/trigger      run one AF cycle (``AfTrigger start``; ``{"AfTrigger": "cancel"}`` stops it)
    POST /api/sim          the simulator's ``scene`` / ``distance_cm`` / ``illuminance_lux``

A bad control or condition answers 422 with the ``ConfigError`` message as ``detail``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import resources
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from dasha.errors import ConfigError
from dasha.web.state import LiveCamera

BOUNDARY = "dasha-frame"
STREAM_POLL_S = 0.01  # how often a stream looks for a new snapshot (frames come at <= 50/s)


def _static_dir() -> str:
    return str(resources.files("dasha.web") / "static")


def _apply(action: Any) -> dict[str, Any]:
    """Run a camera command; a ``ConfigError`` is the client's mistake (422)."""
    try:
        action()
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except FutureTimeout as exc:
        raise HTTPException(
            status_code=503, detail="the camera is busy (a cycle is running)"
        ) from exc
    return {"ok": True}


def create_app(live: LiveCamera, closing: threading.Event | None = None) -> FastAPI:
    """The app over a started ``LiveCamera``; ``closing`` set ends every stream (shutdown)."""
    app = FastAPI(title="DASHA live view", docs_url=None, redoc_url=None)
    stop_streams = closing or threading.Event()
    static = _static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(f"{static}/index.html")

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(live.snapshot().state)

    @app.get("/api/frame.jpg")
    def frame() -> Response:
        return Response(live.snapshot().jpeg, media_type="image/jpeg")

    @app.get("/stream.mjpg")
    async def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            live.streams += 1  # the event loop's thread only: no lock needed
            try:
                seq = -1
                while not stop_streams.is_set():
                    snap = live.snapshot()
                    if snap.seq != seq and snap.jpeg:
                        seq = snap.seq
                        yield (
                            (
                                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                f"Content-Length: {len(snap.jpeg)}\r\n\r\n"
                            ).encode()
                            + snap.jpeg
                            + b"\r\n"
                        )
                    await asyncio.sleep(STREAM_POLL_S)
            finally:  # the tab closed (the task is cancelled) or the server stops
                live.streams -= 1

        return StreamingResponse(
            parts(),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/api/controls")
    def controls(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return _apply(lambda: live.set_controls(body))

    @app.post("/api/trigger")
    def trigger(body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
        return _apply(lambda: live.set_controls({"AfTrigger": "start", **(body or {})}))

    @app.post("/api/sim")
    def sim(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return _apply(lambda: live.set_conditions(body))

    return app
