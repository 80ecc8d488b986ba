"""A TF.js graph model (``model.json`` + weight shards) rewritten as an ONNX graph.

Only the operations the models DASHA uses contain are translated (``OPS``); any other op
is an error naming it, never a silent approximation. The TF graph keeps its NHWC layout
throughout: element-wise ops, reductions, concatenations and reshapes then mean exactly
what they meant in TF. Only convolutions and pooling, which ONNX defines on NCHW, are
wrapped in a pair of transposes; ONNX Runtime's layout optimiser removes the pairs that
meet (measured: the converted CenterNet runs as fast as the same graph built NCHW).

Weights: the manifest lists every tensor's name, shape and dtype in the order their
bytes follow one another across the shards; ``float16``-quantised ones are widened to
float32 here, so the ONNX file is plain float32.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError

CONVERTER_VERSION = "tfjs-onnx-1"
OPSET = 18  # ReduceMean takes its axes as an input

_DTYPES = {"float32": np.float32, "int32": np.int32}
_TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_BOOL": np.bool_}
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def read_weights(model_json: dict[str, Any], folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest by name, as float32 / int32 arrays."""
    weights: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        data = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(v) for v in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored: np.dtype[Any]
            if quant is None:
                stored = np.dtype(_DTYPES[spec["dtype"]])
            elif quant.get("dtype") == "float16":
                stored = np.dtype(np.float16)
            else:
                raise ConfigError(f"weight {spec['name']}: unsupported quantisation {quant}")
            size = count * stored.itemsize
            if offset + size > len(data):
                raise ConfigError(f"the weight shards {group['paths']} end before {spec['name']}")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
            weights[spec["name"]] = raw.astype(_DTYPES[spec["dtype"]]).reshape(shape)
            offset += size
    return weights


def _attr(node: dict[str, Any], key: str, default: Any = None) -> Any:
    """A node attribute as a Python value (TF.js stores strings base64-encoded)."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        return [base64.b64decode(s).decode() for s in items.get("s", [])]
    if "i" in value:
        return int(value["i"])
    if "b" in value:
        return bool(value["b"])
    if "f" in value:
        return float(value["f"])
    if "type" in value:
        return value["type"]
    return value


class _Graph:
    """The ONNX graph being written: nodes, initialisers and fresh names."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[Any] = []
        self.initialisers: dict[str, np.ndarray] = {}
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, value: Any, hint: str) -> str:
        name = self.fresh(hint)
        self.initialisers[name] = np.asarray(value)
        return name

    def value(self, name: str) -> np.ndarray:
        """The constant behind an input (shapes, axes, sizes must be known here)."""
        key = name.split(":")[0]
        if key not in self.weights:
            raise ConfigError(f"{name} must be a constant for this converter")
        return self.weights[key]

    def add(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))

    def nchw(self, op: str, x: str, out: str, inputs: list[str], **attrs: Any) -> None:
        """``op`` (defined on NCHW) applied to NHWC ``x``, between two transposes."""
        a, b = self.fresh(out + "_nchw_in"), self.fresh(out + "_nchw_out")
        self.add("Transpose", [x], [a], perm=_TO_NCHW)
        self.add(op, [a, *inputs], [b], **attrs)
        self.add("Transpose", [b], [out], perm=_TO_NHWC)


