"""A darknet YOLO (``.cfg`` + ``.weights``) written as an ONNX graph, for ONNX Runtime.

The converter reads any darknet cfg built from the layers YOLOv2-v4 use
(``convolutional``, ``maxpool``, ``route`` (with ``groups``), ``shortcut``, ``upsample``,
``yolo``), folds each batch norm into its convolution and writes the graph with the
``onnx`` package: no torch, no TensorFlow, no network.

The graph computes what OpenCV's darknet importer computes, so that the two backends
give the same detections: its input is the letterboxed frame as it is (``uint8``, NHWC,
the cfg's square input size), scaled to [0, 1] inside the graph; its output is one row
per anchor and cell of every ``yolo`` layer, ordered as OpenCV orders them (cell by
cell, anchors within a cell), each ``[cx, cy, w, h, objectness, class scores...]`` with
the box relative to the input size and the class scores already multiplied by the
objectness (OpenCV's "Region" output). Thresholds and NMS stay outside, in numpy and
``cv2.dnn.NMSBoxes`` (``yolo.py``), as OpenCV's ``DetectionModel`` applies them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError, require

# Bump when the graph this module writes changes: cached models are then rebuilt.
CONVERTER_VERSION = "darknet-onnx-1"
_OPSET = 17
_BN_EPS = 1e-6  # darknet's own epsilon


@dataclass
class Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)

    def integer(self, key: str, default: int | None = None) -> int:
        return int(self._get(key, default))

    def number(self, key: str, default: float | None = None) -> float:
        return float(self._get(key, default))

    def ints(self, key: str, default: str | None = None) -> list[int]:
        return [int(v) for v in str(self._get(key, default)).split(",") if v.strip()]

    def _get(self, key: str, default: object) -> Any:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise ConfigError(f"darknet cfg: [{self.kind}] needs {key}=")
        return default


def parse_cfg(path: str | os.PathLike[str]) -> list[Section]:
    """The sections of a darknet cfg in order (``[net]`` first)."""
    sections: list[Section] = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append(Section(line.strip("[]").strip()))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ConfigError(f"darknet cfg {path}: cannot read the line {raw!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ConfigError(f"darknet cfg {path}: it must start with a [net] section")
    return sections


class _Weights:
    """The flat float32 array after darknet's header, consumed layer by layer."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as handle:
            major, minor, _revision = np.fromfile(handle, dtype=np.int32, count=3)
            seen_bytes = 8 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 4
            handle.read(seen_bytes)
            self.data = np.fromfile(handle, dtype=np.float32)
        self.path = path
        self.offset = 0

    def take(self, count: int) -> np.ndarray:
        if self.offset + count > self.data.size:
            raise ConfigError(f"{self.path} is shorter than its cfg needs: wrong cfg for it?")
        out = self.data[self.offset : self.offset + count]
        self.offset += count
        return out

    def check_used(self) -> None:
        if self.offset != self.data.size:
            raise ConfigError(
                f"{self.path} has {self.data.size - self.offset} values its cfg does not use: "
                "wrong cfg for these weights?"
            )


class _Graph:
    def __init__(self) -> None:
        self.onnx = require("onnx", "perception")
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: Any, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _activation(graph: _Graph, x: str, kind: str) -> str:
    if kind == "linear":
        return x
    if kind == "leaky":
        return graph.op("LeakyRelu", [x], alpha=0.1)
    if kind == "relu":
        return graph.op("Relu", [x])
    if kind == "logistic":
        return graph.op("Sigmoid", [x])
    if kind == "mish":
        return graph.op("Mul", [x, graph.op("Tanh", [graph.op("Softplus", [x])])])
    if kind == "swish":
        return graph.op("Mul", [x, graph.op("Sigmoid", [x])])
    raise ConfigError(f"darknet activation {kind!r} is not supported by the ONNX converter")


