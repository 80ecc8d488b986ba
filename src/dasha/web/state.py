"""The live camera behind the web page: one thread owns the ``Camera``, clients read snapshots.

A ``Camera`` is not thread-safe (the simulator, a serial lens, a grabbing Basler), so one
loop thread captures frames, applies the commands the HTTP handlers queue (controls, a
trigger, the simulator's conditions) and runs the AF cycles. After every frame, also the
frames grabbed inside a cycle, it publishes an immutable ``Snapshot`` (the state as JSON-
ready data plus the frame as JPEG) that any number of clients read without a lock on the
camera. Frames are paced to the camera's clock (``speed`` camera seconds per wall second),
so a cycle on the simulator, which renders faster than real time, is seen as it would
happen on the rig; real cameras block in ``grab`` and are never slowed down.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from dasha.camera.api import Camera
from dasha.camera.controls import (
    AF_ALGORITHMS,
    AF_MODES,
    AF_STATES,
    AF_TARGET_SELECT,
    CONTROL_NAMES,
)
from dasha.camera.views import CycleLimitError
from dasha.envs.rewards import SUITABLE_PEAK
from dasha.errors import ConfigError
from dasha.io import jsonable
from dasha.perception.histogram import histogram
from dasha.web.frames import RecentFrames

CANCELLED = "cancelled"  # the fail_reason of a cycle stopped by AfTrigger cancel
CYCLES_SHOWN = 3  # the current cycle and the last ones the page's timeline lists
COMMAND_TIMEOUT_S = 60.0  # a command waits for a running cycle to end (DASHA's first load)


@dataclass(frozen=True)
class Snapshot:
    """What clients read: ``state`` (JSON-ready) and the frame it describes as JPEG."""

    seq: int
    state: dict[str, Any]
    jpeg: bytes


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples as JSON values, recursively; NaN as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        value = jsonable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; the page shows "-"
    return value


def dasha_mover(move: dict[str, Any], start_frame: int) -> str:
    """Which agent made a move of a DASHA cycle (the camera API books them all as
    ``A_H/A_L``). The episode's reset sets the factory exposure and lens before its first
    frame; after that A_H is the only one that sets the exposure and A_L the only one that
    moves the lens (``dasha.envs.exposure`` / ``dasha.envs.focus``)."""
    if move["frame"] <= start_frame:
        return "reset"
    return "A_H" if move["what"] == "exposure" else "A_L"


@dataclass
class _Cycle:
    """The cycle running now: where its moves start in the camera's move log."""

    moves_from: int
    first_frame: int
    algorithm: str


