"""``dasha.open_camera``: a camera you focus from Python, picamera2-style.

    import dasha
    with dasha.open_camera("sim", scene="motorcycle", distance_cm=120) as cam:
        cam.set_controls({"AfMode": "auto", "AfAlgorithm": "coarse-fine"})
        ok = cam.autofocus_cycle(timeout_s=5.0)   # True: Focused; False: Failed or timeout
        frame = cam.capture()                     # frame.image, frame.metadata

Every frame's metadata (``AfState``, ``LensPosition`` in dioptres, ``ExposureTime`` in
us, ``SensorTimestamp`` in ns on the camera's clock, the contrast figure of merit, the
target's detection score and box, BRISQUE where it was computed, and on the simulator
its ground truth under ``Truth``) is kept in ``Camera.timeline``; every AF cycle, with
each move it made (who, from, to, detection, score, BRISQUE, reward) and why it stopped,
in ``Camera.cycles``. A cycle is bounded by its timeout (camera clock) and lens-move
budget; on Failed the lens is left at the sharpest position the cycle saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from dasha.camera.continuous import LIGHT, TARGET_FOUND, Retrigger, RetriggerTunables, contrast
from dasha.camera.controls import DEFAULT_CONTROLS, validate_controls
from dasha.camera.cycle import run_cycle
from dasha.camera.views import WatchedCamera, WatchedLens
from dasha.errors import ConfigError
from dasha.hardware.base import Frame, Range
from dasha.hardware.session import Rig, open_rig
from dasha.perception.detectors.base import Detection
from dasha.perception.histogram import histogram
from dasha.sim.optics import LensCalibration

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CapturedFrame:
    """An image and its metadata (picamera2's ``capture_request`` pair)."""

    image: np.ndarray
    metadata: dict[str, Any]
    raw: Frame


class LensMap:
    """Dioptres <-> the lens's device unit, at the hardware edge only.

    Volts go through a ``LensCalibration`` (the simulator's nominal one, or the default
    estimate of the Varioptic curve for a real liquid lens); any other unit is mapped
    linearly onto 0..10 dpt (a placeholder until that lens has a calibration).
    """

    def __init__(self, lens_range: Range, calibration: LensCalibration | None) -> None:
        self.range = lens_range
        self.calibration = calibration if lens_range.unit == "V" else None
        if self.calibration is None and lens_range.unit == "V":
            self.calibration = LensCalibration()

    def to_dpt(self, value: float) -> float:
        if self.calibration is not None:
            return self.calibration.power_dpt(value)
        span = self.range.max - self.range.min
        return 10.0 * (value - self.range.min) / span if span else 0.0

    def to_device(self, dpt: float) -> float:
        if self.calibration is not None:
            return self.range.clamp(self.calibration.voltage_for_power(dpt))
        return self.range.clamp(self.range.min + dpt / 10.0 * (self.range.max - self.range.min))

    @property
    def range_dpt(self) -> tuple[float, float]:
        return self.to_dpt(self.range.min), self.to_dpt(self.range.max)


def select_target(found: Sequence[Detection], how: str, frame_size: tuple[int, int]) -> Detection:
    """AfTargetSelect among the detections: ``confident`` (highest score), ``largest``
    (box area) or ``centre`` (box centre nearest the frame's; ``frame_size`` is w, h)."""
    w, h = frame_size
    pick: dict[str, Callable[[Detection], float]] = {
        "confident": lambda d: d.score,
        "largest": lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]),
        "centre": lambda d: (
            -float(np.hypot((d.box[0] + d.box[2]) / 2 - w / 2, (d.box[1] + d.box[3]) / 2 - h / 2))
        ),
    }
    return max(found, key=pick[how])


