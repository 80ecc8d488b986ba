"""The onnxruntime backend against the reference one (torch, cv2.dnn), and its model cache."""

import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.perception import onnx_runtime
from dasha.perception.detectors import load_detector
from dasha.perception.encoder import load_encoder
from perception_scenes import SCENES, disk_blur


@pytest.fixture(scope="module")
def sim_frames():
    """Simulator frames of every built-in scene, sharp and defocused."""
    from dasha.hardware import open_camera, open_lens

    frames = []
    for name, *_ in SCENES:
        camera = open_camera("sim", scene=name, distance_cm=170.0, illuminance_lux=100.0, seed=0)
        lens = open_lens("sim", camera=camera)
        for focus_v in (camera.world.optics.in_focus_v(170.0), 40.0):
            lens.set_focus(focus_v)
            frames.append(camera.grab().as_uint8())
    return frames


@pytest.fixture(scope="module")
def detector_images(sim_frames):
    """The simulator frames, the scene photographs, and three of them blurred."""
    images = sim_frames + [load() for _, load, *_ in SCENES]
    return images + [disk_blur(image, 4) for image in images[-3:]]


@pytest.fixture(scope="module")
def yolo():
    """YOLOv3-tiny on each of its backends."""
    return {
        b: load_detector("yolo", backend=b)
        for b in ("reference", "onnxruntime", "onnxruntime-int8")
    }


def test_encoder_features_match_torch(sim_frames):
    fast, reference = load_encoder(backend="onnxruntime"), load_encoder(backend="reference")
    assert (fast.backend, reference.backend) == ("onnxruntime", "reference")
    for image in sim_frames:
        want = reference.encode(image)
        np.testing.assert_allclose(
            fast.encode(image), want, rtol=1e-4, atol=1e-4 * np.abs(want).max()
        )
    batch = fast.encode_batch(sim_frames[:3])
    np.testing.assert_allclose(batch, reference.encode_batch(sim_frames[:3]), rtol=1e-4, atol=1e-4)


def test_yolo_detections_match_cv2_dnn(detector_images, yolo):
    fast, reference = yolo["onnxruntime"], yolo["reference"]
    compared = 0
    for image in detector_images:
        got, want = fast.detect(image), reference.detect(image)
        assert [d.class_name for d in got] == [d.class_name for d in want]
        for g, w in zip(got, want, strict=True):
            assert abs(g.score - w.score) <= 0.01
            assert np.max(np.abs(np.subtract(g.box, w.box))) <= 1.0
            compared += 1
    assert compared >= 6  # the scenes were detected, so boxes were compared


def test_any_darknet_cfg_converts(tmp_path):
    # a small cfg of every supported layer, random weights in darknet's format
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(
        "[net]\nwidth=64\nheight=64\nchannels=3\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=linear\n"
        "[maxpool]\nsize=2\nstride=1\n"
        "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
        "[route]\nlayers=-3\n"
        "[upsample]\nstride=2\n"
        "[route]\nlayers=-1,0\n"
        "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
    )
    rng = np.random.default_rng(0)
    sizes = [8 * 4 + 8 * 3 * 9, 8 * 4 + 8 * 8 * 9, 21 + 21 * 8, 21 + 21 * 16]
    values = []
    for size in sizes:
        chunk = rng.normal(0, 0.3, size).astype(np.float32)
        values.append(chunk)
    weights = np.concatenate(values)
    # batch-norm variances must be positive: they sit at [24:32] of the first two layers
    for start in (0, sizes[0]):
        weights[start + 24 : start + 32] = np.abs(weights[start + 24 : start + 32]) + 0.5
    path = tmp_path / "tiny.weights"
    with open(path, "wb") as handle:
        np.array([0, 2, 0], np.int32).tofile(handle)
        np.array([0], np.int64).tofile(handle)
        weights.tofile(handle)
    names = tmp_path / "coco.names"
    names.write_text("a\nb\n")
    options = dict(weights=path, cfg=cfg, names=names, input_size_px=64, score_threshold=0.3)
    fast = load_detector("yolo", backend="onnxruntime", **options)
    reference = load_detector("yolo", backend="reference", **options)
    image = rng.integers(0, 255, (80, 100), dtype=np.uint8)
    got, want = fast.detect(image), reference.detect(image)
    assert len(want) > 0
    assert [(d.class_name, d.box) for d in got] == [(d.class_name, d.box) for d in want]
    np.testing.assert_allclose([d.score for d in got], [d.score for d in want], atol=1e-3)