@dataclass
class LiveCamera:
    """Runs ``cam`` on its own thread; see the module docstring."""

    cam: Camera
    speed: float = 1.0  # camera seconds per wall second; 0: as fast as the CPU renders
    max_fps: float = 25.0  # frames per wall second at most (idle frames cost CPU only)
    jpeg_quality: int = 80
    cycle_timeout_s: float = 5.0  # camera clock; a coarse-fine scan takes ~3 s on the simulator
    cycle_max_lens_moves: int = 60
    streams: int = 0  # MJPEG clients connected now (changed by the app, read by the page)
    _commands: queue.Queue[tuple[Callable[[Camera], Any], Future[Any]]] = field(
        default_factory=queue.Queue
    )
    _snapshot: Snapshot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _trigger: bool = False
    _current: _Cycle | None = None
    _moves_mark: int = 0
    _cycles_seen: int = 0
    _cycles_json: list[dict[str, Any]] = field(default_factory=list)
    _detection: dict[str, Any] | None = None
    _fps_times: list[float] = field(default_factory=list)
    _pace: tuple[float, float] | None = None  # (wall, camera) seconds at the pacing anchor
    _last_wall_s: float = 0.0
    error: str | None = None
    thread: threading.Thread | None = None

    # ------------------------------------------------------------ client side
    def start(self) -> None:
        self.cam.timeline = RecentFrames(self.cam.timeline)  # type: ignore[assignment]
        self.cam.capture()  # the first frame before any client asks
        self._publish()
        inner = self.cam.camera.on_frame
        # Frames grabbed inside a cycle are published too (the page watches the scan),
        # paced, and a cancel stops the cycle at its next frame like a timeout would.
        self.cam.camera.on_frame = lambda frame: self._on_frame(inner, frame)
        self.thread = threading.Thread(target=self._loop, name="dasha-live", daemon=True)
        self.thread.start()

    def snapshot(self) -> Snapshot:
        with self._lock:
            assert self._snapshot is not None, "start() publishes the first snapshot"
            return self._snapshot

    def call(self, fn: Callable[[Camera], Any], timeout_s: float = COMMAND_TIMEOUT_S) -> Any:
        """Run ``fn(cam)`` on the camera's thread; its exception (``ConfigError``) is raised here."""
        if self._stop.is_set():
            raise ConfigError("the live view is stopping")
        done: Future[Any] = Future()
        self._commands.put((fn, done))
        return done.result(timeout=timeout_s)

    def set_controls(self, controls: dict[str, Any]) -> None:
        """``Camera.set_controls`` on the camera's thread; ``AfTrigger`` does not block the
        caller: ``start`` queues a cycle, ``cancel`` stops the running one."""
        controls = dict(controls)
        trigger = controls.get("AfTrigger")
        if trigger == "cancel" and self._current is not None:
            self._cancel.set()  # the running cycle stops at its next frame
        if trigger == "start":
            controls.pop("AfTrigger")  # the loop runs it, so that the caller need not wait

        def apply(cam: Camera) -> None:
            cam.set_controls(controls)  # validates all first, as for a Python caller
            if trigger == "start":  # a cycle in any mode, as Camera.set_controls runs one
                self._trigger = True
            elif trigger == "cancel":
                self._trigger = False  # a trigger queued but not started yet

        self.call(apply)

    def set_conditions(self, changes: dict[str, Any]) -> None:
        """Move the simulated world: ``scene``, ``distance_cm``, ``illuminance_lux``."""
        allowed = ("scene", "distance_cm", "illuminance_lux")
        unknown = sorted(set(changes) - set(allowed))
        if unknown:
            raise ConfigError(
                f"unknown condition(s) {', '.join(unknown)}; valid: {', '.join(allowed)}"
            )
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "scene":
                if not isinstance(value, str):
                    raise ConfigError(f"scene must be a scene name, got {value!r}")
                clean[name] = value
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            else:
                clean[name] = float(value)

        def apply(cam: Camera) -> None:
            world = getattr(cam.rig.camera, "world", None)
            if world is None:
                raise ConfigError("scene, distance and illuminance exist on the simulator only")
            if "scene" in clean:
                from dasha.sim.scenes import load_scene

                load_scene(clean["scene"])  # a bad name fails before the world changes
            world.set_conditions(**clean)  # Conditions checks the ranges before replacing

        self.call(apply)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loop (a running cycle is cancelled at its next frame); the camera stays
        open: the caller closes it, which parks the lens."""
        self._stop.set()
        self._cancel.set()
        if self.thread is not None:
            self.thread.join(timeout_s)

    # ------------------------------------------------------------ camera thread
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_commands()
                if self._trigger:
                    self._trigger = False
                    self._cancel.clear()
                    self._start_cycle()
                    self.cam.autofocus_cycle(self.cycle_timeout_s, self.cycle_max_lens_moves)
                    self._end_cycle()
                else:
                    self.cam.capture()
                    self._end_cycle()
                self.error = None
            except Exception as exc:  # shown on the page; the loop keeps the camera alive
                self.error = f"{type(exc).__name__}: {exc}"
                self._current = None
                time.sleep(0.2)
            self._publish()
        self._run_commands()  # nobody waits forever on a command queued while stopping

    def _run_commands(self) -> None:
        while True:
            try:
                fn, done = self._commands.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                done.set_exception(ConfigError("the live view is stopping"))
                continue
            try:
                done.set_result(fn(self.cam))
            except BaseException as exc:
                done.set_exception(exc)
            self._moves_mark = len(self.cam.camera.moves)  # a user's move is no cycle's

    def _start_cycle(self) -> None:
        view = self.cam.camera
        algorithm = self.cam.controls["AfAlgorithm"]
        self._current = _Cycle(len(view.moves), view.frame_index, algorithm)

    def _end_cycle(self) -> None:
        if len(self.cam.cycles) > self._cycles_seen:
            if self._cancel.is_set() and self.cam.cycles[-1]["fail_reason"] == CANCELLED:
                self.cam.af_state = "Idle"  # picamera2: a cancelled scan goes back to Idle
            self._cancel.clear()
            self._current = None
        self._moves_mark = len(self.cam.camera.moves)

    def _on_frame(self, inner: Callable[[Any], None], frame: Any) -> None:
        inner(frame)
        scanning = self.cam.af_state == "Scanning"
        if scanning and self._current is None:  # a cycle continuous mode started itself
            view = self.cam.camera
            algorithm = self.cam.controls["AfAlgorithm"]
            self._current = _Cycle(self._moves_mark, view.frame_index - 1, algorithm)
        if scanning:
            self._publish()
            self._wait_for_pace()
            if self._cancel.is_set():
                raise CycleLimitError(CANCELLED)

    def _wait_for_pace(self) -> None:
        now_wall = time.perf_counter()
        now_cam = self.cam.camera.now_s()
        if self._pace is None or now_cam < self._pace[1]:
            self._pace = (now_wall, now_cam)
        wait_s = 1.0 / self.max_fps - (now_wall - self._last_wall_s)
        if self.speed > 0:
            ahead_s = (now_cam - self._pace[1]) / self.speed - (now_wall - self._pace[0])
            # Re-anchor when the camera clock jumped ahead (a long exposure) or the CPU fell
            # behind: frames then keep the camera's rate instead of bursting to catch up.
            if not -0.1 <= ahead_s <= 1.0:
                self._pace, ahead_s = (now_wall, now_cam), 0.0
            wait_s = max(wait_s, ahead_s)
        if wait_s > 0:
            self._stop.wait(wait_s)
        self._last_wall_s = time.perf_counter()

    def _publish(self) -> None:
        cam = self.cam
        if cam.last_image is None or not cam.timeline:
            return
        if cam.af_state != "Scanning":
            self._wait_for_pace()
        ok, jpeg = cv2.imencode(
            ".jpg", cam.last_image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        now = time.perf_counter()
        self._fps_times = [t for t in self._fps_times if now - t < 2.0] + [now]
        state = self._state()
        with self._lock:
            seq = self._snapshot.seq + 1 if self._snapshot else 0
            self._snapshot = Snapshot(seq, state, jpeg.tobytes() if ok else b"")

    def _state(self) -> dict[str, Any]:
        cam = self.cam
        meta = _plain(cam.timeline[-1])
        for recent in cam.timeline[-2:]:  # ``look`` writes into a frame after it was grabbed
            if recent.get("AfTargetClass") is not None or recent.get("AfTargetBox"):
                self._detection = _plain(
                    {
                        "frame": recent["FrameIndex"],
                        "class": recent.get("AfTargetClass"),
                        "score": recent.get("AfTargetScore"),
                        "box": recent.get("AfTargetBox"),
                        "brisque": recent.get("Brisque"),
                    }
                )
        hist = histogram(cam.last_image) if cam.last_image is not None else None
        lens = cam.rig.lens
        exp = cam.rig.camera.exposure_range_us
        span = len(self._fps_times) - 1
        fps = span / (self._fps_times[-1] - self._fps_times[0]) if span > 0 else 0.0
        return {
            "frame": meta,
            "af_state": cam.af_state,
            "controls": _plain(cam.controls),
            "lens": {
                "dpt": cam.lens_map.to_dpt(lens.focus),
                "device": lens.focus,
                "unit": lens.unit,
                "range_dpt": list(cam.lens_map.range_dpt),
                "safe_device": lens.safe_focus,
            },
            "exposure_us": cam.rig.camera.exposure_us,
            "exposure_range_us": [exp.min, exp.max],
            "frame_size": [cam.rig.camera.roi.width, cam.rig.camera.roi.height],
            "histogram": None
            if hist is None
            else {
                "counts": hist.counts.tolist(),
                "edges": hist.bin_edges.tolist(),
                "peak": hist.peak,
                "suitable": list(SUITABLE_PEAK),
            },
            "detection": self._detection,
            "current_cycle": self._current_json(),
            "cycles": self._cycles(),
            "sim": self._sim(),
            "fps": fps,
            "cycle_limits": {
                "timeout_s": self.cycle_timeout_s,
                "max_lens_moves": self.cycle_max_lens_moves,
            },
            "streams": self.streams,
            "error": self.error,
            "choices": {
                "AfMode": list(AF_MODES),
                "AfAlgorithm": list(AF_ALGORITHMS),
                "AfTargetSelect": list(AF_TARGET_SELECT),
                "AfState": list(AF_STATES),
                "controls": list(CONTROL_NAMES),
            },
        }

    def _move_json(self, move: dict[str, Any], algorithm: str, start_frame: int) -> dict[str, Any]:
        out = _plain(move)
        if algorithm == "dasha" and move["who"] == "A_H/A_L":
            out["who"] = dasha_mover(move, start_frame)
        if move["what"] == "lens":  # the page shows dioptres beside the device's unit
            out["from_dpt"] = self.cam.lens_map.to_dpt(move["from"])
            out["to_dpt"] = self.cam.lens_map.to_dpt(move["to"])
        return out

    def _current_json(self) -> dict[str, Any] | None:
        if self._current is None:
            return None
        moves = self.cam.camera.moves[self._current.moves_from :]
        return {
            "algorithm": self._current.algorithm,
            "first_frame": self._current.first_frame,
            "frames": self.cam.camera.frame_index - self._current.first_frame,
            "moves": [
                self._move_json(m, self._current.algorithm, self._current.first_frame)
                for m in moves
            ],
        }

    def _cycles(self) -> list[dict[str, Any]]:
        cycles = self.cam.cycles
        if len(cycles) != self._cycles_seen:  # records never change once appended
            self._cycles_seen = len(cycles)
            self._cycles_json = [
                {
                    **_plain({k: v for k, v in c.items() if k not in ("moves", "episode")}),
                    # DASHA's own stop (the episode's moves repeat ``moves``: not sent twice)
                    "episode_stop": c["episode"]["stop"] if "episode" in c else None,
                    "moves": [
                        self._move_json(m, c["algorithm"], c["start_frame"]) for m in c["moves"]
                    ],
                }
                for c in cycles[-CYCLES_SHOWN:]
            ]
        return self._cycles_json

    def _sim(self) -> dict[str, Any] | None:
        world = getattr(self.cam.rig.camera, "world", None)
        if world is None:
            return None
        from dasha.sim.scenes import BUILTIN_SCENES
        from dasha.sim.world import DISTANCE_RANGE_CM, ILLUMINANCE_RANGE_LUX

        c = world.conditions
        return {
            "scene": c.scene,
            "distance_cm": c.distance_cm,
            "illuminance_lux": c.illuminance_lux,
            "scenes": list(BUILTIN_SCENES),
            "trained_distance_cm": list(DISTANCE_RANGE_CM),
            "trained_illuminance_lux": list(ILLUMINANCE_RANGE_LUX),
        }
