"""Scenes: real photographs with a target object (COCO class + box), as layers in linear light.

Built-in scenes come from photographs that ship with installed packages (scikit-image,
matplotlib), so nothing is downloaded. A user scene is any image file with a sidecar JSON
``{"class": "car", "box": [x1, y1, x2, y2]}`` (same stem, ``.json``), given by path.

A scene becomes two layers for the simulator: the *target* (alpha mask) and the
*background* (the photograph with the target region in-painted, so that blurring the
background does not smear a ghost of the target). The target mask is the box, softened
by a few pixels, except where the scene has real depth: ``stereo_motorcycle`` carries a
Middlebury disparity map, and its mask is the near (high-disparity) part of the box.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dasha.errors import ConfigError

Box = tuple[float, float, float, float]
_FEATHER_PX = 2.0


@dataclass(frozen=True)
class Scene:
    """A photograph as reflectance in linear light, with its target object."""

    name: str
    reflectance: np.ndarray  # float32, 2-D, in [0, 1]
    target_class: str
    target_box: Box  # x1, y1, x2, y2 in the photograph's pixels
    target_mask: np.ndarray | None = None  # float32 alpha in [0, 1]; None: the box


@dataclass(frozen=True)
class SceneLayers:
    """A scene framed for a sensor region: the two layers the renderer blurs separately."""

    name: str
    target_class: str
    target_box: Box  # in frame pixels
    alpha: np.ndarray  # target coverage, float32 in [0, 1]
    target: np.ndarray  # reflectance * alpha (premultiplied)
    background: np.ndarray  # reflectance with the target in-painted


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """sRGB-encoded image (uint8 or float in [0,1]) -> linear relative luminance in [0, 1]."""
    x = image.astype(np.float32)
    if image.dtype == np.uint8:
        x /= 255.0
    elif image.dtype == np.uint16:
        x /= 65535.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    if lin.ndim == 3:
        lin = lin[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.clip(lin, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- built-in catalogue
# Boxes are YOLOv3-tiny's own detections on the sharp photographs (tests check that the
# default detector finds each target when in focus and loses it when defocused).
def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())


def _motorcycle_right_view() -> np.ndarray:
    import skimage.data

    return np.asarray(skimage.data.stereo_motorcycle()[1])


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"matplotlib's sample image {path} is missing or unreadable")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _motorcycle() -> Scene:
    import skimage.data

    left, _right, disparity = skimage.data.stereo_motorcycle()
    box: Box = (106.0, 76.0, 680.0, 470.0)
    # The motorcycle stands in front of the wall: in its box, the near pixels (Middlebury
    # disparity >= 30 px, i.e. roughly the nearer half of the scene's depth) are the target.
    near = np.nan_to_num(disparity, posinf=0.0) >= 30.0
    mask = np.zeros(near.shape, np.float32)
    x1, y1, x2, y2 = (int(v) for v in box)
    mask[y1:y2, x1:x2] = near[y1:y2, x1:x2]
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return Scene("motorcycle", srgb_to_linear(left), "motorbike", box, mask)


def _photo(name: str, loader: Callable[[], np.ndarray], cls: str, box: Box) -> Callable[[], Scene]:
    return lambda: Scene(name, srgb_to_linear(loader()), cls, box)


BUILTIN_SCENES: dict[str, Callable[[], Scene]] = {
    "motorcycle": _motorcycle,
    "cameraman": _photo("cameraman", lambda: _skimage("camera"), "person", (12, 60, 284, 512)),
    "grace_hopper": _photo("grace_hopper", _grace_hopper, "person", (45, 84, 500, 585)),
    "motorcycle_right": _photo(
        "motorcycle_right", _motorcycle_right_view, "motorbike", (76, 83, 621, 454)
    ),
}


@functools.lru_cache(maxsize=32)
def _builtin(name: str) -> Scene:
    return BUILTIN_SCENES[name]()


def load_scene(name_or_path: str | Path) -> Scene:
    """A built-in scene by name, or a user scene: an image file beside ``<stem>.json``."""
    key = str(name_or_path)
    if key in BUILTIN_SCENES:
        return _builtin(key)
    path = Path(key)
    if not path.suffix:
        raise ConfigError(
            f"unknown scene {key!r}: use a built-in scene ({', '.join(BUILTIN_SCENES)}) "
            "or the path of an image file with a sidecar JSON"
        )
    return _load_user_scene(path)


def _load_user_scene(path: Path) -> Scene:
    if not path.is_file():
        raise ConfigError(f"scene image {path} does not exist")
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise ConfigError(
            f"scene {path} has no sidecar {sidecar.name}: write "
            '{"class": "car", "box": [x1, y1, x2, y2]} (target class and box in pixels) beside it'
        )
    try:
        meta = json.loads(sidecar.read_text())
        cls = str(meta["class"])
        box = tuple(float(v) for v in meta["box"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f'{sidecar}: expected {{"class": str, "box": [x1, y1, x2, y2]}} ({exc})'
        ) from exc
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ConfigError(f"cannot read {path} as an image (PNG, JPEG, TIFF, BMP...)")
    if image.ndim == 3:
        image = cv2.cvtColor(
            image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        )
    h, w = image.shape[:2]
    if len(box) != 4 or not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
        raise ConfigError(
            f"{sidecar}: box {list(box)} must be [x1, y1, x2, y2] inside the {w}x{h} image"
        )
    return Scene(path.stem, srgb_to_linear(image), cls, (box[0], box[1], box[2], box[3]))


# ---------------------------------------------------------------- framing for a sensor
# The camera frames the target with this much room around its box (fraction of the box
# size): a photograph's own tight framing puts the object at the edges, where a
# detector trained on whole scenes is weakest.
FRAMING_MARGIN = 0.6


def _view_around(box: Box, aspect: float, margin: float) -> tuple[int, int, int, int]:
    """x0, y0, width, height of the view: the box plus margin, widened to the sensor aspect."""
    x1, y1, x2, y2 = box
    bw, bh = (x2 - x1) * (1 + margin), (y2 - y1) * (1 + margin)
    cw, ch = (bw, bw / aspect) if bw / bh >= aspect else (bh * aspect, bh)
    return round((x1 + x2 - cw) / 2), round((y1 + y2 - ch) / 2), round(cw), round(ch)


def frame_scene(
    scene: Scene, width: int, height: int, margin: float = FRAMING_MARGIN
) -> SceneLayers:
    """View the photograph as a print on a uniform wall, the target centred with room around it.

    Where the view extends past the photograph, the wall (the photograph's mean
    reflectance) fills in; the target layer is empty there.
    """
    x0, y0, cw, ch = _view_around(scene.target_box, width / height, margin)
    h, w = scene.reflectance.shape[:2]
    pad = max(0, -x0, -y0, x0 + cw - w, y0 + ch - h)
    wall = float(scene.reflectance.mean())

    def fit(image: np.ndarray, fill: float) -> np.ndarray:
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        view = padded[y0 + pad : y0 + pad + ch, x0 + pad : x0 + pad + cw]
        return cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA)

    sx, sy = width / cw, height / ch
    x1, y1, x2, y2 = scene.target_box
    box = (
        float(np.clip((x1 - x0) * sx, 0, width)),
        float(np.clip((y1 - y0) * sy, 0, height)),
        float(np.clip((x2 - x0) * sx, 0, width)),
        float(np.clip((y2 - y0) * sy, 0, height)),
    )
    reflectance = fit(scene.reflectance, wall)
    if scene.target_mask is not None:
        alpha = fit(scene.target_mask, 0.0)
    else:
        alpha = np.zeros((height, width), np.float32)
        alpha[round(box[1]) : round(box[3]), round(box[0]) : round(box[2])] = 1.0
    alpha = np.clip(cv2.GaussianBlur(alpha, (0, 0), _FEATHER_PX), 0.0, 1.0)
    hole = (alpha > 0.02).astype(np.uint8)
    # 16-bit in-painting: OpenCV's float path overshoots far outside [0, 1].
    filled = cv2.inpaint(np.rint(reflectance * 65535).astype(np.uint16), hole, 5, cv2.INPAINT_TELEA)
    background = filled.astype(np.float32) / 65535.0
    return SceneLayers(scene.name, scene.target_class, box, alpha, reflectance * alpha, background)
