"""A real video as a scene's content: each camera frame sees the next frame of the video.

The video is OpenCV's ``vtest.avi`` (pedestrians walking on a pavement, 10 fps), a member
of Debian's ``opencv-doc``, fetched and SHA-256-pinned by ``dasha.sim.sources``. A video
has no depth map, so each frame is *one depth plane* at the scenario's ``distance_cm``
(``Scene.single_plane``): the whole frame is the target (class ``person``) and its blur
follows the lens like any target's; the detector then finds the pedestrians in it, and
its boxes are what ``AfTarget`` / ``AfTargetSelect`` choose among. Frame ``k`` of the
camera shows frame ``k mod n`` of the video (the video and the simulated camera both run
at ~10 fps, so people walk at about their real speed).

Frames are decoded in order and only a few are kept: the camera asks for them in order,
so a decoder that only ever reads forwards (reopened when asked to go back) costs one
decode per camera frame and a few MB of memory.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from dasha.errors import ConfigError
from dasha.sim.scenes import VIDEO_PREFIX, Scene, srgb_to_linear
from dasha.sim.sources import OPENCV_DOC, VTEST_AVI, ensure_members

VIDEO_TARGET_CLASS = "person"
_KEEP_FRAMES = 8


def video_path(name: str) -> Path:
    """The cached file of a known video (fetched on first use)."""
    if name != "vtest":
        raise ConfigError(f"unknown video {name!r}; known videos: vtest")
    member, digest = VTEST_AVI
    return ensure_members(OPENCV_DOC, {member: digest}) / member


def video_scene_name(name: str, frame: int) -> str:
    return f"{VIDEO_PREFIX}{name}#{frame}"


class VideoReader:
    """Forward-only decoder with a small memory of recent frames (grayscale uint8)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._capture: cv2.VideoCapture | None = None
        self._next = 0
        self._recent: dict[int, np.ndarray] = {}
        capture = cv2.VideoCapture(str(path))
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        if self.frame_count <= 0:
            raise ConfigError(f"{path} cannot be read as a video (OpenCV found no frames)")

    def frame(self, index: int) -> np.ndarray:
        index %= self.frame_count
        if index in self._recent:
            return self._recent[index]
        if self._capture is None or index < self._next:
            self._capture = cv2.VideoCapture(str(self.path))
            self._next = 0
        while self._next <= index:
            ok, image = self._capture.read()
            if not ok:
                raise ConfigError(f"{self.path}: frame {self._next} cannot be decoded")
            self._recent[self._next] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            self._recent.pop(self._next - _KEEP_FRAMES, None)
            self._next += 1
        return self._recent[index]


@functools.lru_cache(maxsize=4)
def video_reader(name: str) -> VideoReader:
    return VideoReader(video_path(name))


def video_frame_scene(key: str) -> Scene:
    """The scene ``video:NAME#FRAME``: that frame as one depth plane, target ``person``."""
    name, _, frame = key.removeprefix(VIDEO_PREFIX).partition("#")
    if not frame.isdigit():
        raise ConfigError(f"video scene {key!r} must read {VIDEO_PREFIX}NAME#FRAME")
    image = video_reader(name).frame(int(frame))
    h, w = image.shape
    box = (0.0, 0.0, float(w), float(h))
    return Scene(key, srgb_to_linear(image), VIDEO_TARGET_CLASS, box, single_plane=True)