def _conv(g: _Graph, node: dict[str, Any], ins: list[str], out: str, depthwise: bool) -> None:
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise ConfigError(f"{node['name']}: only NHWC convolutions are supported")
    padding = _attr(node, "padding")
    if padding not in ("SAME", "VALID"):
        raise ConfigError(f"{node['name']}: padding {padding} is not supported")
    fused = _attr(node, "fused_ops", ["BiasAdd"] if len(ins) > 2 else [])
    if fused[:1] not in ([], ["BiasAdd"]) or fused[1:] not in ([], ["Relu"], ["Relu6"]):
        raise ConfigError(f"{node['name']}: fused ops {fused} are not supported")
    kernel = g.value(ins[1])
    if depthwise:  # TF: (H, W, C, multiplier), channel c*M + m out; ONNX: (C*M, 1, H, W)
        h, w, c, m = kernel.shape
        weight, group = kernel.reshape(h, w, c * m).transpose(2, 0, 1)[:, None], c
    else:  # TF: (H, W, in, out); ONNX: (out, in, H, W)
        weight, group = kernel.transpose(3, 2, 0, 1), 1
    conv_in = [g.const(np.ascontiguousarray(weight), node["name"] + "_w")]
    if fused[:1] == ["BiasAdd"]:
        conv_in.append(g.const(g.value(ins[2]).astype(np.float32), node["name"] + "_b"))
    strides, dilations = _attr(node, "strides", [1] * 4), _attr(node, "dilations", [1] * 4)
    conv_out = out if len(fused) < 2 else g.fresh(out + "_pre")
    g.nchw(
        "Conv",
        ins[0],
        conv_out,
        conv_in,
        kernel_shape=list(weight.shape[2:]),
        strides=strides[1:3],
        dilations=dilations[1:3],
        group=group,
        auto_pad="SAME_UPPER" if padding == "SAME" else "VALID",  # TF's SAME pads the end
    )
    if fused[1:] == ["Relu"]:
        g.add("Relu", [conv_out], [out])
    elif fused[1:] == ["Relu6"]:
        _relu6(g, [conv_out], out)


def _relu6(g: _Graph, ins: list[str], out: str) -> None:
    low, high = np.float32(0), np.float32(6)
    g.add("Clip", [ins[0], g.const(low, "zero"), g.const(high, "six")], [out])


def _int64(g: _Graph, name: str, hint: str) -> str:
    return g.const(g.value(name).astype(np.int64).reshape(-1), hint)


def _axis(g: _Graph, name: str) -> int:
    return int(g.value(name).reshape(()))


def _floor_div(g: _Graph, ins: list[str], out: str, dtype: Any) -> None:
    # ONNX Div truncates integers toward zero; TF floors. Through float64 it is exact for
    # every int32 and floors for negatives too.
    a, b, q, f = (g.fresh(out + s) for s in ("_a", "_b", "_q", "_f"))
    g.add("Cast", [ins[0]], [a], to=_onnx_type(np.float64))
    g.add("Cast", [ins[1]], [b], to=_onnx_type(np.float64))
    g.add("Div", [a, b], [q])
    g.add("Floor", [q], [f])
    g.add("Cast", [f], [out], to=_onnx_type(dtype))


def _strided_slice(g: _Graph, node: dict[str, Any], ins: list[str], out: str) -> None:
    for mask in ("ellipsis_mask", "new_axis_mask", "shrink_axis_mask"):
        if _attr(node, mask, 0):
            raise ConfigError(f"{node['name']}: StridedSlice with {mask} is not supported")
    begin, end, step = (g.value(v).astype(np.int64) for v in ins[1:4])
    begin_mask, end_mask = _attr(node, "begin_mask", 0), _attr(node, "end_mask", 0)
    big = np.iinfo(np.int64).max
    for i in range(len(begin)):
        if begin_mask >> i & 1:
            begin[i] = 0 if step[i] > 0 else big
        if end_mask >> i & 1:
            end[i] = big if step[i] > 0 else -big
    axes = np.arange(len(begin), dtype=np.int64)
    consts = [
        g.const(v, node["name"] + k) for v, k in zip((begin, end, axes, step), "seas", strict=True)
    ]
    g.add("Slice", [ins[0], *consts], [out])


def _onnx_type(dtype: Any) -> int:
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


Converter = Callable[[_Graph, dict[str, Any], list[str], str], None]


def _simple(op: str) -> Converter:
    return lambda g, node, ins, out: g.add(op, ins, [out])


