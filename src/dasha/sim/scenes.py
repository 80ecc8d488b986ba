"""Scenes: real photographs with a target object (COCO class + box), as layers in linear light.

Built-in scenes come from photographs that ship with installed packages (scikit-image,
matplotlib), so nothing is downloaded. A user scene is any image file with a sidecar JSON
``{"class": "car", "box": [x1, y1, x2, y2]}`` (same stem, ``.json``), given by path.

A scene becomes two layers for the simulator: the *target* (alpha mask) and the
*background* (the photograph with the target region in-painted, so that blurring the
background does not smear a ghost of the target). The target mask is the box, softened
by a few pixels, except where the scene has real depth: ``stereo_motorcycle`` carries a
Middlebury disparity map, and its mask is the near (high-disparity) part of the box.

A *cut-out* scene (the scene library's, ``dasha.sim.library``) is a target photographed
on its own, with an alpha channel, placed over a separate background photograph: the
two layers are then two real depth planes, with no in-painting at all.

Framing follows the thin lens when the target has a physical size (``target_height_px``,
from ``Optics.image_height_px``): its image is that many pixels tall, wherever it stands.
Without one, a photograph is framed as the paper's rig saw it: the box with a fixed margin.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dasha.errors import ConfigError

Box = tuple[float, float, float, float]
_FEATHER_PX = 2.0
VIDEO_PREFIX = "video:"  # ``video:NAME#FRAME``: one frame of a video (``dasha.sim.video``)


@dataclass(frozen=True)
class Scene:
    """A photograph as reflectance in linear light, with its target object."""

    name: str
    reflectance: np.ndarray  # float32, 2-D, in [0, 1]
    target_class: str
    target_box: Box  # x1, y1, x2, y2 in the photograph's pixels
    target_mask: np.ndarray | None = None  # float32 alpha in [0, 1]; None: the box
    # A cut-out scene's own background photograph (linear reflectance); None: the target
    # is part of ``reflectance`` (a whole photograph), its surroundings in-painted.
    background: np.ndarray | None = None
    # The whole picture is the target, one depth plane (a video frame): it covers the
    # frame, with nothing in-painted and no second plane.
    single_plane: bool = False


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


# Scenes made in this process and loadable by a key of their own while registered (the
# library's well-posedness check judges scenes that are in no catalogue yet). Keys are
# unique, so two scenes of one name never share the world's cached layers.
_REGISTERED: dict[str, Scene] = {}
_REGISTRATIONS = itertools.count()


@contextlib.contextmanager
def registered_scene(scene: Scene) -> Iterator[str]:
    """Make ``scene`` loadable (``load_scene(key)``) for the ``with`` block; yields the key."""
    key = f"{scene.name}#registered-{next(_REGISTRATIONS)}"
    _REGISTERED[key] = scene
    try:
        yield key
    finally:
        del _REGISTERED[key]


def load_scene(name_or_path: str | Path) -> Scene:
    """A built-in scene by name, a library scene by id, or a user scene: an image file
    beside ``<stem>.json``."""
    key = str(name_or_path)
    if key.startswith(VIDEO_PREFIX):
        from dasha.sim.video import video_frame_scene

        return video_frame_scene(key)
    if key in BUILTIN_SCENES:
        return _builtin(key)
    if key in _REGISTERED:
        return _REGISTERED[key]
    path = Path(key)
    if not path.suffix:
        from dasha.sim.library import is_library_scene, load_library_scene

        if is_library_scene(key):
            return load_library_scene(key)
        raise _unknown_scene(key)
    return _load_user_scene(path)


def check_scene_name(name_or_path: str | Path) -> None:
    """Raise ``ConfigError`` now, before a long run starts, for a scene ``load_scene`` would
    refuse later (library scenes are only looked up: their photos may need a download)."""
    key = str(name_or_path)
    if key in BUILTIN_SCENES or key in _REGISTERED:
        return
    if not Path(key).suffix:
        from dasha.sim.library import is_library_scene

        if not is_library_scene(key):
            raise _unknown_scene(key)
        return
    _load_user_scene(Path(key))


def _unknown_scene(key: str) -> ConfigError:
    return ConfigError(
        f"unknown scene {key!r}: use a built-in scene ({', '.join(BUILTIN_SCENES)}), "
        "a library scene (`dasha scenes` lists them) "
        "or the path of an image file with a sidecar JSON"
    )


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
    if min(h, w) < MIN_SCENE_PX:
        raise ConfigError(
            f"{path} is {w}x{h} px: a scene needs at least {MIN_SCENE_PX} px each way"
        )
    if len(box) != 4 or not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
        raise ConfigError(
            f"{sidecar}: box {list(box)} must be [x1, y1, x2, y2] inside the {w}x{h} image"
        )
    if min(box[2] - box[0], box[3] - box[1]) < MIN_BOX_PX:
        raise ConfigError(
            f"{sidecar}: box {list(box)} is smaller than {MIN_BOX_PX:g} px on a side; "
            "a detector cannot find a target that small"
        )
    return Scene(path.stem, srgb_to_linear(image), cls, (box[0], box[1], box[2], box[3]))


# ---------------------------------------------------------------- framing for a sensor
# A user's photograph and its target box, at the least (smaller ones divide by ~0 when framed).
MIN_SCENE_PX = 16
MIN_BOX_PX = 4.0

# The camera frames the target with this much room around its box (fraction of the box
# size): a photograph's own tight framing puts the object at the edges, where a
# detector trained on whole scenes is weakest.
FRAMING_MARGIN = 0.6


def _view_around(
    box: Box, aspect: float, margin: float, view_height_px: float | None = None
) -> tuple[int, int, int, int]:
    """x0, y0, width, height of the view: the box plus margin, widened to the sensor aspect.

    ``view_height_px`` (in photograph pixels) fixes the view's height instead, i.e. the
    magnification: the box then covers ``box height / view height`` of the frame.
    """
    x1, y1, x2, y2 = box
    if view_height_px is not None:
        ch = max(float(view_height_px), 2.0)
        cw = ch * aspect
    else:
        bw, bh = (x2 - x1) * (1 + margin), (y2 - y1) * (1 + margin)
        cw, ch = (bw, bw / aspect) if bw / bh >= aspect else (bh * aspect, bh)
    return round((x1 + x2 - cw) / 2), round((y1 + y2 - ch) / 2), round(cw), round(ch)


def frame_scene(
    scene: Scene,
    width: int,
    height: int,
    margin: float = FRAMING_MARGIN,
    target_height_px: float | None = None,
) -> SceneLayers:
    """The scene's two layers as the sensor region sees them.

    ``target_height_px``: the height of the target's image (thin-lens magnification); a
    cut-out is scaled to it, a photograph's view is chosen so that its box is that tall.
    ``None`` keeps the paper rig's framing (the box plus ``margin``).
    """
    if scene.single_plane:
        plane = cover(scene.reflectance, width, height)
        alpha = np.ones((height, width), np.float32)
        box = (0.0, 0.0, float(width), float(height))
        return SceneLayers(scene.name, scene.target_class, box, alpha, plane, plane)
    if scene.background is not None:
        return _frame_cutout(scene, width, height, target_height_px)
    return _frame_photograph(scene, width, height, margin, target_height_px)


def _frame_photograph(
    scene: Scene, width: int, height: int, margin: float, target_height_px: float | None
) -> SceneLayers:
    """View the photograph as a print on a uniform wall, the target centred with room around it.

    Where the view extends past the photograph, the wall (the photograph's mean
    reflectance) fills in; the target layer is empty there.
    """
    box_h = scene.target_box[3] - scene.target_box[1]
    view_h = None if target_height_px is None else box_h * height / max(target_height_px, 1.0)
    x0, y0, cw, ch = _view_around(scene.target_box, width / height, margin, view_h)
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


# A cut-out without a physical size fills this fraction of the frame height.
CUTOUT_DEFAULT_HEIGHT_FRACTION = 0.5
# ... and never more than this fraction of the frame width (a long train stays in view).
_CUTOUT_MAX_WIDTH_FRACTION = 0.96


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` to cover ``width`` x ``height`` and crop the middle (no distortion)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def _frame_cutout(
    scene: Scene, width: int, height: int, target_height_px: float | None
) -> SceneLayers:
    """The cut-out, scaled to its image height and centred, in front of its background.

    The background is a plane large enough to fill the view at any distance (a wall, a
    landscape): its photograph covers the frame. The alpha is the cut-out's own, so the
    occlusion edge is the object's silhouette and blurs with the target's defocus.
    """
    assert scene.background is not None
    mask = scene.target_mask if scene.target_mask is not None else np.ones_like(scene.reflectance)
    if target_height_px is None:
        target_height_px = CUTOUT_DEFAULT_HEIGHT_FRACTION * height
    h, w = scene.reflectance.shape[:2]
    scale = min(target_height_px / h, _CUTOUT_MAX_WIDTH_FRACTION * width / w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    target = cv2.resize(scene.reflectance, (tw, th), interpolation=interpolation)
    alpha_small = np.clip(cv2.resize(mask, (tw, th), interpolation=interpolation), 0.0, 1.0)
    alpha = np.zeros((height, width), np.float32)
    layer = np.zeros((height, width), np.float32)
    x0, y0 = (width - tw) // 2, (height - th) // 2
    # A target taller than the frame is cropped like the frame crops it.
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    cw, ch = min(tw - sx0, width - dx0), min(th - sy0, height - dy0)
    alpha[dy0 : dy0 + ch, dx0 : dx0 + cw] = alpha_small[sy0 : sy0 + ch, sx0 : sx0 + cw]
    layer[dy0 : dy0 + ch, dx0 : dx0 + cw] = target[sy0 : sy0 + ch, sx0 : sx0 + cw]
    ys, xs = np.nonzero(alpha > 0.5)
    if xs.size == 0:
        raise ConfigError(f"scene {scene.name!r}: the target is too small to see at this size")
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    background = cover(scene.background, width, height)
    return SceneLayers(scene.name, scene.target_class, box, alpha, layer * alpha, background)