def _identity_model(path):
    import onnx

    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    out_value = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([node], "g", [value], [out_value])
    onnx.save(onnx.helper.make_model(graph), str(path))


def test_cache_rebuilt_when_source_changes_or_file_is_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    builds = []

    def build(out):
        builds.append(out)
        _identity_model(out)

    key = onnx_runtime.model_key(["a" * 64], "v1")
    path = onnx_runtime.cached_onnx("toy", key, build)
    assert onnx_runtime.cached_onnx("toy", key, build) == path and len(builds) == 1
    other = onnx_runtime.cached_onnx("toy", onnx_runtime.model_key(["b" * 64], "v1"), build)
    assert other != path and len(builds) == 2  # a new source checksum: a new model
    path.write_bytes(path.read_bytes()[:-3])  # damaged on disk
    assert onnx_runtime.cached_onnx("toy", key, build) == path and len(builds) == 3
    session = onnx_runtime.cached_session("toy", key, build)
    assert session.run(None, {"x": np.array([2.0], np.float32)})[0][0] == 2.0


def test_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="Delete the file to rebuild it"):
        onnx_runtime.inference_session(bad)


def test_backend_names():
    assert onnx_runtime.resolve_backend("auto", ("onnxruntime", "reference"), "m") == "onnxruntime"
    with pytest.raises(ConfigError, match="unknown backend"):
        onnx_runtime.resolve_backend("tensorrt", ("reference",), "m")
    with pytest.raises(ConfigError, match="has no onnxruntime backend"):
        onnx_runtime.resolve_backend("onnxruntime", ("reference",), "mtcnn")


def _replicated_rgb_preprocess(encoder, image):
    """The encoder's preprocessing as first written: replicate to RGB, HWC, then transpose."""
    import cv2

    rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
    height, width = rgb.shape[:2]
    scale = encoder.resize_px / min(height, width)
    size = (
        max(encoder.input_px, round(width * scale)),
        max(encoder.input_px, round(height * scale)),
    )
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, size, interpolation=interp)
    top, left = (size[1] - encoder.input_px) // 2, (size[0] - encoder.input_px) // 2
    square = resized[top : top + encoder.input_px, left : left + encoder.input_px]
    mean = np.asarray(encoder.mean_rgb, dtype=np.float32)
    std = np.asarray(encoder.std_rgb, dtype=np.float32)
    return ((square.astype(np.float32) - mean) / std).transpose(2, 0, 1)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "resnet152"])
