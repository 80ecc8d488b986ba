"""Is a scene well-posed for a detector? And the build of the scene library's catalogue.

A scene is *well-posed* when an autofocus driven by the detector can succeed on it and a
wrong answer would show: on the simulator at nominal optics,

1. **found in focus**: with the lens focused on the target at a metered exposure, the
   detector finds the target class over the true box (IoU >= ``MIN_IOU``) at two or more
   neighbouring image sizes of ``CHECK_HEIGHT_FRACTIONS`` (of the frame height);
2. **lost when defocused**: at those sizes and the factory lens position (24 V: ~250 px
   of blur) it does not find the class at all;
3. **unambiguous**: the background photograph alone shows no object of that class.

A scene failing any of these is left out of the library, with the reason and the figures.
``build_catalogue`` takes the candidate photos (``dasha.bench.scene_candidates``), pins
them, pairs every target with backgrounds of its own split, checks every scene and
returns the catalogue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dasha.bench.scene_candidates import candidate_photos
from dasha.envs.metering import TARGET_MEAN_LEVEL
from dasha.errors import ConfigError
from dasha.hardware.sim import EXPOSURE_RANGE_US
from dasha.sim.library import (
    CATALOGUE_VERSION,
    Catalogue,
    Photo,
    SceneEntry,
    scene_from_photos,
    scene_id,
)
from dasha.sim.scenes import Scene, cover, registered_scene
from dasha.sim.world import Conditions, SimWorld

MIN_IOU = 0.3
CHECK_HEIGHT_FRACTIONS = (0.15, 0.3, 0.5, 0.7, 0.9)
CHECK_DISTANCE_CM = 150.0
CHECK_BACKGROUND_CM = 400.0
CHECK_ILLUMINANCE_LUX = 150.0
DEFOCUSED_FOCUS_V = 24.0
BACKGROUNDS_PER_TARGET = 12


CHECK_BACKEND = "onnxruntime"
FLOAT_CHECKED = ("yolo", "centernet")  # the detectors with ONNX Runtime backends


@dataclass
class Judge:
    """The detector the check runs (one instance, reused for every scene)."""

    detector_name: str = "yolo"

    def __post_init__(self) -> None:
        from dasha.perception.detectors import load_detector

        # Well-posedness is a property of the detector as the catalogue was checked: the
        # float network (ONNX Runtime, equal to cv2.dnn within 0.01). ``auto`` now runs YOLO
        # in int8, whose scores differ by up to ~0.2 and would move the catalogue's figures.
        options = {"backend": CHECK_BACKEND} if self.detector_name in FLOAT_CHECKED else {}
        self.detector = load_detector(self.detector_name, **options)

    def detections(self, image: np.ndarray, class_name: str) -> list[Any]:
        self.detector.target = class_name
        return list(self.detector.detect(image))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _metered_frame(world: SimWorld, focus_v: float) -> np.ndarray:
    """A frame whose noise-free mean is the metering target (no exposure loop needed)."""
    exposure_us = world.exposure_for_mean_dn(focus_v, TARGET_MEAN_LEVEL)
    return world.render(focus_v, EXPOSURE_RANGE_US.clamp(exposure_us), 0.0)


def check_scene(scene: Scene, judge: Judge, seed: int = 0) -> dict[str, Any]:
    """The well-posedness figures of one scene and its verdict (``well_posed``, ``reason``).

    The target is checked at every size of ``CHECK_HEIGHT_FRACTIONS``; the longest run of
    neighbouring sizes where it is found in focus (and lost defocused) is the scene's
    ``height_fractions`` range, which condition sets draw the target's image size from.
    """
    with registered_scene(scene) as name:
        return _check(scene, name, judge, seed)


def _check(scene: Scene, name: str, judge: Judge, seed: int) -> dict[str, Any]:
    cls = scene.target_class
    out: dict[str, Any] = {}
    conditions = Conditions(name, CHECK_DISTANCE_CM, CHECK_ILLUMINANCE_LUX, CHECK_BACKGROUND_CM)
    world = SimWorld(conditions, seed=seed)
    good: list[bool] = []
    sharp_scores, defocused_scores = [], []
    for fraction in CHECK_HEIGHT_FRACTIONS:
        size_cm = world.optics.object_size_cm(fraction * world.height, CHECK_DISTANCE_CM)
        world.set_conditions(target_size_cm=size_cm)
        truth = world.layers.target_box
        found = judge.detections(_metered_frame(world, world.in_focus_v()), cls)
        best = max(found, key=lambda d: (iou(d.box, truth), d.score), default=None)
        score = 0.0 if best is None or iou(best.box, truth) < MIN_IOU else float(best.score)
        lost = judge.detections(_metered_frame(world, DEFOCUSED_FOCUS_V), cls) if score else []
        defocused = max((d.score for d in lost), default=0.0)
        sharp_scores.append(round(score, 3))
        defocused_scores.append(round(defocused, 3))
        good.append(score > 0 and not lost)
    out["height_fractions_checked"] = list(CHECK_HEIGHT_FRACTIONS)
    out["sharp_scores"] = sharp_scores
    out["defocused_scores"] = defocused_scores
    run = _longest_run(good)
    reasons: list[str] = []
    if run is None or run[1] - run[0] < 1:
        if not any(sharp_scores):
            reasons.append("not found in focus at any size")
        elif any(defocused_scores):
            reasons.append(
                f"still found at 24 V ({world.target_blur_px(DEFOCUSED_FOCUS_V):.0f} px of blur)"
            )
        else:
            reasons.append("found in focus at fewer than two neighbouring sizes")
    else:
        out["height_fractions"] = [CHECK_HEIGHT_FRACTIONS[run[0]], CHECK_HEIGHT_FRACTIONS[run[1]]]
    if scene.background is not None:
        plain = cover(scene.background, world.width, world.height)
        dn = np.clip(plain / max(float(plain.mean()), 1e-6) * TARGET_MEAN_LEVEL, 0, 255)
        alone = judge.detections(dn.astype(np.uint8), cls)
        out["background_alone_score"] = round(max((d.score for d in alone), default=0.0), 3)
        if alone:
            reasons.append(f"the background alone shows a {cls}")
    out["well_posed"] = not reasons
    out["reason"] = "; ".join(reasons) or None
    return out


def _longest_run(flags: Sequence[bool]) -> tuple[int, int] | None:
    """First and last index of the longest run of True (the earliest among equals)."""
    best: tuple[int, int] | None = None
    start = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if best is None or i - 1 - start > best[1] - best[0]:
                best = (start, i - 1)
            start = None
    return best


# ------------------------------------------------------------------ building the catalogue
def pin_photos(photos: Iterable[Photo]) -> list[Photo]:
    """Fill in each Debian member's SHA-256 from the pinned package (read once)."""
    from dasha.sim.sources import PACKAGES, pin_members

    photos = list(photos)
    by_package: dict[str, list[str]] = {}
    for p in photos:
        if p.source.startswith("deb:") and p.member:
            by_package.setdefault(p.source[4:], []).append(p.member)
    digests: dict[str, str] = {}
    for name, members in by_package.items():
        digests.update(pin_members(PACKAGES[name], members))
    return [
        Photo(
            p.id,
            p.source,
            p.role,
            p.target_class,
            p.member,
            digests.get(p.member or "", p.sha256),
            p.box,
        )
        for p in photos
    ]