class Camera:
    """A rig driven by controls; see the module docstring. Use it as a context manager:
    closing it (also on an error or Ctrl-C) parks the lens and closes the devices."""

    def __init__(
        self,
        rig: Rig,
        *,
        scenario: Any = None,
        tunables: RetriggerTunables | None = None,
        seed: int = 0,
        policy: str | Path | None = None,
    ) -> None:
        self.rig = rig
        self.policy = policy  # AfAlgorithm dasha's pair: a run directory or a shipped name
        self.camera = WatchedCamera(rig.camera, self._observe)
        self.lens = WatchedLens(rig.lens, self.camera)
        world = getattr(rig.camera, "world", None)
        calibration = world.nominal_optics.calibration if world is not None else None
        self.lens_map = LensMap(rig.lens.focus_range, calibration)
        self.controls: dict[str, Any] = dict(DEFAULT_CONTROLS)
        self.af_state = "Idle"
        self.timeline: list[dict[str, Any]] = []
        self.cycles: list[dict[str, Any]] = []
        self.retrigger = Retrigger(tunables)
        self.seed = seed
        self.scenario = scenario
        self._senses: Any = None
        self._dasha: Any = None
        self.last_image: np.ndarray | None = None
        self.last_frame: Frame | None = None  # what a warm dasha re-trigger starts from
        self.absent_since_failure = False
        self.window: Box | None = None  # what continuous mode watches (the target's box once seen)
        if scenario is not None:
            if world is None:
                raise ConfigError("scenarios run on the simulator only: open_camera('sim', ...)")
            self.camera.before_grab = self._advance_scenario

    # ---------------------------------------------------------------- controls
    def set_controls(self, controls: Mapping[str, Any]) -> None:
        """Validate all, then apply (nothing changes when one is invalid)."""
        roi = self.rig.camera.roi
        exp = self.rig.camera.exposure_range_us
        valid = validate_controls(
            controls,
            frame_size=(roi.width, roi.height),
            lens_range_dpt=self.lens_map.range_dpt,
            exposure_range_us=(exp.min, exp.max),
        )
        trigger = valid.pop("AfTrigger", None)
        merged = {**self.controls, **valid}
        if merged["AfAlgorithm"] == "dasha" and merged.get("AfRange") is not None:
            # Refused, not ignored: A_L's actions are trained over the lens's full range
            # (its action space), so a limit would change the policy's inputs and outputs.
            raise ConfigError(
                "AfRange is not honoured by AfAlgorithm 'dasha' (A_L acts over the full lens "
                "range it was trained on); unset it (AfRange None) or use a classical "
                "AfAlgorithm: coarse-fine, hill-climb, golden, sweep"
            )
        self.controls.update(valid)
        if "AfRange" in valid:
            if valid["AfRange"] is None:
                self.lens.limits = self.lens.full_range
            else:
                low, high = (self.lens_map.to_device(d) for d in valid["AfRange"])
                self.lens.limits = Range(min(low, high), max(low, high), self.lens.unit)
        if "AfTarget" in valid:
            self._senses = self._dasha = None  # rebuilt for the new target
        if "AfWindows" in valid:
            self.window = None
        if "LensPosition" in valid:
            if self.controls["AfMode"] != "manual":
                raise ConfigError("LensPosition needs AfMode 'manual' (picamera2's rule)")
            self.camera.who = "user"
            self.lens.set_focus(self.lens_map.to_device(valid["LensPosition"]), park=True)
        if "ExposureTime" in valid:
            self.controls["AeEnable"] = bool(valid.get("AeEnable", False))
            self.camera.who = "user"
            self.camera.set_exposure_us(valid["ExposureTime"])
        if valid.get("AfMode") == "continuous":
            self.retrigger.reference_contrast = None  # the first capture runs a cycle
        if trigger == "start":
            self.autofocus_cycle()
        elif trigger == "cancel":
            self.af_state = "Idle"

    # ---------------------------------------------------------------- frames
    def capture(self, timeout_s: float = 5.0) -> CapturedFrame:
        """The next frame; in continuous mode it is watched, and a re-trigger runs a cycle
        (its frames are in ``timeline``) before the frame after it is returned."""
        frame = self.camera.grab(timeout_s)
        if self.controls["AfMode"] == "continuous":
            reason = self._watch(frame)
            if reason is not None:
                t = self.retrigger.tunables
                self.autofocus_cycle(
                    t.cycle_timeout_s,
                    t.cycle_max_lens_moves,
                    reason=reason,
                    exposure_only=reason == LIGHT,
                )
                frame = self.camera.grab(timeout_s)
                self._watch(frame)
        return CapturedFrame(frame.as_uint8(), self.timeline[-1], frame)

    def capture_metadata(self) -> dict[str, Any]:
        return self.capture().metadata

    def autofocus_cycle(
        self,
        timeout_s: float = 2.0,
        max_lens_moves: int = 60,
        *,
        reason: str = "trigger",
        exposure_only: bool = False,
    ) -> bool:
        """One AF cycle with ``AfAlgorithm``: True when Focused; False on Failed (its
        reason in ``cycles[-1]['fail_reason']``), including timeout and move budget."""
        record = run_cycle(self, timeout_s, max_lens_moves, reason, exposure_only)
        self.absent_since_failure = False
        self.cycles.append(record)
        return record["state"] == "Focused"

    # ---------------------------------------------------------------- internals
    def af_window(self, image: np.ndarray) -> Box:
        """The union of AfWindows, else the target's box once seen, else the central 50 %."""
        if self.window is not None and not self.controls["AfWindows"]:
            return self.window
        return self.scene_window(image)

    def scene_window(self, image: np.ndarray) -> Box:
        """Where continuous mode looks for a new scene: the union of AfWindows, else the
        central 50 % (never a target's box, which the target itself may walk out of)."""
        windows = self.controls["AfWindows"]
        if windows:
            xs1, ys1, xs2, ys2 = zip(*windows, strict=True)
            return (min(xs1), min(ys1), max(xs2), max(ys2))
        from dasha.baselines.af_base import central_window

        return central_window(image.shape[1], image.shape[0])

    def senses(self) -> Any:
        if self._senses is None:
            from dasha.perception.senses import Senses

            target = self.controls["AfTarget"]
            self._senses = Senses(
                encoder=None,
                detector="mtcnn" if target == "face" else "yolo",
                target=target,
            )
        return self._senses

    def look(self, frame: Frame) -> dict[str, Any]:
        """The target check of ``frame`` (detector, AfTargetSelect, BRISQUE of the box)."""
        from dasha.perception.brisque import brisque_reward_score

        target = self.controls["AfTarget"] or frame.meta.get("target_class")
        image = frame.as_uint8()
        senses = self.senses()
        detector = senses.detector
        detector.target = target
        found = detector.detect(image)
        seen: dict[str, Any] = {"AfTargetClass": target, "AfTargetScore": 0.0, "AfTargetBox": None}
        if found:
            h, w = image.shape
            best = select_target(found, self.controls["AfTargetSelect"], (w, h))
            box = tuple(float(v) for v in best.box)
            seen.update(
                AfTargetScore=float(best.score),
                AfTargetBox=list(box),
                Brisque=float(brisque_reward_score(image, box, senses.backend)),
            )
        if self.timeline:
            self.timeline[-1].update(seen)
        return seen

    def dasha_agents(self) -> tuple[Any, Any]:
        """The hierarchical episode over this rig and its policies (``policy``: a run
        directory or a shipped pair's name; default the shipped pre-trained pair; built once).

        A_L acts over the lens's full range (its action space): ``set_controls`` refuses
        AfRange with ``dasha``.
        """
        if self._dasha is None:
            from dasha.agents.run import Policies
            from dasha.envs.config import EpisodeConfig
            from dasha.envs.hierarchical import HierarchicalEpisode
            from dasha.perception.senses import Senses

            policies = Policies.load(self.policy)
            config = policies.episode(
                # handover="always": like the classical path, A_L focuses from whatever
                # exposure A_H gave; the record keeps whether its histogram was suitable
                EpisodeConfig(
                    randomize=False,
                    target=self.controls["AfTarget"],
                    cache_size=0,
                    handover="always",
                )
            )
            senses = Senses(config.encoder, config.detector, config.target)
            limits, self.lens.limits = self.lens.limits, self.lens.full_range
            episode = HierarchicalEpisode(
                config, rig=lambda: (self.camera, self.lens), senses=senses
            )
            self.lens.limits = limits
            policies.check(episode)
            self._dasha = (episode, policies)
        return self._dasha

    def _advance_scenario(self) -> None:
        world = self.rig.camera.world  # type: ignore[attr-defined]
        from dasha.sim.scenarios import resolve_scene

        wanted = self.scenario.conditions_at(self.camera.frame_index)
        if "scene" in wanted:
            wanted["scene"] = resolve_scene(wanted["scene"])
        current = {k: getattr(world.conditions, k) for k in wanted}
        if wanted != current:
            world.set_conditions(**wanted)

    def _observe(self, frame: Frame) -> None:
        self.last_frame = frame
        image = self.last_image = frame.as_uint8()
        box = self.af_window(image)
        meta: dict[str, Any] = {
            "FrameIndex": self.camera.frame_index - 1,
            "SensorTimestamp": round(frame.timestamp_s * 1e9),
            "AfMode": self.controls["AfMode"],
            "AfAlgorithm": self.controls["AfAlgorithm"],
            "AfState": self.af_state,
            "LensPosition": self.lens_map.to_dpt(self.rig.lens.focus),
            "LensDevice": {"value": self.rig.lens.focus, "unit": self.rig.lens.unit},
            "ExposureTime": round(frame.exposure_us),
            "AnalogueGain": float(10 ** (frame.gain_db / 20)),
            "AfWindow": list(box),
            "FocusFoM": contrast(image, box),
            "HistogramPeak": float(histogram(image).peak),
            "AfTargetScore": None,
            "AfTargetBox": None,
            "Brisque": None,
        }
        if "blur_px" in frame.meta:
            keys = ("scene", "distance_cm", "illuminance_lux", "blur_px", "in_focus", "in_focus_v")
            meta["Truth"] = {k: frame.meta[k] for k in keys}
        self.timeline.append(meta)

    def _watch(self, frame: Frame) -> str | None:
        meta = self.timeline[-1]
        if self.retrigger.reference_contrast is None:
            return "start"
        seen = None
        every = self.retrigger.tunables.detect_every_frames
        targeted = self.controls["AfTarget"] is not None or self.controls["AfAlgorithm"] == "dasha"
        if targeted and meta["FrameIndex"] % every == 0:
            seen = bool(self.look(frame)["AfTargetBox"])
            if self.af_state == "Failed":
                # Failed: re-run once the target, checked absent since, is seen again (not
                # every check while a blurred target the cycle could not focus stays put).
                if seen and self.absent_since_failure:
                    meta["Retrigger"] = TARGET_FOUND
                    return TARGET_FOUND
                self.absent_since_failure |= not seen
                seen = None  # already lost: a Failed cycle is not re-run while it stays away
        image = frame.as_uint8()
        reason = self.retrigger.update(
            image, self.af_window(image), meta["HistogramPeak"], seen, self.scene_window(image)
        )
        meta["Retrigger"] = reason
        return reason

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Park the lens and close the devices (``Rig.close``)."""
        self.rig.close()

    def __enter__(self) -> Camera:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rig.__exit__(exc_type, exc, tb)  # Rig's rule: the original exception wins


LENS_OPTION_NAMES = ("port", "timeout_s", "baudrate", "retries")


def open_camera(
    backend: str = "sim",
    *,
    lens: str | None = None,
    scenario: str | None = None,
    tunables: RetriggerTunables | None = None,
    lens_options: Mapping[str, Any] | None = None,
    policy: str | Path | None = None,
    **options: Any,
) -> Camera:
    """Open a camera (``sim``, ``basler``, ``uvc``, ``replay``) and its lens (default: the
    simulator's for ``sim``, the webcam's own for ``uvc``); ``options`` go to the camera
    backend (e.g. ``scene``, ``distance_cm``, ``seed`` on the simulator), ``port`` and
    ``lens_options`` to the lens. ``scenario``: a time-varying sim scene
    (``dasha.sim.scenarios.SCENARIOS``). ``policy``: the policies ``AfAlgorithm`` dasha
    runs (a ``dasha pretrain``/``dasha train`` run directory or a shipped pair's name,
    ``dasha.agents.SHIPPED_POLICIES``; default the shipped pre-trained pair)."""
    lens_opts = dict(lens_options or {})
    for name in LENS_OPTION_NAMES:
        if name in options:
            lens_opts[name] = options.pop(name)
    if lens is None:
        lens = {"sim": "sim", "uvc": "uvc", "replay": "replay"}.get(backend)
        if lens is None:
            raise ConfigError(
                f"the {backend!r} camera needs a lens: lens='varioptic-serial', port=..."
            )
    scripted = None
    if scenario is not None:
        from dasha.sim.scenarios import scenario as find_scenario

        scripted = find_scenario(scenario)
        options = {**scripted.base, **options}
    seed = int(options.get("seed") or 0)
    start = time.perf_counter()
    rig = open_rig(backend, lens, camera_options=options, lens_options=lens_opts)
    try:
        cam = Camera(rig, scenario=scripted, tunables=tunables, seed=seed, policy=policy)
    except BaseException:
        rig.close()
        raise
    cam.open_s = time.perf_counter() - start  # type: ignore[attr-defined]
    return cam
