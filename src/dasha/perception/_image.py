"""Turning whatever the caller has (a ``Frame``, a gray or colour array) into what a model needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

import numpy as np

from dasha.errors import ConfigError

if TYPE_CHECKING:
    from dasha.hardware.base import Frame

ImageLike = Union[np.ndarray, "Frame"]
Box = tuple[float, float, float, float]  # [x1, y1, x2, y2] in pixels, x2/y2 exclusive
# Smaller images have no histogram, BRISQUE or detector input worth the name (and some
# resizes of them assert inside OpenCV).
MIN_IMAGE_PX = 16


def as_uint8(image: ImageLike) -> np.ndarray:
    """A ``uint8`` array, 2-D (mono) or HxWx3; a ``Frame`` is scaled by its bit depth."""
    if hasattr(image, "as_uint8"):
        image = image.as_uint8()
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ConfigError(f"expected a 2-D mono or HxWx3 image, got shape {array.shape}")
    if min(array.shape[:2]) < MIN_IMAGE_PX:
        raise ConfigError(
            f"the image is {array.shape[1]}x{array.shape[0]} px; give one of at least "
            f"{MIN_IMAGE_PX}x{MIN_IMAGE_PX}"
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:  # a bare 16-bit array: assume its full range is used
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):  # floats in [0, 1], as skimage uses
        return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    raise ConfigError(f"unsupported image dtype {array.dtype}; give uint8, uint16 or float")


def as_gray(image: ImageLike) -> np.ndarray:
    """2-D ``uint8``; colour is converted with the ITU-R 601 luma weights."""
    import cv2

    array = as_uint8(image)
    return array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGB2GRAY)


def as_rgb(image: ImageLike) -> np.ndarray:
    """HxWx3 ``uint8``; a mono image is replicated to three channels (what detectors get)."""
    array = as_uint8(image)
    return np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array


def crop(image: np.ndarray, box: Sequence[float] | None) -> np.ndarray:
    """The pixels inside ``box`` ([x1, y1, x2, y2], clipped to the image); all if ``None``."""
    if box is None:
        return image
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, x2 = max(0, min(x1, width)), max(0, min(x2, width))
    y1, y2 = max(0, min(y1, height)), max(0, min(y2, height))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ConfigError(
            f"box {list(box)} leaves fewer than 2x2 pixels of a {width}x{height} image"
        )
    return image[y1:y2, x1:x2]