def _unique_by_content(photos: list[Photo]) -> list[Photo]:
    """Drop a photo whose file is byte-identical to an earlier one (Tux Paint ships copies)."""
    seen: set[str] = set()
    kept = []
    for p in photos:
        if p.sha256 is not None:
            if p.sha256 in seen:
                continue
            seen.add(p.sha256)
        kept.append(p)
    return kept


def _with_detected_box(photo: Photo, judge: Judge) -> Photo:
    """A whole photograph's box: the detector's most confident box of its class."""
    from dasha.sim.library import read_rgb

    if photo.role != "photo" or photo.box is not None or photo.source.startswith("builtin:"):
        return photo
    image = read_rgb(photo)
    found = judge.detections(image, photo.target_class or "")
    if not found:
        return photo
    best = max(found, key=lambda d: d.score)
    x1, y1, x2, y2 = best.box
    return Photo(
        photo.id,
        photo.source,
        photo.role,
        photo.target_class,
        photo.member,
        photo.sha256,
        (float(x1), float(y1), float(x2), float(y2)),
    )


def pairings(
    targets: Sequence[Photo], backgrounds: Sequence[Photo], per_target: int
) -> list[tuple[Photo, Photo | None]]:
    """Every target with ``per_target`` backgrounds of its own split (hash-ordered: stable)."""
    pairs: list[tuple[Photo, Photo | None]] = []
    for t in targets:
        if t.role == "photo":
            pairs.append((t, None))
            continue
        same = [b for b in backgrounds if b.split == t.split]
        same.sort(key=lambda b: hashlib.sha256(f"{t.id}@{b.id}".encode()).hexdigest())
        pairs += [(t, b) for b in same[:per_target]]
    return pairs


def build_catalogue(
    detector: str = "yolo",
    per_target: int = BACKGROUNDS_PER_TARGET,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> Catalogue:
    """Pin the candidate photos, pair them within each split, check every scene."""
    judge = Judge(detector)
    photos = _unique_by_content(pin_photos(candidate_photos()))
    photos = [_with_detected_box(p, judge) for p in photos]
    by_id = {p.id: p for p in photos}
    targets = [p for p in photos if p.role != "background"]
    backgrounds = [p for p in photos if p.role == "background"]
    scenes: dict[str, SceneEntry] = {}
    pairs = pairings(targets, backgrounds, per_target)
    for target, background in progress(pairs) if progress else pairs:
        sid = scene_id(target.id, None if background is None else background.id)
        if (
            target.role == "photo"
            and target.box is None
            and not target.source.startswith("builtin:")
        ):
            result: dict[str, Any] = {
                "well_posed": False,
                "reason": "the detector finds no target in the photograph",
            }
        else:
            try:
                result = check_scene(scene_from_photos(target, background, sid), judge)
            except ConfigError as exc:
                result = {"well_posed": False, "reason": str(exc)}
        well_posed = bool(result.pop("well_posed"))
        reason = result.pop("reason")
        assert reason is None or isinstance(reason, str)
        scenes[sid] = SceneEntry(
            sid,
            target.id,
            None if background is None else background.id,
            target.target_class or "",
            target.split,
            well_posed,
            reason,
            result,
        )
    checked_with = {
        "detector": detector,
        "distance_cm": CHECK_DISTANCE_CM,
        "background_cm": CHECK_BACKGROUND_CM,
        "illuminance_lux": CHECK_ILLUMINANCE_LUX,
        "height_fractions": list(CHECK_HEIGHT_FRACTIONS),
        "min_iou": MIN_IOU,
        "defocused_focus_v": DEFOCUSED_FOCUS_V,
        "backgrounds_per_target": per_target,
    }
    return Catalogue(CATALOGUE_VERSION, by_id, scenes, checked_with)