def _convolutional(
    graph: _Graph, x: str, channels: int, sec: Section, weights: _Weights
) -> tuple[str, int]:
    filters, size = sec.integer("filters"), sec.integer("size", 1)
    stride, groups = sec.integer("stride", 1), sec.integer("groups", 1)
    padding = sec.integer("padding", 0)
    if sec.integer("pad", 0):
        padding = size // 2
    bias = weights.take(filters)
    if sec.integer("batch_normalize", 0):
        scales, mean, var = weights.take(filters), weights.take(filters), weights.take(filters)
        factor = scales / np.sqrt(var + _BN_EPS)
        bias = bias - mean * factor
    else:
        factor = np.ones(filters, np.float32)
    kernel = weights.take(filters * (channels // groups) * size * size)
    kernel = kernel.reshape(filters, channels // groups, size, size) * factor[:, None, None, None]
    out = graph.op(
        "Conv",
        [x, graph.const(kernel.astype(np.float32), "w"), graph.const(bias.astype(np.float32), "b")],
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[padding] * 4,
        group=groups,
    )
    return _activation(graph, out, sec.options.get("activation", "logistic")), filters


def _maxpool(graph: _Graph, x: str, sec: Section) -> str:
    size = sec.integer("size", 1)
    stride = sec.integer("stride", 1)
    padding = sec.integer("padding", size - 1)
    # darknet starts windows at -padding/2 (C division) and pads the rest at the end
    begin = padding // 2
    return graph.op(
        "MaxPool",
        [x],
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[begin, begin, padding - begin, padding - begin],
    )


def _yolo(graph: _Graph, x: str, height: int, width: int, sec: Section, input_px: int) -> str:
    mask = sec.ints("mask", ",".join(str(i) for i in range(sec.integer("num", 1))))
    anchors = np.asarray([float(v) for v in str(sec._get("anchors", None)).split(",")], np.float32)
    anchors = anchors.reshape(-1, 2)
    classes = sec.integer("classes")
    if sec.integer("new_coords", 0):
        raise ConfigError("darknet [yolo] new_coords=1 (scaled YOLOv4) is not supported")
    scale_xy = sec.number("scale_x_y", 1.0)
    count, cell = len(mask), 5 + classes
    rows = height * width * count
    # (N, A*cell, H, W) -> (N, H, W, A, cell) -> (N, rows, cell): OpenCV's row order
    y = graph.op("Reshape", [x, graph.const(np.array([-1, count, cell, height, width], np.int64))])
    y = graph.op("Transpose", [y], perm=[0, 3, 4, 1, 2])
    y = graph.op("Reshape", [y, graph.const(np.array([-1, rows, cell], np.int64))])
    xy = graph.op("Slice", [y, *_slice(graph, 0, 2)])
    wh = graph.op("Slice", [y, *_slice(graph, 2, 4)])
    obj = graph.op("Sigmoid", [graph.op("Slice", [y, *_slice(graph, 4, 5)])])
    cls = graph.op("Sigmoid", [graph.op("Slice", [y, *_slice(graph, 5, cell)])])
    gy, gx, _ = np.meshgrid(np.arange(height), np.arange(width), np.arange(count), indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)[None].astype(np.float32)
    norm = np.array([width, height], np.float32)
    xy = graph.op("Mul", [graph.op("Sigmoid", [xy]), graph.const(np.float32(scale_xy / norm))])
    offset = (grid - 0.5 * (scale_xy - 1.0)) / norm
    xy = graph.op("Add", [xy, graph.const(offset.astype(np.float32))])
    sizes = np.tile(anchors[mask] / input_px, (height * width, 1))[None].astype(np.float32)
    wh = graph.op("Mul", [graph.op("Exp", [wh]), graph.const(sizes)])
    cls = graph.op("Mul", [cls, obj])
    return graph.op("Concat", [xy, wh, obj, cls], axis=2)


def _slice(graph: _Graph, start: int, end: int) -> list[str]:
    return [
        graph.const(np.array([start], np.int64)),
        graph.const(np.array([end], np.int64)),
        graph.const(np.array([2], np.int64)),
    ]


def darknet_to_onnx(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str],
    out: str | os.PathLike[str],
    input_px: int,
) -> None:
    """Write the ONNX graph of darknet model ``cfg`` + ``weights`` at ``input_px`` square."""
    sections = parse_cfg(cfg)
    onnx = require("onnx", "perception")
    graph = _Graph()
    source = _Weights(Path(weights))
    image = "image"  # (frames, input_px, input_px, 3) uint8 RGB
    x = graph.op("Cast", [image], to=onnx.TensorProto.FLOAT)
    x = graph.op("Mul", [x, graph.const(np.float32(1 / 255.0))])
    x = graph.op("Transpose", [x], perm=[0, 3, 1, 2])
    outputs: list[str] = []  # the tensor of each layer, for route and shortcut
    channels: list[int] = []
    sizes: list[tuple[int, int]] = []
    heads: list[str] = []
    c, h, w = 3, input_px, input_px
    for index, sec in enumerate(sections[1:]):
        if sec.kind == "convolutional":
            x, c_out = _convolutional(graph, x, c, sec, source)
            size, stride = sec.integer("size", 1), sec.integer("stride", 1)
            pad = size // 2 if sec.integer("pad", 0) else sec.integer("padding", 0)
            h, w, c = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1, c_out
        elif sec.kind == "maxpool":
            x = _maxpool(graph, x, sec)
            size, stride = sec.integer("size", 1), sec.integer("stride", 1)
            padding = sec.integer("padding", size - 1)
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
        elif sec.kind == "route":
            layers = [i if i >= 0 else index + i for i in sec.ints("layers")]
            groups, group_id = sec.integer("groups", 1), sec.integer("group_id", 0)
            parts = []
            for i in layers:
                part, c_part = outputs[i], channels[i] // groups
                if groups > 1:
                    part = graph.op(
                        "Slice",
                        [
                            part,
                            graph.const(np.array([group_id * c_part], np.int64)),
                            graph.const(np.array([(group_id + 1) * c_part], np.int64)),
                            graph.const(np.array([1], np.int64)),
                        ],
                    )
                parts.append(part)
            x = parts[0] if len(parts) == 1 else graph.op("Concat", parts, axis=1)
            c = sum(channels[i] // groups for i in layers)
            h, w = sizes[layers[0]]
        elif sec.kind == "shortcut":
            source_index = sec.integer("from")
            source_index = source_index if source_index >= 0 else index + source_index
            x = graph.op("Add", [x, outputs[source_index]])
            x = _activation(graph, x, sec.options.get("activation", "linear"))
        elif sec.kind == "upsample":
            stride = sec.integer("stride", 2)
            x = graph.op(
                "Resize",
                [x, "", graph.const(np.array([1, 1, stride, stride], np.float32))],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
            h, w = h * stride, w * stride
        elif sec.kind == "yolo":
            heads.append(_yolo(graph, x, h, w, sec, input_px))
        else:
            raise ConfigError(
                f"darknet layer [{sec.kind}] is not supported by the ONNX converter "
                "(use the reference backend, cv2.dnn)"
            )
        outputs.append(x)
        channels.append(c)
        sizes.append((h, w))
    source.check_used()
    if not heads:
        raise ConfigError(f"darknet cfg {cfg} has no [yolo] layer")
    result = heads[0] if len(heads) == 1 else graph.op("Concat", heads, axis=1)
    graph.nodes.append(onnx.helper.make_node("Identity", [result], ["detections"]))
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes,
            "darknet",
            [
                onnx.helper.make_tensor_value_info(
                    image, onnx.TensorProto.UINT8, ["frames", input_px, input_px, 3]
                )
            ],
            [
                onnx.helper.make_tensor_value_info(
                    "detections", onnx.TensorProto.FLOAT, ["frames", "rows", "values"]
                )
            ],
            graph.initializers,
        ),
        opset_imports=[onnx.helper.make_opsetid("", _OPSET)],
        producer_name="dasha",
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