OPS: dict[str, Converter] = {
    "Identity": _simple("Identity"),
    "Add": _simple("Add"),
    "AddV2": _simple("Add"),
    "Sub": _simple("Sub"),
    "Mul": _simple("Mul"),
    "Relu": _simple("Relu"),
    "Sigmoid": _simple("Sigmoid"),
    "Equal": _simple("Equal"),
    "Relu6": lambda g, node, ins, out: _relu6(g, ins, out),
    "FloorMod": _simple("Mod"),  # Mod with fmod=0 takes the divisor's sign, as TF does
    "FloorDiv": lambda g, node, ins, out: _floor_div(g, ins, out, _TF_DTYPES[_attr(node, "T")]),
    "_FusedConv2D": lambda g, node, ins, out: _conv(g, node, ins, out, depthwise=False),
    "Conv2D": lambda g, node, ins, out: _conv(g, node, ins, out, depthwise=False),
    "FusedDepthwiseConv2dNative": lambda g, node, ins, out: _conv(g, node, ins, out, True),
    "DepthwiseConv2dNative": lambda g, node, ins, out: _conv(g, node, ins, out, True),
    "Cast": lambda g, node, ins, out: g.add(
        "Cast", ins, [out], to=_onnx_type(_TF_DTYPES[_attr(node, "DstT")])
    ),
    "Mean": lambda g, node, ins, out: g.add(
        "ReduceMean",
        [ins[0], _int64(g, ins[1], "axes")],
        [out],
        keepdims=int(_attr(node, "keep_dims", False)),
    ),
    "ConcatV2": lambda g, node, ins, out: g.add("Concat", ins[:-1], [out], axis=_axis(g, ins[-1])),
    "Reshape": lambda g, node, ins, out: g.add(
        "Reshape", [ins[0], _int64(g, ins[1], "shape")], [out]
    ),
    "ExpandDims": lambda g, node, ins, out: g.add(
        "Unsqueeze", [ins[0], _int64(g, ins[1], "axes")], [out]
    ),
    "GatherV2": lambda g, node, ins, out: g.add("Gather", ins[:2], [out], axis=_axis(g, ins[2])),
    "StridedSlice": _strided_slice,
}


def _resize_bilinear(g: _Graph, node: dict[str, Any], ins: list[str], out: str) -> None:
    if _attr(node, "align_corners", False):
        mode = "align_corners"
    elif _attr(node, "half_pixel_centers", False):
        mode = "half_pixel"
    else:  # TF1's legacy resize: source = destination * in / out
        mode = "asymmetric"
    # the full NHWC sizes, N and C read from the input: ONNX Runtime's optimiser drops
    # ``sizes`` given for ``axes=[1, 2]`` only (ONNX Runtime 1.32)
    shape, n, c, sizes = (g.fresh(out + s) for s in ("_shape", "_n", "_c", "_sizes"))
    g.add("Shape", [ins[0]], [shape])
    g.add(
        "Slice",
        [shape, g.const(np.array([0], np.int64), "s"), g.const(np.array([1], np.int64), "e")],
        [n],
    )
    g.add(
        "Slice",
        [shape, g.const(np.array([3], np.int64), "s"), g.const(np.array([4], np.int64), "e")],
        [c],
    )
    g.add("Concat", [n, _int64(g, ins[1], "hw"), c], [sizes], axis=0)
    g.add(
        "Resize", [ins[0], "", "", sizes], [out], mode="linear", coordinate_transformation_mode=mode
    )


def _max_pool(g: _Graph, node: dict[str, Any], ins: list[str], out: str) -> None:
    padding = _attr(node, "padding")
    if _attr(node, "data_format", "NHWC") != "NHWC" or padding not in ("SAME", "VALID"):
        raise ConfigError(f"{node['name']}: only NHWC MaxPool with SAME/VALID is supported")
    g.nchw(
        "MaxPool",
        ins[0],
        out,
        [],
        kernel_shape=_attr(node, "ksize")[1:3],
        strides=_attr(node, "strides")[1:3],
        auto_pad="SAME_UPPER" if padding == "SAME" else "VALID",
    )


