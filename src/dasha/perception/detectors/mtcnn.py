"""MTCNN face detector (Zhang et al. 2016): one class, ``face`` (``--target face``).

Three small CNNs in a cascade: PNet scans an image pyramid for 12x12 face proposals,
RNet re-scores and refines them at 24x24, ONet gives the final score and box at 48x48.
The networks and the pipeline are written here; the weights are the ones
``facenet-pytorch==2.6.0`` (MIT) ships. That package pins an old torch, so it is never
installed: ``fetch_mtcnn()`` downloads its wheel with pip, checks the wheel's SHA-256,
takes out only ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (state dicts, checked too) and
caches them (see ``dasha.perception.cache``). Offline, pass ``weights=`` a folder holding
those three files.

Speed (417x404 frame, face present, min face 20 px, 1 torch thread on a 2-core machine
with the other core busy): about 30 ms mono, 40 ms RGB (more proposals survive PNet);
18 ms on a flat frame, where PNet alone runs. Blur tolerant: the face is still found
through the defocus that makes YOLO lose its targets (see tests/test_perception_mtcnn.py),
so a face detection alone does not mean "in focus".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError, require
from dasha.perception._image import ImageLike, as_rgb
from dasha.perception.cache import cache_dir, fetch_from_wheel
from dasha.perception.detectors.base import Detection, Detector, nms

MTCNN_SOURCE = "facenet-pytorch==2.6.0"
MTCNN_WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
MTCNN_MEMBERS = {f"{net}.pt": f"facenet_pytorch/data/{net}.pt" for net in ("pnet", "rnet", "onet")}
MTCNN_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
_HOW = (
    "Pass weights=None to fetch them (pip download --no-deps facenet-pytorch==2.6.0; "
    "nothing is installed), or a folder with pnet.pt, rnet.pt and onet.pt taken from that "
    "wheel's facenet_pytorch/data/."
)


def fetch_mtcnn() -> Path:
    """The folder of cached MTCNN weights, fetched first if need be (a ~2 MB wheel, once)."""
    folder = cache_dir() / "mtcnn"
    return fetch_from_wheel(MTCNN_SOURCE, MTCNN_WHEEL_SHA256, MTCNN_MEMBERS, MTCNN_SHA256, folder)


def _networks(torch: Any) -> tuple[Any, Any, Any]:
    """PNet, RNet, ONet, their layers named as in the facenet-pytorch state dicts."""
    nn = torch.nn
    module: Any = nn.Module

    class Net(module):
        """conv -> PReLU (-> max-pool) blocks, then PNet's 1x1 conv heads (a score map,
        stride 2, one 12x12 cell per value) or R/ONet's dense layers (one crop per row).
        Returns the box offsets (fractions of the box size) and the face probability."""

        def __init__(
            self, spec: list[tuple[int, int, int, int]], dense: tuple[int, int] | None = None
        ) -> None:
            super().__init__()
            self.trunk: list[str] = []
            self.hidden: list[str] = []
            for i, (c_in, c_out, kernel, pool) in enumerate(spec, start=1):
                self.trunk += [f"conv{i}", f"prelu{i}"] + ([f"pool{i}"] if pool else [])
                self.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, kernel))
                self.add_module(f"prelu{i}", nn.PReLU(c_out))
                if pool:
                    self.add_module(f"pool{i}", nn.MaxPool2d(pool, 2, ceil_mode=True))
            n, width, kind = len(spec) + 1, spec[-1][1], "conv"
            if dense is not None:  # dense{n} -> prelu{n} -> dense{n+1}_1 / _2 (/ _3)
                self.hidden = [f"dense{n}", f"prelu{n}"]
                self.add_module(f"dense{n}", nn.Linear(dense[0], dense[1]))
                self.add_module(f"prelu{n}", nn.PReLU(dense[1]))
                n, width, kind = n + 1, dense[1], "dense"
            head = (
                nn.Linear if dense is not None else (lambda c_in, c_out: nn.Conv2d(c_in, c_out, 1))
            )
            self.score_layer, self.reg_layer = f"{kind}{n}_1", f"{kind}{n}_2"
            self.add_module(self.score_layer, head(width, 2))
            self.add_module(self.reg_layer, head(width, 4))
            if len(spec) == 4:  # ONet also gives five landmarks: loaded, not used here
                self.add_module(f"dense{n}_3", nn.Linear(width, 10))

        def forward(self, x: Any) -> tuple[Any, Any]:
            for name in self.trunk:
                x = getattr(self, name)(x)
            if self.hidden:  # the dense weights come from Caffe, which flattens (W, H, C)
                x = x.permute(0, 3, 2, 1).flatten(1)
                for name in self.hidden:
                    x = getattr(self, name)(x)
            score = torch.softmax(getattr(self, self.score_layer)(x), dim=1)[:, 1]
            return getattr(self, self.reg_layer)(x), score

    pnet = Net([(3, 10, 3, 2), (10, 16, 3, 0), (16, 32, 3, 0)])
    rnet = Net([(3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, 0)], dense=(576, 128))
    onet = Net([(3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2), (64, 128, 2, 0)], (1152, 256))
    return pnet, rnet, onet


def _load(net: Any, path: Path) -> None:
    """The state dict at ``path`` into ``net``, strictly (a partial fit is an error)."""
    from dasha.perception.weights import load_file

    try:
        state = load_file(path)
    except ConfigError as exc:  # torch's own message here is long and beside the point
        raise ConfigError(
            f"MTCNN weights {path}: missing or not a PyTorch state dict. {_HOW}"
        ) from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).splitlines()[-1].strip()[:200]
        raise ConfigError(
            f"MTCNN weights {path} do not fit the network ({detail}). {_HOW}"
        ) from exc
    net.eval()


def _refine(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes moved by the network's offsets (fractions of the box size)."""
    size = np.tile(boxes[:, 2:4] - boxes[:, 0:2], 2)
    return boxes[:, :4] + reg * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square around its centre (the networks' inputs are square)."""
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    side = np.max(boxes[:, 2:4] - boxes[:, :2], axis=1, keepdims=True)
    return np.hstack([centre - side / 2, centre + side / 2])


class MtcnnDetector(Detector):
    """MTCNN faces (CPU). Mono frames are replicated to three channels.

    Args:
        target: ``"face"`` or ``None`` (the same: it knows one class).
        weights: folder with ``pnet.pt``, ``rnet.pt``, ``onet.pt``; ``None``: fetched, cached.
        score_threshold: lowest final (ONet) face probability reported.
        min_face_px: smallest face searched for (the pyramid starts at 12 / min_face_px).
        pyramid_factor: scale step between pyramid levels.
        stage_thresholds: PNet and RNet probabilities a proposal needs to go on.
    """

    name = "mtcnn"
    classes = ("face",)

    def __init__(
        self,
        target: str | None = "face",
        weights: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.7,
        min_face_px: float = 20.0,
        pyramid_factor: float = 0.709,
        stage_thresholds: tuple[float, float] = (0.6, 0.7),
    ) -> None:
        torch = require("torch", "perception")
        from dasha.perception.encoder import set_torch_threads

        super().__init__(target=target, score_threshold=score_threshold)
        if min_face_px < 12 or not 0 < pyramid_factor < 1:
            raise ConfigError("min_face_px must be >= 12 and pyramid_factor in (0, 1)")
        self.min_face_px, self.pyramid_factor = float(min_face_px), float(pyramid_factor)
        self.stage_thresholds = tuple(float(t) for t in stage_thresholds)
        folder = fetch_mtcnn() if weights is None else Path(weights).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"MTCNN weights folder not found: {folder}. {_HOW}")
        set_torch_threads()
        self._torch = torch
        self._pnet, self._rnet, self._onet = _networks(torch)
        for net, file in zip((self._pnet, self._rnet, self._onet), MTCNN_SHA256, strict=True):
            _load(net, folder / file)
        self.weights_path = folder

    def _run(self, net: Any, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``net`` on uint8 NHWC images, normalised as in training ((v - 127.5) / 128).

        The NHWC array is given to torch as a channels-last view: its max-pooling is ~4x
        faster in that layout than in NCHW on CPU (measured).
        """
        x = self._torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        with self._torch.inference_mode():
            reg, prob = net((x.float() - 127.5) / 128.0)
        return reg.numpy(), prob.numpy()

    def _proposals(self, rgb: np.ndarray) -> np.ndarray:
        """Stage 1: PNet over the pyramid; rows (x1, y1, x2, y2, score), squared boxes."""
        import cv2

        height, width = rgb.shape[:2]
        scale, found = 12.0 / self.min_face_px, [np.zeros((0, 9))]
        while min(height, width) * scale >= 12:
            size = (int(width * scale + 1), int(height * scale + 1))
            level = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            reg, prob = self._run(self._pnet, level[None])
            ys, xs = np.nonzero(prob[0] >= self.stage_thresholds[0])
            cells = (np.stack([xs, ys, xs, ys], axis=1) * 2.0 + [0, 0, 12, 12]) / scale
            rows = np.hstack([cells, prob[0][ys, xs, None], reg[0][:, ys, xs].T])
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
            scale *= self.pyramid_factor
        rows = np.vstack(found)
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        return np.hstack([_square(_refine(rows[:, :4], rows[:, 5:9])), rows[:, 4:5]])

    def _stage(
        self,
        net: Any,
        rgb: np.ndarray,
        boxes: np.ndarray,
        size: int,
        threshold: float | None = None,
    ) -> np.ndarray:
        """Crops of ``boxes`` (zero-padded outside the frame) re-scored and refined by ``net``."""
        import cv2

        if not len(boxes):
            return np.zeros((0, 5))
        height, width = rgb.shape[:2]
        crops = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(np.round(boxes[:, :4]).astype(int)):
            w, h = max(x2 - x1, 1), max(y2 - y1, 1)
            patch = np.zeros((h, w, 3), dtype=np.uint8)
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
            if cx2 > cx1 and cy2 > cy1:
                patch[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = rgb[cy1:cy2, cx1:cx2]
            crops[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        reg, prob = self._run(net, crops)
        keep = prob >= (self.score_threshold if threshold is None else threshold)
        return np.hstack([_refine(boxes[keep], reg[keep]), prob[keep, None]])

    def _detect_all(self, image: ImageLike) -> list[Detection]:
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        boxes = self._proposals(rgb)
        boxes = self._stage(self._rnet, rgb, boxes, 24, self.stage_thresholds[1])
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        boxes = self._stage(self._onet, rgb, np.hstack([_square(boxes), boxes[:, 4:]]), 48)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7, by_min=True)]
        found = []
        for x1, y1, x2, y2, score in boxes:
            x1, x2 = (round(float(min(max(v, 0.0), width)), 1) for v in (x1, x2))
            y1, y2 = (round(float(min(max(v, 0.0), height)), 1) for v in (y1, y2))
            found.append(Detection("face", round(float(score), 4), (x1, y1, x2, y2)))
        return found
