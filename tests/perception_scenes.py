"""Scene photographs the default detector must find when sharp and lose when defocused.

Each: (name, loader -> 2-D uint8, target class, box [x1, y1, x2, y2] in the photo's own
pixels as measured with the default YOLOv3-tiny at 320 px). The simulator's scene
catalogue should use the same photos; point these tests at it once it is merged.
"""

from __future__ import annotations

import cv2
import numpy as np


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2GRAY)


def cameraman() -> np.ndarray:
    import skimage.data

    return skimage.data.camera()


def motorcycle() -> np.ndarray:
    import skimage.data

    return _gray(skimage.data.stereo_motorcycle()[0])


def grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    import matplotlib.image

    return _gray(matplotlib.image.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg")))


SCENES = [
    ("cameraman", cameraman, "person", (12, 60, 284, 512)),
    ("motorcycle", motorcycle, "motorbike", (106, 76, 680, 470)),
    ("grace_hopper", grace_hopper, "person", (45, 84, 500, 585)),
]


def disk_blur(image: np.ndarray, radius_px: int) -> np.ndarray:
    """Defocus: a pillbox PSF of the given radius."""
    kernel = np.zeros((2 * radius_px + 1,) * 2, np.float32)
    cv2.circle(kernel, (radius_px, radius_px), radius_px, 1.0, -1)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area