def _top_k(g: _Graph, node: dict[str, Any], ins: list[str], outs: list[str]) -> None:
    # ONNX gives int64 indices; TF int32: cast so the index arithmetic after it types
    wide = g.fresh(outs[1] + "_int64")
    g.add("TopK", [ins[0], _int64(g, ins[1], "k")], [outs[0], wide], axis=-1, largest=1, sorted=1)
    g.add("Cast", [wide], [outs[1]], to=_onnx_type(np.int32))


OPS["ResizeBilinear"] = _resize_bilinear
OPS["MaxPool"] = _max_pool
_MULTI_OUTPUT = {"TopKV2": (_top_k, 2)}


def _output_info(model_json: dict[str, Any], name: str) -> Any:
    """An output's declared type and shape from the model's signature, else left open."""
    from onnx import helper

    spec = model_json.get("signature", {}).get("outputs", {}).get(name)
    if spec is None:
        return helper.make_empty_tensor_value_info(name)
    dims = [int(d["size"]) for d in spec["tensorShape"]["dim"]]
    return helper.make_tensor_value_info(name, _onnx_type(_TF_DTYPES[spec["dtype"]]), dims)


def convert(model_json_path: Path, out_path: Path, outputs: list[str]) -> None:
    """Write the TF.js graph model at ``model_json_path`` as ONNX to ``out_path``.

    ``outputs``: the graph's tensors to expose (e.g. ``tower_0/detections``); only the
    nodes they need are converted, in the graph's own (topological) order.
    """
    import onnx
    from onnx import helper, numpy_helper

    model_json = json.loads(model_json_path.read_text())
    if model_json.get("format") != "graph-model":
        raise ConfigError(f"{model_json_path} is not a TF.js graph model")
    nodes = model_json["modelTopology"]["node"]
    by_name = {n["name"]: n for n in nodes}
    weights = read_weights(model_json, model_json_path.parent)
    needed: set[str] = set()
    stack = [o.split(":")[0] for o in outputs]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        if name not in by_name:
            raise ConfigError(f"{model_json_path}: no node {name}")
        needed.add(name)
        stack += [i.split(":")[0].lstrip("^") for i in by_name[name].get("input", [])]

    g = _Graph(weights)
    graph_inputs = []

    def tensor(ref: str) -> str:  # TF names output 0 "node", output k "node:k"
        return ref.split(":")[0] if ref.endswith(":0") else ref

    for node in nodes:
        name, op = node["name"], node["op"]
        if name not in needed:
            continue
        ins = [tensor(i) for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            if name not in weights:
                raise ConfigError(f"constant {name} has no weights in the manifest")
            g.initialisers[name] = weights[name]
        elif op == "Placeholder":
            dims = [int(d["size"]) for d in node["attr"]["shape"]["shape"]["dim"]]
            dtype = _onnx_type(_TF_DTYPES[_attr(node, "dtype")])
            graph_inputs.append(helper.make_tensor_value_info(name, dtype, dims))
        elif op in _MULTI_OUTPUT:
            convert_op, count = _MULTI_OUTPUT[op]
            convert_op(g, node, ins, [name] + [f"{name}:{k}" for k in range(1, count)])
        elif op in OPS:
            OPS[op](g, node, ins, name)
        else:
            raise ConfigError(
                f"{model_json_path}: operation {op} (node {name}) is not supported by "
                f"DASHA's TF.js converter; it knows: {', '.join(sorted([*OPS, *_MULTI_OUTPUT]))}"
            )
    # constants read at conversion time (axes, shapes, raw kernels) are not in the file
    used = {i for n in g.nodes for i in n.input}
    graph = helper.make_graph(
        g.nodes,
        model_json_path.stem,
        graph_inputs,
        [_output_info(model_json, tensor(o)) for o in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in g.initialisers.items() if k in used],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dasha"
    )
    model.ir_version = 8  # what every ONNX Runtime since 1.10 reads
    # outputs the signature does not declare get their type from ONNX's shape inference
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