def test_preprocess_equals_replicating_to_rgb_first(name):
    from dasha.perception.encoder import ENCODERS

    encoder = object.__new__(ENCODERS[name])  # no weights needed to preprocess
    rng = np.random.default_rng(0)
    for shape in [(404, 417), (100, 300), (600, 250), (404, 417, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        got = encoder.preprocess(image)
        assert got.shape == (3, 224, 224) and got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got, _replicated_rgb_preprocess(encoder, image))


def test_auto_takes_float_encoder_and_int8_yolo():
    """The defaults: int8 only where it keeps the agents' results (README's figures)."""
    assert load_encoder().backend == "onnxruntime"
    assert load_detector("yolo").backend == "onnxruntime-int8"


def test_int8_encoder_features_stay_close_to_float(sim_frames):
    """Measured on these frames: cosine >= 0.887, relative L2 error <= 0.46 (the tolerance
    below leaves room for other CPUs' int8 kernels)."""
    fast, int8 = load_encoder(backend="onnxruntime"), load_encoder(backend="onnxruntime-int8")
    for image in sim_frames:
        want, got = fast.encode(image), int8.encode(image)
        cosine = float(want @ got / np.linalg.norm(want) / np.linalg.norm(got))
        assert cosine >= 0.85
        assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 0.55
        assert not np.allclose(got, want, rtol=1e-3)  # it is the int8 model that ran


def test_int8_yolo_detections_stay_close_to_float(detector_images, yolo):
    """Every float detection scoring 0.5 or more is found by the int8 model, same class, box
    IoU >= 0.6 and score within 0.25 (measured: IoU >= 0.73, score within 0.19), and where
    float finds nothing int8 finds nothing above 0.35."""
    from perception_scenes import iou

    fast, int8 = yolo["onnxruntime"], yolo["onnxruntime-int8"]
    compared = 0
    for image in detector_images:
        got, want = int8.detect(image), fast.detect(image)
        if not want:
            assert not [d for d in got if d.score > 0.35]
        for w in (d for d in want if d.score >= 0.5):
            same = [d for d in got if d.class_name == w.class_name]
            assert same, (w, got)
            g = max(same, key=lambda d: iou(d.box, w.box))
            assert iou(g.box, w.box) >= 0.6 and abs(g.score - w.score) <= 0.25, (w, g)
            compared += 1
    assert compared >= 6


def _toy_conv_model(path, seed):
    import onnx
    from onnx import helper, numpy_helper

    weights = np.random.default_rng(seed).normal(size=(4, 1, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "toy",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 16, 16])],
        [numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_int8_model_is_cached_and_rebuilt_when_source_or_settings_change(tmp_path, monkeypatch):
    import cv2
    import onnx

    from dasha.perception import quantize

    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    builds = []
    real_quantize = quantize.quantize
    monkeypatch.setattr(
        quantize, "quantize", lambda *a, **k: builds.append(a[0]) or real_quantize(*a, **k)
    )

    def inputs(frames):
        for frame in frames:
            small = cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA)
            yield {"x": (small.astype(np.float32) / 255)[None, None]}

    sources = {}
    for seed in (0, 1):
        sources[seed] = tmp_path / f"toy{seed}.onnx"
        _toy_conv_model(sources[seed], seed)
    settings = quantize.QuantSettings(calibration_frames=6)

    def int8(seed, settings=settings):
        key = onnx_runtime.model_key([f"{seed}" * 64], "toy-1")
        return quantize.quantized_onnx("toy", key, sources[seed], inputs, settings)

    path = int8(0)
    assert path.name.startswith("toy-int8-") and len(builds) == 1
    assert int8(0) == path and len(builds) == 1  # cached
    assert int8(1) != path and len(builds) == 2  # another source: another model
    other = quantize.QuantSettings(calibration_frames=7)
    assert int8(0, other) not in (path, int8(1)) and len(builds) == 3  # other settings
    graph = onnx.load(str(path)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)
    x = next(inputs(quantize.calibration_frames(6, 0)))
    want = onnx_runtime.inference_session(sources[0]).run(None, x)[0]
    got = onnx_runtime.inference_session(path).run(None, x)[0]
    np.testing.assert_allclose(got, want, atol=0.05 * np.abs(want).max())


def test_calibration_frames_are_seeded_and_varied():
    from dasha.perception.quantize import calibration_frames

    frames = calibration_frames(12, 0)
    again = calibration_frames.__wrapped__(12, 0)  # rendered afresh, not the memo
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    assert not np.array_equal(frames[0], calibration_frames(12, 1)[0])
    means = [float(f.mean()) for f in frames]
    assert max(means) - min(means) > 40  # A_H's bright and dark tries as well as A_L's frames


@pytest.mark.parametrize(("setting", "spins"), [(None, "1"), ("1", "1"), ("0", "0")])
def test_sessions_spin_within_a_run_unless_told_not_to(tmp_path, monkeypatch, setting, spins):
    if setting is None:
        monkeypatch.delenv("DASHA_ORT_SPIN", raising=False)
    else:
        monkeypatch.setenv("DASHA_ORT_SPIN", setting)
    path = tmp_path / "toy.onnx"
    _identity_model(path)
    options = onnx_runtime.inference_session(path).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == spins
    if spins == "1":  # ... and stop the moment run returns
        assert options.get_session_config_entry("session.force_spinning_stop") == "1"
